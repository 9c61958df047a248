//! Exporting the staff in the import's own format: the file an admin downloads
//! maps itself when uploaded again, and every row left as it was comes back
//! SKIPPED; a changed cell updates just that person. Only callers who may read
//! the people may export them, and only their own organisation's.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, sample};
use serde_json::{Value, json};

const START: &str = "mutation($input: ImportInput!) { startImport(input: $input) { id } }";

/// Import `bytes` as `kind` with the suggested mapping; the finished job.
async fn import(app: &TestApp, token: &str, kind: &str, bytes: Vec<u8>) -> Value {
    let (_, body) = app
        .upload(token, START, json!({ "kind": kind }), "staff.csv", bytes)
        .await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    app.finished_job(token, &id).await
}

/// GET an export with a bearer token; the status, the headers and the body.
async fn export(
    app: &TestApp,
    token: &str,
    file: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app
        .client
        .get(format!("{}/exports/{file}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

const STAFF: &str = "Email,First name,Last name,Title,Employee status,Mobile phone,Locale,Roles,External ID,Inactivity timeout (minutes)
ada@riverbank.test,Ada,Lovelace,Charge Nurse,Leave,+1 217 555 0101,en-US,Clinical Provider; Billing,EMP-1,45
grace@riverbank.test,=Grace,Hopper,-Lead,Active,,fr-CA,Clinical Manager,,
";

#[each_backend]
#[tokio::test]
async fn exported_staff_upload_again_unchanged_and_an_edit_updates_one_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app
        .admin_in("Riverbank Clinic", "admin@riverbank.test")
        .await;
    let done = import(&app, &admin, "USERS", STAFF.as_bytes().to_vec()).await;
    assert_eq!(done["createdCount"], 2, "{backend:?}: {done}");
    let done = import(&app, &admin, "PROVIDERS", sample("providers.csv")).await;
    assert_eq!(done["createdCount"], 10, "{backend:?}: {done}");

    // Another organisation's people never appear.
    let elsewhere = app.organization("Elsewhere").await;
    app.user(elsewhere, "someone@elsewhere.test", &["Admin"])
        .await;

    let (status, headers, csv) = export(&app, &admin, "users.csv").await;
    assert_eq!(status, 200, "{backend:?}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"rollcall-users-"),
        "{disposition}"
    );
    let text = String::from_utf8(csv.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The header row, the admin, two staff and ten providers, by email.
    assert_eq!(lines.len(), 14, "{text}");
    assert!(
        lines[0].starts_with("\u{feff}Email,First name,Last name"),
        "{}",
        lines[0]
    );
    assert!(!text.contains("elsewhere.test"), "{text}");
    let ada = lines.iter().find(|l| l.starts_with("ada@")).unwrap();
    for cell in [
        "Leave",
        "'+12175550101",
        "en-US",
        "Billing; Clinical Provider",
        "EMP-1",
        "45",
    ] {
        assert!(ada.contains(cell), "{cell} in {ada}");
    }
    // Cells that begin like a formula are neutralised.
    let grace = lines.iter().find(|l| l.starts_with("grace@")).unwrap();
    assert!(grace.contains(",'=Grace,Hopper,Active,'-Lead,"), "{grace}");

    // Uploaded again as it is: the columns map themselves, nothing changes.
    let done = import(&app, &admin, "USERS", csv.clone()).await;
    assert_eq!(
        (
            &done["status"],
            &done["skippedCount"],
            &done["createdCount"],
            &done["updatedCount"],
            &done["failedCount"]
        ),
        (
            &json!("FINISHED"),
            &json!(13),
            &json!(0),
            &json!(0),
            &json!(0)
        ),
        "{backend:?}: {done}"
    );
    let grace = app
        .ok(
            &admin,
            "{ users(first: 1, filter: { search: \"grace@riverbank.test\" }) { edges { node { firstName title } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        grace["users"]["edges"][0]["node"],
        json!({ "firstName": "=Grace", "title": "-Lead" })
    );

    // One edited cell updates one person.
    let edited = text.replacen(",Charge Nurse,", ",Ward Manager,", 1);
    let done = import(&app, &admin, "USERS", edited.into_bytes()).await;
    assert_eq!(
        (&done["updatedCount"], &done["skippedCount"]),
        (&json!(1), &json!(12)),
        "{backend:?}: {done}"
    );

    // Providers likewise, with their provider fields.
    let (status, _, providers) = export(&app, &admin, "providers.csv").await;
    assert_eq!(status, 200);
    let listed = String::from_utf8(providers.clone()).unwrap();
    assert_eq!(listed.lines().count(), 11, "{listed}");
    assert!(listed.lines().next().unwrap().contains("NPI"), "{listed}");
    let done = import(&app, &admin, "PROVIDERS", providers).await;
    assert_eq!(
        (
            &done["skippedCount"],
            &done["updatedCount"],
            &done["failedCount"]
        ),
        (&json!(10), &json!(0), &json!(0)),
        "{backend:?}: {done}"
    );

    // The workbook, and the trail.
    let (status, headers, xlsx) = export(&app, &admin, "users.xlsx").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(xlsx.starts_with(b"PK"));
    let trail = app
        .ok(
            &admin,
            "{ auditEvents(first: 10, filter: { action: \"staff.export\" }) { edges { node { changes actor { email } } } } }",
            json!({}),
        )
        .await;
    let exports = trail["auditEvents"]["edges"].as_array().unwrap();
    assert_eq!(exports.len(), 3, "{trail}");
    assert_eq!(
        exports[0]["node"]["changes"],
        json!({ "kind": "USERS", "rows": 13 })
    );
}

#[each_backend]
#[tokio::test]
async fn only_readers_of_the_people_may_export_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Guarded Clinic").await;
    app.user(org, "carer@guarded.test", &["Clinical Provider"])
        .await;
    let carer = app.login("carer@guarded.test", PASSWORD).await;
    // Clinical Provider reads providers, not the staff list.
    assert_eq!(
        export(&app, &carer, "users.csv").await.0,
        403,
        "{backend:?}"
    );
    assert_eq!(export(&app, &carer, "providers.csv").await.0, 200);
    for file in ["patients.csv", "locations.xlsx", "users.pdf", "users"] {
        assert_eq!(export(&app, &carer, file).await.0, 404, "{file}");
    }
    let anonymous = app.get("/exports/users.csv").await;
    assert_eq!(anonymous.status().as_u16(), 401);
}
