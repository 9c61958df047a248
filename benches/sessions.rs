//! What a session costs: `cargo bench --bench sessions`.
//!
//! Starts the real server in process (PostgreSQL and Redis when they answer on
//! 127.0.0.1, else SQLite and in-process sessions) and drives it over loopback
//! with 32 keep-alive connections, each sending its next request as soon as the
//! last one is answered, and each with a session of its own user:
//!
//! 1. `{ __typename }` without a session: the cost of HTTP and GraphQL alone;
//! 2. `{ __typename }` with a bearer token: plus the session lookup alone (one
//!    Redis round trip);
//! 3. `{ me { id email } }` with a bearer token: plus the user read;
//! 4. the same while 20 logins per second are hashed (argon2id) beside it;
//!
//! in turn, round after round: 1, 2 and 3, then 3, 2 and 1 again (a phase's
//! figures in a round are of its two runs together), then 4, so that a machine
//! whose speed drifts, even within a round, weighs on every phase alike; then
//!
//! 5. logins alone, as many as the hasher takes (`ROLLCALL_HASH_CONCURRENCY`
//!    defaults to the cores less one), then the time of one hash.
//!
//! Within each round, after phase 3 and before its return, it drives the
//! yardstick of the session's cost: a bare async-graphql-poem server in the
//! same process, answering `{ __typename }` as it is (B) and after one Redis
//! GET per request on the same Redis (B+GET), both there and back. It prints
//! what share of its throughput the bare server keeps with its GET, beside
//! what share of Rollcall's unauthenticated throughput its authenticated
//! `{ __typename }` keeps: the session check costs no more than a bare GET
//! when the second is as large as the first.
//!
//! It prints each round, then for each phase the median and range over the
//! rounds of requests per second, p50/p99 latency and CPU time per request,
//! and of the share of throughput each round lost to the session against its
//! own unauthenticated phase, with the mean of those losses and its 95%
//! confidence interval. `BENCH_ROUNDS` (default 5) and `BENCH_SECONDS`, the
//! length of each run of a phase (default 2), set its length.
//!
//! On PostgreSQL it measures two setups, one after the other, each with a
//! server and a database of its own: first Redis on the machine's last core,
//! which a Redis of the benchmark's own has to itself while the server and the
//! load generator share the others (as a deployment keeps Redis off the
//! application's cores); then the shared Redis on the same cores as everything
//! else, as on a small deployment. `BENCH_SHARED_CORES=1` measures the second
//! alone.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

#[path = "../tests/common/mod.rs"]
mod common;
mod load;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    Backend, PASSWORD, TestApp,
    services::{PrivateRedis, free_port},
};
use load::{CONNECTIONS, Figures, drive, drive_each, mean_within, report, setting, spread};
use serde_json::{Value, json};

/// One round of the phases that take turns.
struct Round {
    anonymous: Figures,
    session_only: Figures,
    authenticated: Figures,
    under_logins: Figures,
    bare: Figures,
    bare_get: Figures,
}

/// A bare async-graphql-poem server, the yardstick of what a session check
/// may cost: a schema of one field and nothing else, and with a Redis
/// connection one GET per request, of the key its bearer token names,
/// before executing.
mod bare {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
    use poem::{
        EndpointExt, Request, Route, Server, handler, listener::TcpListener, post, web::Data,
    };
    use redis::{AsyncCommands, aio::MultiplexedConnection};

    pub struct Query;

    #[Object]
    impl Query {
        async fn ok(&self) -> bool {
            true
        }
    }

    #[derive(Clone)]
    struct Bare {
        schema: Schema<Query, EmptyMutation, EmptySubscription>,
        redis: Option<MultiplexedConnection>,
    }

