//! Redis stopped and restarted under a running server: requests that need a
//! session answer SERVICE_UNAVAILABLE (503) quickly, never a hang or access
//! without a valid session, and everything works again without a restart.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Backend, Storage, TestApp, error_code,
    services::{PrivateRedis, free_port, skip_without},
};
use serde_json::Value;

#[tokio::test]
async fn a_redis_outage_answers_503_quickly_and_recovers_without_a_restart() {
    let port = free_port();
    let Some(mut redis) = PrivateRedis::start(port) else {
        skip_without("redis-server");
        return;
    };
    let storage = Storage::new(Backend::Embedded).await;
    let app = TestApp::spawn_with(storage, |config| {
        config.redis_url = Some(format!("redis://127.0.0.1:{}", redis.port));
        config.redis_timeout_ms = 500;
    })
    .await;
    let (_, token) = app.admin_in("Outage Clinic", "oncall@outage.test").await;

    redis.stop();
    let started = Instant::now();
    let (status, body) = app
        .graphql(Some(&token), "{ me { email } }", Value::Null)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        (status, error_code(&body)),
        (503, "SERVICE_UNAVAILABLE"),
        "{body}"
    );
    assert!(
        body.get("data").is_none_or(Value::is_null),
        "no data without a valid session: {body}"
    );

    let (status, body) = app
        .graphql(None, "mutation { login(email: \"oncall@outage.test\", password: \"Correct horse 42\") { token } }", Value::Null)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (503, "SERVICE_UNAVAILABLE"),
        "{body}"
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        (
            ready["database"].as_str(),
            ready["sessionStore"]["status"].as_str()
        ),
        (Some("up"), Some("down"))
    );

    // Back again: this Redis kept nothing, so the old session is gone, and a new
    // login works without restarting the server.
    let _redis = PrivateRedis::start(port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        let (_, body) = app
            .graphql(None, "mutation { login(email: \"oncall@outage.test\", password: \"Correct horse 42\") { token } }", Value::Null)
            .await;
        if let Some(token) = body["data"]["login"]["token"].as_str() {
            break token.to_owned();
        }
        assert!(Instant::now() < deadline, "no recovery: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, body) = app
        .graphql(Some(&token), "{ me { email } }", Value::Null)
        .await;
    assert_eq!(
        (status, body["data"]["me"]["email"].as_str()),
        (200, Some("oncall@outage.test"))
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);
}
