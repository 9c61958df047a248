//! Faults under load: PostgreSQL and Redis stopped and restarted while clients
//! keep sending authenticated requests, and PostgreSQL crashed in the middle of
//! an import. Each runs its own PostgreSQL cluster or Redis (tests/common/
//! services.rs), so stopping it disturbs no other test.
//!
//! Every request during an outage must answer at once or with
//! SERVICE_UNAVAILABLE (HTTP 503) within the configured timeouts, never a 500,
//! a hang or data without a session; once the dependency is back everything
//! works again without a restart, and an interrupted import finishes with exact
//! counts. Recovery times are printed (`cargo test --test faults -- --nocapture`)
//! and recorded in BENCHMARKS.md.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    Backend, PASSWORD, Storage, TestApp,
    services::{PrivatePostgres, PrivateRedis, free_port, skip_without},
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

/// Clients sending requests at once.
const CLIENTS: usize = 8;
/// The database and Redis timeouts the servers under test are given.
const DB_TIMEOUT: Duration = Duration::from_secs(2);
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest any request may take, outage or not: the timeouts above, a
/// connection attempt and scheduling on a loaded two-core machine.
const LONGEST: Duration = Duration::from_secs(6);

const QUERY: &str = "{ me { email } users(first: 5) { totalCount edges { node { email } } } }";

/// One answered request.
struct Answer {
    at: Instant,
    took: Duration,
    status: u16,
    code: String,
    client: usize,
}

/// Clients sending [`QUERY`] with their own sessions until stopped.
struct Load {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(address: &str, tokens: Vec<String>) -> Self {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let tasks = tokens
            .into_iter()
            .enumerate()
            .map(|(number, token)| {
                let (answers, stop, client) = (answers.clone(), stop.clone(), client.clone());
                let url = format!("{address}/graphql");
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({ "query": QUERY }))
                            .send()
                            .await;
                        let (status, body) = match response {
                            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
                            Err(err) => (0, json!({ "client error": err.to_string() })),
                        };
                        let code = if body["errors"].is_null() && body["data"]["me"].is_object() {
                            "OK".to_owned()
                        } else {
                            let code = common::error_code(&body);
                            if code.is_empty() {
                                body.to_string()
                            } else {
                                code.to_owned()
                            }
                        };
                        answers.lock().unwrap().push(Answer {
                            at: Instant::now(),
                            took: sent.elapsed(),
                            status,
                            code,
                            client: number,
                        });
                        // A client that was refused waits a little, as real ones do.
                        if status != 200 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        Self {
            answers,
            stop,
            tasks,
        }
    }

