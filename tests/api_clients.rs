//! API clients end to end over HTTP: an administrator creates one, a script
//! calls with its bearer token, the audit trail names the client, a
//! revocation or its creator's demotion applies to the next request on
//! every instance, and the rate limit answers 429. Both backends.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use chrono::{Duration, Utc};
use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: ApiClientInput!) {
    createApiClient(input: $input) {
        token
        client { id name permissions tokenHint actorId active createdBy { email } }
    }
}";
const USERS: &str = "{ users(first: 50) { edges { node { email } } } }";

fn input(name: &str, permissions: &[&str]) -> Value {
    json!({
        "input": {
            "name": name,
            "permissions": permissions,
            "expiresAt": (Utc::now() + Duration::days(90)).to_rfc3339(),
        }
    })
}

async fn create(app: &TestApp, token: &str, name: &str, permissions: &[&str]) -> (String, Value) {
    let data = app.ok(token, CREATE, input(name, permissions)).await;
    let payload = &data["createApiClient"];
    (
        payload["token"].as_str().unwrap().to_owned(),
        payload["client"].clone(),
    )
}

fn emails(data: &Value) -> Vec<String> {
    data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["email"].as_str().unwrap().to_owned())
        .collect()
}

#[each_backend]
#[tokio::test]
async fn a_client_acts_with_its_permissions_and_is_audited_as_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;

    let (token, client) = create(&app, &admin, "HR sync", &["USERS_READ", "USERS_WRITE"]).await;
    assert!(token.starts_with("rcc_"));
    assert!(token.starts_with(client["tokenHint"].as_str().unwrap()));
    assert_eq!(client["createdBy"]["email"], "admin@clinic.test");
    assert_eq!(client["active"], true);

    // The list never shows the token again.
    let listed = app
        .ok(
            &admin,
            "{ apiClients { id name tokenHint lastUsedAt } }",
            json!({}),
        )
        .await;
    assert!(!listed.to_string().contains(&token));
    assert_eq!(listed["apiClients"][0]["lastUsedAt"], Value::Null);

    // The client reads and writes staff, with no cookie ever set.
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .json(&json!({ "query": USERS }))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(emails(&body["data"]), ["admin@clinic.test"], "{body}");
    let created = app
        .ok(
            &token,
            "mutation { createUser(input: { email: \"nurse@clinic.test\", firstName: \"Nia\", lastName: \"Ode\" }) { user { id } } }",
            json!({}),
        )
        .await;
    let nurse = created["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Its service account is nobody's staff: not listed, not reachable.
    let staff = app.ok(&admin, USERS, json!({})).await;
    assert_eq!(emails(&staff).len(), 2);
    let (_, body) = app
        .graphql(
            Some(&admin),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": client["actorId"] }),
        )
        .await;
    assert!(body["data"]["user"].is_null(), "{body}");

    // The audit trail names the client as the actor of what it did.
    let audit = app
        .ok(
            &admin,
            "{ auditEvents(first: 20) { edges { node { action targetId actor { id firstName } } } } }",
            json!({}),
        )
        .await;
    let event = audit["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .find(|e| e["action"] == "user.create")
        .unwrap()
        .clone();
    assert_eq!(event["targetId"], nurse.as_str());
    assert_eq!(event["actor"]["id"], client["actorId"]);
    assert_eq!(event["actor"]["firstName"], "HR sync");

    // Beyond its permissions, and what only a person does, are refused.
    for query in [
        "{ auditEvents(first: 1) { edges { node { id } } } }",
        "{ me { id } }",
        "{ mySessions { id } }",
        "mutation { logout }",
        "mutation { startTotpEnrollment { secret } }",
    ] {
        let (_, body) = app.graphql(Some(&token), query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
    }

    let listed = app
        .ok(&admin, "{ apiClients { lastUsedAt } }", json!({}))
        .await;
    assert!(listed["apiClients"][0]["lastUsedAt"].is_string());

    // Every call is audited as the client, reads included.
    let calls: Vec<String> = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("api_client.call"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(
                e.actor_user_id.map(|id| id.to_string()),
                client["actorId"].as_str().map(str::to_owned)
            );
            e.changes.unwrap()["call"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        calls.iter().any(|c| c == "GraphQL query anonymous"),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c == "GraphQL mutation anonymous"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_client_token_opens_no_websocket() {
    let app = TestApp::spawn(common::Backend::Embedded).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let (token, _) = create(&app, &admin, "Importer", &["USERS_READ"]).await;
    // Neither in connection_init nor as the upgrade's bearer token.
    for (init, bearer) in [(token.as_str(), None), ("", Some(token.as_str()))] {
        let reason = app.websocket_refusal(init, bearer).await;
        assert!(reason.contains("not logged in"), "{reason}");
    }
}

#[each_backend]
#[tokio::test]
async fn nobody_gives_a_client_what_they_do_not_hold(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let role = app
        .ok(
            &admin,
            "mutation { createRole(input: { name: \"Integrations\", permissions: [ORGANIZATION_MANAGE, USERS_READ] }) { id } }",
            json!({}),
        )
        .await;
    let manager_id = app.user(org, "it@clinic.test", &[]).await;
    app.ok(
        &admin,
        "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }",
        json!({ "u": manager_id.to_string(), "r": [role["createRole"]["id"]] }),
    )
    .await;
    let manager = app.login("it@clinic.test", PASSWORD).await;

    let (_, body) = app
        .graphql(
            Some(&manager),
            CREATE,
            input("Audit export", &["USERS_READ", "AUDIT_READ"]),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body.to_string().contains("AUDIT_READ"));

    let mut past = input("Late", &["USERS_READ"]);
    past["input"]["expiresAt"] = json!((Utc::now() - Duration::minutes(1)).to_rfc3339());
    let (_, body) = app.graphql(Some(&manager), CREATE, past).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(error_fields(&body)[0].0, "expiresAt");
    let mut far = input("Forever", &["USERS_READ"]);
    far["input"]["expiresAt"] = json!((Utc::now() + Duration::days(800)).to_rfc3339());
    let (_, body) = app.graphql(Some(&manager), CREATE, far).await;
    assert_eq!(error_fields(&body)[0].0, "expiresAt");

    // A client cannot mint clients beyond itself either.
    let (token, _) = create(
        &app,
        &manager,
        "Directory",
        &["USERS_READ", "ORGANIZATION_MANAGE"],
    )
    .await;
    let (_, body) = app
        .graphql(Some(&token), CREATE, input("Wider", &["USERS_WRITE"]))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // The creator demoted: the client loses what they lost, at once.
    app.ok(&token, USERS, json!({})).await;
    app.ok(
        &admin,
        "mutation($u: ID!) { setUserRoles(userId: $u, roleIds: []) { id } }",
        json!({ "u": manager_id.to_string() }),
    )
    .await;
    let (_, body) = app.graphql(Some(&token), USERS, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

#[each_backend]
#[tokio::test]
async fn a_revoked_client_is_refused_at_once_on_every_instance(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let peer = app.peer().await;
    let other = peer.as_ref().unwrap_or(&app);
    let (org, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let (token, client) = create(&app, &admin, "Okta", &["USERS_READ"]).await;
    other.ok(&token, USERS, json!({})).await;

    let revoked = app
        .ok(
            &admin,
            "mutation($id: ID!) { revokeApiClient(id: $id) { active revokedAt } }",
            json!({ "id": client["id"] }),
        )
        .await;
    assert_eq!(revoked["revokeApiClient"]["active"], false);
    let (_, body) = other.graphql(Some(&token), USERS, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // Downloads take the same door.
    let response = other
        .client
        .get(format!("{}/exports/users.csv", other.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A token of another shape is no session either.
    let (_, body) = app
        .graphql(Some(&format!("rcc_{}", "x".repeat(43))), USERS, json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(
        app.audit_actions(org)
            .await
            .contains(&"api_client.revoke".to_owned())
    );
}

#[each_backend]
#[tokio::test]
async fn each_client_is_rate_limited_across_instances(backend: Backend) {
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage.clone(), |c| c.api_client_rate_limit = 5).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let (busy, _) = create(&app, &admin, "Busy", &["USERS_READ"]).await;
    let (calm, _) = create(&app, &admin, "Calm", &["USERS_READ"]).await;
    for _ in 0..5 {
        app.ok(&busy, USERS, json!({})).await;
    }
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&busy)
        .json(&json!({ "query": USERS }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "RATE_LIMITED");
    // Another client is not held back by it.
    app.ok(&calm, USERS, json!({})).await;
}
