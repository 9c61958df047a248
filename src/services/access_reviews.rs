//! Access reviews (HIPAA 164.308(a)(4)): access is reviewed and modified.
//!
//! Someone who manages roles starts a review of a set of users, or of the
//! holders of some roles, names its reviewers and a due date. Each reviewer
//! may attest a user under review: KEEP, or REVOKE, which takes the roles
//! under review away at once. At the due date the undecided users are handled
//! as the review says (REVOKE, or KEEP and report), and the review closes; its
//! outcome exports as CSV.
//!
//! A review changes roles only where its starter could: it is checked
//! against their authority when it starts and, as they are then, whenever a
//! revocation is carried out. No one attests their own access.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Alias, Expr, ExprTrait},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    commit_authz_change, outbox, roles,
};
use crate::db::{Page, PageRequest, Scope, begin_write, paginate, unscoped};
use crate::{
    auth::{Actor, Authority, Permission, session::SessionStore},
    domain::{Email, text},
    error::{AppError, AppResult, Validation},
};

/// What happens to users still undecided at the due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDue {
    Revoke,
    Keep,
}

impl OnDue {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "REVOKE",
            Self::Keep => "KEEP",
        }
    }
}

/// A reviewer's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Revoke,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "KEEP",
            Self::Revoke => "REVOKE",
        }
    }
}

/// What `startAccessReview` asks for.
pub struct NewReview {
    pub name: String,
    pub user_ids: Vec<Uuid>,
    pub role_ids: Vec<Uuid>,
    pub reviewer_ids: Vec<Uuid>,
    pub due_at: DateTime<Utc>,
    pub on_due: OnDue,
}

