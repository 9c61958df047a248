//! Inserting many rows at once, as fast as each backend allows.
//!
//! On PostgreSQL every chunk is one statement with one parameter: the rows as a
//! JSON array in text, expanded by `json_populate_recordset` against the table's
//! own row type (`json`, not `jsonb`: the text is read once, with no binary tree
//! built first, about a fifth faster). A multi-row `VALUES` list with one
//! parameter per cell costs far more to build, send and bind (tens of thousands
//! of parameters per batch), and is capped at 65,535 parameters. SQLite binds parameters in process, so it keeps
//! `INSERT … VALUES` in chunks below its parameter limit.

use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DbBackend, EntityName, EntityTrait,
    IntoActiveModel, Iterable, Statement, Value,
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

    let entity = A::Entity::default();
    let table = quoted(entity.table_name());
    let names: Vec<String> = <A::Entity as EntityTrait>::Column::iter()
        .map(|c| quoted(sea_orm::IdenStatic::as_str(&c)))
        .collect();
    let list = names.join(", ");
    let sql = format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{table}, $1::json)"
    );
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let rows: Vec<Json> = models
            .by_ref()
            .take(PG_CHUNK)
            .map(|model| {
                let mut row = Map::with_capacity(names.len());
                for column in <A::Entity as EntityTrait>::Column::iter() {
                    let value = match model.get(column) {
                        ActiveValue::Set(v) | ActiveValue::Unchanged(v) => to_json(v)?,
                        ActiveValue::NotSet => Json::Null,
                    };
                    row.insert(sea_orm::IdenStatic::as_str(&column).to_owned(), value);
                }
                Ok(Json::Object(row))
            })
            .collect::<AppResult<_>>()?;
        with_rows(db, &sql, rows).await?;
    }
    Ok(())
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
