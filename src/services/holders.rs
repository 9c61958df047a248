//! Who holds a permission now: whom to tell of what that permission watches
//! over (certifications falling due, emergency access to review). Below the
//! roles, the credentials and emergency access, which all ask it.

use sea_orm::{
    ColumnTrait, ConnectionTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query, SelectStatement},
};
use uuid::Uuid;

use crate::{auth::Permission, db::Scope, error::AppResult};

/// The active people of an organisation who hold `permission` through a
/// role, but `except`: whom to tell of what that permission watches over.
pub async fn active(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    permission: Permission,
    except: Option<Uuid>,
) -> AppResult<Vec<entity::user::Model>> {
    use entity::user::{Column, Entity};
    // By a subquery, so that each person comes once (a DISTINCT over users'
    // JSON columns is not something PostgreSQL can compare).
    let mut select = Scope::of(organization_id)
        .find::<Entity>()
        .filter(Column::Id.in_subquery(holding(permission)))
        .filter(Column::Status.eq("ACTIVE"));
    if let Some(id) = except {
        select = select.filter(Column::Id.ne(id));
    }
    Ok(select.all(db).await?)
}

/// The ids of the accounts holding `permission` through a role, as a
/// subquery.
pub(super) fn holding(permission: Permission) -> SelectStatement {
    Query::select()
        .column((entity::user_role::Entity, entity::user_role::Column::UserId))
        .from(entity::user_role::Entity)
        .inner_join(
            entity::role_permission::Entity,
            Expr::col((
                entity::role_permission::Entity,
                entity::role_permission::Column::RoleId,
            ))
            .equals((entity::user_role::Entity, entity::user_role::Column::RoleId)),
        )
        .and_where(
            Expr::col((
                entity::role_permission::Entity,
                entity::role_permission::Column::Permission,
            ))
            .eq(permission.as_str()),
        )
        .to_owned()
}
