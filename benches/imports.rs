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
//! and prints both times and their ratio, then the same import on SQLite. The
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

/// Upload to FINISHED through the API; the elapsed time.
async fn import(backend: Backend, file: &[u8]) -> (Duration, Storage_) {
    let storage = Storage::new(backend).await;
    let app = TestApp::spawn_with(storage.clone(), |c| c.db_pool_size = 10).await;
    let org = app.organization("Bench Import").await;
    app.user(org, "admin@bench.example", &["Admin"]).await;
    let token = app.login("admin@bench.example", PASSWORD).await;
    let started = Instant::now();
    let (_, body) = app
        .upload(
            &token,
            "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
            json!({ "kind": "USERS" }),
            "bench.csv",
            file.to_vec(),
        )
        .await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let job = app.finished_job(&token, &id).await;
    let elapsed = started.elapsed();
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(
        job["createdCount"].as_u64(),
        Some(file.iter().filter(|b| **b == b'\n').count() as u64 - 1)
    );
    app.stop().await;
    (elapsed, storage)
}

type Storage_ = std::sync::Arc<Storage>;

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
            let (imported, storage) = import(Backend::Production, &file).await;
            println!(
                "PostgreSQL import, upload to FINISHED: {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
                imported.as_secs_f64(),
                rows as f64 / imported.as_secs_f64(),
                peak_rss_mib()
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
            println!(
                "ratio import / COPY: {:.1}",
                imported.as_secs_f64() / copy_time.as_secs_f64()
            );
        }
        let (imported, _) = import(Backend::Embedded, &file).await;
        println!(
            "SQLite import, upload to FINISHED:     {:>7.2} s   ({:.0} rows/s; peak RSS {:.0} MiB)",
            imported.as_secs_f64(),
            rows as f64 / imported.as_secs_f64(),
            peak_rss_mib()
        );
    });
}
