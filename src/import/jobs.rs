//! Running import jobs. Every instance runs a [`Runner`]; a job is claimed with a
//! lease so exactly one instance runs it, and every batch commits its records,
//! its rows' outcomes, the counters and the checkpoint in one transaction. A job
//! whose instance died is claimed again once its lease lapses and continues after
//! its last committed batch; a graceful shutdown hands it back at once.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::{StreamExt, stream::FuturesOrdered};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use super::{
    Importer, JobContext, ParsedBatch,
    fields::{ImportKind, fields},
    file::{self, CsvFile},
    mapping::{ColumnMapping, Mapping},
    row::{self, Earlier, FirstPass, RowStatus},
    settings::ImportSettings,
};
use crate::db::{Scope, global, unscoped};
use crate::{
    auth::session::SessionStore,
    error::{AppError, AppResult},
    telemetry::events,
};

/// Where a job stands, as the `import_jobs.status` column stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Finished,
    FinishedWithErrors,
    Failed,
    Cancelled,
    /// A feed's run whose file had not changed since its last: nothing to do.
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Finished => "FINISHED",
            Self::FinishedWithErrors => "FINISHED_WITH_ERRORS",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Skipped => "SKIPPED",
        }
    }

    /// The stored word's status; an unknown word reads as queued.
    pub fn from_stored(stored: &str) -> Self {
        match stored {
            "IN_PROGRESS" => Self::InProgress,
            "FINISHED" => Self::Finished,
            "FINISHED_WITH_ERRORS" => Self::FinishedWithErrors,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            "SKIPPED" => Self::Skipped,
            _ => Self::Queued,
        }
    }

    /// Whether the job has ended, one way or another.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }
}

/// Rows per transaction.
pub const BATCH_ROWS: usize = 1000;

/// The most batches of a job in flight at once on PostgreSQL (see
/// [`Flight`]). Three finished a file about a tenth sooner than two on a
/// two-core machine (BENCHMARKS.md).
const BATCHES_IN_FLIGHT: usize = 3;

/// How many batches a job may have in flight with a pool of `pool`
/// connections: each holds one while in flight, and a job takes at most half
/// of the pool, so that requests and other work keep the rest (with a pool of
/// five, three in flight starved them).
fn batches_in_flight(pool: u32) -> usize {
    usize::try_from(pool / 2)
        .unwrap_or(usize::MAX)
        .clamp(1, BATCHES_IN_FLIGHT)
}

/// About how much of a file's text one stored chunk holds; the job holds one
/// chunk at a time, however long the file. About a batch of rows: a chunk
/// costs one more statement per batch, a primary-key read.
pub const CHUNK_BYTES: usize = 64 << 10;

/// What one batch of a job does.
enum Work<'i, 'c> {
    /// Check and write rows of the job's file, parsed in file order.
    Rows(&'i Importer<'c>, ParsedBatch),
    /// Undo rows another job wrote.
    Revert(ImportKind, Vec<entity::import_row::Model>),
}

/// A batch's place in the order of commits (see [`Flight`]).
#[derive(Default)]
struct Turn {
    /// The batch's key, held from its start to its end.
    own: Option<i64>,
    /// Told once the batch holds its key.
    started: Option<oneshot::Sender<()>>,
    /// Told whether the batch committed.
    done: Option<oneshot::Sender<bool>>,
    /// The batch before it, whose commit it waits for.
    before: Option<Before>,
}

/// The batch before another, as that one waits for it.
struct Before {
    key: i64,
    started: oneshot::Receiver<()>,
    done: oneshot::Receiver<bool>,
}

/// A batch on its way: whether it committed.
type Landing<'r> = Pin<Box<dyn Future<Output = AppResult<bool>> + Send + 'r>>;

