//! The product's counters at `/metrics`: logins by outcome, password-reset
//! requests, import rows and jobs, outbox deliveries. Counters are process-wide,
//! so this binary holds this one test alone, and each figure is read as the
//! difference across what the test does.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::time::Duration;

use common::{Backend, PASSWORD, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

/// The value of the series `name` whose labels include every one of `labels`;
/// 0 when there is none yet.
fn value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    scrape
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(key, val)| line.contains(&format!("{key}=\"{val}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

const SERIES: &[(&str, &[(&str, &str)])] = &[
    ("rollcall_logins_total", &[("outcome", "ok")]),
    ("rollcall_logins_total", &[("outcome", "failed")]),
    ("rollcall_logins_total", &[("outcome", "locked")]),
    (
        "rollcall_password_reset_requests_total",
        &[("outcome", "accepted")],
    ),
    (
        "rollcall_import_rows_total",
        &[("kind", "USERS"), ("outcome", "created")],
    ),
    (
        "rollcall_import_rows_total",
        &[("kind", "USERS"), ("outcome", "failed")],
    ),
    (
        "rollcall_import_jobs_ended_total",
        &[("kind", "USERS"), ("status", "FINISHED_WITH_ERRORS")],
    ),
    (
        "rollcall_outbox_deliveries_total",
        &[("channel", "EMAIL"), ("outcome", "undelivered")],
    ),
];

async fn figures(app: &TestApp) -> Vec<u64> {
    let scrape = app.scrape().await;
    SERIES
        .iter()
        .map(|(name, labels)| value(&scrape, name, labels))
        .collect()
}

#[tokio::test]
async fn what_the_product_does_is_counted_at_metrics() {
    // One backend after the other: the counters are the process's.
    for backend in common::backends().await {
        counted_on(backend).await;
    }
}

async fn counted_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Counted Clinic").await;
    app.user(org, "admin@counted.test", &["Admin"]).await;
    let before = figures(&app).await;

    // Ten failed logins lock the email; the eleventh is refused unchecked.
    for _ in 0..11 {
        app.graphql(
            None,
            "mutation { login(email: \"admin@counted.test\", password: \"wrong 12345\") { token } }",
            Value::Null,
        )
        .await;
    }
    let (_, body) = app
        .graphql(
            None,
            "mutation { requestPasswordReset(email: \"admin@counted.test\") }",
            Value::Null,
        )
        .await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
    app.user(org, "importer@counted.test", &["Admin"]).await;
    let token = app.login("importer@counted.test", PASSWORD).await;

    // Three people and a row without an email.
    let mut file = common::staff_file(3, "counted.test");
    file.extend_from_slice(b",No,Email,RN\n");
    let job = app.start_staff_import(&token, file).await;
    let done = app.finished_job(&token, &job).await;
    assert_eq!(done["status"], "FINISHED_WITH_ERRORS", "{done}");

    // Without SMTP the reset email is settled as undelivered.
    for _ in 0..100 {
        let settled = entity::outbox_message::Entity::find()
            .filter(entity::outbox_message::Column::Kind.eq("user.password_reset"))
            .filter(entity::outbox_message::Column::Status.eq("UNDELIVERED"))
            .all(&app.db)
            .await
            .unwrap();
        if !settled.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let after = figures(&app).await;
    let grown: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(grown, [1, 10, 1, 1, 3, 1, 1, 1], "{backend:?}: {SERIES:?}");
    app.stop().await;
}
