//! The `rollcall` binary as an operator runs it.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

use std::{process::Command, time::Duration};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

/// Ask the server to stop, as an orchestrator does.
fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Environment that must not leak in from the developer's shell.
fn clean(command: &mut Command) -> &mut Command {
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ROLLCALL_BIND",
        "ROLLCALL_PUBLIC_URL",
        "ROLLCALL_SECRET_KEY",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn serve_with_no_configuration_prints_the_first_admin_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    clean(&mut command).current_dir(dir.path());
    let server = common::start_binary(command);
    let printed = server.stdout();
    assert!(printed.contains("admin@rollcall.local"), "{printed}");
    let password = printed.split("password:").nth(1).unwrap().trim().to_owned();
    assert!(!password.is_empty(), "{printed}");
    assert!(
        dir.path().join("rollcall.db").exists(),
        "SQLite file in the working directory"
    );
    let key = dir.path().join("rollcall.db.key");
    let encoded = std::fs::read_to_string(&key).expect("a key made beside the database");
    assert!(
        rollcall::auth::mfa::SecretKey::parse(&encoded).is_ok(),
        "{encoded}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    }

    terminate(&server.child);
    let (exit, _, stderr) = server.wait(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    assert!(stderr.contains("sessions are kept in process"), "{stderr}");
    assert!(
        !stderr.contains(&password),
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
fn on_postgresql_the_server_refuses_to_start_without_a_secret_key() {
    let mut command = Command::new(BIN);
    let output = clean(&mut command)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ROLLCALL_SECRET_KEY is not set"),
        "{stderr}"
    );

    let output = clean(&mut Command::new(BIN))
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("ROLLCALL_SECRET_KEY", "c2hvcnQ=")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds 5 bytes, not 32"), "{stderr}");
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
    let mut command = Command::new(BIN);
    clean(&mut command)
        .current_dir(dir.path())
        .env("RUST_LOG", "info");
    let server = common::start_binary(command);
    let mut stream =
        std::net::TcpStream::connect(server.address.trim_start_matches("http://")).unwrap();

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
    terminate(&server.child);
    std::thread::sleep(Duration::from_millis(300));
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    stream.write_all(&body.as_bytes()[8..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""__typename":"Query""#), "{response}");

    let (exit, _, stderr) = server.wait(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");

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