/// The batches of a job's run in flight: on PostgreSQL up to three at once
/// (fewer with a small pool, see [`batches_in_flight`]), each in a
/// transaction on a connection of its own, so that the server and the
/// database, and the database's cores, work at once instead of in turn.
///
/// Batches commit in file order, so the checkpoint stays a count of rows: a
/// batch checks and writes its rows, then waits for the batch before it to
/// end before it advances the job's counters and commits, and gives up if
/// that one did not commit. The wait is one the database sees: each batch
/// holds an advisory lock of its own from its start, and the next takes it
/// to wait. Were an earlier batch ever to wait on a lock a later one holds
/// (both inserting one NPI, say), PostgreSQL would see the cycle through the
/// advisory locks between them, end one of them as a deadlock, and the job
/// would retry it from its checkpoint; a wait inside the server instead would
/// hang them all for good.
///
/// What batches in flight check concurrently, they check correctly: an
/// earlier batch holds none of a later one's emails (a repeat of an earlier
/// row fails), and the guard that an administrator remains runs after each
/// batch's writes, under the organisation's lock. SQLite has one writer: one
/// batch at a time there.
struct Flight<'r, 'c> {
    runner: &'r Runner,
    job: &'r entity::import_job::Model,
    import: &'r Importer<'c>,
    most: usize,
    batches: FuturesOrdered<Landing<'r>>,
    /// The last batch sent, as the next one waits for it.
    last: Option<Before>,
}

