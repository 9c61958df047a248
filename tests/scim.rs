//! SCIM 2.0 end to end: the `scim2-tester` conformance suite against the
//! real server, the request sequences Entra ID and Okta send (from their
//! published SCIM documentation), deprovisioning that ends a session and
//! its subscription on another instance, and the access rule at this door.
//! Both backends.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{process::Command, time::Duration};

use chrono::Utc;
use common::{Backend, PASSWORD, TestApp, error_code};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// An organisation with an administrator and an API client holding `permissions`.
struct Tenant {
    org: uuid::Uuid,
    admin: String,
    token: String,
}

async fn tenant(app: &TestApp, permissions: &[&str]) -> Tenant {
    let (org, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let data = app
        .ok(
            &admin,
            "mutation($i: ApiClientInput!) { createApiClient(input: $i) { token } }",
            json!({ "i": {
                "name": "Provisioning",
                "permissions": permissions,
                "expiresAt": (Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
            } }),
        )
        .await;
    Tenant {
        org,
        admin,
        token: data["createApiClient"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

const ALL: &[&str] = &["USERS_READ", "USERS_WRITE", "ROLES_MANAGE"];
/// What a client needs to manage clinical staff: every permission they hold.
const CLINICAL: &[&str] = &[
    "USERS_READ",
    "USERS_WRITE",
    "ROLES_MANAGE",
    "PROVIDERS_READ",
    "PROJECTS_READ",
    "PATIENTS_READ",
    "PATIENTS_WRITE",
    "PATIENTS_SELF_ASSIGN",
    "BREAK_GLASS",
];

/// A SCIM request; the status, headers and JSON body.
async fn scim(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .client
        .request(method, format!("{}/scim/v2{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = scim(app, token, reqwest::Method::GET, path, None).await;
    (status, body)
}

async fn send(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = scim(
        app,
        token,
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        Some(body),
    )
    .await;
    (status, body)
}

fn filter(expression: &str) -> String {
    url::form_urlencoded::byte_serialize(expression.as_bytes()).collect()
}

#[each_backend]
#[tokio::test]
async fn the_scim2_tester_conformance_suite_passes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = tenant(&app, ALL).await;
    let base = format!("{}/scim/v2", app.address);
    let token = tenant.token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(common::python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/scim_conformance.py"
            ))
            .arg(base)
            .arg(token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{backend:?}:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(" 0 failed"), "{report}");
}

/// Microsoft's "Develop a SCIM endpoint" requests, in the order the Entra
/// ID provisioning service sends them.
#[each_backend]
#[tokio::test]
async fn the_requests_entra_id_sends_provision_and_deprovision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let peer = app.peer().await;
    let other = peer.as_ref().unwrap_or(&app);
    let t = tenant(&app, ALL).await;
    let user_name = "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081";

    // Is the user there? Not yet.
    let (status, found) = get(
        &app,
        &t.token,
        &format!(
            "/Users?filter={}",
            filter(&format!("userName eq \"{user_name}\""))
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["totalResults"], 0);
    assert_eq!(found["Resources"], json!([]));

    let (status, created) = send(
        &app,
        &t.token,
        "POST",
        "/Users",
        json!({
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": user_name,
            "active": true,
            "emails": [{ "primary": true, "type": "work", "value": "Test_User_11bb6afb@testuser.com" }],
            "meta": { "resourceType": "User" },
            "name": { "formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName" },
            "roles": [],
            ENTERPRISE: { "employeeNumber": "00042", "department": "ICU" },
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], user_name);
    assert_eq!(
        created["emails"][0]["value"],
        "test_user_11bb6afb@testuser.com"
    );
    assert_eq!(created[ENTERPRISE]["employeeNumber"], "00042");

    // The same userName again is refused as SCIM says.
    let (status, conflict) = send(
        &app,
        &t.token,
        "POST",
        "/Users",
        json!({
            "schemas": [USER], "userName": user_name.to_uppercase(),
            "name": { "givenName": "A", "familyName": "B" },
            "emails": [{ "value": "other@testuser.com" }],
        }),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["scimType"], "uniqueness");

    let (_, found) = get(
        &app,
        &t.token,
        &format!(
            "/Users?filter={}",
            filter(&format!("userName eq \"{user_name}\""))
        ),
    )
    .await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], id.as_str());

    let (status, patched) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Users/{id}"),
        json!({
            "schemas": [PATCH],
            "Operations": [
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@testuser.com" },
                { "op": "Replace", "path": "name.familyName", "value": "updatedFamilyName" },
            ],
        }),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["emails"][0]["value"], "updatedemail@testuser.com");
    assert_eq!(patched["name"]["familyName"], "updatedFamilyName");

    // A group (a role) with the user as member.
    let (status, group) = send(
        &app,
        &t.token,
        "POST",
        "/Groups",
        json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": { "resourceType": "Group" },
            "schemas": [GROUP],
        }),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Groups/{group_id}"),
        json!({ "schemas": [PATCH], "Operations": [
            { "op": "Add", "path": "members", "value": [{ "$ref": null, "value": id }] },
        ] }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, user) = get(&app, &t.token, &format!("/Users/{id}")).await;
    assert_eq!(user["groups"][0]["value"], group_id.as_str());
    let (_, groups) = get(
        &app,
        &t.token,
        &format!(
            "/Groups?excludedAttributes=members&filter={}",
            filter("displayName eq \"displayName\"")
        ),
    )
    .await;
    assert_eq!(groups["totalResults"], 1);
    assert!(groups["Resources"][0].get("members").is_none());
    let (status, _) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Groups/{group_id}"),
        json!({ "schemas": [PATCH], "Operations": [
            { "op": "Remove", "path": "members", "value": [{ "$ref": null, "value": id }] },
        ] }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, user) = get(&app, &t.token, &format!("/Users/{id}")).await;
    assert!(user.get("groups").is_none(), "{user}");

    // Disabled, then deleted: gone from SCIM, kept deactivated for history.
    let (status, disabled) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Users/{id}"),
        json!({ "schemas": [PATCH], "Operations": [{ "op": "Replace", "path": "active", "value": false }] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(disabled["active"], false);
    let (status, _, _) = scim(
        other,
        &t.token,
        reqwest::Method::DELETE,
        &format!("/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = get(&app, &t.token, &format!("/Users/{id}")).await;
    assert_eq!(status, 404);
    let staff = app
        .ok(
            &t.admin,
            "query($id: ID!) { user(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(staff["user"]["status"], "INACTIVE");

    let actions = app.audit_actions(t.org).await;
    for action in [
        "user.create",
        "user.update",
        "role.create",
        "user.set_roles",
        "user.deactivate",
        "user.deprovision",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
}

/// Okta's "SCIM 2.0 protocol reference" requests: match, create, replace,
/// deactivate by PATCH without a path, and its group pushes.
#[each_backend]
#[tokio::test]
async fn the_requests_okta_sends_keep_users_and_groups_in_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = tenant(&app, ALL).await;
    let (_, found) = get(
        &app,
        &t.token,
        &format!(
            "/Users?filter={}&startIndex=1&count=100",
            filter("userName eq \"test.user@okta.local\"")
        ),
    )
    .await;
    assert_eq!(found["totalResults"], 0);
    let user = json!({
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": { "givenName": "Test", "familyName": "User" },
        "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true,
    });
    let (status, created) = send(&app, &t.token, "POST", "/Users", user.clone()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, read) = get(&app, &t.token, &format!("/Users/{id}")).await;
    assert_eq!(read["userName"], "test.user@okta.local");
    assert_eq!(read["externalId"], "00ujl29u0le5T6Aj10h7");

    let mut replaced = user.clone();
    replaced["id"] = json!(id);
    replaced["name"]["givenName"] = json!("Another");
    replaced["title"] = json!("Registered Nurse");
    let (status, put) = send(&app, &t.token, "PUT", &format!("/Users/{id}"), replaced).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["name"]["givenName"], "Another");
    assert_eq!(put["title"], "Registered Nurse");

    // A group push: create, rename without a path, add, remove by filter.
    let (status, group) = send(
        &app,
        &t.token,
        "POST",
        "/Groups",
        json!({
            "schemas": [GROUP], "displayName": "Test SCIMv2", "members": [],
        }),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    for operations in [
        json!([{ "op": "replace", "value": { "id": gid, "displayName": "Test SCIMv2 renamed" } }]),
        json!([{ "op": "add", "path": "members", "value": [{ "value": id, "display": "test.user@okta.local" }] }]),
    ] {
        let (status, body) = send(
            &app,
            &t.token,
            "PATCH",
            &format!("/Groups/{gid}"),
            json!({ "schemas": [PATCH], "Operations": operations }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, group) = get(&app, &t.token, &format!("/Groups/{gid}")).await;
    assert_eq!(group["displayName"], "Test SCIMv2 renamed");
    assert_eq!(group["members"][0]["value"], id.as_str());
    let (_, holders) = get(
        &app,
        &t.token,
        &format!(
            "/Groups?filter={}",
            filter(&format!("members[value eq \"{id}\"]"))
        ),
    )
    .await;
    assert_eq!(holders["totalResults"], 1);
    let (status, _) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Groups/{gid}"),
        json!({
            "schemas": [PATCH],
            "Operations": [{ "op": "remove", "path": format!("members[value eq \"{id}\"]") }],
        }),
    )
    .await;
    assert_eq!(status, 200);

    let (status, off) = send(
        &app,
        &t.token,
        "PATCH",
        &format!("/Users/{id}"),
        json!({
            "schemas": [PATCH], "Operations": [{ "op": "replace", "value": { "active": false } }],
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(off["active"], false);
    let (_, inactive) = get(
        &app,
        &t.token,
        &format!("/Users?filter={}", filter("active eq false")),
    )
    .await;
    assert_eq!(inactive["totalResults"], 1);

    let (status, _, _) = scim(
        &app,
        &t.token,
        reqwest::Method::DELETE,
        &format!("/Groups/{gid}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = get(&app, &t.token, &format!("/Groups/{gid}")).await;
    assert_eq!(status, 404);
}

/// A `graphql-transport-ws` socket with `sessionEvents` subscribed.
async fn watch_session(
    app: &TestApp,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    for message in [
        json!({ "type": "connection_init", "payload": { "token": token } }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { sessionEvents { kind } }" } }),
    ] {
        socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }
    socket
}

#[each_backend]
#[tokio::test]
async fn deprovisioning_refuses_the_next_request_and_closes_subscriptions_on_every_instance(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let peer = app.peer().await;
    let other = peer.as_ref().unwrap_or(&app);
    let t = tenant(&app, CLINICAL).await;
    app.user(t.org, "nurse@clinic.test", &["Clinical Provider"])
        .await;
    let nurse = other.login("nurse@clinic.test", PASSWORD).await;
    let mut socket = watch_session(other, &nurse).await;
    other.ok(&nurse, "{ me { id } }", json!({})).await;

    // The identity provider matches the existing account and turns it off.
    let (_, found) = get(
        &app,
        &t.token,
        &format!(
            "/Users?filter={}",
            filter("emails[type eq \"work\" and value eq \"NURSE@clinic.test\"]")
        ),
    )
    .await;
    assert_eq!(found["totalResults"], 1, "{found}");
    let id = found["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(&app, &t.token, "PATCH", &format!("/Users/{id}"), json!({
        "schemas": [PATCH], "Operations": [{ "op": "Replace", "path": "active", "value": "False" }],
    })).await;
    assert_eq!(status, 200);

    let (_, body) = other
        .graphql(Some(&nurse), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Text(text) if text.contains("REVOKED") => return true,
                Message::Close(_) => return true,
                _ => {}
            }
        }
        true
    })
    .await;
    assert!(ended.is_ok(), "the subscription stayed open");
}

#[each_backend]
#[tokio::test]
async fn the_access_rule_holds_at_the_scim_door(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = tenant(&app, &["USERS_READ", "USERS_WRITE", "ROLES_MANAGE"]).await;
    let admin_id = app
        .user(t.org, "second-admin@clinic.test", &["Admin"])
        .await;
    let nurse_id = app.user(t.org, "nurse@clinic.test", &[]).await;

    // An administrator holds more than the client: not theirs to change.
    let (status, body) = send(&app, &t.token, "PATCH", &format!("/Users/{admin_id}"), json!({
        "schemas": [PATCH], "Operations": [{ "op": "replace", "path": "active", "value": false }],
    })).await;
    assert_eq!(status, 403, "{body}");
    // Nor the Admin role to give.
    let (_, admins) = get(
        &app,
        &t.token,
        &format!("/Groups?filter={}", filter("displayName eq \"admin\"")),
    )
    .await;
    let admin_group = admins["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = send(&app, &t.token, "PATCH", &format!("/Groups/{admin_group}"), json!({
        "schemas": [PATCH], "Operations": [{ "op": "add", "path": "members", "value": [{ "value": nurse_id.to_string() }] }],
    })).await;
    assert_eq!(status, 403, "{body}");
    let (_, nurse) = get(&app, &t.token, &format!("/Users/{nurse_id}")).await;
    assert!(nurse.get("groups").is_none());

    // A client that may only read writes nothing.
    let reader = app
        .ok(&t.admin, "mutation($i: ApiClientInput!) { createApiClient(input: $i) { token } }",
            json!({ "i": { "name": "Reader", "permissions": ["USERS_READ"], "expiresAt": (Utc::now() + chrono::Duration::days(1)).to_rfc3339() } }))
        .await["createApiClient"]["token"].as_str().unwrap().to_owned();
    let (status, _) = send(&app, &reader, "POST", "/Users", json!({
        "schemas": [USER], "userName": "x@clinic.test", "name": { "givenName": "X", "familyName": "Y" },
    })).await;
    assert_eq!(status, 403);

    // Bad input answers in SCIM's own terms; a session token is no client.
    let (status, body) = get(
        &app,
        &t.token,
        &format!("/Users?filter={}", filter("userName zz \"a\"")),
    )
    .await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidFilter"))
    );
    let (status, body) = get(
        &app,
        &t.token,
        &format!("/Users?filter={}", filter("password eq \"a\"")),
    )
    .await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidFilter"))
    );
    let (status, body) = send(
        &app,
        &t.token,
        "POST",
        "/Users",
        json!({ "schemas": [USER], "userName": "nobody" }),
    )
    .await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidValue")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("emails"));
    let (status, _) = get(&app, &t.token, "/Users/not-an-id").await;
    assert_eq!(status, 404);
    let (status, body) = get(&app, &t.admin, "/Users").await;
    assert_eq!(status, 401, "{body}");

    // ETags: a stale If-Match is refused, If-None-Match answers 304.
    let (_, headers, _) = scim(
        &app,
        &t.token,
        reqwest::Method::GET,
        &format!("/Users/{nurse_id}"),
        None,
    )
    .await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = app
        .client
        .get(format!("{}/scim/v2/Users/{nurse_id}", app.address))
        .bearer_auth(&t.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .map(|r| (r.status().as_u16(), (), ()))
        .unwrap();
    assert_eq!(status, 304);
    let stale = app
        .client
        .patch(format!("{}/scim/v2/Users/{nurse_id}", app.address))
        .bearer_auth(&t.token)
        .header("if-match", "W/\"0000\"")
        .body(json!({ "schemas": [PATCH], "Operations": [{ "op": "replace", "path": "title", "value": "RN" }] }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let fresh = app
        .client
        .patch(format!("{}/scim/v2/Users/{nurse_id}", app.address))
        .bearer_auth(&t.token)
        .header("if-match", &etag)
        .body(json!({ "schemas": [PATCH], "Operations": [{ "op": "replace", "path": "title", "value": "RN" }] }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    assert_ne!(fresh.headers()["etag"].to_str().unwrap(), etag);
}
