//! Patients and their enrolments in projects: added by hand or through the API,
//! by responding through a project's links, and sent requests by email or text.
//!
//! Patients belong to the organisation and are matched by external id, then by
//! email, so one person enrolled in two projects is one patient. Reading them is
//! recorded in the audit trail.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, TransactionSession,
    TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    care_teams, organizations,
    outbox::{self, NewMessage},
    projects::{self, LinkSubject},
};
use crate::db::{Page, PageRequest, Scope, paginate};
use crate::{
    auth::{Actor, Permission, actor::Origin},
    domain::{Email, Phone, parse_date, text},
    error::{AppError, AppResult, FieldError, Validation},
};

/// Where an enrolment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollmentStatus {
    Added,
    Requested,
    Responded,
}

impl EnrollmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Requested => "REQUESTED",
            Self::Responded => "RESPONDED",
        }
    }

    pub fn from_stored(stored: &str) -> Self {
        match stored {
            "REQUESTED" => Self::Requested,
            "RESPONDED" => Self::Responded,
            _ => Self::Added,
        }
    }
}

/// How a request reaches the patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Sms => "SMS",
        }
    }
}

/// How a patient came into a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Manual,
    Api,
    Import,
    GenericLink,
    UniqueLink,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Api => "API",
            Self::Import => "IMPORT",
            Self::GenericLink => "GENERIC_LINK",
            Self::UniqueLink => "UNIQUE_LINK",
        }
    }
}

/// A patient's details, valid by construction. Absent fields are left as they
/// are on a patient who already exists.
#[derive(Clone, Debug, Default)]
pub struct PatientDetails {
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub date_of_birth: Option<NaiveDate>,
}

/// The raw fields of a patient, from the API, a form or a file.
#[derive(Clone, Debug, Default)]
pub struct RawPatient<'a> {
    pub external_id: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub date_of_birth: Option<&'a str>,
}

impl PatientDetails {
    /// Every bad field at once. `names_required`: first and last name must be
    /// given; at least one of external id and email always must.
    pub fn parse(raw: &RawPatient<'_>, names_required: bool) -> Result<Self, Vec<FieldError>> {
        let mut check = Validation::default();
        let external_id = check
            .check(text::optional(raw.external_id, "externalId", 100))
            .flatten();
        let name = |check: &mut Validation, value: Option<&str>, field: &str| {
            if names_required {
                check.check(text::required(value.unwrap_or(""), field, 100))
            } else {
                check.check(text::optional(value, field, 100)).flatten()
            }
        };
        let first_name = name(&mut check, raw.first_name, "firstName");
        let last_name = name(&mut check, raw.last_name, "lastName");
        let email = present(raw.email).and_then(|e| check.check(Email::parse(e, "email")));
        let phone = present(raw.phone).and_then(|p| check.check(Phone::parse(p, "phone")));
        let date_of_birth = present(raw.date_of_birth)
            .and_then(|d| check.check(parse_date(d, "dateOfBirth")))
            .and_then(|d| {
                if d > Utc::now().date_naive() {
                    check.add("dateOfBirth", "is in the future");
                    None
                } else {
                    Some(d)
                }
            });
        if present(raw.external_id).is_none() && present(raw.email).is_none() {
            check.add("externalId", "an external id or an email is required");
        }
        let errors = check.into_errors();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            external_id,
            first_name,
            last_name,
            email,
            phone,
            date_of_birth,
        })
    }
}

/// Find the organisation's patient by external id, then email; update it with
/// the given fields, or create it. The patient, and whether it is new.
pub async fn upsert_patient(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    details: &PatientDetails,
) -> AppResult<(entity::patient::Model, bool)> {
    use entity::patient::{Column, Entity};
    let mut found = None;
    if let Some(external_id) = &details.external_id {
        found = Scope::of(organization_id)
            .find::<Entity>()
            .filter(Column::ExternalId.eq(external_id.as_str()))
            .one(db)
            .await?;
    }
    if found.is_none()
        && let Some(email) = &details.email
    {
        // A patient found by email keeps the external id it has, if any.
        found = Scope::of(organization_id)
            .find::<Entity>()
            .filter(Column::Email.eq(email.as_str()))
            .filter(
                Condition::any()
                    .add(Column::ExternalId.is_null())
                    .add(Column::ExternalId.eq(details.external_id.clone())),
            )
            .one(db)
            .await?;
    }
    let now = Utc::now();
    let Some(patient) = found else {
        let patient = new_patient(organization_id, details, now);
        Entity::insert(entity::patient::ActiveModel::from(patient.clone()))
            .exec_without_returning(db)
            .await?;
        return Ok((patient, true));
    };
    let mut active = with_changes(&patient, details);
    if !active.is_changed() {
        return Ok((patient, false));
    }
    active.updated_at = Set(now);
    Ok((active.update(db).await?, false))
}

