//! Black-box test harness: starts the real server on a free port, exactly as
//! `rollcall serve` does, and talks HTTP and websockets to it.
//!
//! Every test runs on each backend available: embedded SQLite with the
//! in-process session store, and PostgreSQL with Redis. `#[each_backend]`
//! (from the `test-macros` crate) above a test's `async fn name(backend:
//! Backend)` makes it two tests, `name::embedded` and `name::production`. Each
//! app gets its own database (a temporary SQLite file, or a fresh PostgreSQL
//! database) and its own Redis key prefix, and removes them when dropped. With
//! `CI=true` an unreachable PostgreSQL or Redis fails the test; elsewhere those
//! runs are skipped, loudly.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code, reason = "each test binary uses part of the harness")]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

pub mod browser;
pub mod people;
pub mod services;
pub mod smtp;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use rollcall::{app::Application, config::Config};

/// The tests' key for secrets at rest (32 bytes of 0x2a).
pub const SECRET_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "Correct horse 42";

/// The token test servers serve `/metrics` to.
pub const METRICS_TOKEN: &str = "metrics-scraper-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file and in-process sessions: the embedded default.
    Embedded,
    /// PostgreSQL and Redis: production.
    Production,
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn production_reachable() -> bool {
    let pg = async {
        let db = sea_orm::Database::connect(postgres_admin_url())
            .await
            .ok()?;
        db.execute_unprepared("SELECT 1").await.ok()
    };
    let redis = async {
        let client = redis::Client::open(redis_url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    let timeout = Duration::from_secs(3);
    matches!(tokio::time::timeout(timeout, pg).await, Ok(Some(_)))
        && matches!(tokio::time::timeout(timeout, redis).await, Ok(Some(_)))
}

/// Whether this run covers `backend`: the embedded one always; production
/// where PostgreSQL and Redis answer. With `CI=true` they must, and a run
/// without them fails; elsewhere it is skipped, loudly.
pub async fn reachable(backend: Backend) -> bool {
    if backend == Backend::Embedded {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    // Where they must answer, a machine busy with other tests gets a few
    // tries before the run fails.
    for _ in 0..if ci { 5 } else { 1 } {
        if production_reachable().await {
            return true;
        }
        if ci {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    if ci {
        panic!(
            "CI=true but PostgreSQL ({}) or Redis ({}) is unreachable",
            postgres_admin_url(),
            redis_url()
        );
    }
    eprintln!(
        "\n*** SKIPPING the PostgreSQL + Redis run: they are unreachable. Set CI=true to make this fatal. ***\n"
    );
    false
}

/// The backends this run covers, for a test that walks them in turn (most
/// are one test per backend, through `#[each_backend]`).
pub async fn backends() -> Vec<Backend> {
    let mut covered = vec![Backend::Embedded];
    if reachable(Backend::Production).await {
        covered.push(Backend::Production);
    }
    covered
}

/// Where one test's data lives; shared by the instances of a scale-out test.
pub struct Storage {
    pub backend: Backend,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    postgres_database: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Storage {
    pub async fn new(backend: Backend) -> Arc<Self> {
        let prefix = format!("rollcall-test:{}:", Uuid::new_v4().simple());
        match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                Arc::new(Self {
                    backend,
                    database_url: format!(
                        "sqlite://{}?mode=rwc",
                        dir.path().join("rollcall.db").display()
                    ),
                    redis_url: None,
                    redis_prefix: prefix,
                    postgres_database: None,
                    _dir: Some(dir),
                })
            }
            Backend::Production => {
                let name = format!("rollcall_test_{}", Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(postgres_admin_url())
                    .await
                    .unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let base = postgres_admin_url();
                let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
                Arc::new(Self {
                    backend,
                    database_url: url,
                    redis_url: Some(redis_url()),
                    redis_prefix: prefix,
                    postgres_database: Some(name),
                    _dir: None,
                })
            }
        }
    }

    /// PostgreSQL and Redis servers of the test's own (see [`services`]): their
    /// whole data goes with them, so nothing is left to remove.
    pub fn private(database_url: String, redis_url: String) -> Arc<Self> {
        Arc::new(Self {
            backend: Backend::Production,
            database_url,
            redis_url: Some(redis_url),
            redis_prefix: format!("rollcall-test:{}:", Uuid::new_v4().simple()),
            postgres_database: None,
            _dir: None,
        })
    }

    /// Only a Redis key prefix, removed when dropped.
    pub async fn redis_only() -> Arc<Self> {
        Arc::new(Self {
            backend: Backend::Production,
            database_url: String::new(),
            redis_url: Some(redis_url()),
            redis_prefix: format!("rollcall-test:{}:", Uuid::new_v4().simple()),
            postgres_database: None,
            _dir: None,
        })
    }

    pub fn config(&self) -> Config {
        let mut config = Config::from_args(["rollcall"]).unwrap();
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.database_url = self.database_url.clone();
        config.redis_url = self.redis_url.clone();
        config.redis_prefix = self.redis_prefix.clone();
        config.secure_cookies = false;
        config.hash_concurrency = 2;
        config.db_pool_size = 5;
        config.public_url = None;
        config.cors_origins = Vec::new();
        config.metrics_token = Some(METRICS_TOKEN.to_owned());
        config.secret_key = Some(SECRET_KEY.to_owned());
        config.webauthn_rp_id = Some("rollcall.test".to_owned());
        config.webauthn_origins = vec!["https://rollcall.test".to_owned()];
        config
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let database = self.postgres_database.take();
        let redis = self.redis_url.clone();
        let prefix = self.redis_prefix.clone();
        // Drop cannot await: clean up on a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Some(name) = database
                    && let Ok(admin) = sea_orm::Database::connect(postgres_admin_url()).await
                {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
                if let Some(url) = redis
                    && let Ok(client) = redis::Client::open(url)
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A running server.
pub struct TestApp {
    pub address: String,
    pub storage: Arc<Storage>,
    pub db: sea_orm::DatabaseConnection,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_on(Storage::new(backend).await).await
    }

    /// Another instance on the same database and Redis.
    pub async fn spawn_on(storage: Arc<Storage>) -> Self {
        Self::spawn_with(storage, |_| {}).await
    }

    pub async fn spawn_with(storage: Arc<Storage>, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = storage.config();
        adjust(&mut config);
        let app = Application::build(config).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.state.db.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            app.run_until(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            address,
            storage,
            db,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A handle on a server running elsewhere (another process) over `storage`:
    /// requests go to `address`, direct database work to `db`.
    pub fn attach(storage: Arc<Storage>, db: sea_orm::DatabaseConnection, address: String) -> Self {
        Self {
            address,
            storage,
            db,
            client: reqwest::Client::new(),
            stop: None,
            task: None,
        }
    }

    /// A second instance on the same database and Redis, where instances share
    /// sessions (only through Redis); `None` on the embedded backend.
    pub async fn peer(&self) -> Option<TestApp> {
        match self.backend() {
            Backend::Production => Some(Self::spawn_on(self.storage.clone()).await),
            Backend::Embedded => None,
        }
    }

    /// GET a path of the server.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// What Prometheus scrapes from `/metrics`, with the configured token.
    pub async fn scrape(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    pub fn backend(&self) -> Backend {
        self.storage.backend
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.address.replacen("http", "ws", 1))
    }

    /// POST a GraphQL request as JSON; the status and body.
    pub async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Log in; the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (_, body) = self
            .graphql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        body["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    /// Create an organisation (with its built-in roles) directly in the database.
    pub async fn organization(&self, name: &str) -> Uuid {
        let (org, _) = rollcall::services::accounts::create_organization(&self.db, name)
            .await
            .unwrap();
        org.id
    }

    /// A new organisation named `name` and its admin `email`, logged in: the
    /// organisation's id and the admin's token.
    pub async fn admin_in(&self, name: &str, email: &str) -> (Uuid, String) {
        let organization = self.organization(name).await;
        self.user(organization, email, &["Admin"]).await;
        (organization, self.login(email, PASSWORD).await)
    }

    /// Stop accepting and wait for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

impl TestApp {
    /// Run a GraphQL request that must succeed; its `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.graphql(Some(token), query, variables).await;
        assert!(
            status == 200 && body["errors"].is_null(),
            "{:?}: {query}\n→ {status} {body}",
            self.backend()
        );
        body["data"].clone()
    }

    /// The actions in an organisation's audit trail, oldest first.
    pub async fn audit_actions(&self, organization: Uuid) -> Vec<String> {
        entity::audit_event::Entity::find()
            .filter(entity::audit_event::Column::OrganizationId.eq(organization))
            .order_by_asc(entity::audit_event::Column::CreatedAt)
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.action)
            .collect()
    }

    /// Open a websocket as a client speaks `graphql-transport-ws`, send
    /// `connection_init` with `token` (and, when given, an `Authorization`
    /// header on the upgrade), and return the reason of the close that must
    /// follow.
    pub async fn websocket_refusal(&self, token: &str, bearer: Option<&str>) -> String {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::{
            Message, client::IntoClientRequest, http::HeaderValue,
        };
        let mut request = self.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        if let Some(bearer) = bearer {
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap(),
            );
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(Message::text(
                serde_json::json!({ "type": "connection_init", "payload": { "token": token } })
                    .to_string(),
            ))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .unwrap();
        match reply {
            Some(Ok(Message::Close(Some(frame)))) => frame.reason.to_string(),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    /// Whether `query` is allowed to the holder of `token`: answered without
    /// errors (true) or refused FORBIDDEN (false); anything else fails the test.
    pub async fn allowed(&self, token: &str, query: &str) -> bool {
        let (_, body) = self
            .graphql(Some(token), query, serde_json::json!({}))
            .await;
        match error_code(&body) {
            "" => true,
            "FORBIDDEN" => false,
            other => panic!("{other}: {body}"),
        }
    }

    /// A project named `name` with `n` patients added to it (`P-1`, `P-2`, …,
    /// surnames `Ient1`, `Ient2`, …) by the holder of `token`; the project's
    /// id and the patients' ids.
    pub async fn project_with_patients(
        &self,
        token: &str,
        name: &str,
        n: usize,
    ) -> (String, Vec<String>) {
        let project = self
            .ok(
                token,
                "mutation($n: String!) { createProject(input: { name: $n }) { id } }",
                serde_json::json!({ "n": name }),
            )
            .await["createProject"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut patients = Vec::new();
        for i in 1..=n {
            let data = self
                .ok(
                    token,
                    "mutation($p: ID!, $input: ProjectPatientInput!) { addProjectPatient(projectId: $p, input: $input) { patient { id } } }",
                    serde_json::json!({ "p": project, "input": { "externalId": format!("P-{i}"), "firstName": "Pat", "lastName": format!("Ient{i}") } }),
                )
                .await;
            patients.push(
                data["addProjectPatient"]["patient"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        (project, patients)
    }

    /// A super admin with [`PASSWORD`] (no change required), logged in; the token.
    pub async fn super_admin(&self, email: &str) -> String {
        rollcall::services::accounts::create_super_admin(
            &self.db,
            &rollcall::auth::password::Hasher::new(1),
            email,
            Some(PASSWORD),
            "Platform",
        )
        .await
        .unwrap();
        self.login(email, PASSWORD).await
    }
}

/// The `extensions.fields` of the first error, as `(field, message)` pairs.
pub fn error_fields(body: &Value) -> Vec<(String, String)> {
    body["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or("").to_owned(),
                        f["message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A sample import file like those admins upload (`tests/samples`).
pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("sample {name}: {e}"))
}

/// A staff file of `rows` people (`staff{i}@{domain}`), as admins export them.
pub fn staff_file(rows: usize, domain: &str) -> Vec<u8> {
    let mut file = String::from("Email,First Name,Last Name,Job Title\n");
    for i in 0..rows {
        file.push_str(&format!("staff{i}@{domain},First{i},Last{i},RN\n"));
    }
    file.into_bytes()
}

impl TestApp {
    /// POST a GraphQL multipart request (the upload spec) with one file at
    /// `variables.input.file`; the status and body.
    pub async fn upload(
        &self,
        token: &str,
        query: &str,
        mut input: Value,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        input["file"] = Value::Null;
        let operations = json!({ "query": query, "variables": { "input": input } });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.input.file"] }).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(file_name.to_owned())
                    .mime_str("text/csv")
                    .unwrap(),
            );
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Start a USERS import of `file`; the job's id.
    pub async fn start_staff_import(&self, token: &str, file: Vec<u8>) -> String {
        self.start_import(token, json!({ "kind": "USERS" }), "staff.csv", file)
            .await
    }

    /// Start an import of `file` with `input` (`kind` and the rest of
    /// `ImportInput` but the file); the job's id.
    pub async fn start_import(
        &self,
        token: &str,
        input: Value,
        file_name: &str,
        file: Vec<u8>,
    ) -> String {
        let (_, body) = self
            .upload(
                token,
                "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
                input,
                file_name,
                file,
            )
            .await;
        body["data"]["startImport"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the import did not start: {body}"))
            .to_owned()
    }

    /// Import `file` with `input` and wait for the job to end; its final state.
    pub async fn import_finished(
        &self,
        token: &str,
        input: Value,
        file_name: &str,
        file: Vec<u8>,
    ) -> Value {
        let id = self.start_import(token, input, file_name, file).await;
        self.finished_job(token, &id).await
    }

    /// Wait until an import job has ended; its final state.
    pub async fn finished_job(&self, token: &str, id: &str) -> Value {
        for _ in 0..600 {
            let data = self
                .ok(
                    token,
                    "query($id: ID!) { importJob(id: $id) { status totalRows processedRows createdCount updatedCount skippedCount failedCount progress errorMessage failedRowsCsvUrl failedRowsXlsxUrl } }",
                    json!({ "id": id }),
                )
                .await;
            let job = data["importJob"].clone();
            if !matches!(job["status"].as_str(), Some("QUEUED" | "IN_PROGRESS")) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("import {id} did not finish");
    }
}

/// The real binary, started by [`start_binary`].
pub struct Binary {
    pub child: std::process::Child,
    /// `http://host:port` it listens on.
    pub address: String,
    stdout: Arc<std::sync::Mutex<String>>,
    stderr: Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Binary {
    /// Wait up to `within` for it to exit; its status, stdout and stderr.
    pub fn wait(mut self, within: Duration) -> (std::process::ExitStatus, String, String) {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < within, "did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Its pipes are closed: the readers finish with everything it wrote.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (status, self.stdout(), self.stderr())
    }

    /// What it has printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// What it has logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// Start the real binary with `command` (its environment set by the caller) on
/// a port the system chooses, and wait until it listens. The port is read from
/// the server's own `listening` log line, so no other process can take it in
/// between. JSON logs at `warn,rollcall::app=info` unless the caller set
/// `RUST_LOG`; stdout and stderr are collected as they come.
pub fn start_binary(mut command: std::process::Command) -> Binary {
    use std::io::{BufRead, BufReader, Read};
    command
        .env("ROLLCALL_BIND", "127.0.0.1:0")
        .env("ROLLCALL_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
        command.env("RUST_LOG", "warn,rollcall::app=info");
    }
    if !command
        .get_envs()
        .any(|(name, _)| name == "ROLLCALL_SECRET_KEY")
    {
        command.env("ROLLCALL_SECRET_KEY", SECRET_KEY);
    }
    let mut child = command.spawn().unwrap();
    let stdout = Arc::<std::sync::Mutex<String>>::default();
    let stderr = Arc::<std::sync::Mutex<String>>::default();
    let mut out = child.stdout.take().unwrap();
    let printed = Arc::clone(&stdout);
    let reads_stdout = std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n @ 1..) = out.read(&mut buffer) {
            printed
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let (found, address) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let logged = Arc::clone(&stderr);
    // Keep reading after the address, so that the child never blocks on a full pipe.
    let reads_stderr = std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(sender) = found.take_if(|_| line.contains("\"listening\"")) {
                let log: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let address = log["fields"]["address"]
                    .as_str()
                    .or_else(|| log["address"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let _ = sender.send(address);
            }
            let mut logged = logged.lock().unwrap();
            logged.push_str(&line);
            logged.push('\n');
        }
    });
    let address = address
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the server never said where it listens"));
    Binary {
        child,
        address: format!("http://{address}"),
        stdout,
        stderr,
        readers: vec![reads_stdout, reads_stderr],
    }
}

/// [`start_binary`], for callers that need only the child and its address.
pub fn spawn_binary(command: std::process::Command) -> (std::process::Child, String) {
    let binary = start_binary(command);
    (binary.child, binary.address)
}

/// A staff file as HR exports it, `rows` long (`nurse{i}@hr.test`): employee
/// statuses (every tenth on leave) and roles (Provider, every third Billing
/// too), one row in a hundred bad (a mistyped email or a role the organisation
/// does not have); the file and how many rows are bad.
pub fn hr_staff_file(rows: usize) -> (Vec<u8>, u64) {
    let mut file = String::with_capacity(rows * 100);
    file.push_str("Email,First Name,Last Name,Employee Status,Job Title,Roles\n");
    let mut bad = 0;
    for i in 0..rows {
        let (email, roles) = match i % 200 {
            99 => (format!("nurse{i}.hr.test"), "Provider"),
            199 => (format!("nurse{i}@hr.test"), "Nurse Practitioner"),
            _ if i % 3 == 0 => (format!("nurse{i}@hr.test"), "Provider;Billing"),
            _ => (format!("nurse{i}@hr.test"), "Provider"),
        };
        bad += u64::from(matches!(i % 200, 99 | 199));
        let status = if i % 10 == 0 { "Leave" } else { "Active" };
        file.push_str(&format!(
            "{email},First{i},Last{i},{status},Registered Nurse,{roles}\n"
        ));
    }
    (file.into_bytes(), bad)
}

/// The Python of the test peers from PyPI (`tests/python/requirements.txt`).
pub fn python() -> std::path::PathBuf {
    let venv = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/.venv/bin/python"
    ));
    assert!(
        venv.exists(),
        "run `python3 -m venv tests/python/.venv && tests/python/.venv/bin/pip install -r tests/python/requirements.txt` first (.ci/run does)"
    );
    venv
}
