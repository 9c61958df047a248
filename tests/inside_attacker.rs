//! What a user inside a customer, or a stranger holding a public link, tries
//! beyond the access table: a socket kept open past a demotion, a socket opened
//! from a foreign page with the victim's cookie, thirty guesses at once, and a
//! public form naming someone else's email.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::{HeaderName, HeaderValue},
};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open a `graphql-transport-ws` socket with `headers`, send `connection_init`
/// with `payload`; the socket and the server's first answer.
async fn open_socket(app: &TestApp, headers: &[(&str, &str)], payload: Value) -> (Socket, Message) {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .unwrap();
    let answer = next_message(&mut socket).await;
    (socket, answer)
}

async fn next_message(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("no answer within 5 s")
            .expect("the socket ended")
            .unwrap();
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

fn is_ack(message: &Message) -> bool {
    matches!(message, Message::Text(t) if t.contains("connection_ack"))
}

/// Send `subscribe` with `query`; the server's first answer to it, as JSON.
async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) -> Value {
    socket
        .send(Message::text(
            json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })
                .to_string(),
        ))
        .await
        .unwrap();
    loop {
        let reply: Value = match next_message(socket).await {
            Message::Text(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected an answer to {id}, got {other:?}"),
        };
        // Earlier operations' values and completions may come first.
        if reply["id"] == id && reply["type"] != "complete" {
            return reply;
        }
    }
}

/// The error an operation was refused with: the protocol sends it as an
/// `error` message or as a `next` carrying only errors.
fn refusal(reply: &Value) -> &Value {
    let error = match reply["type"].as_str() {
        Some("error") => &reply["payload"][0],
        Some("next") => {
            assert!(reply["payload"]["data"].is_null(), "{reply}");
            &reply["payload"]["errors"][0]
        }
        _ => panic!("not a refusal: {reply}"),
    };
    assert!(error.is_object(), "{reply}");
    error
}

/// The session cookie a browser would hold after logging in.
async fn cookie_of(app: &TestApp, email: &str) -> String {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": email, "p": PASSWORD } }))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("rollcall_session="))
        .unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[each_backend]
#[tokio::test]
async fn a_foreign_page_cannot_use_the_session_cookie_on_a_websocket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Socket Care").await;
    app.user(org, "nurse@socket.test", &["Provider"]).await;
    let cookie = cookie_of(&app, "nurse@socket.test").await;
    let own = app.address.clone();
    let host = own.trim_start_matches("http://").to_owned();

    let (_, answer) = open_socket(
        &app,
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        json!({}),
    )
    .await;
    match answer {
        Message::Close(Some(frame)) => assert!(frame.reason.contains("not logged in")),
        other => panic!("{backend:?}: a foreign origin got {other:?}"),
    }

    let (_, answer) = open_socket(
        &app,
        &[("Cookie", &cookie), ("Origin", &own), ("Host", &host)],
        json!({}),
    )
    .await;
    assert!(is_ack(&answer), "{backend:?}: our own page: {answer:?}");
}

#[each_backend]
#[tokio::test]
async fn a_socket_runs_subscriptions_only_within_the_http_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.admin_in("Limits Care", "admin@limits.test").await;
    let (mut socket, answer) = open_socket(&app, &[], json!({ "token": token })).await;
    assert!(is_ack(&answer));

    for (id, query) in [
        ("q", "{ me { id } }"),
        (
            "m",
            "mutation { createRole(input: { name: \"Socket\", permissions: [] }) { id } }",
        ),
    ] {
        let reply = subscribe(&mut socket, id, query, Value::Null).await;
        let error = refusal(&reply);
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {reply}"
        );
        assert!(
            error["extensions"]["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("only subscriptions")
        );
    }
    let aliased: String = (0..200)
        .map(|i| format!("a{i}: sessionEvents {{ kind }} "))
        .collect();
    let reply = subscribe(
        &mut socket,
        "aliases",
        &format!("subscription {{ {aliased} }}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        refusal(&reply)["extensions"]["code"],
        "BAD_USER_INPUT",
        "{reply}"
    );
    assert!(reply.to_string().contains("aliases"), "{reply}");
}

#[each_backend]
#[tokio::test]
async fn a_demotion_applies_to_the_next_operation_on_an_open_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Demotion Care").await;
    app.user(org, "keeper@demotion.test", &["Admin"]).await;
    let manager = app.user(org, "manager@demotion.test", &["Admin"]).await;
    let keeper = app.login("keeper@demotion.test", PASSWORD).await;
    let token = app.login("manager@demotion.test", PASSWORD).await;
    let job = app
        .start_staff_import(&keeper, common::staff_file(3, "demotion.test"))
        .await;
    app.finished_job(&keeper, &job).await;
    let (mut socket, answer) = open_socket(&app, &[], json!({ "token": token })).await;
    assert!(is_ack(&answer));
    let progress = "subscription($id: ID!) { importJobProgress(id: $id) { status } }";

    let reply = subscribe(&mut socket, "before", progress, json!({ "id": job })).await;
    assert_eq!(reply["type"], "next", "{backend:?}: {reply}");

    app.ok(
        &keeper,
        "mutation($id: ID!) { setUserRoles(userId: $id, roleIds: []) { id } }",
        json!({ "id": manager.to_string() }),
    )
    .await;
    let reply = subscribe(&mut socket, "after", progress, json!({ "id": job })).await;
    assert_eq!(
        refusal(&reply)["extensions"]["code"],
        "FORBIDDEN",
        "{backend:?}: {reply}"
    );
}