/// Start a review (ROLES_MANAGE).
pub async fn start(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewReview,
) -> AppResult<entity::access_review::Model> {
    actor.require(Permission::RolesManage)?;
    let mut v = Validation::default();
    let name = v.check(text::required(&new.name, "name", 200));
    if new.user_ids.is_empty() && new.role_ids.is_empty() {
        v.add(
            "userIds",
            "name the users to review, or roles whose holders to review",
        );
    }
    if new.reviewer_ids.is_empty() {
        v.add("reviewerIds", "name at least one reviewer");
    }
    let now = Utc::now();
    if new.due_at <= now {
        v.add("dueAt", "must be in the future");
    } else if new.due_at > now + Duration::days(366) {
        v.add("dueAt", "must be within a year");
    }
    v.finish()?;
    let txn = begin_write(db).await?;
    let reviewers = actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.is_in(new.reviewer_ids.iter().copied()))
        .filter(entity::user::Column::Status.eq("ACTIVE"))
        .all(&txn)
        .await?;
    if reviewers.len() != dedup(&new.reviewer_ids).len() {
        return Err(AppError::bad_input(
            "reviewerIds",
            "no such active user in the organisation",
        ));
    }
    let wanted_roles = roles::resolve_ids(&txn, actor, &new.role_ids, "roleIds").await?;
    let explicit = actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.is_in(new.user_ids.iter().copied()))
        .all(&txn)
        .await?;
    if explicit.len() != dedup(&new.user_ids).len() {
        return Err(AppError::bad_input(
            "userIds",
            "no such user in the organisation",
        ));
    }
    // Who is under review, and which of their roles.
    let mut under_review: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
    let explicit_ids: Vec<Uuid> = explicit.iter().map(|u| u.id).collect();
    for (user_id, held) in roles::roles_by_user(&txn, actor.tenant(), &explicit_ids).await? {
        under_review
            .entry(user_id)
            .or_default()
            .extend(held.iter().map(|r| r.id));
    }
    if !wanted_roles.is_empty() {
        let holders: Vec<(Uuid, Uuid)> = actor
            .tenant()
            .find::<entity::user_role::Entity>()
            .filter(entity::user_role::Column::RoleId.is_in(wanted_roles.iter().map(|r| r.id)))
            .all(&txn)
            .await?
            .into_iter()
            .map(|ur| (ur.user_id, ur.role_id))
            .collect();
        let people: BTreeSet<Uuid> = actor
            .scope::<entity::user::Entity>()
            .filter(entity::user::Column::Id.is_in(holders.iter().map(|(u, _)| *u)))
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        for (user_id, role_id) in holders {
            if people.contains(&user_id) {
                under_review.entry(user_id).or_default().insert(role_id);
            }
        }
    }
    under_review.retain(|_, roles| !roles.is_empty());
    if under_review.is_empty() {
        return Err(AppError::bad_input(
            "userIds",
            "nobody holds a role to review",
        ));
    }
    // The starter must be able to carry out every revocation the review may make.
    let authority = actor.authority();
    let users: Vec<Uuid> = under_review.keys().copied().collect();
    for user in actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.is_in(users.iter().copied()))
        .all(&txn)
        .await?
    {
        ensure_may_revoke(&txn, &authority, &user, &under_review[&user.id]).await?;
    }
    let review = entity::access_review::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        name: name.unwrap_or_default(),
        created_by: Some(actor.user_id),
        reviewer_ids: json!(dedup(&new.reviewer_ids)),
        due_at: new.due_at,
        on_due: new.on_due.as_str().to_owned(),
        closed_at: None,
        created_at: now,
    };
    entity::access_review::Entity::insert(entity::access_review::ActiveModel::from(review.clone()))
        .exec_without_returning(&txn)
        .await?;
    entity::access_review_item::Entity::insert_many(under_review.iter().map(
        |(user_id, role_ids)| entity::access_review_item::ActiveModel {
            id: Set(Uuid::now_v7()),
            review_id: Set(review.id),
            user_id: Set(*user_id),
            role_ids: Set(json!(role_ids)),
            decision: Set(None),
            timed_out: Set(false),
            decided_by: Set(None),
            decided_at: Set(None),
            note: Set(None),
            revoked_role_ids: Set(None),
        },
    ))
    .exec_without_returning(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "access_review.start")
            .target("AccessReview", review.id)
            .changes(json!({
                "name": review.name,
                "users": under_review.len(),
                "reviewerIds": review.reviewer_ids,
                "dueAt": review.due_at,
                "onDue": review.on_due,
            })),
    )
    .await?;
    for reviewer in &reviewers {
        let Ok(to) = Email::parse(&reviewer.email, "email") else {
            continue;
        };
        outbox::enqueue_email(
            &txn,
            outbox::NewEmail {
                organization_id: Some(actor.organization_id),
                kind: "access_review.assigned",
                to: &to,
                subject: format!("Access review to complete: {}", review.name),
                body: format!(
                    "Hello {first},\n\n{starter} {last} asks you to review the access of {n} \
                     user(s) in Rollcall by {due} UTC (\"{name}\"). For each, keep or revoke the \
                     roles under review; undecided ones are then {outcome}.\n",
                    first = reviewer.first_name,
                    starter = actor.user.first_name,
                    last = actor.user.last_name,
                    n = under_review.len(),
                    due = review.due_at.format("%Y-%m-%d %H:%M"),
                    name = review.name,
                    outcome = match new.on_due {
                        OnDue::Revoke => "revoked",
                        OnDue::Keep => "kept and reported",
                    },
                ),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(review)
}

/// A reviewer's decision on one user under review. REVOKE takes the roles
/// under review (those still held) away at once, on every instance.
pub async fn attest(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    actor: &Actor,
    review_id: Uuid,
    user_id: Uuid,
    decision: Decision,
    note: Option<&str>,
) -> AppResult<entity::access_review_item::Model> {
    let note = text::optional(note, "note", 2_000)?;
    let txn = begin_write(db).await?;
    roles::lock_organization(&txn, actor.organization_id).await?;
    let review = find(&txn, actor, review_id).await?;
    if !review.reviewers().contains(&actor.user_id) {
        return Err(AppError::forbidden(
            "You are not a reviewer of this access review.",
        ));
    }
    if review.closed_at.is_some() {
        return Err(AppError::Conflict("This access review is closed.".into()));
    }
    if user_id == actor.user_id {
        return Err(AppError::forbidden(
            "No one attests their own access: another reviewer must.",
        ));
    }
    let item = actor
        .tenant()
        .find::<entity::access_review_item::Entity>()
        .filter(entity::access_review_item::Column::ReviewId.eq(review.id))
        .filter(entity::access_review_item::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("User"))?;
    if item.decision.is_some() {
        return Err(AppError::Conflict(
            "This user's access has already been attested in this review.".into(),
        ));
    }
    let revoked = match decision {
        Decision::Keep => Vec::new(),
        Decision::Revoke => revoke(&txn, &review, &item).await?,
    };
    let item = settle(
        &txn,
        item,
        decision,
        Some(actor.user_id),
        note,
        &revoked,
        false,
    )
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "access_review.attest")
            .target("User", user_id)
            .changes(json!({
                "reviewId": review.id,
                "decision": decision.as_str(),
                "revokedRoleIds": revoked,
            })),
    )
    .await?;
    if revoked.is_empty() {
        txn.commit().await?;
    } else {
        commit_authz_change(txn, store, actor.organization_id).await?;
    }
    Ok(item)
}

