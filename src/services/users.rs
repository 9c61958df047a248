//! Reading staff users within the actor's organisation.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{Page, paginate};
use crate::{
    auth::{Actor, Permission},
    error::AppResult,
};

/// What `users` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Matched against first name, last name and email, case-insensitively.
    pub search: Option<String>,
    pub status: Option<String>,
    pub role_id: Option<Uuid>,
}

/// A user of the actor's organisation, or `None` (also for other organisations').
/// Anyone may read themselves; others need USERS_READ.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::user::Model>> {
    if id != actor.user_id {
        actor.require(Permission::UsersRead)?;
    }
    Ok(actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// The actor's own record.
pub async fn me(db: &impl ConnectionTrait, actor: &Actor) -> AppResult<entity::user::Model> {
    entity::user::Entity::find_by_id(actor.user_id)
        .one(db)
        .await?
        .ok_or(crate::error::AppError::Unauthenticated)
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: UserFilter,
    after: Option<Uuid>,
    first: u64,
) -> AppResult<Page<entity::user::Model>> {
    use entity::user::Column;
    actor.require(Permission::UsersRead)?;
    let mut select = actor.scope::<entity::user::Entity>();
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let like = || LikeExpr::new(&pattern).escape('\\');
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(Column::FirstName))).like(like()))
                .add(Expr::expr(Func::lower(Expr::col(Column::LastName))).like(like()))
                .add(Expr::col(Column::Email).like(like())),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status));
    }
    if let Some(role_id) = filter.role_id {
        select = select.filter(
            Column::Id.in_subquery(
                Query::select()
                    .column(entity::user_role::Column::UserId)
                    .from(entity::user_role::Entity)
                    .and_where(Expr::col(entity::user_role::Column::RoleId).eq(role_id))
                    .to_owned(),
            ),
        );
    }
    paginate(db, select, Column::Id, after, first).await
}

fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
