//! Projects, their patients and enrolments, as clients read and change them.

use async_graphql::{
    Context, Enum, ID, InputObject, Object, Result, SimpleObject, dataloader::DataLoader,
};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    loaders::{ById, CareTeamOfPatient, Key, StatsOfProject, UserById, loader_error},
    people::User,
    staff::parse_ids,
};
use crate::{
    error::{AppError, Validation},
    services::{
        care_teams,
        patients::{self, Channel, PatientDetails, RawPatient, Source},
        projects::{self, LinkSubject, ProjectDetails},
    },
};

/// Where an enrolment stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    /// Enrolled; no request sent yet.
    Added,
    /// Sent a request, not yet responded.
    Requested,
    Responded,
}

impl From<EnrollmentStatus> for patients::EnrollmentStatus {
    fn from(status: EnrollmentStatus) -> Self {
        match status {
            EnrollmentStatus::Added => Self::Added,
            EnrollmentStatus::Requested => Self::Requested,
            EnrollmentStatus::Responded => Self::Responded,
        }
    }
}

impl From<patients::EnrollmentStatus> for EnrollmentStatus {
    fn from(status: patients::EnrollmentStatus) -> Self {
        match status {
            patients::EnrollmentStatus::Added => Self::Added,
            patients::EnrollmentStatus::Requested => Self::Requested,
            patients::EnrollmentStatus::Responded => Self::Responded,
        }
    }
}

/// How requests reach patients.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RequestChannel {
    Email,
    Sms,
}

impl From<Channel> for RequestChannel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Email => Self::Email,
            Channel::Sms => Self::Sms,
        }
    }
}

impl From<RequestChannel> for Channel {
    fn from(channel: RequestChannel) -> Self {
        match channel {
            RequestChannel::Email => Self::Email,
            RequestChannel::Sms => Self::Sms,
        }
    }
}

/// A study or outreach programme of the organisation.
pub struct Project(pub entity::project::Model);

