//! The tamper-evident audit trail: each organisation's events form a hash
//! chain written with the change, `rollcall audit verify` finds an altered or
//! missing event, `GET /exports/audit.ndjson` streams the trail, and a SIEM
//! receives every event as RFC 5424 syslog.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{process::Command, sync::Arc, time::Duration};

use common::{Backend, PASSWORD, Storage, TestApp, backends, error_code};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Alias, Query},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

/// `rollcall audit verify` against the app's database: whether it passed, and
/// what it printed.
fn verify(app: &TestApp) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.storage.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

/// An organisation with an admin who has made a few audited changes; the
/// organisation and the admin's token.
async fn busy_clinic(app: &TestApp) -> (Uuid, String) {
    let org = app.organization("Clinic").await;
    app.user(org, "admin@clinic.test", &["Admin"]).await;
    let nurse = app.user(org, "nurse@clinic.test", &["Provider"]).await;
    let token = app.login("admin@clinic.test", PASSWORD).await;
    for title in ["Nurse", "Charge Nurse", "Head Nurse"] {
        app.ok(
            &token,
            "mutation($id: ID!, $t: String) { updateUser(id: $id, input: { title: $t }) { id } }",
            json!({ "id": nurse, "t": title }),
        )
        .await;
    }
    (org, token)
}

/// Run SQL that rewrites the trail, as someone with the database owner's
/// rights would: on PostgreSQL the append-only trigger is turned off first.
async fn tamper(app: &TestApp, sql: &str) {
    let statement = match app.backend() {
        Backend::Production => format!(
            "BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; {sql}; \
             ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT"
        ),
        Backend::Embedded => sql.to_owned(),
    };
    app.db.execute_unprepared(&statement).await.unwrap();
}

/// `id` as the backend writes a UUID in SQL: text on PostgreSQL, bytes on SQLite.
fn uuid(app: &TestApp, id: Uuid) -> String {
    match app.backend() {
        Backend::Production => format!("'{id}'"),
        Backend::Embedded => format!("X'{}'", id.simple()),
    }
}

async fn chain(app: &TestApp, org: Uuid) -> Vec<entity::audit_event::Model> {
    entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::OrganizationId.eq(org))
        .order_by_asc(entity::audit_event::Column::Seq)
        .all(&app.db)
        .await
        .unwrap()
}

#[each_backend]
#[tokio::test]
async fn every_event_is_sealed_to_the_one_before_it_and_the_api_shows_the_seal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, token) = busy_clinic(&app).await;
    let events = chain(&app, org).await;
    assert!(events.len() >= 4, "{backend:?}: {events:?}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, Some(i as i64 + 1), "{backend:?}");
        assert_eq!(
            event.hash.as_deref(),
            Some(entity::audit_event::chain_hash(event).as_str())
        );
        let previous = i.checked_sub(1).map(|p| events[p].hash.clone().unwrap());
        assert_eq!(event.previous_hash, previous, "{backend:?}");
    }
    let data = app
        .ok(
            &token,
            "{ auditEvents(first: 100) { edges { node { action hash previousHash } } } }",
            json!({}),
        )
        .await;
    let nodes = data["auditEvents"]["edges"].as_array().unwrap();
    let last = &nodes[nodes.len() - 1]["node"];
    let before = &nodes[nodes.len() - 2]["node"];
    assert_eq!(last["previousHash"], before["hash"], "{backend:?}: {data}");
    assert_eq!(last["hash"].as_str().unwrap().len(), 64);
    let (held, printed) = verify(&app);
    assert!(held, "{backend:?}: {printed}");
    assert!(printed.contains("Clinic"), "{printed}");
}

#[each_backend]
#[tokio::test]
async fn verify_names_an_altered_event_and_a_missing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, _) = busy_clinic(&app).await;
    let events = chain(&app, org).await;
    let victim = &events[2];
    tamper(
        &app,
        &format!(
            "UPDATE audit_events SET action = 'nothing.happened' WHERE id = {}",
            uuid(&app, victim.id)
        ),
    )
    .await;
    let (held, printed) = verify(&app);
    assert!(!held, "{backend:?}: {printed}");
    assert!(printed.contains("BROKEN"), "{printed}");
    assert!(
        printed.contains(&victim.id.to_string()) && printed.contains("altered"),
        "{backend:?}: {printed}"
    );

    // Put back, the chain holds again.
    tamper(
        &app,
        &format!(
            "UPDATE audit_events SET action = '{}' WHERE id = {}",
            victim.action,
            uuid(&app, victim.id)
        ),
    )
    .await;
    assert!(verify(&app).0, "{backend:?}");

    // The newest events cut from the end are found by the chain's head.
    let n = events.len();
    tamper(
        &app,
        &format!(
            "DELETE FROM audit_events WHERE organization_id = {} AND seq > {}",
            uuid(&app, org),
            n - 2
        ),
    )
    .await;
    let (held, printed) = verify(&app);
    assert!(!held, "{printed}");
    assert!(
        printed.contains(&format!(
            "events {} to {n} are missing from the end of the chain",
            n - 1
        )),
        "{backend:?}: {printed}"
    );

    // Put back (inserting is allowed), the chain holds again.
    entity::audit_event::Entity::insert_many(
        events[n - 2..]
            .iter()
            .cloned()
            .map(entity::audit_event::ActiveModel::from),
    )
    .exec_without_returning(&app.db)
    .await
    .unwrap();
    assert!(verify(&app).0, "{backend:?}");

    // An event cut from the middle is named by its number.
    tamper(
        &app,
        &format!(
            "DELETE FROM audit_events WHERE id = {}",
            uuid(&app, events[1].id)
        ),
    )
    .await;
    let (held, printed) = verify(&app);
    assert!(!held);
    assert!(
        printed.contains("event number 2 is missing"),
        "{backend:?}: {printed}"
    );
}