#[each_backend]
#[tokio::test]
async fn thirty_guesses_at_once_are_not_all_tried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Guess Care").await;
    app.user(org, "target@guess.test", &["Billing"]).await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let attempts = (0..30).map(|i| {
        let app = &app;
        async move {
            let password = if i == 29 {
                PASSWORD.to_owned()
            } else {
                format!("wrong guess {i}")
            };
            app.graphql(
                None,
                login,
                json!({ "e": "target@guess.test", "p": password }),
            )
            .await
            .1
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let tried = answers
        .iter()
        .filter(|body| error_code(body) != "RATE_LIMITED")
        .count();
    assert!(
        tried <= rollcall::services::auth::EMAIL_FAILURE_LIMIT as usize,
        "{backend:?}: {tried} of 30 concurrent attempts were judged"
    );
    // The account is locked now, even for its right password.
    let (_, body) = app
        .graphql(
            None,
            login,
            json!({ "e": "target@guess.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");
}

#[each_backend]
#[tokio::test]
async fn wrong_current_passwords_count_toward_the_lockout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Stolen Care").await;
    app.user(org, "victim@stolen.test", &["Billing"]).await;
    let stolen = app.login("victim@stolen.test", PASSWORD).await;
    let change = "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"Another horse 42\") }";
    for i in 0..rollcall::services::auth::EMAIL_FAILURE_LIMIT {
        let (_, body) = app
            .graphql(Some(&stolen), change, json!({ "c": format!("guess {i}") }))
            .await;
        assert_eq!(error_fields(&body)[0].0, "currentPassword", "{body}");
    }
    let (_, body) = app
        .graphql(Some(&stolen), change, json!({ "c": PASSWORD }))
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");
}

#[each_backend]
#[tokio::test]
async fn a_stranger_with_the_public_link_cannot_change_an_enrolled_patient(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, staff) = app.admin_in("Public Care", "coordinator@public.test").await;
    let project = app
        .ok(
            &staff,
            "mutation { createProject(input: { name: \"Flu\" }) { id patientLink } }",
            Value::Null,
        )
        .await["createProject"]
        .clone();
    let enrolled = app
        .ok(
            &staff,
            "mutation($p: ID!) { addProjectPatient(projectId: $p, input: { externalId: \"MRN-7\", firstName: \"Ada\", lastName: \"Lovelace\", email: \"ada@home.test\", phone: \"+12175550100\" }) { id patient { id } } }",
            json!({ "p": project["id"] }),
        )
        .await["addProjectPatient"]
        .clone();
    let link = project["patientLink"].as_str().unwrap();
    let path = format!(
        "/{}",
        link.split_once("://").unwrap().1.split_once('/').unwrap().1
    );
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .form(&[
            ("firstName", "Mallory"),
            ("lastName", "Attacker"),
            ("email", "ada@home.test"),
            ("phone", "+12175550199"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{backend:?}");

    let patient = "query($id: ID!) { patient(id: $id) { firstName lastName phone } }";
    let data = app
        .ok(&staff, patient, json!({ "id": enrolled["patient"]["id"] }))
        .await;
    assert_eq!(
        data["patient"],
        json!({ "firstName": "Ada", "lastName": "Lovelace", "phone": "+12175550100" }),
        "{backend:?}: the stored details stay"
    );
    let enrollments = "query($p: ID!) { project(id: $p) { enrollments { edges { node { id status pendingResponse } } } } }";
    let data = app
        .ok(&staff, enrollments, json!({ "p": project["id"] }))
        .await;
    let node = &data["project"]["enrollments"]["edges"][0]["node"];
    assert_eq!(
        node["status"], "ADDED",
        "{backend:?}: not believed on its own"
    );
    assert_eq!(node["pendingResponse"]["lastName"], "Attacker");
    assert_eq!(node["pendingResponse"]["phone"], "+12175550199");

    // Staff who know better dismiss it; nothing of it remains.
    let data = app
        .ok(
            &staff,
            "mutation($id: ID!) { confirmEnrollmentResponse(id: $id, accept: false) { status pendingResponse } }",
            json!({ "id": enrolled["id"] }),
        )
        .await;
    assert_eq!(
        data["confirmEnrollmentResponse"],
        json!({ "status": "ADDED", "pendingResponse": null })
    );
    let (_, body) = app
        .graphql(
            Some(&staff),
            "mutation($id: ID!) { confirmEnrollmentResponse(id: $id, accept: true) { status } }",
            json!({ "id": enrolled["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{backend:?}: {body}");
}

#[each_backend]
#[tokio::test]
async fn an_email_of_another_organisation_is_refused_without_naming_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ours = app.organization("Ours").await;
    let theirs = app.organization("Theirs").await;
    app.user(ours, "admin@ours.test", &["Admin"]).await;
    app.user(ours, "colleague@ours.test", &[]).await;
    app.user(theirs, "someone@theirs.test", &[]).await;
    let admin = app.login("admin@ours.test", PASSWORD).await;
    let create = "mutation($e: String!) { createUser(input: { email: $e, firstName: \"A\", lastName: \"B\" }) { user { id } } }";
    let mut messages = Vec::new();
    for email in ["colleague@ours.test", "someone@theirs.test"] {
        let (_, body) = app
            .graphql(Some(&admin), create, json!({ "e": email }))
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
        messages.push(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(email, "E"),
        );
    }
    assert_eq!(messages[0], messages[1], "{backend:?}");

    let (_, body) = app
        .upload(
            &admin,
            "mutation($input: ImportInput!) { previewImport(input: $input) { sampleRows { errors { field message } } } }",
            json!({ "kind": "USERS" }),
            "staff.csv",
            b"Email,First Name\nsomeone@theirs.test,Sam\n".to_vec(),
        )
        .await;
    let error = &body["data"]["previewImport"]["sampleRows"][0]["errors"][0];
    assert_eq!(error["field"], "email", "{body}");
    assert!(
        !error["message"].as_str().unwrap().contains("organisation"),
        "{body}"
    );
}

#[each_backend]
#[tokio::test]
async fn an_import_cannot_leave_the_organisation_without_an_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Last Admin Care").await;
    app.user(org, "only@last.test", &["Admin"]).await;
    app.user(org, "nurse@last.test", &[]).await;
    let admin = app.login("only@last.test", PASSWORD).await;
    // Demoting oneself, the only administrator, while promoting nobody.
    let file = b"email,roles\nonly@last.test,Billing\nnurse@last.test,Billing\n".to_vec();
    let mapping =
        json!([{ "column": "email", "field": "email" }, { "column": "roles", "field": "roles" }]);
    let (_, preview) = app
        .upload(
            &admin,
            "mutation($input: ImportInput!) { previewImport(input: $input) { validRows invalidRows sampleRows { rowNumber status errors { field message } } } }",
            json!({ "kind": "USERS", "mapping": mapping }),
            "roles.csv",
            file.clone(),
        )
        .await;
    let preview = &preview["data"]["previewImport"];
    assert_eq!(preview["invalidRows"], 1, "{backend:?}: {preview}");
    assert_eq!(preview["sampleRows"][0]["status"], "FAILED");
    assert_eq!(preview["sampleRows"][0]["errors"][0]["field"], "roles");

    let job = app
        .import_finished(
            &admin,
            json!({ "kind": "USERS", "mapping": mapping }),
            "roles.csv",
            file,
        )
        .await;
    assert_eq!(
        (&job["status"], &job["failedCount"], &job["updatedCount"]),
        (&json!("FINISHED_WITH_ERRORS"), &json!(1), &json!(1)),
        "{backend:?}: {job}"
    );
    // The administrator still is one, and still may act.
    let me = app
        .ok(&admin, "{ me { roles { name } } }", Value::Null)
        .await;
    assert_eq!(me["me"]["roles"][0]["name"], "Admin", "{backend:?}");
}

/// The same across batches, which a job checks while the batch before is
/// still being written: the last administrator's demotion comes in a later
/// batch than the other's, and is refused all the same.
#[each_backend]
#[tokio::test]
async fn an_import_cannot_leave_no_administrator_across_its_batches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Batched Admin Care").await;
    app.user(org, "first@batched.test", &["Admin"]).await;
    app.user(org, "second@batched.test", &["Admin"]).await;
    let admin = app.login("first@batched.test", PASSWORD).await;
    let mut file = String::from("email,roles\nsecond@batched.test,Billing\n");
    for n in 0..1500 {
        file.push_str(&format!("staff{n}@batched.test,Billing\n"));
    }
    file.push_str("first@batched.test,Billing\n");
    let mapping =
        json!([{ "column": "email", "field": "email" }, { "column": "roles", "field": "roles" }]);
    let input = json!({ "kind": "USERS", "mapping": mapping });
    let id = app
        .start_import(&admin, input, "roles.csv", file.into_bytes())
        .await;
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(
        (&job["status"], &job["failedCount"], &job["createdCount"]),
        (&json!("FINISHED_WITH_ERRORS"), &json!(1), &json!(1500)),
        "{backend:?}: {job}"
    );
    let failed = app
        .ok(
            &admin,
            "query($id: ID!) { importJob(id: $id) { rows(status: FAILED, first: 5) { edges { node { rowNumber errors { field message } } } } } }",
            json!({ "id": &id }),
        )
        .await;
    let row = &failed["importJob"]["rows"]["edges"][0]["node"];
    assert_eq!(row["rowNumber"], 1503, "{backend:?}: {failed}");
    assert_eq!(row["errors"][0]["field"], "roles", "{backend:?}: {failed}");
    let me = app
        .ok(&admin, "{ me { roles { name } } }", Value::Null)
        .await;
    assert_eq!(me["me"]["roles"][0]["name"], "Admin", "{backend:?}");
}
