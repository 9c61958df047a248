//! The row pipeline's shared types: a row's outcome and how it is stored, the
//! cells a row maps to, and the memory of earlier rows that names a repeat. Every
//! kind's rows (staff, patients, locations), the job runner and the GraphQL
//! types use them.

use std::{borrow::Cow, collections::HashMap};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::{file::Row, mapping::Mapping};
use crate::db::Scope;
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

/// The first row of the file that held each identity, as far as the rows
/// checked so far tell: to name the row a duplicate repeats. A job resumed
/// after its committed batches starts from their stored rows
/// ([`Earlier::of_job`]); a fresh job or a preview starts empty. It is
/// bounded as the file is: by the upload limit.
#[derive(Default)]
pub struct Earlier(HashMap<String, usize>);

impl Earlier {
    /// What the committed rows of a job tell, read in one pass over its rows
    /// in row order (the primary key's; no other index is kept for it).
    pub async fn of_job(
        db: &(impl ConnectionTrait + sea_orm::StreamTrait),
        job: &entity::import_job::Model,
    ) -> AppResult<Self> {
        use entity::import_row::{Column, Entity};
        use futures_util::TryStreamExt;
        // Streamed: the rows are read into the map, never all at once beside it.
        let mut rows = Scope::of(job.organization_id)
            .find::<Entity>()
            .select_only()
            .column(Column::Identity)
            .column(Column::RowNumber)
            .filter(Column::JobId.eq(job.id))
            .filter(Column::Identity.is_not_null())
            .order_by_asc(Column::RowNumber)
            .into_tuple::<(String, i32)>()
            .stream(db)
            .await?;
        let mut first = HashMap::new();
        while let Some((identity, number)) = rows.try_next().await? {
            first
                .entry(identity)
                .or_insert_with(|| usize::try_from(number).unwrap_or(0));
        }
        Ok(Self(first))
    }

    /// Fail each row whose identity an earlier row of the file holds, with the
    /// error `repeated` makes from the identity and the first row's number, and
    /// remember the first rows for the next batches. Rows come as (number,
    /// identity, errors).
    pub fn mark_repeats(
        &mut self,
        rows: Vec<(usize, &str, &mut Vec<FieldError>)>,
        repeated: impl Fn(&str, usize) -> FieldError,
    ) {
        for (number, identity, errors) in rows {
            match self.0.get(identity) {
                Some(first) if *first < number => errors.push(repeated(identity, *first)),
                Some(_) => {}
                None => {
                    self.0.insert(identity.to_owned(), number);
                }
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
