//! Practice locations through the API and the import center, and the blank
//! import templates of every kind: downloaded, filled in and uploaded, they map
//! themselves.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code, sample};
use serde_json::{Value, json};

const CREATE: &str =
    "mutation($input: LocationInput!) { createLocation(input: $input) { id name phone active } }";

#[each_backend]
#[tokio::test]
async fn locations_are_kept_per_organisation_with_unique_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Place Clinic").await;
    app.user(org, "admin@place.test", &["Admin"]).await;
    app.user(org, "nurse@place.test", &["Provider"]).await;
    let admin = app.login("admin@place.test", PASSWORD).await;
    let nurse = app.login("nurse@place.test", PASSWORD).await;

    let main = app
        .ok(
            &admin,
            CREATE,
            json!({ "input": { "name": "Main Clinic", "addressLine1": "200 Oak Ave", "city": "Springfield",
                "phone": "(217) 555-0300" } }),
        )
        .await["createLocation"]
        .clone();
    assert_eq!(main["phone"], "+12175550300");
    assert_eq!(main["active"], true);
    let (_, body) = app
        .graphql(
            Some(&admin),
            CREATE,
            json!({ "input": { "name": " main clinic " } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let (_, body) = app
        .graphql(
            Some(&nurse),
            CREATE,
            json!({ "input": { "name": "My Office" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(
            Some(&admin),
            CREATE,
            json!({ "input": { "name": "", "phone": "12" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(common::error_fields(&body).len(), 2, "{body}");

    let closed = app
        .ok(
            &admin,
            "mutation($id: ID!) { updateLocation(id: $id, input: { name: \"Main Clinic\", active: false }) { active addressLine1 } }",
            json!({ "id": main["id"] }),
        )
        .await;
    assert_eq!(closed["updateLocation"]["active"], false);
    assert!(
        closed["updateLocation"]["addressLine1"].is_null(),
        "every field is replaced"
    );
    let listed = app
        .ok(&nurse, "{ locations { name active } }", json!({}))
        .await;
    assert_eq!(
        listed["locations"],
        json!([{ "name": "Main Clinic", "active": false }])
    );

    // A provider's practice address may be one of the locations.
    let provider = app
        .ok(
            &admin,
            "mutation($l: ID) { createProvider(input: { email: \"dr.lee@place.test\", firstName: \"Min\", lastName: \"Lee\",
                    npi: \"1234567893\", locationId: $l }) { provider { id location { name } } } }",
            json!({ "l": main["id"] }),
        )
        .await["createProvider"]["provider"]
        .clone();
    assert_eq!(provider["location"]["name"], "Main Clinic");
    let cleared = app
        .ok(
            &admin,
            "mutation($id: ID!) { updateProvider(id: $id, input: { locationId: null }) { location { name } } }",
            json!({ "id": provider["id"] }),
        )
        .await;
    assert!(cleared["updateProvider"]["location"].is_null());

    let (_, stranger) = app.admin_in("Other Place", "admin@other.test").await;
    let theirs = app.ok(&stranger, "{ locations { id } }", json!({})).await;
    assert_eq!(theirs["locations"], json!([]));
    let (_, body) = app
        .graphql(
            Some(&stranger),
            "mutation($id: ID!) { updateLocation(id: $id, input: { name: \"Mine now\" }) { id } }",
            json!({ "id": main["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Nor can another organisation's provider point at it.
    let (_, body) = app
        .graphql(
            Some(&stranger),
            "mutation($l: ID) { createProvider(input: { email: \"dr.x@other.test\", firstName: \"X\", lastName: \"Y\",
                    npi: \"1234567893\", locationId: $l }) { provider { id } } }",
            json!({ "l": main["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(common::error_fields(&body)[0].0, "locationId");
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn the_sample_locations_file_imports_and_its_duplicate_fails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Sites Clinic", "admin@sites.test").await;
    let (_, body) = app
        .upload(
            &admin,
            "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
            json!({ "kind": "LOCATIONS" }),
            "locations.csv",
            sample("locations.csv"),
        )
        .await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(job["createdCount"], 3, "{job}");
    assert_eq!(job["failedCount"], 1);
    let rows = app
        .ok(
            &admin,
            "query($id: ID!) { importJob(id: $id) { rows(status: FAILED) { edges { node { rowNumber errors { field message } } } } } }",
            json!({ "id": id }),
        )
        .await;
    let failed = &rows["importJob"]["rows"]["edges"][0]["node"];
    assert_eq!(failed["rowNumber"], 5);
    assert_eq!(failed["errors"][0]["field"], "name");
    assert!(
        failed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("row 2"),
        "{failed}"
    );
    let listed = app
        .ok(
            &admin,
            "{ locations { name postalCode phone active } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["locations"],
        json!([
            { "name": "Main Clinic", "postalCode": "62701", "phone": "+12175550300", "active": true },
            { "name": "Northside Office", "postalCode": "62701", "phone": "+12175550300", "active": true },
            { "name": "Pediatrics Annex", "postalCode": "62701", "phone": "+12175550300", "active": false },
        ])
    );
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn every_template_downloads_and_filled_in_maps_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Template Clinic", "admin@template.test").await;
    let project = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Templates\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .clone();
    for kind in ["USERS", "PROVIDERS", "PATIENTS", "LOCATIONS"] {
        let path = format!("/imports/templates/{}.csv", kind.to_lowercase());
        let anonymous = app.get(&path).await;
        assert_eq!(anonymous.status(), 401);
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{kind}");
        assert!(
            response.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let csv = response.bytes().await.unwrap().to_vec();
        let xlsx = app
            .client
            .get(format!(
                "{}/imports/templates/{}.xlsx",
                app.address,
                kind.to_lowercase()
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(xlsx.status(), 200);
        assert_eq!(&xlsx.bytes().await.unwrap()[..2], b"PK");

        // The template with its example row, as an admin fills it in.
        let mut input = json!({ "kind": kind });
        if kind == "PATIENTS" {
            input["projectId"] = project.clone();
        }
        let fields: Value = app
            .ok(
                &admin,
                "query($k: ImportKind!) { importFields(kind: $k) { key } }",
                json!({ "k": kind }),
            )
            .await;
        let (_, body) = app
            .upload(
                &admin,
                "mutation($input: ImportInput!) { previewImport(input: $input) {
                        suggestedMapping { field } missingRequiredFields validRows invalidRows
                        sampleRows { errors { field message } } } }",
                input,
                "filled.csv",
                csv,
            )
            .await;
        let preview = &body["data"]["previewImport"];
        let mapped: Vec<&Value> = preview["suggestedMapping"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: {body}"))
            .iter()
            .map(|m| &m["field"])
            .collect();
        let keys: Vec<&Value> = fields["importFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["key"])
            .collect();
        assert_eq!(mapped, keys, "{kind}");
        assert_eq!(preview["missingRequiredFields"], json!([]), "{kind}");
        assert_eq!(preview["validRows"], 1, "{kind}: {preview}");
    }
    assert_eq!(
        app.client
            .get(format!("{}/imports/templates/widgets.csv", app.address))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}