/// A new patient of the organisation with `details`.
pub fn new_patient(
    organization_id: Uuid,
    details: &PatientDetails,
    now: chrono::DateTime<Utc>,
) -> entity::patient::Model {
    entity::patient::Model {
        id: Uuid::now_v7(),
        organization_id,
        external_id: details.external_id.clone(),
        first_name: details.first_name.clone(),
        last_name: details.last_name.clone(),
        email: details.email.as_ref().map(|e| e.as_str().to_owned()),
        phone: details.phone.as_ref().map(|p| p.as_str().to_owned()),
        date_of_birth: details.date_of_birth,
        created_at: now,
        updated_at: now,
    }
}

/// `patient` with every given field of `details` that differs set; unchanged
/// (`is_changed() == false`) when none does.
pub fn with_changes(
    patient: &entity::patient::Model,
    details: &PatientDetails,
) -> entity::patient::ActiveModel {
    let mut active: entity::patient::ActiveModel = patient.clone().into();
    let set = |current: &Option<String>,
               new: Option<String>,
               column: &mut sea_orm::ActiveValue<Option<String>>| {
        if new.is_some() && *current != new {
            *column = Set(new);
        }
    };
    set(
        &patient.external_id,
        details.external_id.clone(),
        &mut active.external_id,
    );
    set(
        &patient.first_name,
        details.first_name.clone(),
        &mut active.first_name,
    );
    set(
        &patient.last_name,
        details.last_name.clone(),
        &mut active.last_name,
    );
    set(
        &patient.email,
        details.email.as_ref().map(|e| e.as_str().to_owned()),
        &mut active.email,
    );
    set(
        &patient.phone,
        details.phone.as_ref().map(|p| p.as_str().to_owned()),
        &mut active.phone,
    );
    if details.date_of_birth.is_some() && details.date_of_birth != patient.date_of_birth {
        active.date_of_birth = Set(details.date_of_birth);
    }
    active
}

/// Enrol `patient` in `project` unless it already is; the enrolment, and
/// whether it is new.
pub async fn enroll(
    db: &impl ConnectionTrait,
    project: &entity::project::Model,
    patient: &entity::patient::Model,
    source: Source,
    status: EnrollmentStatus,
) -> AppResult<(entity::enrollment::Model, bool)> {
    use entity::enrollment::{Column, Entity};
    let now = Utc::now();
    let id = Uuid::now_v7();
    Entity::insert(entity::enrollment::ActiveModel {
        id: Set(id),
        organization_id: Set(project.organization_id),
        project_id: Set(project.id),
        patient_id: Set(patient.id),
        external_id: Set(patient.external_id.clone()),
        status: Set(status.as_str().to_owned()),
        source: Set(source.as_str().to_owned()),
        request_channel: Set(None),
        requested_at: Set(None),
        last_requested_at: Set(None),
        request_count: Set(0),
        last_message_id: Set(None),
        responded_at: Set((status == EnrollmentStatus::Responded).then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        pending_response: Set(None),
    })
    .on_conflict_do_nothing_on([Column::ProjectId, Column::PatientId])
    .exec(db)
    .await?;
    let enrollment = Scope::of(project.organization_id)
        .find::<Entity>()
        .filter(Column::ProjectId.eq(project.id))
        .filter(Column::PatientId.eq(patient.id))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("enrolment vanished after its insert"))?;
    let created = enrollment.id == id;
    if created {
        projects::unique_token(db, project, &link_subject(&enrollment)).await?;
    }
    Ok((enrollment, created))
}

