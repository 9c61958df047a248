//! The access rule, tried as a user inside a customer would: for every
//! operation that can change who holds what, each built-in role and a role
//! holding only what the operation needs, against targets with fewer and more
//! rights than the caller. What must be allowed and refused is declared in
//! `tests/access_matrix.txt`; a random sequence of such operations by ordinary
//! users never leaves anyone above all of them.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::collections::BTreeSet;

use chrono::Utc;
use common::{PASSWORD, TestApp, error_code};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use rollcall::auth::Permission;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

/// The built-in roles of the table's columns, in its order; MIN follows.
const CALLERS: [&str; 8] = [
    "All Access",
    "Admin",
    "Clinical Manager",
    "Clinical Provider",
    "Patient Coordinator",
    "Medical Director",
    "Provider",
    "Billing",
];

/// One line of the table.
struct Line {
    operation: String,
    target: String,
    needs: Vec<Permission>,
    /// For each of CALLERS, then MIN: must it be allowed?
    allowed: Vec<bool>,
}

fn table() -> Vec<Line> {
    let text = include_str!("access_matrix.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells.len(), 3 + CALLERS.len() + 1, "malformed line: {l}");
            Line {
                operation: cells[0].to_owned(),
                target: cells[1].to_owned(),
                needs: cells[2]
                    .split(',')
                    .map(|p| Permission::parse(p).unwrap_or_else(|| panic!("permission {p}")))
                    .collect(),
                allowed: cells[3..]
                    .iter()
                    .map(|c| match *c {
                        "y" => true,
                        "n" => false,
                        other => panic!("cell {other:?} in: {l}"),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A user who tries operations.
struct Caller {
    id: Uuid,
    email: String,
    token: String,
}

/// The organisation the table is tried in, and a way to make unique names.
struct Clinic<'a> {
    app: &'a TestApp,
    org: Uuid,
    /// An administrator no line touches: the organisation always keeps one.
    keeper: String,
    project: String,
    admin_role: Uuid,
    serial: std::cell::Cell<usize>,
}

impl Clinic<'_> {
    fn next(&self) -> usize {
        self.serial.set(self.serial.get() + 1);
        self.serial.get()
    }

    /// A role holding exactly `permissions`, made in the database.
    async fn role(&self, permissions: &[Permission]) -> Uuid {
        make_role(
            self.app,
            self.org,
            &format!("Role {}", self.next()),
            permissions,
        )
        .await
    }

    /// Something the keeper does to set a line up; its data.
    async fn keeper_ok(&self, query: &str, variables: Value) -> Value {
        self.app.ok(&self.keeper, query, variables).await
    }

    /// A patient enrolled by the keeper in the clinic's project, with an
    /// email and in nobody's care team; the enrolment.
    async fn patient(&self, n: usize) -> Value {
        self.keeper_ok(
            "mutation($p: ID!, $e: String!) { addProjectPatient(projectId: $p, input: { email: $e, firstName: \"Pat\", lastName: \"Ient\" }) { id patient { id } } }",
            json!({ "p": self.project, "e": format!("patient{n}@home.test") }),
        )
        .await["addProjectPatient"]
            .clone()
    }

    /// A mapping template of the keeper's for LOCATIONS files; its id.
    async fn sites_template(&self, n: usize) -> Value {
        self.keeper_ok(
            "mutation($n: String!) { saveMappingTemplate(input: { kind: LOCATIONS, name: $n, mapping: [{ column: \"Site\", field: \"name\" }] }) { id } }",
            json!({ "n": format!("Feed sites {n}") }),
        )
        .await["saveMappingTemplate"]["id"]
            .clone()
    }

    /// A webhook of the keeper's for `user.created`; its id.
    async fn webhook(&self, n: usize) -> Value {
        self.keeper_ok(
            "mutation($i: WebhookInput!) { saveWebhook(input: $i) { webhook { id } } }",
            json!({ "i": { "url": format!("https://hooks{n}.example.org/in"), "events": ["user.created"] } }),
        )
        .await["saveWebhook"]["webhook"]["id"]
            .clone()
    }

    /// A USERS import of the keeper's, of `file` mapped column to field, run
    /// to its end; its id and final state.
    async fn keeper_import(&self, mapping: &[(&str, &str)], file: String) -> (String, Value) {
        let mapping: Vec<Value> = mapping
            .iter()
            .map(|(column, field)| json!({ "column": column, "field": field }))
            .collect();
        let (_, body) = self
            .app
            .upload(
                &self.keeper,
                "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
                json!({ "kind": "USERS", "mapping": mapping }),
                "file.csv",
                file.into_bytes(),
            )
            .await;
        let id = body["data"]["startImport"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = self.app.finished_job(&self.keeper, &id).await;
        (id, job)
    }

    async fn caller(&self, roles: &[&str]) -> Caller {
        let email = format!("caller{}@matrix.test", self.next());
        let id = self.app.user(self.org, &email, roles).await;
        let token = self.app.login(&email, PASSWORD).await;
        Caller { id, email, token }
    }

    /// A fresh target of the kind the line names; its id and email.
    async fn target(&self, kind: &str) -> Option<(Uuid, String)> {
        let email = format!("target{}@matrix.test", self.next());
        let id = match kind {
            "-" => return None,
            "plain" => self.app.user(self.org, &email, &[]).await,
            "admin" => self.app.user(self.org, &email, &["Admin"]).await,
            "super" => {
                let id = self.app.user(self.org, &email, &[]).await;
                entity::user::Entity::update(entity::user::ActiveModel {
                    id: Set(id),
                    is_super_admin: Set(true),
                    ..Default::default()
                })
                .exec(&self.app.db)
                .await
                .unwrap();
                id
            }
            other => panic!("unknown target {other}"),
        };
        Some((id, email))
    }
}

async fn make_role(app: &TestApp, org: Uuid, name: &str, permissions: &[Permission]) -> Uuid {
    let id = Uuid::now_v7();
    let now = Utc::now();
    entity::role::Entity::insert(entity::role::ActiveModel {
        id: Set(id),
        organization_id: Set(org),
        name: Set(name.to_owned()),
        description: Set(None),
        built_in: Set(false),
        external_id: Set(None),
        required_certifications: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&app.db)
    .await
    .unwrap();
    for p in permissions {
        entity::role_permission::Entity::insert(entity::role_permission::ActiveModel {
            role_id: Set(id),
            permission: Set(p.as_str().to_owned()),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    id
}

/// A valid NPI: nine digits from `n` and the check digit of the Luhn sum over
/// the prefix 80840.
fn npi(n: usize) -> String {
    let base = format!("{:09}", 100_000_000 + n);
    let digits: Vec<u32> = format!("80840{base}")
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                *d
            }
        })
        .sum();
    format!("{base}{}", (10 - sum % 10) % 10)
}

/// What became of an attempt: allowed, or refused with the reason.
type Outcome = Result<(), String>;

/// A mutation's outcome: allowed without errors, refused with FORBIDDEN (or
/// as missing, for what the caller may not see); anything else is a failure
/// of the test.
async fn mutation(app: &TestApp, token: &str, query: &str, variables: Value) -> Outcome {
    mutation_data(app, token, query, variables).await.map(drop)
}

/// As [`mutation`], with the data of an allowed one.
async fn mutation_data(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let (_, body) = app.graphql(Some(token), query, variables).await;
    if body["errors"].is_null() {
        return Ok(body["data"].clone());
    }
    // What the caller may not see is answered as missing: NOT_FOUND, or a
    // field naming no such record.
    let unseen = error_code(&body) == "BAD_USER_INPUT"
        && common::error_fields(&body)
            .iter()
            .all(|(_, message)| message.starts_with("no such"));
    assert!(
        matches!(error_code(&body), "FORBIDDEN" | "NOT_FOUND") || unseen,
        "{query}: {body}"
    );
    Err(body["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned())
}

/// An import's outcome: refused at the start (FORBIDDEN), or run to its end
/// with its one row written or failed with its reason.
async fn import(
    clinic: &Clinic<'_>,
    token: &str,
    kind: &str,
    file: String,
    columns: &[&str],
) -> Outcome {
    let mapping: Vec<Value> = columns
        .iter()
        .map(|c| json!({ "column": c, "field": c }))
        .collect();
    let mut input = json!({ "kind": kind, "mapping": mapping });
    if kind == "PATIENTS" {
        input["projectId"] = json!(clinic.project);
    }
    let (_, body) = clinic
        .app
        .upload(
            token,
            "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
            input,
            "file.csv",
            file.into_bytes(),
        )
        .await;
    if !body["errors"].is_null() {
        assert_eq!(error_code(&body), "FORBIDDEN", "{kind}: {body}");
        return Err(body["errors"][0]["message"].as_str().unwrap().to_owned());
    }
    let id = body["data"]["startImport"]["id"].as_str().unwrap();
    row_outcome(clinic, id).await
}

/// The outcome of the one row of a job, once it has ended: written, or failed
/// with its reason.
async fn row_outcome(clinic: &Clinic<'_>, id: &str) -> Outcome {
    let job = clinic.app.finished_job(&clinic.keeper, id).await;
    let data = clinic
        .app
        .ok(
            &clinic.keeper,
            "query($id: ID!) { importJob(id: $id) { rows { edges { node { status errors { field message } } } } } }",
            json!({ "id": id }),
        )
        .await;
    let row = &data["importJob"]["rows"]["edges"][0]["node"];
    match row["status"].as_str() {
        Some("FAILED") => {
            let reason = row["errors"][0]["message"].as_str().unwrap_or("");
            assert!(!reason.is_empty(), "a refused row says why: {row}");
            Err(reason.to_owned())
        }
        Some(_) => Ok(()),
        None => panic!("{job} {data}"),
    }
}

/// The caller's `mutation` on the keeper's `import` (its argument `argument`),
/// which starts a job of one row: refused at its start, or the row's outcome.
async fn job_run_by(
    clinic: &Clinic<'_>,
    token: &str,
    mutation: &str,
    argument: &str,
    import: &str,
) -> Outcome {
    let data = mutation_data(
        clinic.app,
        token,
        &format!("mutation($id: ID!) {{ {mutation}({argument}: $id) {{ id }} }}"),
        json!({ "id": import }),
    )
    .await?;
    row_outcome(clinic, data[mutation]["id"].as_str().unwrap()).await
}

/// Try the line's operation as `caller`.
async fn attempt(clinic: &Clinic<'_>, line: &Line, caller: &Caller) -> Outcome {
    let app = clinic.app;
    let n = clinic.next();
    let target = clinic.target(&line.target).await;
    let target_id = target.as_ref().map(|(id, _)| id.to_string());
    let target_email = target.as_ref().map(|(_, e)| e.clone()).unwrap_or_default();
    let token = caller.token.as_str();
    let everything: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    match line.operation.as_str() {
        "createUser" | "createUserAsAdmin" => {
            let roles: Vec<String> = if line.operation == "createUserAsAdmin" {
                vec![clinic.admin_role.to_string()]
            } else {
                Vec::new()
            };
            mutation(
                app,
                token,
                "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
                json!({ "i": { "email": format!("new{n}@matrix.test"), "firstName": "New", "lastName": "User", "roleIds": roles } }),
            )
            .await
        }
        "updateUser" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { updateUser(id: $id, input: { title: \"Charge Nurse\" }) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "changeEmail" => {
            mutation(
                app,
                token,
                "mutation($id: ID!, $e: String!) { updateUser(id: $id, input: { email: $e }) { id } }",
                json!({ "id": target_id, "e": format!("moved{n}@matrix.test") }),
            )
            .await
        }
        "deactivateUser" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "reactivateUser" => {
            let (id, _) = target.as_ref().unwrap();
            entity::user::Entity::update(entity::user::ActiveModel {
                id: Set(*id),
                status: Set("INACTIVE".into()),
                ..Default::default()
            })
            .exec(&app.db)
            .await
            .unwrap();
            mutation(
                app,
                token,
                "mutation($id: ID!) { reactivateUser(id: $id) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "resetUserPassword" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { resetUserPassword(id: $id) { generatedPassword } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "resetUserMfa" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { resetUserMfa(userId: $id) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "updateUserProfile" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { updateUserProfile(userId: $id, input: { title: \"Night shift\" }) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "setUserRolesToNone" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { setUserRoles(userId: $id, roleIds: []) { id } }",
                json!({ "id": target_id }),
            )
            .await
        }
        "giveOneselfAdmin" => {
            mutation(
                app,
                token,
                "mutation($id: ID!, $r: ID!) { setUserRoles(userId: $id, roleIds: [$r]) { id } }",
                json!({ "id": caller.id.to_string(), "r": clinic.admin_role.to_string() }),
            )
            .await
        }
        "createRoleWithEverything" | "createRoleWithinOwn" => {
            let permissions = if line.operation == "createRoleWithinOwn" {
                vec!["ROLES_MANAGE"]
            } else {
                everything
            };
            mutation(
                app,
                token,
                "mutation($i: RoleInput!) { createRole(input: $i) { id } }",
                json!({ "i": { "name": format!("Made {n}"), "permissions": permissions } }),
            )
            .await
        }
        "editAdminRole" => {
            mutation(
                app,
                token,
                "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
                json!({ "id": clinic.admin_role.to_string(), "i": { "name": "Admin", "description": format!("Edited {n}"), "permissions": everything } }),
            )
            .await
        }
        "raiseEmptyRole" => {
            let role = clinic.role(&[]).await;
            mutation(
                app,
                token,
                "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }",
                json!({ "id": role.to_string(), "i": { "name": format!("Raised {n}"), "permissions": everything } }),
            )
            .await
        }
        "deleteRoleWithEverything" => {
            let role = clinic.role(&Permission::ALL).await;
            mutation(
                app,
                token,
                "mutation($id: ID!) { deleteRole(id: $id) }",
                json!({ "id": role.to_string() }),
            )
            .await
        }
        "revokeUserSessions" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { revokeUserSessions(userId: $id) }",
                json!({ "id": target_id }),
            )
            .await
        }
        "createLocation" => {
            mutation(
                app,
                token,
                "mutation($n: String!) { createLocation(input: { name: $n }) { id } }",
                json!({ "n": format!("Site {n}") }),
            )
            .await
        }
        "createProject" => {
            mutation(
                app,
                token,
                "mutation($n: String!) { createProject(input: { name: $n }) { id } }",
                json!({ "n": format!("Project {n}") }),
            )
            .await
        }
        "addProjectPatient" => {
            mutation(
                app,
                token,
                "mutation($p: ID!, $x: String!) { addProjectPatient(projectId: $p, input: { externalId: $x, firstName: \"Pat\", lastName: \"Ient\" }) { id } }",
                json!({ "p": clinic.project, "x": format!("MRN-{n}") }),
            )
            .await
        }
        "importUsers" => {
            import(
                clinic,
                token,
                "USERS",
                format!("email,title\n{target_email},Charge Nurse\n"),
                &["email", "title"],
            )
            .await
        }
        "revertImport" => {
            // The keeper's import changed the target's title; the caller undoes it.
            let (import, job) = clinic
                .keeper_import(
                    &[("email", "email"), ("title", "title")],
                    format!("email,title\n{target_email},Import {n}\n"),
                )
                .await;
            assert_eq!(job["updatedCount"], 1, "{job}");
            job_run_by(clinic, token, "revertImport", "id", &import).await
        }
        "retryFailedRows" => {
            // The keeper's import of a change to the target failed on a bad
            // phone; the keeper clears the phone in the log; the caller retries.
            let (import, job) = clinic
                .keeper_import(
                    &[("email", "email"), ("title", "title"), ("phone", "mobilePhone")],
                    format!("email,title,phone\n{target_email},Import {n},not a phone\n"),
                )
                .await;
            assert_eq!(job["failedCount"], 1, "{job}");
            let fixed = clinic
                .keeper_ok(
                    "mutation($id: ID!) { updateImportRow(jobId: $id, rowNumber: 2, values: { phone: \"\" }) { errors { message } } }",
                    json!({ "id": import }),
                )
                .await;
            assert_eq!(fixed["updateImportRow"]["errors"], json!([]), "{fixed}");
            job_run_by(clinic, token, "retryFailedRows", "jobId", &import).await
        }
        "importOneselfAsAdmin" => {
            import(
                clinic,
                token,
                "USERS",
                format!("email,roles\n{},Admin\n", caller.email),
                &["email", "roles"],
            )
            .await
        }
        "importProviders" => {
            import(
                clinic,
                token,
                "PROVIDERS",
                format!(
                    "email,firstName,lastName,npi\nprovider{n}@matrix.test,Ann,Lee,{}\n",
                    npi(n)
                ),
                &["email", "firstName", "lastName", "npi"],
            )
            .await
        }
        "importLocations" => {
            import(
                clinic,
                token,
                "LOCATIONS",
                format!("name\nImported site {n}\n"),
                &["name"],
            )
            .await
        }
        "importPatients" => {
            import(
                clinic,
                token,
                "PATIENTS",
                format!("externalId,firstName,lastName\nMRN-I{n},Pat,Ient\n"),
                &["externalId", "firstName", "lastName"],
            )
            .await
        }
        "createOrganization" => {
            mutation(
                app,
                token,
                "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
                json!({ "i": { "name": format!("Spin-off {n}"), "adminEmail": format!("spin{n}@matrix.test"), "adminFirstName": "S", "adminLastName": "O" } }),
            )
            .await
        }
        "updateOrganization" => {
            mutation(
                app,
                token,
                "mutation { updateOrganization(input: { defaultIdleTimeoutMinutes: 45 }) { id } }",
                Value::Null,
            )
            .await
        }
        "saveIdentityProvider" | "mapGroupToAdmin" => {
            // Saving reaches no provider; signing in through it would.
            let mut input = json!({
                "name": format!("IdP {n}"),
                "issuer": "https://idp.example.org",
                "clientId": "rollcall",
                "clientSecret": "secret",
                "emailDomains": [format!("idp{n}.example.org")],
            });
            if line.operation == "mapGroupToAdmin" {
                input["roleMappings"] =
                    json!([{ "group": "admins", "roleId": clinic.admin_role.to_string() }]);
            }
            mutation(
                app,
                token,
                "mutation($i: IdentityProviderInput!) { saveIdentityProvider(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await
        }
        "createApiClient" | "createApiClientAsAdmin" => {
            let permissions = if line.operation == "createApiClient" {
                json!(["USERS_READ"])
            } else {
                json!(["USERS_READ", "ROLES_MANAGE"])
            };
            mutation(
                app,
                token,
                "mutation($i: ApiClientInput!) { createApiClient(input: $i) { token } }",
                json!({ "i": {
                    "name": format!("Client {n}"),
                    "permissions": permissions,
                    "expiresAt": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
                } }),
            )
            .await
        }
        "saveWebhook" => {
            mutation(
                app,
                token,
                "mutation($i: WebhookInput!) { saveWebhook(input: $i) { secret } }",
                json!({ "i": { "url": format!("https://hooks{n}.example.org/in"), "events": ["user.created"] } }),
            )
            .await
        }
        "revokeApiClient" => {
            let client = clinic
                .keeper_ok(
                    "mutation($i: ApiClientInput!) { createApiClient(input: $i) { client { id } } }",
                    json!({ "i": {
                        "name": format!("Client {n}"),
                        "permissions": ["USERS_READ"],
                        "expiresAt": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
                    } }),
                )
                .await["createApiClient"]["client"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($id: ID!) { revokeApiClient(id: $id) { id } }",
                json!({ "id": client }),
            )
            .await
        }
        "createProvider" | "createProviderAsAdmin" => {
            let mut input = json!({ "email": format!("dr{n}@matrix.test"), "firstName": "Dr", "lastName": "Who", "npi": npi(n) });
            if line.operation == "createProviderAsAdmin" {
                input["roleIds"] = json!([clinic.admin_role.to_string()]);
            }
            mutation(
                app,
                token,
                "mutation($i: CreateProviderInput!) { createProvider(input: $i) { provider { id } } }",
                json!({ "i": input }),
            )
            .await
        }
        "updateProvider" => {
            let provider = clinic
                .keeper_ok(
                    "mutation($i: CreateProviderInput!) { createProvider(input: $i) { provider { id } } }",
                    json!({ "i": { "email": format!("dr{n}@matrix.test"), "firstName": "Dr", "lastName": "Who", "npi": npi(n) } }),
                )
                .await["createProvider"]["provider"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($id: ID!) { updateProvider(id: $id, input: { specialty: \"Cardiology\" }) { id } }",
                json!({ "id": provider }),
            )
            .await
        }
        "updateProject" => {
            mutation(
                app,
                token,
                "mutation($id: ID!, $n: String!) { updateProject(id: $id, input: { name: $n }) { id } }",
                json!({ "id": clinic.project, "n": format!("Outreach {n}") }),
            )
            .await
        }
        "rotateProjectLink" => {
            mutation(
                app,
                token,
                "mutation($id: ID!) { rotateProjectLink(id: $id) { id } }",
                json!({ "id": clinic.project }),
            )
            .await
        }
        "updateLocation" => {
            let location = clinic
                .keeper_ok(
                    "mutation($n: String!) { createLocation(input: { name: $n }) { id } }",
                    json!({ "n": format!("Ward {n}") }),
                )
                .await["createLocation"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($id: ID!, $n: String!) { updateLocation(id: $id, input: { name: $n }) { id } }",
                json!({ "id": location, "n": format!("Ward {n} east") }),
            )
            .await
        }
        "assignPatients" | "unassignPatients" => {
            let patient = clinic.patient(n).await;
            if line.operation == "unassignPatients" {
                clinic
                    .keeper_ok(
                        "mutation($u: ID!, $p: ID!) { assignPatients(userId: $u, patientIds: [$p]) }",
                        json!({ "u": target_id, "p": patient["patient"]["id"] }),
                    )
                    .await;
            }
            mutation(
                app,
                token,
                &format!(
                    "mutation($u: ID!, $p: ID!) {{ {}(userId: $u, patientIds: [$p]) }}",
                    line.operation
                ),
                json!({ "u": target_id, "p": patient["patient"]["id"] }),
            )
            .await
        }
        "sendProjectRequests" => {
            let enrollment = clinic.patient(n).await;
            mutation(
                app,
                token,
                "mutation($p: ID!, $e: ID!) { sendProjectRequests(projectId: $p, enrollmentIds: [$e], channel: EMAIL) }",
                json!({ "p": clinic.project, "e": enrollment["id"] }),
            )
            .await
        }
        "confirmEnrollmentResponse" => {
            let enrollment = clinic.patient(n).await;
            let link = clinic
                .keeper_ok(
                    "query($id: ID!) { project(id: $id) { patientLink } }",
                    json!({ "id": clinic.project }),
                )
                .await["project"]["patientLink"]
                .as_str()
                .unwrap()
                .to_owned();
            let path = link.split_once("://").unwrap().1.split_once('/').unwrap().1;
            let email = format!("patient{n}@home.test");
            let response = app
                .client
                .post(format!("{}/{path}", app.address))
                .form(&[
                    ("firstName", "Some"),
                    ("lastName", "One"),
                    ("email", email.as_str()),
                    ("consent", "yes"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            mutation(
                app,
                token,
                "mutation($id: ID!) { confirmEnrollmentResponse(id: $id, accept: true) { status } }",
                json!({ "id": enrollment["id"] }),
            )
            .await
        }
        "previewImport" => {
            let (_, body) = app
                .upload(
                    token,
                    "mutation($input: ImportInput!) { previewImport(input: $input) { totalRows } }",
                    json!({ "kind": "USERS" }),
                    "staff.csv",
                    format!("Email,Job Title\nx{n}@matrix.test,RN\n").into_bytes(),
                )
                .await;
            if body["errors"].is_null() {
                Ok(())
            } else {
                assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
                Err(body["errors"][0]["message"].as_str().unwrap().to_owned())
            }
        }
        "saveMappingTemplate" => {
            mutation(
                app,
                token,
                "mutation($n: String!) { saveMappingTemplate(input: { kind: LOCATIONS, name: $n, mapping: [{ column: \"Site\", field: \"name\" }] }) { id } }",
                json!({ "n": format!("Sites {n}") }),
            )
            .await
        }
        "deleteMappingTemplate" => {
            let template = clinic
                .keeper_ok(
                    "mutation($n: String!) { saveMappingTemplate(input: { kind: LOCATIONS, name: $n, mapping: [{ column: \"Site\", field: \"name\" }] }) { id } }",
                    json!({ "n": format!("Sites {n}") }),
                )
                .await["saveMappingTemplate"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($id: ID!) { deleteMappingTemplate(id: $id) }",
                json!({ "id": template }),
            )
            .await
        }
        "reviewBreakGlass" => {
            let nurse = clinic.caller(&["Clinical Provider"]).await;
            let grant = app
                .ok(
                    &nurse.token,
                    "mutation { breakGlass(reason: \"Access table: a rehearsed emergency\", minutes: 1) { id } }",
                    json!({}),
                )
                .await["breakGlass"]["id"]
                .clone();
            app.ok(&nurse.token, "mutation { endBreakGlass }", json!({}))
                .await;
            mutation(
                app,
                token,
                "mutation($id: ID!) { reviewBreakGlass(id: $id, note: \"Rehearsal\") { id } }",
                json!({ "id": grant }),
            )
            .await
        }
        "redeliverWebhook" => {
            let webhook = clinic.webhook(n).await;
            clinic
                .keeper_ok(
                    "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
                    json!({ "i": { "email": format!("hooked{n}@matrix.test"), "firstName": "Hook", "lastName": "Ed" } }),
                )
                .await;
            let delivery = clinic
                .keeper_ok(
                    "query($w: ID!) { webhookDeliveries(webhookId: $w) { edges { node { id } } } }",
                    json!({ "w": webhook }),
                )
                .await["webhookDeliveries"]["edges"][0]["node"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { id } }",
                json!({ "d": delivery }),
            )
            .await
        }
        "startAccessReview" => {
            let target: Uuid = target_id.as_deref().unwrap().parse().unwrap();
            // Something to review: a role without permissions for the plain
            // and the super target (an admin holds Admin already).
            if line.target != "admin" {
                let role = clinic.role(&[]).await;
                entity::user_role::Entity::insert(entity::user_role::ActiveModel {
                    user_id: Set(target),
                    role_id: Set(role),
                })
                .exec_without_returning(&app.db)
                .await
                .unwrap();
            }
            mutation(
                app,
                token,
                "mutation($i: AccessReviewInput!) { startAccessReview(input: $i) { id } }",
                json!({ "i": {
                    "name": format!("Review {n}"),
                    "userIds": [target],
                    "reviewerIds": [caller.id],
                    "dueAt": (Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                    "onDue": "KEEP",
                } }),
            )
            .await
        }
        "breakGlass" => {
            let outcome = mutation(
                app,
                token,
                "mutation($r: String!) { breakGlass(reason: $r, minutes: 1) { id } }",
                json!({ "r": "Access table: an emergency rehearsed" }),
            )
            .await;
            // Ended at once, so that the rows after it see as before.
            if outcome.is_ok() {
                mutation(app, token, "mutation { endBreakGlass }", json!({}))
                    .await
                    .unwrap();
            }
            outcome
        }
        "deleteWebhook" => {
            let webhook = clinic.webhook(n).await;
            mutation(
                app,
                token,
                "mutation($id: ID!) { deleteWebhook(id: $id) }",
                json!({ "id": webhook }),
            )
            .await
        }
        "deleteImportFeed" => {
            let template = clinic.sites_template(n).await;
            let feed = clinic
                .keeper_ok(
                    "mutation($i: ImportFeedInput!) { saveImportFeed(input: $i) { id } }",
                    json!({ "i": {
                        "name": format!("Feed {n}"),
                        "kind": "LOCATIONS",
                        "url": "https://files.example.org/sites.csv",
                        "templateId": template,
                        "schedule": "0 6 * * *",
                        "active": false,
                    } }),
                )
                .await["saveImportFeed"]["id"]
                .clone();
            mutation(
                app,
                token,
                "mutation($id: ID!) { deleteImportFeed(id: $id) }",
                json!({ "id": feed }),
            )
            .await
        }
        "saveImportFeed" => {
            let template = clinic.sites_template(n).await;
            mutation(
                app,
                token,
                "mutation($i: ImportFeedInput!) { saveImportFeed(input: $i) { id } }",
                json!({ "i": {
                    "name": format!("Feed {n}"),
                    "kind": "LOCATIONS",
                    "url": "https://files.example.org/sites.csv",
                    "templateId": template,
                    "schedule": "0 6 * * *",
                    "active": false,
                } }),
            )
            .await
        }
        other => panic!("the table names an operation the test does not know: {other}"),
    }
}

#[tokio::test]
async fn every_door_answers_as_the_access_table_declares() {
    let table = table();
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let (org, keeper) = app.admin_in("Matrix Clinic", "keeper@matrix.test").await;
        let project = app
            .ok(
                &keeper,
                "mutation { createProject(input: { name: \"Outreach\" }) { id } }",
                Value::Null,
            )
            .await["createProject"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let admin_role = entity::role::Entity::find()
            .filter(entity::role::Column::OrganizationId.eq(org))
            .filter(entity::role::Column::Name.eq("Admin"))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .id;
        let clinic = Clinic {
            app: &app,
            org,
            keeper,
            project,
            admin_role,
            serial: Default::default(),
        };
        let mut callers = Vec::new();
        for role in CALLERS {
            callers.push(clinic.caller(&[role]).await);
        }

        let mut disagreements = Vec::new();
        for line in &table {
            let minimal_role = clinic.role(&line.needs).await;
            let minimal_name = entity::role::Entity::find_by_id(minimal_role)
                .one(&app.db)
                .await
                .unwrap()
                .unwrap()
                .name;
            let minimal = clinic.caller(&[minimal_name.as_str()]).await;
            for (column, allowed) in line.allowed.iter().enumerate() {
                let (caller, name) = match callers.get(column) {
                    Some(caller) => (caller, CALLERS[column]),
                    None => (&minimal, "MIN"),
                };
                let outcome = attempt(&clinic, line, caller).await;
                if outcome.is_ok() != *allowed {
                    disagreements.push(format!(
                        "{} on {} by {name}: the table says {}, the server {}",
                        line.operation,
                        line.target,
                        if *allowed { "allowed" } else { "refused" },
                        match &outcome {
                            Ok(()) => "allowed it".to_owned(),
                            Err(reason) => format!("refused it: {reason}"),
                        }
                    ));
                }
            }
        }
        assert!(
            disagreements.is_empty(),
            "{backend:?}: the server and tests/access_matrix.txt disagree:\n{}",
            disagreements.join("\n")
        );
    }
}

/// One operation of a random sequence, by caller `by`; users and roles are
/// picked by index among those that exist when it runs.
#[derive(Clone, Debug)]
enum Step {
    CreateRole {
        by: usize,
        permissions: u32,
    },
    UpdateRole {
        by: usize,
        role: usize,
        permissions: u32,
    },
    SetRoles {
        by: usize,
        user: usize,
        roles: Vec<usize>,
    },
    CreateUser {
        by: usize,
        roles: Vec<usize>,
    },
    ImportRoles {
        by: usize,
        user: usize,
        roles: Vec<usize>,
    },
    ResetPassword {
        by: usize,
        user: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let by = 0..3usize;
    let picks = || proptest::collection::vec(0..64usize, 0..3);
    prop_oneof![
        (by.clone(), any::<u32>())
            .prop_map(|(by, permissions)| Step::CreateRole { by, permissions }),
        (by.clone(), 0..64usize, any::<u32>()).prop_map(|(by, role, permissions)| {
            Step::UpdateRole {
                by,
                role,
                permissions,
            }
        }),
        (by.clone(), 0..64usize, picks()).prop_map(|(by, user, roles)| Step::SetRoles {
            by,
            user,
            roles
        }),
        (by.clone(), picks()).prop_map(|(by, roles)| Step::CreateUser { by, roles }),
        (by.clone(), 0..64usize, picks()).prop_map(|(by, user, roles)| Step::ImportRoles {
            by,
            user,
            roles
        }),
        (by, 0..64usize).prop_map(|(by, user)| Step::ResetPassword { by, user }),
    ]
}

fn permissions_of(mask: u32) -> Vec<&'static str> {
    Permission::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, p)| p.as_str())
        .collect()
}

/// Every role and user of the organisation, in a stable order.
async fn roles_and_users(
    app: &TestApp,
    org: Uuid,
) -> (Vec<entity::role::Model>, Vec<entity::user::Model>) {
    use sea_orm::QueryOrder;
    let roles = entity::role::Entity::find()
        .filter(entity::role::Column::OrganizationId.eq(org))
        .order_by_asc(entity::role::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    let users = entity::user::Entity::find()
        .filter(entity::user::Column::OrganizationId.eq(org))
        .order_by_asc(entity::user::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    (roles, users)
}

#[tokio::test]
async fn no_sequence_of_operations_raises_anyone_above_every_caller() {
    use Permission::*;
    // Three ordinary users; only the first can manage users and roles.
    let holdings: [(&str, &[Permission]); 3] = [
        ("Manager", &[UsersRead, UsersWrite, RolesManage, ImportsRun]),
        ("Scheduler", &[RolesManage, ProjectsRead, PatientsRead]),
        (
            "Clerk",
            &[UsersRead, UsersWrite, ImportsRun, LocationsManage],
        ),
    ];
    let ceiling: BTreeSet<Permission> = holdings
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    let mut runner = TestRunner::new(Config::default());
    let sequences = proptest::collection::vec(step(), 6..10);
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        for case in 0..6 {
            let steps = sequences.new_tree(&mut runner).unwrap().current();
            let org = app.organization(&format!("Sequence {case}")).await;
            let mut tokens = Vec::new();
            for (i, (name, permissions)) in holdings.iter().enumerate() {
                make_role(&app, org, name, permissions).await;
                let email = format!("caller{i}@sequence{case}.test");
                app.user(org, &email, &[name]).await;
                tokens.push(app.login(&email, PASSWORD).await);
            }
            app.user(org, &format!("other@sequence{case}.test"), &[])
                .await;

            for (number, step) in steps.iter().enumerate() {
                let (roles, users) = roles_and_users(&app, org).await;
                let role_ids = |picks: &[usize]| -> Vec<String> {
                    picks
                        .iter()
                        .map(|i| roles[i % roles.len()].id.to_string())
                        .collect()
                };
                let role_names = |picks: &[usize]| -> String {
                    picks
                        .iter()
                        .map(|i| roles[i % roles.len()].name.clone())
                        .collect::<Vec<_>>()
                        .join(";")
                };
                let user = |i: &usize| &users[i % users.len()];
                let (by, body) = match step {
                    Step::CreateRole { by, permissions } => (by, app.graphql(Some(&tokens[*by]), "mutation($i: RoleInput!) { createRole(input: $i) { id } }", json!({ "i": { "name": format!("R{case}-{number}"), "permissions": permissions_of(*permissions) } })).await.1),
                    Step::UpdateRole { by, role, permissions } => {
                        let role = &roles[role % roles.len()];
                        (by, app.graphql(Some(&tokens[*by]), "mutation($id: ID!, $i: RoleInput!) { updateRole(id: $id, input: $i) { id } }", json!({ "id": role.id.to_string(), "i": { "name": role.name, "permissions": permissions_of(*permissions) } })).await.1)
                    }
                    Step::SetRoles { by, user: u, roles: picks } => (by, app.graphql(Some(&tokens[*by]), "mutation($id: ID!, $r: [ID!]!) { setUserRoles(userId: $id, roleIds: $r) { id } }", json!({ "id": user(u).id.to_string(), "r": role_ids(picks) })).await.1),
                    Step::CreateUser { by, roles: picks } => (by, app.graphql(Some(&tokens[*by]), "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }", json!({ "i": { "email": format!("new{number}@sequence{case}.test"), "firstName": "New", "lastName": "User", "roleIds": role_ids(picks) } })).await.1),
                    Step::ImportRoles { by, user: u, roles: picks } => {
                        let file = format!("email,roles\n{},{}\n", user(u).email, role_names(picks));
                        let (_, body) = app.upload(&tokens[*by], "mutation($input: ImportInput!) { startImport(input: $input) { id } }", json!({ "kind": "USERS", "mapping": [{ "column": "email", "field": "email" }, { "column": "roles", "field": "roles" }] }), "roles.csv", file.into_bytes()).await;
                        if let Some(id) = body["data"]["startImport"]["id"].as_str() {
                            // Read by the job's starter, while they still may.
                            for _ in 0..300 {
                                let (_, job) = app.graphql(Some(&tokens[*by]), "query($id: ID!) { importJob(id: $id) { status } }", json!({ "id": id })).await;
                                if !matches!(job["data"]["importJob"]["status"].as_str(), Some("QUEUED" | "IN_PROGRESS")) {
                                    break;
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        }
                        (by, body)
                    }
                    Step::ResetPassword { by, user: u } => (by, app.graphql(Some(&tokens[*by]), "mutation($id: ID!) { resetUserPassword(id: $id) { generatedPassword } }", json!({ "id": user(u).id.to_string() })).await.1),
                };
                // Refusals of every kind are fine; a server fault is not.
                assert_ne!(
                    error_code(&body),
                    "INTERNAL",
                    "{backend:?} by {by}: {step:?}: {body}"
                );

                let ids: Vec<Uuid> = roles_and_users(&app, org)
                    .await
                    .1
                    .iter()
                    .map(|u| u.id)
                    .collect();
                let held = rollcall::services::roles::permissions_by_user(
                    &app.db,
                    rollcall::db::Scope::of(org),
                    &ids,
                )
                .await
                .unwrap();
                for (user, permissions) in held {
                    let above: Vec<_> = permissions.difference(&ceiling).collect();
                    assert!(
                        above.is_empty(),
                        "{backend:?}: after {:?}, user {user} holds {above:?}, which no caller held",
                        &steps[..=number]
                    );
                }
            }
        }
    }
}