#[each_backend]
#[tokio::test]
async fn thirty_changes_at_once_make_one_unbroken_chain(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let (org, token) = busy_clinic(&app).await;
    let before = chain(&app, org).await.len();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let app = app.clone();
            let token = token.clone();
            tokio::spawn(async move {
                app.ok(
                    &token,
                    "mutation($input: LocationInput!) { createLocation(input: $input) { id } }",
                    json!({ "input": { "name": format!("Ward {i}") } }),
                )
                .await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let events = chain(&app, org).await;
    assert_eq!(events.len(), before + 30, "{backend:?}");
    assert!(verify(&app).0, "{backend:?}: {}", verify(&app).1);
}

#[tokio::test]
async fn events_recorded_before_the_chain_are_sealed_by_the_migration() {
    use migration::MigratorTrait;
    for backend in backends().await {
        let storage = Storage::new(backend).await;
        let db = sea_orm::Database::connect(&storage.database_url)
            .await
            .unwrap();
        // The schema as it was before the chain, with a trail already in it.
        let before_chain = migration::Migrator::migrations()
            .iter()
            .position(|m| m.name() == "m20261203_000006_chain_audit_events")
            .unwrap();
        migration::Migrator::up(&db, Some(before_chain as u32))
            .await
            .unwrap();
        let org = Uuid::now_v7();
        let at = "2026-11-01T08:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        let organization = Query::insert()
            .into_table(Alias::new("organizations"))
            .columns(["id", "name", "created_at", "updated_at"].map(Alias::new))
            .values_panic([org.into(), "Old Clinic".into(), at.into(), at.into()])
            .to_owned();
        db.execute(&organization).await.unwrap();
        for (i, action) in ["auth.login", "user.update", "auth.logout"]
            .iter()
            .enumerate()
        {
            let insert = Query::insert()
                .into_table(Alias::new("audit_events"))
                .columns(
                    ["id", "organization_id", "action", "changes", "created_at"].map(Alias::new),
                )
                .values_panic([
                    Uuid::now_v7().into(),
                    org.into(),
                    (*action).into(),
                    json!({ "b": 1, "a": [2] }).into(),
                    format!("2026-11-0{}T08:00:00Z", i + 1)
                        .parse::<chrono::DateTime<chrono::Utc>>()
                        .unwrap()
                        .into(),
                ])
                .to_owned();
            db.execute(&insert).await.unwrap();
        }
        migration::Migrator::up(&db, None).await.unwrap();
        let app = TestApp::spawn_on(storage).await;
        let events = chain(&app, org).await;
        assert_eq!(
            events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["auth.login", "user.update", "auth.logout"],
            "{backend:?}"
        );
        assert_eq!(events[2].seq, Some(3));
        let (held, printed) = verify(&app);
        assert!(held, "{backend:?}: {printed}");
    }
}

#[each_backend]
#[tokio::test]
async fn the_trail_streams_as_ndjson_to_an_auditor_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, token) = busy_clinic(&app).await;
    let download = |token: String, query: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/exports/audit.ndjson{query}", app.address);
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let response = download(token.clone(), "").await;
    assert_eq!(response.status(), 200, "{backend:?}");
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = chain(&app, org).await;
    // The export itself is in the trail, after what it streamed or in it.
    assert!(lines.len() >= events.len() - 1, "{backend:?}: {body}");
    for pair in lines.windows(2) {
        assert_eq!(pair[1]["previousHash"], pair[0]["hash"], "{backend:?}");
        assert_eq!(pair[1]["seq"], pair[0]["seq"].as_i64().unwrap() + 1);
    }
    assert!(
        app.audit_actions(org)
            .await
            .contains(&"audit.export".to_owned())
    );

    // A range: nothing from a time to come.
    let body = download(token.clone(), "?from=2999-01-01T00:00:00Z")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "", "{backend:?}");
    let response = download(token.clone(), "?from=yesterday").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("RFC 3339"));

    // Staff without AUDIT_READ are refused, and strangers too.
    let nurse = app.login("nurse@clinic.test", PASSWORD).await;
    assert_eq!(download(nurse, "").await.status(), 403, "{backend:?}");
    assert_eq!(download("nonsense".into(), "").await.status(), 401);
}

