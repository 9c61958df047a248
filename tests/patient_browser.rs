//! The patient's page in a real browser: headless Chromium, driven through
//! ChromeDriver, opens a project's generic link, fills the form, submits it and
//! sees the confirmation; the enrolment is then found through the API.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).
//! Without them the test is skipped, loudly, except under CI where it fails.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::{path::Path, process::Stdio, time::Duration};

use common::{PASSWORD, TestApp};
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        for _ in 0..100 {
            if reqwest::get(&status)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ChromeDriver did not start");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn a_patient_responds_through_the_generic_link_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver)"
        );
        eprintln!(
            "SKIPPED: the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
        return;
    }
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let org = app.organization("Browser Clinic").await;
        app.user(org, "admin@browser.test", &["Admin"]).await;
        let admin = app.login("admin@browser.test", PASSWORD).await;
        let project = app
            .ok(
                &admin,
                "mutation { createProject(input: { name: \"Heart health\", description: \"A short survey.\" }) { id patientLink } }",
                json!({}),
            )
            .await["createProject"]
            .clone();

        let driver = Driver::start().await;
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap();
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
        let _ = browser.close().await;
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
