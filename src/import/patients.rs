//! PATIENTS imports: each row is a patient of the organisation, enrolled in the
//! job's project. The identity is the external id, else the email; a patient
//! who exists (in this or another project) is updated with the mapped, non-blank
//! cells and enrolled if they are not yet.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter};
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

/// What a valid row is: its details and the identity that names it.
struct Planned {
    number: usize,
    identity: Option<String>,
    details: Option<PatientDetails>,
    errors: Vec<FieldError>,
    values: Vec<(String, String)>,
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

    fn parse(&self, row: &Row) -> Planned {
        let cell = |field: &str| mapped_cell(self.mapping, row, field);
        let (external_id, first_name, last_name, email, phone, date_of_birth) = (
            cell("externalId"),
            cell("firstName"),
            cell("lastName"),
            cell("email"),
            cell("phone"),
            cell("dateOfBirth"),
        );
        let mut errors = Vec::new();
        if let Some(problem) = &row.problem {
            errors.push(FieldError::new("row", problem.clone()));
        }
        let details = if row.problem.is_some() {
            None
        } else {
            match PatientDetails::parse(
                &RawPatient {
                    external_id: external_id.as_deref(),
                    first_name: first_name.as_deref(),
                    last_name: last_name.as_deref(),
                    email: email.as_deref(),
                    phone: phone.as_deref(),
                    date_of_birth: date_of_birth.as_deref(),
                },
                true,
            ) {
                Ok(details) => Some(details),
                Err(fields) => {
                    errors.extend(fields);
                    None
                }
            }
        };
        let identity = details.as_ref().and_then(identity_of);
        Planned {
            number: row.number,
            identity,
            details,
            errors,
            values: row_values(self.headers, row),
        }
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
        let mut planned: Vec<Planned> = rows.iter().map(|row| self.parse(row)).collect();

        // A later row repeating an identity of the file fails, naming the first.
        earlier.mark_repeats(
            planned
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

        // Who exists already: by external id, then by email.
        let organization_id = self.project.organization_id;
        let valid = || {
            planned
                .iter()
                .filter(|p| p.errors.is_empty())
                .filter_map(|p| p.details.as_ref())
        };
        let external_ids: Vec<String> = valid().filter_map(|d| d.external_id.clone()).collect();
        let emails: Vec<String> = valid()
            .filter_map(|d| d.email.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        let mut by_external_id = HashMap::new();
        let mut by_email = HashMap::new();
        if !external_ids.is_empty() || !emails.is_empty() {
            use entity::patient::{Column, Entity};
            let found = Scope::of(organization_id)
                .find::<Entity>()
                .filter(
                    sea_orm::Condition::any()
                        .add(Column::ExternalId.is_in(external_ids))
                        .add(Column::Email.is_in(emails)),
                )
                .all(db)
                .await?;
            for patient in found {
                if let Some(external_id) = &patient.external_id {
                    by_external_id.insert(external_id.clone(), patient.clone());
                }
                if let Some(email) = &patient.email {
                    by_email.entry(email.clone()).or_insert(patient);
                }
            }
        }
        let known_ids: Vec<Uuid> = by_external_id
            .values()
            .chain(by_email.values())
            .map(|p| p.id)
            .collect();
        let enrolled: std::collections::HashSet<Uuid> = if known_ids.is_empty() {
            Default::default()
        } else {
            use entity::enrollment::{Column, Entity};
            Scope::of(organization_id)
                .find::<Entity>()
                .filter(Column::ProjectId.eq(self.project.id))
                .filter(Column::PatientId.is_in(known_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|e| e.patient_id)
                .collect()
        };

        let now = Utc::now();
        let mut results = Vec::with_capacity(planned.len());
        let mut new_patients = Vec::new();
        let mut updates = Vec::new();
        let mut new_enrollments = Vec::new();
        let mut new_links = Vec::new();
        for plan in planned {
            let Planned {
                number,
                identity,
                details,
                errors,
                values,
            } = plan;
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
            let existing = details
                .external_id
                .as_ref()
                .and_then(|x| by_external_id.get(x))
                .or_else(|| {
                    details
                        .email
                        .as_ref()
                        .and_then(|e| by_email.get(e.as_str()))
                        // Found by email, it must not carry another external id.
                        .filter(|p| p.external_id.is_none() || p.external_id == details.external_id)
                });
            let (patient_id, external_id, mut status) = match existing {
                None => {
                    let patient = new_patient(organization_id, &details, now);
                    let key = (patient.id, patient.external_id.clone());
                    new_patients.push(patient);
                    (key.0, key.1, RowStatus::Created)
                }
                Some(patient) => {
                    let mut active = with_changes(patient, &details);
                    let status = if active.is_changed() && self.settings.update_existing {
                        active.updated_at = Set(now);
                        updates.push(active);
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
            if !enrolled.contains(&patient_id) {
                let enrollment = entity::enrollment::Model {
                    id: Uuid::now_v7(),
                    organization_id,
                    project_id: self.project.id,
                    patient_id,
                    external_id: external_id.clone(),
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
                };
                let subject = match &external_id {
                    Some(x) => LinkSubject::ExternalId(x.clone()),
                    None => LinkSubject::Patient(patient_id),
                };
                new_links.push(projects::link_model(self.project, &subject, now));
                new_enrollments.push(enrollment);
                // Newly enrolled in this project: the row created an enrolment.
                status = RowStatus::Created;
            }
            results.push(RowResult {
                number,
                status,
                identity,
                record_id: Some(patient_id),
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
            bulk::insert_all::<entity::patient::ActiveModel>(db, new_patients).await?;
            bulk::insert_all::<entity::enrollment::ActiveModel>(db, new_enrollments).await?;
            projects::record_links(db, new_links).await?;
        }
        Ok(results)
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
