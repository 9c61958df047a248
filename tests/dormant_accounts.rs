//! Dormant accounts: with `dormantAfterDays` set, a user who has not signed
//! in for that long is deactivated (their open session refused at its next
//! request, their unused invite voided), one nearing it is warned once, and a
//! reactivated user counts afresh.

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
use common::{Backend, PASSWORD, Storage, TestApp, error_code, error_fields};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;
use uuid::Uuid;

/// Move a user's last sign-in (and creation) `days` into the past, as if
/// that much time had gone by.
async fn idle_for(app: &TestApp, user: Uuid, days: i64) {
    let then = Utc::now() - chrono::Duration::days(days);
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::LastLoginAt, Expr::value(then))
        .col_expr(entity::user::Column::CreatedAt, Expr::value(then))
        .filter(entity::user::Column::Id.eq(user))
        .exec(&app.db)
        .await
        .unwrap();
}

async fn status(app: &TestApp, user: Uuid) -> String {
    entity::user::Entity::find_by_id(user)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn until_inactive(app: &TestApp, user: Uuid) {
    for _ in 0..60 {
        if status(app, user).await == "INACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{user} was not deactivated");
}

async fn warnings(app: &TestApp) -> Vec<entity::outbox_message::Model> {
    entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Kind.eq("user.dormancy_warning"))
        .all(&app.db)
        .await
        .unwrap()
}

#[each_backend]
#[tokio::test]
async fn dormant_users_are_warned_then_deactivated_and_a_reactivation_counts_afresh(
    backend: Backend,
) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |config| {
        config.sweep_interval_seconds = 1;
    })
    .await;
    let org = app.organization("County Clinic").await;
    app.user(org, "admin@county.test", &["Admin"]).await;
    let nurse = app.user(org, "nurse@county.test", &["Provider"]).await;
    let clerk = app.user(org, "clerk@county.test", &["Billing"]).await;
    let admin = app.login("admin@county.test", PASSWORD).await;
    let nurse_token = app.login("nurse@county.test", PASSWORD).await;

    let (_, body) = app
        .graphql(
            Some(&admin),
            "mutation { updateOrganization(input: { dormantAfterDays: 7 }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_fields(&body)[0].0, "dormantAfterDays", "{body}");
    let invited = app
        .ok(
            &admin,
            "mutation { createUser(input: { email: \"new@county.test\", firstName: \"New\", lastName: \"Hire\" }) { user { id } inviteLink } }",
            json!({}),
        )
        .await["createUser"]
        .clone();
    let invited_id: Uuid = invited["user"]["id"].as_str().unwrap().parse().unwrap();
    idle_for(&app, nurse, 31).await;
    idle_for(&app, clerk, 25).await;
    idle_for(&app, invited_id, 31).await;

    app.ok(
        &admin,
        "mutation { updateOrganization(input: { dormantAfterDays: 30 }) { dormantAfterDays } }",
        json!({}),
    )
    .await;
    until_inactive(&app, nurse).await;
    until_inactive(&app, invited_id).await;
    let (_, body) = app
        .graphql(Some(&nurse_token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{backend:?}: {body}");
    let open_invites = entity::invite::Entity::find()
        .filter(entity::invite::Column::UserId.eq(invited_id))
        .filter(entity::invite::Column::ExpiresAt.gt(Utc::now()))
        .all(&app.db)
        .await
        .unwrap();
    assert!(open_invites.is_empty(), "{backend:?}: {open_invites:?}");
    let actions = app.audit_actions(org).await;
    assert!(
        actions.contains(&"user.dormant_deactivate".to_owned()),
        "{actions:?}"
    );

    // The clerk is warned once, and stays active.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let sent = warnings(&app).await;
    assert_eq!(
        sent.iter()
            .map(|m| m.recipient.as_str())
            .collect::<Vec<_>>(),
        ["clerk@county.test"],
        "{backend:?}"
    );
    assert!(sent[0].body.contains("30 days"), "{}", sent[0].body);
    assert_eq!(status(&app, clerk).await, "ACTIVE");
    // The admin, who signed in today, is left alone.
    assert_eq!(
        app.ok(&admin, "{ me { email } }", json!({})).await["me"]["email"],
        "admin@county.test"
    );

    // Reactivated, the nurse counts afresh: the next sweeps leave her be.
    app.ok(
        &admin,
        "mutation($id: ID!) { reactivateUser(id: $id) { status } }",
        json!({ "id": nurse }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(status(&app, nurse).await, "ACTIVE", "{backend:?}");
    app.login("nurse@county.test", PASSWORD).await;
}
