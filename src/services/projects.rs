//! Projects: studies and outreach programmes that enrol patients, their links,
//! and their response rates.
//!
//! A project has a generic link (its token is public by design: it is printed as
//! a QR code) and a secret key from which each patient's unique link is derived:
//! HMAC-SHA256 of the key and what the link identifies, so the same external id
//! always gets the same link and nobody without the key can make one. Only a
//! digest of each unique token is stored, to find it again when the patient
//! responds.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    patients::Channel,
};
use crate::db::{Page, PageRequest, Scope, paginate, unscoped};
use crate::{
    auth::{Actor, Permission},
    domain::text,
    error::{AppError, AppResult, OnConstraint},
};

/// A project's name and description, valid by construction.
#[derive(Clone, Debug)]
pub struct ProjectDetails {
    pub name: String,
    pub description: Option<String>,
    /// `Some(true)` archives, `Some(false)` restores, `None` leaves as is.
    pub archived: Option<bool>,
}

impl ProjectDetails {
    pub fn parse(name: &str, description: Option<&str>, archived: Option<bool>) -> AppResult<Self> {
        let mut check = crate::error::Validation::default();
        let name = check.check(text::required(name, "name", 200));
        let description = check.check(text::optional(description, "description", 4000));
        check.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            archived,
        })
    }
}

/// What a unique link identifies within its project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSubject {
    /// The organisation's external id for the patient.
    ExternalId(String),
    /// A patient enrolled without an external id.
    Patient(Uuid),
}

impl LinkSubject {
    fn key(&self) -> String {
        match self {
            Self::ExternalId(id) => format!("external:{id}"),
            Self::Patient(id) => format!("patient:{id}"),
        }
    }
}

pub async fn create(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    details: ProjectDetails,
) -> AppResult<entity::project::Model> {
    actor.require(Permission::ProjectsWrite)?;
    let now = Utc::now();
    let project = entity::project::Model {
        id: Uuid::now_v7(),
        organization_id: actor.organization_id,
        name: details.name,
        description: details.description,
        link_token: random_token(),
        link_key: random_token(),
        archived_at: details.archived.filter(|a| *a).map(|_| now),
        created_by: Some(actor.user_id),
        created_at: now,
        updated_at: now,
    };
    entity::project::Entity::insert(entity::project::ActiveModel::from(project.clone()))
        .exec_without_returning(db)
        .await
        .on_unique_violation(name_taken)?;
    audit::record(
        db,
        AuditEntry::by(actor, "project.create")
            .target("Project", project.id)
            .changes(json!({ "name": project.name })),
    )
    .await?;
    Ok(project)
}