/// Add a patient to a project by hand or through the API; the enrolment and
/// its project.
pub async fn add_to_project(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    project_id: Uuid,
    details: PatientDetails,
    source: Source,
) -> AppResult<(entity::enrollment::Model, entity::project::Model)> {
    actor.require(Permission::PatientsWrite)?;
    let project = projects::find(db, actor, project_id).await?;
    if project.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This project is archived: it enrols no one.".into(),
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let (patient, created) = upsert_patient(&txn, actor.organization_id, &details).await?;
    if !actor.has(Permission::PatientsAll) {
        // Without PATIENTS_ALL a user works within their care team: a new
        // patient joins it, an existing one must already be in it.
        if created {
            care_teams::insert_assignments(&txn, actor, actor.user_id, &[patient.id]).await?;
        } else if !care_teams::can_see(&txn, actor, patient.id).await? {
            return Err(AppError::forbidden(
                "This patient is not in your care team; ask someone who sees all patients to enrol them.",
            ));
        }
    }
    let (enrollment, created) =
        enroll(&txn, &project, &patient, source, EnrollmentStatus::Added).await?;
    if created {
        audit::record(
            &txn,
            AuditEntry::by(actor, "project.patient_add")
                .target("Enrollment", enrollment.id)
                .changes(json!({ "projectId": project.id, "patientId": patient.id })),
        )
        .await?;
    }
    txn.commit().await?;
    Ok((enrollment, project))
}

/// A page of a project's enrolments, recorded in the audit trail as a read of
/// that project's patients.
pub async fn enrollments(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    project_id: Uuid,
    status: Option<EnrollmentStatus>,
    page: PageRequest,
) -> AppResult<Page<entity::enrollment::Model>> {
    actor.require(Permission::PatientsRead)?;
    let mut select = care_teams::visible(
        actor
            .scope::<entity::enrollment::Entity>()
            .filter(entity::enrollment::Column::ProjectId.eq(project_id)),
        entity::enrollment::Column::PatientId,
        actor,
    );
    if let Some(status) = status {
        select = select.filter(entity::enrollment::Column::Status.eq(status.as_str()));
    }
    let page = paginate(db, select, entity::enrollment::Column::Id, page).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "patients.read")
            .target("Project", project_id)
            .changes(json!({
                "enrollments": page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
                "status": status.map(EnrollmentStatus::as_str),
            })),
    )
    .await?;
    Ok(page)
}

