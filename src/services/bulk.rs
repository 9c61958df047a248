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
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            &sql,
            [Value::String(Some(Json::Array(rows).to_string()))],
        ))
        .await?;
    }
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
