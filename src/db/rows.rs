//! Models read from PostgreSQL rows by position.
//!
//! sea-orm reads each column of a model by its name, and for a column that is
//! NULL it first formats an error message, then turns the error into `None`.
//! For a page of 100 users, 27 columns each and many of them empty, that was
//! most of the instructions the server spent on the page. A model listed here
//! is read column after column by position instead, each column's name
//! compared with the field it fills (a comparison, not a lookup), so a
//! statement whose columns are not the model's, in the model's order, fails
//! loudly rather than filling the wrong fields. SQLite's rows are read by
//! sea-orm as before.

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryTrait, Select, Statement,
    sqlx::{self, Column, Row, postgres::PgRow},
};
use uuid::Uuid;

/// What a row holds from its column `first` on, read by position.
pub trait ByPosition: Sized {
    /// How many columns it reads.
    const COLUMNS: usize;
    fn from_row(row: &PgRow, first: usize) -> Result<Self, sqlx::Error>;
}

/// The column at `at` must be `name`.
fn column_named(row: &PgRow, at: usize, name: &str) -> Result<(), sqlx::Error> {
    match row.columns().get(at) {
        Some(column) if column.name() == name => Ok(()),
        _ => Err(sqlx::Error::ColumnNotFound(format!(
            "{name} at position {at}"
        ))),
    }
}

/// Implement [`ByPosition`] for a model from its fields, in their order. A
/// field left out does not compile; one out of order fails its name check.
macro_rules! by_position {
    ($model:path { $($field:ident),+ $(,)? }) => {
        impl ByPosition for $model {
            const COLUMNS: usize = [$(stringify!($field)),+].len();
            fn from_row(row: &PgRow, first: usize) -> Result<Self, sqlx::Error> {
                let mut at = first;
                Ok(Self {
                    $($field: {
                        column_named(row, at, stringify!($field))?;
                        at += 1;
                        row.try_get(at - 1)?
                    },)+
                })
            }
        }
    };
}

/// One id column, whatever its name.
impl ByPosition for Uuid {
    const COLUMNS: usize = 1;
    fn from_row(row: &PgRow, first: usize) -> Result<Self, sqlx::Error> {
        row.try_get(first)
    }
}

/// One column of ids, as an array (an aggregate's, say).
impl ByPosition for Vec<Uuid> {
    const COLUMNS: usize = 1;
    fn from_row(row: &PgRow, first: usize) -> Result<Self, sqlx::Error> {
        row.try_get(first)
    }
}

/// Two things side by side: the columns of one, then the other's.
impl<A: ByPosition, B: ByPosition> ByPosition for (A, B) {
    const COLUMNS: usize = A::COLUMNS + B::COLUMNS;
    fn from_row(row: &PgRow, first: usize) -> Result<Self, sqlx::Error> {
        Ok((
            A::from_row(row, first)?,
            B::from_row(row, first + A::COLUMNS)?,
        ))
    }
}

by_position!(entity::user::Model {
    id,
    organization_id,
    email,
    password_hash,
    first_name,
    last_name,
    title,
    status,
    employee_status,
    mobile_phone,
    locale,
    idle_timeout_minutes,
    external_id,
    must_change_password,
    is_super_admin,
    last_login_at,
    created_at,
    updated_at,
    email_signature,
    preferences,
    service_account,
    user_name,
    employee_number,
    department,
    deprovisioned_at,
    reactivated_at,
    dormancy_warned_at,
});

by_position!(entity::role::Model {
    id,
    organization_id,
    name,
    description,
    built_in,
    external_id,
    created_at,
    updated_at,
    required_certifications,
});

/// The rows `query` finds, read by position; `None` when `db` is not
/// PostgreSQL, whose caller reads them through sea-orm instead.
pub async fn on_postgres<T, C>(db: &C, query: &impl QueryTrait) -> Result<Option<Vec<T>>, DbErr>
where
    T: ByPosition,
    C: ConnectionTrait,
{
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    read(db, query.build(DbBackend::Postgres)).await.map(Some)
}

/// The rows a PostgreSQL `statement` finds, read by position.
pub async fn read<T, C>(db: &C, statement: Statement) -> Result<Vec<T>, DbErr>
where
    T: ByPosition,
    C: ConnectionTrait,
{
    let rows = db.query_all_raw(statement).await?;
    rows.iter()
        .map(|row| {
            let row = row.try_as_pg_row().ok_or_else(|| {
                DbErr::Type("a PostgreSQL connection answered another kind of row".to_owned())
            })?;
            T::from_row(row, 0).map_err(|e| DbErr::Type(e.to_string()))
        })
        .collect()
}

/// Every model `select` finds: read by position on PostgreSQL.
pub async fn all<E, C>(db: &C, select: Select<E>) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: ByPosition,
    C: ConnectionTrait,
{
    match on_postgres(db, &select).await? {
        Some(models) => Ok(models),
        None => select.all(db).await,
    }
}
