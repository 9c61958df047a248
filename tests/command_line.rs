//! The `rollcall` binary as an operator runs it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

/// Environment that must not leak in from the developer's shell.
fn clean(command: &mut Command) -> &mut Command {
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ROLLCALL_BIND",
        "ROLLCALL_PUBLIC_URL",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn serve_with_no_configuration_prints_the_first_admin_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = clean(&mut Command::new(BIN))
        .current_dir(dir.path())
        .env("ROLLCALL_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("password:") {
        assert!(
            stdout.read_line(&mut printed).unwrap() > 0,
            "no admin printed: {printed}"
        );
    }
    assert!(printed.contains("admin@rollcall.local"), "{printed}");
    assert!(
        dir.path().join("rollcall.db").exists(),
        "SQLite file in the working directory"
    );

    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(stderr.contains("sessions are kept in process"), "{stderr}");
    assert!(
        !stderr.contains(printed.split("password:").nth(1).unwrap().trim()),
        "the password must not reach the log"
    );

    // A second start on the same database creates nobody.
    let again = clean(&mut Command::new(BIN))
        .current_dir(dir.path())
        .args(["create-admin", "--email", "admin@rollcall.local"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn create_admin_keeps_a_given_password_and_migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        clean(&mut Command::new(BIN))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["migrate"]).status.success());
    assert!(run(&["migrate"]).status.success());
    let created = run(&[
        "create-admin",
        "--email",
        "Ops@Example.org",
        "--password",
        "a strong secret 9",
        "--organization",
        "Ops",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        stdout.contains("ops@example.org") && !stdout.contains("Generated"),
        "{stdout}"
    );
    let weak = run(&[
        "create-admin",
        "--email",
        "two@example.org",
        "--password",
        "password1",
    ]);
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("most common"));
}

#[test]
fn export_schema_prints_the_committed_schema_and_help_lists_every_variable() {
    let output = Command::new(BIN).arg("export-schema").output().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
    let help = String::from_utf8(Command::new(BIN).arg("--help").output().unwrap().stdout).unwrap();
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ROLLCALL_BIND",
        "ROLLCALL_MAX_DEPTH",
        "ROLLCALL_GRAPHIQL",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
    assert!(help.contains("[default: 127.0.0.1:8000]"));
}

#[test]
fn a_request_in_flight_at_sigterm_completes_and_the_log_is_json_when_asked() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = clean(&mut Command::new(BIN))
        .current_dir(dir.path())
        .env("ROLLCALL_BIND", format!("127.0.0.1:{port}"))
        .env("ROLLCALL_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("password:") {
        assert!(stdout.read_line(&mut printed).unwrap() > 0, "{printed}");
    }
    let started = Instant::now();
    let mut stream = loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // Half a request is on the wire when the signal arrives; the rest follows.
    let body = r#"{"query":"{ __typename }"}"#;
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..8]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    stream.write_all(&body.as_bytes()[8..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""__typename":"Query""#), "{response}");

    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");

    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "request" && l["path"] == "/graphql" && l["status"] == 200),
        "{stderr}"
    );
}
