//! LOCATIONS imports: each row is a practice location of the organisation,
//! identified by its name (whatever its case). An existing location is updated
//! with the mapped, non-blank cells.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter};

use super::{
    file::Row,
    mapping::Mapping,
    row::{Earlier, RowResult, RowStatus, mapped_cell, row_values},
    settings::ImportSettings,
};
use crate::db::Scope;
use crate::{
    db::bulk,
    domain::text,
    error::{AppResult, FieldError},
    services::locations::{LocationDetails, RawLocation, name_key, new_location, with_changes},
};

/// Everything a batch of locations needs to know about its job.
pub struct LocationImport<'a> {
    pub organization_id: uuid::Uuid,
    pub mapping: &'a Mapping,
    pub headers: &'a [String],
    pub settings: &'a ImportSettings,
}

/// A row as parsed: its details and the key of its name.
pub struct ParsedRow {
    number: usize,
    identity: Option<String>,
    details: Option<LocationDetails>,
    errors: Vec<FieldError>,
    values: Vec<(String, String)>,
}

impl ParsedRow {
    /// The row failed as a whole with `error`, keeping its identity.
    pub(super) fn fail(self, error: FieldError) -> RowResult {
        RowResult::failed(self.number, self.identity, vec![error], self.values)
    }
}

/// What a batch writes.
#[derive(Default)]
pub struct Writes {
    created: Vec<entity::location::Model>,
    updates: Vec<entity::location::ActiveModel>,
}

impl LocationImport<'_> {
    /// What the row's identity is whenever it has one (see [`Earlier`]): the
    /// key of the name as a location's details hold it.
    pub fn repeat_key(&self, row: &Row) -> Option<String> {
        let name = mapped_cell(self.mapping, row, "name")?;
        Some(name_key(&text::required(&name, "name", 200).ok()?))
    }

    /// Check a parsed batch against the organisation: each row's outcome,
    /// and what writing the batch writes ([`Self::write`]). Of the four steps,
    /// look up and plan (parse, [`Self::parse_batch`], comes before; write
    /// after). Nothing is written.
    pub(super) async fn check(
        &self,
        db: &impl ConnectionTrait,
        parsed: Vec<ParsedRow>,
    ) -> AppResult<(Vec<RowResult>, Writes)> {
        let existing = self.look_up(db, &parsed).await?;
        Ok(self.plan(parsed, &existing))
    }

    /// Parse: each row's details by the locations' field rules, and repeats of
    /// an earlier row's name. Nothing is read.
    pub(super) fn parse_batch(&self, rows: &[Row], earlier: &mut Earlier) -> Vec<ParsedRow> {
        let mut parsed: Vec<ParsedRow> = rows.iter().map(|row| self.parse(row)).collect();
        earlier.mark_repeats(
            parsed
                .iter_mut()
                .filter_map(|p| Some((p.number, p.identity.as_deref()?, &mut p.errors)))
                .collect(),
            |_, first| FieldError::new("name", format!("repeats the location of row {first}")),
        );
        parsed
    }

    fn parse(&self, row: &Row) -> ParsedRow {
        let cell = |field: &str| mapped_cell(self.mapping, row, field);
        let mut errors = Vec::new();
        let details = match &row.problem {
            Some(problem) => {
                errors.push(FieldError::new("row", problem.clone()));
                None
            }
            None => LocationDetails::parse(&RawLocation {
                name: cell("name").as_deref().unwrap_or(""),
                address_line1: cell("addressLine1").as_deref(),
                address_line2: cell("addressLine2").as_deref(),
                city: cell("city").as_deref(),
                state: cell("state").as_deref(),
                postal_code: cell("postalCode").as_deref(),
                phone: cell("phone").as_deref(),
                active: cell("active").as_deref(),
            })
            .map_err(|fields| errors.extend(fields))
            .ok(),
        };
        ParsedRow {
            number: row.number,
            identity: details.as_ref().map(|d| name_key(&d.name)),
            details,
            errors,
            values: row_values(self.headers, row),
        }
    }

    /// Look up: the organisation's locations the rows name, by the key of
    /// their names, in one statement.
    async fn look_up(
        &self,
        db: &impl ConnectionTrait,
        parsed: &[ParsedRow],
    ) -> AppResult<HashMap<String, entity::location::Model>> {
        let identities: Vec<String> = parsed.iter().filter_map(|p| p.identity.clone()).collect();
        if identities.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(Scope::of(self.organization_id)
            .find::<entity::location::Entity>()
            .filter(entity::location::Column::NameKey.is_in(identities))
            .all(db)
            .await?
            .into_iter()
            .map(|l| (l.name_key.clone(), l))
            .collect())
    }

    /// Plan: each row's outcome, and the locations the batch creates or (where
    /// the job updates existing records) changes.
    fn plan(
        &self,
        parsed: Vec<ParsedRow>,
        existing: &HashMap<String, entity::location::Model>,
    ) -> (Vec<RowResult>, Writes) {
        let now = Utc::now();
        let mut results = Vec::with_capacity(parsed.len());
        let mut writes = Writes::default();
        for row in parsed {
            let ParsedRow {
                number,
                identity,
                details,
                errors,
                values,
            } = row;
            let (Some(details), true) = (details, errors.is_empty()) else {
                results.push(RowResult::failed(number, identity, errors, values));
                continue;
            };
            let (status, id) = match identity.as_ref().and_then(|i| existing.get(i)) {
                None => {
                    let location = new_location(self.organization_id, &details, now);
                    let id = location.id;
                    writes.created.push(location);
                    (RowStatus::Created, id)
                }
                Some(location) => {
                    let mut active = with_changes(location, &details, false);
                    if active.is_changed() && self.settings.update_existing {
                        active.updated_at = Set(now);
                        writes.updates.push(active);
                        (RowStatus::Updated, location.id)
                    } else {
                        (RowStatus::Skipped, location.id)
                    }
                }
            };
            results.push(RowResult::done(number, status, identity, id, values));
        }
        (results, writes)
    }

    /// Write: the planned changes, in the caller's transaction.
    pub(super) async fn write(db: &impl ConnectionTrait, writes: Writes) -> AppResult<()> {
        bulk::update_changed(db, writes.updates).await?;
        // Updates by id go on with plans made for this batch; inserts check
        // their foreign keys with cached ones.
        crate::db::plan_writes(db).await?;
        bulk::insert_all::<entity::location::ActiveModel>(db, writes.created).await
    }
}
