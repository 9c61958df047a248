//! The row pipeline's shared types: a row's outcome and how it is stored, the
//! cells a row maps to, and the memory of earlier rows that names a repeat. Every
//! kind's rows (staff, patients, locations), the job runner and the GraphQL
//! types use them.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    hash::{BuildHasher, RandomState},
};

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
    /// A row that fails with its errors.
    pub fn failed(
        number: usize,
        identity: Option<String>,
        errors: Vec<FieldError>,
        values: Vec<(String, String)>,
    ) -> Self {
        Self {
            number,
            status: RowStatus::Failed,
            identity,
            record_id: None,
            errors,
            values,
            undo: None,
        }
    }

    /// A row that went in (or would) as `status`, naming its record.
    pub fn done(
        number: usize,
        status: RowStatus,
        identity: Option<String>,
        record_id: Uuid,
        values: Vec<(String, String)>,
    ) -> Self {
        Self {
            number,
            status,
            identity,
            record_id: Some(record_id),
            errors: Vec::new(),
            values,
            undo: None,
        }
    }

    /// A row the access rule refused: it fails alone, with the reason.
    pub fn refused(
        number: usize,
        identity: Option<String>,
        refusal: access::Refusal,
        values: Vec<(String, String)>,
    ) -> Self {
        Self::failed(number, identity, vec![refusal.into()], values)
    }
}

/// The first row of the file that held each identity, to name the row a
/// duplicate repeats, kept for the rows that may be repeats only.
///
/// A first pass over the file ([`Earlier::of_keys`]) hashes each row's key (a
/// value the row's identity always equals when it has one) and keeps the hashes
/// that more than one row holds: 8 bytes a row while it sorts them, then only
/// the shared hashes. The rows whose key is among them are the only ones that
/// can repeat or be repeated; their identities are remembered exactly as the
/// batches come, so a shared hash of different identities costs memory, never a
/// wrong error. A job resumed after its committed batches reads theirs back
/// ([`Earlier::remember_job`]).
pub struct Earlier {
    hasher: RandomState,
    shared: HashSet<u64>,
    first: HashMap<String, usize>,
}

impl Earlier {
    /// From every row's key, in any order; `rows` sizes the first pass when
    /// the number of rows is known.
    pub fn of_keys<K: AsRef<str>>(rows: usize, keys: impl IntoIterator<Item = Option<K>>) -> Self {
        let mut pass = FirstPass::new(rows);
        pass.add(keys);
        pass.finish()
    }

    /// Whether a row holding `identity` may repeat another or be repeated.
    fn may_repeat(&self, identity: &str) -> bool {
        self.shared.contains(&self.hasher.hash_one(identity))
    }

    /// Remember the identities of a job's committed rows, read in one pass in
    /// row order (the primary key's; no other index is kept for it).
    pub async fn remember_job(
        &mut self,
        db: &(impl ConnectionTrait + sea_orm::StreamTrait),
        job: &entity::import_job::Model,
    ) -> AppResult<()> {
        use entity::import_row::{Column, Entity};
        use futures_util::TryStreamExt;
        if self.shared.is_empty() {
            return Ok(());
        }
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
        while let Some((identity, number)) = rows.try_next().await? {
            if self.may_repeat(&identity) {
                self.first
                    .entry(identity)
                    .or_insert_with(|| usize::try_from(number).unwrap_or(0));
            }
        }
        Ok(())
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
            if !self.may_repeat(identity) {
                continue;
            }
            match self.first.get(identity) {
                Some(first) if *first < number => errors.push(repeated(identity, *first)),
                Some(_) => {}
                None => {
                    self.first.insert(identity.to_owned(), number);
                }
            }
        }
    }
}

/// The first pass of [`Earlier`], given the rows' keys as the file is read.
pub struct FirstPass {
    hasher: RandomState,
    hashes: Vec<u64>,
}

impl FirstPass {
    /// `rows` sizes it when the number of rows is known.
    pub fn new(rows: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            hashes: Vec::with_capacity(rows),
        }
    }

    /// The next rows' keys.
    pub fn add<K: AsRef<str>>(&mut self, keys: impl IntoIterator<Item = Option<K>>) {
        let hasher = &self.hasher;
        self.hashes.extend(
            keys.into_iter()
                .flatten()
                .map(|key| hasher.hash_one(key.as_ref())),
        );
    }

    /// The hashes more than one row holds.
    pub fn finish(mut self) -> Earlier {
        self.hashes.sort_unstable();
        let shared = self
            .hashes
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        Earlier {
            hasher: self.hasher,
            shared,
            first: HashMap::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks rows numbered from 1 in batches of `batch`; each row's errors.
    fn marked(
        earlier: &mut Earlier,
        identities: &[Option<&str>],
        batch: usize,
    ) -> Vec<Vec<FieldError>> {
        let mut errors = vec![Vec::new(); identities.len()];
        for (start, chunk) in errors.chunks_mut(batch).enumerate() {
            earlier.mark_repeats(
                chunk
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, errors)| {
                        let number = start * batch + i + 1;
                        Some((number, identities[number - 1]?, errors))
                    })
                    .collect(),
                |identity, first| FieldError::new("email", format!("{identity} of row {first}")),
            );
        }
        errors
    }

    #[test]
    fn repeats_name_the_first_row_across_batches_and_only_shared_keys_are_kept() {
        let rows = ["a", "b", "a", "c", "b", "a", "d"].map(Some);
        let mut earlier = Earlier::of_keys(rows.len(), rows);
        let errors = marked(&mut earlier, &rows, 2);
        let said: Vec<String> = errors
            .iter()
            .map(|e| e.iter().map(|e| e.message.clone()).collect())
            .collect();
        assert_eq!(
            said,
            ["", "", "a of row 1", "", "b of row 2", "a of row 1", ""]
        );
        // "c" and "d" are held by one row each: nothing of them is kept.
        assert_eq!(earlier.first.len(), 2);
    }

    #[test]
    fn a_row_that_shares_a_key_but_has_no_identity_claims_nothing() {
        // The first row's key is its email, but the row is invalid and so has
        // no identity: the second row is the first to hold it.
        let keys = [Some("a"), Some("a"), Some("a")];
        let mut earlier = Earlier::of_keys(0, keys);
        let errors = marked(&mut earlier, &[None, Some("a"), Some("a")], 10);
        assert!(errors[0].is_empty() && errors[1].is_empty());
        assert_eq!(errors[2][0].message, "a of row 2");
    }

    #[test]
    fn keys_fed_in_parts_find_the_same_repeats() {
        let mut pass = FirstPass::new(0);
        pass.add([Some("x"), None, Some("y")]);
        pass.add([Some("y"), Some("z")]);
        let mut earlier = pass.finish();
        assert_eq!(earlier.shared.len(), 1);
        let errors = marked(
            &mut earlier,
            &[Some("x"), None, Some("y"), Some("y"), Some("z")],
            5,
        );
        assert_eq!(errors[3][0].message, "y of row 3");
        assert!(
            errors
                .iter()
                .enumerate()
                .all(|(i, e)| i == 3 || e.is_empty())
        );
    }
}
