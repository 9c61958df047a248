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
//! It prints each round, then for each phase the median and range over the
//! rounds of requests per second, p50/p99 latency and CPU time per request,
//! and of the share of throughput each round lost to the session against its
//! own unauthenticated phase, with the mean of those losses and its 95%
//! confidence interval. `BENCH_ROUNDS` (default 5) and `BENCH_SECONDS`, the length of each
//! run of a phase (default 2), set its length. The server and the
//! load generator share the machine's cores but the last, which a Redis of the
//! benchmark's own has to itself (as a deployment keeps Redis off the
//! application's cores); `BENCH_SHARED_CORES=1` uses the shared Redis on the
//! same cores instead.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

#[path = "../tests/common/mod.rs"]
mod common;

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
use hdrhistogram::Histogram;
use serde_json::{Value, json};

const CONNECTIONS: usize = 32;

struct Figures {
    errors: u64,
    latencies: Histogram<u64>,
    seconds: u64,
    /// The CPU time this process (server and load generator) used meanwhile.
    cpu: Option<Duration>,
}

impl Figures {
    fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds as f64
    }

    fn p50_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.50) as f64 / 1000.0
    }

    fn p99_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.99) as f64 / 1000.0
    }

    /// CPU time per request, in microseconds: what throughput is bound by
    /// once the cores are saturated, without the drift of the machine's
    /// speed from one second to the next that requests per second carry.
    fn cpu_us(&self) -> f64 {
        self.cpu.map_or(f64::NAN, |cpu| {
            cpu.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64
        })
    }

    /// Two runs of one phase as one.
    fn and(mut self, other: Self) -> Self {
        self.latencies.add(other.latencies).unwrap();
        self.seconds += other.seconds;
        self.errors += other.errors;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
        self
    }
}

/// Drive `query` from `CONNECTIONS` clients for `seconds`, client `i` with
/// session `tokens[i]` (none without `tokens`).
async fn drive(app: &TestApp, tokens: Option<&[String]>, query: &str, seconds: u64) -> Figures {
    drive_each(app, tokens, &[query.to_owned()], seconds).await
}

/// [`drive`] with connection `i` sending `queries[i % queries.len()]`.
async fn drive_each(
    app: &TestApp,
    tokens: Option<&[String]>,
    queries: &[String],
    seconds: u64,
) -> Figures {
    let url = format!("{}/graphql", app.address);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_time();
    let mut workers = Vec::new();
    for i in 0..CONNECTIONS {
        // As a client does, it builds its header once, not per request.
        let authorization = tokens.map(|tokens| {
            let mut value = reqwest::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                tokens[i % tokens.len()]
            ))
            .unwrap();
            value.set_sensitive(true);
            value
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .http1_only()
            .build()
            .unwrap();
        let body = Arc::new(json!({ "query": queries[i % queries.len()] }).to_string());
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            let mut errors = 0;
            while Instant::now() < deadline {
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned());
                if let Some(authorization) = &authorization {
                    request = request.header(reqwest::header::AUTHORIZATION, authorization.clone());
                }
                let started = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => {
                        response.status().is_success()
                            && !response
                                .text()
                                .await
                                .unwrap_or_default()
                                .contains("\"errors\"")
                    }
                    Err(_) => false,
                };
                histogram
                    .record(started.elapsed().as_micros() as u64)
                    .unwrap();
                if !ok {
                    errors += 1;
                }
            }
            (histogram, errors)
        }));
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    let mut errors = 0;
    for worker in workers {
        let (histogram, e) = worker.await.unwrap();
        all.add(histogram).unwrap();
        errors += e;
    }
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Figures {
        errors,
        latencies: all,
        seconds,
        cpu,
    }
}

/// The CPU time this process has used so far, all its threads, from
/// `/proc/self/stat` (utime and stime, in ticks of 10 ms); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One round of the phases that take turns.
struct Round {
    anonymous: Figures,
    session_only: Figures,
    authenticated: Figures,
    under_logins: Figures,
}

/// One phase's figures in a round.
type Phase = fn(&Round) -> &Figures;

/// The median of some figures, and their range.
fn spread(values: impl Iterator<Item = f64>) -> String {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let (low, high) = (values[0], values[values.len() - 1]);
    let median = values[values.len() / 2];
    let digits = match high {
        h if h >= 1000.0 => 0,
        h if h >= 10.0 => 1,
        _ => 2,
    };
    format!("{median:.digits$} [{low:.digits$} – {high:.digits$}]")
}

