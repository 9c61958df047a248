//! Webhooks end to end: a receiver the test starts gets each subscribed
//! event, signed so that the Standard Webhooks reference library (PyPI)
//! verifies it; a receiver that fails twice gets it on the third try with the
//! same `webhook-id`; redelivery sends it again; a 4xx is not retried; a
//! change that rolls back tells no one; private addresses are refused unless
//! allowed. Both backends.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{
    io::Write,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Backend, PASSWORD, Storage, TestApp, error_code, error_fields};
use serde_json::{Value, json};

/// What a receiver got: each request's headers and body.
#[derive(Clone, Debug)]
struct Received {
    headers: Value,
    body: String,
}

/// An HTTP receiver on a free port that answers each request with the next
/// status of `script` (then 200).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        use poem::{EndpointExt, Request, Route, handler, http::StatusCode, post, web::Data};
        #[derive(Clone)]
        struct Shared {
            got: Arc<Mutex<Vec<Received>>>,
            script: Arc<Mutex<Vec<u16>>>,
        }
        #[handler]
        fn hook(req: &Request, body: String, shared: Data<&Shared>) -> StatusCode {
            let headers: serde_json::Map<String, Value> = [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "content-type",
            ]
            .iter()
            .filter_map(|name| {
                req.headers()
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*name).to_owned(), json!(v)))
            })
            .collect();
            shared.got.lock().unwrap().push(Received {
                headers: Value::Object(headers),
                body,
            });
            let mut script = shared.script.lock().unwrap();
            let status = if script.is_empty() {
                200
            } else {
                script.remove(0)
            };
            StatusCode::from_u16(status).unwrap()
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            got: got.clone(),
            script: Arc::new(Mutex::new(script.to_vec())),
        };
        let app = Route::new().at("/hook", post(hook)).data(shared);
        let server = tokio::spawn(async move {
            let _ = poem::Server::new(poem::listener::TcpListener::bind(address))
                .run(app)
                .await;
        });
        let url = format!("http://{address}/hook");
        for _ in 0..50 {
            if reqwest::Client::new().get(&url).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            url,
            got,
            _server: server,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `n` requests came; what came.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Verify deliveries with the Standard Webhooks reference library.
fn verify(secret: &str, deliveries: &[Received]) -> (bool, String) {
    let mut child = Command::new(common::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/verify_webhooks.py"
        ))
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let stdin = child.stdin.as_mut().unwrap();
        for delivery in deliveries {
            let line = json!({ "headers": delivery.headers, "body": delivery.body });
            writeln!(stdin, "{line}").unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

const SAVE: &str = "mutation($i: WebhookInput!) { saveWebhook(input: $i) { secret webhook { id url events active } } }";
const DELIVERIES: &str = "query($w: ID!) { webhookDeliveries(webhookId: $w, first: 50) { edges { node { id messageId eventType status attempts lastError deliveredAt payload } } } }";

async fn app_allowing_private(backend: common::Backend) -> TestApp {
    TestApp::spawn_with(Storage::new(backend).await, |c| {
        c.outbound_allow_private = true;
        c.outbox_retry_seconds = 1;
    })
    .await
}

async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let data = app.ok(token, DELIVERIES, json!({ "w": webhook })).await;
    data["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

#[each_backend]
#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_signed_event_on_the_third_try(backend: Backend) {
    let app = app_allowing_private(backend).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let receiver = Receiver::start(&[500, 503]).await;
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": { "url": receiver.url, "events": ["user.created", "role.changed"] } }),
        )
        .await;
    let secret = saved["saveWebhook"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let webhook = saved["saveWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Listing never shows the secret again.
    let listed = app
        .ok(&admin, "{ webhooks { id events } }", json!({}))
        .await;
    assert!(!listed.to_string().contains(&secret));

    let created = app
        .ok(
            &admin,
            "mutation { createUser(input: { email: \"nia@clinic.test\", firstName: \"Nia\", lastName: \"Ode\" }) { user { id } } }",
            json!({}),
        )
        .await;
    let user_id = created["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A change that rolls back tells no one: the same email again is refused.
    let (_, refused) = app
        .graphql(
            Some(&admin),
            "mutation { createUser(input: { email: \"nia@clinic.test\", firstName: \"N\", lastName: \"O\" }) { user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "CONFLICT");

    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3, "{got:?}");
    let ids: Vec<&Value> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id for every attempt: {ids:?}"
    );
    let (verified, report) = verify(&secret, &got);
    assert!(verified, "{report}");
    assert!(report.contains("verified user.created"), "{report}");
    let payload: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(payload["type"], "user.created");
    assert_eq!(payload["data"]["targetId"], user_id.as_str());
    assert!(
        !got[2].body.contains("nia@clinic.test"),
        "no personal data: {}",
        got[2].body
    );
    // A signature made with another secret does not verify.
    let (verified, _) = verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[2..]);
    assert!(!verified);

    let log = deliveries(&app, &admin, &webhook).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "SENT");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["messageId"], *ids[0]);

    // Redelivery: the same event, the same webhook-id, a new log entry.
    app.ok(
        &admin,
        "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { id status } }",
        json!({ "d": log[0]["id"] }),
    )
    .await;
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].headers["webhook-id"], *ids[0]);
    assert_eq!(got[3].body, got[2].body);
    let (verified, report) = verify(&secret, &got[3..]);
    assert!(verified, "{report}");

    // An event nobody asked for is not sent.
    app.ok(
        &admin,
        "mutation($id: ID!) { updateUser(id: $id, input: { title: \"RN\" }) { id } }",
        json!({ "id": user_id }),
    )
    .await;
    app.ok(
        &admin,
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": user_id }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 4);
}

