//! Reading roles and their permissions.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::{
    auth::{Actor, Permission},
    error::AppResult,
};

/// The organisation's roles by name. Everyone may see them: a user's own roles are
/// part of their profile.
pub async fn list(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<Vec<entity::role::Model>> {
    Ok(actor
        .scope::<entity::role::Entity>()
        .order_by_asc(entity::role::Column::Name)
        .all(db)
        .await?)
}

/// The permissions of each of `role_ids`.
pub async fn permissions_by_role(
    db: &impl ConnectionTrait,
    role_ids: &[Uuid],
) -> AppResult<BTreeMap<Uuid, BTreeSet<Permission>>> {
    let rows = entity::role_permission::Entity::find()
        .filter(entity::role_permission::Column::RoleId.is_in(role_ids.iter().copied()))
        .all(db)
        .await?;
    let mut map: BTreeMap<Uuid, BTreeSet<Permission>> = BTreeMap::new();
    for row in rows {
        if let Some(p) = Permission::parse(&row.permission) {
            map.entry(row.role_id).or_default().insert(p);
        }
    }
    Ok(map)
}

/// The roles of each of `user_ids`.
pub async fn roles_by_user(
    db: &impl ConnectionTrait,
    user_ids: &[Uuid],
) -> AppResult<BTreeMap<Uuid, Vec<entity::role::Model>>> {
    let rows = entity::user_role::Entity::find()
        .filter(entity::user_role::Column::UserId.is_in(user_ids.iter().copied()))
        .find_also_related(entity::role::Entity)
        .all(db)
        .await?;
    let mut map: BTreeMap<Uuid, Vec<entity::role::Model>> = BTreeMap::new();
    for (link, role) in rows {
        if let Some(role) = role {
            map.entry(link.user_id).or_default().push(role);
        }
    }
    for roles in map.values_mut() {
        roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(map)
}
