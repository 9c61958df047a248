//! GraphiQL in a real browser, as a developer on a hospital network without
//! internet uses it: the page loads everything it needs from Rollcall, its
//! fonts are not blocked, its docs explorer shows the schema (which needs the
//! standard introspection query answered), and a query runs.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::time::Duration;

use common::{TestApp, browser::Browser};
use fantoccini::Locator;
use serde_json::Value;

#[tokio::test]
async fn graphiql_shows_the_schema_and_runs_a_query_with_nothing_refused() {
    if !common::browser::available() {
        return;
    }
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let session = Browser::start().await;
        let browser = &session.client;
        let result = async {
            browser.goto(&format!("{}/graphql", app.address)).await?;
            browser
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(".graphiql-container"))
                .await?;

            // The docs explorer lists the root types once introspection is in.
            browser
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css("[aria-label='Show Documentation Explorer']"))
                .await?
                .click()
                .await?;
            let docs = browser
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(".graphiql-doc-explorer-content"))
                .await?;
            let mut text = String::new();
            for _ in 0..100 {
                text = docs.text().await?;
                if text.contains("Query") && text.contains("Mutation") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                text.contains("Query") && text.contains("Mutation"),
                "{backend:?}: the docs explorer shows {text:?}"
            );

            // The default query runs: not logged in, its answer says so.
            browser
                .find(Locator::Css(".graphiql-execute-button"))
                .await?
                .click()
                .await?;
            let mut answer = String::new();
            for _ in 0..100 {
                answer = browser
                    .find(Locator::Css(".result-window"))
                    .await?
                    .text()
                    .await?;
                if answer.contains("UNAUTHENTICATED") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(answer.contains("UNAUTHENTICATED"), "{backend:?}: {answer}");

            // Every resource came from Rollcall and was served; no font was
            // refused (the stylesheet carries them as data: URLs).
            let resources = browser
                .execute(
                    "return performance.getEntriesByType('resource')
                        .map(e => ({ name: e.name, status: e.responseStatus }));",
                    vec![],
                )
                .await?;
            for resource in resources.as_array().unwrap() {
                let name = resource["name"].as_str().unwrap();
                assert!(
                    name.starts_with(&app.address) || name.starts_with("data:"),
                    "{backend:?}: fetched from elsewhere: {name}"
                );
                if name.starts_with(&app.address) {
                    assert_eq!(resource["status"], 200, "{backend:?}: {resource}");
                }
            }
            let fonts = browser
                .execute(
                    "await document.fonts.ready;
                     return [...document.fonts].map(f => f.status);",
                    vec![],
                )
                .await?;
            assert!(
                !fonts
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == &Value::from("error")),
                "{backend:?}: fonts {fonts}"
            );
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        let _ = browser.clone().close().await;
        result.unwrap();
    }
}
