//! Three identical instances on one PostgreSQL and one Redis, as behind a load
//! balancer, with no other coordination: a session made on one works on the
//! others, a revocation on one takes effect on the others at the next request,
//! login failures spread over all three count together, and an import started
//! on one is run by whichever claims it and read from any.
//!
//! Instances share sessions only through Redis, so this runs on the production
//! backend (PostgreSQL + Redis); it is skipped, loudly, when they are absent
//! outside CI.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use common::{Backend, PASSWORD, TestApp, error_code};
use serde_json::json;

#[tokio::test]
async fn three_instances_share_sessions_revocations_rate_limits_and_imports() {
    if !common::backends().await.contains(&Backend::Production) {
        eprintln!(
            "\n*** SKIPPING the scale-out test: PostgreSQL and Redis are not answering. ***\n"
        );
        return;
    }
    let a = TestApp::spawn(Backend::Production).await;
    let b = TestApp::spawn_on(a.storage.clone()).await;
    let c = TestApp::spawn_on(a.storage.clone()).await;
    let org = a.organization("Cluster Clinic").await;
    a.user(org, "admin@cluster.test", &["Admin"]).await;
    let nurse_id = a.user(org, "nurse@cluster.test", &["Provider"]).await;

    // A session made on A is good on B and C.
    let admin = a.login("admin@cluster.test", PASSWORD).await;
    let nurse = a.login("nurse@cluster.test", PASSWORD).await;
    for instance in [&b, &c] {
        let me = instance.ok(&nurse, "{ me { email } }", json!({})).await;
        assert_eq!(me["me"]["email"], "nurse@cluster.test");
    }

    // Revoked on C: refused on A and B at the very next request.
    let revoked = c
        .ok(
            &admin,
            "mutation($u: ID!) { revokeUserSessions(userId: $u) }",
            json!({ "u": nurse_id.to_string() }),
        )
        .await;
    assert_eq!(revoked["revokeUserSessions"], 1);
    for instance in [&a, &b] {
        let (status, body) = instance
            .graphql(Some(&nurse), "{ me { email } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{status} {body}");
    }

    // Ten failed logins spread over the three lock the email on all of them.
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    for i in 0..10 {
        let instance = [&a, &b, &c][i % 3];
        let (_, body) = instance
            .graphql(
                None,
                login,
                json!({ "e": "nurse@cluster.test", "p": "wrong password 1" }),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    for instance in [&a, &b, &c] {
        let (_, body) = instance
            .graphql(
                None,
                login,
                json!({ "e": "nurse@cluster.test", "p": PASSWORD }),
            )
            .await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    }

    // An import started on B is run by one of them and read from any.
    let id = b
        .start_staff_import(&admin, common::staff_file(3_000, "cluster.test"))
        .await;
    let job = c.finished_job(&admin, &id).await;
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(job["createdCount"], 3_000);
    let users = a
        .ok(&admin, "{ users(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(users["users"]["totalCount"], 3_002);

    c.stop().await;
    b.stop().await;
    a.stop().await;
}
