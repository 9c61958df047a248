//! Import throughput against PostgreSQL's own COPY: `cargo bench --bench imports`.
//!
//! Generates a staff file (`BENCH_ROWS`, default 100,000 rows of email, first
//! and last name, employee status, title and roles; one row in a hundred
//! bad), then in one run:
//!
//! 1. imports it end to end through the real server in process: multipart
//!    upload, the background job, until FINISHED; then the same file with
//!    every title changed, every good row an update;
//! 2. in a database of its own, the flow admins follow: `previewImport` of the
//!    file, then `startImport` of the same file, until FINISHED;
//! 3. loads the same file into a bare table of the same columns with `COPY …
//!    FROM STDIN (FORMAT csv)`;
//! 4. copies what the import stores for the same file (each user's record,
//!    their role links and each row's outcome, made ready in memory
//!    beforehand, and what undoing each written row needs) into tables made
//!    `LIKE` `users`, `user_roles` and `import_rows` with their indexes and
//!    foreign keys: the least any import that keeps these records and
//!    outcomes can cost PostgreSQL. The users'
//!    COPY is timed apart as well: what putting the people alone into their
//!    table costs, outcomes aside;
//!
//! and prints the times and ratios, then the same imports on SQLite. The
//! process's peak resident memory is printed after the first import.
//! `BENCH_BACKENDS=postgres` leaves SQLite out; `BENCH_PROGRESS=1` prints
//! each job's rows per five seconds as it runs.
//!
//! `BENCH_MEMORY_MIB=10,100` measures memory against the file's size instead:
//! for each size, in a database of its own, the real binary as operators run
//! it (PostgreSQL and Redis, the upload limit raised to fit), an admin who
//! previews a staff file of about that size, then imports it until FINISHED;
//! then the server process's peak resident memory (`VmHWM`), each against the
//! first size's.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Backend, PASSWORD, Storage, TestApp};
use sea_orm::{ConnectionTrait, sqlx::postgres::PgPoolCopyExt};
use serde_json::json;

fn peak_rss_mib() -> f64 {
    peak_rss("self")
}