/// Close every review past its due date: the undecided users are revoked or
/// kept as each review says, and the starter is emailed the outcome. How
/// many reviews closed.
pub async fn close_due(
    db: &DatabaseConnection,
    store: &dyn SessionStore,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    use entity::access_review::{Column, Entity};
    // The sweep visits every organisation's reviews.
    let due = unscoped::find::<Entity>()
        .filter(Column::ClosedAt.is_null())
        .filter(Column::DueAt.lte(now))
        .all(db)
        .await?;
    let mut closed = 0;
    for review in due {
        let scope = Scope::of(review.organization_id);
        let txn = begin_write(db).await?;
        roles::lock_organization(&txn, review.organization_id).await?;
        // Whichever instance gets here first closes it.
        let won = scope
            .update_many::<Entity>()
            .col_expr(Column::ClosedAt, Expr::value(now))
            .filter(Column::Id.eq(review.id))
            .filter(Column::ClosedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !won {
            continue;
        }
        let undecided = scope
            .find::<entity::access_review_item::Entity>()
            .filter(entity::access_review_item::Column::ReviewId.eq(review.id))
            .filter(entity::access_review_item::Column::Decision.is_null())
            .all(&txn)
            .await?;
        let on_due = if review.on_due == "REVOKE" {
            Decision::Revoke
        } else {
            Decision::Keep
        };
        let mut revoked_any = false;
        for item in &undecided {
            let revoked = match on_due {
                Decision::Revoke => revoke(&txn, &review, item).await?,
                Decision::Keep => Vec::new(),
            };
            revoked_any |= !revoked.is_empty();
            settle(&txn, item.clone(), on_due, None, None, &revoked, true).await?;
        }
        audit::record(
            &txn,
            AuditEntry {
                organization_id: Some(review.organization_id),
                action: "access_review.close",
                ..AuditEntry::default()
            }
            .target("AccessReview", review.id)
            .changes(json!({
                "undecided": undecided.len(),
                "onDue": review.on_due,
            })),
        )
        .await?;
        report(&txn, &review, undecided.len()).await?;
        if revoked_any {
            commit_authz_change(txn, store, review.organization_id).await?;
        } else {
            txn.commit().await?;
        }
        closed += 1;
    }
    Ok(closed)
}

/// The organisation's reviews, newest first: all of them for those who
/// manage roles or read the audit trail, those one reviews for anyone else.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    page: PageRequest,
) -> AppResult<Page<entity::access_review::Model>> {
    use entity::access_review::Column;
    let mut select = actor
        .scope::<entity::access_review::Entity>()
        .order_by_desc(Column::Id);
    if !(actor.has(Permission::RolesManage) || actor.has(Permission::AuditRead)) {
        // Only the reviews they review, chosen by the statement so that pages
        // stay whole: the reviewers are a JSON array of ids, read as text on
        // either backend.
        select = select.filter(
            Expr::col(Column::ReviewerIds)
                .cast_as(Alias::new("TEXT"))
                .like(format!("%\"{}\"%", actor.user_id)),
        );
    }
    paginate(db, select, Column::Id, page).await
}