impl<'r, 'c: 'r> Flight<'r, 'c> {
    fn new(
        runner: &'r Runner,
        job: &'r entity::import_job::Model,
        import: &'r Importer<'c>,
    ) -> Self {
        let most = match runner.db.get_database_backend() {
            DbBackend::Postgres => batches_in_flight(
                runner
                    .db
                    .get_postgres_connection_pool()
                    .options()
                    .get_max_connections(),
            ),
            _ => 1,
        };
        Self {
            runner,
            job,
            import,
            most,
            batches: FuturesOrdered::new(),
            last: None,
        }
    }

    /// Parse a batch of rows (in file order) and send it on its way, unless
    /// this instance is stopping; once as many batches as may be are in
    /// flight, wait for the oldest to land. How the run ends when it must end
    /// here.
    async fn send(
        &mut self,
        rows: Vec<file::Row>,
        earlier: &mut Earlier,
    ) -> AppResult<Option<RunEnd>> {
        if self.runner.stopping.is_cancelled() {
            if let Some(end) = self.land().await? {
                return Ok(Some(end));
            }
            self.runner.release(self.job.id).await?;
            tracing::info!(job_id = %self.job.id, "import job handed back: this instance is stopping");
            return Ok(Some(RunEnd::Stopping));
        }
        let key = rows.first().map(|row| turn_key(self.job.id, row.number));
        let parsed = self.import.parse(rows, earlier);
        let turn = match key {
            Some(key) if self.most > 1 => {
                let (started, started_rx) = oneshot::channel();
                let (done, done_rx) = oneshot::channel();
                let before = self.last.replace(Before {
                    key,
                    started: started_rx,
                    done: done_rx,
                });
                Turn {
                    own: Some(key),
                    started: Some(started),
                    done: Some(done),
                    before,
                }
            }
            _ => Turn::default(),
        };
        let runner = self.runner;
        self.batches.push_back(Box::pin(runner.commit_batch(
            self.job,
            Work::Rows(self.import, parsed),
            turn,
        )));
        while self.batches.len() >= self.most {
            if let Some(end) = self.land_one().await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    /// Wait for every batch in flight to land.
    async fn land(&mut self) -> AppResult<Option<RunEnd>> {
        while !self.batches.is_empty() {
            if let Some(end) = self.land_one().await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    async fn land_one(&mut self) -> AppResult<Option<RunEnd>> {
        match self.batches.next().await {
            Some(Ok(true)) | None => Ok(None),
            Some(Ok(false)) => {
                tracing::info!(job_id = %self.job.id, "import job no longer ours (cancelled or reclaimed)");
                Ok(Some(RunEnd::LostClaim))
            }
            Some(Err(err)) => Err(err),
        }
    }
}

/// How a run of a job ended on this instance.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    /// Cancelled, or claimed by another instance after this one's lease lapsed.
    LostClaim,
    /// This instance is stopping; the job was handed back.
    Stopping,
}

/// The import worker of one instance.
#[derive(Clone)]
pub struct Runner {
    db: DatabaseConnection,
    store: Arc<dyn SessionStore>,
    /// Who holds a claim: unique per process.
    instance: String,
    public_url: String,
    wake: Arc<Notify>,
    /// How long a claim lasts without a committed batch.
    lease: chrono::Duration,
    stopping: tokio_util::sync::CancellationToken,
}

impl Runner {
    pub fn new(
        db: DatabaseConnection,
        store: Arc<dyn SessionStore>,
        public_url: String,
        wake: Arc<Notify>,
        lease: Duration,
    ) -> Self {
        Self {
            db,
            store,
            instance: Uuid::new_v4().simple().to_string(),
            public_url,
            wake,
            lease: chrono::Duration::from_std(lease)
                .unwrap_or_else(|_| chrono::Duration::seconds(30)),
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Claim and run jobs until `stop` resolves; a job in progress is handed back.
    pub async fn run(self, stop: impl std::future::Future<Output = ()> + Send) {
        let stopping = self.stopping.clone();
        let work = async {
            loop {
                match self.claim().await {
                    Ok(Some(job)) => {
                        let id = job.id;
                        match self.run_job(job).await {
                            Ok(RunEnd::Stopping) => return,
                            Ok(_) => {}
                            Err(err) => {
                                // An outage passes: only other failures count
                                // towards giving up on the job.
                                let outage = matches!(err, AppError::Unavailable(_));
                                tracing::warn!(job_id = %id, error = %err, "import batch failed");
                                if outage || !self.gave_up(id).await.unwrap_or(false) {
                                    let _ = self.release(id).await;
                                }
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(err) => tracing::warn!(error = %err, "cannot look for import jobs"),
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stopping.cancelled() => return,
                }
            }
        };
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => {}
            () = stop => {
                stopping.cancel();
                // Let the batch in flight commit and hand its job back.
                let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
            }
        }
    }

    /// Claim one job that is queued, in progress with a lapsed lease, or still
    /// held by this instance: it runs one job at a time, so a job it holds while
    /// looking for work is one whose run broke off (the database went away
    /// mid-batch and the hand-back could not be written either).
    pub async fn claim(&self) -> AppResult<Option<entity::import_job::Model>> {
        use entity::import_job::{Column, Entity};
        let now = Utc::now();
        let claimable = || {
            Condition::any()
                .add(Column::Status.eq(JobStatus::Queued.as_str()))
                .add(
                    Condition::all()
                        .add(Column::Status.eq(JobStatus::InProgress.as_str()))
                        .add(
                            Condition::any()
                                .add(Column::LeaseExpiresAt.lt(now))
                                .add(Column::LeaseOwner.eq(self.instance.clone())),
                        ),
                )
        };
        let txn = crate::db::begin_write(&self.db).await?;
        let mut select = unscoped::find::<Entity>()
            .select_only()
            .column(Column::Id)
            .filter(claimable())
            .order_by_asc(Column::CreatedAt)
            .limit(1);
        if txn.get_database_backend() == DbBackend::Postgres {
            // Instances skip each other's candidates instead of queueing on them.
            select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let Some(id) = select.into_tuple::<Uuid>().one(&txn).await? else {
            return Ok(None);
        };
        let won = unscoped::update_many::<Entity>()
            .col_expr(Column::Status, Expr::value(JobStatus::InProgress.as_str()))
            .col_expr(Column::LeaseOwner, Expr::value(self.instance.clone()))
            .col_expr(Column::LeaseExpiresAt, Expr::value(now + self.lease))
            .col_expr(
                Column::StartedAt,
                Expr::col(Column::StartedAt).if_null(Expr::value(now)),
            )
            .filter(Column::Id.eq(id))
            .filter(claimable())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        txn.commit().await?;
        if !won {
            return Ok(None);
        }
        tracing::info!(job_id = %id, "import job claimed");
        Ok(unscoped::find_by_id::<Entity>(id).one(&self.db).await?)
    }

    /// Hand a job back so that any instance may claim it at once.
    async fn release(&self, id: Uuid) -> AppResult<()> {
        use entity::import_job::{Column, Entity};
        unscoped::update_many::<Entity>()
            .col_expr(Column::LeaseExpiresAt, Expr::value(Utc::now()))
            .filter(Column::Id.eq(id))
            .filter(Column::LeaseOwner.eq(self.instance.clone()))
            .filter(Column::Status.eq(JobStatus::InProgress.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Run a claimed job from its checkpoint to its end.
    pub async fn run_job(&self, job: entity::import_job::Model) -> AppResult<RunEnd> {
        if let Some(reverted) = job.reverts_job_id {
            return self.run_revert(job, reverted).await;
        }
        let prepared = match prepare(&self.db, &job).await {
            Ok(prepared) => prepared,
            Err(AppError::BadInput(fields)) => return self.fail(&job, &describe(&fields)).await,
            Err(other) => return Err(other),
        };
        let stored = Scope::of(job.organization_id)
            .find_by_id::<entity::import_file::Entity>(job.id)
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("import job without its file"))?;
        // A file is stored as its header with the rows in chunks; one stored
        // before chunks is whole, as uploaded, and read as at its upload.
        let (content, upload);
        let file = if stored.chunked {
            CsvFile::open(
                file::decode(&stored.data)?,
                prepared.settings.delimiter_byte(),
            )?
        } else {
            content = file::Content::Bytes(stored.data);
            upload = file::read(
                &content,
                prepared.settings.sheet.as_deref(),
                prepared.settings.header_row,
            )?;
            CsvFile::open_source(upload.source(), prepared.settings.delimiter_byte())?
                .numbered_from(upload.header_row)
        };
        let kind = ImportKind::from_stored(&job.kind)
            .ok_or_else(|| anyhow::anyhow!("unknown import kind {}", job.kind))?;
        let mapping = Mapping::check(prepared.mapping.clone(), &file.headers, &fields(kind))?;
        let import = match Importer::new(
            &self.db,
            JobContext {
                kind,
                organization: &prepared.organization,
                project: prepared.project.as_ref(),
                mapping: &mapping,
                headers: &file.headers,
                settings: &prepared.settings,
                started_by: job.created_by,
                public_url: &self.public_url,
            },
        )
        .await
        {
            Ok(import) => import,
            Err(AppError::BadInput(fields)) => return self.fail(&job, &describe(&fields)).await,
            Err(other) => return Err(other),
        };
        let skip = usize::try_from(job.processed_rows).unwrap_or(0);
        let total = usize::try_from(job.total_rows).unwrap_or(0);
        let chunks = if stored.chunked {
            chunks_of(&self.db, &job).await?
        } else {
            Vec::new()
        };
        // The first pass: which rows may repeat others.
        let mut pass = FirstPass::new(total);
        if stored.chunked {
            for (seq, after, _) in &chunks {
                let text = chunk_text(&self.db, &job, *seq).await?;
                pass.add(file.rows_of(&text, *after).map(|r| import.repeat_key(&r)));
            }
        } else {
            pass.add(file.rows().map(|r| import.repeat_key(&r)));
        }
        let mut earlier = pass.finish();
        if skip > 0 {
            earlier.remember_job(&self.db, &job).await?;
        }
        let mut flight = Flight::new(self, &job, &import);
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        if stored.chunked {
            let mut skip = skip;
            for (seq, after, count) in chunks {
                if skip >= count {
                    skip -= count;
                    continue;
                }
                let text = chunk_text(&self.db, &job, seq).await?;
                let mut rows = file.rows_of(&text, after).skip(skip);
                skip = 0;
                loop {
                    batch.extend(rows.by_ref().take(BATCH_ROWS - batch.len()));
                    if batch.len() < BATCH_ROWS {
                        break;
                    }
                    let rows = std::mem::take(&mut batch);
                    if let Some(end) = flight.send(rows, &mut earlier).await? {
                        return Ok(end);
                    }
                }
            }
        } else {
            let mut rows = file.rows().skip(skip);
            loop {
                batch.extend(rows.by_ref().take(BATCH_ROWS));
                if batch.len() < BATCH_ROWS {
                    break;
                }
                let rows = std::mem::take(&mut batch);
                if let Some(end) = flight.send(rows, &mut earlier).await? {
                    return Ok(end);
                }
            }
        }
        if !batch.is_empty()
            && let Some(end) = flight.send(batch, &mut earlier).await?
        {
            return Ok(end);
        }
        if let Some(end) = flight.land().await? {
            return Ok(end);
        }
        drop(flight);
        self.finish(&job).await
    }

    /// Run a job reverting another, from its checkpoint to its end: the
    /// reverted job's written rows, in row order, a batch at a time.
    async fn run_revert(
        &self,
        job: entity::import_job::Model,
        reverted: Uuid,
    ) -> AppResult<RunEnd> {
        use entity::import_row::{Column, Entity};
        let kind = ImportKind::from_stored(&job.kind)
            .ok_or_else(|| anyhow::anyhow!("unknown import kind {}", job.kind))?;
        let mut done = u64::try_from(job.processed_rows).unwrap_or(0);
        loop {
            if self.stopping.is_cancelled() {
                self.release(job.id).await?;
                tracing::info!(job_id = %job.id, "import revert handed back: this instance is stopping");
                return Ok(RunEnd::Stopping);
            }
            let batch = Scope::of(job.organization_id)
                .find::<Entity>()
                .filter(Column::JobId.eq(reverted))
                .filter(Column::Undo.is_not_null())
                .order_by_asc(Column::RowNumber)
                .offset(done)
                .limit(BATCH_ROWS as u64)
                .all(&self.db)
                .await?;
            if batch.is_empty() {
                break;
            }
            done += batch.len() as u64;
            if !self
                .commit_batch(&job, Work::Revert(kind, batch), Turn::default())
                .await?
            {
                tracing::info!(job_id = %job.id, "import revert no longer ours (cancelled or reclaimed)");
                return Ok(RunEnd::LostClaim);
            }
        }
        self.finish(&job).await
    }

    /// Write one batch and advance the checkpoint, all or nothing, in its
    /// `turn`; false when the job is no longer this instance's to run.
    async fn commit_batch(
        &self,
        job: &entity::import_job::Model,
        work: Work<'_, '_>,
        turn: Turn,
    ) -> AppResult<bool> {
        let Turn {
            own,
            started,
            done,
            before,
        } = turn;
        let committed = self.write_batch(job, work, own, started, before).await;
        if let Some(done) = done {
            let _ = done.send(matches!(committed, Ok(true)));
        }
        committed
    }

    /// Check and write a batch, holding the key `own`; wait for the batch
    /// `before` it to commit; then advance the checkpoint. All in one
    /// transaction.
    async fn write_batch(
        &self,
        job: &entity::import_job::Model,
        work: Work<'_, '_>,
        own: Option<i64>,
        started: Option<oneshot::Sender<()>>,
        before: Option<Before>,
    ) -> AppResult<bool> {
        use entity::import_job::{Column, Entity};
        let txn = crate::db::begin_batch(&self.db, true).await?;
        if let Some(key) = own {
            hold_turn(&txn, key).await?;
        }
        if let Some(started) = started {
            let _ = started.send(());
        }
        // The starter's rights as they are now: a demotion or deactivation
        // during the import applies to its next batch.
        let authority = crate::services::roles::authority_of(
            &txn,
            Scope::of(job.organization_id),
            job.created_by,
        )
        .await?;
        let (results, access_changed) = match work {
            Work::Rows(import, parsed) => {
                let write = !job.dry_run;
                let (results, writes) = import.check(&txn, parsed, write, &authority).await?;
                if write {
                    import.write(&txn, writes).await?;
                }
                // Existing users' records or roles changed: no instance may
                // keep them, or their old permissions, past this commit.
                let changed = write
                    && import.changes_users()
                    && results.iter().any(|r| r.status == RowStatus::Updated);
                (results, changed)
            }
            Work::Revert(kind, rows) => {
                super::undo::revert_batch(
                    &txn,
                    self.store.as_ref(),
                    job.organization_id,
                    kind,
                    rows,
                    &authority,
                )
                .await?
            }
        };
        let [created, updated, skipped, failed] = [
            RowStatus::Created,
            RowStatus::Updated,
            RowStatus::Skipped,
            RowStatus::Failed,
        ]
        .map(|status| {
            i32::try_from(results.iter().filter(|r| r.status == status).count()).unwrap_or(0)
        });
        let models = results.iter().map(|r| row::to_model(job.id, r));
        crate::db::bulk::insert_all(&txn, models).await?;
        if let Some(before) = before
            && !wait_turn(&txn, before).await?
        {
            txn.rollback().await?;
            return Ok(false);
        }
        let ours = Scope::of(job.organization_id)
            .update_many::<Entity>()
            .col_expr(
                Column::ProcessedRows,
                Expr::col(Column::ProcessedRows).add(i32::try_from(results.len()).unwrap_or(0)),
            )
            .col_expr(
                Column::CreatedCount,
                Expr::col(Column::CreatedCount).add(created),
            )
            .col_expr(
                Column::UpdatedCount,
                Expr::col(Column::UpdatedCount).add(updated),
            )
            .col_expr(
                Column::SkippedCount,
                Expr::col(Column::SkippedCount).add(skipped),
            )
            .col_expr(
                Column::FailedCount,
                Expr::col(Column::FailedCount).add(failed),
            )
            .col_expr(Column::LeaseExpiresAt, Expr::value(Utc::now() + self.lease))
            .col_expr(Column::FailedAttempts, Expr::value(0))
            .filter(Column::Id.eq(job.id))
            .filter(Column::LeaseOwner.eq(self.instance.clone()))
            .filter(Column::Status.eq(JobStatus::InProgress.as_str()))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !ours {
            txn.rollback().await?;
            return Ok(false);
        }
        if access_changed {
            crate::services::commit_authz_change(txn, self.store.as_ref(), job.organization_id)
                .await?;
        } else {
            txn.commit().await?;
        }
        for (rows, outcome) in [
            (created, "created"),
            (updated, "updated"),
            (skipped, "skipped"),
            (failed, "failed"),
        ] {
            events::import_rows(&job.kind, outcome, u64::try_from(rows).unwrap_or(0));
        }
        Ok(true)
    }

    async fn finish(&self, job: &entity::import_job::Model) -> AppResult<RunEnd> {
        use entity::import_job::{Column, Entity};
        let status = Expr::case(
            Column::FailedCount.gt(0),
            JobStatus::FinishedWithErrors.as_str(),
        )
        .finally(JobStatus::Finished.as_str());
        // The ended job comes back with the statement, status included; its
        // end is audited (and so told to webhooks) in the same transaction.
        let txn = crate::db::begin_write(&self.db).await?;
        let ended = Scope::of(job.organization_id)
            .update_many::<Entity>()
            .col_expr(Column::Status, status.into())
            .col_expr(Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                Column::LeaseExpiresAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(Column::Id.eq(job.id))
            .filter(Column::LeaseOwner.eq(self.instance.clone()))
            .filter(Column::Status.eq(JobStatus::InProgress.as_str()))
            .exec_with_returning(&txn)
            .await?;
        if let Some(ended) = ended.first() {
            record_end(&txn, ended).await?;
            txn.commit().await?;
            tracing::info!(job_id = %job.id, "import job finished");
            events::import_job_ended(&job.kind, JobStatus::from_stored(&ended.status).as_str());
            self.refresh_statistics(ended).await;
            Ok(RunEnd::Finished)
        } else {
            Ok(RunEnd::LostClaim)
        }
    }

    /// Bring the planner's statistics of what `ended` wrote up to date, so
    /// that the pages read next, the organisation's first after a large
    /// import, are planned for the tables as they now are. The job has
    /// ended whatever this finds: a failure is logged, not the job's.
    async fn refresh_statistics(&self, ended: &entity::import_job::Model) {
        let Some(kind) = ImportKind::from_stored(&ended.kind) else {
            return;
        };
        let written = u64::try_from(ended.processed_rows).unwrap_or(0);
        match crate::db::refresh_statistics(&self.db, &kind.written_tables(), written).await {
            Ok(tables) if !tables.is_empty() => {
                tracing::info!(job_id = %ended.id, tables = %tables.join(", "), "statistics refreshed after the import");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(job_id = %ended.id, %error, "statistics not refreshed after the import");
            }
        }
    }

    /// Count one more failed attempt at the job's next batch; after
    /// [`MOST_BATCH_ATTEMPTS`] in a row the job fails, keeping what its earlier
    /// batches committed. Whether it did.
    async fn gave_up(&self, id: Uuid) -> AppResult<bool> {
        use entity::import_job::{Column, Entity};
        unscoped::update_many::<Entity>()
            .col_expr(
                Column::FailedAttempts,
                Expr::col(Column::FailedAttempts).add(1),
            )
            .filter(Column::Id.eq(id))
            .filter(Column::LeaseOwner.eq(self.instance.clone()))
            .filter(Column::Status.eq(JobStatus::InProgress.as_str()))
            .exec(&self.db)
            .await?;
        let Some(job) = unscoped::find_by_id::<Entity>(id).one(&self.db).await? else {
            return Ok(false);
        };
        if job.status != JobStatus::InProgress.as_str() || job.failed_attempts < MOST_BATCH_ATTEMPTS
        {
            tracing::info!(job_id = %id, attempts = job.failed_attempts, "import batch will be retried");
            return Ok(false);
        }
        let message = format!(
            "The next rows could not be saved after {MOST_BATCH_ATTEMPTS} attempts, so the import stopped; \
             the {} rows before them have their outcomes. The server's log has the cause.",
            job.processed_rows
        );
        self.fail(&job, &message).await?;
        Ok(true)
    }

    async fn fail(&self, job: &entity::import_job::Model, message: &str) -> AppResult<RunEnd> {
        use entity::import_job::{Column, Entity};
        let txn = crate::db::begin_write(&self.db).await?;
        let ended = Scope::of(job.organization_id)
            .update_many::<Entity>()
            .col_expr(Column::Status, Expr::value(JobStatus::Failed.as_str()))
            .col_expr(Column::ErrorMessage, Expr::value(message.to_owned()))
            .col_expr(Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
            .filter(Column::Id.eq(job.id))
            .filter(Column::LeaseOwner.eq(self.instance.clone()))
            .exec_with_returning(&txn)
            .await?;
        if let Some(ended) = ended.first() {
            record_end(&txn, ended).await?;
        }
        txn.commit().await?;
        tracing::warn!(job_id = %job.id, "import job failed");
        events::import_job_ended(&job.kind, JobStatus::Failed.as_str());
        Ok(RunEnd::Finished)
    }
}

/// The key of a job's batch starting at row `first`, as an advisory lock
/// holds it. Another job's batch with the same key only waits a little.
fn turn_key(job: Uuid, first: usize) -> i64 {
    let (high, low) = job.as_u64_pair();
    i64::from_ne_bytes((high ^ low ^ (first as u64).rotate_left(32)).to_ne_bytes())
}

/// Hold `key` until the transaction ends.
async fn hold_turn(txn: &impl ConnectionTrait, key: i64) -> AppResult<()> {
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Wait for the batch `before` to end, in the database (see [`Flight`]);
/// whether it committed.
async fn wait_turn(txn: &impl ConnectionTrait, before: Before) -> AppResult<bool> {
    if before.started.await.is_err() {
        return Ok(false);
    }
    hold_turn(txn, before.key).await?;
    Ok(before.done.await.unwrap_or(false))
}

/// Audit a job's end (`import.finish`, the `import.finished` event of
/// webhooks), with its status and counts.
async fn record_end(
    db: &(impl sea_orm::ConnectionTrait + sea_orm::TransactionTrait),
    job: &entity::import_job::Model,
) -> AppResult<()> {
    crate::services::audit::record(
        db,
        crate::services::audit::AuditEntry {
            organization_id: Some(job.organization_id),
            action: "import.finish",
            ..Default::default()
        }
        .target("ImportJob", job.id)
        .changes(serde_json::json!({
            "status": job.status,
            "kind": job.kind,
            "processedRows": job.processed_rows,
            "failedRows": job.failed_count,
        })),
    )
    .await
}

/// Failed attempts in a row at a job's next batch (outages apart) before the
/// job fails: a batch the database refuses each time cannot hold the job, and
/// every instance's worker, forever.
const MOST_BATCH_ATTEMPTS: i32 = 5;

/// Why a job cannot run, for its `errorMessage`.
fn describe(fields: &[crate::error::FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a job needs besides its file.
pub(crate) struct Prepared {
    pub organization: entity::organization::Model,
    pub project: Option<entity::project::Model>,
    pub mapping: Vec<ColumnMapping>,
    pub settings: ImportSettings,
}

pub(crate) async fn prepare(
    db: &impl ConnectionTrait,
    job: &entity::import_job::Model,
) -> AppResult<Prepared> {
    let organization = global::find_by_id::<entity::organization::Entity>(job.organization_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("import job without organisation"))?;
    let mapping: Vec<ColumnMapping> = serde_json::from_value(job.mapping.clone())
        .map_err(|e| anyhow::anyhow!("stored mapping unreadable: {e}"))?;
    let settings: ImportSettings = serde_json::from_value(job.settings.clone())
        .map_err(|e| anyhow::anyhow!("stored settings unreadable: {e}"))?;
    // The project of a PATIENTS job, while it takes patients.
    let project = match job.project_id {
        Some(id) => {
            let project = Scope::of(job.organization_id)
                .find_by_id::<entity::project::Entity>(id)
                .one(db)
                .await?;
            match project {
                Some(p) if p.archived_at.is_none() => Some(p),
                _ => {
                    return Err(AppError::bad_input(
                        "projectId",
                        "the project no longer exists or is archived",
                    ));
                }
            }
        }
        None => None,
    };
    Ok(Prepared {
        organization,
        project,
        mapping,
        settings,
    })
}

/// A job's stored chunks in order: `(seq, after_row, row_count)`.
async fn chunks_of(
    db: &impl ConnectionTrait,
    job: &entity::import_job::Model,
) -> AppResult<Vec<(i32, usize, usize)>> {
    use entity::import_file_chunk::{Column, Entity};
    let chunks: Vec<(i32, i32, i32)> = Scope::of(job.organization_id)
        .find::<Entity>()
        .select_only()
        .column(Column::Seq)
        .column(Column::AfterRow)
        .column(Column::RowCount)
        .filter(Column::JobId.eq(job.id))
        .order_by_asc(Column::Seq)
        .into_tuple()
        .all(db)
        .await?;
    Ok(chunks
        .into_iter()
        .map(|(seq, after, count)| {
            (
                seq,
                usize::try_from(after).unwrap_or(0),
                usize::try_from(count).unwrap_or(0),
            )
        })
        .collect())
}

/// The text of one stored chunk.
async fn chunk_text(
    db: &impl ConnectionTrait,
    job: &entity::import_job::Model,
    seq: i32,
) -> AppResult<String> {
    use entity::import_file_chunk::{Column, Entity};
    let data: Vec<u8> = Scope::of(job.organization_id)
        .find::<Entity>()
        .select_only()
        .column(Column::Data)
        .filter(Column::JobId.eq(job.id))
        .filter(Column::Seq.eq(seq))
        .into_tuple()
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("import job {} without chunk {seq}", job.id))?;
    Ok(String::from_utf8(data).map_err(|e| anyhow::anyhow!("stored chunk is not UTF-8: {e}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_takes_at_most_half_the_pool_for_its_batches() {
        let widths: Vec<usize> = [1, 2, 3, 4, 5, 6, 7, 10, 100]
            .into_iter()
            .map(batches_in_flight)
            .collect();
        assert_eq!(widths, [1, 1, 1, 2, 2, 3, 3, 3, 3]);
    }
}
