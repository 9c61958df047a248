//! Connector feeds: imports that fetch their file.
//!
//! A feed names a URL (with request headers such as an API key, kept
//! encrypted), a saved mapping template and a schedule in cron syntax, read
//! in the organisation's time zone. Each run is an ordinary import job
//! (`ImportJob.feed`): its rows, counts and failed-row files as for an
//! upload. A file unchanged since the last run (by ETag, or by its SHA-256)
//! is recorded as a SKIPPED job; a fetch that fails is a FAILED job with the
//! reason. Runs import with the rights the feed's creator holds at the run.
//!
//! Exactly one instance runs each scheduled run: [`Scheduler`] claims a due
//! feed by moving its `next_run_at` on with a compare-and-set that only one
//! instance can win.

use std::{collections::BTreeMap, str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use croner::Cron;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    center::{self as imports, ImportRequest},
    fields::ImportKind,
    file::Content,
    jobs::JobStatus,
};
use crate::db::{Scope, global, unscoped};
use crate::{
    auth::{Actor, Credential, Permission, actor::Origin, mfa::SecretKey},
    domain::text,
    error::{AppError, AppResult, Validation},
    outbound::Outbound,
    services::{
        audit::{self, AuditEntry},
        roles::permissions_of,
    },
};

/// How long a fetch may take, redirects included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const MOST_REDIRECTS: usize = 5;
/// How often each instance looks for due feeds.
const TICK: Duration = Duration::from_secs(1);

/// A feed to create (no `id`) or change.
pub struct FeedInput {
    pub id: Option<Uuid>,
    pub name: String,
    pub kind: ImportKind,
    pub url: String,
    pub template_id: Uuid,
    pub project_id: Option<Uuid>,
    pub schedule: String,
    /// `None` keeps the stored headers; `Some` replaces them.
    pub headers: Option<Vec<(String, String)>>,
    pub active: bool,
}

/// What a feed needs beyond configuration, shared by the scheduler and the
/// `runImportFeed` mutation.
#[derive(Clone)]
pub struct Feeds {
    pub db: DatabaseConnection,
    pub secrets: SecretKey,
    pub outbound: Arc<Outbound>,
    /// The largest file fetched: the upload limit.
    pub max_bytes: usize,
    /// Wakes the import runner once a run queued its job.
    pub import_wake: Arc<Notify>,
}

fn parse_schedule(raw: &str) -> AppResult<Cron> {
    Cron::from_str(raw.trim()).map_err(|e| {
        AppError::bad_input(
            "schedule",
            format!("is not cron syntax (minute hour day month weekday): {e}"),
        )
    })
}

