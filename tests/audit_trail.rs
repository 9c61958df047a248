//! The audit trail is append-only at the database: on PostgreSQL an UPDATE,
//! DELETE or TRUNCATE of `audit_events` is refused, whoever sends it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use common::{Backend, PASSWORD, TestApp};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn postgresql_refuses_to_rewrite_the_audit_trail() {
    if !common::reachable(Backend::Production).await {
        return;
    }
    let app = TestApp::spawn(Backend::Production).await;
    let org = app.organization("Clinic").await;
    app.user(org, "admin@clinic.test", &["Admin"]).await;
    app.login("admin@clinic.test", PASSWORD).await;
    let before = app.audit_actions(org).await;
    assert!(before.contains(&"auth.login".to_owned()), "{before:?}");
    for statement in [
        "UPDATE audit_events SET action = 'nothing.happened'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = app
            .db
            .execute_unprepared(statement)
            .await
            .expect_err(statement)
            .to_string();
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
    assert_eq!(app.audit_actions(org).await, before);
}
