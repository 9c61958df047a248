//! Access reviews: a reviewer keeps one nurse's night-shift role and revokes
//! another's, which applies at the next request on every instance; a review
//! that reaches its due date revokes (or keeps and reports) what nobody
//! attested; the outcome downloads as CSV; and no one reviews beyond their
//! own rights or attests their own access.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use chrono::Utc;
use common::{Backend, PASSWORD, Storage, TestApp, error_code};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

const START: &str = "mutation($i: AccessReviewInput!) { startAccessReview(input: $i) {
    id items { user { email } roles { name } decision } } }";
const ATTEST: &str = "mutation($r: ID!, $u: ID!, $d: AccessDecision!, $n: String) {
    attestAccess(reviewId: $r, userId: $u, decision: $d, note: $n) { decision revokedRoles { name } } }";

struct Ward {
    admin: String,
    auditor: String,
    auditor_id: Uuid,
    night_shift: String,
    kept: Uuid,
    revoked: Uuid,
}

/// An admin, an auditor (the reviewer) and two nurses on the night shift
/// (a role that sees patients).
async fn ward(app: &TestApp) -> Ward {
    let org = app.organization("St Luke's").await;
    app.user(org, "admin@stlukes.test", &["Admin"]).await;
    let auditor_id = app
        .user(org, "auditor@stlukes.test", &["Medical Director"])
        .await;
    let admin = app.login("admin@stlukes.test", PASSWORD).await;
    let night_shift = app
        .ok(
            &admin,
            "mutation { createRole(input: { name: \"Night Shift\", permissions: [PATIENTS_READ] }) { id } }",
            json!({}),
        )
        .await["createRole"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = app.user(org, "ana@stlukes.test", &["Night Shift"]).await;
    let revoked = app.user(org, "ben@stlukes.test", &["Night Shift"]).await;
    Ward {
        admin,
        auditor: app.login("auditor@stlukes.test", PASSWORD).await,
        auditor_id,
        night_shift,
        kept,
        revoked,
    }
}

fn review(ward: &Ward, due_in: chrono::Duration, on_due: &str) -> Value {
    json!({ "i": {
        "name": "Night shift, Q4",
        "roleIds": [ward.night_shift],
        "reviewerIds": [ward.auditor_id],
        "dueAt": (Utc::now() + due_in).to_rfc3339(),
        "onDue": on_due,
    } })
}

async fn sees_patients(app: &TestApp, token: &str) -> bool {
    app.allowed(token, "{ patients(first: 1) { edges { node { id } } } }")
        .await
}

#[each_backend]
#[tokio::test]
async fn a_reviewer_keeps_one_nurse_and_revokes_another_at_once_everywhere(backend: Backend) {
    let storage = Storage::new(backend).await;
    let app = TestApp::spawn_on(storage.clone()).await;
    let peer = app.peer().await;
    let other = peer.as_ref().unwrap_or(&app);
    let ward = ward(&app).await;
    let ben = app.login("ben@stlukes.test", PASSWORD).await;
    assert!(sees_patients(other, &ben).await);

    let started = app
        .ok(
            &ward.admin,
            START,
            review(&ward, chrono::Duration::days(7), "KEEP"),
        )
        .await["startAccessReview"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    let mut emails: Vec<&str> = started["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user"]["email"].as_str().unwrap())
        .collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        ["ana@stlukes.test", "ben@stlukes.test"],
        "{backend:?}"
    );

    // Only a reviewer attests (to anyone else the review is not there),
    // and not their own access.
    let ana = app.login("ana@stlukes.test", PASSWORD).await;
    let (_, body) = app
        .graphql(
            Some(&ana),
            ATTEST,
            json!({ "r": id, "u": ward.kept, "d": "KEEP" }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Ana reviews Ben's access in a review of her own; the newer reviews
    // are not hers, and her first page of reviews is still hers.
    let ana_id = app.ok(&ana, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let mut hers = review(&ward, chrono::Duration::days(7), "KEEP");
    hers["i"]["reviewerIds"] = json!([ana_id]);
    hers["i"]["userIds"] = json!([ward.revoked]);
    hers["i"]["roleIds"] = json!([]);
    let hers = app.ok(&ward.admin, START, hers).await["startAccessReview"]["id"].clone();
    let mut own = review(&ward, chrono::Duration::days(7), "KEEP");
    own["i"]["userIds"] = json!([ward.auditor_id]);
    let own = app.ok(&ward.admin, START, own).await["startAccessReview"]["id"].clone();
    let page = app
        .ok(
            &ana,
            "{ accessReviews(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        page["accessReviews"]["edges"],
        json!([{ "node": { "id": hers } }]),
        "{backend:?}"
    );
    let (_, body) = app
        .graphql(
            Some(&ward.auditor),
            ATTEST,
            json!({ "r": own, "u": ward.auditor_id, "d": "KEEP" }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    app.ok(
        &ward.auditor,
        ATTEST,
        json!({ "r": id, "u": ward.kept, "d": "KEEP", "n": "Still on nights" }),
    )
    .await;
    let revoked = app
        .ok(
            &ward.auditor,
            ATTEST,
            json!({ "r": id, "u": ward.revoked, "d": "REVOKE", "n": "Moved to days" }),
        )
        .await;
    assert_eq!(
        revoked["attestAccess"]["revokedRoles"],
        json!([{ "name": "Night Shift" }])
    );
    assert!(
        !sees_patients(other, &ben).await,
        "{backend:?}: revoked at his next request on the other instance"
    );
    assert!(sees_patients(other, &ana).await);
    let (_, body) = app
        .graphql(
            Some(&ward.auditor),
            ATTEST,
            json!({ "r": id, "u": ward.revoked, "d": "KEEP" }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT");

    // The outcome, as CSV.
    let csv = app
        .client
        .get(format!("{}/exports/access-reviews/{id}.csv", app.address))
        .bearer_auth(&ward.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200, "{backend:?}");
    let text = csv.text().await.unwrap();
    // A byte order mark first, so that Excel reads it as UTF-8.
    let text = text.trim_start_matches('\u{feff}');
    assert!(
        text.starts_with("Email,First Name,Last Name,Roles Under Review,Decision"),
        "{text}"
    );
    assert!(
        text.contains("ben@stlukes.test") && text.contains("REVOKE"),
        "{text}"
    );
    assert!(text.contains("Moved to days"), "{text}");
    let stranger = app
        .client
        .get(format!("{}/exports/access-reviews/{id}.csv", app.address))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);
}

#[each_backend]
#[tokio::test]
async fn at_the_due_date_what_nobody_attested_is_revoked_or_kept_and_reported(backend: Backend) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |config| {
        config.sweep_interval_seconds = 1;
    })
    .await;
    let ward = ward(&app).await;
    let ben = app.login("ben@stlukes.test", PASSWORD).await;
    let keep = app
        .ok(
            &ward.admin,
            START,
            review(&ward, chrono::Duration::seconds(2), "KEEP"),
        )
        .await["startAccessReview"]["id"]
        .clone();
    let revoke = app
        .ok(
            &ward.admin,
            START,
            review(&ward, chrono::Duration::seconds(3), "REVOKE"),
        )
        .await["startAccessReview"]["id"]
        .clone();
    app.ok(
        &ward.auditor,
        ATTEST,
        json!({ "r": revoke, "u": ward.kept, "d": "KEEP" }),
    )
    .await;

    let query = "{ accessReviews { edges { node { id closedAt items { user { email } decision timedOut } } } } }";
    let mut closed = json!(null);
    for _ in 0..60 {
        closed = app.ok(&ward.auditor, query, json!({})).await;
        let open = closed["accessReviews"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["closedAt"].is_null())
            .count();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let node = |id: &Value| {
        closed["accessReviews"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| &e["node"]["id"] == id)
            .unwrap()["node"]
            .clone()
    };
    let item = |review: &Value, email: &str| {
        review["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["user"]["email"] == email)
            .unwrap()
            .clone()
    };
    let revoked = node(&revoke);
    assert!(!revoked["closedAt"].is_null(), "{backend:?}: {closed}");
    assert_eq!(
        item(&revoked, "ben@stlukes.test"),
        json!({ "user": { "email": "ben@stlukes.test" }, "decision": "REVOKE", "timedOut": true })
    );
    assert_eq!(item(&revoked, "ana@stlukes.test")["timedOut"], false);
    let kept = node(&keep);
    assert_eq!(
        item(&kept, "ben@stlukes.test")["decision"],
        "KEEP",
        "{backend:?}"
    );
    assert!(!sees_patients(&app, &ben).await, "{backend:?}");

    // The starter hears of each outcome.
    let reports = entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Kind.eq("access_review.closed"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(reports.len(), 2, "{backend:?}");
    assert!(reports.iter().all(|r| r.recipient == "admin@stlukes.test"));
}

#[each_backend]
#[tokio::test]
async fn a_review_reaches_no_further_than_its_starters_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ward = ward(&app).await;
    let org = app.organization("Elsewhere").await;
    let _ = org;
    // A role manager without the admin's rights cannot put the admin
    // under review; a nurse cannot start one at all.
    let (_, body) = app
        .graphql(
            Some(&ward.auditor),
            START,
            review(&ward, chrono::Duration::days(1), "REVOKE"),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.ok(
        &ward.admin,
        "mutation { createRole(input: { name: \"Role Keeper\", permissions: [ROLES_MANAGE, USERS_READ, PATIENTS_READ] }) { id } }",
        json!({}),
    )
    .await;
    let admin_id = entity::user::Entity::find()
        .filter(entity::user::Column::Email.eq("admin@stlukes.test"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let org_id = entity::user::Entity::find_by_id(admin_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .organization_id;
    app.user(org_id, "keeper@stlukes.test", &["Role Keeper"])
        .await;
    let keeper = app.login("keeper@stlukes.test", PASSWORD).await;
    let (_, body) = app
        .graphql(
            Some(&keeper),
            START,
            json!({ "i": {
                "name": "Everyone",
                "userIds": [admin_id],
                "reviewerIds": [ward.auditor_id],
                "dueAt": (Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                "onDue": "REVOKE",
            } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{backend:?}: {body}");
    // Within their rights it starts.
    app.ok(
        &keeper,
        START,
        review(&ward, chrono::Duration::days(1), "REVOKE"),
    )
    .await;
    // A due date in the past or no reviewer is refused with the field.
    let mut bad = review(&ward, chrono::Duration::days(-1), "KEEP");
    bad["i"]["reviewerIds"] = json!([]);
    let (_, body) = app.graphql(Some(&keeper), START, bad).await;
    let fields: Vec<String> = common::error_fields(&body)
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(fields, ["reviewerIds", "dueAt"], "{body}");
}