    #[handler]
    async fn graphql(
        request: &Request,
        query: GraphQLRequest,
        bare: Data<&Bare>,
    ) -> GraphQLResponse {
        if let Some(redis) = &bare.redis {
            let token = request
                .header("authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let _: Option<String> = redis.clone().get(format!("bare:{token}")).await.unwrap();
        }
        bare.schema.execute(query.0).await.into()
    }

    /// Start one on a free port, with a key of a session's size for each of
    /// `tokens` when it reads `redis`: its address.
    pub async fn start(redis: Option<(&str, &[String])>) -> String {
        let redis = match redis {
            Some((url, tokens)) => {
                let mut connection = redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                for token in tokens {
                    let () = connection
                        .set_ex(format!("bare:{token}"), "x".repeat(160), 3_600)
                        .await
                        .unwrap();
                }
                Some(connection)
            }
            None => None,
        };
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let port = super::free_port();
        let app = Route::new()
            .at("/graphql", post(graphql))
            .data(Bare { schema, redis });
        tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        format!("http://127.0.0.1:{port}")
    }
}

/// One phase's figures in a round.
type Phase = fn(&Round) -> &Figures;

/// Drive `me` for `seconds` while 20 logins a second are made beside it: the
/// figures, the logins that succeeded and those that failed.
async fn beside_logins(app: &TestApp, tokens: &[String], seconds: u64) -> (Figures, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (logged_in, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let logins = {
        let (address, stop) = (app.address.clone(), stop.clone());
        let (logged_in, refused) = (logged_in.clone(), refused.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut sent = Vec::new();
            let mut i = 0;
            // One login every 50 ms, each on its own: a slow one does not
            // hold back the next.
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (client, address) = (client.clone(), address.clone());
                let (logged_in, refused) = (logged_in.clone(), refused.clone());
                let email = format!("login{}@bench.test", i % 4);
                i += 1;
                sent.push(tokio::spawn(async move {
                    let response = client
                        .post(format!("{address}/graphql"))
                        .json(&json!({
                            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                            "variables": { "e": email, "p": PASSWORD }
                        }))
                        .send()
                        .await;
                    let ok = match response {
                        Ok(r) => r.json::<Value>().await.is_ok_and(|b| b["errors"].is_null()),
                        Err(_) => false,
                    };
                    let counter = if ok { &logged_in } else { &refused };
                    counter.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for login in sent {
                let _ = login.await;
            }
        })
    };
    let figures = drive(&app.address, Some(tokens), "{ me { id email } }", seconds).await;
    stop.store(true, Ordering::Relaxed);
    logins.await.unwrap();
    (
        figures,
        logged_in.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

/// The server binary's allocator, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Give Redis the last core to itself and this process (the server and the
/// load generator) the others, as a deployment keeps Redis off the
/// application's cores: a Redis of its own, or `None` when this machine cannot
/// (one core, no `taskset`, no `redis-server`) or `BENCH_SHARED_CORES` is set.
fn redis_on_its_own_core() -> Option<(PrivateRedis, usize)> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 || std::env::var_os("BENCH_SHARED_CORES").is_some() {
        return None;
    }
    let redis = PrivateRedis::start(free_port())?;
    let pinned = redis.pin_to(cores - 1) && pin_to(&format!("0-{}", cores - 2));
    pinned.then_some((redis, cores - 1))
}

/// Let this process (every thread it has) run on every core again.
fn every_core() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // What it was pinned to is all `available_parallelism` sees now.
    let all = std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.matches("processor\t").count())
        .unwrap_or(cores)
        .max(cores);
    pin_to(&format!("0-{}", all - 1));
}

/// Pin this process, every thread it has, to `cores` (a `taskset` list).
fn pin_to(cores: &str) -> bool {
    std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let backend = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { *common::backends().await.last().unwrap() });
    let seconds = setting("BENCH_SECONDS", 2);
    let rounds = setting("BENCH_ROUNDS", 5);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // First Redis on a core of its own, as a deployment keeps it; then
    // everything on the same cores, as on a small deployment. The cores are
    // set before each runtime starts its threads, so that they inherit them.
    if backend == Backend::Production
        && let Some((redis, core)) = redis_on_its_own_core()
    {
        let note = format!("Redis: one of its own on core {core}, which nothing else uses");
        runtime().block_on(measure(backend, Some(redis.url()), &note, seconds, rounds));
        drop(redis);
        every_core();
        println!();
    }
    let note = match backend {
        Backend::Production => {
            "Redis: the shared one, on the same cores as the server and the load generator"
        }
        Backend::Embedded => "",
    };
    runtime().block_on(async {
        measure(backend, None, note, seconds, rounds).await;
        println!("{}", hash_time().await);
    });
}

/// Run every phase against a server of its own, on `redis_url` (the shared
/// Redis without it), and print the figures under `note`.
async fn measure(
    backend: Backend,
    redis_url: Option<String>,
    note: &str,
    seconds: u64,
    rounds: u64,
) {
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage, |c| {
        c.db_pool_size = 32;
        c.hash_concurrency = 0;
        if let Some(url) = redis_url.clone() {
            c.redis_url = Some(url);
        }
    })
    .await;
    let org = app.organization("Bench Clinic").await;
    for i in 0..4 {
        app.user(org, &format!("login{i}@bench.test"), &["Billing"])
            .await;
    }
    // Each connection has a session of its own, of a user of its own, as
    // 32 staff members at their desks would.
    let mut tokens = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let email = format!("staff{i}@bench.test");
        app.user(org, &email, &["Admin"]).await;
        tokens.push(app.login(&email, PASSWORD).await);
    }
    println!(
        "backend: {}; {CONNECTIONS} connections, one session each; {rounds} rounds of {seconds} s per phase; {} cores for the server and the load generator",
        match backend {
            Backend::Production => "PostgreSQL + Redis",
            Backend::Embedded => "SQLite + in-process sessions",
        },
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    if !note.is_empty() {
        println!("{note}");
    }

    // The yardstick, on the same Redis.
    let redis_url = redis_url.unwrap_or_else(common::redis_url);
    let bare = bare::start(None).await;
    let bare_get = bare::start(Some((&redis_url, &tokens))).await;

    // Warm up connections, caches and the pool.
    drive(&app.address, Some(&tokens), "{ me { id email } }", 2).await;
    drive(&bare_get, Some(&tokens), "{ __typename }", 1).await;

    // The phases take turns, round after round, so that a machine that
    // slows down or speeds up meanwhile weighs on all of them alike; each
    // round's losses are against that round's unauthenticated figure.
    let mut rounds_seen: Vec<Round> = Vec::new();
    for round in 1..=rounds {
        let anonymous = drive(&app.address, None, "{ __typename }", seconds).await;
        let session_only = drive(&app.address, Some(&tokens), "{ __typename }", seconds).await;
        let authenticated =
            drive(&app.address, Some(&tokens), "{ me { id email } }", seconds).await;
        let bare_alone = drive(&bare, None, "{ __typename }", seconds).await;
        let with_get = drive(&bare_get, Some(&tokens), "{ __typename }", seconds).await;
        // Then back in the opposite order: a machine speeding up or
        // slowing down through the round weighs on each phase alike.
        let with_get =
            with_get.and(drive(&bare_get, Some(&tokens), "{ __typename }", seconds).await);
        let bare_alone = bare_alone.and(drive(&bare, None, "{ __typename }", seconds).await);
        let authenticated = authenticated
            .and(drive(&app.address, Some(&tokens), "{ me { id email } }", seconds).await);
        let session_only =
            session_only.and(drive(&app.address, Some(&tokens), "{ __typename }", seconds).await);
        let anonymous = anonymous.and(drive(&app.address, None, "{ __typename }", seconds).await);
        let (under_logins, logged_in, refused) = beside_logins(&app, &tokens, seconds).await;
        println!(
            "round {round}: {:.0} / {:.0} / {:.0} / {:.0} req/s; logins beside it {:.1}/s ({refused} failed); bare {:.0} / with a GET {:.0} req/s",
            anonymous.requests_per_second(),
            session_only.requests_per_second(),
            authenticated.requests_per_second(),
            under_logins.requests_per_second(),
            logged_in as f64 / seconds as f64,
            bare_alone.requests_per_second(),
            with_get.requests_per_second(),
        );
        rounds_seen.push(Round {
            anonymous,
            session_only,
            authenticated,
            under_logins,
            bare: bare_alone,
            bare_get: with_get,
        });
    }
    println!();
    let phases: [(&str, Phase); 6] = [
        ("unauthenticated { __typename }", |r| &r.anonymous),
        ("authenticated { __typename }", |r| &r.session_only),
        ("authenticated { me { id email } }", |r| &r.authenticated),
        ("authenticated, with 20 logins/s hashed", |r| {
            &r.under_logins
        }),
        ("bare async-graphql-poem { __typename }", |r| &r.bare),
        ("the same after one Redis GET", |r| &r.bare_get),
    ];
    for (name, phase) in phases {
        let figures: Vec<&Figures> = rounds_seen.iter().map(phase).collect();
        report(name, &figures);
    }
    let losses = |phase: Phase| {
        rounds_seen.iter().map(move |r| {
            (1.0 - phase(r).requests_per_second() / r.anonymous.requests_per_second()) * 100.0
        })
    };
    println!(
        "throughput lost to the session lookup alone: {}%; to the session and me: {}%",
        spread(losses(|r| &r.session_only)),
        spread(losses(|r| &r.authenticated))
    );
    // A round's figures swing by tens of percent on a shared machine; over
    // many rounds the mean settles, and its interval says how far.
    println!(
        "mean over the rounds, with its 95% confidence interval: {}% for the lookup alone; {}% for the session and me",
        mean_within(losses(|r| &r.session_only)),
        mean_within(losses(|r| &r.authenticated))
    );
    // The aim: the session check costs no more than one bare GET, each
    // against its own server without it, round by round.
    let kept = |with: Phase, without: Phase| {
        rounds_seen
            .iter()
            .map(move |r| with(r).requests_per_second() / without(r).requests_per_second() * 100.0)
    };
    println!(
        "throughput kept: Rollcall's authenticated {{ __typename }} {}% of its unauthenticated (mean {}%); the bare server with one GET {}% of its own without (mean {}%)",
        spread(kept(|r| &r.session_only, |r| &r.anonymous)),
        mean_within(kept(|r| &r.session_only, |r| &r.anonymous)),
        spread(kept(|r| &r.bare_get, |r| &r.bare)),
        mean_within(kept(|r| &r.bare_get, |r| &r.bare)),
    );
    // The same from CPU time per request: the throughput a saturated
    // core loses, 1 - (CPU per anonymous request / CPU per request).
    let lost_cpu = |phase: Phase| {
        spread(
            rounds_seen
                .iter()
                .map(|r| (1.0 - r.anonymous.cpu_us() / phase(r).cpu_us()) * 100.0),
        )
    };
    println!(
        "by CPU time per request, lost to the session lookup alone: {}%; to the session and me: {}%",
        lost_cpu(|r| &r.session_only),
        lost_cpu(|r| &r.authenticated)
    );
    println!(
        "p99 with logins / without: {}",
        spread(
            rounds_seen
                .iter()
                .map(|r| r.under_logins.p99_ms() / r.authenticated.p99_ms())
        )
    );

    // Logins alone, as fast as the hasher takes them: staff logging in at
    // once, each of the four with eight attempts in flight (an account
    // takes ten at once: attempts are counted before they are judged).
    let logins: Vec<String> = (0..4)
            .map(|i| {
                format!(
                    "mutation {{ login(email: \"login{i}@bench.test\", password: \"{PASSWORD}\") {{ token }} }}"
                )
            })
            .collect();
    let logins_alone = drive_each(&app.address, None, &logins, seconds).await;
    report(
        "login (a password verified, a session made)",
        &[&logins_alone],
    );
    app.stop().await;
}

/// How long one password hash takes here, median of 20.
async fn hash_time() -> String {
    use rollcall::auth::password::{Hasher, ITERATIONS, MEMORY_KIB, PARALLELISM, Password};
    let hasher = Hasher::new(1);
    let password = Password::parse(PASSWORD, Default::default(), None, "p").unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        hasher.hash(&password).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    format!(
        "one argon2id hash (m = {MEMORY_KIB} KiB, t = {ITERATIONS}, p = {PARALLELISM}): {:.1} ms (median of 20)",
        times[10].as_secs_f64() * 1000.0
    )
}