/// The patients of `ids` within the actor's organisation, by id.
pub async fn patients_by_id(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, entity::patient::Model>> {
    Ok(Scope::of(organization_id)
        .find::<entity::patient::Entity>()
        .filter(entity::patient::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// What an enrolment's unique link identifies.
fn link_subject(enrollment: &entity::enrollment::Model) -> LinkSubject {
    match &enrollment.external_id {
        Some(external_id) => LinkSubject::ExternalId(external_id.clone()),
        None => LinkSubject::Patient(enrollment.patient_id),
    }
}

/// The unique link of an enrolment (recorded when the enrolment was made).
pub fn unique_link(
    project: &entity::project::Model,
    enrollment: &entity::enrollment::Model,
    public_url: &str,
) -> String {
    let token = projects::derive_token(project, &link_subject(enrollment));
    format!("{public_url}/p/{token}")
}

/// Queue a request for each enrolment (all that have not responded when `ids`
/// is `None`) and mark them REQUESTED; how many were queued. A patient without
/// an address for the channel refuses the whole call, by name.
pub async fn send_requests(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    project_id: Uuid,
    ids: Option<Vec<Uuid>>,
    channel: Channel,
    public_url: &str,
) -> AppResult<u64> {
    use entity::enrollment::{Column, Entity};
    actor.require(Permission::PatientsWrite)?;
    let project = projects::find(db, actor, project_id).await?;
    if project.archived_at.is_some() {
        return Err(AppError::Conflict(
            "This project is archived: it sends no requests.".into(),
        ));
    }
    let mut select = care_teams::visible(
        actor
            .scope::<Entity>()
            .filter(Column::ProjectId.eq(project.id)),
        Column::PatientId,
        actor,
    );
    select = match &ids {
        Some(ids) => select.filter(Column::Id.is_in(ids.iter().copied())),
        None => select.filter(Column::Status.ne(EnrollmentStatus::Responded.as_str())),
    };
    let chosen = select.all(db).await?;
    if let Some(ids) = &ids {
        let known: std::collections::HashSet<Uuid> = chosen.iter().map(|e| e.id).collect();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !known.contains(id))
            .map(Uuid::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::bad_input(
                "enrollmentIds",
                format!("no such enrolment in this project: {}", unknown.join(", ")),
            ));
        }
    }
    let patient_ids: Vec<Uuid> = chosen.iter().map(|e| e.patient_id).collect();
    let patients = patients_by_id(db, actor.organization_id, &patient_ids).await?;
    let mut unreachable = Vec::new();
    let mut responded = Vec::new();
    for enrollment in &chosen {
        let patient = &patients[&enrollment.patient_id];
        if EnrollmentStatus::from_stored(&enrollment.status) == EnrollmentStatus::Responded {
            responded.push(display_name(patient));
        } else if address(patient, channel).is_none() {
            unreachable.push(display_name(patient));
        }
    }
    let mut check = Validation::default();
    if !unreachable.is_empty() {
        let what = match channel {
            Channel::Email => "email address",
            Channel::Sms => "mobile phone number",
        };
        check.add(
            "enrollmentIds",
            format!("no {what} for {}", unreachable.join(", ")),
        );
    }
    if !responded.is_empty() {
        check.add(
            "enrollmentIds",
            format!("already responded: {}", responded.join(", ")),
        );
    }
    check.finish()?;

    let organization = organizations::find(db, actor, None).await?;
    let txn = crate::db::begin_write(db).await?;
    let now = Utc::now();
    for enrollment in &chosen {
        let patient = &patients[&enrollment.patient_id];
        let link = unique_link(&project, enrollment, public_url);
        let greeting = patient
            .first_name
            .as_deref()
            .map_or_else(|| "Hello,".to_owned(), |n| format!("Hello {n},"));
        let message = match channel {
            Channel::Email => NewMessage {
                organization_id: Some(actor.organization_id),
                kind: "project.request",
                channel: channel.as_str(),
                to: address(patient, channel).unwrap_or_default(),
                subject: format!("{}: {}", organization.name, project.name),
                body: format!(
                    "{greeting}\n\n{org} invites you to respond to \"{project}\".\n\
                     Open your personal link to answer:\n\n{link}\n\n\
                     The link is yours alone; please do not forward it.\n",
                    org = organization.name,
                    project = project.name,
                ),
            },
            Channel::Sms => NewMessage {
                organization_id: Some(actor.organization_id),
                kind: "project.request",
                channel: channel.as_str(),
                to: address(patient, channel).unwrap_or_default(),
                subject: String::new(),
                body: format!(
                    "{org}: please respond to {project}: {link}",
                    org = organization.name,
                    project = project.name,
                ),
            },
        };
        let message_id = outbox::enqueue(&txn, message).await?;
        actor
            .tenant()
            .update_many::<Entity>()
            .col_expr(
                Column::Status,
                Expr::value(EnrollmentStatus::Requested.as_str()),
            )
            .col_expr(
                Column::RequestChannel,
                Expr::col(Column::RequestChannel).if_null(channel.as_str()),
            )
            .col_expr(
                Column::RequestedAt,
                Expr::col(Column::RequestedAt).if_null(Expr::value(now)),
            )
            .col_expr(Column::LastRequestedAt, Expr::value(now))
            .col_expr(Column::RequestCount, Expr::col(Column::RequestCount).add(1))
            .col_expr(Column::LastMessageId, Expr::value(message_id))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(enrollment.id))
            // A response that arrived meanwhile stays a response.
            .filter(Column::Status.ne(EnrollmentStatus::Responded.as_str()))
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        AuditEntry::by(actor, "project.requests_send")
            .target("Project", project.id)
            .changes(json!({
                "channel": channel.as_str(),
                "enrollments": chosen.iter().map(|e| e.id).collect::<Vec<_>>(),
            })),
    )
    .await?;
    txn.commit().await?;
    Ok(chosen.len() as u64)
}

/// What a patient submits on a project's page.
#[derive(Clone, Debug, Default)]
pub struct Response<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub consent: bool,
}