pub async fn update(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    id: Uuid,
    details: ProjectDetails,
) -> AppResult<entity::project::Model> {
    actor.require(Permission::ProjectsWrite)?;
    let project = find(db, actor, id).await?;
    let mut active: entity::project::ActiveModel = project.clone().into();
    let mut changes = serde_json::Map::new();
    if project.name != details.name {
        changes.insert("name".into(), json!([project.name, details.name]));
        active.name = Set(details.name);
    }
    if project.description != details.description {
        changes.insert(
            "description".into(),
            json!([project.description, details.description]),
        );
        active.description = Set(details.description);
    }
    if let Some(archived) = details.archived
        && archived != project.archived_at.is_some()
    {
        changes.insert("archived".into(), json!([!archived, archived]));
        active.archived_at = Set(archived.then(Utc::now));
    }
    if changes.is_empty() {
        return Ok(project);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await.on_unique_violation(name_taken)?;
    audit::record(
        db,
        AuditEntry::by(actor, "project.update")
            .target("Project", id)
            .changes(serde_json::Value::Object(changes)),
    )
    .await?;
    Ok(updated)
}

/// Replace the generic link: the old one stops working at once.
pub async fn rotate_link(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::project::Model> {
    actor.require(Permission::ProjectsWrite)?;
    let project = find(db, actor, id).await?;
    let mut active: entity::project::ActiveModel = project.into();
    active.link_token = Set(random_token());
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await?;
    audit::record(
        db,
        AuditEntry::by(actor, "project.rotate_link").target("Project", id),
    )
    .await?;
    Ok(updated)
}

/// A project of the actor's organisation.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::project::Model> {
    actor.require(Permission::ProjectsRead)?;
    actor
        .scope::<entity::project::Entity>()
        .filter(entity::project::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Project"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    page: PageRequest,
) -> AppResult<Page<entity::project::Model>> {
    actor.require(Permission::ProjectsRead)?;
    paginate(
        db,
        actor.scope::<entity::project::Entity>(),
        entity::project::Column::Id,
        page,
    )
    .await
}

/// The project whose generic link carries `token`, if it still works.
pub async fn by_link_token(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<Option<entity::project::Model>> {
    if !plausible_token(token) {
        return Ok(None);
    }
    Ok(unscoped::find::<entity::project::Entity>()
        .filter(entity::project::Column::LinkToken.eq(token))
        .filter(entity::project::Column::ArchivedAt.is_null())
        .one(db)
        .await?)
}

/// The unique link token of `subject` in `project`, recorded so that a response
/// through it can be traced back. The same subject always gets the same token.
pub async fn unique_token(
    db: &impl ConnectionTrait,
    project: &entity::project::Model,
    subject: &LinkSubject,
) -> AppResult<String> {
    let token = derive_token(project, subject);
    record_links(db, vec![link_row(project, subject, &token, Utc::now())]).await?;
    Ok(token)
}

/// The stored form of `subject`'s unique link in `project`.
pub fn link_model(
    project: &entity::project::Model,
    subject: &LinkSubject,
    now: chrono::DateTime<Utc>,
) -> entity::patient_link::ActiveModel {
    link_row(project, subject, &derive_token(project, subject), now)
}

fn link_row(
    project: &entity::project::Model,
    subject: &LinkSubject,
    token: &str,
    now: chrono::DateTime<Utc>,
) -> entity::patient_link::ActiveModel {
    let (external_id, patient_id) = match subject {
        LinkSubject::ExternalId(id) => (Some(id.clone()), None),
        LinkSubject::Patient(id) => (None, Some(*id)),
    };
    entity::patient_link::ActiveModel {
        token_hash: Set(digest(token)),
        project_id: Set(project.id),
        external_id: Set(external_id),
        patient_id: Set(patient_id),
        created_at: Set(now),
    }
}

/// Record unique links; one already recorded stays as it is.
pub async fn record_links(
    db: &impl ConnectionTrait,
    links: Vec<entity::patient_link::ActiveModel>,
) -> AppResult<()> {
    let mut links = links.into_iter().peekable();
    while links.peek().is_some() {
        // Five columns a row: well below every backend's parameter limit.
        let chunk: Vec<_> = links.by_ref().take(1000).collect();
        entity::patient_link::Entity::insert_many(chunk)
            .on_conflict_do_nothing()
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The unique link a token opens, with its project, if the project is active.
pub async fn by_unique_token(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<Option<(entity::patient_link::Model, entity::project::Model)>> {
    if !plausible_token(token) {
        return Ok(None);
    }
    let Some(link) = unscoped::find_by_id::<entity::patient_link::Entity>(digest(token))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let project = unscoped::find_by_id::<entity::project::Entity>(link.project_id)
        .filter(entity::project::Column::ArchivedAt.is_null())
        .one(db)
        .await?;
    Ok(project.map(|p| (link, p)))
}

/// Where a project's requests stand, overall or for one channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub enrolled: u64,
    pub requested: u64,
    pub responded: u64,
    /// Requested and not yet responded.
    pub outstanding: u64,
    /// Requested enrolments that responded ÷ requested enrolments; 0 when none.
    pub response_rate: f64,
}

/// Each project's figures, overall and by the channel of the first request:
/// one grouped count for all of them.
pub async fn stats_of(
    db: &impl ConnectionTrait,
    scope: Scope,
    project_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, ProjectStats>> {
    use entity::enrollment::{Column, Entity};
    // An enrolment has a request channel from its first request on, so the
    // channel also tells whether it was requested.
    let rows: Vec<(Uuid, Option<String>, String, i64)> = scope
        .find::<Entity>()
        .select_only()
        .column(Column::ProjectId)
        .column(Column::RequestChannel)
        .column(Column::Status)
        .column_as(Expr::col(Column::Id).count(), "n")
        .filter(Column::ProjectId.is_in(project_ids.iter().copied()))
        .group_by(Column::ProjectId)
        .group_by(Column::RequestChannel)
        .group_by(Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut all: HashMap<Uuid, ProjectStats> = project_ids
        .iter()
        .map(|id| (*id, ProjectStats::default()))
        .collect();
    for (project_id, channel, status, n) in rows {
        let Some(figures) = all.get_mut(&project_id) else {
            continue;
        };
        let requested = channel.is_some();
        let n = u64::try_from(n).unwrap_or(0);
        let add = |s: &mut Stats| {
            s.enrolled += n;
            if requested {
                s.requested += n;
                if status == "RESPONDED" {
                    s.responded += n;
                } else {
                    s.outstanding += n;
                }
            } else if status == "RESPONDED" {
                s.responded += n;
            }
        };
        add(&mut figures.total);
        if let Some((_, s)) = figures
            .by_channel
            .iter_mut()
            .find(|(c, _)| Some(c.as_str()) == channel.as_deref())
        {
            add(s);
        }
    }
    for figures in all.values_mut() {
        let ProjectStats { total, by_channel } = figures;
        for s in std::iter::once(total).chain(by_channel.iter_mut().map(|(_, s)| s)) {
            let answered = s.requested - s.outstanding;
            s.response_rate = if s.requested == 0 {
                0.0
            } else {
                answered as f64 / s.requested as f64
            };
        }
    }
    Ok(all)
}

/// A project's figures, overall and by the channel of its first request.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectStats {
    pub total: Stats,
    pub by_channel: [(Channel, Stats); 2],
}

impl Default for ProjectStats {
    fn default() -> Self {
        Self {
            total: Stats::default(),
            by_channel: [
                (Channel::Email, Stats::default()),
                (Channel::Sms, Stats::default()),
            ],
        }
    }
}

fn name_taken() -> AppError {
    AppError::Conflict("A project of this organisation already has this name.".into())
}

/// 256 random bits, URL-safe.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The unique link token of `subject`, without recording it.
pub fn derive_token(project: &entity::project::Model, subject: &LinkSubject) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(project.link_key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(project.id.as_bytes());
    mac.update(subject.key().as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Tokens are 43 URL-safe characters: anything else is refused before a lookup.
fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> entity::project::Model {
        let now = Utc::now();
        entity::project::Model {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            name: "Flu outreach".into(),
            description: None,
            link_token: random_token(),
            link_key: random_token(),
            archived_at: None,
            created_by: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn unique_tokens_are_stable_per_subject_and_differ_between_subjects_and_projects() {
        let (a, b) = (project(), project());
        let mrn = LinkSubject::ExternalId("MRN-1".into());
        assert_eq!(derive_token(&a, &mrn), derive_token(&a, &mrn));
        assert_ne!(
            derive_token(&a, &mrn),
            derive_token(&a, &LinkSubject::ExternalId("MRN-2".into()))
        );
        assert_ne!(derive_token(&a, &mrn), derive_token(&b, &mrn));
        assert!(plausible_token(&derive_token(&a, &mrn)));
        assert!(plausible_token(&a.link_token));
    }

    #[test]
    fn implausible_tokens_are_refused_before_any_lookup() {
        assert!(!plausible_token(""));
        assert!(!plausible_token("../../etc/passwd"));
        assert!(!plausible_token(&"a".repeat(44)));
        assert!(!plausible_token(&format!("{}%", "a".repeat(42))));
    }
}
