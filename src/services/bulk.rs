//! Inserting and updating many rows at once, as fast as each backend allows.
//!
//! On PostgreSQL an insert is one statement per chunk of rows, each column one
//! typed array parameter sent in binary (`INSERT … SELECT … FROM unnest($1, $2,
//! …)`): no text to build, send or parse per cell, and a few parameters however
//! many rows. That costs PostgreSQL about a third less than expanding the rows
//! from one JSON text (`json_populate_recordset`), which updates still use (they
//! need to tell a column a row leaves alone from one it sets). A multi-row
//! `VALUES` list with one parameter per cell costs far more to build, send and
//! bind, and is capped at 65,535 parameters. SQLite binds parameters in process,
//! so it keeps `INSERT … VALUES` in chunks below its parameter limit.

use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, EntityName,
    EntityTrait, IntoActiveModel, Iterable, Statement, Value, sea_query::ArrayType,
};
use serde_json::{Map, Value as Json};

use crate::error::AppResult;

/// Rows per statement on PostgreSQL.
const PG_CHUNK: usize = 5_000;

/// Insert every model (models or active models of `A`); each must set every
/// column.
pub async fn insert_all<A>(
    db: &impl ConnectionTrait,
    models: impl IntoIterator<Item = impl IntoActiveModel<A>>,
) -> AppResult<()>
where
    A: ActiveModelTrait + Send,
{
    let models: Vec<A> = models
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect();
    if models.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() != DbBackend::Postgres {
        let columns = <A::Entity as EntityTrait>::Column::iter().count().max(1);
        // SQLite allows 32,766 parameters per statement.
        let per_statement = (30_000 / columns).max(1);
        let mut models = models.into_iter().peekable();
        while models.peek().is_some() {
            let chunk: Vec<A> = models.by_ref().take(per_statement).collect();
            A::Entity::insert_many(chunk)
                .exec_without_returning(db)
                .await?;
        }
        return Ok(());
    }

    let table = quoted(A::Entity::default().table_name());
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<A> = models.by_ref().take(PG_CHUNK).collect();
        let mut columns = Vec::new();
        for column in <A::Entity as EntityTrait>::Column::iter() {
            let values = chunk.iter().map(|model| match model.get(column) {
                ActiveValue::Set(v) | ActiveValue::Unchanged(v) => Some(v),
                ActiveValue::NotSet => None,
            });
            if let Some(array) = ColumnArray::of(column, values)? {
                columns.push(array);
            }
        }
        let mut names = Vec::with_capacity(columns.len());
        let mut selected = Vec::with_capacity(columns.len());
        let mut aliases = Vec::new();
        let mut arrays = Vec::new();
        for (i, column) in columns.into_iter().enumerate() {
            names.push(column.name);
            let value = format!("u.v{i}{}", column.cast);
            aliases.push(format!("v{i}"));
            arrays.push(column.values);
            selected.push(match column.nulls {
                Some(nulls) => {
                    aliases.push(format!("n{i}"));
                    arrays.push(nulls);
                    format!("CASE WHEN u.n{i} THEN NULL ELSE {value} END")
                }
                None => value,
            });
        }
        let parameters: Vec<String> = (1..=arrays.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT {} FROM unnest({}) AS u({})",
            names.join(", "),
            selected.join(", "),
            parameters.join(", "),
            aliases.join(", ")
        );
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            arrays,
        ))
        .await?;
    }
    Ok(())
}

/// One column of a chunk, as PostgreSQL receives it: every row's value in one
/// typed array, and where some are NULL a second array saying which (an array
/// parameter cannot carry NULL elements here), with a NULL's place in the first
/// holding any value of the type.
struct ColumnArray {
    name: String,
    values: Value,
    nulls: Option<Value>,
    /// JSON goes as text and is cast back in the statement.
    cast: &'static str,
}

impl ColumnArray {
    /// The column of `values`, one per row (`None`: not set); `None` when no
    /// row sets it, so that it takes its default.
    fn of<C: ColumnTrait>(
        column: C,
        values: impl Iterator<Item = Option<Value>>,
    ) -> AppResult<Option<Self>> {
        let values: Vec<Option<Value>> = values.collect();
        let Some(kind) = values
            .iter()
            .flatten()
            .next()
            .map(Element::of)
            .transpose()?
        else {
            return Ok(None);
        };
        let mut nulls = Vec::with_capacity(values.len());
        let mut elements = Vec::with_capacity(values.len());
        for value in values {
            let element = value.map(|v| kind.element(v)).transpose()?.flatten();
            nulls.push(Value::Bool(Some(element.is_none())));
            elements.push(element.unwrap_or_else(|| kind.filler()));
        }
        let any_null = nulls.iter().any(|n| matches!(n, Value::Bool(Some(true))));
        let cast = match (kind, column.def().get_column_type()) {
            (Element::Json, sea_orm::ColumnType::JsonBinary) => "::jsonb",
            (Element::Json, _) => "::json",
            _ => "",
        };
        Ok(Some(Self {
            name: quoted(sea_orm::IdenStatic::as_str(&column)),
            values: Value::Array(kind.array_type(), Some(Box::new(elements))),
            nulls: any_null.then(|| Value::Array(ArrayType::Bool, Some(Box::new(nulls)))),
            cast,
        }))
    }
}