/// A review the actor may see.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::access_review::Model> {
    let review = actor
        .scope::<entity::access_review::Entity>()
        .filter(entity::access_review::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("AccessReview"))?;
    let sees = actor.has(Permission::RolesManage)
        || actor.has(Permission::AuditRead)
        || review.reviewers().contains(&actor.user_id);
    if sees {
        Ok(review)
    } else {
        Err(AppError::NotFound("AccessReview"))
    }
}

/// The users under review in each of `review_ids`, in the order they were
/// added: one statement for them all.
pub async fn items_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    review_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<entity::access_review_item::Model>>> {
    let mut items: HashMap<Uuid, Vec<entity::access_review_item::Model>> = HashMap::new();
    for item in scope
        .find::<entity::access_review_item::Entity>()
        .filter(entity::access_review_item::Column::ReviewId.is_in(review_ids.iter().copied()))
        .order_by_asc(entity::access_review_item::Column::Id)
        .all(db)
        .await?
    {
        items.entry(item.review_id).or_default().push(item);
    }
    Ok(items)
}

/// The users under review, in the order they were added.
pub async fn items(
    db: &impl ConnectionTrait,
    review: &entity::access_review::Model,
) -> AppResult<Vec<entity::access_review_item::Model>> {
    Ok(Scope::of(review.organization_id)
        .find::<entity::access_review_item::Entity>()
        .filter(entity::access_review_item::Column::ReviewId.eq(review.id))
        .order_by_asc(entity::access_review_item::Column::Id)
        .all(db)
        .await?)
}

