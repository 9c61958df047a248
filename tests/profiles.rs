//! Self-service after an import: a user completes their own profile,
//! certifications and weekly availability; an admin sees the certifications
//! that expire soon and who works at a location at a given time, in the
//! organisation's time zone.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use chrono::{Duration, Utc};
use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use serde_json::{Value, json};
use uuid::Uuid;

const UPDATE_ME: &str = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) {
    firstName title mobilePhone locale emailSignature preferences email
    certifications { name issuingBody expiresOn expired }
    availability { dayOfWeek start end location { name } } } }";

/// Lakeview Clinic, in Chicago's time zone, with its Main Clinic location, an
/// admin and two providers.
struct Lakeview {
    admin: String,
    nurse: String,
    nurse_id: Uuid,
    other_id: Uuid,
    main: Value,
}

async fn lakeview(app: &TestApp) -> Lakeview {
    let (org, admin) = app.admin_in("Lakeview Clinic", "admin@lakeview.test").await;
    let nurse_id = app.user(org, "nurse@lakeview.test", &["Provider"]).await;
    let other_id = app.user(org, "other@lakeview.test", &["Provider"]).await;
    let nurse = app.login("nurse@lakeview.test", PASSWORD).await;
    app.ok(
        &admin,
        "mutation { updateOrganization(input: { timeZone: \"America/Chicago\" }) { timeZone } }",
        json!({}),
    )
    .await;
    let main = app
        .ok(
            &admin,
            "mutation { createLocation(input: { name: \"Main Clinic\" }) { id } }",
            json!({}),
        )
        .await["createLocation"]["id"]
        .clone();
    Lakeview {
        admin,
        nurse,
        nurse_id,
        other_id,
        main,
    }
}

/// `offset` days from today, as a date.
fn day(offset: i64) -> String {
    (Utc::now().date_naive() + Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// The nurse's profile completed: three certifications (one expired, one
/// expiring in ten days) and three weekly slots, two at Main Clinic.
async fn completed_profile(app: &TestApp, clinic: &Lakeview) -> Value {
    app.ok(
        &clinic.nurse,
        UPDATE_ME,
        json!({ "input": {
            "firstName": "Noor", "title": "Charge Nurse", "mobilePhone": "(217) 555-0199",
            "locale": "es-US", "emailSignature": "Noor — Lakeview",
            "preferences": { "defaultView": "caseload", "pageSize": 50 },
            "certifications": [
                { "name": "RN licence", "issuingBody": "IDFPR", "expiresOn": day(400) },
                { "name": "BLS", "issuingBody": "AHA", "issuedOn": day(-700), "expiresOn": day(10) },
                { "name": "ACLS", "issuingBody": "AHA", "expiresOn": day(-5) },
            ],
            "availability": [
                { "dayOfWeek": "MONDAY", "start": "08:00", "end": "12:00", "locationId": clinic.main },
                { "dayOfWeek": "MONDAY", "start": "13:00", "end": "17:00" },
                { "dayOfWeek": "TUESDAY", "start": "09:00", "end": "17:00", "locationId": clinic.main },
            ],
        } }),
    )
    .await["updateMyProfile"]
        .clone()
}

#[each_backend]
#[tokio::test]
async fn an_organisation_keeps_a_known_time_zone_and_refuses_an_unknown_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    let (_, body) = app
        .graphql(
            Some(&clinic.admin),
            "mutation { updateOrganization(input: { timeZone: \"Mars/Olympus\" }) { timeZone } }",
            json!({}),
        )
        .await;
    assert_eq!(error_fields(&body)[0].0, "timeZone", "{backend:?}: {body}");
    let data = app
        .ok(&clinic.admin, "{ organization { timeZone } }", json!({}))
        .await;
    assert_eq!(data["organization"]["timeZone"], "America/Chicago");
}

#[each_backend]
#[tokio::test]
async fn a_user_completes_their_own_profile_certifications_and_availability(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    let profile = completed_profile(&app, &clinic).await;
    assert_eq!(profile["firstName"], "Noor", "{backend:?}: {profile}");
    assert_eq!(profile["mobilePhone"], "+12175550199");
    assert_eq!(profile["locale"], "es-US");
    assert_eq!(profile["preferences"]["defaultView"], "caseload");
    assert_eq!(profile["email"], "nurse@lakeview.test");
    let names: Vec<&str> = profile["certifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ACLS", "BLS", "RN licence"]);
    assert_eq!(profile["certifications"][0]["expired"], true);
    assert_eq!(
        profile["availability"][0],
        json!({ "dayOfWeek": "MONDAY", "start": "08:00", "end": "12:00", "location": { "name": "Main Clinic" } })
    );
}

