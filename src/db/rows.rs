//! Models read from PostgreSQL rows by position, or in part by the names of
//! the columns a statement selected.
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
//!
//! A page of users reads only the columns its selection asks for (27 a user
//! cost PostgreSQL half again the time of the few a list shows) into a
//! [`Partial`], which hands out its model only for a column it read, and
//! beside it what expressions of the same statement read
//! ([`partial_with`]: the ids of each user's roles).

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect, QueryTrait, Select, Statement,
    sea_query::SimpleExpr,
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

/// A model of which a statement read only some columns. The fields of the
/// others hold their type's default, which is not the record's value, so the
/// model is only handed out for a column that was read: [`Partial::get`].
#[derive(Debug)]
pub struct Partial<M> {
    model: M,
    /// Bit `n` set: the model's `n`th field (its column's place in the
    /// entity's `Column`) was read.
    read: u64,
}

impl<M> Partial<M> {
    /// A model read whole.
    pub fn whole(model: M) -> Self {
        Self {
            model,
            read: u64::MAX,
        }
    }

    /// The model, if the column at `place` in the entity's `Column` was read.
    pub fn get(&self, place: u32) -> Option<&M> {
        (place < u64::BITS && self.read & (1 << place) != 0).then_some(&self.model)
    }
}

/// A model read from whichever of its columns a statement selected, by name.
pub trait ByName: Sized {
    /// The model's fields in their order: a column's place in its entity's
    /// `Column` is its field's here.
    const FIELDS: &'static [&'static str];
    /// The model from the row's first `count` columns, each one of its fields.
    fn from_named(row: &PgRow, count: usize) -> Result<Partial<Self>, sqlx::Error>;
}

/// Implement [`ByPosition`] and [`ByName`] for a model from its fields, in
/// their order. A field left out does not compile; one out of order fails
/// its name check.
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

        const _: () = assert!(
            [$(stringify!($field)),+].len() <= u64::BITS as usize,
            "a partial model marks its fields read in 64 bits"
        );

        impl ByName for $model {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),+];
            fn from_named(row: &PgRow, count: usize) -> Result<Partial<Self>, sqlx::Error> {
                let mut model = Self {
                    $($field: Default::default(),)+
                };
                let mut read = 0;
                for (at, column) in row.columns().iter().enumerate().take(count) {
                    let mut place = 0;
                    $(
                        if column.name() == stringify!($field) {
                            model.$field = row.try_get(at)?;
                            read |= 1 << place;
                            continue;
                        }
                        place += 1;
                    )+
                    let _ = place;
                    return Err(sqlx::Error::ColumnNotFound(column.name().to_owned()));
                }
                Ok(Partial { model, read })
            }
        }
    };
}

/// Nothing: no columns.
impl ByPosition for () {
    const COLUMNS: usize = 0;
    fn from_row(_: &PgRow, _: usize) -> Result<Self, sqlx::Error> {
        Ok(())
    }
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

/// The rows a PostgreSQL `statement` finds, read by position.
pub async fn read<T, C>(db: &C, statement: Statement) -> Result<Vec<T>, DbErr>
where
    T: ByPosition,
    C: ConnectionTrait,
{
    let rows = db.query_all_raw(statement).await?;
    rows.iter()
        .map(|row| {
            let row = pg_row(row)?;
            T::from_row(row, 0).map_err(|e| DbErr::Type(e.to_string()))
        })
        .collect()
}

/// The models `select` finds with only `columns` read (on PostgreSQL; SQLite
/// reads them whole through sea-orm).
pub async fn partial<E, C>(
    db: &C,
    select: Select<E>,
    columns: &[E::Column],
) -> Result<Vec<Partial<E::Model>>, DbErr>
where
    E: EntityTrait,
    E::Model: ByName,
    C: ConnectionTrait,
{
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(select
            .all(db)
            .await?
            .into_iter()
            .map(Partial::whole)
            .collect());
    }
    let found: Vec<(Partial<E::Model>, ())> = partial_with(db, select, columns, []).await?;
    Ok(found.into_iter().map(|(model, ())| model).collect())
}

/// On PostgreSQL, the models `select` finds with only `columns` read, each
/// beside what the `extra` expressions that follow them read, by position.
pub async fn partial_with<E, C, X>(
    db: &C,
    select: Select<E>,
    columns: &[E::Column],
    extra: impl IntoIterator<Item = (SimpleExpr, &'static str)>,
) -> Result<Vec<(Partial<E::Model>, X)>, DbErr>
where
    E: EntityTrait,
    E::Model: ByName,
    C: ConnectionTrait,
    X: ByPosition,
{
    if db.get_database_backend() != DbBackend::Postgres {
        return Err(DbErr::Custom(
            "columns are read by name on PostgreSQL only".to_owned(),
        ));
    }
    let mut select = select.select_only().columns(columns.iter().copied());
    for (expr, alias) in extra {
        select = select.expr_as(expr, alias);
    }
    let rows = db.query_all_raw(select.build(DbBackend::Postgres)).await?;
    rows.iter()
        .map(|row| {
            let row = pg_row(row)?;
            let model = E::Model::from_named(row, columns.len());
            model
                .and_then(|model| Ok((model, X::from_row(row, columns.len())?)))
                .map_err(|e| DbErr::Type(e.to_string()))
        })
        .collect()
}

fn pg_row(row: &sea_orm::QueryResult) -> Result<&PgRow, DbErr> {
    row.try_as_pg_row().ok_or_else(|| {
        DbErr::Type("a PostgreSQL connection answered another kind of row".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::ByName;

    /// [`super::Partial::get`] takes a column's place in its `Column`: the
    /// place of its field in the model read.
    #[test]
    fn a_columns_place_is_its_fields() {
        fn check<M: ByName, C: Iterable + IdenStatic>(place: impl Fn(&C) -> u32) {
            let columns: Vec<C> = C::iter().collect();
            assert_eq!(columns.len(), M::FIELDS.len());
            for (at, column) in columns.iter().enumerate() {
                assert_eq!(place(column) as usize, at);
                assert_eq!(M::FIELDS[at], column.as_str());
            }
        }
        check::<entity::user::Model, entity::user::Column>(|c| *c as u32);
        check::<entity::role::Model, entity::role::Column>(|c| *c as u32);
    }
}
