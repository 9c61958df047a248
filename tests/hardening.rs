//! What a hospital's security review checks at the edge: response headers, the
//! cookie's prefix, who may scrape metrics, how large a multipart request's
//! JSON parts may be, what a nested list costs, and introspection switched off.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, Storage, TestApp, error_code};
use serde_json::{Value, json};

#[each_backend]
#[tokio::test]
async fn every_response_carries_the_security_headers(backend: Backend) {
    let secure = TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.secure_cookies = true;
    })
    .await;
    for path in ["/healthz", "/graphql?query=%7B__typename%7D", "/p/unknown"] {
        let response = secure.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            headers["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{path}"
        );
    }
    let page = secure
        .client
        .get(format!("{}/graphql", secure.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.headers().contains_key("content-security-policy"));

    // Local plain HTTP: no HSTS, which would break it.
    let local = TestApp::spawn(backend).await;
    let response = local.get("/healthz").await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(!response.headers().contains_key("strict-transport-security"));
}

#[each_backend]
#[tokio::test]
async fn a_secure_session_cookie_is_host_prefixed_and_only_that_one_counts(backend: Backend) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.secure_cookies = true;
    })
    .await;
    let org = app.organization("Cookie Care").await;
    app.user(org, "nurse@cookie.test", &["Provider"]).await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": { "e": "nurse@cookie.test", "p": PASSWORD } }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-rollcall_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("; Path=/") && !cookie.contains("Domain")
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();

    let me = |cookie: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(format!("{}/graphql", app.address))
                .header("cookie", cookie)
                .json(&json!({ "query": "{ me { email } }" }))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    let body = me(format!("__Host-rollcall_session={token}")).await;
    assert_eq!(body["data"]["me"]["email"], "nurse@cookie.test", "{body}");
    // A cookie a sibling subdomain or a plain-HTTP page could have planted.
    let body = me(format!("rollcall_session={token}")).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[each_backend]
#[tokio::test]
async fn metrics_need_the_token_or_their_own_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    let wrong = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(app.scrape().await.contains("rollcall_"));

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let apart = TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.metrics_token = None;
        c.metrics_bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    assert_eq!(apart.get("/metrics").await.status(), 404);
    let scraped = apart
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("rollcall_"));
    let other = apart
        .client
        .get(format!(
            "http://127.0.0.1:{port}/graphql?query=%7B__typename%7D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics address serves metrics only"
    );
}

#[each_backend]
#[tokio::test]
async fn the_json_parts_of_an_upload_are_held_to_the_json_body_limit(backend: Backend) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.max_body_bytes = 4096;
    })
    .await;
    let (_, token) = app.admin_in("Upload Care", "admin@upload.test").await;
    let padding = " ".repeat(8192);
    let operations = format!(
        "{{\"query\":\"mutation($input: ImportInput!) {{ previewImport(input: $input) {{ totalRows }} }}\",{padding}\"variables\":{{\"input\":{{\"kind\":\"USERS\",\"file\":null}}}}}}"
    );
    let form = reqwest::multipart::Form::new()
        .text("operations", operations)
        .text("map", json!({ "0": ["variables.input.file"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(b"Email\na@upload.test\n".to_vec())
                .file_name("staff.csv"),
        );
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("operations part is larger than 4096 bytes"),
        "{body}"
    );

    // The same upload with its operations within the limit goes through.
    let (status, body) = app
        .upload(
            &token,
            "mutation($input: ImportInput!) { previewImport(input: $input) { totalRows } }",
            json!({ "kind": "USERS" }),
            "staff.csv",
            b"Email\na@upload.test\n".to_vec(),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["previewImport"]["totalRows"]),
        (200, &json!(1)),
        "{body}"
    );
}

#[each_backend]
#[tokio::test]
async fn a_page_costs_its_children_once_per_item_it_may_hold(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.admin_in("Cost Care", "admin@cost.test").await;
    // A full page of users with their roles is an ordinary request.
    app.ok(
        &token,
        "{ users(first: 100) { totalCount edges { node { id email firstName lastName roles { name } } } } }",
        Value::Null,
    )
    .await;
    // A hundred enrolment pages of a hundred patients each is not.
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ projects(first: 100) { edges { node { enrollments(first: 100) { edges { node { id status patient { id firstName lastName email } } } } } } } }",
            Value::Null,
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
}

#[each_backend]
#[tokio::test]
async fn introspection_can_be_switched_off(backend: Backend) {
    let query = "{ __schema { queryType { name } } }";
    let on = TestApp::spawn(backend).await;
    let (_, answer) = on.graphql(None, query, Value::Null).await;
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");

    let off = TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.introspection = false;
    })
    .await;
    let (_, answer) = off.graphql(None, query, Value::Null).await;
    assert!(answer["data"]["__schema"].is_null(), "{answer}");
}
