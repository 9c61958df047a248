//! PATIENTS imports: each row is a patient of the organisation, enrolled in the
//! job's project. The identity is the external id, else the email; a patient
//! who exists (in this or another project) is updated with the mapped, non-blank
//! cells and enrolled if they are not yet.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, QueryFilter,
};
use uuid::Uuid;

use super::{
    file::Row,
    mapping::Mapping,
    row::{Earlier, RowResult, RowStatus, mapped_cell, row_values},
    settings::ImportSettings,
};
use crate::db::Scope;
use crate::{
    db::bulk,
    domain::{Email, text},
    error::{AppResult, FieldError},
    services::{
        patients::{
            EnrollmentStatus, PatientDetails, RawPatient, Source, new_patient, with_changes,
        },
        projects::{self, LinkSubject},
    },
};

/// Everything a batch of patients needs to know about its job.
pub struct PatientImport<'a> {
    pub project: &'a entity::project::Model,
    pub mapping: &'a Mapping,
    pub headers: &'a [String],
    pub settings: &'a ImportSettings,
}

/// A row as parsed: its details and the identity that names it.
pub struct ParsedRow {
    number: usize,
    identity: Option<String>,
    details: Option<PatientDetails>,
    errors: Vec<FieldError>,
    values: Vec<(String, String)>,
}

impl ParsedRow {
    /// The row failed as a whole with `error`, keeping its identity.
    pub(super) fn fail(self, error: FieldError) -> RowResult {
        RowResult::failed(self.number, self.identity, vec![error], self.values)
    }
}

/// The batch's patients who exist already, and which of them the job's project
/// enrols.
#[derive(Default)]
struct Existing {
    by_external_id: HashMap<String, entity::patient::Model>,
    by_email: HashMap<String, entity::patient::Model>,
    enrolled: HashSet<Uuid>,
}

impl Existing {
    /// The patient a row's details name: by external id, else by an email
    /// whose patient carries no other external id.
    fn of(&self, details: &PatientDetails) -> Option<&entity::patient::Model> {
        details
            .external_id
            .as_ref()
            .and_then(|x| self.by_external_id.get(x))
            .or_else(|| {
                details
                    .email
                    .as_ref()
                    .and_then(|e| self.by_email.get(e.as_str()))
                    .filter(|p| p.external_id.is_none() || p.external_id == details.external_id)
            })
    }
}

/// What a batch writes.
#[derive(Default)]
pub struct Writes {
    updates: Vec<entity::patient::ActiveModel>,
    patients: Vec<entity::patient::Model>,
    enrollments: Vec<entity::enrollment::Model>,
    links: Vec<entity::patient_link::ActiveModel>,
}

