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

impl LocationImport<'_> {
    /// What the row's identity is whenever it has one (see [`Earlier`]): the
    /// key of the name as a location's details hold it.
    pub fn repeat_key(&self, row: &Row) -> Option<String> {
        let name = mapped_cell(self.mapping, row, "name")?;
        Some(name_key(&text::required(&name, "name", 200).ok()?))
    }

    /// Check a batch against the organisation and, when `write`, apply it in the
    /// caller's transaction.
    pub async fn process(
        &self,
        db: &impl ConnectionTrait,
        rows: Vec<Row>,
        earlier: &mut Earlier,
        write: bool,
    ) -> AppResult<Vec<RowResult>> {
        let mut planned = Vec::with_capacity(rows.len());
        for row in &rows {
            let cell = |field: &str| mapped_cell(self.mapping, row, field);
            let (name, line1, line2, city, state, postal_code, phone, active) = (
                cell("name"),
                cell("addressLine1"),
                cell("addressLine2"),
                cell("city"),
                cell("state"),
                cell("postalCode"),
                cell("phone"),
                cell("active"),
            );
            let mut errors = Vec::new();
            if let Some(problem) = &row.problem {
                errors.push(FieldError::new("row", problem.clone()));
            }
            let details = if row.problem.is_some() {
                None
            } else {
                LocationDetails::parse(&RawLocation {
                    name: name.as_deref().unwrap_or(""),
                    address_line1: line1.as_deref(),
                    address_line2: line2.as_deref(),
                    city: city.as_deref(),
                    state: state.as_deref(),
                    postal_code: postal_code.as_deref(),
                    phone: phone.as_deref(),
                    active: active.as_deref(),
                })
                .map_err(|fields| errors.extend(fields))
                .ok()
            };
            let identity = details.as_ref().map(|d| name_key(&d.name));
            planned.push((
                row.number,
                identity,
                details,
                errors,
                row_values(self.headers, row),
            ));
        }

        earlier.mark_repeats(
            planned
                .iter_mut()
                .filter_map(|(number, identity, _, errors, _)| {
                    Some((*number, identity.as_deref()?, errors))
                })
                .collect(),
            |_, first| FieldError::new("name", format!("repeats the location of row {first}")),
        );
        let identities: Vec<String> = planned.iter().filter_map(|p| p.1.clone()).collect();
        let existing: HashMap<String, entity::location::Model> = if identities.is_empty() {
            HashMap::new()
        } else {
            Scope::of(self.organization_id)
                .find::<entity::location::Entity>()
                .filter(entity::location::Column::NameKey.is_in(identities))
                .all(db)
                .await?
                .into_iter()
                .map(|l| (l.name_key.clone(), l))
                .collect()
        };

        let now = Utc::now();
        let mut results = Vec::with_capacity(planned.len());
        let mut created = Vec::new();
        let mut updates = Vec::new();
        for (number, identity, details, errors, values) in planned {
            let (Some(details), true) = (details, errors.is_empty()) else {
                results.push(RowResult {
                    number,
                    status: RowStatus::Failed,
                    identity,
                    record_id: None,
                    errors,
                    values,
                    undo: None,
                });
                continue;
            };
            let (status, id) = match identity.as_ref().and_then(|i| existing.get(i)) {
                None => {
                    let location = new_location(self.organization_id, &details, now);
                    let id = location.id;
                    created.push(location);
                    (RowStatus::Created, id)
                }
                Some(location) => {
                    let mut active = with_changes(location, &details, false);
                    if active.is_changed() && self.settings.update_existing {
                        active.updated_at = Set(now);
                        updates.push(active);
                        (RowStatus::Updated, location.id)
                    } else {
                        (RowStatus::Skipped, location.id)
                    }
                }
            };
            results.push(RowResult {
                number,
                status,
                identity,
                record_id: Some(id),
                errors: Vec::new(),
                values,
                undo: None,
            });
        }
        if write {
            bulk::update_changed(db, updates).await?;
            // Updates by id go on with plans made for this batch; inserts check
            // their foreign keys with cached ones.
            crate::db::plan_writes(db).await?;
            bulk::insert_all::<entity::location::ActiveModel>(db, created).await?;
        }
        Ok(results)
    }
}
