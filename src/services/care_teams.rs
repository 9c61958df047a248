//! Care teams: patients assigned to staff users, and who may see which patients.
//!
//! `PATIENTS_ALL` sees every patient of the organisation; `PATIENTS_READ` alone
//! sees only the patients assigned to the user, and those their emergency
//! access ([`super::break_glass`]) covers while it lasts. The rule is applied in the
//! query of every read of patients ([`visible`]), from the actor's permissions
//! as they are on this request, so a role change narrows what a user sees on
//! their very next request.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Select, TransactionSession,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, Query},
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::db::{Page, PageRequest, Scope, escape_like, paginate};
use crate::{
    auth::{Actor, Permission},
    error::{AppError, AppResult},
};

/// Narrow `select` (over a table whose `patient_column` names a patient) to the
/// patients the actor may see.
pub fn visible<E: EntityTrait>(
    select: Select<E>,
    patient_column: E::Column,
    actor: &Actor,
) -> Select<E> {
    if actor.has(Permission::PatientsAll) {
        return select;
    }
    let emergency = actor.emergency_access();
    if emergency.is_some_and(|access| access.patient_id.is_none()) {
        return select;
    }
    use entity::patient_assignment::Column;
    let assigned = Expr::col(patient_column).in_subquery(
        Query::select()
            .column(Column::PatientId)
            .from(entity::patient_assignment::Entity)
            .and_where(Expr::col(Column::UserId).eq(actor.user_id))
            .to_owned(),
    );
    match emergency.and_then(|access| access.patient_id) {
        Some(patient) => select.filter(
            Condition::any()
                .add(assigned)
                .add(Expr::col(patient_column).eq(patient)),
        ),
        None => select.filter(assigned),
    }
}

/// The organisation's patients the actor may see.
fn patients_in_view(actor: &Actor) -> Select<entity::patient::Entity> {
    visible(
        actor.scope::<entity::patient::Entity>(),
        entity::patient::Column::Id,
        actor,
    )
}

/// One patient, if the actor may see them.
pub async fn find_patient(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::patient::Model>> {
    actor.require(Permission::PatientsRead)?;
    let patient = patients_in_view(actor)
        .filter(entity::patient::Column::Id.eq(id))
        .one(db)
        .await?;
    if let Some(patient) = &patient {
        audit::record(
            db,
            AuditEntry::by(actor, "patients.read").target("Patient", patient.id),
        )
        .await?;
    }
    Ok(patient)
}

/// A page of the patients the actor may see, narrowed by `search` (part of a
/// name, email or external id) and to `assigned_to`'s caseload when given.
pub async fn patients(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    search: Option<&str>,
    assigned_to: Option<Uuid>,
    page: PageRequest,
) -> AppResult<Page<entity::patient::Model>> {
    use entity::patient::Column;
    actor.require(Permission::PatientsRead)?;
    let mut select = patients_in_view(actor);
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let like = |column: Column| {
            Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(column)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
        };
        select = select.filter(
            Condition::any()
                .add(like(Column::FirstName))
                .add(like(Column::LastName))
                .add(like(Column::Email))
                .add(like(Column::ExternalId)),
        );
    }
    if let Some(user_id) = assigned_to {
        use entity::patient_assignment as assignment;
        select = select.filter(
            Expr::col(Column::Id).in_subquery(
                Query::select()
                    .column(assignment::Column::PatientId)
                    .from(assignment::Entity)
                    .and_where(Expr::col(assignment::Column::UserId).eq(user_id))
                    .to_owned(),
            ),
        );
    }
    let page = paginate(db, select, Column::Id, page).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "patients.read").changes(json!({
            "patients": page.items.iter().map(|p| p.id).collect::<Vec<_>>(),
            "search": search,
            "assignedTo": assigned_to,
        })),
    )
    .await?;
    Ok(page)
}

/// The staff users each patient is assigned to.
pub async fn care_teams(
    db: &impl ConnectionTrait,
    scope: Scope,
    patient_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    use entity::patient_assignment::{Column, Entity};
    let mut teams: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for assignment in scope
        .find::<Entity>()
        .filter(Column::PatientId.is_in(patient_ids.iter().copied()))
        .all(db)
        .await?
    {
        teams
            .entry(assignment.patient_id)
            .or_default()
            .push(assignment.user_id);
    }
    Ok(teams)
}