/// A syslog listener: reads octet-counted frames and sends each parsed record.
async fn listen_syslog(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> tokio::sync::mpsc::UnboundedReceiver<syslog_rfc5424::SyslogMessage> {
    let (send, receive) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let send = send.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            read_frames(stream, send).await;
                        }
                    }
                    None => read_frames(socket, send).await,
                }
            });
        }
    });
    receive
}

async fn read_frames(
    stream: impl AsyncRead + Unpin,
    send: tokio::sync::mpsc::UnboundedSender<syslog_rfc5424::SyslogMessage>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = Vec::new();
        if reader.read_until(b' ', &mut length).await.unwrap_or(0) == 0 {
            return;
        }
        let length: usize = std::str::from_utf8(&length[..length.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        let mut record = vec![0; length];
        reader.read_exact(&mut record).await.unwrap();
        let text = String::from_utf8(record).unwrap();
        let parsed = syslog_rfc5424::parse_message(&text).unwrap();
        if send.send(parsed).is_err() {
            return;
        }
    }
}

/// Records until one with `action` arrives.
async fn until_action(
    records: &mut tokio::sync::mpsc::UnboundedReceiver<syslog_rfc5424::SyslogMessage>,
    action: &str,
) -> Vec<syslog_rfc5424::SyslogMessage> {
    let mut seen = Vec::new();
    loop {
        let record = tokio::time::timeout(Duration::from_secs(20), records.recv())
            .await
            .unwrap_or_else(|_| panic!("no {action} record within 20 s"))
            .unwrap();
        let done = record.msgid.as_deref() == Some(action);
        seen.push(record);
        if done {
            return seen;
        }
    }
}

#[each_backend]
#[tokio::test]
async fn a_siem_receives_every_event_as_syslog_and_one_that_was_down_catches_up(backend: Backend) {
    // The SIEM is down when the server starts: its port is held (bound)
    // but nothing listens, so connections are refused.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let app = TestApp::spawn_with(Storage::new(backend).await, |config| {
        config.audit_syslog_url = Some(format!("tcp://127.0.0.1:{port}"));
        config.outbox_retry_seconds = 1;
    })
    .await;
    let (org, token) = busy_clinic(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut records = listen_syslog(socket.listen(64).unwrap(), None).await;
    let seen = until_action(&mut records, "user.update").await;
    let login = seen
        .iter()
        .find(|r| r.msgid.as_deref() == Some("auth.login"))
        .unwrap_or_else(|| panic!("{backend:?}: {seen:?}"));
    assert_eq!(login.appname.as_deref(), Some("rollcall"));
    assert_eq!(
        login.facility,
        syslog_rfc5424::SyslogFacility::LOG_AUDIT,
        "{backend:?}"
    );
    assert_eq!(
        login.sd.find_tuple("rollcall@32473", "organization"),
        Some(&org.to_string())
    );

    // A change made now arrives at once, in chain order after the rest.
    app.ok(
        &token,
        "mutation { createLocation(input: { name: \"East Wing\" }) { id } }",
        json!({}),
    )
    .await;
    let seen = until_action(&mut records, "location.create").await;
    let last = seen.last().unwrap();
    let message = last.msg.trim_start_matches('\u{feff}');
    let event: Value = serde_json::from_str(message).unwrap();
    assert_eq!(event["action"], "location.create");
    let stored = chain(&app, org).await;
    let stored = stored.last().unwrap();
    assert_eq!(event["hash"], json!(stored.hash), "{backend:?}");
}

#[tokio::test]
async fn syslog_goes_over_tls_to_a_siem_with_an_internal_certificate() {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(
        common::services::tls_certificates(dir.path()),
        "openssl makes the certificates"
    );
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.path().join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut records = listen_syslog(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    )
    .await;
    let ca = dir.path().join("ca.pem");
    let app = TestApp::spawn_with(Storage::new(Backend::Embedded).await, |config| {
        config.audit_syslog_url = Some(format!("tls://localhost:{port}"));
        config.outbound_ca_file = Some(ca);
    })
    .await;
    let (_, token) = busy_clinic(&app).await;
    let seen = until_action(&mut records, "user.update").await;
    assert!(
        seen.iter()
            .any(|r| r.msgid.as_deref() == Some("auth.login"))
    );
    let (_, body) = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&body), "");
}