#[each_backend]
#[tokio::test]
async fn overlapping_slots_bad_dates_and_oversized_preferences_are_refused_together(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    let (_, body) = app
        .graphql(
            Some(&clinic.nurse),
            UPDATE_ME,
            json!({ "input": {
                "preferences": { "blob": "x".repeat(20_000) },
                "availability": [
                    { "dayOfWeek": "MONDAY", "start": "08:00", "end": "12:00" },
                    { "dayOfWeek": "MONDAY", "start": "11:00", "end": "13:00" },
                ],
                "certifications": [{ "name": "BLS", "issuedOn": day(0), "expiresOn": day(-1) }],
            } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{backend:?}: {body}");
    let fields = error_fields(&body);
    assert!(
        fields.contains(&(
            "availability[1]".into(),
            "overlaps the slot Monday 08:00–12:00".into()
        )),
        "{fields:?}"
    );
    assert!(fields.iter().any(|(f, _)| f == "preferences"), "{fields:?}");
    assert!(
        fields
            .iter()
            .any(|(f, _)| f == "certifications[0].expiresOn"),
        "{fields:?}"
    );
}

#[each_backend]
#[tokio::test]
async fn a_user_may_not_edit_another_users_profile(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    let (_, body) = app
        .graphql(
            Some(&clinic.nurse),
            "mutation($u: ID!) { updateUserProfile(userId: $u, input: { title: \"Boss\" }) { id } }",
            json!({ "u": clinic.other_id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{backend:?}: {body}");
}

#[each_backend]
#[tokio::test]
async fn an_admin_sees_the_certifications_that_expire_soon_expired_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    completed_profile(&app, &clinic).await;
    let expiring = app
        .ok(
            &clinic.admin,
            "{ expiringCertifications(withinDays: 30) { name expired user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        expiring["expiringCertifications"],
        json!([
            { "name": "ACLS", "expired": true, "user": { "email": "nurse@lakeview.test" } },
            { "name": "BLS", "expired": false, "user": { "email": "nurse@lakeview.test" } },
        ]),
        "{backend:?}"
    );
}

#[each_backend]
#[tokio::test]
async fn available_staff_reads_the_weekly_slots_in_the_organisations_time_zone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    completed_profile(&app, &clinic).await;
    // 2026-11-30 is a Monday; Chicago is UTC−6 then.
    let available =
        "query($at: DateTime!, $l: ID) { availableStaff(at: $at, locationId: $l) { email } }";
    let who = |at: &'static str, location: Option<Value>| {
        let app = &app;
        let admin = &clinic.admin;
        async move {
            app.ok(admin, available, json!({ "at": at, "l": location }))
                .await["availableStaff"]
                .clone()
        }
    };
    let nurse_only = json!([{ "email": "nurse@lakeview.test" }]);
    let main = Some(clinic.main.clone());
    assert_eq!(
        who("2026-11-30T15:00:00Z", main.clone()).await,
        nurse_only,
        "{backend:?}: Monday 09:00 at Main Clinic"
    );
    assert_eq!(
        who("2026-11-30T09:00:00Z", main.clone()).await,
        json!([]),
        "Monday 03:00"
    );
    assert_eq!(
        who("2026-11-30T19:30:00Z", main).await,
        json!([]),
        "Monday 13:30 elsewhere"
    );
    assert_eq!(
        who("2026-11-30T19:30:00Z", None).await,
        nurse_only,
        "Monday 13:30 anywhere"
    );
    assert_eq!(
        who("2026-11-30T23:00:00Z", None).await,
        json!([]),
        "Monday 17:00 is after the slot"
    );
    let (_, body) = app
        .graphql(
            Some(&clinic.nurse),
            available,
            json!({ "at": "2026-11-30T15:00:00Z" }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "a provider may not ask: {body}"
    );
}

#[each_backend]
#[tokio::test]
async fn an_admin_manages_anyones_certifications_and_each_change_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clinic = lakeview(&app).await;
    completed_profile(&app, &clinic).await;
    let managed = app
        .ok(
            &clinic.admin,
            "mutation($u: ID!) { updateUserProfile(userId: $u, input: { certifications: [] }) { certifications { name } } }",
            json!({ "u": clinic.nurse_id.to_string() }),
        )
        .await;
    assert_eq!(
        managed["updateUserProfile"]["certifications"],
        json!([]),
        "{backend:?}"
    );
    let audit = app
        .ok(
            &clinic.admin,
            "{ auditEvents(filter: { action: \"user.profile_update\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit["auditEvents"]["totalCount"], 2,
        "the nurse's own update and the admin's"
    );
}
