//! Emergency access ("break glass", HIPAA 164.312(a)(2)(ii)): a user whose
//! role has BREAK_GLASS and who sees only their assigned patients may, giving
//! a reason, see one more patient or every patient of the organisation for a
//! bounded time.
//!
//! The grant changes what the user sees through the one rule of
//! [`super::care_teams::visible`], from their next request on every instance
//! (the organisation's authorisation epoch moves when it starts or is ended),
//! and stops at its end by time alone: the actor's cached record is read
//! again from that moment, and [`Actor::emergency_access`] is checked against
//! the clock on every use. Every event made under it carries the grant's id.
//! The organisation's reviewers (AUDIT_READ) hear of it at once by email and
//! webhook (`break_glass.started`), and each grant waits in their queue until
//! one of them reviews it.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    commit_authz_change, outbox,
};
use crate::db::{Page, PageRequest, begin_write, global, paginate, unscoped};
use crate::{
    auth::{Actor, Permission, actor::BreakGlassAccess, session::SessionStore},
    domain::{Email, text},
    error::{AppError, AppResult, Validation},
};

/// The shortest reason accepted, in characters.
pub const MIN_REASON: usize = 15;
const MAX_REASON: usize = 1_000;
/// The longest a reviewer's note may be.
const MAX_NOTE: usize = 2_000;
/// The most an organisation may allow, in minutes: a day.
pub const MAX_MINUTES: i32 = 24 * 60;

/// What `breakGlass` asks for.
pub struct Request {
    pub reason: String,
    /// One patient; every patient of the organisation when none.
    pub patient_id: Option<Uuid>,
    /// How long; the organisation's limit when none.
    pub minutes: Option<i32>,
    /// How long a minute lasts (`ROLLCALL_BREAK_GLASS_MINUTE_SECONDS`).
    pub minute: std::time::Duration,
}

/// The emergency access a user holds now, if any.
pub async fn in_force(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> AppResult<Option<BreakGlassAccess>> {
    use entity::break_glass_grant::{Column, Entity};
    let now = Utc::now();
    let grant = unscoped::find::<Entity>()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::EndedAt.is_null())
        .filter(Column::StartsAt.lte(now))
        .filter(Column::EndsAt.gt(now))
        .order_by_desc(Column::EndsAt)
        .one(db)
        .await?;
    Ok(grant.map(|grant| BreakGlassAccess {
        grant_id: grant.id,
        patient_id: grant.patient_id,
        stops_at: grant.stops_at(),
    }))
}

/// Start emergency access for the actor.
pub async fn start(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    actor: &Actor,
    request: Request,
    public_url: &str,
) -> AppResult<entity::break_glass_grant::Model> {
    actor.session()?;
    actor.require(Permission::BreakGlass)?;
    actor.require(Permission::PatientsRead)?;
    if actor.has(Permission::PatientsAll) {
        // Emergency access is for those who see only their care team.
        return Err(AppError::forbidden(
            "You already see every patient of the organisation: emergency access is for those who see only their own.",
        ));
    }
    let organization = global::find_by_id::<entity::organization::Entity>(actor.organization_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Organization"))?;
    let mut v = Validation::default();
    let reason = request.reason.trim();
    if reason.chars().count() < MIN_REASON {
        v.add(
            "reason",
            format!("say why, in at least {MIN_REASON} characters"),
        );
    } else if reason.chars().count() > MAX_REASON {
        v.add("reason", format!("must be at most {MAX_REASON} characters"));
    }
    let limit = organization.break_glass_max_minutes;
    let minutes = request.minutes.unwrap_or(limit);
    if !(1..=limit).contains(&minutes) {
        v.add(
            "minutes",
            format!("must be between 1 and {limit}, the organisation's limit"),
        );
    }
    v.finish()?;
    if let Some(patient_id) = request.patient_id {
        let exists = actor
            .scope::<entity::patient::Entity>()
            .filter(entity::patient::Column::Id.eq(patient_id))
            .count(db)
            .await?
            > 0;
        if !exists {
            return Err(AppError::NotFound("Patient"));
        }
    }
    let txn = begin_write(db).await?;
    if in_force(&txn, actor.user_id).await?.is_some() {
        return Err(AppError::Conflict(
            "You already hold emergency access: end it (endBreakGlass) before asking again.".into(),
        ));
    }
    let now = Utc::now();
    let grant = entity::break_glass_grant::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        user_id: actor.user_id,
        patient_id: request.patient_id,
        reason: reason.to_owned(),
        starts_at: now,
        ends_at: now
            + Duration::from_std(request.minute * minutes.unsigned_abs())
                .unwrap_or_else(|_| Duration::minutes(i64::from(minutes))),
        ended_at: None,
        reviewed_by: None,
        reviewed_at: None,
        review_note: None,
    };
    entity::break_glass_grant::Entity::insert(entity::break_glass_grant::ActiveModel::from(
        grant.clone(),
    ))
    .exec_without_returning(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "break_glass.start")
            .target("BreakGlassGrant", grant.id)
            .changes(json!({
                "patientId": grant.patient_id,
                "minutes": minutes,
                "endsAt": grant.ends_at,
                "reason": grant.reason,
            })),
    )
    .await?;
    notify_reviewers(&txn, actor, &grant, public_url).await?;
    commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(grant)
}