#[each_backend]
#[tokio::test]
async fn a_refusal_is_not_retried_and_a_deleted_webhook_is_not_called(backend: Backend) {
    let app = app_allowing_private(backend).await;
    let (_, admin) = app.admin_in("Clinic", "admin@clinic.test").await;
    let receiver = Receiver::start(&[410]).await;
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": { "url": receiver.url, "events": ["*"] } }),
        )
        .await;
    let webhook = saved["saveWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &admin,
        "mutation { createRole(input: { name: \"Scheduler\", permissions: [PROJECTS_READ] }) { id } }",
        json!({}),
    )
    .await;
    // `*`: every audited event, the webhook's own save included.
    receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = deliveries(&app, &admin, &webhook).await;
    let failed: Vec<&Value> = log.iter().filter(|d| d["status"] == "FAILED").collect();
    assert_eq!(failed.len(), 1, "{log:?}");
    assert_eq!(failed[0]["attempts"], 1);
    assert!(failed[0]["lastError"].as_str().unwrap().contains("410"));
    assert!(
        log.iter().any(|d| d["eventType"] == "role.changed"),
        "{log:?}"
    );

    app.ok(
        &admin,
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        json!({ "id": webhook }),
    )
    .await;
    let before = receiver.received().len();
    app.ok(
        &admin,
        "mutation { createRole(input: { name: \"Another\", permissions: [PROJECTS_READ] }) { id } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), before);
}

#[each_backend]
#[tokio::test]
async fn webhooks_are_refused_private_addresses_bad_events_and_callers_without_the_right(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Clinic").await;
    app.user(org, "admin@clinic.test", &["Admin"]).await;
    app.user(org, "manager@clinic.test", &["Clinical Manager"])
        .await;
    let admin = app.login("admin@clinic.test", PASSWORD).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://hooks.example.org/",
        "not a url",
    ] {
        let (_, body) = app
            .graphql(
                Some(&admin),
                SAVE,
                json!({ "i": { "url": url, "events": ["user.created"] } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        assert_eq!(error_fields(&body)[0].0, "url", "{url}");
    }
    let (_, body) = app
        .graphql(
            Some(&admin),
            SAVE,
            json!({ "i": { "url": "https://hooks.example.org/x", "events": ["user.craeted"] } }),
        )
        .await;
    assert_eq!(error_fields(&body)[0].0, "events");
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": { "url": "https://hooks.example.org/x", "events": ["user.created"] } }),
        )
        .await;
    assert_eq!(saved["saveWebhook"]["webhook"]["active"], true);
    let manager = app.login("manager@clinic.test", PASSWORD).await;
    let (_, body) = app
        .graphql(Some(&manager), "{ webhooks { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let events = app
        .ok(&admin, "{ webhookEvents { name } }", json!({}))
        .await;
    assert!(events.to_string().contains("import.finished"));
}
