//! Private PostgreSQL and Redis servers, each on its own port, for the fault
//! tests: stopping one disturbs no other test. They are real servers from the
//! machine's own packages, started and stopped as an operator would.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A port the system just handed out and released.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether a missing server may skip the test: never with `CI=true`.
pub fn skip_without(what: &str) {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{what} is needed in CI"
    );
    eprintln!("\n*** SKIPPING: {what} cannot be started here. ***\n");
}

/// A Redis server of its own.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl PrivateRedis {
    /// A Redis that keeps nothing: a restart loses every key.
    pub fn start(port: u16) -> Option<Self> {
        Self::start_with(port, &[])
    }

    /// A Redis that writes every change to an append-only file in `dir` before
    /// answering, as production runs it: a restart keeps the sessions.
    pub fn start_durable(port: u16, dir: &std::path::Path) -> Option<Self> {
        let dir = dir.to_str()?;
        Self::spawn(
            port,
            &[
                "--save",
                "",
                "--dir",
                dir,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
        )
    }

    /// A Redis that keeps nothing, started with more `options`
    /// (`--replicaof`, say).
    pub fn start_with(port: u16, options: &[&str]) -> Option<Self> {
        // Its working directory, where a replica's initial sync lands.
        let dir = tempfile::tempdir().ok()?;
        let mut all = vec![
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.path().to_str()?,
        ];
        all.extend_from_slice(options);
        let mut redis = Self::spawn(port, &all)?;
        redis.dir = Some(dir);
        Some(redis)
    }

    /// A Sentinel watching the primary on `primary_port` as `service`, which
    /// declares it down after one second, with its configuration file in `dir`.
    pub fn sentinel(
        port: u16,
        service: &str,
        primary_port: u16,
        dir: &std::path::Path,
    ) -> Option<Self> {
        let config = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &config,
            format!(
                "sentinel monitor {service} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 5000\n"
            ),
        )
        .ok()?;
        let child = Command::new("redis-server")
            .arg(&config)
            .args([
                "--sentinel",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Self::started(port, child)
    }

    fn spawn(port: u16, options: &[&str]) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Self::started(port, child)
    }

    fn started(port: u16, child: Child) -> Option<Self> {
        let mut redis = Self {
            port,
            child: Some(child),
            dir: None,
        };
        if wait_for_port(port, Duration::from_secs(5)) {
            Some(redis)
        } else {
            redis.stop();
            None
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Run it on `core` only; whether that worked.
    pub fn pin_to(&self, core: usize) -> bool {
        self.child.as_ref().is_some_and(|child| {
            Command::new("taskset")
                .args(["-a", "-p", "-c", &core.to_string(), &child.id().to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Kill it outright: it keeps nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of its own, in a temporary directory, run by the
/// `postgres` system user when the tests run as root (PostgreSQL refuses root).
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

impl PrivatePostgres {
    /// Create and start a cluster; `None` when this machine has no PostgreSQL
    /// server binaries.
    pub fn start() -> Option<Self> {
        let bin = postgres_bin()?;
        let dir = tempfile::tempdir().ok()?;
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .ok()?;
            if !status.success() {
                return None;
            }
        }
        let mut postgres = Self {
            port: free_port(),
            bin,
            dir,
            running: false,
        };
        let data = postgres.data();
        let initdb = postgres
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !initdb.success() {
            return None;
        }
        postgres.restart().then_some(postgres)
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Start the stopped cluster again on the same port; whether it answers.
    pub fn restart(&mut self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let started = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-w", "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        self.running = started && wait_for_port(self.port, Duration::from_secs(10));
        self.running
    }

    /// Stop it as a crash would: every connection dropped at once, nothing
    /// flushed politely.
    pub fn crash(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.crash();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// The server binaries: `PG_BINDIR`, else the newest Debian-style install,
/// else whatever `initdb` is on the path.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().or_else(|| {
        Command::new("initdb")
            .arg("--version")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|_| PathBuf::new())
    })
}

/// A CA (`ca.pem`) and a certificate for localhost and 127.0.0.1 signed by it
/// (`server.pem`, `server.key`) in `dir`, made with `openssl`; whether it worked.
pub fn tls_certificates(dir: &std::path::Path) -> bool {
    let run = |args: &str| {
        Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=Test-CA")
        && run("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost")
        && run(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -out server.pem -days 1 -extfile ext",
        )
}
