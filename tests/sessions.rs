//! Sessions, real-time revocation, the password-change gate, brute-force lockout
//! and tenant isolation, end to end over HTTP and websockets.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{Backend, PASSWORD, TestApp, error_code};
use futures_util::StreamExt;
use serde_json::{Value, json};

#[each_backend]
#[tokio::test]
async fn a_cookie_session_works_for_json_and_needs_the_csrf_header_otherwise(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Cookie Clinic").await;
    app.user(org, "nurse@cookie.test", &["Clinical Provider"])
        .await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let login = browser
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "mutation { login(email: \"nurse@cookie.test\", password: \"Correct horse 42\") { user { email } } }" }))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("rollcall_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }

    let me = |client: &reqwest::Client| {
        client
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": "{ me { email } }" }))
            .send()
    };
    let body: Value = me(&browser).await.unwrap().json().await.unwrap();
    assert_eq!(
        body["data"]["me"]["email"], "nurse@cookie.test",
        "{backend:?}: {body}"
    );

    // A GET carrying the cookie without the CSRF header is refused; with it, served.
    let url = format!("{}/graphql?query=%7Bme%7Bemail%7D%7D", app.address);
    let refused = browser.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let allowed: Value = browser
        .get(&url)
        .header("x-rollcall-csrf", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["data"]["me"]["email"], "nurse@cookie.test");

    // Logout ends the session and clears the cookie.
    let logout = browser
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "mutation { logout }" }))
        .send()
        .await
        .unwrap();
    assert!(
        logout
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let body: Value = me(&browser).await.unwrap().json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[each_backend]
#[tokio::test]
async fn a_generated_password_must_be_changed_before_anything_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hasher = rollcall::auth::password::Hasher::new(1);
    let created = rollcall::services::accounts::create_super_admin(
        &app.db,
        &hasher,
        "root@ops.test",
        None,
        "Ops",
    )
    .await
    .unwrap();
    let generated = created.generated_password.unwrap();

    let other = app.login("root@ops.test", generated.expose()).await;
    let token = app.login("root@ops.test", generated.expose()).await;
    let (_, body) = app
        .graphql(Some(&token), "{ roles { name } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "PASSWORD_CHANGE_REQUIRED", "{backend:?}");
    let (_, body) = app
        .graphql(Some(&token), "{ me { mustChangePassword } }", Value::Null)
        .await;
    assert_eq!(body["data"]["me"]["mustChangePassword"], true);

    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let (_, body) = app
        .graphql(
            Some(&token),
            change,
            json!({ "c": generated.expose(), "n": "password1" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"],
        "newPassword"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            change,
            json!({ "c": generated.expose(), "n": "a fresh secret 77" }),
        )
        .await;
    assert_eq!(body["data"]["changePassword"], true, "{body}");

    // This session goes on and may do everything; the other one ended.
    let (_, body) = app
        .graphql(Some(&token), "{ roles { name } }", Value::Null)
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = app
        .graphql(Some(&other), "{ me { id } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[each_backend]
#[tokio::test]
async fn a_revoked_session_is_refused_on_the_next_request_on_every_instance(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.peer().await;
    let org = first.organization("Revocation Health").await;
    first.user(org, "admin@revoke.test", &["Admin"]).await;
    let staff = first.user(org, "staff@revoke.test", &["Billing"]).await;
    let admin = first.login("admin@revoke.test", PASSWORD).await;
    let victim = first.login("staff@revoke.test", PASSWORD).await;
    let on_second = second.as_ref().unwrap_or(&first);
    let (_, body) = on_second
        .graphql(Some(&victim), "{ me { email } }", Value::Null)
        .await;
    assert_eq!(body["data"]["me"]["email"], "staff@revoke.test");

    let (_, body) = first
        .graphql(
            Some(&admin),
            "query($u: ID!) { userSessions(userId: $u) { id current } }",
            json!({ "u": staff.to_string() }),
        )
        .await;
    let sessions = body["data"]["userSessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{body}");
    let (_, body) = first
        .graphql(
            Some(&admin),
            "mutation($u: ID!) { revokeUserSessions(userId: $u) }",
            json!({ "u": staff.to_string() }),
        )
        .await;
    assert_eq!(body["data"]["revokeUserSessions"], 1, "{body}");

    let (_, body) = on_second
        .graphql(Some(&victim), "{ me { email } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{backend:?}");

    let (_, body) = first
        .graphql(Some(&admin), "query($a: String) { auditEvents(filter: { action: $a }) { totalCount edges { node { actor { email } targetId } } } }", json!({ "a": "session.revoke_user" }))
        .await;
    assert_eq!(body["data"]["auditEvents"]["totalCount"], 1, "{body}");
    assert_eq!(
        body["data"]["auditEvents"]["edges"][0]["node"]["targetId"],
        staff.to_string()
    );
}

#[each_backend]
#[tokio::test]
async fn my_sessions_lists_each_login_and_marks_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Sessions Ltd").await;
    app.user(org, "two@sessions.test", &["Billing"]).await;
    let first = app.login("two@sessions.test", PASSWORD).await;
    let second = app.login("two@sessions.test", PASSWORD).await;
    assert_ne!(first, second, "every login gets a new token");
    let (_, body) = app
        .graphql(
            Some(&second),
            "{ mySessions { id current createdAt lastSeenAt expiresAt ipAddress userAgent } }",
            Value::Null,
        )
        .await;
    let sessions = body["data"]["mySessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{backend:?}: {body}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ipAddress"], "127.0.0.1");
    for session in sessions {
        assert_ne!(
            session["id"].as_str(),
            Some(first.as_str()),
            "ids must not be tokens"
        );
    }

    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].clone();
    let (_, body) = app
        .graphql(
            Some(&second),
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": other }),
        )
        .await;
    assert_eq!(body["data"]["revokeSession"], true);
    let (_, body) = app
        .graphql(Some(&first), "{ me { id } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[each_backend]
#[tokio::test]
async fn ten_failed_logins_lock_the_email_even_for_the_right_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Lockout Care").await;
    app.user(org, "target@lockout.test", &["Billing"]).await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    for attempt in 0..10 {
        let email = if attempt % 2 == 0 {
            "Target@Lockout.test"
        } else {
            "target@lockout.test"
        };
        let (_, body) = app
            .graphql(None, login, json!({ "e": email, "p": "wrong password 1" }))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}");
    }
    let (_, body) = app
        .graphql(
            None,
            login,
            json!({ "e": "target@lockout.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");
    assert!(
        body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 800
    );

    // An unknown email answers exactly like a wrong password, and is counted too.
    let (_, unknown) = app
        .graphql(
            None,
            login,
            json!({ "e": "nobody@lockout.test", "p": "wrong password 1" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    assert_eq!(
        unknown["errors"][0]["message"],
        "Invalid email or password."
    );

    // Aliased logins count one attempt each.
    let aliased: String = (0..10)
        .map(|i| {
            format!(
                "a{i}: login(email: \"ghost@lockout.test\", password: \"nope nope 1\") {{ token }} "
            )
        })
        .collect();
    app.graphql(None, &format!("mutation {{ {aliased} }}"), Value::Null)
        .await;
    let (_, body) = app
        .graphql(
            None,
            login,
            json!({ "e": "ghost@lockout.test", "p": "nope nope 1" }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
}

#[each_backend]
#[tokio::test]
async fn another_organisations_records_are_indistinguishable_from_missing_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ours = app.organization("Ours").await;
    let theirs = app.organization("Theirs").await;
    app.user(ours, "admin@ours.test", &["Admin"]).await;
    let foreign = app.user(theirs, "admin@theirs.test", &["Admin"]).await;
    let foreign_token = app.login("admin@theirs.test", PASSWORD).await;
    let (_, body) = app
        .graphql(Some(&foreign_token), "{ mySessions { id } }", Value::Null)
        .await;
    let foreign_session = body["data"]["mySessions"][0]["id"].clone();
    let admin = app.login("admin@ours.test", PASSWORD).await;
    let id = json!({ "id": foreign.to_string() });

    let (_, body) = app
        .graphql(
            Some(&admin),
            "query($id: ID!) { user(id: $id) { email } }",
            id.clone(),
        )
        .await;
    assert!(
        body["data"]["user"].is_null() && body["errors"].is_null(),
        "{backend:?}: {body}"
    );
    let (_, body) = app
        .graphql(
            Some(&admin),
            "query($id: ID!) { userSessions(userId: $id) { id } }",
            id.clone(),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (_, body) = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { revokeUserSessions(userId: $id) }",
            id.clone(),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (_, body) = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": foreign_session }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (_, body) = app
        .graphql(
            Some(&admin),
            "query($id: ID) { organization(id: $id) { name } }",
            json!({ "id": theirs.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (_, body) = app
        .graphql(
            Some(&admin),
            "{ users { totalCount edges { node { email } } } }",
            Value::Null,
        )
        .await;
    assert_eq!(body["data"]["users"]["totalCount"], 1, "{body}");

    // Their session survived every attempt.
    let (_, body) = app
        .graphql(Some(&foreign_token), "{ me { email } }", Value::Null)
        .await;
    assert_eq!(body["data"]["me"]["email"], "admin@theirs.test");
}

#[tokio::test]
async fn an_open_subscription_is_told_and_closed_when_its_session_is_revoked() {
    use graphql_client::GraphQLQuery;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

    struct SessionEvents;
    impl GraphQLQuery for SessionEvents {
        type Variables = ();
        type ResponseData = Value;
        fn build_query(variables: ()) -> graphql_client::QueryBody<()> {
            graphql_client::QueryBody {
                variables,
                query: "subscription Watch { sessionEvents { kind sessionId } }",
                operation_name: "Watch",
            }
        }
    }

    for backend in common::backends().await {
        let watcher = TestApp::spawn(backend).await;
        // Revoke from another instance where instances share Redis.
        let revoker = watcher.peer().await;
        let org = watcher.organization("Live Clinic").await;
        watcher.user(org, "admin@live.test", &["Admin"]).await;
        let user = watcher.user(org, "mobile@live.test", &["Provider"]).await;
        let token = watcher.login("mobile@live.test", PASSWORD).await;
        let admin = watcher.login("admin@live.test", PASSWORD).await;

        let mut request = watcher.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (connection, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (client, actor) = graphql_ws_client::Client::build(connection)
            .payload(json!({ "token": token }))
            .unwrap()
            .await
            .unwrap();
        tokio::spawn(actor.into_future());
        let mut events = client
            .subscribe(graphql_ws_client::graphql::StreamingOperation::<
                SessionEvents,
            >::new(()))
            .await
            .unwrap();
        // The protocol acknowledges no subscription: give the server the time to
        // start watching, on a loaded machine too, before the revocation.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let by = revoker.as_ref().unwrap_or(&watcher);
        let (_, body) = by
            .graphql(
                Some(&admin),
                "mutation($u: ID!) { revokeUserSessions(userId: $u) }",
                json!({ "u": user.to_string() }),
            )
            .await;
        assert_eq!(body["data"]["revokeUserSessions"], 1);

        let event = tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .expect("no event within a second");
        let event = event.unwrap().unwrap();
        assert!(event.errors.is_none(), "{:?}", event.errors);
        assert_eq!(
            event.data.unwrap()["sessionEvents"]["kind"],
            "REVOKED",
            "{backend:?}"
        );
        let closed = tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .expect("socket not closed within a second");
        assert!(closed.is_none(), "{backend:?}: the stream must end");
    }
}

#[tokio::test]
async fn a_websocket_without_a_valid_session_is_refused() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let reason = app.websocket_refusal(&"x".repeat(43), None).await;
    assert!(reason.contains("not logged in"), "{reason}");
}

#[each_backend]
#[tokio::test]
async fn a_hundred_failed_logins_from_one_address_lock_that_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Spray Care").await;
    app.user(org, "real@spray.test", &["Billing"]).await;
    // A password spray: one attempt for each of 100 emails, ten to a request.
    for round in 0..10 {
        let aliased: String = (0..10)
            .map(|i| format!("a{i}: login(email: \"user{round}x{i}@spray.test\", password: \"guess guess 1\") {{ token }} "))
            .collect();
        let (_, body) = app
            .graphql(None, &format!("mutation {{ {aliased} }}"), Value::Null)
            .await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "{backend:?} round {round}: {body}"
        );
    }
    // Now even a real account with its right password is refused from here.
    let (_, body) = app
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "real@spray.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");
}

#[each_backend]
#[tokio::test]
async fn only_configured_origins_may_call_with_credentials(backend: Backend) {
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage, |c| {
        c.cors_origins = vec!["https://admin.riverside.example".to_owned()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-rollcall-csrf",
            )
            .send()
    };
    let allowed = preflight("https://admin.riverside.example").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://admin.riverside.example"),
        "{backend:?}"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{backend:?}: a foreign origin was allowed"
    );
}

/// `me` is answered from the record read with the session, without a query of
/// its own, yet never stale: a change by an admin, by the user themself or a
/// new login shows on the very next request, on every instance.
#[tokio::test]
async fn me_is_current_on_every_instance_after_any_change() {
    const ME: &str = "{ me { email firstName title lastLoginAt } }";
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let peer = app.peer().await;
        let other = peer.as_ref().unwrap_or(&app);
        let org = app.organization("Current Clinic").await;
        app.user(org, "admin@current.test", &["Admin"]).await;
        let nurse = app
            .user(org, "nurse@current.test", &["Clinical Provider"])
            .await;
        let admin = app.login("admin@current.test", PASSWORD).await;
        let token = app.login("nurse@current.test", PASSWORD).await;
        let before = app.ok(&token, ME, Value::Null).await;
        assert_eq!(other.ok(&token, ME, Value::Null).await, before);

        app.ok(
            &admin,
            "mutation($id: ID!) { updateUser(id: $id, input: { email: \"rn@current.test\", firstName: \"Renamed\" }) { id } }",
            json!({ "id": nurse }),
        )
        .await;
        for instance in [&app, other] {
            let me = instance.ok(&token, ME, Value::Null).await;
            assert_eq!(
                (me["me"]["email"].as_str(), me["me"]["firstName"].as_str()),
                (Some("rn@current.test"), Some("Renamed")),
                "{backend:?}"
            );
        }

        other
            .ok(
                &token,
                "mutation { updateMyProfile(input: { title: \"Charge Nurse\" }) { id } }",
                Value::Null,
            )
            .await;
        let me = app.ok(&token, ME, Value::Null).await;
        assert_eq!(me["me"]["title"], "Charge Nurse", "{backend:?}");

        // An import that updates the nurse's record, run by whichever instance
        // claims it.
        let job = app
            .start_staff_import(
                &admin,
                b"Email,First Name\nrn@current.test,Imported\n".to_vec(),
            )
            .await;
        let done = app.finished_job(&admin, &job).await;
        assert_eq!(done["updatedCount"], 1, "{backend:?}: {done}");
        for instance in [&app, other] {
            let me = instance.ok(&token, ME, Value::Null).await;
            assert_eq!(me["me"]["firstName"], "Imported", "{backend:?}");
            assert_eq!(me["me"]["title"], "Charge Nurse", "{backend:?}");
        }

        // Another login of the same user moves lastLoginAt for every session.
        let seen = me["me"]["lastLoginAt"].clone();
        tokio::time::sleep(Duration::from_millis(20)).await;
        other.login("rn@current.test", PASSWORD).await;
        let me = app.ok(&token, ME, Value::Null).await;
        assert_ne!(me["me"]["lastLoginAt"], seen, "{backend:?}");
    }
}

/// Log in with an `X-Forwarded-For` header, as a balancer would pass it on; the
/// address the server recorded for the new session, and the audit trail's.
async fn login_forwarded_for(app: &TestApp, email: &str, forwarded_for: &str) -> (Value, Value) {
    let body: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            "variables": { "e": email, "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["data"]["login"]["token"].as_str().unwrap().to_owned();
    let data = app
        .ok(
            &token,
            "{ mySessions { current ipAddress } auditEvents(first: 100, filter: { action: \"auth.login\" }) { edges { node { ipAddress } } } }",
            Value::Null,
        )
        .await;
    let session = data["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["ipAddress"]
        .clone();
    // The trail runs oldest first: this login is the last.
    let audited = data["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["node"]["ipAddress"]
        .clone();
    (session, audited)
}

#[each_backend]
#[tokio::test]
async fn only_a_trusted_proxy_says_where_a_client_is(backend: Backend) {
    // Nobody is trusted: the header is the client's own claim, and ignored.
    let direct = TestApp::spawn(backend).await;
    let org = direct.organization("Proxy Clinic").await;
    direct.user(org, "admin@proxy.test", &["Admin"]).await;
    assert_eq!(
        login_forwarded_for(&direct, "admin@proxy.test", "203.0.113.7").await,
        (json!("127.0.0.1"), json!("127.0.0.1")),
        "{backend:?}"
    );

    // Behind a trusted balancer: the address it appended, not what the
    // client wrote to its left.
    let balanced = TestApp::spawn_with(direct.storage.clone(), |config| {
        config.trusted_proxies = vec![rollcall::config::parse_network("127.0.0.1").unwrap()];
    })
    .await;
    assert_eq!(
        login_forwarded_for(&balanced, "admin@proxy.test", "198.51.100.66, 203.0.113.7").await,
        (json!("203.0.113.7"), json!("203.0.113.7")),
        "{backend:?}"
    );
}