/// Record a response through a generic link: the patient is found by email
/// (else phone) within the organisation, or created, and enrolled as RESPONDED.
/// Responding twice changes nothing.
pub async fn respond_generic(
    db: &(impl ConnectionTrait + TransactionTrait),
    project: &entity::project::Model,
    response: &Response<'_>,
    origin: &Origin,
) -> AppResult<entity::enrollment::Model> {
    let mut check = Validation::default();
    let first_name = check.check(text::required(
        response.first_name.unwrap_or(""),
        "firstName",
        100,
    ));
    let last_name = check.check(text::required(
        response.last_name.unwrap_or(""),
        "lastName",
        100,
    ));
    let email = present(response.email).and_then(|e| check.check(Email::parse(e, "email")));
    let phone = present(response.phone).and_then(|p| check.check(Phone::parse(p, "phone")));
    if present(response.email).is_none() && present(response.phone).is_none() {
        check.add("email", "an email address or a phone number is required");
    }
    if !response.consent {
        check.add("consent", "is required to respond");
    }
    check.finish()?;
    let details = PatientDetails {
        external_id: None,
        first_name,
        last_name,
        email,
        phone,
        date_of_birth: None,
    };
    let txn = crate::db::begin_write(db).await?;
    // Anyone may hold the generic link: it enrols, and never changes a patient
    // the organisation already has. What names one is kept for staff.
    let Some(patient) = find_respondent(&txn, project.organization_id, &details).await? else {
        let patient = insert_respondent(&txn, project.organization_id, &details).await?;
        return record_response(txn, project, &patient, Source::GenericLink, origin).await;
    };
    let (enrollment, created) = enroll(
        &txn,
        project,
        &patient,
        Source::GenericLink,
        EnrollmentStatus::Added,
    )
    .await?;
    if enrollment.responded_at.is_some() {
        // Responding twice changes nothing.
        txn.commit().await?;
        return Ok(enrollment);
    }
    let now = Utc::now();
    let submitted = json!({
        "firstName": details.first_name,
        "lastName": details.last_name,
        "email": details.email.as_ref().map(Email::as_str),
        "phone": details.phone.as_ref().map(Phone::as_str),
        "submittedAt": now,
    });
    let mut active: entity::enrollment::ActiveModel = enrollment.into();
    active.pending_response = Set(Some(submitted));
    active.updated_at = Set(now);
    let enrollment = active.update(&txn).await?;
    audit::record(
        &txn,
        response_entry(project, origin, enrollment.id).changes(json!({
            "projectId": project.id,
            "source": Source::GenericLink.as_str(),
            "new": created,
            "pendingConfirmation": true,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(enrollment)
}

/// Confirm (`accept`) or dismiss a response kept for staff (PATIENTS_WRITE,
/// on a patient the caller sees). A confirmed response marks the enrolment
/// RESPONDED as of its submission; the patient's details stay as stored
/// either way.
pub async fn confirm_response(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    enrollment_id: Uuid,
    accept: bool,
) -> AppResult<(entity::enrollment::Model, entity::project::Model)> {
    actor.require(Permission::PatientsWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let enrollment = actor
        .scope::<entity::enrollment::Entity>()
        .filter(entity::enrollment::Column::Id.eq(enrollment_id))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("Enrollment"))?;
    if !care_teams::can_see(&txn, actor, enrollment.patient_id).await? {
        return Err(AppError::NotFound("Enrollment"));
    }
    let project = projects::find(&txn, actor, enrollment.project_id).await?;
    let Some(submitted) = enrollment.pending_response.clone() else {
        return Err(AppError::Conflict(
            "This enrolment has no response waiting for confirmation.".into(),
        ));
    };
    let now = Utc::now();
    let mut active: entity::enrollment::ActiveModel = enrollment.clone().into();
    active.pending_response = Set(None);
    active.updated_at = Set(now);
    if accept && enrollment.responded_at.is_none() {
        let at = submitted
            .get("submittedAt")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or(now);
        active.status = Set(EnrollmentStatus::Responded.as_str().to_owned());
        active.responded_at = Set(Some(at));
    }
    let enrollment = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(
            actor,
            if accept {
                "project.response_confirm"
            } else {
                "project.response_dismiss"
            },
        )
        .target("Enrollment", enrollment.id)
        .changes(json!({ "projectId": project.id, "patientId": enrollment.patient_id })),
    )
    .await?;
    txn.commit().await?;
    Ok((enrollment, project))
}

/// Record a response through a unique link: that patient's enrolment becomes
/// RESPONDED, created (with the patient) if needed.
pub async fn respond_unique(
    db: &(impl ConnectionTrait + TransactionTrait),
    link: &entity::patient_link::Model,
    project: &entity::project::Model,
    consent: bool,
    origin: &Origin,
) -> AppResult<entity::enrollment::Model> {
    if !consent {
        return Err(AppError::bad_input("consent", "is required to respond"));
    }
    let txn = crate::db::begin_write(db).await?;
    let patient = match link.patient_id {
        Some(id) => Scope::of(project.organization_id)
            .find_by_id::<entity::patient::Entity>(id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("Patient"))?,
        None => {
            let details = PatientDetails {
                external_id: link.external_id.clone(),
                ..PatientDetails::default()
            };
            upsert_patient(&txn, project.organization_id, &details)
                .await?
                .0
        }
    };
    record_response(txn, project, &patient, Source::UniqueLink, origin).await
}

/// Enrol `patient` as RESPONDED, in the transaction `txn`, and commit it.
async fn record_response<C: ConnectionTrait + TransactionTrait + TransactionSession>(
    txn: C,
    project: &entity::project::Model,
    patient: &entity::patient::Model,
    source: Source,
    origin: &Origin,
) -> AppResult<entity::enrollment::Model> {
    use entity::enrollment::{Column, Entity};
    let (enrollment, created) =
        enroll(&txn, project, patient, source, EnrollmentStatus::Responded).await?;
    let now = Utc::now();
    if !created && enrollment.responded_at.is_some() {
        // Responding twice changes nothing.
        txn.commit().await?;
        return Ok(enrollment);
    }
    let enrollment = if created {
        enrollment
    } else {
        Scope::of(project.organization_id)
            .update_many::<Entity>()
            .col_expr(
                Column::Status,
                Expr::value(EnrollmentStatus::Responded.as_str()),
            )
            .col_expr(Column::RespondedAt, Expr::value(now))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(enrollment.id))
            .filter(Column::RespondedAt.is_null())
            .exec(&txn)
            .await?;
        Scope::of(project.organization_id)
            .find_by_id::<Entity>(enrollment.id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("Enrollment"))?
    };
    audit::record(
        &txn,
        response_entry(project, origin, enrollment.id)
            .changes(json!({ "projectId": project.id, "source": source.as_str(), "new": created })),
    )
    .await?;
    txn.commit().await?;
    Ok(enrollment)
}

/// The audit event of a patient's response. The patient has no account: the
/// event has an origin and no actor.
fn response_entry(
    project: &entity::project::Model,
    origin: &Origin,
    enrollment_id: Uuid,
) -> AuditEntry {
    AuditEntry {
        organization_id: Some(project.organization_id),
        action: "project.patient_respond",
        origin: origin.clone(),
        ..AuditEntry::default()
    }
    .target("Enrollment", enrollment_id)
}

/// The organisation's patient a generic-link respondent names: by email, or,
/// with only a phone, the patient with that phone and no email.
async fn find_respondent(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    details: &PatientDetails,
) -> AppResult<Option<entity::patient::Model>> {
    use entity::patient::{Column, Entity};
    let select = Scope::of(organization_id)
        .find::<Entity>()
        .filter(Column::OrganizationId.eq(organization_id));
    Ok(match (&details.email, &details.phone) {
        (Some(email), _) => {
            select
                .filter(Column::Email.eq(email.as_str()))
                .one(db)
                .await?
        }
        (None, Some(phone)) => {
            select
                .filter(Column::Phone.eq(phone.as_str()))
                .filter(Column::Email.is_null())
                .one(db)
                .await?
        }
        (None, None) => None,
    })
}

/// A new patient from what a generic-link respondent gave.
async fn insert_respondent(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    details: &PatientDetails,
) -> AppResult<entity::patient::Model> {
    let patient = new_patient(organization_id, details, Utc::now());
    entity::patient::Entity::insert(entity::patient::ActiveModel::from(patient.clone()))
        .exec_without_returning(db)
        .await?;
    Ok(patient)
}

/// A field that was given and is not blank.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The patient's address for a channel.
fn address(patient: &entity::patient::Model, channel: Channel) -> Option<String> {
    match channel {
        Channel::Email => patient.email.clone(),
        Channel::Sms => patient.phone.clone(),
    }
}

/// How a patient is named in messages to staff.
pub fn display_name(patient: &entity::patient::Model) -> String {
    let name = [patient.first_name.as_deref(), patient.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    match (&patient.external_id, name.is_empty()) {
        (Some(id), true) => id.clone(),
        (Some(id), false) => format!("{name} ({id})"),
        (None, true) => patient
            .email
            .clone()
            .unwrap_or_else(|| patient.id.to_string()),
        (None, false) => name,
    }
}
