//! Credential-aware roles: a role that requires a licence is suspended for a
//! holder without a valid one, on every instance at their next request;
//! an administrator's record of the renewed licence lifts it at once; the
//! holder cannot vouch for themselves; and reminders go before the expiry.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use chrono::{Timelike, Utc};
use common::{Backend, PASSWORD, Storage, TestApp, backends, error_code};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

const STANDING: &str = "{ me { roles { name } suspendedRoles { name } } }";
const SET_CERTIFICATIONS: &str = "mutation($u: ID!, $c: [CertificationInput!]) {
    updateUserProfile(userId: $u, input: { certifications: $c }) { id } }";

struct Unit {
    org: Uuid,
    admin: String,
    nurse_id: Uuid,
}

/// A unit whose "Charge Nurse" role (USERS_READ) requires a state licence,
/// held by a nurse with no licence on record yet.
async fn unit(app: &TestApp) -> Unit {
    let (org, admin) = app.admin_in("Mercy Hospital", "admin@mercy.test").await;
    let role = app
        .ok(
            &admin,
            "mutation { createRole(input: { name: \"Charge Nurse\", permissions: [USERS_READ],
                requiredCertifications: [\"State licence\", \" state LICENCE \"] }) { id requiredCertifications } }",
            json!({}),
        )
        .await;
    assert_eq!(
        role["createRole"]["requiredCertifications"],
        json!(["State licence"])
    );
    let nurse_id = app.user(org, "nurse@mercy.test", &["Charge Nurse"]).await;
    Unit {
        org,
        admin,
        nurse_id,
    }
}

fn licence(expires_on: chrono::NaiveDate) -> Value {
    json!([{ "name": "State Licence", "issuingBody": "Board of Nursing", "expiresOn": expires_on }])
}

async fn may_read_staff(app: &TestApp, token: &str) -> bool {
    app.allowed(token, "{ users(first: 1) { edges { node { id } } } }")
        .await
}

#[each_backend]
#[tokio::test]
async fn a_role_without_its_licence_is_suspended_until_an_admin_records_one(backend: Backend) {
    let storage = Storage::new(backend).await;
    let app = TestApp::spawn_on(storage.clone()).await;
    let peer = app.peer().await;
    let other = peer.as_ref().unwrap_or(&app);
    let unit = unit(&app).await;
    let nurse = app.login("nurse@mercy.test", PASSWORD).await;

    assert!(!may_read_staff(other, &nurse).await, "{backend:?}");
    let standing = app.ok(&nurse, STANDING, json!({})).await;
    assert_eq!(
        standing["me"]["suspendedRoles"],
        json!([{ "name": "Charge Nurse" }]),
        "{backend:?}"
    );

    // She cannot vouch for herself.
    let tomorrow = Utc::now().date_naive() + chrono::Duration::days(400);
    let (_, body) = app
        .graphql(
            Some(&nurse),
            "mutation($c: [CertificationInput!]) { updateMyProfile(input: { certifications: $c }) { id } }",
            json!({ "c": licence(tomorrow) }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // An admin records it: the role applies at her next request everywhere.
    app.ok(
        &unit.admin,
        SET_CERTIFICATIONS,
        json!({ "u": unit.nurse_id, "c": licence(tomorrow) }),
    )
    .await;
    assert!(may_read_staff(other, &nurse).await, "{backend:?}");
    let standing = other.ok(&nurse, STANDING, json!({})).await;
    assert_eq!(standing["me"]["suspendedRoles"], json!([]));

    // Recorded as expired yesterday: suspended again at once.
    let yesterday = Utc::now().date_naive() - chrono::Duration::days(2);
    app.ok(
        &unit.admin,
        SET_CERTIFICATIONS,
        json!({ "u": unit.nurse_id, "c": licence(yesterday) }),
    )
    .await;
    assert!(!may_read_staff(other, &nurse).await, "{backend:?}");
    let _ = unit.org;
}

#[each_backend]
#[tokio::test]
async fn holders_and_admins_are_reminded_once_before_the_licence_expires(backend: Backend) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |config| {
        config.sweep_interval_seconds = 1;
    })
    .await;
    let unit = unit(&app).await;
    let in_five_days = Utc::now().date_naive() + chrono::Duration::days(5);
    app.ok(
        &unit.admin,
        SET_CERTIFICATIONS,
        json!({ "u": unit.nurse_id, "c": licence(in_five_days) }),
    )
    .await;
    let reminders = || async {
        entity::outbox_message::Entity::find()
            .filter(entity::outbox_message::Column::Kind.eq("certification.expiring"))
            .all(&app.db)
            .await
            .unwrap()
    };
    let mut sent = Vec::new();
    for _ in 0..50 {
        sent = reminders().await;
        if sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut to: Vec<&str> = sent.iter().map(|m| m.recipient.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["admin@mercy.test", "nurse@mercy.test"], "{backend:?}");
    assert!(
        sent.iter()
            .any(|m| m.subject == "Your State Licence expires in 5 days"),
        "{sent:?}"
    );
    assert!(sent.iter().all(|m| m.body.contains("Charge Nurse")));
    // The seven-day reminder is sent once, however often the sweep runs.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(reminders().await.len(), 2, "{backend:?}");
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A fixed-offset zone (`Etc/GMT…`) whose next midnight is between two
/// minutes and two hours away; the zone, how many seconds away it is, and the
/// zone's offset from UTC in hours.
fn zone_nearing_midnight() -> (String, i64, i64) {
    let now = Utc::now();
    let seconds_today = i64::from(now.num_seconds_from_midnight());
    (-12..=14)
        .map(|offset: i64| {
            let local = (seconds_today + offset * 3600).rem_euclid(86_400);
            let name = match offset {
                0 => "Etc/GMT".to_owned(),
                // The Etc zones' signs are POSIX's: Etc/GMT-5 is five hours ahead.
                o if o > 0 => format!("Etc/GMT-{o}"),
                o => format!("Etc/GMT+{}", -o),
            };
            (name, 86_400 - local, offset)
        })
        .filter(|(_, to_midnight, _)| (120..=7_200).contains(to_midnight))
        .min_by_key(|(_, to_midnight, _)| *to_midnight)
        .unwrap()
}

#[tokio::test]
async fn a_licence_that_lapses_mid_session_suspends_the_role_at_the_next_request() {
    if !std::path::Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs {LIBFAKETIME} (Debian package faketime)"
        );
        eprintln!(
            "SKIPPED: this test moves the server's clock with libfaketime (apt-get install faketime)"
        );
        return;
    }
    for backend in backends().await {
        // The real binary, its wall clock read from a file the test rewrites.
        let storage = Storage::new(backend).await;
        let clock = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(clock.path(), "+0\n").unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
        command
            .env("DATABASE_URL", &storage.database_url)
            .env("ROLLCALL_REDIS_PREFIX", &storage.redis_prefix)
            .env("LD_PRELOAD", LIBFAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", clock.path())
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        match &storage.redis_url {
            Some(url) => command.env("REDIS_URL", url),
            None => command.env_remove("REDIS_URL"),
        };
        let server = common::start_binary(command);
        let db = sea_orm::Database::connect(&storage.database_url)
            .await
            .unwrap();
        let app = TestApp::attach(storage.clone(), db, server.address.clone());
        let unit = unit(&app).await;
        let (zone, to_midnight, offset_hours) = zone_nearing_midnight();
        app.ok(
            &unit.admin,
            "mutation($z: String!) { updateOrganization(input: { timeZone: $z, defaultIdleTimeoutMinutes: 240 }) { id } }",
            json!({ "z": zone }),
        )
        .await;
        // A licence whose last day is today where the organisation is: the
        // date of the zone's wall clock, which east of Greenwich is a day
        // ahead of UTC's for part of the day.
        let today = (Utc::now() + chrono::Duration::hours(offset_hours)).date_naive();
        app.ok(
            &unit.admin,
            SET_CERTIFICATIONS,
            json!({ "u": unit.nurse_id, "c": licence(today) }),
        )
        .await;
        let nurse = app.login("nurse@mercy.test", PASSWORD).await;
        assert!(
            may_read_staff(&app, &nurse).await,
            "{backend:?} {zone}: licence valid today"
        );

        // Midnight comes in the organisation's zone; nobody does anything.
        std::fs::write(clock.path(), format!("+{}\n", to_midnight + 5)).unwrap();
        assert!(
            !may_read_staff(&app, &nurse).await,
            "{backend:?} {zone}: the lapsed licence suspends the role at the next request"
        );
        let standing = app.ok(&nurse, STANDING, json!({})).await;
        assert_eq!(
            standing["me"]["suspendedRoles"],
            json!([{ "name": "Charge Nurse" }])
        );
        let mut child = server.child;
        let _ = child.kill();
        let _ = child.wait();
        let _ = unit.org;
    }
}
