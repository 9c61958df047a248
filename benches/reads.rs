//! What a page of staff costs: `cargo bench --bench reads`.
//!
//! Starts the real server in process (PostgreSQL and Redis when they answer on
//! 127.0.0.1, else SQLite and in-process sessions) on a runtime of its own,
//! imports 1,000 staff with their roles and employee status through
//! `startImport` as an admin would, and drives it over loopback with 32
//! keep-alive connections, each with a session of its own administrator, from
//! a second runtime:
//!
//! 1. `users(first: 100)` with each user's id, email and names;
//! 2. the same page with each user's roles' names;
//! 3. an authenticated `{ __typename }`, what every request costs before its
//!    own work;
//!
//! in turn, round after round, 1 2 3 then 3 2 1, so that a machine whose speed
//! drifts weighs on each alike. For each it prints the median and range over
//! the rounds of requests per second, p50/p99 latency, and CPU time per
//! request: the process's, the server's threads alone, PostgreSQL's, and the
//! whole machine's (server, load generator, PostgreSQL and Redis). Then the cost of the roles: the page with
//! roles against the page without, by throughput and by server CPU.
//! `BENCH_ROUNDS` (default 5) and `BENCH_SECONDS` (default 3) set its length.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(
    dead_code,
    reason = "each benchmark uses some of the load generator's figures"
)]
mod load;

use common::{Backend, PASSWORD, TestApp};
use load::{CONNECTIONS, Figures, SERVER_THREADS, drive, report, setting, spread};
use serde_json::json;

const STAFF: usize = 1_000;

const WITHOUT_ROLES: &str =
    "{ users(first: 100) { edges { node { id email firstName lastName } } } }";
const WITH_ROLES: &str =
    "{ users(first: 100) { edges { node { id email firstName lastName roles { name } } } } }";
const TYPENAME: &str = "{ __typename }";

/// The staff file an HR system exports: names, status, title and one or two
/// roles each.
fn staff_file() -> Vec<u8> {
    let roles = [
        "Clinical Provider",
        "Patient Coordinator",
        "Billing",
        "Clinical Provider; Medical Director",
        "Clinical Manager; Billing",
    ];
    let mut file = String::from("Email,First Name,Last Name,Employee Status,Title,Roles\n");
    for i in 0..STAFF {
        file.push_str(&format!(
            "staff{i:04}@bench.test,Given{i},Family{i},Active,Nurse,\"{}\"\n",
            roles[i % roles.len()]
        ));
    }
    file.into_bytes()
}

struct Round {
    without_roles: Figures,
    with_roles: Figures,
    typename: Figures,
}

type Phase = fn(&Round) -> &Figures;

/// The server binary's allocator, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // The server's runtime, its threads named so that their CPU time can be
    // told from the load generator's.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("load")
        .enable_all()
        .build()
        .unwrap();
    let seconds = setting("BENCH_SECONDS", 3);
    let rounds = setting("BENCH_ROUNDS", 5);

    let (app, backend, tokens) = server.block_on(async {
        let backend = *common::backends().await.last().unwrap();
        let storage = common::Storage::new(backend).await;
        let app = TestApp::spawn_with(storage, |c| c.db_pool_size = 32).await;
        let org = app.organization("Bench Clinic").await;
        let mut tokens = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let email = format!("admin{i}@bench.test");
            app.user(org, &email, &["Admin"]).await;
            tokens.push(app.login(&email, PASSWORD).await);
        }
        let job = app
            .import_finished(
                &tokens[0],
                json!({ "kind": "USERS" }),
                "staff.csv",
                staff_file(),
            )
            .await;
        assert_eq!(job["status"], "FINISHED", "{job}");
        assert_eq!(job["createdCount"], STAFF, "{job}");
        // The page the benchmark reads is a whole one, with roles.
        let page = app.ok(&tokens[0], WITH_ROLES, json!({})).await;
        let users = page["users"]["edges"].as_array().unwrap();
        assert_eq!(users.len(), 100);
        assert!(
            users
                .iter()
                .any(|u| !u["node"]["roles"].as_array().unwrap().is_empty())
        );
        (app, backend, tokens)
    });
    println!(
        "backend: {}; {STAFF} staff imported; {CONNECTIONS} connections, one session each; {rounds} rounds of {seconds} s per phase; {cores} cores shared by the server, the load generator and the database",
        match backend {
            Backend::Production => "PostgreSQL + Redis",
            Backend::Embedded => "SQLite + in-process sessions",
        },
    );

    let rounds_seen: Vec<Round> = client.block_on(async {
        let address = app.address.clone();
        let run = |query: &'static str, seconds: u64| {
            let (address, tokens) = (address.clone(), tokens.clone());
            async move { drive(&address, Some(&tokens), query, seconds).await }
        };
        // Warm up connections, caches and the pool.
        run(WITH_ROLES, 2).await;
        let mut seen = Vec::new();
        for round in 1..=rounds {
            let without_roles = run(WITHOUT_ROLES, seconds).await;
            let with_roles = run(WITH_ROLES, seconds).await;
            let typename = run(TYPENAME, seconds).await;
            let typename = typename.and(run(TYPENAME, seconds).await);
            let with_roles = with_roles.and(run(WITH_ROLES, seconds).await);
            let without_roles = without_roles.and(run(WITHOUT_ROLES, seconds).await);
            println!(
                "round {round}: {:.0} / {:.0} / {:.0} req/s",
                without_roles.requests_per_second(),
                with_roles.requests_per_second(),
                typename.requests_per_second(),
            );
            seen.push(Round {
                without_roles,
                with_roles,
                typename,
            });
        }
        seen
    });

    println!();
    let phases: [(&str, Phase); 3] = [
        ("users(first: 100), names", |r| &r.without_roles),
        ("users(first: 100), names and roles", |r| &r.with_roles),
        ("authenticated { __typename }", |r| &r.typename),
    ];
    for (name, phase) in phases {
        let figures: Vec<&Figures> = rounds_seen.iter().map(phase).collect();
        report(name, &figures);
    }
    let ratio = |figure: fn(&Figures) -> f64, a: Phase, b: Phase| {
        spread(rounds_seen.iter().map(|r| figure(a(r)) / figure(b(r))))
    };
    println!(
        "the page with roles against without: {} × the server CPU per request, {} × the throughput",
        ratio(
            Figures::server_cpu_us,
            |r| &r.with_roles,
            |r| &r.without_roles
        ),
        ratio(
            Figures::requests_per_second,
            |r| &r.with_roles,
            |r| &r.without_roles
        ),
    );
    server.block_on(app.stop());
}
