//! The import center at the size admins use it: a 100,000-row staff file with bad
//! rows, end to end over HTTP, on each backend. The suggested mapping is taken,
//! the counts are exact, the failed rows download in both formats and, corrected
//! and uploaded again, go in; the same file imported twice creates nothing the
//! second time. And imported users asked to be invited get their invite by email.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{Backend, PASSWORD, TestApp, smtp::SmtpSink};
use serde_json::{Value, json};

const START: &str = "mutation($input: ImportInput!) { startImport(input: $input) { id } }";
const ROWS: usize = 100_000;
/// Every this many rows, one has an email that cannot be.
const BAD_EVERY: usize = 1_000;

fn staff_file() -> Vec<u8> {
    let mut file = String::with_capacity(ROWS * 64);
    file.push_str("E-mail Address,First Name,Surname,Job Title\n");
    for i in 0..ROWS {
        if i % BAD_EVERY == 999 {
            file.push_str(&format!(
                "staff{i}.at.scale.example,First{i},Last{i},Nurse\n"
            ));
        } else {
            file.push_str(&format!("staff{i}@scale.example,First{i},Last{i},Nurse\n"));
        }
    }
    file.into_bytes()
}

/// Upload to the end of the job (a 100,000-row job takes a while in a debug
/// build, so the wait is longer than the common helper's).
async fn import(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let (_, body) = app
        .upload(token, START, json!({ "kind": "USERS" }), name, bytes)
        .await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    for _ in 0..1_800 {
        let data = app
            .ok(
                token,
                "query($id: ID!) { importJob(id: $id) { status totalRows createdCount updatedCount skippedCount failedCount failedRowsCsvUrl failedRowsXlsxUrl } }",
                json!({ "id": id }),
            )
            .await;
        let job = data["importJob"].clone();
        if !matches!(job["status"].as_str(), Some("QUEUED" | "IN_PROGRESS")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("import {id} did not finish in 6 minutes");
}

async fn download(app: &TestApp, token: &str, url: &str) -> Vec<u8> {
    let response = app.client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_hundred_thousand_rows_import_with_exact_counts_and_their_failures_round_trip() {
    let bad = ROWS / BAD_EVERY;
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let (_, admin) = app.admin_in("Scale Health", "admin@scale.test").await;

        let file = staff_file();
        let job = import(&app, &admin, "staff.csv", file.clone()).await;
        assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{backend:?}: {job}");
        assert_eq!(job["totalRows"], ROWS);
        assert_eq!(job["createdCount"], ROWS - bad);
        assert_eq!(job["failedCount"], bad);

        let csv = download(&app, &admin, job["failedRowsCsvUrl"].as_str().unwrap()).await;
        let xlsx = download(&app, &admin, job["failedRowsXlsxUrl"].as_str().unwrap()).await;
        assert_eq!(&xlsx[..2], b"PK");
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(
            text.lines().count(),
            bad + 1,
            "a header and every failed row"
        );
        assert!(
            text.trim_start_matches('\u{feff}')
                .starts_with("E-mail Address,First Name,Surname,Job Title,Errors")
        );

        // Corrected, the failed rows go in.
        let fixed = text.replace(".at.scale.example", "@scale.example");
        let again = import(&app, &admin, "fixed.csv", fixed.into_bytes()).await;
        assert_eq!(again["status"], "FINISHED", "{again}");
        assert_eq!(again["createdCount"], bad);

        // The same file again creates nothing.
        let twice = import(&app, &admin, "staff.csv", file).await;
        assert_eq!(twice["createdCount"], 0, "{twice}");
        assert_eq!(twice["updatedCount"], 0);
        assert_eq!(twice["skippedCount"], ROWS - bad);
        assert_eq!(twice["failedCount"], bad);
        let users = app
            .ok(&admin, "{ users(first: 1) { totalCount } }", json!({}))
            .await;
        assert_eq!(users["users"]["totalCount"], ROWS + 1);
        app.stop().await;
    }
}

#[each_backend]
#[tokio::test]
async fn imported_users_asked_to_be_invited_get_an_invite_and_others_do_not(backend: Backend) {
    let smtp = SmtpSink::start().await;
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage, |c| {
        c.smtp_url = Some(smtp.url());
        c.mail_from = "Rollcall <no-reply@rollcall.test>".into();
    })
    .await;
    let org = app.organization("Invite Health").await;
    app.user(org, "admin@invite.test", &["Admin"]).await;
    app.user(org, "known@invite.test", &[]).await;
    let admin = app.login("admin@invite.test", PASSWORD).await;

    let file = "Email,First Name,Last Name,Job Title\n\
                    new.one@invite.test,New,One,Nurse\n\
                    new.two@invite.test,New,Two,Nurse\n\
                    known@invite.test,Known,User,Physician\n";
    let (_, body) = app
        .upload(
            &admin,
            START,
            json!({ "kind": "USERS", "settings": { "sendInvites": true } }),
            "invite.csv",
            file.as_bytes().to_vec(),
        )
        .await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(job["createdCount"], 2, "{job}");
    assert_eq!(job["updatedCount"], 1);

    for _ in 0..100 {
        if smtp.received().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a stray third message the chance to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.received();
    let mut to: Vec<&str> = mails
        .iter()
        .flat_map(|m| m.to.iter().map(String::as_str))
        .collect();
    to.sort_unstable();
    assert_eq!(
        to,
        ["new.one@invite.test", "new.two@invite.test"],
        "{mails:?}"
    );
    let link = mails[0]
        .data
        .split_whitespace()
        .find(|w| w.contains("/invite/"))
        .unwrap_or_else(|| panic!("{}", mails[0].data));
    let path = format!(
        "/{}",
        link.split_once("://").unwrap().1.split_once('/').unwrap().1
    );
    assert_eq!(
        app.get(&path).await.status(),
        200,
        "the invite link opens its page"
    );
    app.stop().await;
}
