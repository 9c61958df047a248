//! Reading organisations: one's own, or any for a super admin.

use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::{Page, paginate};
use crate::{
    auth::Actor,
    error::{AppError, AppResult},
};

/// The actor's organisation, or with an id any organisation for a super admin.
/// Another organisation's id answers NOT_FOUND for everyone else.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Option<Uuid>,
) -> AppResult<entity::organization::Model> {
    let id = id.unwrap_or(actor.organization_id);
    if id != actor.organization_id && !actor.is_super_admin {
        return Err(AppError::NotFound("Organization"));
    }
    entity::organization::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Organization"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    after: Option<Uuid>,
    first: u64,
) -> AppResult<Page<entity::organization::Model>> {
    actor.require_super_admin()?;
    paginate(
        db,
        entity::organization::Entity::find(),
        entity::organization::Column::Id,
        after,
        first,
    )
    .await
}