/// The outcome as a table for CSV: one row per user under review.
pub async fn outcome_table(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<(entity::access_review::Model, Vec<String>, Vec<Vec<String>>)> {
    let review = find(db, actor, id).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "access_review.export").target("AccessReview", review.id),
    )
    .await?;
    let items = items(db, &review).await?;
    let people: BTreeMap<Uuid, entity::user::Model> = actor
        .scope::<entity::user::Entity>()
        .filter(
            entity::user::Column::Id.is_in(
                items
                    .iter()
                    .flat_map(|i| [Some(i.user_id), i.decided_by])
                    .flatten(),
            ),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let role_names: BTreeMap<Uuid, String> = actor
        .scope::<entity::role::Entity>()
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let names = |ids: &serde_json::Value| {
        entity::access_review::uuids(ids)
            .iter()
            .map(|id| {
                role_names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let headers = [
        "Email",
        "First Name",
        "Last Name",
        "Roles Under Review",
        "Decision",
        "Decided By",
        "Decided At",
        "Timed Out",
        "Roles Revoked",
        "Note",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = items
        .iter()
        .map(|item| {
            let user = people.get(&item.user_id);
            vec![
                user.map(|u| u.email.clone()).unwrap_or_default(),
                user.map(|u| u.first_name.clone()).unwrap_or_default(),
                user.map(|u| u.last_name.clone()).unwrap_or_default(),
                names(&item.role_ids),
                item.decision.clone().unwrap_or_else(|| "PENDING".into()),
                item.decided_by
                    .and_then(|id| people.get(&id))
                    .map(|u| u.email.clone())
                    .unwrap_or_default(),
                item.decided_at
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                if item.timed_out { "yes" } else { "no" }.to_owned(),
                item.revoked_role_ids
                    .as_ref()
                    .map(names)
                    .unwrap_or_default(),
                item.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok((review, headers, rows))
}

/// Take the roles under review that the user still holds away from them,
/// with the authority of the review's starter as it is now; the ids taken.
/// Not the organisation's last administrator's.
async fn revoke(
    db: &impl ConnectionTrait,
    review: &entity::access_review::Model,
    item: &entity::access_review_item::Model,
) -> AppResult<Vec<Uuid>> {
    let under_review: BTreeSet<Uuid> = entity::access_review::uuids(&item.role_ids)
        .into_iter()
        .collect();
    let scope = Scope::of(review.organization_id);
    let held: BTreeSet<Uuid> = roles::roles_by_user(db, scope, &[item.user_id])
        .await?
        .remove(&item.user_id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let taken: Vec<Uuid> = under_review.intersection(&held).copied().collect();
    if taken.is_empty() {
        return Ok(taken);
    }
    let user = scope
        .find_by_id::<entity::user::Entity>(item.user_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("User"))?;
    let authority = roles::authority_of(db, scope, review.created_by).await?;
    ensure_may_revoke(db, &authority, &user, &taken.iter().copied().collect()).await?;
    scope
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::UserId.eq(item.user_id))
        .filter(entity::user_role::Column::RoleId.is_in(taken.iter().copied()))
        .exec(db)
        .await?;
    roles::ensure_an_administrator_remains(db, review.organization_id).await?;
    Ok(taken)
}

/// The access rule for a revocation: the user is manageable by `authority`
/// and every role taken is one `authority` could give.
async fn ensure_may_revoke(
    db: &impl ConnectionTrait,
    authority: &Authority,
    user: &entity::user::Model,
    role_ids: &BTreeSet<Uuid>,
) -> AppResult<()> {
    let scope = Scope::of(user.organization_id);
    let held = roles::permissions_by_user(db, scope, &[user.id])
        .await?
        .remove(&user.id)
        .unwrap_or_default();
    authority.ensure_may_manage(user, &held, "userIds")?;
    let ids: Vec<Uuid> = role_ids.iter().copied().collect();
    let by_role = roles::permissions_by_role(db, scope, &ids).await?;
    for role in scope
        .find::<entity::role::Entity>()
        .filter(entity::role::Column::Id.is_in(ids))
        .all(db)
        .await?
    {
        let permissions = by_role.get(&role.id).cloned().unwrap_or_default();
        authority.ensure_may_grant(&role.name, &permissions, "roleIds")?;
    }
    Ok(())
}

async fn settle(
    db: &impl ConnectionTrait,
    item: entity::access_review_item::Model,
    decision: Decision,
    by: Option<Uuid>,
    note: Option<String>,
    revoked: &[Uuid],
    timed_out: bool,
) -> AppResult<entity::access_review_item::Model> {
    let mut active: entity::access_review_item::ActiveModel = item.into();
    active.decision = Set(Some(decision.as_str().to_owned()));
    active.decided_by = Set(by);
    active.decided_at = Set(Some(Utc::now()));
    active.note = Set(note);
    active.timed_out = Set(timed_out);
    active.revoked_role_ids = Set((!revoked.is_empty()).then(|| json!(revoked)));
    Ok(sea_orm::ActiveModelTrait::update(active, db).await?)
}

/// Email the review's starter what the due date did.
async fn report(
    db: &impl ConnectionTrait,
    review: &entity::access_review::Model,
    undecided: usize,
) -> AppResult<()> {
    let starter = match review.created_by {
        Some(id) => {
            Scope::of(review.organization_id)
                .actors()
                .filter(entity::user::Column::Id.eq(id))
                .one(db)
                .await?
        }
        None => None,
    };
    let Some(starter) = starter else {
        return Ok(());
    };
    let Ok(to) = Email::parse(&starter.email, "email") else {
        return Ok(());
    };
    let what = match (undecided, review.on_due.as_str()) {
        (0, _) => "Every user under review was attested in time.".to_owned(),
        (n, "REVOKE") => {
            format!("{n} user(s) were not attested in time: their roles under review were revoked.")
        }
        (n, _) => format!(
            "{n} user(s) were not attested in time: their roles were kept, and are marked timed out in the outcome."
        ),
    };
    outbox::enqueue_email(
        db,
        outbox::NewEmail {
            organization_id: Some(review.organization_id),
            kind: "access_review.closed",
            to: &to,
            subject: format!("Access review closed: {}", review.name),
            body: format!(
                "The access review \"{}\" reached its due date and closed. {what}\n\n\
                 Its outcome is in Rollcall (accessReviews) and as CSV at \
                 /exports/access-reviews/{}.csv.\n",
                review.name, review.id
            ),
        },
    )
    .await?;
    Ok(())
}

fn dedup(ids: &[Uuid]) -> Vec<Uuid> {
    let set: BTreeSet<Uuid> = ids.iter().copied().collect();
    set.into_iter().collect()
}
