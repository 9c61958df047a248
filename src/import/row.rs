//! The row pipeline's shared types: a row's outcome and how it is stored, the
//! cells a row maps to, and the memory of earlier rows that names a repeat. Every
//! kind's rows (staff, patients, locations), the job runner and the GraphQL
//! types use them.

use std::{borrow::Cow, collections::HashMap};

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, extension::postgres::PgFunc},
};
use serde_json::json;
use uuid::Uuid;

use super::{file::Row, mapping::Mapping};
use crate::{
    auth::access,
    error::{AppResult, FieldError},
};

/// A row's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowStatus {
    Created,
    Updated,
    Skipped,
    Failed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Skipped => "SKIPPED",
            Self::Failed => "FAILED",
        }
    }
}

/// What a batch came to, ready to be stored as import rows.
#[derive(Debug)]
pub struct RowResult {
    pub number: usize,
    pub status: RowStatus,
    pub identity: Option<String>,
    pub record_id: Option<Uuid>,
    pub errors: Vec<FieldError>,
    pub values: Vec<(String, String)>,
    /// What the row changed, when written and undoable: see [`super::undo`].
    pub undo: Option<serde_json::Value>,
}

impl RowResult {
    /// A row the access rule refused: it fails alone, with the reason.
    pub fn refused(
        number: usize,
        identity: Option<String>,
        refusal: access::Refusal,
        values: Vec<(String, String)>,
    ) -> Self {
        Self {
            number,
            status: RowStatus::Failed,
            identity,
            record_id: None,
            errors: vec![refusal.into()],
            values,
            undo: None,
        }
    }
}

/// Where earlier rows of the same file are remembered, to name the row a
/// duplicate repeats.
pub enum Earlier<'a> {
    /// For previews: in memory (a file is at most a few megabytes).
    Memory(&'a mut HashMap<String, usize>),
    /// For jobs: the job's stored rows, so a resumed job still knows them.
    Job(Uuid),
}

impl Earlier<'_> {
    /// The first row of the file that held each of `identities`, as far as
    /// earlier batches know.
    async fn first_rows(
        &self,
        db: &impl ConnectionTrait,
        identities: &[String],
    ) -> AppResult<HashMap<String, usize>> {
        match self {
            Earlier::Memory(map) => Ok(identities
                .iter()
                .filter_map(|i| map.get(i).map(|n| (i.clone(), *n)))
                .collect()),
            Earlier::Job(job_id) => earlier_rows(db, *job_id, identities).await,
        }
    }

    /// Fail each row whose identity an earlier row of the file holds, with the
    /// error `repeated` makes from the identity and the first row's number, and
    /// remember the first rows for the next batches. Rows come as (number,
    /// identity, errors).
    pub async fn mark_repeats(
        &mut self,
        db: &impl ConnectionTrait,
        rows: Vec<(usize, &str, &mut Vec<FieldError>)>,
        repeated: impl Fn(&str, usize) -> FieldError,
    ) -> AppResult<()> {
        let identities: Vec<String> = rows.iter().map(|(_, i, _)| (*i).to_owned()).collect();
        let mut first_seen = self.first_rows(db, &identities).await?;
        for (number, identity, errors) in rows {
            match first_seen.get(identity) {
                Some(first) if *first < number => errors.push(repeated(identity, *first)),
                _ => {
                    first_seen.insert(identity.to_owned(), number);
                }
            }
        }
        self.remember(&first_seen);
        Ok(())
    }

    /// Keep this batch's first rows for the next batches (a job keeps them in
    /// its stored rows instead).
    fn remember(&mut self, first_seen: &HashMap<String, usize>) {
        if let Earlier::Memory(map) = self {
            for (identity, number) in first_seen {
                map.entry(identity.clone()).or_insert(*number);
            }
        }
    }
}

/// The mapped, non-blank cell of `field`. Line breaks and tabs inside a cell
/// (Alt+Enter in Excel) become single spaces: every field is one line. The
/// apostrophe our exports put before a cell that begins like a formula is taken
/// off again, so a file exported, fixed and uploaded again keeps its values.
/// Then the column's value translations apply; one to a blank leaves the cell blank.
pub fn mapped_cell<'r>(mapping: &Mapping, row: &'r Row, field: &str) -> Option<Cow<'r, str>> {
    let index = mapping.column_of(field)?;
    let cell = row
        .cells
        .get(index)
        .map(|c| c.trim())
        .map(super::export::unneutralise)
        .filter(|c| !c.is_empty())?;
    let cell = if cell.contains(['\r', '\n', '\t']) {
        Cow::Owned(
            cell.split(['\r', '\n', '\t'])
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    } else {
        Cow::Borrowed(cell)
    };
    Some(mapping.translate(field, cell)).filter(|c| !c.is_empty())
}

/// A row's original cells under their headers, as kept with its outcome.
pub fn row_values(headers: &[String], row: &Row) -> Vec<(String, String)> {
    headers
        .iter()
        .cloned()
        .zip(
            row.cells
                .iter()
                .cloned()
                .chain(std::iter::repeat(String::new())),
        )
        .collect()
}

/// The first row of the job that held each of `identities`.
async fn earlier_rows(
    db: &impl ConnectionTrait,
    job_id: Uuid,
    identities: &[String],
) -> AppResult<HashMap<String, usize>> {
    if identities.is_empty() {
        return Ok(HashMap::new());
    }
    use entity::import_row::{Column, Entity};
    let among = if db.get_database_backend() == DbBackend::Postgres {
        // One array parameter: PostgreSQL probes the (job, identity) index once
        // per value. A list of parameters gets no such plan and is compared
        // against every earlier row of the job, which grows with the file.
        Expr::col(Column::Identity).eq(PgFunc::any(Expr::val(identities.to_vec())))
    } else {
        Column::Identity.is_in(identities.iter().cloned())
    };
    let rows: Vec<(Option<String>, i32)> = Entity::find()
        .select_only()
        .column(Column::Identity)
        .column(Column::RowNumber)
        .filter(Column::JobId.eq(job_id))
        .filter(among)
        .into_tuple()
        .all(db)
        .await?;
    let mut first = HashMap::new();
    for (identity, number) in rows {
        if let Some(identity) = identity {
            let number = usize::try_from(number).unwrap_or(0);
            first
                .entry(identity)
                .and_modify(|n: &mut usize| *n = (*n).min(number))
                .or_insert(number);
        }
    }
    Ok(first)
}

/// The stored form of a row's outcome.
pub fn to_model(job_id: Uuid, result: &RowResult) -> entity::import_row::ActiveModel {
    entity::import_row::ActiveModel {
        job_id: Set(job_id),
        row_number: Set(i32::try_from(result.number).unwrap_or(i32::MAX)),
        status: Set(result.status.as_str().to_owned()),
        identity: Set(result.identity.clone()),
        record_id: Set(result.record_id.map(|id| id.to_string())),
        errors: Set(json!(result.errors)),
        row_values: Set(json!(result.values)),
        edited_at: Set(None),
        retried_in_job_id: Set(None),
        undo: Set(result.undo.clone()),
    }
}