/// The type of a column's array elements.
#[derive(Clone, Copy)]
enum Element {
    Bool,
    SmallInt,
    Int,
    BigInt,
    Double,
    String,
    Uuid,
    Json,
    DateTimeUtc,
    Date,
}

impl Element {
    fn of(value: &Value) -> AppResult<Self> {
        Ok(match value {
            Value::Bool(_) => Self::Bool,
            Value::TinyInt(_) | Value::SmallInt(_) => Self::SmallInt,
            Value::Int(_) => Self::Int,
            Value::BigInt(_) => Self::BigInt,
            Value::Double(_) => Self::Double,
            Value::String(_) => Self::String,
            Value::Uuid(_) => Self::Uuid,
            Value::Json(_) => Self::Json,
            Value::ChronoDateTimeUtc(_) => Self::DateTimeUtc,
            Value::ChronoDate(_) => Self::Date,
            other => {
                return Err(anyhow::anyhow!("bulk insert cannot carry a {other:?} value").into());
            }
        })
    }

    fn array_type(self) -> ArrayType {
        match self {
            Self::Bool => ArrayType::Bool,
            Self::SmallInt => ArrayType::SmallInt,
            Self::Int => ArrayType::Int,
            Self::BigInt => ArrayType::BigInt,
            Self::Double => ArrayType::Double,
            Self::String | Self::Json => ArrayType::String,
            Self::Uuid => ArrayType::Uuid,
            Self::DateTimeUtc => ArrayType::ChronoDateTimeUtc,
            Self::Date => ArrayType::ChronoDate,
        }
    }

    /// `value` as an element of this type (JSON as its text), `None` for NULL.
    fn element(self, value: Value) -> AppResult<Option<Value>> {
        Ok(match (self, value) {
            (Self::Bool, Value::Bool(v)) => v.map(|v| Value::Bool(Some(v))),
            (Self::SmallInt, Value::TinyInt(v)) => v.map(|v| Value::SmallInt(Some(v.into()))),
            (Self::SmallInt, Value::SmallInt(v)) => v.map(|v| Value::SmallInt(Some(v))),
            (Self::Int, Value::Int(v)) => v.map(|v| Value::Int(Some(v))),
            (Self::BigInt, Value::BigInt(v)) => v.map(|v| Value::BigInt(Some(v))),
            (Self::Double, Value::Double(v)) => v.map(|v| Value::Double(Some(v))),
            (Self::String, Value::String(v)) => v.map(|v| Value::String(Some(v))),
            (Self::Uuid, Value::Uuid(v)) => v.map(|v| Value::Uuid(Some(v))),
            (Self::Json, Value::Json(v)) => v.map(|v| Value::String(Some(v.to_string()))),
            (Self::DateTimeUtc, Value::ChronoDateTimeUtc(v)) => {
                v.map(|v| Value::ChronoDateTimeUtc(Some(v)))
            }
            (Self::Date, Value::ChronoDate(v)) => v.map(|v| Value::ChronoDate(Some(v))),
            (_, other) => {
                return Err(anyhow::anyhow!("a column mixes types: {other:?}").into());
            }
        })
    }

    /// What stands in an array for a NULL, which the statement then ignores.
    fn filler(self) -> Value {
        match self {
            Self::Bool => Value::Bool(Some(false)),
            Self::SmallInt => Value::SmallInt(Some(0)),
            Self::Int => Value::Int(Some(0)),
            Self::BigInt => Value::BigInt(Some(0)),
            Self::Double => Value::Double(Some(0.0)),
            Self::String | Self::Json => Value::String(Some(String::new())),
            Self::Uuid => Value::Uuid(Some(uuid::Uuid::nil())),
            Self::DateTimeUtc => Value::ChronoDateTimeUtc(Some(chrono::DateTime::UNIX_EPOCH)),
            Self::Date => Value::ChronoDate(Some(chrono::DateTime::UNIX_EPOCH.date_naive())),
        }
    }
}

