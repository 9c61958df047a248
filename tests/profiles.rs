//! Self-service after an import: a user completes their own profile,
//! certifications and weekly availability; an admin sees the certifications
//! that expire soon and who works at a location at a given time, in the
//! organisation's time zone.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use chrono::{Duration, Utc};
use common::{PASSWORD, TestApp, error_code, error_fields};
use serde_json::json;

const UPDATE_ME: &str = "mutation($input: ProfileInput!) { updateMyProfile(input: $input) {
    firstName title mobilePhone locale emailSignature preferences email
    certifications { name issuingBody expiresOn expired }
    availability { dayOfWeek start end location { name } } } }";

#[tokio::test]
async fn a_user_completes_their_profile_and_an_admin_finds_expiring_certifications_and_available_staff()
 {
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let org = app.organization("Lakeview Clinic").await;
        app.user(org, "admin@lakeview.test", &["Admin"]).await;
        let nurse_id = app.user(org, "nurse@lakeview.test", &["Provider"]).await;
        let other_id = app.user(org, "other@lakeview.test", &["Provider"]).await;
        let admin = app.login("admin@lakeview.test", PASSWORD).await;
        let nurse = app.login("nurse@lakeview.test", PASSWORD).await;

        let tz = app
            .ok(
                &admin,
                "mutation { updateOrganization(input: { timeZone: \"America/Chicago\" }) { timeZone } }",
                json!({}),
            )
            .await;
        assert_eq!(tz["updateOrganization"]["timeZone"], "America/Chicago");
        let (_, body) = app
            .graphql(
                Some(&admin),
                "mutation { updateOrganization(input: { timeZone: \"Mars/Olympus\" }) { timeZone } }",
                json!({}),
            )
            .await;
        assert_eq!(error_fields(&body)[0].0, "timeZone", "{body}");
        let main = app
            .ok(
                &admin,
                "mutation { createLocation(input: { name: \"Main Clinic\" }) { id } }",
                json!({}),
            )
            .await["createLocation"]["id"]
            .clone();

        let today = Utc::now().date_naive();
        let day = |offset: i64| {
            (today + Duration::days(offset))
                .format("%Y-%m-%d")
                .to_string()
        };
        let profile = app
            .ok(
                &nurse,
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
                        { "dayOfWeek": "MONDAY", "start": "08:00", "end": "12:00", "locationId": main },
                        { "dayOfWeek": "MONDAY", "start": "13:00", "end": "17:00" },
                        { "dayOfWeek": "TUESDAY", "start": "09:00", "end": "17:00", "locationId": main },
                    ],
                } }),
            )
            .await["updateMyProfile"]
            .clone();
        assert_eq!(profile["firstName"], "Noor");
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

        // Overlaps, bad values and oversized preferences are refused, all at once.
        let (_, body) = app
            .graphql(
                Some(&nurse),
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
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
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
        let (_, body) = app
            .graphql(
                Some(&nurse),
                "mutation($u: ID!) { updateUserProfile(userId: $u, input: { title: \"Boss\" }) { id } }",
                json!({ "u": other_id.to_string() }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

        // The admin's view: expiring certifications (expired first) and who works when.
        let expiring = app
            .ok(
                &admin,
                "{ expiringCertifications(withinDays: 30) { name expired user { email } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            expiring["expiringCertifications"],
            json!([
                { "name": "ACLS", "expired": true, "user": { "email": "nurse@lakeview.test" } },
                { "name": "BLS", "expired": false, "user": { "email": "nurse@lakeview.test" } },
            ])
        );
        // 2026-11-30 is a Monday; Chicago is UTC−6 then.
        let available =
            "query($at: DateTime!, $l: ID) { availableStaff(at: $at, locationId: $l) { email } }";
        let who = |at: &'static str, location: Option<serde_json::Value>| {
            let app = &app;
            let admin = &admin;
            async move {
                app.ok(admin, available, json!({ "at": at, "l": location }))
                    .await["availableStaff"]
                    .clone()
            }
        };
        let nurse_only = json!([{ "email": "nurse@lakeview.test" }]);
        assert_eq!(
            who("2026-11-30T15:00:00Z", Some(main.clone())).await,
            nurse_only,
            "Monday 09:00 at Main Clinic"
        );
        assert_eq!(
            who("2026-11-30T09:00:00Z", Some(main.clone())).await,
            json!([]),
            "Monday 03:00"
        );
        assert_eq!(
            who("2026-11-30T19:30:00Z", Some(main.clone())).await,
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
                Some(&nurse),
                available,
                json!({ "at": "2026-11-30T15:00:00Z" }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

        // An admin manages anyone's certifications; the change is audited.
        let managed = app
            .ok(
                &admin,
                "mutation($u: ID!) { updateUserProfile(userId: $u, input: { certifications: [] }) { certifications { name } } }",
                json!({ "u": nurse_id.to_string() }),
            )
            .await;
        assert_eq!(managed["updateUserProfile"]["certifications"], json!([]));
        let audit = app
            .ok(
                &admin,
                "{ auditEvents(filter: { action: \"user.profile_update\" }) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(audit["auditEvents"]["totalCount"], 2);
        app.stop().await;
    }
}
