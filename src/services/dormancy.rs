//! Dormant accounts: an organisation that sets `dormantAfterDays` has the
//! users who have not signed in for that long deactivated (their sessions
//! end and their unused invites with them), each warned by email a week
//! before. Inactivity counts from the last sign-in, or from when the account
//! was made or last reactivated. Super admins, API clients' service accounts
//! and the organisation's last administrator are never deactivated this way.
//! Done by the sweeps, once across all instances.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, sea_query::Expr};
use serde_json::json;

use super::{
    audit::{self, AuditEntry},
    outbox, roles,
};
use crate::db::{Scope, begin_write, global};
use crate::{auth::session::SessionStore, domain::Email, error::AppResult};

/// The shortest dormancy an organisation may set: longer than the warning.
pub const MIN_DAYS: i32 = 14;
/// How long before the deactivation the user is warned.
const WARNING: Duration = Duration::days(7);

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub warned: usize,
    pub deactivated: usize,
}

/// Warn and deactivate the dormant users of every organisation that asks.
pub async fn sweep(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    now: DateTime<Utc>,
) -> AppResult<Swept> {
    let organizations = global::find::<entity::organization::Entity>()
        .filter(entity::organization::Column::DormantAfterDays.is_not_null())
        .all(db)
        .await?;
    let mut swept = Swept::default();
    for organization in organizations {
        let Some(days) = organization.dormant_after_days else {
            continue;
        };
        let dormant_from = now - Duration::days(i64::from(days));
        let warn_from = dormant_from + WARNING;
        // Those whose last sign-in (or creation) is old enough to warn; a
        // reactivation since is looked at below.
        let candidates = crate::db::Scope::of(organization.id)
            .find::<entity::user::Entity>()
            .filter(entity::user::Column::Status.eq("ACTIVE"))
            .filter(entity::user::Column::IsSuperAdmin.eq(false))
            .filter(
                sea_orm::Condition::any()
                    .add(entity::user::Column::LastLoginAt.lt(warn_from))
                    .add(
                        sea_orm::Condition::all()
                            .add(entity::user::Column::LastLoginAt.is_null())
                            .add(entity::user::Column::CreatedAt.lt(warn_from)),
                    ),
            )
            .all(db)
            .await?;
        for user in candidates {
            let since = user.active_since();
            if since < dormant_from {
                if deactivate(db, store, &organization, &user, days).await? {
                    swept.deactivated += 1;
                }
            } else if since < warn_from && user.dormancy_warned_at.is_none_or(|at| at < since) {
                warn(
                    db,
                    &organization,
                    &user,
                    since + Duration::days(i64::from(days)),
                    now,
                )
                .await?;
                swept.warned += 1;
            }
        }
    }
    Ok(swept)
}

/// Deactivate one dormant user, unless they are the last administrator;
/// whether they were.
async fn deactivate(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    organization: &entity::organization::Model,
    user: &entity::user::Model,
    days: i32,
) -> AppResult<bool> {
    let txn = begin_write(db).await?;
    roles::lock_organization(&txn, organization.id).await?;
    let user = super::users::set_status(&txn, user.clone(), "INACTIVE").await?;
    if roles::ensure_an_administrator_remains(&txn, organization.id)
        .await
        .is_err()
    {
        tracing::warn!(user_id = %user.id, "a dormant user is the organisation's last administrator: kept active");
        return Ok(false);
    }
    // Invites not accepted go with the account.
    Scope::of(user.organization_id)
        .update_many::<entity::invite::Entity>()
        .col_expr(entity::invite::Column::ExpiresAt, Expr::value(Utc::now()))
        .filter(entity::invite::Column::UserId.eq(user.id))
        .filter(entity::invite::Column::UsedAt.is_null())
        .filter(entity::invite::Column::ExpiresAt.gt(Utc::now()))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry {
            organization_id: Some(organization.id),
            action: "user.dormant_deactivate",
            ..AuditEntry::default()
        }
        .target("User", user.id)
        .changes(json!({
            "lastLoginAt": user.last_login_at,
            "dormantAfterDays": days,
        })),
    )
    .await?;
    store.revoke_user(user.id, None).await?;
    super::commit_authz_change(txn, store, organization.id).await?;
    Ok(true)
}

/// Tell a user their account goes dormant at `at` unless they sign in.
async fn warn(
    db: &DatabaseConnection,
    organization: &entity::organization::Model,
    user: &entity::user::Model,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let txn = begin_write(db).await?;
    // Once per stretch of inactivity, whichever instance gets here first.
    let won = Scope::of(user.organization_id)
        .update_many::<entity::user::Entity>()
        .col_expr(entity::user::Column::DormancyWarnedAt, Expr::value(now))
        .filter(entity::user::Column::Id.eq(user.id))
        .filter(match user.dormancy_warned_at {
            Some(warned) => entity::user::Column::DormancyWarnedAt.eq(warned),
            None => entity::user::Column::DormancyWarnedAt.is_null(),
        })
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !won {
        return Ok(());
    }
    if let Ok(to) = Email::parse(&user.email, "email") {
        outbox::enqueue_email(
            &txn,
            outbox::NewEmail {
                organization_id: Some(organization.id),
                kind: "user.dormancy_warning",
                to: &to,
                subject: "Your Rollcall account will be deactivated for inactivity".to_owned(),
                body: format!(
                    "Hello {first},\n\nYou have not signed in to Rollcall at {org} since {since}. \
                     {org} deactivates accounts unused for {days} days: yours will be deactivated on \
                     {at} UTC unless you sign in before then.\n",
                    first = user.first_name,
                    org = organization.name,
                    since = user.active_since().format("%Y-%m-%d"),
                    days = organization.dormant_after_days.unwrap_or_default(),
                    at = at.format("%Y-%m-%d %H:%M"),
                ),
            },
        )
        .await?;
    }
    audit::record(
        &txn,
        AuditEntry {
            organization_id: Some(organization.id),
            action: "user.dormancy_warning",
            ..AuditEntry::default()
        }
        .target("User", user.id),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
