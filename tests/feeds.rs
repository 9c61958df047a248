//! Connector feeds end to end: a feed fetches its file from a local HTTPS
//! server (a certificate of the test's own CA, an API key header) on a
//! schedule, imports it as an ordinary job, skips a file that has not
//! changed, fails clearly on a 404 or a refused key, and with three
//! instances runs each scheduled run once. Both backends.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use common::Backend;
use test_macros::each_backend;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{
    Storage, TestApp, backends, error_fields,
    services::{skip_without, tls_certificates},
};
use serde_json::{Value, json};

/// A folder served over HTTPS by Python's standard library.
struct FileServer {
    child: Child,
    port: u16,
}

impl FileServer {
    fn start(folder: &Path, certs: &Path) -> Self {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/https_files.py"
            ))
            .arg(folder)
            .arg(certs.join("server.pem"))
            .arg(certs.join("server.key"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap()
            .parse()
            .unwrap();
        Self { child, port }
    }

    fn url(&self, file: &str) -> String {
        format!("https://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SAVE: &str =
    "mutation($i: ImportFeedInput!) { saveImportFeed(input: $i) { id nextRunAt headerNames } }";
const JOBS: &str = "{ importJobs(first: 100) { edges { node { id status createdCount errorMessage createdAt feed { id name } } } } }";

async fn app_for(storage: std::sync::Arc<Storage>, certs: &Path) -> TestApp {
    let ca = certs.join("ca.pem");
    TestApp::spawn_with(storage, move |c| {
        c.outbound_allow_private = true;
        c.outbound_ca_file = Some(ca);
    })
    .await
}

async fn feed_jobs(app: &TestApp, token: &str, feed: &str) -> Vec<Value> {
    let data = app.ok(token, JOBS, json!({})).await;
    data["importJobs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|j| j["feed"]["id"] == feed)
        .collect()
}

/// Wait until the feed's jobs satisfy `done`; its jobs.
async fn wait_for_jobs(
    app: &TestApp,
    token: &str,
    feed: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..150 {
        let jobs = feed_jobs(app, token, feed).await;
        if done(&jobs) {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    feed_jobs(app, token, feed).await
}

fn final_status(job: &Value) -> bool {
    !matches!(job["status"].as_str(), Some("QUEUED" | "IN_PROGRESS"))
}

async fn template(app: &TestApp, token: &str) -> String {
    app.ok(
        token,
        "mutation { saveMappingTemplate(input: { kind: LOCATIONS, name: \"Sites\", mapping: [{ column: \"Site\", field: \"name\" }, { column: \"City\", field: \"city\" }] }) { id } }",
        json!({}),
    )
    .await["saveMappingTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_feed_imports_on_schedule_skips_an_unchanged_file_and_fails_clearly() {
    let certs = tempfile::tempdir().unwrap();
    if !tls_certificates(certs.path()) {
        skip_without("openssl");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("sites.csv"),
        "Site,City\nNorth Clinic,Springfield\n",
    )
    .unwrap();
    let server = FileServer::start(folder.path(), certs.path());
    for backend in backends().await {
        std::fs::write(
            folder.path().join("sites.csv"),
            "Site,City\nNorth Clinic,Springfield\n",
        )
        .unwrap();
        let app = app_for(Storage::new(backend).await, certs.path()).await;
        let (org, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
        let template = template(&app, &admin).await;
        let input = json!({
            "name": "Sites from the EHR",
            "kind": "LOCATIONS",
            "url": server.url("sites.csv"),
            "templateId": template,
            "schedule": "* * * * * *",
            "headers": [{ "name": "x-api-key", "value": "secret" }],
        });
        let saved = app.ok(&admin, SAVE, json!({ "i": input })).await;
        let feed = saved["saveImportFeed"]["id"].as_str().unwrap().to_owned();
        assert_eq!(saved["saveImportFeed"]["headerNames"], json!(["x-api-key"]));
        assert!(
            !app.ok(&admin, "{ importFeeds { headerNames } }", json!({}))
                .await
                .to_string()
                .contains("secret")
        );

        // The first scheduled run imports; the next ones find it unchanged.
        let jobs = wait_for_jobs(&app, &admin, &feed, |jobs| {
            jobs.iter().any(|j| j["status"] == "FINISHED")
                && jobs.iter().any(|j| j["status"] == "SKIPPED")
        })
        .await;
        let imported: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "FINISHED").collect();
        assert_eq!(imported.len(), 1, "{jobs:#?}");
        assert_eq!(imported[0]["createdCount"], 1);
        let sites = app
            .ok(&admin, "{ locations { name city } }", json!({}))
            .await;
        assert_eq!(sites["locations"][0]["name"], "North Clinic");

        // A new file is imported at the next run.
        std::fs::write(
            folder.path().join("sites.csv"),
            "Site,City\nNorth Clinic,Springfield\nSouth Clinic,Shelbyville\n",
        )
        .unwrap();
        wait_for_jobs(&app, &admin, &feed, |jobs| {
            jobs.iter().filter(|j| j["status"] == "FINISHED").count() == 2
        })
        .await;
        let mut off = input.clone();
        off["id"] = json!(feed);
        off["active"] = json!(false);
        let saved = app.ok(&admin, SAVE, json!({ "i": off })).await;
        assert!(saved["saveImportFeed"]["nextRunAt"].is_null());

        // Run now: a missing file and a refused key fail with the reason.
        let mut missing = input.clone();
        missing["url"] = json!(server.url("gone.csv"));
        missing["active"] = json!(false);
        let gone =
            app.ok(&admin, SAVE, json!({ "i": missing })).await["saveImportFeed"]["id"].clone();
        let run = app
            .ok(
                &admin,
                "mutation($id: ID!) { runImportFeed(id: $id) { status errorMessage feed { id } } }",
                json!({ "id": gone }),
            )
            .await;
        assert_eq!(run["runImportFeed"]["status"], "FAILED");
        assert!(
            run["runImportFeed"]["errorMessage"]
                .as_str()
                .unwrap()
                .contains("404"),
            "{run}"
        );
        let mut keyless = input.clone();
        keyless["headers"] = json!([]);
        keyless["active"] = json!(false);
        let keyless =
            app.ok(&admin, SAVE, json!({ "i": keyless })).await["saveImportFeed"]["id"].clone();
        let run = app
            .ok(
                &admin,
                "mutation($id: ID!) { runImportFeed(id: $id) { status errorMessage } }",
                json!({ "id": keyless }),
            )
            .await;
        assert!(
            run["runImportFeed"]["errorMessage"]
                .as_str()
                .unwrap()
                .contains("401"),
            "{run}"
        );
        assert!(
            app.audit_actions(org)
                .await
                .contains(&"import.finish".to_owned())
        );
    }
}

#[tokio::test]
async fn with_three_instances_each_scheduled_run_runs_once() {
    let certs = tempfile::tempdir().unwrap();
    if !tls_certificates(certs.path()) {
        skip_without("openssl");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("sites.csv"),
        "Site,City\nNorth Clinic,Springfield\n",
    )
    .unwrap();
    let server = FileServer::start(folder.path(), certs.path());
    for backend in backends().await {
        if backend != common::Backend::Production {
            continue;
        }
        let storage = Storage::new(backend).await;
        let app = app_for(storage.clone(), certs.path()).await;
        let _second = app_for(storage.clone(), certs.path()).await;
        let _third = app_for(storage.clone(), certs.path()).await;
        let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
        let template = template(&app, &admin).await;
        let input = json!({
            "name": "Sites",
            "kind": "LOCATIONS",
            "url": server.url("sites.csv"),
            "templateId": template,
            "schedule": "*/2 * * * * *",
            "headers": [{ "name": "x-api-key", "value": "secret" }],
        });
        let feed =
            app.ok(&admin, SAVE, json!({ "i": input.clone() })).await["saveImportFeed"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
        let jobs = wait_for_jobs(&app, &admin, &feed, |jobs| {
            jobs.len() >= 4 && jobs.iter().all(final_status)
        })
        .await;
        let mut off = input.clone();
        off["id"] = json!(feed);
        off["active"] = json!(false);
        app.ok(&admin, SAVE, json!({ "i": off })).await;
        let mut times: Vec<chrono::DateTime<chrono::Utc>> = jobs
            .iter()
            .map(|j| j["createdAt"].as_str().unwrap().parse().unwrap())
            .collect();
        times.sort();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] > chrono::Duration::milliseconds(1000),
                "two runs of one scheduled time: {jobs:?}"
            );
        }
        assert_eq!(
            jobs.iter().filter(|j| j["status"] == "FINISHED").count(),
            1,
            "{jobs:?}"
        );
    }
}

#[each_backend]
#[tokio::test]
async fn feeds_refuse_private_addresses_bad_schedules_and_templates_of_another_kind(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let template = template(&app, &admin).await;
    for (url, schedule, kind, field) in [
        (
            "https://169.254.169.254/latest",
            "0 6 * * *",
            "LOCATIONS",
            "url",
        ),
        (
            "https://10.0.0.5/export.csv",
            "0 6 * * *",
            "LOCATIONS",
            "url",
        ),
        (
            "http://files.example.org/export.csv",
            "0 6 * * *",
            "LOCATIONS",
            "url",
        ),
        (
            "https://files.example.org/export.csv",
            "every morning",
            "LOCATIONS",
            "schedule",
        ),
        (
            "https://files.example.org/export.csv",
            "0 6 * * *",
            "USERS",
            "templateId",
        ),
    ] {
        let (_, body) = app
            .graphql(
                Some(&admin),
                SAVE,
                json!({ "i": { "name": "Feed", "kind": kind, "url": url, "templateId": template, "schedule": schedule } }),
            )
            .await;
        assert_eq!(error_fields(&body)[0].0, field, "{url} {schedule}: {body}");
    }
    // A name is checked where it resolves: this machine's own name passes
    // as a name, and its local address is refused at the fetch.
    let Some(host) = local_name().await else {
        eprintln!("no name of this machine resolves to a local address; that part is not run");
        return;
    };
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": { "name": "Sneaky", "kind": "LOCATIONS", "url": format!("https://{host}:9/sites.csv"), "templateId": template, "schedule": "0 6 * * *", "active": false } }),
        )
        .await;
    let run = app
        .ok(
            &admin,
            "mutation($id: ID!) { runImportFeed(id: $id) { status errorMessage } }",
            json!({ "id": saved["saveImportFeed"]["id"] }),
        )
        .await;
    assert_eq!(run["runImportFeed"]["status"], "FAILED");
    assert!(
        run["runImportFeed"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("private or local address"),
        "{run}"
    );
}

/// A name of this machine (its host name, from `/etc/hosts`) that resolves
/// to a loopback or private address.
async fn local_name() -> Option<String> {
    let name = String::from_utf8(Command::new("hostname").output().ok()?.stdout).ok()?;
    let name = name.trim().to_owned();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .ok()?
        .collect();
    let local = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback(),
    };
    (!name.is_empty() && name != "localhost" && addrs.iter().any(|a| local(a.ip()))).then_some(name)
}
