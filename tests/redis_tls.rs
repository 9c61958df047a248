//! `REDIS_URL=rediss://…`: sessions kept in a Redis reached over TLS, with the
//! server's certificate verified against the trusted roots (here a private
//! CA, given as `SSL_CERT_FILE` as operators do), and refused when it does not
//! verify.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::process::Command;

use common::{
    Backend, Storage, TestApp,
    services::{PrivateRedis, free_port, skip_without, tls_certificates},
};
use serde_json::Value;

#[tokio::test]
async fn sessions_live_in_a_redis_reached_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    if !tls_certificates(dir.path()) {
        skip_without("openssl");
        return;
    }
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let port = free_port();
    let Some(_redis) = PrivateRedis::start_with(
        port,
        &format!(
            "--port 0 --tls-port {port} --tls-cert-file {} --tls-key-file {} \
             --tls-ca-cert-file {} --tls-auth-clients no",
            file("server.pem"),
            file("server.key"),
            file("ca.pem")
        )
        .split_whitespace()
        .collect::<Vec<_>>(),
    ) else {
        skip_without("redis-server with TLS");
        return;
    };
    let url = format!("rediss://localhost:{port}");
    let storage = Storage::new(Backend::Embedded).await;
    let server = |trust: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        command
            .env("DATABASE_URL", &storage.database_url)
            .env("REDIS_URL", &url)
            .env("ROLLCALL_REDIS_PREFIX", &storage.redis_prefix)
            .env("ROLLCALL_SECURE_COOKIES", "false");
        match trust {
            Some(ca) => command.env("SSL_CERT_FILE", ca),
            // Only the system's roots, which do not hold the test CA.
            None => command.env_remove("SSL_CERT_FILE"),
        };
        command
    };

    // A certificate that does not verify: the server refuses to start.
    let refused = server(None).arg("serve").output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "started without a trusted certificate"
    );
    assert!(
        said.contains("Redis") && said.contains("certificate"),
        "{said}"
    );

    // Trusted: logins keep their sessions in that Redis.
    let (mut child, address) = common::spawn_binary(server(Some(&file("ca.pem"))));
    let db = rollcall::app::connect_database(&storage.config())
        .await
        .unwrap();
    let app = TestApp::attach(storage.clone(), db, address);
    let (_, token) = app.admin_in("Encrypted Clinic", "tls@clinic.test").await;
    let (status, body) = app
        .graphql(Some(&token), "{ me { email } }", Value::Null)
        .await;
    assert_eq!(
        (status, body["data"]["me"]["email"].as_str()),
        (200, Some("tls@clinic.test")),
        "{body}"
    );
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(
        ready["sessionStore"]["kind"].as_str(),
        Some("redis"),
        "{ready}"
    );
    assert_eq!(
        ready["sessionStore"]["status"].as_str(),
        Some("up"),
        "{ready}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