/// The next time `schedule` falls after `after`, in the time zone `zone`.
fn next_run(schedule: &Cron, zone: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    schedule
        .find_next_occurrence(&after.with_timezone(&zone), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn check_headers(headers: &[(String, String)], v: &mut Validation) {
    if headers.len() > 20 {
        v.add("headers", "at most 20 headers");
    }
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            v.add("headers", format!("{name:?} is not a header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() || value.len() > 4096 {
            v.add(
                "headers",
                format!("the value of {name} is not a header value"),
            );
        }
    }
}

impl Feeds {
    /// Save a feed (IMPORTS_RUN and the kind's permissions).
    pub async fn save(
        &self,
        actor: &Actor,
        input: FeedInput,
    ) -> AppResult<entity::import_feed::Model> {
        actor.require(Permission::ImportsRun)?;
        for permission in input.kind.write_permissions() {
            actor.require(*permission)?;
        }
        let mut v = Validation::default();
        let name = v.check(text::required(&input.name, "name", 100));
        let url = match reqwest::Url::parse(input.url.trim()) {
            Ok(url) => match self.outbound.refuse(&url) {
                Some(reason) => {
                    v.add("url", reason);
                    None
                }
                None => Some(url),
            },
            Err(_) => {
                v.add("url", "is not an absolute URL");
                None
            }
        };
        let schedule = v.check(parse_schedule(&input.schedule));
        if let Some(headers) = &input.headers {
            check_headers(headers, &mut v);
        }
        let template = actor
            .scope::<entity::mapping_template::Entity>()
            .filter(entity::mapping_template::Column::Id.eq(input.template_id))
            .one(&self.db)
            .await?;
        match &template {
            None => v.add("templateId", "no such mapping template"),
            Some(t) if t.kind != input.kind.as_str() => v.add(
                "templateId",
                format!("is a template for {} imports", t.kind),
            ),
            Some(t) if serde_json::to_string(&t.mapping).is_ok_and(|m| m.contains("\"roles\"")) => {
                // A feed that gives roles gives them unattended: the
                // creator's step-up is asked now.
                v.check(actor.require_recent_mfa());
                v.check(actor.require(Permission::RolesManage));
            }
            Some(_) => {}
        }
        if input.kind == ImportKind::Patients && input.project_id.is_none() {
            v.add("projectId", "is required for PATIENTS feeds");
        }
        v.finish()?;
        let (Some(name), Some(url), Some(schedule)) = (name, url, schedule) else {
            return Err(AppError::bad_input("input", "is incomplete"));
        };
        let zone = crate::services::organizations::find(&self.db, actor, None)
            .await?
            .time_zone;
        let now = Utc::now();
        let next = input
            .active
            .then(|| next_run(&schedule, &zone, now))
            .flatten();
        let txn = crate::db::begin_write(&self.db).await?;
        let feed = match input.id {
            Some(id) => {
                let existing = find(&txn, actor, id).await?;
                let mut active: entity::import_feed::ActiveModel = existing.into();
                active.name = Set(name);
                active.kind = Set(input.kind.as_str().to_owned());
                active.url = Set(url.to_string());
                active.template_id = Set(input.template_id);
                active.project_id = Set(input.project_id);
                active.schedule = Set(input.schedule.trim().to_owned());
                active.active = Set(input.active);
                active.next_run_at = Set(next);
                if let Some(headers) = &input.headers {
                    active.headers_sealed = Set(self.seal_headers(id, headers));
                }
                active.updated_at = Set(now);
                active.update(&txn).await?
            }
            None => {
                let id = Uuid::now_v7();
                entity::import_feed::ActiveModel {
                    id: Set(id),
                    organization_id: Set(actor.organization_id),
                    name: Set(name),
                    kind: Set(input.kind.as_str().to_owned()),
                    url: Set(url.to_string()),
                    headers_sealed: Set(input
                        .headers
                        .as_ref()
                        .and_then(|h| self.seal_headers(id, h))),
                    template_id: Set(input.template_id),
                    project_id: Set(input.project_id),
                    schedule: Set(input.schedule.trim().to_owned()),
                    active: Set(input.active),
                    next_run_at: Set(next),
                    last_etag: Set(None),
                    last_digest: Set(None),
                    created_by: Set(Some(actor.user_id)),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&txn)
                .await?
            }
        };
        audit::record(
            &txn,
            AuditEntry::by(actor, "import_feed.save")
                .target("ImportFeed", feed.id)
                .changes(json!({
                    "name": feed.name,
                    "kind": feed.kind,
                    "url": feed.url,
                    "schedule": feed.schedule,
                    "active": feed.active,
                    "headersChanged": input.headers.is_some(),
                })),
        )
        .await?;
        txn.commit().await?;
        Ok(feed)
    }

    fn seal_headers(&self, id: Uuid, headers: &[(String, String)]) -> Option<String> {
        if headers.is_empty() {
            return None;
        }
        let map: BTreeMap<&str, &str> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let plain = serde_json::to_vec(&map).unwrap_or_default();
        Some(self.secrets.seal(&plain, id.as_bytes()))
    }

    /// The names of a feed's request headers; their values are never shown.
    pub fn header_names(&self, feed: &entity::import_feed::Model) -> Vec<String> {
        self.headers_of(feed)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn headers_of(&self, feed: &entity::import_feed::Model) -> Vec<(String, String)> {
        feed.headers_sealed
            .as_deref()
            .and_then(|sealed| self.secrets.open(sealed, feed.id.as_bytes()))
            .and_then(|plain| serde_json::from_slice::<BTreeMap<String, String>>(&plain).ok())
            .map(|map| map.into_iter().collect())
            .unwrap_or_default()
    }

    /// Run a feed now (`runImportFeed`): the run's job.
    pub async fn run_now(&self, actor: &Actor, id: Uuid) -> AppResult<entity::import_job::Model> {
        actor.require(Permission::ImportsRun)?;
        let feed = find(&self.db, actor, id).await?;
        audit::record(
            &self.db,
            AuditEntry::by(actor, "import_feed.run").target("ImportFeed", id),
        )
        .await?;
        self.run(&feed).await
    }

    /// One run: fetch, then skip, fail or import.
    pub async fn run(
        &self,
        feed: &entity::import_feed::Model,
    ) -> AppResult<entity::import_job::Model> {
        let actor = match self.actor_of(feed).await? {
            Ok(actor) => actor,
            Err(reason) => return self.record(feed, JobStatus::Failed, Some(reason)).await,
        };
        let fetched = match self.fetch(feed).await {
            Ok(fetched) => fetched,
            Err(reason) => return self.record(feed, JobStatus::Failed, Some(reason)).await,
        };
        let Some(fetched) = fetched else {
            return self.record(feed, JobStatus::Skipped, None).await;
        };
        let digest = hex::encode(Sha256::digest(&fetched.bytes));
        if feed.last_digest.as_deref() == Some(digest.as_str()) {
            return self.record(feed, JobStatus::Skipped, None).await;
        }
        let request = ImportRequest {
            kind: ImportKind::from_stored(&feed.kind).unwrap_or(ImportKind::Users),
            file_name: fetched.file_name,
            content: Content::Bytes(fetched.bytes),
            mapping: None,
            template_id: Some(feed.template_id),
            project_id: feed.project_id,
            settings: None,
            sheet: None,
            header_row: None,
            dry_run: false,
            feed_id: Some(feed.id),
        };
        match imports::start(&self.db, &actor, request).await {
            Ok(job) => {
                Scope::of(feed.organization_id)
                    .update_many::<entity::import_feed::Entity>()
                    .col_expr(
                        entity::import_feed::Column::LastEtag,
                        Expr::value(fetched.etag),
                    )
                    .col_expr(entity::import_feed::Column::LastDigest, Expr::value(digest))
                    .filter(entity::import_feed::Column::Id.eq(feed.id))
                    .exec(&self.db)
                    .await?;
                self.import_wake.notify_one();
                Ok(job)
            }
            Err(AppError::Unavailable(what)) => Err(AppError::Unavailable(what)),
            Err(err) => {
                let reason = match &err {
                    AppError::BadInput(fields) => fields
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.to_string(),
                };
                self.record(
                    feed,
                    JobStatus::Failed,
                    Some(format!("The file could not be imported: {reason}")),
                )
                .await
            }
        }
    }

    /// The feed's creator as an actor, with the rights they hold now; the
    /// reason when they can no longer import.
    async fn actor_of(
        &self,
        feed: &entity::import_feed::Model,
    ) -> AppResult<Result<Actor, String>> {
        let user = match feed.created_by {
            Some(id) => {
                Scope::of(feed.organization_id)
                    .actors()
                    .filter(entity::user::Column::Id.eq(id))
                    .one(&self.db)
                    .await?
            }
            None => None,
        };
        let Some(user) = user.filter(|u| u.status == "ACTIVE") else {
            return Ok(Err(
                "The feed's creator is no longer active: save the feed again as someone who may import."
                    .to_owned(),
            ));
        };
        let permissions =
            permissions_of(&self.db, Scope::of(user.organization_id), user.id).await?;
        Ok(Ok(Actor {
            user_id: user.id,
            organization_id: feed.organization_id,
            credential: Credential::Feed(feed.id),
            permissions: Arc::new(permissions),
            user: Arc::new(user),
            origin: Origin::default(),
            auth_methods: Vec::new(),
            mfa_pending: false,
            mfa_verified_at: None,
            has_second_factor: false,
            must_enroll_mfa: false,
            break_glass: None,
            epoch: None,
        }))
    }

    /// The file, or `None` when the server says it has not changed (304);
    /// the reason of a failure.
    async fn fetch(&self, feed: &entity::import_feed::Model) -> Result<Option<Fetched>, String> {
        let url: reqwest::Url = feed
            .url
            .parse()
            .map_err(|_| "The feed's URL is not a URL.".to_owned())?;
        if let Some(reason) = self.outbound.refuse(&url) {
            return Err(format!("The feed's URL is refused: {reason}."));
        }
        let client = self
            .outbound
            .client(FETCH_TIMEOUT, MOST_REDIRECTS)
            .map_err(|e| format!("No HTTP client: {e}"))?;
        let mut request = client.get(url.clone());
        for (name, value) in self.headers_of(feed) {
            request = request.header(name, value);
        }
        if let Some(etag) = &feed.last_etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("Fetching {url} failed: {}", describe(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("Fetching {url} answered HTTP {status}."));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(format!("The file is larger than {} bytes.", self.max_bytes));
        }
        let file_name = response
            .url()
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "feed.csv".to_owned());
        let mut bytes = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("Reading {url} failed: {}", describe(&e)))?
        {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(format!("The file is larger than {} bytes.", self.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Fetched {
            bytes,
            etag,
            file_name,
        }))
    }

    /// A run that imports nothing, as a job of its own: SKIPPED or FAILED.
    async fn record(
        &self,
        feed: &entity::import_feed::Model,
        status: JobStatus,
        reason: Option<String>,
    ) -> AppResult<entity::import_job::Model> {
        let now = Utc::now();
        let job = entity::import_job::Model {
            id: Uuid::now_v7(),
            organization_id: feed.organization_id,
            kind: feed.kind.clone(),
            status: status.as_str().to_owned(),
            file_name: feed.name.clone(),
            mapping: json!([]),
            settings: json!({}),
            project_id: feed.project_id,
            dry_run: false,
            total_rows: 0,
            processed_rows: 0,
            created_count: 0,
            updated_count: 0,
            skipped_count: 0,
            failed_count: 0,
            error_message: reason.clone(),
            created_by: feed.created_by,
            created_at: now,
            started_at: Some(now),
            finished_at: Some(now),
            lease_owner: None,
            lease_expires_at: None,
            failed_attempts: 0,
            feed_id: Some(feed.id),
            retry_of_job_id: None,
            reverts_job_id: None,
        };
        let txn = crate::db::begin_write(&self.db).await?;
        entity::import_job::Entity::insert(entity::import_job::ActiveModel::from(job.clone()))
            .exec_without_returning(&txn)
            .await?;
        audit::record(
            &txn,
            AuditEntry {
                organization_id: Some(feed.organization_id),
                action: "import.finish",
                ..AuditEntry::default()
            }
            .target("ImportJob", job.id)
            .changes(json!({
                "status": job.status,
                "kind": job.kind,
                "feed": feed.id,
                "reason": reason,
            })),
        )
        .await?;
        txn.commit().await?;
        if let Some(reason) = &reason {
            tracing::warn!(feed_id = %feed.id, reason, "feed run failed");
        }
        Ok(job)
    }
}

struct Fetched {
    bytes: Vec<u8>,
    etag: Option<String>,
    file_name: String,
}

/// A fetch error with its causes: "error sending request" alone says little.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::import_feed::Model> {
    actor
        .scope::<entity::import_feed::Entity>()
        .filter(entity::import_feed::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("ImportFeed"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> AppResult<Vec<entity::import_feed::Model>> {
    actor.require(Permission::ImportsRun)?;
    Ok(actor
        .scope::<entity::import_feed::Entity>()
        .order_by_asc(entity::import_feed::Column::CreatedAt)
        .all(db)
        .await?)
}

pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    actor.require(Permission::ImportsRun)?;
    let txn = crate::db::begin_write(db).await?;
    let feed = find(&txn, actor, id).await?;
    actor
        .tenant()
        .delete_by_id::<entity::import_feed::Entity>(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "import_feed.delete")
            .target("ImportFeed", id)
            .changes(json!({ "name": feed.name })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The feed a job ran for, if it is of the actor's organisation.
pub async fn of_job(
    db: &impl ConnectionTrait,
    job: &entity::import_job::Model,
) -> AppResult<Option<entity::import_feed::Model>> {
    let Some(id) = job.feed_id else {
        return Ok(None);
    };
    Ok(Scope::of(job.organization_id)
        .find_by_id::<entity::import_feed::Entity>(id)
        .one(db)
        .await?)
}

/// Each instance's scheduler: runs due feeds, each scheduled run once.
pub struct Scheduler {
    pub feeds: Feeds,
}

impl Scheduler {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(err) = self.run_due().await {
                tracing::warn!(error = %err, "feed scheduling pass failed");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Claim and run what is due; how many runs this instance made.
    pub async fn run_due(&self) -> AppResult<usize> {
        use entity::import_feed::{Column, Entity};
        let now = Utc::now();
        let due = unscoped::find::<Entity>()
            .filter(Column::Active.eq(true))
            .filter(Column::NextRunAt.lte(now))
            .all(&self.feeds.db)
            .await?;
        let mut ran = 0;
        for feed in due {
            let Some(was) = feed.next_run_at else {
                continue;
            };
            let zone = global::find_by_id::<entity::organization::Entity>(feed.organization_id)
                .one(&self.feeds.db)
                .await?
                .map(|o| o.time_zone)
                .unwrap_or_default();
            let next = parse_schedule(&feed.schedule)
                .ok()
                .and_then(|s| next_run(&s, &zone, now));
            // The compare-and-set: one instance moves the run on, and runs it.
            let won = unscoped::update_many::<Entity>()
                .col_expr(Column::NextRunAt, Expr::value(next))
                .filter(Column::Id.eq(feed.id))
                .filter(Column::NextRunAt.eq(was))
                .exec(&self.feeds.db)
                .await?
                .rows_affected
                == 1;
            if won {
                ran += 1;
                if let Err(err) = self.feeds.run(&feed).await {
                    tracing::warn!(feed_id = %feed.id, error = %err, "feed run failed");
                }
            }
        }
        Ok(ran)
    }
}