    /// When every client has had an answered request after `since`.
    fn all_served_after(&self, since: Instant) -> Option<Instant> {
        let answers = self.answers.lock().unwrap();
        (0..CLIENTS)
            .map(|client| {
                answers
                    .iter()
                    .filter(|a| a.client == client && a.at > since && a.code == "OK")
                    .map(|a| a.at)
                    .min()
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|times| times.into_iter().max())
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.answers)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// What a fault run saw.
struct Report {
    fault: &'static str,
    outage: Duration,
    answers: Vec<Answer>,
    recovered_after: Duration,
}

impl Report {
    /// Check the rules every fault must keep, and print the figures.
    fn check(&self, down: Instant, up: Instant) {
        let during: Vec<&Answer> = self
            .answers
            .iter()
            .filter(|a| a.at > down + Duration::from_millis(200) && a.at < up)
            .collect();
        let refused = during.iter().filter(|a| a.status == 503).count();
        let slowest = self.answers.iter().map(|a| a.took).max().unwrap();
        for answer in &self.answers {
            assert!(
                matches!(
                    (answer.status, answer.code.as_str()),
                    (200, "OK") | (503, "SERVICE_UNAVAILABLE")
                ),
                "{}: every answer is a success or SERVICE_UNAVAILABLE, not {} {}",
                self.fault,
                answer.status,
                answer.code
            );
            assert!(
                answer.took < LONGEST,
                "{}: a request took {:?}",
                self.fault,
                answer.took
            );
        }
        assert!(
            refused > 0,
            "{}: no request saw the outage ({} during it)",
            self.fault,
            during.len()
        );
        eprintln!(
            "\n{}: {} requests, {} refused with 503 during a {:.1} s outage, slowest answer {} ms; \
             every client served again {} ms after it was back\n",
            self.fault,
            self.answers.len(),
            refused,
            self.outage.as_secs_f64(),
            slowest.as_millis(),
            self.recovered_after.as_millis()
        );
    }
}

/// The shared PostgreSQL and Redis must answer for these tests to run.
async fn production_available() -> bool {
    common::backends().await.contains(&Backend::Production)
}

async fn staff(app: &TestApp) -> (uuid::Uuid, Vec<String>) {
    let org = app.organization("Fault Clinic").await;
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        let email = format!("nurse{i}@fault.test");
        app.user(org, &email, &["Admin"]).await;
        tokens.push(app.login(&email, PASSWORD).await);
    }
    (org, tokens)
}

/// Wait until every client is served again after `up`; the time it took.
async fn recovery(load: &Load, up: Instant, fault: &str) -> Duration {
    let deadline = up + Duration::from_secs(30);
    loop {
        if let Some(at) = load.all_served_after(up) {
            return at - up;
        }
        assert!(Instant::now() < deadline, "{fault}: no recovery in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drive load, break a dependency with `fail`, bring it back with `heal`
/// (which returns once it is back, with whatever must stay alive), and check
/// the rules every fault must keep; what `heal` returned, and the slowest
/// answer.
async fn survive<T>(
    app: &TestApp,
    tokens: Vec<String>,
    fault: &'static str,
    fail: impl std::future::Future<Output = ()>,
    heal: impl std::future::Future<Output = T>,
) -> (T, Duration) {
    let load = Load::start(&app.address, tokens);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = Instant::now();
    fail.await;
    let healed = heal.await;
    let up = Instant::now();
    let recovered_after = recovery(&load, up, fault).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answers = load.finish().await;
    assert!(
        answers
            .iter()
            .filter(|a| a.at > steady)
            .all(|a| a.code == "OK"),
        "{fault}: after recovery every request succeeds, with the sessions from before"
    );
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    Report {
        fault,
        outage: up - down,
        answers,
        recovered_after,
    }
    .check(down, up);
    (healed, slowest)
}

/// A PostgreSQL cluster of the test's own, driven from async code.
#[derive(Clone)]
struct Cluster(Arc<Mutex<PrivatePostgres>>);

impl Cluster {
    async fn crash(&self) {
        let cluster = self.0.clone();
        tokio::task::spawn_blocking(move || cluster.lock().unwrap().crash())
            .await
            .unwrap();
    }

    async fn restart(&self) {
        let cluster = self.0.clone();
        let restarted = tokio::task::spawn_blocking(move || cluster.lock().unwrap().restart());
        assert!(restarted.await.unwrap(), "PostgreSQL did not start again");
    }
}

/// A server on a PostgreSQL cluster of its own and the shared Redis; `None`
/// (after saying so) when they cannot be had here.
async fn on_private_postgres() -> Option<(Cluster, TestApp)> {
    if !production_available().await {
        return None;
    }
    let Some(postgres) = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap()
    else {
        skip_without("a private PostgreSQL cluster (initdb, pg_ctl)");
        return None;
    };
    let storage = Storage::private(postgres.admin_url(), common::redis_url());
    let app = TestApp::spawn_with(storage, |c| c.db_timeout_seconds = DB_TIMEOUT.as_secs()).await;
    Some((Cluster(Arc::new(Mutex::new(postgres))), app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crashed_and_restarted_under_load() {
    let Some((postgres, app)) = on_private_postgres().await else {
        return;
    };
    let (_, tokens) = staff(&app).await;

    let fail = postgres.crash();
    let heal = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status().as_u16(), 503, "readyz: the database is down");
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["database"].as_str(), Some("down"), "{ready}");
        postgres.restart().await;
    };
    let fault = "PostgreSQL crashed (pg_ctl stop -m immediate) and restarted";
    survive(&app, tokens, fault, fail, heal).await;
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
}

/// A server on the shared PostgreSQL and a Redis of the test's own, with
/// [`REDIS_TIMEOUT`], and its staff's sessions.
async fn on_private_redis(redis: &PrivateRedis) -> (TestApp, Vec<String>) {
    let storage = Storage::new(Backend::Production).await;
    let app = TestApp::spawn_with(storage, |c| {
        c.redis_url = Some(redis.url());
        c.redis_timeout_ms = u64::try_from(REDIS_TIMEOUT.as_millis()).unwrap();
    })
    .await;
    let (_, tokens) = staff(&app).await;
    (app, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_under_load() {
    if !production_available().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(mut redis) = PrivateRedis::start_durable(port, dir.path()) else {
        skip_without("redis-server");
        return;
    };
    let (app, tokens) = on_private_redis(&redis).await;

    let fail = async { redis.stop() };
    let heal = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        assert_eq!(ready["sessionStore"]["status"].as_str(), Some("down"));
        // The same data directory: the sessions written before the crash are kept.
        PrivateRedis::start_durable(port, dir.path()).unwrap()
    };
    let (_redis, _) = survive(
        &app,
        tokens,
        "Redis killed (SIGKILL) and restarted",
        fail,
        heal,
    )
    .await;
}

/// A Redis that stops answering without closing its connections (every client
/// paused for 3 s, as a stalled host would be): each request still answers
/// within the Redis timeout, with SERVICE_UNAVAILABLE, however many arrived
/// while an earlier session check hung, and all are served again once it
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_that_stops_answering_under_load() {
    if !production_available().await {
        return;
    }
    let port = free_port();
    let Some(redis) = PrivateRedis::start(port) else {
        skip_without("redis-server");
        return;
    };
    let (app, tokens) = on_private_redis(&redis).await;

    let pause = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .clone();
    let fail = async {
        let paused: Option<String> = redis_query(port, &pause).await;
        assert_eq!(paused.as_deref(), Some("OK"));
    };
    let heal = async { tokio::time::sleep(Duration::from_millis(3100)).await };
    let fault = "Redis stopped answering (CLIENT PAUSE) for 3 s";
    let slowest = survive(&app, tokens, fault, fail, heal).await.1;
    // The timeout, and the scheduling of a loaded two-core machine; a request
    // waiting out an earlier check's timeout before its own would take twice it.
    assert!(
        slowest < REDIS_TIMEOUT + Duration::from_millis(300),
        "{fault}: the slowest answer took {slowest:?}"
    );
}

/// Rows of the staff file the import fault tests import.
const IMPORT_ROWS: usize = 20_000;

/// A staff import of [`IMPORT_ROWS`] new people, started by an admin of a new
/// organisation and caught between its first committed batch and its end.
struct MidImport {
    org: uuid::Uuid,
    token: String,
    id: uuid::Uuid,
}

impl MidImport {
    async fn start(app: &TestApp, domain: &str) -> Self {
        let org = app.organization("Import Clinic").await;
        let admin = format!("admin@{domain}");
        app.user(org, &admin, &["Admin"]).await;
        let token = app.login(&admin, PASSWORD).await;
        let id = app
            .start_staff_import(&token, common::staff_file(IMPORT_ROWS, domain))
            .await
            .parse()
            .unwrap();
        let import = Self { org, token, id };
        let started = Instant::now();
        loop {
            let current = import.job(app).await.unwrap();
            if current.processed_rows > 0 {
                assert!(
                    current.processed_rows < IMPORT_ROWS as i32,
                    "finished too soon"
                );
                return import;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no batch committed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The job as stored; `None` while the database does not answer.
    async fn job(&self, app: &TestApp) -> Option<entity::import_job::Model> {
        entity::import_job::Entity::find_by_id(self.id)
            .one(&app.db)
            .await
            .ok()
            .flatten()
    }

    /// `done` finished with every row created, each row's outcome and each
    /// person stored once.
    async fn finished_exactly(&self, app: &TestApp, done: &entity::import_job::Model) {
        let rows = IMPORT_ROWS as i32;
        assert_eq!(
            (
                done.status.as_str(),
                done.processed_rows,
                done.created_count,
                done.updated_count,
                done.skipped_count,
                done.failed_count
            ),
            ("FINISHED", rows, rows, 0, 0, 0),
            "{:?}",
            done.error_message
        );
        let outcomes = entity::import_row::Entity::find()
            .filter(entity::import_row::Column::JobId.eq(self.id))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(outcomes, IMPORT_ROWS as u64, "every row's outcome once");
        let users = entity::user::Entity::find()
            .filter(entity::user::Column::OrganizationId.eq(self.org))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(
            users,
            IMPORT_ROWS as u64 + 1,
            "every user once, and the admin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_survives_postgres_crashing_mid_job() {
    let Some((postgres, app)) = on_private_postgres().await else {
        return;
    };
    // Crash the database once the job has committed a batch but not finished.
    let import = MidImport::start(&app, "fault.test").await;
    let (id, token) = (import.id, &import.token);
    postgres.crash().await;
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = app
        .graphql(
            Some(token),
            "query($id: ID!) { importJob(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        (status, common::error_code(&body)),
        (503, "SERVICE_UNAVAILABLE"),
        "{body}"
    );
    postgres.restart().await;
    let up = Instant::now();

    // The same instance resumes the job from its last committed batch.
    let mut committed_at_restart = None;
    let mut resumed_after = None;
    let done = loop {
        if let Some(current) = import.job(&app).await {
            let before = *committed_at_restart.get_or_insert(current.processed_rows);
            if resumed_after.is_none() && current.processed_rows > before {
                resumed_after = Some(up.elapsed());
            }
            if !matches!(current.status.as_str(), "QUEUED" | "IN_PROGRESS") {
                break current;
            }
        }
        assert!(
            up.elapsed() < Duration::from_secs(120),
            "the import never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let finished_after = up.elapsed();
    import.finished_exactly(&app, &done).await;
    eprintln!(
        "\nPostgreSQL crashed mid-import for {:.1} s: the job committed its next batch {} ms \
         after the restart and finished after {} ms, {IMPORT_ROWS} rows exact\n",
        (up - down).as_secs_f64(),
        resumed_after.map_or(0, |t| t.as_millis()),
        finished_after.as_millis()
    );
}

/// An outage lasting many attempts at the next batch does not count towards the
/// attempts after which a job gives up (those are for batches the database
/// refuses): the users table is locked for 20 s mid-import, so every attempt
/// (about one each 3 s: the 1 s statement timeout, then 2 s before the next) ends
/// in SERVICE_UNAVAILABLE, six and more in a row; once it is free the job
/// finishes with exact counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_waits_out_an_outage_longer_than_its_attempts() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    const LOCKED: Duration = Duration::from_secs(20);
    if !production_available().await {
        return;
    }
    let storage = Storage::new(Backend::Production).await;
    let app = TestApp::spawn_with(storage, |c| c.db_statement_timeout_seconds = 1).await;
    let import = MidImport::start(&app, "locked.test").await;
    let job = || async { import.job(&app).await.unwrap() };

    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    let at_lock = job().await;
    assert!(
        at_lock.processed_rows < IMPORT_ROWS as i32,
        "finished before the lock"
    );
    while locked.elapsed() < LOCKED {
        let current = job().await;
        assert_eq!(
            (
                current.status.as_str(),
                current.processed_rows,
                current.failed_attempts
            ),
            ("IN_PROGRESS", at_lock.processed_rows, 0),
            "{:?} into the outage",
            locked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    lock.rollback().await.unwrap();

    let done = loop {
        let current = job().await;
        if current.status != "IN_PROGRESS" {
            break current;
        }
        assert!(
            locked.elapsed() < LOCKED + Duration::from_secs(120),
            "the import never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    import.finished_exactly(&app, &done).await;
}

/// A statement stuck behind a lock (or a database that stopped answering)
/// cannot hold a request or its connection forever: the statement timeout and
/// the request deadline each end it with SERVICE_UNAVAILABLE, and the next
/// request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_database_cannot_hold_a_request_forever() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if !production_available().await {
        return;
    }
    for (name, statement_timeout, request_timeout) in
        [("statement timeout", 1, 60), ("request deadline", 60, 1)]
    {
        let storage = Storage::new(Backend::Production).await;
        let app = TestApp::spawn_with(storage, |c| {
            c.db_statement_timeout_seconds = statement_timeout;
            c.request_timeout_seconds = request_timeout;
        })
        .await;
        let (_, token) = app.admin_in("Stuck Clinic", "admin@stuck.test").await;
        let query = "{ projects(first: 5) { totalCount } }";

        let lock = app.db.begin().await.unwrap();
        lock.execute_unprepared("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let sent = Instant::now();
        let (status, body) = app.graphql(Some(&token), query, Value::Null).await;
        let took = sent.elapsed();
        lock.rollback().await.unwrap();
        assert_eq!(
            (status, common::error_code(&body)),
            (503, "SERVICE_UNAVAILABLE"),
            "{name}: {body}"
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{name}: answered after {took:?}"
        );

        let (status, body) = app.graphql(Some(&token), query, Value::Null).await;
        assert_eq!(
            (status, body["data"]["projects"]["totalCount"].as_i64()),
            (200, Some(0)),
            "{name}: {body}"
        );
    }
}

/// Read a Redis reply with a private connection; `None` while it cannot.
async fn redis_query<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let query = async {
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        command.query_async(&mut connection).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(1), query)
        .await
        .ok()
        .flatten()
}

/// Poll `check` every 50 ms until it holds, for at most `within`.
async fn until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `REDIS_URL=redis+sentinel://…`: the primary is killed under load, the
/// Sentinel promotes its replica, and every instance follows it without a
/// restart: sessions written before (replicated) still work, and revocation
/// works on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_is_followed_under_load() {
    if !production_available().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (primary_port, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    let Some(mut primary) = PrivateRedis::start(primary_port) else {
        skip_without("redis-server");
        return;
    };
    let replica_of = primary_port.to_string();
    let _replica =
        PrivateRedis::start_with(replica_port, &["--replicaof", "127.0.0.1", &replica_of]).unwrap();
    until(Duration::from_secs(10), "the replica syncs", || async {
        redis_query::<String>(primary_port, redis::cmd("INFO").arg("replication"))
            .await
            .is_some_and(|info| info.contains("connected_slaves:1"))
    })
    .await;
    let Some(_sentinel) =
        PrivateRedis::sentinel(sentinel_port, "rollcall", primary_port, dir.path())
    else {
        skip_without("redis-server --sentinel");
        return;
    };
    until(
        Duration::from_secs(15),
        "the Sentinel sees the replica",
        || async {
            redis_query::<Vec<redis::Value>>(
                sentinel_port,
                redis::cmd("SENTINEL").arg("replicas").arg("rollcall"),
            )
            .await
            .is_some_and(|replicas| !replicas.is_empty())
        },
    )
    .await;

    let storage = Storage::new(Backend::Production).await;
    let url = format!("redis+sentinel://127.0.0.1:{sentinel_port}/rollcall");
    let app = TestApp::spawn_with(storage, |c| {
        c.redis_url = Some(url.clone());
        c.redis_timeout_ms = u64::try_from(REDIS_TIMEOUT.as_millis()).unwrap();
    })
    .await;
    let (_, tokens) = staff(&app).await;
    let spare = tokens[0].clone();
    // Every session has reached the replica before the primary dies.
    until(Duration::from_secs(5), "the sessions replicate", || async {
        let keys = redis::cmd("DBSIZE");
        let on_primary = redis_query::<u64>(primary_port, &keys).await;
        on_primary.is_some() && on_primary == redis_query::<u64>(replica_port, &keys).await
    })
    .await;

    let fail = async { primary.stop() };
    let heal = until(
        Duration::from_secs(20),
        "the Sentinel promotes the replica",
        || async {
            redis_query::<String>(replica_port, redis::cmd("INFO").arg("replication"))
                .await
                .is_some_and(|info| info.contains("role:master"))
        },
    );
    let fault = "Redis primary killed; Sentinel failover to its replica";
    survive(&app, tokens, fault, fail, heal).await;

    // Writes go to the new primary: logging out ends the session everywhere.
    let (status, body) = app
        .graphql(Some(&spare), "mutation { logout }", Value::Null)
        .await;
    assert_eq!(
        (status, body["data"]["logout"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (_, body) = app.graphql(Some(&spare), QUERY, Value::Null).await;
    assert_eq!(common::error_code(&body), "UNAUTHENTICATED", "{body}");
}
