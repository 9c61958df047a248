//! The load generator the HTTP benchmarks share: keep-alive clients, each
//! sending its next request as soon as the last one is answered, and the
//! figures of a run (throughput, latency, CPU time per request).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::json;

/// Connections a run drives at once, as `wrk -c 32` would.
pub const CONNECTIONS: usize = 32;

pub struct Figures {
    pub errors: u64,
    pub latencies: Histogram<u64>,
    pub seconds: u64,
    /// The CPU time this process (server and load generator) used meanwhile.
    pub cpu: Option<Duration>,
    /// The CPU time the server's own threads used meanwhile, when the server
    /// runs on a runtime of its own, its threads named [`SERVER_THREADS`].
    pub server_cpu: Option<Duration>,
    /// The CPU time PostgreSQL's processes used meanwhile.
    pub database_cpu: Option<Duration>,
    /// The CPU time the whole machine used meanwhile: the server, the load
    /// generator, PostgreSQL and Redis.
    pub machine_cpu: Option<Duration>,
}

impl Figures {
    pub fn requests(&self) -> u64 {
        self.latencies.len()
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests() as f64 / self.seconds as f64
    }

    pub fn p50_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.99) as f64 / 1000.0
    }

    fn per_request(&self, cpu: Option<Duration>) -> f64 {
        cpu.map_or(f64::NAN, |cpu| {
            cpu.as_secs_f64() * 1e6 / self.requests().max(1) as f64
        })
    }

    /// CPU time per request, in microseconds: what throughput is bound by
    /// once the cores are saturated, without the drift of the machine's
    /// speed from one second to the next that requests per second carry.
    pub fn cpu_us(&self) -> f64 {
        self.per_request(self.cpu)
    }

    /// The server's threads' CPU time per request, in microseconds.
    pub fn server_cpu_us(&self) -> f64 {
        self.per_request(self.server_cpu)
    }

    /// PostgreSQL's CPU time per request, in microseconds.
    pub fn database_cpu_us(&self) -> f64 {
        self.per_request(self.database_cpu)
    }

    /// The machine's CPU time per request, in microseconds.
    pub fn machine_cpu_us(&self) -> f64 {
        self.per_request(self.machine_cpu)
    }

    /// Two runs of one phase as one.
    pub fn and(mut self, other: Self) -> Self {
        self.latencies.add(other.latencies).unwrap();
        self.seconds += other.seconds;
        self.errors += other.errors;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
        self.server_cpu = self.server_cpu.zip(other.server_cpu).map(|(a, b)| a + b);
        self.database_cpu = self
            .database_cpu
            .zip(other.database_cpu)
            .map(|(a, b)| a + b);
        self.machine_cpu = self.machine_cpu.zip(other.machine_cpu).map(|(a, b)| a + b);
        self
    }
}

/// Drive `query` from `CONNECTIONS` clients for `seconds`, client `i` with
/// session `tokens[i]` (none without `tokens`).
pub async fn drive(address: &str, tokens: Option<&[String]>, query: &str, seconds: u64) -> Figures {
    drive_each(address, tokens, &[query.to_owned()], seconds).await
}

/// [`drive`] with connection `i` sending `queries[i % queries.len()]`.
pub async fn drive_each(
    address: &str,
    tokens: Option<&[String]>,
    queries: &[String],
    seconds: u64,
) -> Figures {
    let url = format!("{address}/graphql");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let before = Cpu::now();
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
    let used = Cpu::now().since(&before);
    Figures {
        errors,
        latencies: all,
        seconds,
        cpu: used.process,
        server_cpu: used.server,
        database_cpu: used.database,
        machine_cpu: used.machine,
    }
}

/// CPU time used so far, read from `/proc` (Linux; `None` elsewhere).
struct Cpu {
    process: Option<Duration>,
    /// Each server thread's, by thread id: a thread that ends meanwhile (the
    /// blocking pool lets idle ones go) must not count as time given back.
    server: Option<HashMap<String, Duration>>,
    /// Each PostgreSQL process's, by process id, likewise.
    database: Option<HashMap<String, Duration>>,
    machine: Option<Duration>,
}

/// CPU time used between two readings.
struct Used {
    process: Option<Duration>,
    server: Option<Duration>,
    database: Option<Duration>,
    machine: Option<Duration>,
}

