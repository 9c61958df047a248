//! Import throughput against PostgreSQL's own COPY: `cargo bench --bench imports`.
//!
//! Generates a staff file (`BENCH_ROWS`, default 100,000 rows of email, first
//! name, last name and title), then in one run:
//!
//! 1. imports it end to end through the real server in process: multipart upload,
//!    the background job, until FINISHED;
//! 2. loads the same file into a bare table of the same columns with `COPY … FROM
//!    STDIN (FORMAT csv)`;
//!
//! 3. copies what the import stores for the same file (each user's record and
//!    each row's outcome, made ready in memory beforehand) into tables made
//!    `LIKE` `users` and `import_rows` with their indexes and foreign keys: the
//!    least any import that keeps these records and outcomes can cost
//!    PostgreSQL. The users' COPY is timed apart as well: what putting the
//!    people alone into their table costs, outcomes aside;
//!
//! and prints the times and ratios, then the same import on SQLite. The
//! process's peak resident memory is printed after each import.

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

fn staff_file(rows: usize) -> Vec<u8> {
    let mut file = String::with_capacity(rows * 64);
    file.push_str("Email,First Name,Last Name,Job Title\n");
    for i in 0..rows {
        file.push_str(&format!(
            "staff{i}@bench.example,First{i},Last{i},Registered Nurse\n"
        ));
    }
    file.into_bytes()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Upload to FINISHED through the API, then the same file with every row's
/// title changed; the two elapsed times.
async fn import(backend: Backend, file: &[u8]) -> (Duration, Duration, Storage_) {
    let storage = Storage::new(backend).await;
    let app = TestApp::spawn_with(storage.clone(), |c| c.db_pool_size = 10).await;
    let org = app.organization("Bench Import").await;
    app.user(org, "admin@bench.example", &["Admin"]).await;
    let token = app.login("admin@bench.example", PASSWORD).await;
    let started = Instant::now();
    let id = app.start_staff_import(&token, file.to_vec()).await;
    let job = app.finished_job(&token, &id).await;
    let elapsed = started.elapsed();
    let rows = file.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(job["createdCount"].as_u64(), Some(rows));

    // The same people again with a new title each: every row an update.
    let retitled = String::from_utf8(file.to_vec())
        .unwrap()
        .replace(",Registered Nurse\n", ",Charge Nurse\n");
    let started = Instant::now();
    let id = app.start_staff_import(&token, retitled.into_bytes()).await;
    let job = app.finished_job(&token, &id).await;
    let updated = started.elapsed();
    assert_eq!(job["updatedCount"].as_u64(), Some(rows), "{job}");
    app.stop().await;
    (elapsed, updated, storage)
}

type Storage_ = std::sync::Arc<Storage>;

/// COPY the users and row outcomes an import of `file` stores, in PostgreSQL's
/// text format, into empty tables with the indexes and foreign keys of the real
/// ones; the time each COPY takes, users first.
async fn copy_stored_form(db: &sea_orm::DatabaseConnection, file: &[u8]) -> [Duration; 2] {
    let organization = uuid::Uuid::now_v7();
    let job = uuid::Uuid::now_v7();
    // The foreign keys too, which PostgreSQL checks row by row as it does
    // for the real tables (`LIKE` copies none).
    db.execute_unprepared(&format!(
        "CREATE TABLE floor_users (LIKE users INCLUDING ALL);
         CREATE TABLE floor_rows (LIKE import_rows INCLUDING ALL);
         INSERT INTO organizations (id, name, created_at, updated_at)
           VALUES ('{organization}', 'Floor Clinic', now(), now());
         INSERT INTO import_jobs (id, organization_id, kind, status, file_name, mapping, settings, created_at)
           VALUES ('{job}', '{organization}', 'USERS', 'FINISHED', 'floor.csv', '[]', '{{}}', now());
         ALTER TABLE floor_users ADD FOREIGN KEY (organization_id) REFERENCES organizations (id);
         ALTER TABLE floor_rows ADD FOREIGN KEY (job_id) REFERENCES import_jobs (id);"
    ))
    .await
    .unwrap();
    let now = "2026-01-01 00:00:00+00";
    let (mut users, mut outcomes) = (String::new(), String::new());
    let text = std::str::from_utf8(file).unwrap();
    for (i, line) in text.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let id = uuid::Uuid::now_v7();
        let (email, first, last, title) = (cells[0], cells[1], cells[2], cells[3]);
        // id, organization, email, password, first, last, title, status,
        // employee status, mobile, locale, idle timeout, external id, must
        // change password, super admin, last login, created, updated,
        // signature, preferences.
        users.push_str(&format!(
            "{id}\t{organization}\t{email}\t\\N\t{first}\t{last}\t{title}\tACTIVE\tACTIVE\t\\N\t\\N\t\\N\t\\N\tf\tf\t\\N\t{now}\t{now}\t\\N\t\\N\n"
        ));
        let values = json!([
            ["Email", email],
            ["First Name", first],
            ["Last Name", last],
            ["Job Title", title]
        ]);
        outcomes.push_str(&format!(
            "{job}\t{}\tCREATED\t{email}\t{id}\t[]\t{values}\n",
            i + 2
        ));
    }
    let pool = db.get_postgres_connection_pool();
    let mut times = [Duration::ZERO; 2];
    for (time, (table, data)) in times
        .iter_mut()
        .zip([("floor_users", users), ("floor_rows", outcomes)])
    {
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rows: usize = std::env::var("BENCH_ROWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        let file = staff_file(rows);
        println!(
            "{rows} rows, {:.1} MiB; {} cores",
            file.len() as f64 / (1024.0 * 1024.0),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
        let backends = common::backends().await;
        if backends.contains(&Backend::Production) {
            let (imported, updated, storage) = import(Backend::Production, &file).await;
            println!(
                "PostgreSQL import, upload to FINISHED: {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
                imported.as_secs_f64(),
                rows as f64 / imported.as_secs_f64(),
                peak_rss_mib()
            );
            println!(
                "PostgreSQL re-import, every row updated: {:>5.2} s   ({:.0} rows/s)",
                updated.as_secs_f64(),
                rows as f64 / updated.as_secs_f64()
            );
            let db = rollcall::app::connect_database(&storage.config()).await.unwrap();
            db.execute_unprepared(
                "CREATE TABLE bench_copy (email text, first_name text, last_name text, title text)",
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
            let [users_alone, outcomes] = copy_stored_form(&db, &file).await;
            let floor = users_alone + outcomes;
            println!(
                "PostgreSQL COPY of the stored form:    {:>7.2} s   (users and row outcomes, indexes and foreign keys)",
                floor.as_secs_f64()
            );
            println!(
                "  of which the users alone:            {:>7.2} s   ({:.1} x the bare COPY)",
                users_alone.as_secs_f64(),
                users_alone.as_secs_f64() / copy_time.as_secs_f64()
            );
            println!(
                "ratio import / COPY: {:.1}; stored form / COPY: {:.1}; import / stored form: {:.1}",
                imported.as_secs_f64() / copy_time.as_secs_f64(),
                floor.as_secs_f64() / copy_time.as_secs_f64(),
                imported.as_secs_f64() / floor.as_secs_f64()
            );
        }
        let (imported, updated, _) = import(Backend::Embedded, &file).await;
        println!(
            "SQLite import, upload to FINISHED:     {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
            imported.as_secs_f64(),
            rows as f64 / imported.as_secs_f64(),
            peak_rss_mib()
        );
        println!(
            "SQLite re-import, every row updated:   {:>7.2} s   ({:.0} rows/s)",
            updated.as_secs_f64(),
            rows as f64 / updated.as_secs_f64()
        );
    });
}