/// Who may change `user_id`'s caseload: anyone with PATIENTS_WRITE, and the
/// user themselves with PATIENTS_SELF_ASSIGN. The patients must be ones the
/// actor sees.
async fn check_change(
    db: &impl ConnectionTrait,
    actor: &Actor,
    user_id: Uuid,
    patient_ids: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    if user_id == actor.user_id && actor.has(Permission::PatientsSelfAssign) {
        actor.require(Permission::PatientsRead)?;
    } else {
        actor.require(Permission::PatientsWrite)?;
    }
    actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.eq(user_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("User"))?;
    let wanted: HashSet<Uuid> = patient_ids.iter().copied().collect();
    let seen: HashSet<Uuid> = patients_in_view(actor)
        .filter(entity::patient::Column::Id.is_in(wanted.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let mut unknown: Vec<String> = wanted.difference(&seen).map(Uuid::to_string).collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(AppError::bad_input(
            "patientIds",
            format!("no such patient in your view: {}", unknown.join(", ")),
        ));
    }
    let mut ids: Vec<Uuid> = seen.into_iter().collect();
    ids.sort();
    Ok(ids)
}

/// Assign patients to a user; how many were newly assigned.
pub async fn assign(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    user_id: Uuid,
    patient_ids: &[Uuid],
) -> AppResult<u64> {
    let txn = crate::db::begin_write(db).await?;
    let assigned = assign_in(&txn, actor, user_id, patient_ids).await?;
    txn.commit().await?;
    Ok(assigned)
}

async fn assign_in(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    user_id: Uuid,
    patient_ids: &[Uuid],
) -> AppResult<u64> {
    use entity::patient_assignment::{Column, Entity};
    let ids = check_change(db, actor, user_id, patient_ids).await?;
    let held: HashSet<Uuid> = actor
        .tenant()
        .find::<Entity>()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::PatientId.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.patient_id)
        .collect();
    let new: Vec<Uuid> = ids.into_iter().filter(|id| !held.contains(id)).collect();
    insert_assignments(db, actor, user_id, &new).await?;
    Ok(new.len() as u64)
}

/// Record assignments that were checked already (or of a patient the actor just
/// created), with their audit event.
pub(super) async fn insert_assignments(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    user_id: Uuid,
    new: &[Uuid],
) -> AppResult<()> {
    use entity::patient_assignment::{ActiveModel, Entity};
    if new.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    Entity::insert_many(new.iter().map(|patient_id| ActiveModel {
        user_id: Set(user_id),
        patient_id: Set(*patient_id),
        organization_id: Set(actor.organization_id),
        assigned_by: Set(Some(actor.user_id)),
        created_at: Set(now),
    }))
    .on_conflict_do_nothing()
    .exec(db)
    .await?;
    audit::record(
        db,
        AuditEntry::by(actor, "patients.assign")
            .target("User", user_id)
            .changes(json!({ "patientIds": new })),
    )
    .await?;
    Ok(())
}

/// Take patients out of a user's caseload; how many were assigned.
pub async fn unassign(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    user_id: Uuid,
    patient_ids: &[Uuid],
) -> AppResult<u64> {
    use entity::patient_assignment::{Column, Entity};
    let txn = crate::db::begin_write(db).await?;
    let ids = check_change(&txn, actor, user_id, patient_ids).await?;
    let removed = actor
        .tenant()
        .delete_many::<Entity>()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::PatientId.is_in(ids.iter().copied()))
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        audit::record(
            &txn,
            AuditEntry::by(actor, "patients.unassign")
                .target("User", user_id)
                .changes(json!({ "patientIds": ids })),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(removed)
}

/// Whether the actor may see this patient.
pub async fn can_see(
    db: &impl ConnectionTrait,
    actor: &Actor,
    patient_id: Uuid,
) -> AppResult<bool> {
    Ok(patients_in_view(actor)
        .filter(entity::patient::Column::Id.eq(patient_id))
        .one(db)
        .await?
        .is_some())
}