/// End the actor's emergency access now; whether they held any.
pub async fn end(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    actor: &Actor,
) -> AppResult<bool> {
    use entity::break_glass_grant::{Column, Entity};
    actor.session()?;
    let txn = begin_write(db).await?;
    let Some(access) = in_force(&txn, actor.user_id).await? else {
        return Ok(false);
    };
    actor
        .tenant()
        .update_many::<Entity>()
        .col_expr(Column::EndedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(access.grant_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "break_glass.end").target("BreakGlassGrant", access.grant_id),
    )
    .await?;
    commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(true)
}

/// The organisation's grants, newest first, for a reviewer (AUDIT_READ);
/// anyone else sees only their own. `pending_review`: only those no one has
/// reviewed yet (true) or only reviewed ones (false).
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    pending_review: Option<bool>,
    page: PageRequest,
) -> AppResult<Page<entity::break_glass_grant::Model>> {
    use entity::break_glass_grant::Column;
    let mut select = actor.scope::<entity::break_glass_grant::Entity>();
    if !actor.has(Permission::AuditRead) {
        select = select.filter(Column::UserId.eq(actor.user_id));
    }
    match pending_review {
        Some(true) => select = select.filter(Column::ReviewedAt.is_null()),
        Some(false) => select = select.filter(Column::ReviewedAt.is_not_null()),
        None => {}
    }
    paginate(db, select.order_by_desc(Column::Id), Column::Id, page).await
}

/// Review a grant (AUDIT_READ): what the reviewer found, once. No one
/// reviews their own.
pub async fn review(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    note: &str,
) -> AppResult<entity::break_glass_grant::Model> {
    use entity::break_glass_grant::{ActiveModel, Column};
    actor.require(Permission::AuditRead)?;
    let note = text::required(note, "note", MAX_NOTE)?;
    let txn = begin_write(db).await?;
    let grant = actor
        .scope::<entity::break_glass_grant::Entity>()
        .filter(Column::Id.eq(id))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("BreakGlassGrant"))?;
    if grant.user_id == actor.user_id {
        return Err(AppError::forbidden(
            "No one reviews their own emergency access: another reviewer must.",
        ));
    }
    if grant.reviewed_at.is_some() {
        return Err(AppError::Conflict(
            "This emergency access has already been reviewed.".into(),
        ));
    }
    let now = Utc::now();
    let reviewed = sea_orm::ActiveModelTrait::update(
        ActiveModel {
            id: Set(grant.id),
            reviewed_by: Set(Some(actor.user_id)),
            reviewed_at: Set(Some(now)),
            review_note: Set(Some(note.clone())),
            ..Default::default()
        },
        &txn,
    )
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "break_glass.review")
            .target("BreakGlassGrant", grant.id)
            .changes(json!({ "note": note, "userId": grant.user_id })),
    )
    .await?;
    txn.commit().await?;
    Ok(reviewed)
}

/// Email each active reviewer of the organisation (AUDIT_READ through a
/// role) but the grantee, in the grant's transaction. The mail names no
/// patient: it points the reviewer to Rollcall.
async fn notify_reviewers(
    db: &impl ConnectionTrait,
    actor: &Actor,
    grant: &entity::break_glass_grant::Model,
    public_url: &str,
) -> AppResult<()> {
    let reviewers = super::holders::active(
        db,
        grant.organization_id,
        Permission::AuditRead,
        Some(grant.user_id),
    )
    .await?;
    let user = &actor.user;
    let scope = match grant.patient_id {
        Some(_) => "one patient outside their care team",
        None => "every patient of the organisation",
    };
    for reviewer in reviewers {
        let Ok(to) = Email::parse(&reviewer.email, "email") else {
            continue;
        };
        outbox::enqueue_email(
            db,
            outbox::NewEmail {
                organization_id: Some(grant.organization_id),
                kind: "break_glass.started",
                to: &to,
                subject: format!(
                    "Emergency access: {} {} now sees {scope}",
                    user.first_name, user.last_name
                ),
                body: format!(
                    "{first} {last} ({email}) used emergency access at {start} UTC to see {scope}, \
                     until {end} UTC.\n\nTheir reason: {reason}\n\nEvery record they open under it \
                     is marked in the audit trail. Review it in Rollcall: {public_url} \
                     (break-glass grant {id}).\n",
                    first = user.first_name,
                    last = user.last_name,
                    email = user.email,
                    start = grant.starts_at.format("%Y-%m-%d %H:%M"),
                    end = grant.ends_at.format("%Y-%m-%d %H:%M"),
                    reason = grant.reason,
                    id = grant.id,
                ),
            },
        )
        .await?;
    }
    Ok(())
}
