//! What the product does, one file per area: plain async functions over a database
//! connection, domain types and the calling [`Actor`](crate::auth::Actor). No
//! async-graphql, no poem: a GraphQL mutation and an import row follow the same rules.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod care_teams;
pub mod imports;
pub mod invites;
pub mod locations;
pub mod organizations;
pub mod outbox;
pub mod patients;
pub mod profiles;
pub mod projects;
pub mod providers;
pub mod roles;
pub mod sessions;
pub mod users;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::error::AppResult;

/// A page of a keyset-paginated list, newest ids last (ids are UUIDv7, so in
/// creation order).
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: u64,
}

/// Fetch `first` rows after the id `after`, ordered by `id_column`, with the total.
pub async fn paginate<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    after: Option<uuid::Uuid>,
    first: u64,
) -> AppResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let total_count = select.clone().count(db).await?;
    let mut page = select.order_by_asc(id_column);
    if let Some(after) = after {
        page = page.filter(id_column.gt(after));
    }
    let mut items = page.limit(first + 1).all(db).await?;
    let has_next_page = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(Page {
        items,
        has_next_page,
        total_count,
    })
}

/// Escape `%`, `_` and `\\` for a LIKE pattern with `\\` as the escape character.
pub(crate) fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
