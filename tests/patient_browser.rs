//! The patient's page in a real browser: headless Chromium, driven through
//! ChromeDriver, opens a project's generic link, fills the form, submits it and
//! sees the confirmation; the enrolment is then found through the API.
//!
//! Needs Debian's `chromium` and `chromium-driver` (see `common::browser`).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use common::TestApp;
use fantoccini::Locator;
use serde_json::json;

#[tokio::test]
async fn a_patient_responds_through_the_generic_link_in_a_real_browser() {
    if !common::browser::available() {
        return;
    }
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let (_, admin) = app.admin_in("Browser Clinic", "admin@browser.test").await;
        let project = app
            .ok(
                &admin,
                "mutation { createProject(input: { name: \"Heart health\", description: \"A short survey.\" }) { id patientLink } }",
                json!({}),
            )
            .await["createProject"]
            .clone();

        let session = common::browser::Browser::start().await;
        let browser = &session.client;
        let result = async {
            browser
                .goto(project["patientLink"].as_str().unwrap())
                .await?;
            let heading = browser.find(Locator::Css("h1")).await?.text().await?;
            assert_eq!(heading, "Heart health");
            browser
                .find(Locator::Id("firstName"))
                .await?
                .send_keys("Grace")
                .await?;
            browser
                .find(Locator::Id("lastName"))
                .await?
                .send_keys("Hopper")
                .await?;
            browser
                .find(Locator::Id("email"))
                .await?
                .send_keys("grace@mail.example")
                .await?;
            // The label is what a person clicks.
            browser
                .find(Locator::Css("label[for=consent]"))
                .await?
                .click()
                .await?;
            browser
                .find(Locator::Css("button[type=submit]"))
                .await?
                .click()
                .await?;
            let confirmation = browser
                .wait()
                .for_element(Locator::Css("[role=status]"))
                .await?
                .text()
                .await?;
            assert!(
                confirmation.contains("Your response to Heart health is recorded"),
                "{confirmation}"
            );
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        let _ = browser.clone().close().await;
        result.unwrap();

        let enrolled = app
            .ok(
                &admin,
                "query($id: ID!) { project(id: $id) { enrollments { edges { node { status source patient { firstName lastName email } } } } } }",
                json!({ "id": project["id"] }),
            )
            .await;
        let edges = enrolled["project"]["enrollments"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 1, "{enrolled}");
        let node = &edges[0]["node"];
        assert_eq!(node["status"], "RESPONDED");
        assert_eq!(node["source"], "GENERIC_LINK");
        assert_eq!(node["patient"]["firstName"], "Grace");
        assert_eq!(node["patient"]["email"], "grace@mail.example");
        app.stop().await;
    }
}