#[Object]
impl Project {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// An archived project keeps its data; its links enrol no one.
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }
    /// The generic link: whoever responds through it is enrolled.
    async fn patient_link(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!(
            "{}/p/{}",
            ctx.state()?.public_url,
            self.0.link_token
        ))
    }
    /// The generic link as an SVG QR code, for the project's users (cookie or
    /// bearer session).
    async fn qr_code_url(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!(
            "{}/projects/{}/qr.svg",
            ctx.state()?.public_url,
            self.0.id
        ))
    }
    /// The link of the patient the organisation knows by `externalId`: the same
    /// link every time; it identifies that patient when they respond.
    async fn unique_link(&self, ctx: &Context<'_>, external_id: String) -> Result<String> {
        let state = ctx.state()?;
        ctx.caller()?
            .require(crate::auth::Permission::PatientsRead)?;
        let external_id = crate::domain::text::required(&external_id, "externalId", 100)?;
        let token =
            projects::unique_token(&state.db, &self.0, &LinkSubject::ExternalId(external_id))
                .await?;
        Ok(format!("{}/p/{token}", state.public_url))
    }
    /// The project's patients (PATIENTS_READ); every read is recorded in the
    /// audit trail.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn enrollments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<EnrollmentStatus>,
    ) -> Result<Conn<Enrollment>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = patients::enrollments(&state.db, actor, self.0.id, status.map(Into::into), page)
            .await?;
        let project = self.0.clone();
        Ok(into_connection(
            page,
            |e| e.id,
            |e| Enrollment(e, project.clone()),
        ))
    }
    /// Enrolled, requested, responded, outstanding and the response rate,
    /// overall and by the channel of the first request.
    async fn stats(&self, ctx: &Context<'_>) -> Result<ProjectStats> {
        let figures = ctx
            .data::<DataLoader<StatsOfProject>>()?
            .load_one(Key::within(self.0.organization_id, self.0.id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let total = figures.total;
        Ok(ProjectStats {
            enrolled: count(total.enrolled),
            requested: count(total.requested),
            responded: count(total.responded),
            outstanding: count(total.outstanding),
            response_rate: total.response_rate,
            by_channel: figures
                .by_channel
                .into_iter()
                .map(|(channel, s)| ChannelStats {
                    channel: channel.into(),
                    requested: count(s.requested),
                    responded: count(s.responded),
                    outstanding: count(s.outstanding),
                    response_rate: s.response_rate,
                })
                .collect(),
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(SimpleObject)]
pub struct ProjectStats {
    enrolled: i32,
    requested: i32,
    responded: i32,
    /// Requested and not yet responded.
    outstanding: i32,
    /// Requested enrolments that responded ÷ requested enrolments (0 when none).
    response_rate: f64,
    by_channel: Vec<ChannelStats>,
}

/// The figures of the enrolments first requested through one channel.
#[derive(SimpleObject)]
pub struct ChannelStats {
    channel: RequestChannel,
    requested: i32,
    responded: i32,
    outstanding: i32,
    response_rate: f64,
}

/// A patient of the organisation.
pub struct Patient(pub entity::patient::Model);

#[Object]
impl Patient {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The organisation's own identifier, e.g. a medical record number.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// E.164.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// `YYYY-MM-DD`.
    async fn date_of_birth(&self) -> Option<String> {
        self.0.date_of_birth.map(|d| d.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The staff users the patient is assigned to.
    async fn care_team(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let ids = ctx
            .data::<DataLoader<CareTeamOfPatient>>()?
            .load_one(Key::within(self.0.organization_id, self.0.id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let users = ctx
            .data::<DataLoader<UserById>>()?
            .load_many(
                ids.into_iter()
                    .map(|id| Key::within(self.0.organization_id, id)),
            )
            .await
            .map_err(loader_error)?;
        let mut users: Vec<_> = users.into_values().collect();
        users.sort_by(|a, b| (&a.last_name, &a.first_name).cmp(&(&b.last_name, &b.first_name)));
        Ok(users.into_iter().map(User::from).collect())
    }
}

/// Whether the latest request reached the patient.
#[derive(SimpleObject)]
pub struct Delivery {
    /// PENDING, SENDING, SENT, FAILED or UNDELIVERED (no transport configured).
    status: String,
    attempts: i32,
    error: Option<String>,
    sent_at: Option<DateTime<Utc>>,
}

/// A patient enrolled in a project.
pub struct Enrollment(pub entity::enrollment::Model, pub entity::project::Model);

#[Object]
impl Enrollment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn patient(&self, ctx: &Context<'_>) -> Result<Patient> {
        let patient = ctx
            .data::<DataLoader<ById<entity::patient::Entity>>>()?
            .load_one(Key::within(self.0.organization_id, self.0.patient_id))
            .await
            .map_err(loader_error)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("enrolment without patient")))?;
        Ok(Patient(patient))
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn status(&self) -> EnrollmentStatus {
        patients::EnrollmentStatus::from_stored(&self.0.status).into()
    }
    /// MANUAL, API, IMPORT, GENERIC_LINK or UNIQUE_LINK.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// When the first request was sent.
    async fn requested_at(&self) -> Option<DateTime<Utc>> {
        self.0.requested_at
    }
    /// When the latest request or reminder was sent.
    async fn last_requested_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_requested_at
    }
    /// Requests sent; more than one means reminders.
    async fn request_count(&self) -> i32 {
        self.0.request_count
    }
    /// The channel of the first request.
    async fn request_channel(&self) -> Option<RequestChannel> {
        match self.0.request_channel.as_deref() {
            Some("EMAIL") => Some(RequestChannel::Email),
            Some("SMS") => Some(RequestChannel::Sms),
            _ => None,
        }
    }
    /// How the latest request fared in delivery.
    async fn delivery(&self, ctx: &Context<'_>) -> Result<Option<Delivery>> {
        let Some(id) = self.0.last_message_id else {
            return Ok(None);
        };
        let message = ctx
            .data::<DataLoader<ById<entity::outbox_message::Entity>>>()?
            .load_one(Key::within(self.0.organization_id, id))
            .await
            .map_err(loader_error)?;
        Ok(message.map(|m| Delivery {
            status: m.status,
            attempts: m.attempts,
            error: m.last_error,
            sent_at: m.sent_at,
        }))
    }
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }
    /// What someone submitted through the project's generic link naming this
    /// patient (`firstName`, `lastName`, `email`, `phone`, `submittedAt`),
    /// waiting for `confirmEnrollmentResponse`; null when nothing waits. The
    /// patient's stored details are never changed by it.
    async fn pending_response(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.pending_response.clone().map(async_graphql::Json)
    }
    /// The patient's own link: it identifies them when they respond.
    async fn unique_link(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(patients::unique_link(
            &self.1,
            &self.0,
            &ctx.state()?.public_url,
        ))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A project's name and description. On update every field is replaced.
#[derive(InputObject)]
pub struct ProjectInput {
    pub name: String,
    pub description: Option<String>,
    /// Archive (true) or restore (false); unchanged when omitted.
    pub archived: Option<bool>,
}

/// A patient to enrol: matched within the organisation by external id, then
/// email, else created. An external id or an email is required.
#[derive(InputObject)]
pub struct ProjectPatientInput {
    pub external_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Stored in E.164.
    pub phone: Option<String>,
    /// `YYYY-MM-DD` or `MM/DD/YYYY`.
    pub date_of_birth: Option<String>,
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// The organisation's projects (PROJECTS_READ).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Project>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = projects::list(&state.db, actor, page).await?;
        Ok(into_connection(page, |m| m.id, Project))
    }

    /// One patient, if the caller sees them (PATIENTS_READ: assigned patients;
    /// with PATIENTS_ALL, every patient of the organisation). Audited.
    async fn patient(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Patient>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(care_teams::find_patient(&ctx.state()?.db, actor, id)
            .await?
            .map(Patient))
    }

    /// The patients the caller sees, narrowed by `search` (part of a name,
    /// email or external id) or to one user's caseload. Audited.
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn patients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        assigned_to: Option<ID>,
    ) -> Result<Conn<Patient>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let assigned_to = assigned_to
            .map(|id| parse_id(&id, "assignedTo"))
            .transpose()?;
        let page =
            care_teams::patients(&state.db, actor, search.as_deref(), assigned_to, page).await?;
        Ok(into_connection(page, |p| p.id, Patient))
    }

    /// One project of the organisation; null for an unknown id or another
    /// organisation's.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Project>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        match projects::find(&ctx.state()?.db, actor, id).await {
            Ok(project) => Ok(Some(Project(project))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Create a project (PROJECTS_WRITE); names are unique within the organisation.
    async fn create_project(&self, ctx: &Context<'_>, input: ProjectInput) -> Result<Project> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let details =
            ProjectDetails::parse(&input.name, input.description.as_deref(), input.archived)?;
        Ok(Project(projects::create(&state.db, actor, details).await?))
    }

    /// Rename, describe, archive or restore a project (PROJECTS_WRITE).
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ProjectInput,
    ) -> Result<Project> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        let details =
            ProjectDetails::parse(&input.name, input.description.as_deref(), input.archived)?;
        Ok(Project(
            projects::update(&state.db, actor, id, details).await?,
        ))
    }

    /// Replace the project's generic link (and QR code); the old one stops
    /// working at once (PROJECTS_WRITE).
    async fn rotate_project_link(&self, ctx: &Context<'_>, id: ID) -> Result<Project> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(Project(projects::rotate_link(&state.db, actor, id).await?))
    }

    /// Enrol a patient (PATIENTS_WRITE): the organisation's patient with the
    /// same external id, else email, or a new one. Enrolling twice changes
    /// nothing.
    async fn add_project_patient(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        input: ProjectPatientInput,
    ) -> Result<Enrollment> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let project_id = parse_id(&project_id, "projectId")?;
        let details = PatientDetails::parse(
            &RawPatient {
                external_id: input.external_id.as_deref(),
                first_name: Some(&input.first_name),
                last_name: Some(&input.last_name),
                email: input.email.as_deref(),
                phone: input.phone.as_deref(),
                date_of_birth: input.date_of_birth.as_deref(),
            },
            true,
        )
        .map_err(AppError::BadInput)?;
        let (enrollment, project) =
            patients::add_to_project(&state.db, actor, project_id, details, Source::Api).await?;
        Ok(Enrollment(enrollment, project))
    }

    /// Confirm (`accept: true`: the enrolment is RESPONDED as of the
    /// submission) or dismiss a generic-link response that named an existing
    /// patient (PATIENTS_WRITE). The patient's details stay as stored.
    async fn confirm_enrollment_response(
        &self,
        ctx: &Context<'_>,
        id: ID,
        accept: bool,
    ) -> Result<Enrollment> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        let (enrollment, project) =
            patients::confirm_response(&state.db, actor, id, accept).await?;
        Ok(Enrollment(enrollment, project))
    }

    /// Assign patients to a staff user (PATIENTS_WRITE; to oneself,
    /// PATIENTS_SELF_ASSIGN suffices). Every patient must be one the caller
    /// sees. How many were newly assigned.
    async fn assign_patients(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        patient_ids: Vec<ID>,
    ) -> Result<i32> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let (user_id, patient_ids) = assignment_ids(&user_id, &patient_ids)?;
        Ok(count(
            care_teams::assign(&state.db, actor, user_id, &patient_ids).await?,
        ))
    }

    /// Take patients out of a user's caseload (as for assignPatients); how
    /// many were assigned.
    async fn unassign_patients(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        patient_ids: Vec<ID>,
    ) -> Result<i32> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let (user_id, patient_ids) = assignment_ids(&user_id, &patient_ids)?;
        Ok(count(
            care_teams::unassign(&state.db, actor, user_id, &patient_ids).await?,
        ))
    }

    /// Send each enrolment (every one not yet responded when `enrollmentIds` is
    /// omitted) its unique link by email or text message, and mark it REQUESTED;
    /// how many were queued. Sending again is a reminder. A patient with no
    /// address for the channel refuses the whole call, by name (PATIENTS_WRITE).
    async fn send_project_requests(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        enrollment_ids: Option<Vec<ID>>,
        channel: RequestChannel,
    ) -> Result<i32> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let project_id = parse_id(&project_id, "projectId")?;
        let mut v = Validation::default();
        let ids = enrollment_ids
            .as_deref()
            .map(|ids| parse_ids(&mut v, ids, "enrollmentIds"));
        v.finish()?;
        let queued = patients::send_requests(
            &state.db,
            actor,
            project_id,
            ids,
            channel.into(),
            &state.public_url,
        )
        .await?;
        Ok(count(queued))
    }
}

fn assignment_ids(user_id: &ID, patient_ids: &[ID]) -> Result<(uuid::Uuid, Vec<uuid::Uuid>)> {
    let mut v = Validation::default();
    let user_id = v.check(parse_id(user_id, "userId"));
    let patient_ids = parse_ids(&mut v, patient_ids, "patientIds");
    if patient_ids.len() > 1000 {
        v.add("patientIds", "at most 1000 at once");
    }
    v.finish()?;
    Ok((user_id.unwrap_or_default(), patient_ids))
}