/// Wait for a job to end, however long it takes; with `BENCH_PROGRESS=1`,
/// print how many rows each five seconds processed.
async fn finished(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    let verbose = std::env::var("BENCH_PROGRESS").is_ok_and(|v| v == "1");
    let (mut last, mut done) = (Instant::now(), 0);
    loop {
        let data = app
            .ok(
                token,
                "query($id: ID!) { importJob(id: $id) { status processedRows createdCount updatedCount failedCount errorMessage } }",
                json!({ "id": id }),
            )
            .await;
        let job = data["importJob"].clone();
        if !matches!(job["status"].as_str(), Some("QUEUED" | "IN_PROGRESS")) {
            return job;
        }
        if verbose && last.elapsed() >= Duration::from_secs(5) {
            let processed = job["processedRows"].as_u64().unwrap_or(0);
            println!(
                "  {} rows in {:.1} s",
                processed - done,
                last.elapsed().as_secs_f64()
            );
            (last, done) = (Instant::now(), processed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one import of the file took, through the API.
struct Timings {
    /// `previewImport` of the file, when the flow previews first.
    preview: Option<Duration>,
    /// `startImport` to FINISHED.
    import: Duration,
    /// The same file with every row's title changed, to FINISHED.
    update: Option<Duration>,
}

/// Upload to FINISHED through the API in a database of its own, as an admin
/// does it: `previewImport` first when `preview`, then `startImport` of the
/// same file; with `update`, the same file again with every row's title
/// changed.
async fn import(
    backend: Backend,
    (file, bad): (&[u8], u64),
    preview: bool,
    update: bool,
) -> (Timings, Storage_) {
    let storage = Storage::new(backend).await;
    let app = TestApp::spawn_with(storage.clone(), |c| c.db_pool_size = 10).await;
    let org = app.organization("Bench Import").await;
    app.user(org, "admin@bench.example", &["Admin"]).await;
    let token = app.login("admin@bench.example", PASSWORD).await;
    let rows = file.iter().filter(|b| **b == b'\n').count() - 1;
    let previewed = if preview {
        let started = Instant::now();
        let (status, body) = app
            .upload(
                &token,
                "mutation($input: ImportInput!) { previewImport(input: $input) { totalRows validRows invalidRows } }",
                json!({ "kind": "USERS" }),
                "staff.csv",
                file.to_vec(),
            )
            .await;
        let elapsed = started.elapsed();
        let found = &body["data"]["previewImport"];
        assert_eq!(status, 200, "{body}");
        assert_eq!(found["invalidRows"].as_u64(), Some(bad), "{body}");
        Some(elapsed)
    } else {
        None
    };
    let started = Instant::now();
    let id = app.start_staff_import(&token, file.to_vec()).await;
    let job = finished(&app, &token, &id).await;
    let imported = started.elapsed();
    assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{job}");
    assert_eq!(
        job["createdCount"].as_u64(),
        Some(rows as u64 - bad),
        "{job}"
    );
    assert_eq!(job["failedCount"].as_u64(), Some(bad), "{job}");

    let updated = if update {
        // The same people again with a new title each: every good row an update.
        let retitled = String::from_utf8(file.to_vec())
            .unwrap()
            .replace(",Registered Nurse,", ",Charge Nurse,");
        let started = Instant::now();
        let id = app.start_staff_import(&token, retitled.into_bytes()).await;
        let job = finished(&app, &token, &id).await;
        let elapsed = started.elapsed();
        assert_eq!(
            job["updatedCount"].as_u64(),
            Some(rows as u64 - bad),
            "{job}"
        );
        Some(elapsed)
    } else {
        None
    };
    app.stop().await;
    (
        Timings {
            preview: previewed,
            import: imported,
            update: updated,
        },
        storage,
    )
}

type Storage_ = std::sync::Arc<Storage>;

/// COPY what an import of `file` stores (each person, their role links and
/// every row's outcome), in PostgreSQL's text format, into empty tables with
/// the indexes and foreign keys of the real ones; the time each COPY takes:
/// users, role links, outcomes.
async fn copy_stored_form(db: &sea_orm::DatabaseConnection, file: &[u8]) -> [Duration; 3] {
    let organization = uuid::Uuid::now_v7();
    let job = uuid::Uuid::now_v7();
    let (provider, billing) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // The foreign keys too, which PostgreSQL checks row by row as it does
    // for the real tables (`LIKE` copies none).
    db.execute_unprepared(&format!(
        "CREATE TABLE floor_users (LIKE users INCLUDING ALL);
         CREATE TABLE floor_user_roles (LIKE user_roles INCLUDING ALL);
         CREATE TABLE floor_rows (LIKE import_rows INCLUDING ALL);
         INSERT INTO organizations (id, name, created_at, updated_at)
           VALUES ('{organization}', 'Floor Clinic', now(), now());
         INSERT INTO roles (id, organization_id, name, built_in, created_at, updated_at)
           VALUES ('{provider}', '{organization}', 'Provider', true, now(), now()),
                  ('{billing}', '{organization}', 'Billing', true, now(), now());
         INSERT INTO import_jobs (id, organization_id, kind, status, file_name, mapping, settings, created_at)
           VALUES ('{job}', '{organization}', 'USERS', 'FINISHED', 'floor.csv', '[]', '{{}}', now());
         ALTER TABLE floor_users ADD FOREIGN KEY (organization_id) REFERENCES organizations (id);
         ALTER TABLE floor_user_roles ADD FOREIGN KEY (user_id) REFERENCES floor_users (id);
         ALTER TABLE floor_user_roles ADD FOREIGN KEY (role_id) REFERENCES roles (id);
         ALTER TABLE floor_rows ADD FOREIGN KEY (job_id) REFERENCES import_jobs (id);"
    ))
    .await
    .unwrap();
    let now = "2026-01-01 00:00:00+00";
    let (mut users, mut links, mut outcomes) = (String::new(), String::new(), String::new());
    let text = std::str::from_utf8(file).unwrap();
    for (i, line) in text.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let [email, first, last, status, title, roles] = cells[..] else {
            panic!("a generated row has six cells: {line}");
        };
        let values = json!([
            ["Email", email],
            ["First Name", first],
            ["Last Name", last],
            ["Employee Status", status],
            ["Job Title", title],
            ["Roles", roles]
        ]);
        if !email.contains('@') || roles.contains("Nurse Practitioner") {
            outcomes.push_str(&format!(
                "{job}\t{}\tFAILED\t{email}\t\\N\t[{{\"field\": \"email\", \"message\": \"is not an email address\"}}]\t{values}\t\\N\n",
                i + 2
            ));
            continue;
        }
        let id = uuid::Uuid::now_v7();
        // id, organization, email, password, first, last, title, status,
        // employee status, mobile, locale, idle timeout, external id, must
        // change password, super admin, last login, created, updated,
        // signature, preferences.
        users.push_str(&format!(
            "{id}\t{organization}\t{email}\t\\N\t{first}\t{last}\t{title}\tACTIVE\t{}\t\\N\t\\N\t\\N\t\\N\tf\tf\t\\N\t{now}\t{now}\t\\N\t\\N\n",
            status.to_uppercase()
        ));
        links.push_str(&format!("{id}\t{provider}\n"));
        if roles.contains("Billing") {
            links.push_str(&format!("{id}\t{billing}\n"));
        }
        // What undoing the row needs, as the import keeps it.
        let mut after = vec![provider.to_string()];
        if roles.contains("Billing") {
            after.push(billing.to_string());
        }
        let undo = json!({
            "user": { "id": id, "created": true, "fields": {
                "employee_status": [null, status.to_uppercase()],
                "first_name": [null, first],
                "last_name": [null, last],
                "title": [null, title],
            } },
            "roles": { "before": [], "after": after },
        });
        outcomes.push_str(&format!(
            "{job}\t{}\tCREATED\t{email}\t{id}\t[]\t{values}\t{undo}\n",
            i + 2
        ));
    }
    let pool = db.get_postgres_connection_pool();
    let mut times = [Duration::ZERO; 3];
    // Columns named: the tables have more, which take their defaults.
    for (time, (table, data)) in times.iter_mut().zip([
        (
            "floor_users (id, organization_id, email, password_hash, first_name, last_name, \
             title, status, employee_status, mobile_phone, locale, idle_timeout_minutes, \
             external_id, must_change_password, is_super_admin, last_login_at, created_at, \
             updated_at, email_signature, preferences)",
            users,
        ),
        ("floor_user_roles (user_id, role_id)", links),
        (
            "floor_rows (job_id, row_number, status, identity, record_id, errors, row_values, undo)",
            outcomes,
        ),
    ]) {
        let started = Instant::now();
        let mut copy = pool
            .copy_in_raw(&format!("COPY {table} FROM STDIN"))
            .await
            .unwrap();
        copy.send(data.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        *time = started.elapsed();
    }
    times
}

/// The server binary's allocator, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The peak resident memory of a process (`self`, or its id), in MiB.
fn peak_rss(process: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The server's peak memory after a preview and an import of a staff file of
/// each size in MiB: see the top of this file.
async fn memory(sizes: &[usize]) {
    let bytes_per_row = common::hr_staff_file(1_000).0.len() / 1_000;
    let mut first = None;
    for &mib in sizes {
        let rows = (mib << 20) / bytes_per_row;
        let (file, bad) = common::hr_staff_file(rows);
        let storage = Storage::new(Backend::Production).await;
        let db = rollcall::app::connect_database(&storage.config())
            .await
            .unwrap();
        rollcall::app::migrate(&db).await.unwrap();
        let (org, _) = rollcall::services::accounts::create_organization(&db, "Bench Memory")
            .await
            .unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
        command
            .env("DATABASE_URL", &storage.database_url)
            .env("REDIS_URL", storage.redis_url.as_deref().unwrap())
            .env("ROLLCALL_REDIS_PREFIX", &storage.redis_prefix)
            .env(
                "ROLLCALL_MAX_UPLOAD_BYTES",
                (file.len() + (1 << 20)).to_string(),
            )
            .env("ROLLCALL_REQUEST_TIMEOUT_SECONDS", "1800")
            .env("ROLLCALL_DB_STATEMENT_TIMEOUT_SECONDS", "1800");
        let (mut server, address) = common::spawn_binary(command);
        let app = TestApp::attach(storage.clone(), db, address);
        app.user(org.id, "admin@bench.example", &["Admin"]).await;
        let token = app.login("admin@bench.example", PASSWORD).await;
        let idle = peak_rss(&server.id().to_string());
        let started = Instant::now();
        let (status, body) = app
            .upload(
                &token,
                "mutation($input: ImportInput!) { previewImport(input: $input) { invalidRows } }",
                json!({ "kind": "USERS" }),
                "staff.csv",
                file.clone(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["previewImport"]["invalidRows"].as_u64(),
            Some(bad),
            "{body}"
        );
        let previewed = (started.elapsed(), peak_rss(&server.id().to_string()));
        let started = Instant::now();
        let id = app.start_staff_import(&token, file.clone()).await;
        let job = finished(&app, &token, &id).await;
        assert_eq!(job["failedCount"].as_u64(), Some(bad), "{job}");
        let peak = peak_rss(&server.id().to_string());
        let against = *first.get_or_insert(peak);
        println!(
            "{:>5.1} MiB file ({rows} rows): peak RSS {idle:.0} MiB idle, {:.0} MiB after the preview ({:.1} s), {peak:.0} MiB after the import ({:.1} s); {:.2} x the first size's peak",
            file.len() as f64 / f64::from(1 << 20),
            previewed.1,
            previewed.0.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            peak / against,
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if let Ok(sizes) = std::env::var("BENCH_MEMORY_MIB") {
            let sizes: Vec<usize> = sizes.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            return memory(&sizes).await;
        }
        let rows: usize = std::env::var("BENCH_ROWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        let (file, bad) = common::hr_staff_file(rows);
        println!(
            "{rows} rows, {:.1} MiB; {} cores",
            file.len() as f64 / (1024.0 * 1024.0),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let backends = common::backends().await;
        let rate = |d: Duration| rows as f64 / d.as_secs_f64();
        if backends.contains(&Backend::Production) {
            let (alone, storage) = import(Backend::Production, (&file, bad), false, true).await;
            println!(
                "PostgreSQL import, upload to FINISHED: {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
                alone.import.as_secs_f64(),
                rate(alone.import),
                peak_rss_mib()
            );
            let updated = alone.update.unwrap();
            println!(
                "PostgreSQL re-import, every row updated: {:>5.2} s   ({:.0} rows/s)",
                updated.as_secs_f64(),
                rate(updated)
            );
            let (flow, _) = import(Backend::Production, (&file, bad), true, false).await;
            let previewed = flow.preview.unwrap();
            println!(
                "PostgreSQL preview, then import:       {:>7.2} s + {:.2} s   ({:.0} rows/s imported; import {:.2} x the import alone)",
                previewed.as_secs_f64(),
                flow.import.as_secs_f64(),
                rate(flow.import),
                flow.import.as_secs_f64() / alone.import.as_secs_f64()
            );
            let db = rollcall::app::connect_database(&storage.config()).await.unwrap();
            db.execute_unprepared(
                "CREATE TABLE bench_copy (email text, first_name text, last_name text, employee_status text, title text, roles text)",
            )
            .await
            .unwrap();
            let started = Instant::now();
            let mut copy = db
                .get_postgres_connection_pool()
                .copy_in_raw("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)")
                .await
                .unwrap();
            copy.send(file.as_slice()).await.unwrap();
            let copied = copy.finish().await.unwrap();
            let copy_time = started.elapsed();
            assert_eq!(copied as usize, rows);
            println!(
                "PostgreSQL COPY into a bare table:     {:>7.2} s",
                copy_time.as_secs_f64()
            );
            let [users_alone, links, outcomes] = copy_stored_form(&db, &file).await;
            let floor = users_alone + links + outcomes;
            println!(
                "PostgreSQL COPY of the stored form:    {:>7.2} s   (users, role links and row outcomes, indexes and foreign keys)",
                floor.as_secs_f64()
            );
            println!(
                "  of which the users alone:            {:>7.2} s   ({:.1} x the bare COPY)",
                users_alone.as_secs_f64(),
                users_alone.as_secs_f64() / copy_time.as_secs_f64()
            );
            println!(
                "ratio import / COPY: {:.1}; stored form / COPY: {:.1}; import / stored form: {:.1}",
                alone.import.as_secs_f64() / copy_time.as_secs_f64(),
                floor.as_secs_f64() / copy_time.as_secs_f64(),
                alone.import.as_secs_f64() / floor.as_secs_f64()
            );
        }
        if std::env::var("BENCH_BACKENDS").is_ok_and(|b| b == "postgres") {
            return;
        }
        let (alone, _) = import(Backend::Embedded, (&file, bad), false, true).await;
        println!(
            "SQLite import, upload to FINISHED:     {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
            alone.import.as_secs_f64(),
            rate(alone.import),
            peak_rss_mib()
        );
        let updated = alone.update.unwrap();
        println!(
            "SQLite re-import, every row updated:   {:>7.2} s   ({:.0} rows/s)",
            updated.as_secs_f64(),
            rate(updated)
        );
        let (flow, _) = import(Backend::Embedded, (&file, bad), true, false).await;
        println!(
            "SQLite preview, then import:           {:>7.2} s + {:.2} s   (import {:.2} x the import alone)",
            flow.preview.unwrap().as_secs_f64(),
            flow.import.as_secs_f64(),
            flow.import.as_secs_f64() / alone.import.as_secs_f64()
        );
    });
}
