//! Listing and ending sessions: one's own, or (with SESSIONS_MANAGE) anyone's in
//! the organisation.

use sea_orm::{ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::{
    auth::{
        Actor, Permission,
        session::{SessionId, SessionRecord, SessionStore},
    },
    error::{AppError, AppResult},
};

pub async fn my_sessions(store: &dyn SessionStore, actor: &Actor) -> AppResult<Vec<SessionRecord>> {
    actor.session()?;
    Ok(store.list_for_user(actor.user_id).await?)
}

/// The sessions of a user of the actor's organisation.
pub async fn user_sessions(
    db: &impl ConnectionTrait,
    store: &dyn SessionStore,
    actor: &Actor,
    user_id: Uuid,
) -> AppResult<Vec<SessionRecord>> {
    if user_id != actor.user_id {
        actor.require(Permission::SessionsManage)?;
        ensure_user_in_scope(db, actor, user_id).await?;
    }
    Ok(store.list_for_user(user_id).await?)
}

/// End one session: the actor's own, or with SESSIONS_MANAGE any of the organisation.
pub async fn revoke_session(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: &SessionId,
) -> AppResult<()> {
    let session = store
        .get(id)
        .await?
        .filter(|s| s.organization_id == actor.organization_id)
        .ok_or(AppError::NotFound("Session"))?;
    if session.user_id != actor.user_id {
        actor.require(Permission::SessionsManage)?;
    }
    store.revoke(id).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "session.revoke")
            .target("Session", id)
            .changes(serde_json::json!({ "userId": session.user_id })),
    )
    .await
}

/// End every session of a user of the organisation; how many ended.
pub async fn revoke_user_sessions(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    user_id: Uuid,
) -> AppResult<u64> {
    if user_id != actor.user_id {
        actor.require(Permission::SessionsManage)?;
    }
    ensure_user_in_scope(db, actor, user_id).await?;
    let ended = store.revoke_user(user_id, None).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "session.revoke_user")
            .target("User", user_id)
            .changes(serde_json::json!({ "ended": ended })),
    )
    .await?;
    Ok(ended)
}

async fn ensure_user_in_scope(
    db: &impl ConnectionTrait,
    actor: &Actor,
    user_id: Uuid,
) -> AppResult<()> {
    let found = actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.eq(user_id))
        .count(db)
        .await?;
    if found == 0 {
        return Err(AppError::NotFound("User"));
    }
    Ok(())
}