/// The mean of some figures and the half-width of its 95% confidence interval
/// (normal approximation: meaningful from ten or so rounds).
fn mean_within(values: impl Iterator<Item = f64>) -> String {
    let values: Vec<f64> = values.collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.1}");
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.1} ± {:.1}", 1.96 * (variance / n).sqrt())
}

/// A phase over every round: median and range of each figure.
fn report(name: &str, rounds: &[&Figures]) {
    let of = |figure: fn(&Figures) -> f64| spread(rounds.iter().map(|f| figure(f)));
    println!(
        "{name:<40} {} req/s   p50 {} ms   p99 {} ms   CPU {} µs/request   errors {}",
        of(|f| f.requests_per_second().round()),
        of(Figures::p50_ms),
        of(Figures::p99_ms),
        of(Figures::cpu_us),
        rounds.iter().map(|f| f.errors).sum::<u64>()
    );
}

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
    let figures = drive(app, Some(tokens), "{ me { id email } }", seconds).await;
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
    let ours = format!("0-{}", cores - 2);
    let pinned = redis.pin_to(cores - 1)
        && std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", &ours, &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    pinned.then_some((redis, cores - 1))
}

fn main() {
    let backend = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { *common::backends().await.last().unwrap() });
    // Before the runtime starts its threads, so that they inherit the cores.
    let own_redis = (backend == Backend::Production)
        .then(redis_on_its_own_core)
        .flatten();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let setting = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        let seconds = setting("BENCH_SECONDS", 2);
        let rounds = setting("BENCH_ROUNDS", 5);
        let storage = common::Storage::new(backend).await;
        let redis_url = own_redis.as_ref().map(|(redis, _)| redis.url());
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
            app.user(org, &format!("login{i}@bench.test"), &["Billing"]).await;
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
        match (&own_redis, backend) {
            (Some((_, core)), _) => {
                println!("Redis: one of its own on core {core}, which nothing else uses");
            }
            (None, Backend::Production) => {
                println!("Redis: the shared one, on the same cores (BENCH_SHARED_CORES, or no taskset)");
            }
            (None, Backend::Embedded) => {}
        }

        // Warm up connections, caches and the pool.
        drive(&app, Some(&tokens), "{ me { id email } }", 2).await;

        // The phases take turns, round after round, so that a machine that
        // slows down or speeds up meanwhile weighs on all of them alike; each
        // round's losses are against that round's unauthenticated figure.
        let mut rounds_seen: Vec<Round> = Vec::new();
        for round in 1..=rounds {
            let anonymous = drive(&app, None, "{ __typename }", seconds).await;
            let session_only = drive(&app, Some(&tokens), "{ __typename }", seconds).await;
            let authenticated = drive(&app, Some(&tokens), "{ me { id email } }", seconds).await;
            // Then back in the opposite order: a machine speeding up or
            // slowing down through the round weighs on each phase alike.
            let authenticated =
                authenticated.and(drive(&app, Some(&tokens), "{ me { id email } }", seconds).await);
            let session_only =
                session_only.and(drive(&app, Some(&tokens), "{ __typename }", seconds).await);
            let anonymous = anonymous.and(drive(&app, None, "{ __typename }", seconds).await);
            let (under_logins, logged_in, refused) = beside_logins(&app, &tokens, seconds).await;
            println!(
                "round {round}: {:.0} / {:.0} / {:.0} / {:.0} req/s; logins beside it {:.1}/s ({refused} failed)",
                anonymous.requests_per_second(),
                session_only.requests_per_second(),
                authenticated.requests_per_second(),
                under_logins.requests_per_second(),
                logged_in as f64 / seconds as f64,
            );
            rounds_seen.push(Round {
                anonymous,
                session_only,
                authenticated,
                under_logins,
            });
        }
        println!();
        let phases: [(&str, Phase); 4] = [
            ("unauthenticated { __typename }", |r| &r.anonymous),
            ("authenticated { __typename }", |r| &r.session_only),
            ("authenticated { me { id email } }", |r| &r.authenticated),
            ("authenticated, with 20 logins/s hashed", |r| &r.under_logins),
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
        let logins_alone = drive_each(&app, None, &logins, seconds).await;
        report("login (a password verified, a session made)", &[&logins_alone]);
        println!("{}", hash_time().await);
        app.stop().await;
    });
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
