//! PATIENTS imports through the import center: the sample file as admins upload
//! it, enrolled in a project with exact counts, the same file again creating
//! nothing, and the project that must be given.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code, error_fields, sample};
use serde_json::{Value, json};

const START: &str = "mutation($input: ImportInput!) { startImport(input: $input) { id } }";
const PREVIEW: &str = "mutation($input: ImportInput!) { previewImport(input: $input) {
    suggestedMapping { column field } missingRequiredFields totalRows validRows invalidRows } }";

async fn import(app: &TestApp, token: &str, input: Value, bytes: Vec<u8>) -> Value {
    let (_, body) = app.upload(token, START, input, "patients.csv", bytes).await;
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let mut job = app.finished_job(token, &id).await;
    job["id"] = json!(id);
    job
}

/// The failed rows of `job`: each row's number and its first error's field
/// and message.
async fn failed_rows(app: &TestApp, token: &str, job: &Value) -> Vec<(u64, String, String)> {
    let rows = app
        .ok(
            token,
            "query($id: ID!) { importJob(id: $id) { rows(first: 100, status: FAILED) { edges { node { rowNumber errors { field message } } } } } }",
            json!({ "id": job["id"] }),
        )
        .await;
    rows["importJob"]["rows"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            let node = &edge["node"];
            (
                node["rowNumber"].as_u64().unwrap(),
                node["errors"][0]["field"].as_str().unwrap().to_owned(),
                node["errors"][0]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[each_backend]
#[tokio::test]
async fn the_sample_patients_file_enrols_with_exact_counts_and_again_creates_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app
        .admin_in("Riverside Clinic", "admin@riverside.test")
        .await;
    let project = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Cardiology follow-up\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The headers map themselves.
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "PATIENTS", "projectId": project }),
            "patients.csv",
            sample("patients.csv"),
        )
        .await;
    let preview = &body["data"]["previewImport"];
    let mapped: Vec<(&str, &str)> = preview["suggestedMapping"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|m| (m["column"].as_str().unwrap(), m["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        mapped,
        [
            ("MRN", "externalId"),
            ("First", "firstName"),
            ("Last", "lastName"),
            ("Email", "email"),
            ("Mobile", "phone"),
            ("DOB", "dateOfBirth"),
        ]
    );
    assert_eq!(preview["totalRows"], 16);
    assert_eq!(preview["validRows"], 10);
    assert_eq!(preview["invalidRows"], 6);

    let job = import(
        &app,
        &admin,
        json!({ "kind": "PATIENTS", "projectId": project }),
        sample("patients.csv"),
    )
    .await;
    assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{job}");
    assert_eq!(job["createdCount"], 10);
    assert_eq!(job["failedCount"], 6);
    let failed = failed_rows(&app, &admin, &job).await;
    let numbers: Vec<u64> = failed.iter().map(|f| f.0).collect();
    assert_eq!(numbers, [4, 5, 10, 11, 16, 17], "{failed:?}");
    for (number, field, message) in &failed {
        match number {
            4 | 10 | 16 => {
                assert_eq!(field, "dateOfBirth");
                assert!(message.contains("YYYY-MM-DD or MM/DD/YYYY"), "{message}");
            }
            5 | 11 => {
                assert_eq!(field, "dateOfBirth");
                assert!(message.contains("not a day of the calendar"), "{message}");
            }
            _ => {
                assert_eq!(field, "externalId");
                assert!(message.contains("external id or an email"), "{message}");
            }
        }
    }

    let enrolled = app
        .ok(
            &admin,
            "query($id: ID!) { project(id: $id) { stats { enrolled } enrollments(first: 100) { edges { node { source externalId uniqueLink patient { phone dateOfBirth } } } } } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(enrolled["project"]["stats"]["enrolled"], 10);
    let edges = enrolled["project"]["enrollments"]["edges"]
        .as_array()
        .unwrap();
    let chloe = edges
        .iter()
        .find(|e| e["node"]["externalId"] == "MRN-1001")
        .unwrap();
    assert_eq!(chloe["node"]["source"], "IMPORT");
    assert_eq!(chloe["node"]["patient"]["phone"], "+12175552001");
    assert_eq!(chloe["node"]["patient"]["dateOfBirth"], "1984-03-12");
    // The imported patient's unique link opens their page.
    let link = chloe["node"]["uniqueLink"].as_str().unwrap();
    let path = format!(
        "/{}",
        link.split_once("://").unwrap().1.split_once('/').unwrap().1
    );
    assert_eq!(app.get(&path).await.status(), 200);

    // The same file again creates nothing; in another project the same people
    // are the same patients, newly enrolled.
    let again = import(
        &app,
        &admin,
        json!({ "kind": "PATIENTS", "projectId": project }),
        sample("patients.csv"),
    )
    .await;
    assert_eq!(again["createdCount"], 0, "{again}");
    assert_eq!(again["skippedCount"], 10);
    assert_eq!(again["failedCount"], 6);

    // A file that changes one patient's birth date and phone updates only those.
    let changed = import(
        &app,
        &admin,
        json!({ "kind": "PATIENTS", "projectId": project }),
        b"MRN,First,Last,DOB,Mobile\nMRN-1000,Liam,Johnson,1985-04-13,+1 217 555 2099\n".to_vec(),
    )
    .await;
    assert_eq!(changed["updatedCount"], 1, "{changed}");
    let patient = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::patient::Entity::find()
            .filter(entity::patient::Column::ExternalId.eq("MRN-1000"))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        (
            patient.first_name.as_deref(),
            patient.last_name.as_deref(),
            patient.date_of_birth.map(|d| d.to_string()),
            patient.phone.as_deref(),
        ),
        (
            Some("Liam"),
            Some("Johnson"),
            Some("1985-04-13".to_owned()),
            Some("+12175552099")
        ),
        "{backend:?}"
    );
    let second = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Flu shots\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = import(
        &app,
        &admin,
        json!({ "kind": "PATIENTS", "projectId": second }),
        sample("patients.csv"),
    )
    .await;
    assert_eq!(other["createdCount"], 10, "{other}");
    let patients: i64 = {
        use sea_orm::{EntityTrait, PaginatorTrait};
        i64::try_from(
            entity::patient::Entity::find()
                .count(&app.db)
                .await
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(patients, 10, "one patient per person across projects");
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_patients_import_needs_a_project_of_the_organisation_and_an_identity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, admin) = app.admin_in("Checks Clinic", "admin@checks.test").await;
    let (_, stranger) = app.admin_in("Elsewhere", "admin@elsewhere.test").await;
    let foreign = app
        .ok(
            &stranger,
            "mutation { createProject(input: { name: \"Theirs\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .clone();

    for (input, field) in [
        (json!({ "kind": "PATIENTS" }), "projectId"),
        (
            json!({ "kind": "PATIENTS", "projectId": foreign }),
            "projectId",
        ),
    ] {
        let (_, body) = app
            .upload(&admin, START, input, "patients.csv", sample("patients.csv"))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_fields(&body)[0].0, field, "{body}");
    }

    let project = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Ours\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .clone();
    // Importing patients touches patients outside any one care team.
    app.ok(
        &admin,
        "mutation { createRole(input: { name: \"Importer\", permissions: [IMPORTS_RUN, PATIENTS_READ, PATIENTS_WRITE] }) { id } }",
        json!({}),
    )
    .await;
    app.user(org, "importer@checks.test", &["Importer"]).await;
    let importer = app.login("importer@checks.test", PASSWORD).await;
    let (_, body) = app
        .upload(
            &importer,
            START,
            json!({ "kind": "PATIENTS", "projectId": project }),
            "patients.csv",
            sample("patients.csv"),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .upload(
            &admin,
            START,
            json!({ "kind": "PATIENTS", "projectId": project, "mapping": [
                { "column": "First", "field": "firstName" }, { "column": "Last", "field": "lastName" } ] }),
            "patients.csv",
            sample("patients.csv"),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_fields(&body)[0].0, "mapping", "{body}");

    // Nor may the importer read an admin's PATIENTS job, in a list or by id:
    // its rows are the file's patients.
    let job = import(
        &app,
        &admin,
        json!({ "kind": "PATIENTS", "projectId": project }),
        sample("patients.csv"),
    )
    .await;
    let listed = app
        .ok(
            &importer,
            "{ importJobs(first: 10) { totalCount edges { node { id rows(first: 5) { edges { node { values } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["importJobs"]["totalCount"], 0,
        "{backend:?}: {listed}"
    );
    let (_, body) = app
        .graphql(
            Some(&importer),
            "query($id: ID!) { importJob(id: $id) { id } }",
            json!({ "id": job["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // The admin may; each read of those rows, on the page or as a file, is
    // in the audit trail.
    let rows = app
        .ok(
            &admin,
            "query($id: ID!) { importJob(id: $id) { rows(first: 3) { edges { node { rowNumber } } } } }",
            json!({ "id": job["id"] }),
        )
        .await;
    assert_eq!(
        rows["importJob"]["rows"]["edges"].as_array().unwrap().len(),
        3
    );
    let download = app
        .client
        .get(job["failedRowsCsvUrl"].as_str().unwrap())
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status().as_u16(), 200);
    let trail = app
        .ok(
            &admin,
            "query($id: ID!) { auditEvents(first: 10, filter: { action: \"patients.read\", targetId: $id }) { edges { node { targetType changes actor { email } } } } }",
            json!({ "id": job["id"] }),
        )
        .await;
    let reads: Vec<&Value> = trail["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(reads.len(), 2, "{backend:?}: {trail}");
    assert_eq!(reads[0]["targetType"], "ImportJob");
    assert_eq!(reads[0]["actor"]["email"], "admin@checks.test");
    assert_eq!(reads[0]["changes"]["rows"], json!([2, 3, 4]), "{trail}");
    assert_eq!(reads[1]["changes"]["failedRows"], 6, "{trail}");
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_patient_fails_naming_the_first_row_in_the_preview_and_the_import() {
    // Rows 3 and 6 repeat earlier patients, by external id and by email (in
    // another case). Row 7 is invalid and so names no one: row 8, with its
    // external id, is the first valid MRN-3 and goes in.
    let file = "MRN,First,Last,Email,DOB\n\
        MRN-1,Ann,Lee,ann@mail.example,1980-01-01\n\
        MRN-1,Ann,Leigh,ann.leigh@mail.example,1980-01-01\n\
        MRN-2,Bo,Kim,,1981-02-02\n\
        ,Cy,Park,cy@mail.example,1982-03-03\n\
        ,Cy,Park,CY@Mail.Example,1982-03-03\n\
        MRN-3,Dee,Moss,,2999-01-01\n\
        MRN-3,Dee,Moss,,1983-04-04\n";
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let (_, admin) = app.admin_in("Repeats Clinic", "admin@repeats.test").await;
        let project = app
            .ok(
                &admin,
                "mutation { createProject(input: { name: \"Intake\" }) { id } }",
                json!({}),
            )
            .await["createProject"]["id"]
            .clone();
        let input = json!({ "kind": "PATIENTS", "projectId": project });

        let (_, body) = app
            .upload(&admin, PREVIEW, input.clone(), "patients.csv", file.into())
            .await;
        let preview = &body["data"]["previewImport"];
        assert_eq!(
            (
                &preview["totalRows"],
                &preview["validRows"],
                &preview["invalidRows"]
            ),
            (&json!(7), &json!(4), &json!(3)),
            "{backend:?}: {body}"
        );

        let job = import(&app, &admin, input, file.into()).await;
        assert_eq!(
            (&job["createdCount"], &job["failedCount"]),
            (&json!(4), &json!(3)),
            "{backend:?}: {job}"
        );
        let failed = failed_rows(&app, &admin, &job).await;
        assert_eq!(
            failed,
            [
                (
                    3,
                    "externalId".into(),
                    "repeats the patient of row 2".into()
                ),
                (6, "email".into(), "repeats the patient of row 5".into()),
                (7, "dateOfBirth".into(), "is in the future".into()),
            ],
            "{backend:?}"
        );
        app.stop().await;
    }
}
