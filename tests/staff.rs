//! Organisations, staff users, roles and providers, end to end over GraphQL: the
//! flow an organisation's first admin goes through, with the guard rails, tenant
//! isolation, real-time effect of changes, invites and the audit trail.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use serde_json::{Value, json};

const CREATE_ORG: &str = "mutation($i: CreateOrganizationInput!) {
  createOrganization(input: $i) { organization { id name } admin { id email mustChangePassword roles { name } } generatedPassword }
}";

/// A super admin creates an organisation; its first admin logs in and changes the
/// generated password. The admin's token and id, and the organisation's id.
async fn organization_with_admin(
    app: &TestApp,
    root: &str,
    name: &str,
    email: &str,
) -> (String, String, String) {
    let data = app
        .ok(
            root,
            CREATE_ORG,
            json!({ "i": { "name": name, "adminEmail": email, "adminFirstName": "Ada", "adminLastName": "Admin" } }),
        )
        .await;
    let created = &data["createOrganization"];
    assert_eq!(created["admin"]["mustChangePassword"], true);
    assert_eq!(created["admin"]["roles"][0]["name"], "Admin");
    let generated = created["generatedPassword"].as_str().unwrap();
    assert!(generated.len() >= 16);
    let token = app.login(email, generated).await;
    let (_, body) = app
        .graphql(Some(&token), "{ users { totalCount } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "PASSWORD_CHANGE_REQUIRED");
    app.ok(
        &token,
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": generated, "n": PASSWORD }),
    )
    .await;
    (
        token,
        created["admin"]["id"].as_str().unwrap().to_owned(),
        created["organization"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn role_id(app: &TestApp, token: &str, name: &str) -> String {
    let data = app.ok(token, "{ roles { id name } }", Value::Null).await;
    data["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name}: {data}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Riverside Clinic, made by a super admin, and its first admin signed in.
struct Riverside {
    app: TestApp,
    admin: String,
    admin_id: String,
    /// The super admin who made it, and its id.
    root: String,
    id: String,
}

async fn riverside(backend: Backend) -> Riverside {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, admin_id, id) =
        organization_with_admin(&app, &root, "Riverside Clinic", "ada@riverside.test").await;
    Riverside {
        app,
        admin,
        admin_id,
        root,
        id,
    }
}

const CREATE_USER: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id email mobilePhone locale mustChangePassword roles { name } } generatedPassword inviteLink } }";
const USERS: &str = "{ users { totalCount } }";

/// Bob of the front desk, holding a new role that reads users, signed in with
/// the password he chose after the admin's: the role's id, his and his token.
async fn bob_at_the_front_desk(clinic: &Riverside) -> (String, String, String) {
    let (app, admin) = (&clinic.app, &clinic.admin);
    let front_desk = app
        .ok(
            admin,
            "mutation($i: RoleInput!) { createRole(input: $i) { id name permissions } }",
            json!({ "i": { "name": "Front Desk", "permissions": ["USERS_READ", "PROJECTS_READ"] } }),
        )
        .await["createRole"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = app
        .ok(
            admin,
            CREATE_USER,
            json!({ "i": {
                "email": "  Bob.Desk@Riverside.TEST ", "firstName": "Bob", "lastName": "Desk",
                "mobilePhone": "(415) 555-2671", "locale": "en_us", "roleIds": [front_desk],
                "password": "Temporary 2024 pass"
            } }),
        )
        .await;
    let created = &data["createUser"];
    assert_eq!(created["user"]["email"], "bob.desk@riverside.test");
    assert_eq!(created["user"]["mobilePhone"], "+14155552671");
    assert_eq!(created["user"]["locale"], "en-US");
    assert_eq!(created["user"]["mustChangePassword"], true);
    assert_eq!(created["generatedPassword"], Value::Null);
    assert_eq!(created["inviteLink"], Value::Null);
    let bob_id = created["user"]["id"].as_str().unwrap().to_owned();
    let bob = app
        .login("bob.desk@riverside.test", "Temporary 2024 pass")
        .await;
    app.ok(
        &bob,
        "mutation { changePassword(currentPassword: \"Temporary 2024 pass\", newPassword: \"Bob's own 2024\") }",
        Value::Null,
    )
    .await;
    (front_desk, bob_id, bob)
}

/// The actions the admin is recorded doing, from the audit trail.
async fn audited_by_the_admin(clinic: &Riverside) -> Vec<String> {
    let data = clinic
        .app
        .ok(
            &clinic.admin,
            "{ auditEvents(first: 100) { edges { node { action actor { email } } } } }",
            Value::Null,
        )
        .await;
    data["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["actor"]["email"] == "ada@riverside.test")
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

#[each_backend]
#[tokio::test]
async fn a_new_organisation_has_every_built_in_role_and_its_creation_is_audited(backend: Backend) {
    let Riverside { app, admin, .. } = riverside(backend).await;
    let data = app
        .ok(
            &admin,
            "{ roles { name builtIn } permissions { permission description } }",
            Value::Null,
        )
        .await;
    let names: Vec<&str> = data["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for role in [
        "All Access",
        "Admin",
        "Clinical Manager",
        "Clinical Provider",
        "Patient Coordinator",
        "Medical Director",
        "Provider",
        "Billing",
    ] {
        assert!(names.contains(&role), "{role} missing from {names:?}");
    }
    assert_eq!(data["permissions"].as_array().unwrap().len(), 17);
    let data = app
        .ok(
            &admin,
            "{ auditEvents(first: 100) { edges { node { action actor { email } } } } }",
            Value::Null,
        )
        .await;
    assert!(
        data["auditEvents"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"]["action"] == "organization.create"
                && e["node"]["actor"]["email"] == "root@platform.test"),
        "{data}"
    );
}

#[each_backend]
#[tokio::test]
async fn an_admin_creates_a_role_and_a_user_holding_it_and_both_are_audited(backend: Backend) {
    let clinic = riverside(backend).await;
    let (_, _, bob) = bob_at_the_front_desk(&clinic).await;
    // Bob reads users through his role, on every instance.
    let peer = clinic.app.peer().await;
    let second = peer.as_ref().unwrap_or(&clinic.app);
    clinic.app.ok(&bob, USERS, Value::Null).await;
    second.ok(&bob, USERS, Value::Null).await;
    let audited = audited_by_the_admin(&clinic).await;
    for action in ["role.create", "user.create"] {
        assert!(audited.iter().any(|a| a == action), "{action}: {audited:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn a_taken_role_name_or_email_conflicts_and_bad_input_names_every_wrong_field(
    backend: Backend,
) {
    let clinic = riverside(backend).await;
    bob_at_the_front_desk(&clinic).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let (_, body) = app
        .graphql(
            Some(admin),
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Front Desk", "permissions": [] } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // The same email in another case is taken.
    let (_, body) = app
        .graphql(
            Some(admin),
            CREATE_USER,
            json!({ "i": { "email": "BOB.DESK@riverside.test", "firstName": "B", "lastName": "D", "generatePassword": true } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    let (_, body) = app
        .graphql(
            Some(admin),
            CREATE_USER,
            json!({ "i": { "email": "not-an-email", "firstName": " ", "lastName": "X", "mobilePhone": "12", "idleTimeoutMinutes": 0, "password": "x", "generatePassword": true } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let fields: Vec<String> = error_fields(&body).into_iter().map(|(f, _)| f).collect();
    for field in [
        "email",
        "firstName",
        "mobilePhone",
        "idleTimeoutMinutes",
        "generatePassword",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} not in {fields:?}"
        );
    }
}

#[each_backend]
#[tokio::test]
async fn a_change_to_a_users_roles_applies_to_their_next_request_on_every_instance(
    backend: Backend,
) {
    let clinic = riverside(backend).await;
    let (front_desk, bob_id, bob) = bob_at_the_front_desk(&clinic).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let peer = app.peer().await;
    let second = peer.as_ref().unwrap_or(app);
    second.ok(&bob, USERS, Value::Null).await;

    // Taking the permission off his role.
    app.ok(
        admin,
        "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
        json!({ "id": front_desk, "i": { "name": "Front Desk", "permissions": ["PROJECTS_READ"] } }),
    )
    .await;
    let (_, body) = second.graphql(Some(&bob), USERS, Value::Null).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Giving it back through another role, then taking his roles away.
    let billing = role_id(app, admin, "Billing").await;
    app.ok(
        admin,
        "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { roles { name } } }",
        json!({ "u": bob_id, "r": [billing] }),
    )
    .await;
    second.ok(&bob, USERS, Value::Null).await;
    app.ok(
        admin,
        "mutation($u: ID!) { setUserRoles(userId: $u, roleIds: []) { id } }",
        json!({ "u": bob_id }),
    )
    .await;
    let (_, body) = second.graphql(Some(&bob), USERS, Value::Null).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let audited = audited_by_the_admin(&clinic).await;
    for action in ["role.update", "user.set_roles"] {
        assert!(audited.iter().any(|a| a == action), "{action}: {audited:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn a_role_nobody_holds_can_be_deleted_and_a_held_one_cannot(backend: Backend) {
    let clinic = riverside(backend).await;
    let (front_desk, bob_id, _) = bob_at_the_front_desk(&clinic).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let delete = "mutation($id: ID!) { deleteRole(id: $id) }";
    for held in [role_id(app, admin, "Admin").await, front_desk.clone()] {
        let (_, body) = app
            .graphql(Some(admin), delete, json!({ "id": held }))
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
    }
    app.ok(
        admin,
        "mutation($u: ID!) { setUserRoles(userId: $u, roleIds: []) { id } }",
        json!({ "u": bob_id }),
    )
    .await;
    app.ok(admin, delete, json!({ "id": front_desk })).await;
    assert!(
        audited_by_the_admin(&clinic)
            .await
            .contains(&"role.delete".to_owned())
    );
}

#[each_backend]
#[tokio::test]
async fn updating_a_user_changes_only_what_is_given_and_null_clears(backend: Backend) {
    let clinic = riverside(backend).await;
    let (_, bob_id, _) = bob_at_the_front_desk(&clinic).await;
    let data = clinic
        .app
        .ok(
            &clinic.admin,
            "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { title mobilePhone firstName employeeStatus } }",
            json!({ "id": bob_id, "i": { "title": "Receptionist", "mobilePhone": null, "employeeStatus": "LEAVE" } }),
        )
        .await;
    assert_eq!(
        data["updateUser"],
        json!({ "title": "Receptionist", "mobilePhone": null, "firstName": "Bob", "employeeStatus": "LEAVE" })
    );
    assert!(
        audited_by_the_admin(&clinic)
            .await
            .contains(&"user.update".to_owned())
    );
}

#[each_backend]
#[tokio::test]
async fn deactivation_ends_a_users_sessions_everywhere_at_once_and_reactivation_lets_them_back(
    backend: Backend,
) {
    let clinic = riverside(backend).await;
    let (_, bob_id, bob) = bob_at_the_front_desk(&clinic).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let peer = app.peer().await;
    let second = peer.as_ref().unwrap_or(app);
    app.ok(
        admin,
        "mutation($id: ID!) { deactivateUser(id: $id) { status } }",
        json!({ "id": bob_id }),
    )
    .await;
    let (_, body) = second
        .graphql(Some(&bob), "{ me { id } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let (_, body) = app
        .graphql(None, "mutation { login(email: \"bob.desk@riverside.test\", password: \"Bob's own 2024\") { token } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    app.ok(
        admin,
        "mutation($id: ID!) { reactivateUser(id: $id) { status } }",
        json!({ "id": bob_id }),
    )
    .await;
    app.login("bob.desk@riverside.test", "Bob's own 2024").await;
    let audited = audited_by_the_admin(&clinic).await;
    for action in ["user.deactivate", "user.reactivate"] {
        assert!(audited.iter().any(|a| a == action), "{action}: {audited:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn a_reset_password_ends_a_users_sessions_and_must_be_changed(backend: Backend) {
    let clinic = riverside(backend).await;
    let (_, bob_id, bob) = bob_at_the_front_desk(&clinic).await;
    let app = &clinic.app;
    let data = app
        .ok(
            &clinic.admin,
            "mutation($id: ID!) { resetUserPassword(id: $id) { generatedPassword } }",
            json!({ "id": bob_id }),
        )
        .await;
    let (_, body) = app.graphql(Some(&bob), "{ me { id } }", Value::Null).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let reset = data["resetUserPassword"]["generatedPassword"]
        .as_str()
        .unwrap();
    let bob = app.login("bob.desk@riverside.test", reset).await;
    let data = app
        .ok(&bob, "{ me { mustChangePassword } }", Value::Null)
        .await;
    assert_eq!(data["me"]["mustChangePassword"], true);
    assert!(
        audited_by_the_admin(&clinic)
            .await
            .contains(&"user.reset_password".to_owned())
    );
}

#[each_backend]
#[tokio::test]
async fn the_last_administrator_can_neither_be_deactivated_nor_lose_the_right(backend: Backend) {
    let Riverside {
        app,
        admin,
        admin_id,
        ..
    } = riverside(backend).await;
    for (query, variables) in [
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": admin_id }),
        ),
        (
            "mutation($id: ID!) { setUserRoles(userId: $id, roleIds: []) { id } }",
            json!({ "id": admin_id }),
        ),
        (
            "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
            json!({ "id": role_id(&app, &admin, "Admin").await, "i": { "name": "Admin", "permissions": ["USERS_READ"] } }),
        ),
    ] {
        let (_, body) = app.graphql(Some(&admin), query, variables).await;
        assert_eq!(error_code(&body), "CONFLICT", "{query}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("manage users and roles")
        );
    }
    app.ok(
        &admin,
        "{ me { status roles { name permissions } } }",
        Value::Null,
    )
    .await;
}

#[each_backend]
#[tokio::test]
async fn providers_are_created_with_their_login_and_a_bad_npi_is_refused_with_the_reason(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, _, _) = organization_with_admin(&app, &root, "Lakeside", "ada@lakeside.test").await;
    const CREATE: &str = "mutation($i: CreateProviderInput!) { createProvider(input: $i) {
            provider { id npi organizationRole specialty phone credentialingStatus practiceAddress { line1 city state postalCode } billing { taxId }
                       user { email mustChangePassword roles { name } provider { npi } } }
            generatedPassword inviteLink } }";
    let input = |email: &str, npi: &str| {
        json!({ "i": {
        "email": email, "firstName": "José", "lastName": "García", "npi": npi, "organizationRole": "Provider",
        "specialty": "Pediatrics", "addressLine1": "100 Main St", "city": "Springfield", "state": "IL", "postalCode": "62700",
        "phone": "(217) 555-0100", "billingTaxId": "123456789", "generatePassword": true
    } })
    };

    for (npi, reason) in [
        ("1234567890", "check digit"),
        ("192676489", "exactly 10 digits"),
        ("12O3069251", "only digits"),
    ] {
        let (_, body) = app
            .graphql(Some(&admin), CREATE, input("bad@lakeside.test", npi))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?}: {body}");
        let fields = error_fields(&body);
        assert_eq!(fields[0].0, "npi");
        assert!(fields[0].1.contains(reason), "{npi}: {fields:?}");
    }
    // Nothing of a refused provider was written.
    let data = app
        .ok(
            &admin,
            "{ users(filter: { search: \"bad@\" }) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["users"]["totalCount"], 0);

    let data = app
        .ok(
            &admin,
            CREATE,
            input("dr.garcia@lakeside.test", "1203069251"),
        )
        .await;
    let provider = &data["createProvider"]["provider"];
    assert_eq!(provider["npi"], "1203069251");
    assert_eq!(provider["phone"], "+12175550100");
    assert_eq!(provider["billing"]["taxId"], "12-3456789");
    assert_eq!(provider["credentialingStatus"], "PENDING");
    assert_eq!(provider["practiceAddress"]["city"], "Springfield");
    assert_eq!(provider["user"]["mustChangePassword"], true);
    assert_eq!(provider["user"]["roles"][0]["name"], "Provider");
    assert_eq!(provider["user"]["provider"]["npi"], "1203069251");
    let provider_id = provider["id"].as_str().unwrap().to_owned();
    let generated = data["createProvider"]["generatedPassword"]
        .as_str()
        .unwrap();
    app.login("dr.garcia@lakeside.test", generated).await;

    // The NPI is unique within the organisation.
    let (_, body) = app
        .graphql(
            Some(&admin),
            CREATE,
            input("other@lakeside.test", "1203069251"),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    let data = app
        .ok(
            &admin,
            "mutation($id: ID!) { updateProvider(id: $id, input: { credentialingStatus: CREDENTIALED, specialty: null }) { credentialingStatus specialty npi } }",
            json!({ "id": provider_id }),
        )
        .await;
    assert_eq!(
        data["updateProvider"],
        json!({ "credentialingStatus": "CREDENTIALED", "specialty": null, "npi": "1203069251" })
    );

    let data = app
        .ok(&admin, "{ providers(filter: { search: \"garc\", credentialingStatus: CREDENTIALED }) { totalCount edges { node { npi } } } }", Value::Null)
        .await;
    assert_eq!(data["providers"]["totalCount"], 1);
    let data = app
        .ok(
            &admin,
            "{ providers(filter: { search: \"1203069\" }) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["providers"]["totalCount"], 1);
}

#[each_backend]
#[tokio::test]
async fn another_organisations_admin_sees_and_changes_none_of_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (a, a_admin, _) = organization_with_admin(&app, &root, "North", "ada@north.test").await;
    let (b, _, _) = organization_with_admin(&app, &root, "South", "sam@south.test").await;
    let data = app
        .ok(
            &a,
            "mutation { createProvider(input: { email: \"p@north.test\", firstName: \"P\", lastName: \"Q\", npi: \"1245319599\", generatePassword: true }) { provider { id user { id } } } }",
            Value::Null,
        )
        .await;
    let provider = data["createProvider"]["provider"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = data["createProvider"]["provider"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = role_id(&app, &a, "Billing").await;

    let data = app
        .ok(
            &b,
            "{ providers { totalCount } users { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["providers"]["totalCount"], 0);
    assert_eq!(data["users"]["totalCount"], 1);
    let data = app
        .ok(
            &b,
            "query($u: ID!, $p: ID!) { user(id: $u) { id } provider(id: $p) { id } }",
            json!({ "u": user, "p": provider }),
        )
        .await;
    assert_eq!(data, json!({ "user": null, "provider": null }));

    for (query, variables) in [
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { title: \"x\" }) { id } }",
            json!({ "id": user }),
        ),
        (
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": a_admin }),
        ),
        (
            "mutation($id: ID!) { reactivateUser(id: $id) { id } }",
            json!({ "id": user }),
        ),
        (
            "mutation($id: ID!) { resetUserPassword(id: $id) { generatedPassword } }",
            json!({ "id": user }),
        ),
        (
            "mutation($id: ID!) { setUserRoles(userId: $id, roleIds: []) { id } }",
            json!({ "id": user }),
        ),
        (
            "mutation($id: ID!) { updateProvider(id: $id, input: { specialty: \"x\" }) { id } }",
            json!({ "id": provider }),
        ),
        (
            "mutation($id: ID!) { updateRole(id: $id, input: { name: \"x\", permissions: [] }) { id } }",
            json!({ "id": role }),
        ),
        (
            "mutation($id: ID!) { deleteRole(id: $id) }",
            json!({ "id": role }),
        ),
    ] {
        let (_, body) = app.graphql(Some(&b), query, variables).await;
        assert_eq!(
            error_code(&body),
            "NOT_FOUND",
            "{backend:?}: {query}: {body}"
        );
    }
    // Another organisation's role cannot be given either.
    let (_, body) = app
        .graphql(
            Some(&b),
            "mutation($r: [ID!]!) { createUser(input: { email: \"x@south.test\", firstName: \"X\", lastName: \"Y\", roleIds: $r, generatePassword: true }) { user { id } } }",
            json!({ "r": [role] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // And an org admin cannot create organisations.
    let (_, body) = app
        .graphql(Some(&a), CREATE_ORG, json!({ "i": { "name": "Mine", "adminEmail": "m@m.test", "adminFirstName": "M", "adminLastName": "M" } }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}

#[each_backend]
#[tokio::test]
async fn an_invited_user_sets_a_password_once_through_the_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, _, _) = organization_with_admin(&app, &root, "Hillside", "ada@hillside.test").await;
    let data = app
        .ok(
            &admin,
            "mutation { createUser(input: { email: \"new@hillside.test\", firstName: \"Nia\", lastName: \"New\" }) { user { id mustChangePassword } generatedPassword inviteLink } }",
            Value::Null,
        )
        .await;
    let link = data["createUser"]["inviteLink"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/invite/", app.address)),
        "{link}"
    );
    assert_eq!(data["createUser"]["generatedPassword"], Value::Null);
    let token = link.rsplit('/').next().unwrap().to_owned();

    // No password yet: logging in fails like any wrong password.
    let (_, body) = app
        .graphql(None, "mutation { login(email: \"new@hillside.test\", password: \"anything 123\") { token } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // The link opens a page that leaks nothing onward.
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.text().await.unwrap().contains("new@hillside.test"));

    // The form refuses a weak password, then sets a good one and signs in.
    let weak = app
        .client
        .post(&link)
        .form(&[("password", "short"), ("confirm", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status().as_u16(), 422);
    assert!(weak.text().await.unwrap().contains("at least 8 characters"));
    let set = app
        .client
        .post(&link)
        .form(&[
            ("password", "Nia's first 2024"),
            ("confirm", "Nia's first 2024"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
    assert!(
        set.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("rollcall_session=")
    );
    app.login("new@hillside.test", "Nia's first 2024").await;

    // Used once: the page and the mutation now refuse it.
    assert_eq!(
        app.client
            .get(&link)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let (_, body) = app
        .graphql(None, "mutation($t: String!) { acceptInvite(token: $t, password: \"Another 2024 pw\") { token } }", json!({ "t": token }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(error_fields(&body)[0].0, "token");

    // A second invite goes through the GraphQL mutation.
    let data = app
        .ok(&admin, "mutation { createUser(input: { email: \"two@hillside.test\", firstName: \"T\", lastName: \"W\" }) { inviteLink } }", Value::Null)
        .await;
    let token = data["createUser"]["inviteLink"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .graphql(None, "mutation($t: String!) { acceptInvite(token: $t, password: \"Second 2024 pw\") { token mustChangePassword user { email } } }", json!({ "t": token }))
        .await;
    assert_eq!(
        body["data"]["acceptInvite"]["user"]["email"], "two@hillside.test",
        "{body}"
    );
    assert_eq!(body["data"]["acceptInvite"]["mustChangePassword"], false);

    // Without SMTP the invitation emails are queued, then marked undelivered.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses = entity::outbox_message::Entity::find()
            .filter(entity::outbox_message::Column::Kind.eq("user.invite"))
            .all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.status)
            .collect();
        if statuses.len() == 2 && statuses.iter().all(|s| s == "UNDELIVERED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(statuses, ["UNDELIVERED", "UNDELIVERED"], "{backend:?}");
}

#[each_backend]
#[tokio::test]
async fn organisation_settings_apply_to_the_next_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, _, _) =
        organization_with_admin(&app, &root, "Policy Clinic", "ada@policy.test").await;
    let (_, body) = app
        .graphql(
            Some(&admin),
            "mutation { updateOrganization(input: { passwordMinLength: 7 }) { id } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        error_fields(&body)[0].0,
        "passwordMinLength",
        "{backend:?}: {body}"
    );
    let data = app
        .ok(
            &admin,
            "mutation { updateOrganization(input: { passwordMinLength: 14, passwordRequireDigit: false, defaultIdleTimeoutMinutes: 15 }) { passwordMinLength passwordRequireDigit defaultIdleTimeoutMinutes } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        data["updateOrganization"],
        json!({ "passwordMinLength": 14, "passwordRequireDigit": false, "defaultIdleTimeoutMinutes": 15 })
    );
    const CREATE: &str = "mutation($p: String!) { createUser(input: { email: \"pat@policy.test\", firstName: \"P\", lastName: \"T\", password: $p }) { user { id } } }";
    let (_, body) = app
        .graphql(Some(&admin), CREATE, json!({ "p": "twelve chars" }))
        .await;
    assert_eq!(
        error_fields(&body),
        [(
            "password".to_owned(),
            "must be at least 14 characters long".to_owned()
        )]
    );
    app.ok(&admin, CREATE, json!({ "p": "no digits but long enough" }))
        .await;
    let data = app
        .ok(
            &admin,
            "{ auditEvents(filter: { action: \"organization.update\" }) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["auditEvents"]["totalCount"], 1);
}

/// A page of users shows each one's roles as they are now, on every
/// instance and to everyone who reads it (a person, an API client, a super
/// admin acting inside): renamed, created and given, taken away. (The page
/// reads the ids of each user's roles, and each instance keeps the
/// organisation's roles while its authorisation epoch stands.)
#[each_backend]
#[tokio::test]
async fn a_page_of_users_shows_their_roles_as_they_are_now_on_every_instance(backend: Backend) {
    let clinic = riverside(backend).await;
    let (front_desk, bob_id, _) = bob_at_the_front_desk(&clinic).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let peer = app.peer().await;
    let second = peer.as_ref().unwrap_or(app);
    const PAGE: &str = "{ users(first: 50) { edges { node { email roles { name } } } } }";
    let client = app
        .ok(
            admin,
            "mutation($i: ApiClientInput!) { createApiClient(input: $i) { token } }",
            json!({ "i": { "name": "Roster sync", "permissions": ["USERS_READ"],
                "expiresAt": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339() } }),
        )
        .await["createApiClient"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = &client;
    let root_inside = || async {
        let body: Value = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&clinic.root)
            .header("x-rollcall-organization", &clinic.id)
            .json(&json!({ "query": PAGE }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"].clone()
    };
    let bobs_roles = |data: &Value| -> Vec<String> {
        let edges = data["users"]["edges"].as_array().unwrap();
        let bob = edges
            .iter()
            .find(|e| e["node"]["email"] == "bob.desk@riverside.test")
            .unwrap_or_else(|| panic!("Bob is not on the page: {data}"));
        bob["node"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen_everywhere = |expected: &'static [&'static str]| async move {
        for instance in [app, second] {
            let data = instance.ok(admin, PAGE, Value::Null).await;
            assert_eq!(bobs_roles(&data), expected, "{backend:?}");
        }
        let data = second.ok(client, PAGE, Value::Null).await;
        assert_eq!(bobs_roles(&data), expected, "{backend:?}: an API client");
        assert_eq!(bobs_roles(&root_inside().await), expected, "{backend:?}");
    };
    seen_everywhere(&["Front Desk"]).await;

    // Renamed on one instance: the new name on each at once.
    app.ok(
        admin,
        "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
        json!({ "id": front_desk, "i": { "name": "Reception", "permissions": ["USERS_READ"] } }),
    )
    .await;
    seen_everywhere(&["Reception"]).await;

    // A role made since, given beside it: both, by name.
    let admissions = app
        .ok(
            admin,
            "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": "Admissions", "permissions": ["PROJECTS_READ"] } }),
        )
        .await["createRole"]["id"]
        .clone();
    const SET_ROLES: &str =
        "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }";
    app.ok(
        admin,
        SET_ROLES,
        json!({ "u": bob_id, "r": [front_desk, admissions] }),
    )
    .await;
    seen_everywhere(&["Admissions", "Reception"]).await;

    // Taken away again.
    second
        .ok(admin, SET_ROLES, json!({ "u": bob_id, "r": [admissions] }))
        .await;
    seen_everywhere(&["Admissions"]).await;
}

#[each_backend]
#[tokio::test]
async fn a_super_admin_acts_inside_any_organisation_by_naming_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, _, org) =
        organization_with_admin(&app, &root, "Eastside", "ada@eastside.test").await;
    let inside = |token: &str, query: &str| {
        app.client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(token)
            .header("x-rollcall-organization", &org)
            .json(&json!({ "query": query }))
            .send()
    };

    let body: Value = inside(&root, "mutation { createUser(input: { email: \"help@eastside.test\", firstName: \"H\", lastName: \"D\", generatePassword: true }) { user { organization { name } } } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"]["createUser"]["user"]["organization"]["name"], "Eastside",
        "{backend:?}: {body}"
    );
    let body: Value = inside(&root, "{ users { totalCount } organization { name } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["users"]["totalCount"], 2);
    assert_eq!(body["data"]["organization"]["name"], "Eastside");

    // The organisation's own audit trail shows the super admin as the actor.
    let data = app
        .ok(&admin, "{ auditEvents(filter: { action: \"user.create\" }, first: 10) { edges { node { actor { email } } } } }", Value::Null)
        .await;
    let actors: Vec<&str> = data["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["actor"]["email"].as_str().unwrap())
        .collect();
    assert!(actors.contains(&"root@platform.test"), "{actors:?}");

    // Nobody else may, and an unknown organisation is not found.
    let refused = inside(&admin, "{ users { totalCount } }").await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        200,
        "own organisation is no switch"
    );
    let data = app
        .ok(&root, CREATE_ORG, json!({ "i": { "name": "Westside", "adminEmail": "w@westside.test", "adminFirstName": "W", "adminLastName": "W" } }))
        .await;
    let other_org = data["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&admin)
        .header("x-rollcall-organization", &other_org)
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "FORBIDDEN");
    let unknown = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&root)
        .header("x-rollcall-organization", uuid::Uuid::now_v7().to_string())
        .json(&json!({ "query": "{ users { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

/// A super admin acting inside another organisation still owns their own
/// account: their second factor and password live in their own organisation,
/// and the other organisation's people show them as who acted.
#[each_backend]
#[tokio::test]
async fn a_super_admin_inside_another_organisation_keeps_their_own_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.super_admin("root@platform.test").await;
    let (admin, _, org) =
        organization_with_admin(&app, &root, "Eastside", "ada@eastside.test").await;
    let inside = |query: &'static str, variables: Value| {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&root)
            .header("x-rollcall-organization", &org)
            .json(&json!({ "query": query, "variables": variables }))
            .send();
        async move {
            let body: Value = request.await.unwrap().json().await.unwrap();
            assert!(body["errors"].is_null(), "{body}");
            body["data"].clone()
        }
    };

    // A second factor enrolled from inside Eastside is the super admin's.
    let enrollment = inside("mutation { startTotpEnrollment { otpauthUri } }", json!({})).await;
    let uri = enrollment["startTotpEnrollment"]["otpauthUri"]
        .as_str()
        .unwrap();
    let totp = totp_rs::TOTP::from_url(uri).unwrap();
    let code = totp.generate_current().unwrap();
    let codes = inside(
        "mutation($c: String!) { confirmTotpEnrollment(code: $c) }",
        json!({ "c": code }),
    )
    .await;
    assert_eq!(
        codes["confirmTotpEnrollment"].as_array().map(Vec::len),
        Some(10),
        "{backend:?}: {codes}"
    );
    let mine = inside("{ myAuthenticators { kind } }", json!({})).await;
    assert_eq!(
        mine["myAuthenticators"],
        json!([{ "kind": "TOTP" }]),
        "{mine}"
    );
    let home = app
        .ok(&root, "{ myAuthenticators { kind } }", json!({}))
        .await;
    assert_eq!(home["myAuthenticators"], mine["myAuthenticators"], "{home}");

    // So is the password changed from there.
    let changed = inside(
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        json!({ "c": PASSWORD, "n": "a new passphrase for the platform 7" }),
    )
    .await;
    assert_eq!(changed["changePassword"], true, "{changed}");

    // An API client the super admin makes for Eastside names them as
    // its maker to Eastside's own admin, though they belong elsewhere.
    let expires = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
    inside(
        "mutation($e: DateTime!) { createApiClient(input: { name: \"Roster sync\", permissions: [USERS_READ], expiresAt: $e }) { client { id } } }",
        json!({ "e": expires }),
    )
    .await;
    let clients = app
        .ok(
            &admin,
            "{ apiClients { name createdBy { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        clients["apiClients"],
        json!([{ "name": "Roster sync", "createdBy": { "email": "root@platform.test" } }]),
        "{backend:?}: {clients}"
    );
}

#[tokio::test]
async fn an_update_records_only_the_fields_it_changes_and_one_that_changes_nothing_records_nothing()
{
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let org = app.organization("Stillwater").await;
        app.user(org, "admin@stillwater.test", &["Admin"]).await;
        let nurse = app.user(org, "nurse@stillwater.test", &[]).await;
        let admin = app.login("admin@stillwater.test", PASSWORD).await;
        const UPDATE: &str = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { title firstName } }";
        let changes = || async {
            let data = app
                .ok(
                    &admin,
                    "{ auditEvents(first: 100) { edges { node { action targetId changes } } } }",
                    Value::Null,
                )
                .await;
            data["auditEvents"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["node"])
                .filter(|n| n["action"] == "user.update" && n["targetId"] == nurse.to_string())
                .map(|n| n["changes"].clone())
                .collect::<Vec<_>>()
        };

        let first = json!({ "title": "Charge Nurse", "firstName": "Test" });
        let data = app
            .ok(&admin, UPDATE, json!({ "id": nurse, "input": first }))
            .await;
        assert_eq!(data["updateUser"]["title"], "Charge Nurse");
        // The fixture's first name is already "Test": only the title changed.
        assert_eq!(
            changes().await,
            [json!({ "title": "Charge Nurse" })],
            "{backend:?}"
        );

        // The same values again change nothing, and nothing is recorded.
        app.ok(&admin, UPDATE, json!({ "id": nurse, "input": first }))
            .await;
        assert_eq!(changes().await.len(), 1, "{backend:?}");
    }
}