impl PatientImport<'_> {
    /// What the row's identity is whenever it has one (see [`Earlier`]): the
    /// identity of the details its identifying cells alone parse to.
    pub fn repeat_key(&self, row: &Row) -> Option<String> {
        let cell = |field: &str| mapped_cell(self.mapping, row, field);
        let external_id = text::optional(cell("externalId").as_deref(), "externalId", 100).ok()?;
        let email = cell("email").and_then(|e| Email::parse(e.trim(), "email").ok());
        identity_of(&PatientDetails {
            external_id,
            email,
            ..PatientDetails::default()
        })
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

    /// Parse: each row's details by the patients' field rules, and repeats of
    /// an earlier row's identity. Nothing is read.
    pub(super) fn parse_batch(&self, rows: &[Row], earlier: &mut Earlier) -> Vec<ParsedRow> {
        let mut parsed: Vec<ParsedRow> = rows.iter().map(|row| self.parse(row)).collect();
        // A later row repeating an identity of the file fails, naming the first.
        earlier.mark_repeats(
            parsed
                .iter_mut()
                .filter_map(|p| Some((p.number, p.identity.as_deref()?, &mut p.errors)))
                .collect(),
            |identity, first| {
                let field = if identity.starts_with("email:") {
                    "email"
                } else {
                    "externalId"
                };
                FieldError::new(field, format!("repeats the patient of row {first}"))
            },
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
            None => PatientDetails::parse(
                &RawPatient {
                    external_id: cell("externalId").as_deref(),
                    first_name: cell("firstName").as_deref(),
                    last_name: cell("lastName").as_deref(),
                    email: cell("email").as_deref(),
                    phone: cell("phone").as_deref(),
                    date_of_birth: cell("dateOfBirth").as_deref(),
                },
                true,
            )
            .map_err(|fields| errors.extend(fields))
            .ok(),
        };
        ParsedRow {
            number: row.number,
            identity: details.as_ref().and_then(identity_of),
            details,
            errors,
            values: row_values(self.headers, row),
        }
    }

    /// Look up: the organisation's patients the valid rows name, by external id
    /// or email, and which of them the project enrols, in two statements.
    async fn look_up(
        &self,
        db: &impl ConnectionTrait,
        parsed: &[ParsedRow],
    ) -> AppResult<Existing> {
        let valid = || {
            parsed
                .iter()
                .filter(|p| p.errors.is_empty())
                .filter_map(|p| p.details.as_ref())
        };
        let external_ids: Vec<String> = valid().filter_map(|d| d.external_id.clone()).collect();
        let emails: Vec<String> = valid()
            .filter_map(|d| d.email.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        let mut existing = Existing::default();
        if external_ids.is_empty() && emails.is_empty() {
            return Ok(existing);
        }
        let scope = Scope::of(self.project.organization_id);
        let found = scope
            .find::<entity::patient::Entity>()
            .filter(
                Condition::any()
                    .add(entity::patient::Column::ExternalId.is_in(external_ids))
                    .add(entity::patient::Column::Email.is_in(emails)),
            )
            .all(db)
            .await?;
        let known_ids: Vec<Uuid> = found.iter().map(|p| p.id).collect();
        for patient in found {
            if let Some(external_id) = &patient.external_id {
                existing
                    .by_external_id
                    .insert(external_id.clone(), patient.clone());
            }
            if let Some(email) = &patient.email {
                existing.by_email.entry(email.clone()).or_insert(patient);
            }
        }
        if !known_ids.is_empty() {
            use entity::enrollment::Column;
            existing.enrolled = scope
                .find::<entity::enrollment::Entity>()
                .filter(Column::ProjectId.eq(self.project.id))
                .filter(Column::PatientId.is_in(known_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|e| e.patient_id)
                .collect();
        }
        Ok(existing)
    }

    /// Plan: each row's outcome, and what the batch writes: new patients,
    /// changed ones (where the job updates existing records), and an enrolment
    /// in the project for each patient it does not enrol yet.
    fn plan(&self, parsed: Vec<ParsedRow>, existing: &Existing) -> (Vec<RowResult>, Writes) {
        let organization_id = self.project.organization_id;
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
            let (patient_id, external_id, mut status) = match existing.of(&details) {
                None => {
                    let patient = new_patient(organization_id, &details, now);
                    let planned = (patient.id, patient.external_id.clone(), RowStatus::Created);
                    writes.patients.push(patient);
                    planned
                }
                Some(patient) => {
                    let mut active = with_changes(patient, &details);
                    let status = if active.is_changed() && self.settings.update_existing {
                        active.updated_at = Set(now);
                        writes.updates.push(active);
                        RowStatus::Updated
                    } else {
                        RowStatus::Skipped
                    };
                    let external_id = details
                        .external_id
                        .clone()
                        .or_else(|| patient.external_id.clone());
                    (patient.id, external_id, status)
                }
            };
            if !existing.enrolled.contains(&patient_id) {
                let subject = match &external_id {
                    Some(x) => LinkSubject::ExternalId(x.clone()),
                    None => LinkSubject::Patient(patient_id),
                };
                writes
                    .links
                    .push(projects::link_model(self.project, &subject, now));
                writes
                    .enrollments
                    .push(self.enrollment(patient_id, external_id, now));
                // Newly enrolled in this project: the row created an enrolment.
                status = RowStatus::Created;
            }
            results.push(RowResult::done(
                number, status, identity, patient_id, values,
            ));
        }
        (results, writes)
    }

    /// A new enrolment in the job's project, added by the import.
    fn enrollment(
        &self,
        patient_id: Uuid,
        external_id: Option<String>,
        now: DateTime<Utc>,
    ) -> entity::enrollment::Model {
        entity::enrollment::Model {
            id: Uuid::now_v7(),
            organization_id: self.project.organization_id,
            project_id: self.project.id,
            patient_id,
            external_id,
            status: EnrollmentStatus::Added.as_str().to_owned(),
            source: Source::Import.as_str().to_owned(),
            request_channel: None,
            requested_at: None,
            last_requested_at: None,
            request_count: 0,
            last_message_id: None,
            responded_at: None,
            created_at: now,
            updated_at: now,
            pending_response: None,
        }
    }

    /// Write: the planned changes, in the caller's transaction.
    pub(super) async fn write(db: &impl ConnectionTrait, writes: Writes) -> AppResult<()> {
        bulk::update_changed(db, writes.updates).await?;
        // Updates by id go on with plans made for this batch; inserts check
        // their foreign keys with cached ones.
        crate::db::plan_writes(db).await?;
        bulk::insert_all::<entity::patient::ActiveModel>(db, writes.patients).await?;
        bulk::insert_all::<entity::enrollment::ActiveModel>(db, writes.enrollments).await?;
        projects::record_links(db, writes.links).await
    }
}

/// The identity of a patient row: `external:` and the external id, else
/// `email:` and the email.
fn identity_of(details: &PatientDetails) -> Option<String> {
    details
        .external_id
        .as_ref()
        .map(|x| format!("external:{x}"))
        .or_else(|| {
            details
                .email
                .as_ref()
                .map(|e| format!("email:{}", e.as_str()))
        })
}