/// Run `sql` on PostgreSQL with `rows` as its one parameter, a JSON array in text.
async fn with_rows(db: &impl ConnectionTrait, sql: &str, rows: Vec<Json>) -> AppResult<()> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [Value::String(Some(Json::Array(rows).to_string()))],
    ))
    .await?;
    Ok(())
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A cell as `jsonb_populate_recordset` reads it back into the column's type.
fn to_json(value: Value) -> AppResult<Json> {
    Ok(match value {
        Value::Bool(v) => v.map_or(Json::Null, Json::Bool),
        Value::TinyInt(v) => v.map_or(Json::Null, Json::from),
        Value::SmallInt(v) => v.map_or(Json::Null, Json::from),
        Value::Int(v) => v.map_or(Json::Null, Json::from),
        Value::BigInt(v) => v.map_or(Json::Null, Json::from),
        Value::Double(v) => v.map_or(Json::Null, Json::from),
        Value::String(v) => v.map_or(Json::Null, Json::String),
        Value::Uuid(v) => v.map_or(Json::Null, |u| Json::String(u.to_string())),
        Value::Json(v) => v.map_or(Json::Null, |j| *j),
        Value::ChronoDateTimeUtc(v) => v.map_or(Json::Null, |t| Json::String(t.to_rfc3339())),
        Value::ChronoDate(v) => v.map_or(Json::Null, |d| Json::String(d.to_string())),
        Value::ChronoTime(v) => v.map_or(Json::Null, |t| Json::String(t.to_string())),
        Value::ChronoDateTime(v) => v.map_or(Json::Null, |t| Json::String(t.to_string())),
        other => {
            return Err(anyhow::anyhow!("bulk insert cannot carry a {other:?} value").into());
        }
    })
}

/// Apply each active model's `Set` columns to its row, found by `id`; the other
/// columns of the row are left as they are.
///
/// On PostgreSQL one statement per chunk: the changes as JSON text, each column
/// taking the row's new value where it has one (`COALESCE`), so a column one row
/// does not change keeps whatever is stored, even if another transaction wrote
/// it meanwhile. A change to NULL cannot be told from no change that way, and
/// one row must not be changed twice by one statement, so a chunk holding
/// either goes row by row, as SQLite always does (it runs in process, where a
/// statement costs little).
pub async fn update_changed<A>(db: &impl ConnectionTrait, models: Vec<A>) -> AppResult<()>
where
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let one_by_one = |models: Vec<A>| async move {
        for model in models {
            model.update(db).await?;
        }
        AppResult::Ok(())
    };
    if models.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() != DbBackend::Postgres {
        return one_by_one(models).await;
    }
    let columns: Vec<_> = <A::Entity as EntityTrait>::Column::iter().collect();
    let Some(id_at) = columns
        .iter()
        .position(|c| sea_orm::IdenStatic::as_str(c) == "id")
    else {
        return one_by_one(models).await;
    };
    let entity = A::Entity::default();
    let table = quoted(entity.table_name());
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<A> = models.by_ref().take(PG_CHUNK).collect();
        let mut ids = std::collections::HashSet::with_capacity(chunk.len());
        let mut changed = vec![false; columns.len()];
        let mut rows = Vec::with_capacity(chunk.len());
        let mut plain = true;
        for model in &chunk {
            let mut row = Map::new();
            for (i, column) in columns.iter().enumerate() {
                let value = match model.get(*column) {
                    ActiveValue::Set(v) => {
                        changed[i] |= i != id_at;
                        to_json(v)?
                    }
                    ActiveValue::Unchanged(v) if i == id_at => to_json(v)?,
                    _ => continue,
                };
                plain &= !value.is_null();
                row.insert(sea_orm::IdenStatic::as_str(column).to_owned(), value);
            }
            plain &= row
                .get("id")
                .and_then(Json::as_str)
                .is_some_and(|k| ids.insert(k.to_owned()));
            rows.push(Json::Object(row));
        }
        let assignments: Vec<String> = columns
            .iter()
            .zip(&changed)
            .filter(|(_, changed)| **changed)
            .map(|(c, _)| {
                let c = quoted(sea_orm::IdenStatic::as_str(c));
                format!("{c} = COALESCE(v.{c}, t.{c})")
            })
            .collect();
        if !plain {
            one_by_one(chunk).await?;
            continue;
        }
        if assignments.is_empty() {
            continue;
        }
        let sql = format!(
            "UPDATE {table} AS t SET {} FROM json_populate_recordset(NULL::{table}, $1::json) AS v WHERE t.\"id\" = v.\"id\"",
            assignments.join(", ")
        );
        with_rows(db, &sql, rows).await?;
    }
    Ok(())
}
