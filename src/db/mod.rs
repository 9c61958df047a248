//! The database room, below the services and the import: transactions that
//! write, the batch writer ([`bulk`]), keyset pages and LIKE patterns. It
//! knows tables and connections, not the product's rules.

pub mod bulk;
pub mod rows;
pub mod scope;

pub use scope::{Global, InScope, Scope, global, unscoped};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::error::AppResult;

/// Begin a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`): a deferred transaction that read first and then
/// found another writer had committed would fail at its first write instead of
/// waiting its turn. Elsewhere, and nested, a plain transaction.
pub async fn begin_write<C>(db: &C) -> Result<C::Transaction, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        })
        .await
    } else {
        db.begin().await
    }
}

/// Begin the transaction in which a batch of import rows is checked
/// (`write` false: a preview) or written.
///
/// On PostgreSQL the batch's lookups are planned for their own parameters
/// each time (`plan_cache_mode = force_custom_plan`) until its inserts
/// ([`plan_writes`]).
/// A batch looks up a thousand emails at once in tables that an import may
/// take from empty to a hundred thousand rows in seconds. Left to itself,
/// PostgreSQL switches a prepared statement to a generic plan after five
/// runs on a connection and keeps it while the connection lives: a preview
/// that ran those lookups a hundred times against an empty table left its
/// connections holding sequential scans, and the import that followed on them
/// slowed with every batch (ten times the import alone for 100,000 rows).
pub async fn begin_batch<C>(db: &C, write: bool) -> Result<C::Transaction, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = if write {
        begin_write(db).await?
    } else {
        db.begin().await?
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
    }
    Ok(txn)
}

/// After a batch's lookups and updates (see [`begin_batch`]), its inserts run
/// with PostgreSQL's cached plans again: each foreign key is checked by a
/// cached statement per row inserted, and planning those afresh for every row
/// made an import half again as slow.
pub async fn plan_writes(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("SET LOCAL plan_cache_mode = auto")
            .await?;
    }
    Ok(())
}

/// `column` is one of `values`, for a statement run on `backend`: on
/// PostgreSQL one array parameter (`= ANY($1)`), where `IN ($1, …, $n)`
/// binds, sends and parses a parameter per value (an import batch looks up a
/// thousand at once); SQLite, which has no arrays, gets `IN`. PostgreSQL
/// still plans such a statement for each call's values, as it does every
/// statement of an import's batch ([`begin_batch`]); a read that runs for
/// every page wants a statement that keeps one plan instead, as the roles of
/// a page of users do (`services::roles`).
pub fn among<V>(
    backend: DbBackend,
    column: impl ColumnTrait,
    values: impl IntoIterator<Item = V>,
) -> sea_orm::sea_query::Expr
where
    V: Into<sea_orm::Value> + sea_orm::sea_query::postgres_array::NotU8,
{
    if backend == DbBackend::Postgres {
        column.eq_any(values)
    } else {
        column.is_in(values)
    }
}

/// Which page of a list to fetch: the `first` items after the cursor `after`
/// (an id, or a number for lists in row order).
#[derive(Clone, Copy, Debug)]
pub struct PageRequest<C = uuid::Uuid> {
    pub after: Option<C>,
    pub first: u64,
    /// Whether to count the whole list too: a query of its own, over every
    /// matching row, so only when the client asks for the total.
    pub count: bool,
}

/// A page of a keyset-paginated list, newest ids last (ids are UUIDv7, so in
/// creation order).
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether the page continues after a cursor (so a previous page exists).
    pub had_cursor: bool,
    pub has_next_page: bool,
    /// How many items the whole list holds, when it was asked for.
    pub total_count: Option<u64>,
}

impl<T> Page<T> {
    /// The same page with each item turned into another, or the first error.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            had_cursor: self.had_cursor,
            has_next_page: self.has_next_page,
            total_count: self.total_count,
        })
    }

    /// The page of `items` fetched for `request` with one more row than it
    /// asked: whether a next page exists is whether that extra row came.
    pub fn of<C>(mut items: Vec<T>, request: &PageRequest<C>, total_count: Option<u64>) -> Self {
        let has_next_page = items.len() as u64 > request.first;
        items.truncate(usize::try_from(request.first).unwrap_or(usize::MAX));
        Self {
            items,
            had_cursor: request.after.is_some(),
            has_next_page,
            total_count,
        }
    }
}

/// Fetch the requested page ordered by `id_column`, with the total when asked.
pub async fn paginate<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    page: PageRequest,
) -> AppResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let (select, total_count) = page_select(db, select, id_column, &page).await?;
    Ok(Page::of(select.all(db).await?, &page, total_count))
}

/// The statement of a page (one row more than asked, to tell whether another
/// page follows) and the list's total when asked: read its rows, then make
/// them the page with [`Page::of`].
pub async fn page_select<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    page: &PageRequest,
) -> AppResult<(Select<E>, Option<u64>)>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let total_count = count_if(db, &select, page.count).await?;
    let mut select = select.order_by_asc(id_column);
    if let Some(after) = page.after {
        select = select.filter(id_column.gt(after));
    }
    Ok((select.limit(page.first + 1), total_count))
}

/// The number of rows `select` matches, if `wanted`.
pub async fn count_if<E, C>(db: &C, select: &Select<E>, wanted: bool) -> AppResult<Option<u64>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    Ok(if wanted {
        Some(select.clone().count(db).await?)
    } else {
        None
    })
}

/// Refresh PostgreSQL's statistics of those of `tables` that a bulk write of
/// `written` rows has left stale by autovacuum's own measure (more than 50
/// rows and a tenth of the table changed), now rather than at autovacuum's
/// next round, up to a minute later. Until then the planner reads a table
/// that an import took from a few rows to thousands as the few rows it
/// was, and the plans that connections keep for their prepared statements
/// stay chosen for it: a page of the organisation's users read every one of
/// them and sorted them, 0.7 ms of PostgreSQL's time a page instead of
/// 0.15 under `cargo bench --bench reads`. New statistics replace those
/// plans as well. The tables refreshed,
/// none elsewhere than PostgreSQL.
pub async fn refresh_statistics(
    db: &impl ConnectionTrait,
    tables: &[&str],
    written: u64,
) -> Result<Vec<String>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres || tables.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = (1..=tables.len())
        .map(|i| format!("to_regclass(${i})"))
        .collect();
    let sql = format!(
        "SELECT quote_ident(relname) FROM pg_class WHERE oid IN ({}) \
         AND ${} > 50 + 0.1 * greatest(reltuples, 0) ORDER BY relname",
        names.join(", "),
        tables.len() + 1
    );
    let mut values: Vec<sea_orm::Value> = tables.iter().map(|t| (*t).into()).collect();
    values.push(i64::try_from(written).unwrap_or(i64::MAX).into());
    let stale: Vec<String> = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    if !stale.is_empty() {
        // Each name is PostgreSQL's own quoting of a table it found.
        db.execute_unprepared(&format!("ANALYZE {}", stale.join(", ")))
            .await?;
    }
    Ok(stale)
}

/// Escape `%`, `_` and `\\` for a LIKE pattern with `\\` as the escape character.
pub(crate) fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
