//! The HTTP surface and the GraphQL over HTTP specification, as clients meet them.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, TestApp, error_code};
use graphql_client::{GraphQLQuery, QueryBody, Response as GqlResponse};
use serde_json::{Value, json};

const GQL_RESPONSE: &str = "application/graphql-response+json";

async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: String,
) -> (u16, String, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, media, response.json().await.unwrap_or(Value::Null))
}

/// A batch of `size` `{ __typename }` operations.
async fn post_batch(app: &TestApp, size: usize) -> (u16, String, Value) {
    let batch: Vec<Value> = (0..size)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    post_raw(
        app,
        Some("application/json"),
        None,
        Value::Array(batch).to_string(),
    )
    .await
}

/// `{ me { id } }` through graphql_client, a real GraphQL client library.
struct MeQuery;

#[derive(serde::Deserialize, Debug)]
struct MeData {
    me: MeUser,
}

#[derive(serde::Deserialize, Debug)]
struct MeUser {
    email: String,
}

impl GraphQLQuery for MeQuery {
    type Variables = ();
    type ResponseData = MeData;
    fn build_query(variables: ()) -> QueryBody<()> {
        QueryBody {
            variables,
            query: "query Me { me { email } }",
            operation_name: "Me",
        }
    }
}

async fn me_with_client_library(app: &TestApp, token: Option<&str>) -> GqlResponse<MeData> {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&MeQuery::build_query(()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[each_backend]
#[tokio::test]
async fn me_without_a_session_is_unauthenticated_and_with_one_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = me_with_client_library(&app, None).await;
    assert!(anonymous.data.is_none(), "{backend:?}");
    let errors = anonymous.errors.unwrap();
    let code = errors[0]
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .cloned();
    assert_eq!(code, Some(json!("UNAUTHENTICATED")), "{backend:?}");

    let org = app.organization("Northwind Clinic").await;
    app.user(org, "reader@northwind.test", &["Billing"]).await;
    let token = app.login("Reader@Northwind.test", common::PASSWORD).await;
    let me = me_with_client_library(&app, Some(&token)).await;
    assert_eq!(
        me.data.unwrap().me.email,
        "reader@northwind.test",
        "{backend:?}"
    );
}

#[tokio::test]
async fn follows_the_graphql_over_http_specification() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let query = json!({ "query": "{ __typename }" }).to_string();

    // The specification's media type when accepted, JSON otherwise.
    let (status, media, body) = post_raw(
        &app,
        Some("application/json"),
        Some(GQL_RESPONSE),
        query.clone(),
    )
    .await;
    assert_eq!(
        (status, body["data"]["__typename"].as_str()),
        (200, Some("Query"))
    );
    assert!(media.starts_with(GQL_RESPONSE), "{media}");
    let (_, media, _) = post_raw(&app, Some("application/json"), None, query.clone()).await;
    assert!(media.starts_with("application/json"), "{media}");
    let (status, _, _) = post_raw(
        &app,
        Some("application/json"),
        Some("text/plain"),
        query.clone(),
    )
    .await;
    assert_eq!(status, 406);

    // A POST that is not JSON is refused with 415; malformed JSON with 400.
    let (status, _, body) = post_raw(&app, Some("text/plain"), None, query.clone()).await;
    assert_eq!((status, error_code(&body)), (415, "BAD_USER_INPUT"));
    let (status, _, _) = post_raw(&app, None, None, query.clone()).await;
    assert_eq!(status, 415);
    let (status, _, body) = post_raw(
        &app,
        Some("application/json"),
        Some(GQL_RESPONSE),
        "{ not json".into(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "BAD_USER_INPUT"));
    let (status, _, _) = post_raw(
        &app,
        Some("application/json"),
        Some(GQL_RESPONSE),
        json!({ "query": 42 }).to_string(),
    )
    .await;
    assert_eq!(status, 400);

    // Syntax and validation errors: 400 without a data entry under the
    // specification's media type, 200 under plain JSON.
    for bad in ["{ me { id ", "{ noSuchField }"] {
        let body = json!({ "query": bad }).to_string();
        let (status, _, answer) = post_raw(
            &app,
            Some("application/json"),
            Some(GQL_RESPONSE),
            body.clone(),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer.get("data").is_none(), "{answer}");
        assert_eq!(error_code(&answer), "BAD_USER_INPUT");
        let (status, _, _) = post_raw(
            &app,
            Some("application/json"),
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(status, 200, "{bad}");
    }

    // A field error still has data: 200.
    let (status, _, body) = post_raw(
        &app,
        Some("application/json"),
        Some(GQL_RESPONSE),
        json!({ "query": "{ me { id } }" }).to_string(),
    )
    .await;
    assert_eq!((status, error_code(&body)), (200, "UNAUTHENTICATED"));

    // GET serves queries and refuses mutations with 405.
    let get = |q: &str| {
        app.client
            .get(format!("{}/graphql", app.address))
            .query(&[("query", q)])
            .header("accept", GQL_RESPONSE)
            .send()
    };
    let response = get("{ __typename }").await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = get("mutation { logout }").await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn limits_refuse_costly_requests_before_any_database_work() {
    let app = TestApp::spawn(Backend::Embedded).await;
    // Data nested deeper than 12 levels (introspection, which every client
    // sends nested deeper, is answered: tests/introspection.rs).
    let too_deep = format!(
        "{{ me {{ {} id {} }} }}",
        "provider { user { ".repeat(6),
        "} } ".repeat(6)
    );
    let (_, body) = app.graphql(None, &too_deep, Value::Null).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper than 12"),
        "{body}"
    );
    assert!(body["data"].is_null());

    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let (status, body) = app
        .graphql(None, &format!("{{ {aliases} }}"), Value::Null)
        .await;
    assert_eq!((status, error_code(&body)), (400, "BAD_USER_INPUT"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aliases")
    );

    let (status, _, body) = post_batch(&app, 11).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_USER_INPUT"));
    let (status, _, body) = post_batch(&app, 2).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));

    let huge =
        json!({ "query": format!("{{ __typename }} # {}", "x".repeat(2 << 20)) }).to_string();
    let (status, _, body) = post_raw(&app, Some("application/json"), None, huge).await;
    assert_eq!((status, error_code(&body)), (413, "BAD_USER_INPUT"));

    let (_, body) = app
        .graphql(None, "{ users(first: 101) { totalCount } }", Value::Null)
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[each_backend]
#[tokio::test]
async fn health_readiness_metrics_and_graphiql_are_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.get("/healthz").await.text().await.unwrap(), "ok");
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{backend:?}");
    let expected_store = if backend == Backend::Production {
        "redis"
    } else {
        "memory"
    };
    assert_eq!(ready["sessionStore"]["kind"], expected_store);

    app.graphql(None, "{ __typename }", Value::Null).await;
    let metrics = app.scrape().await;
    assert!(
        metrics
            .contains("rollcall_graphql_requests_total{operation_type=\"query\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("rollcall_graphql_request_duration_seconds_bucket"));
    assert!(metrics.contains("rollcall_db_pool_connections{state=\"idle\"}"));

    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/graphiql/assets/graphiql.min.js"),
        "GraphiQL must not load from a CDN"
    );
    assert!(
        !html.contains("https://"),
        "GraphiQL must work without internet"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "start.js",
    ] {
        let response = app.get(&format!("/graphiql/assets/{asset}")).await;
        assert_eq!(response.status().as_u16(), 200, "{asset}");
    }
}

#[tokio::test]
async fn graphiql_can_be_turned_off() {
    let storage = common::Storage::new(Backend::Embedded).await;
    let app = TestApp::spawn_with(storage, |config| config.graphiql = false).await;
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 404);
}

#[test]
fn schema_file_equals_what_the_server_serves() {
    let served = rollcall::graphql::sdl();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        served == committed,
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}