/// Threads whose names start with this are the server's: a benchmark that
/// runs the server on a runtime of its own names its threads so.
pub const SERVER_THREADS: &str = "server";

impl Cpu {
    fn now() -> Self {
        Self {
            process: ticks_of_stat("/proc/self/stat"),
            server: named_in("/proc/self/task", SERVER_THREADS),
            database: named_in("/proc", "postgres"),
            machine: machine_ticks(),
        }
    }

    fn since(&self, before: &Self) -> Used {
        let minus =
            |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| a.saturating_sub(b));
        Used {
            process: minus(self.process, before.process),
            server: each_since(self.server.as_ref(), before.server.as_ref()),
            database: each_since(self.database.as_ref(), before.database.as_ref()),
            machine: minus(self.machine, before.machine),
        }
    }
}

/// The CPU time of each task under `dir` (`/proc` for processes,
/// `/proc/self/task` for this process's threads) whose name starts with
/// `prefix`, by its id; `None` when there are none.
fn named_in(dir: &str, prefix: &str) -> Option<HashMap<String, Duration>> {
    let mut tasks = HashMap::new();
    for task in std::fs::read_dir(dir).ok()?.flatten() {
        let path = task.path();
        let named =
            std::fs::read_to_string(path.join("comm")).is_ok_and(|name| name.starts_with(prefix));
        if named && let Some(used) = ticks_of_stat(path.join("stat")) {
            tasks.insert(task.file_name().to_string_lossy().into_owned(), used);
        }
    }
    (!tasks.is_empty()).then_some(tasks)
}

/// What the tasks read by [`named_in`] used since `before`: a task that ended
/// meanwhile counts nothing, rather than time given back.
fn each_since(
    now: Option<&HashMap<String, Duration>>,
    before: Option<&HashMap<String, Duration>>,
) -> Option<Duration> {
    now.map(|now| {
        now.iter()
            .map(|(task, used)| {
                let earlier = before.and_then(|b| b.get(task)).copied();
                used.saturating_sub(earlier.unwrap_or_default())
            })
            .sum()
    })
}

/// Clock ticks of 10 ms, as `/proc` counts them.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// utime + stime of a `/proc/…/stat` file.
fn ticks_of_stat(path: impl AsRef<std::path::Path>) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(ticks(
        fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    ))
}

/// Busy time of all cores from `/proc/stat`: every column but idle and iowait.
fn machine_ticks() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let columns: Vec<u64> = line
        .split_whitespace()
        .map(|c| c.parse().ok())
        .collect::<Option<_>>()?;
    let busy = columns
        .iter()
        .enumerate()
        // user nice system idle iowait irq softirq steal (guest time is
        // counted in user already).
        .filter(|(i, _)| !matches!(i, 3 | 4) && *i < 8)
        .map(|(_, n)| n)
        .sum();
    Some(ticks(busy))
}

/// The median of some figures, and their range.
pub fn spread(values: impl Iterator<Item = f64>) -> String {
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
pub fn mean_within(values: impl Iterator<Item = f64>) -> String {
    let values: Vec<f64> = values.collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{mean:.1}");
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{mean:.1} ± {:.1}", 1.96 * (variance / n).sqrt())
}

/// A phase over every round: median and range of each figure. CPU time per
/// request is the process's (server and load generator), the server's own
/// threads' where they are told apart, PostgreSQL's, and the machine's (with
/// Redis too).
pub fn report(name: &str, rounds: &[&Figures]) {
    let of = |figure: fn(&Figures) -> f64| spread(rounds.iter().map(|f| figure(f)));
    let server = if rounds.iter().all(|f| f.server_cpu.is_some()) {
        format!("server {} ", of(Figures::server_cpu_us))
    } else {
        String::new()
    };
    let database = if rounds.iter().all(|f| f.database_cpu.is_some()) {
        format!("PostgreSQL {} ", of(Figures::database_cpu_us))
    } else {
        String::new()
    };
    println!(
        "{name:<40} {} req/s   p50 {} ms   p99 {} ms   CPU µs/request: process {} {server}{database}machine {}   errors {}",
        of(|f| f.requests_per_second().round()),
        of(Figures::p50_ms),
        of(Figures::p99_ms),
        of(Figures::cpu_us),
        of(Figures::machine_cpu_us),
        rounds.iter().map(|f| f.errors).sum::<u64>()
    );
}

/// A whole number setting from the environment, or `default`.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}
