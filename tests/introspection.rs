//! Every GraphQL client asks for the schema with graphql-js's standard
//! introspection query, in one of its option combinations (GraphiQL's docs and
//! autocompletion, Apollo's tools, GraphQL Code Generator, Postman,
//! Insomnia). The queries come from graphql-js itself (`tests/introspection`,
//! installed by `npm ci --prefix tests/introspection`; `.ci/run` does); each
//! must be answered, while the depth limit still holds for data.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, TestApp};
use serde_json::{Value, json};

/// The queries graphql-js makes, or `None` (loudly) where it is not installed
/// and this is not CI.
fn client_queries() -> Option<Vec<(String, String)>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/introspection");
    let output = std::process::Command::new("node")
        .arg("queries.mjs")
        .current_dir(dir)
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        other => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("graphql-js is needed: npm ci --prefix tests/introspection ({other:?})");
            }
            eprintln!(
                "\n*** SKIPPING the client introspection queries: run `npm ci --prefix tests/introspection`. ***\n"
            );
            return None;
        }
    };
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    Some(
        printed["queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                (
                    q["name"].as_str().unwrap().to_owned(),
                    q["query"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn every_standard_introspection_query_is_answered() {
    let Some(queries) = client_queries() else {
        return;
    };
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        for (options, query) in &queries {
            let (status, body) = app.graphql(None, query, Value::Null).await;
            assert_eq!(status, 200, "{options}: {body}");
            assert!(body["errors"].is_null(), "{options}: {body}");
            assert_eq!(
                body["data"]["__schema"]["queryType"]["name"], "Query",
                "{options}"
            );
            let types = body["data"]["__schema"]["types"].as_array().unwrap();
            assert!(types.iter().any(|t| t["name"] == "User"), "{options}");
        }
    }
}

#[each_backend]
#[tokio::test]
async fn data_nested_deeper_than_the_limit_is_still_refused(backend: Backend) {
    let app = TestApp::spawn_with(common::Storage::new(backend).await, |c| {
        c.max_depth = 4;
    })
    .await;
    let (_, body) = app
        .graphql(
            None,
            "{ users { edges { node { roles { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(common::error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper than 4"),
        "{body}"
    );
    // Hidden inside a fragment, too.
    let (_, body) = app
        .graphql(
            None,
            "{ ...Q } fragment Q on Query { users { edges { node { roles { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(common::error_code(&body), "BAD_USER_INPUT", "{body}");
}
