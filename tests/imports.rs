//! The import center end to end over HTTP: the sample files admins really upload,
//! previews, background jobs with exact counts, failed rows to download, fix and
//! upload again, templates, and who may do what.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, Storage, TestApp, error_code, error_fields, sample};
use serde_json::{Value, json};

const PREVIEW: &str = "mutation($input: ImportInput!) { previewImport(input: $input) {
    headers suggestedMapping { column field } missingRequiredFields totalRows validRows invalidRows
    sampleRows { rowNumber status errors { field message } values } } }";
const START: &str =
    "mutation($input: ImportInput!) { startImport(input: $input) { id status totalRows } }";

/// An organisation with an admin who may import; the admin's token.
async fn importer(app: &TestApp, name: &str) -> String {
    let email = format!("admin@{}.test", name.to_lowercase().replace(' ', "-"));
    app.admin_in(name, &email).await.1
}

fn failed_rows(job_rows: &Value) -> Vec<(u64, Vec<String>)> {
    job_rows["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            (
                node["rowNumber"].as_u64().unwrap(),
                node["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f["field"].as_str().unwrap(),
                            f["message"].as_str().unwrap()
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The Excel export of a 40-row staff list, five rows of it bad, imported by a
/// new organisation's admin: the admin's token, the job's id and its final state.
async fn imported_excel_export(app: &TestApp) -> (String, String, Value) {
    let admin = importer(app, "Riverside").await;
    let (_, body) = app
        .upload(
            &admin,
            START,
            json!({ "kind": "USERS" }),
            "staff.csv",
            sample("staff_excel_utf8.csv"),
        )
        .await;
    assert_eq!(
        body["data"]["startImport"]["status"], "QUEUED",
        "the job returns at once: {body}"
    );
    let id = body["data"]["startImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.finished_job(&admin, &id).await;
    (admin, id, job)
}

/// The failed rows of `job` as the importer downloads them, in CSV.
async fn failed_rows_csv(app: &TestApp, admin: &str, job: &Value) -> String {
    let response = app
        .client
        .get(job["failedRowsCsvUrl"].as_str().unwrap())
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"staff-failed-rows.csv\"")
    );
    response.text().await.unwrap()
}

#[each_backend]
#[tokio::test]
async fn an_excel_export_previews_its_mapping_and_every_row_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = importer(&app, "Riverside").await;
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS" }),
            "staff.csv",
            sample("staff_excel_utf8.csv"),
        )
        .await;
    let preview = &body["data"]["previewImport"];
    assert_eq!(preview["totalRows"], 40, "{backend:?}: {body}");
    assert_eq!(preview["invalidRows"], 5, "{backend:?}: {preview}");
    assert_eq!(preview["validRows"], 35);
    assert_eq!(preview["missingRequiredFields"], json!([]));
    let mapping: Vec<(String, String)> = preview["suggestedMapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["column"].as_str().unwrap().to_owned(),
                m["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for pair in [
        ("Email Address", "email"),
        ("First Name", "firstName"),
        ("Last Name", "lastName"),
        ("Employee Status", "employeeStatus"),
        ("Job Title", "title"),
        ("Role(s)", "roles"),
    ] {
        assert!(
            mapping.contains(&(pair.0.to_owned(), pair.1.to_owned())),
            "{pair:?} not in {mapping:?}"
        );
    }
    let row19 = preview["sampleRows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rowNumber"] == 19)
        .unwrap();
    assert_eq!(
        row19["values"]["Job Title"], "Nurse, \"charge\" shift\nweekends",
        "a quoted cell keeps its comma, quotes and line break"
    );
    let data = app
        .ok(&admin, "{ users { totalCount } }", Value::Null)
        .await;
    assert_eq!(data["users"]["totalCount"], 1, "a preview writes nothing");
}

#[each_backend]
#[tokio::test]
async fn an_excel_export_imports_with_exact_counts_and_names_why_each_row_failed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, id, job) = imported_excel_export(&app).await;
    assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{backend:?}: {job}");
    assert_eq!(
        (
            job["totalRows"].as_u64(),
            job["processedRows"].as_u64(),
            job["createdCount"].as_u64(),
            job["failedCount"].as_u64()
        ),
        (Some(40), Some(40), Some(35), Some(5))
    );
    assert_eq!(job["progress"], 1.0);

    let data = app
        .ok(&admin, "query($id: ID!) { importJob(id: $id) { rows(first: 100, status: FAILED) { totalCount edges { node { rowNumber errors { field message } } } } } }", json!({ "id": id }))
        .await;
    let failed = failed_rows(&data["importJob"]["rows"]);
    let numbers: Vec<u64> = failed.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [7, 10, 13, 16, 22], "{failed:?}");
    let reasons = |row: u64| failed.iter().find(|(n, _)| *n == row).unwrap().1.join("; ");
    assert!(
        reasons(7).starts_with("email: is not a valid email"),
        "{}",
        reasons(7)
    );
    assert!(reasons(10).contains("Astronaut"), "{}", reasons(10));
    assert!(reasons(13).contains("Retired"), "{}", reasons(13));
    assert!(
        reasons(16).contains("repeats the email of row 4"),
        "{}",
        reasons(16)
    );
    assert!(
        reasons(22).contains("email: is required"),
        "{}",
        reasons(22)
    );
}

#[each_backend]
#[tokio::test]
async fn a_cell_with_two_roles_grants_both(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, _) = imported_excel_export(&app).await;
    let data = app
        .ok(
            &admin,
            "{ users(filter: { search: \"liam.muller3\" }) { edges { node { roles { name } } } } }",
            Value::Null,
        )
        .await;
    let roles: Vec<&str> = data["users"]["edges"][0]["node"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["Billing", "Clinical Provider"], "{backend:?}");
}

#[each_backend]
#[tokio::test]
async fn the_failed_rows_download_as_csv_and_xlsx_with_the_original_columns_first(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, job) = imported_excel_export(&app).await;
    let text = failed_rows_csv(&app, &admin, &job).await;
    let mut lines = text.trim_start_matches('\u{feff}').lines();
    assert_eq!(
        lines.next(),
        Some("Email Address,First Name,Last Name,Employee Status,Job Title,Role(s),Errors")
    );
    assert_eq!(
        text.lines().count(),
        6,
        "{backend:?}: a header and five failed rows: {text}"
    );
    let xlsx = app
        .client
        .get(job["failedRowsXlsxUrl"].as_str().unwrap())
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status().as_u16(), 200);
    assert_eq!(&xlsx.bytes().await.unwrap()[..2], b"PK");
    let anonymous = app
        .client
        .get(job["failedRowsCsvUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[each_backend]
#[tokio::test]
async fn the_failed_rows_corrected_and_uploaded_again_go_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, job) = imported_excel_export(&app).await;
    let text = failed_rows_csv(&app, &admin, &job).await;
    let fixed = text
        .trim_start_matches('\u{feff}')
        .replace(
            "mateo.rossi5-at-riverside-clinic.example",
            "mateo.rossi5@riverside-clinic.example",
        )
        .replace("Astronaut", "Billing")
        .replace("Retired", "Inactive")
        .replace(
            "ANNA.WILSON2@RIVERSIDE-CLINIC.EXAMPLE",
            "grace.lopez14@riverside-clinic.example",
        )
        .replace(
            ",José,García,Inactive",
            "jose.garcia20@riverside-clinic.example,José,García,Inactive",
        );
    let job = app
        .import_finished(
            &admin,
            json!({ "kind": "USERS" }),
            "fixed.csv",
            fixed.into_bytes(),
        )
        .await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["createdCount"].as_u64(),
            job["failedCount"].as_u64()
        ),
        (Some("FINISHED"), Some(5), Some(0)),
        "{backend:?}: {job}"
    );
    assert_eq!(job["failedRowsCsvUrl"], Value::Null);
}

#[each_backend]
#[tokio::test]
async fn the_same_file_again_skips_every_row_already_there(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, _) = imported_excel_export(&app).await;
    let job = app
        .import_finished(
            &admin,
            json!({ "kind": "USERS" }),
            "staff.csv",
            sample("staff_excel_utf8.csv"),
        )
        .await;
    assert_eq!(
        (
            job["createdCount"].as_u64(),
            job["updatedCount"].as_u64(),
            job["skippedCount"].as_u64(),
            job["failedCount"].as_u64()
        ),
        (Some(0), Some(0), Some(35), Some(5)),
        "{backend:?}: {job}"
    );
    let data = app
        .ok(&admin, "{ users { totalCount } }", Value::Null)
        .await;
    assert_eq!(data["users"]["totalCount"], 36, "the admin and 35 imported");
}

#[each_backend]
#[tokio::test]
async fn a_european_export_maps_itself_and_a_windows_file_is_refused_before_any_row(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = importer(&app, "Praxis Nord").await;
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS" }),
            "nord.csv",
            sample("staff_semicolon.csv"),
        )
        .await;
    let fields: Vec<&str> = body["data"]["previewImport"]["suggestedMapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 5, "{body}");
    let job = app
        .import_finished(
            &admin,
            json!({ "kind": "USERS" }),
            "nord.csv",
            sample("staff_semicolon.csv"),
        )
        .await;
    assert_eq!(
        (job["status"].as_str(), job["createdCount"].as_u64()),
        (Some("FINISHED"), Some(10)),
        "{backend:?}: {job}"
    );

    for query in [PREVIEW, START] {
        let (status, body) = app
            .upload(
                &admin,
                query,
                json!({ "kind": "USERS" }),
                "win.csv",
                sample("staff_windows1252.csv"),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let (field, message) = &error_fields(&body)[0];
        assert_eq!(field, "file");
        assert!(
            message.contains("line 3") && message.contains("CSV UTF-8"),
            "{message}"
        );
    }
    let data = app
        .ok(&admin, "{ importJobs { totalCount } }", Value::Null)
        .await;
    assert_eq!(
        data["importJobs"]["totalCount"], 1,
        "the refused file left no job"
    );
}

#[each_backend]
#[tokio::test]
async fn providers_import_with_their_practice_details_and_bad_npis_fail_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = importer(&app, "Lakeside").await;
    let id = app
        .start_import(
            &admin,
            json!({ "kind": "PROVIDERS" }),
            "providers.csv",
            sample("providers.csv"),
        )
        .await;
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(
        (
            job["totalRows"].as_u64(),
            job["createdCount"].as_u64(),
            job["failedCount"].as_u64()
        ),
        (Some(12), Some(10), Some(2)),
        "{backend:?}: {job}"
    );
    let data = app
        .ok(&admin, "query($id: ID!) { importJob(id: $id) { rows(status: FAILED) { edges { node { rowNumber errors { field message } } } } } }", json!({ "id": id }))
        .await;
    let failed = failed_rows(&data["importJob"]["rows"]);
    assert_eq!(failed.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [4, 7]);
    assert!(
        failed[0].1[0].starts_with("npi: ") && failed[0].1[0].contains("check digit"),
        "{failed:?}"
    );
    assert!(failed[1].1[0].contains("exactly 10 digits"), "{failed:?}");
    let data = app
        .ok(&admin, "{ providers(filter: { search: \"garcia0\" }) { edges { node { npi phone specialty practiceAddress { postalCode } user { roles { name } } } } } }", Value::Null)
        .await;
    let provider = &data["providers"]["edges"][0]["node"];
    assert_eq!(provider["npi"], "1203069251");
    assert_eq!(provider["phone"], "+12175550100");
    assert_eq!(provider["practiceAddress"]["postalCode"], "62700");
    assert_eq!(provider["user"]["roles"][0]["name"], "Provider");
}

/// Two pairs of rows a batch apart, each pair holding one NPI, in four
/// batches. On PostgreSQL with the default pool of ten, three batches are
/// written at once, so both rows of a pair may insert it together; however
/// that goes, each later row fails alone and the counts are exact.
#[each_backend]
#[tokio::test]
async fn one_npi_a_batch_apart_fails_the_later_row_alone(backend: Backend) {
    let app = TestApp::spawn_with(Storage::new(backend).await, |c| c.db_pool_size = 10).await;
    let admin = importer(&app, "Farside").await;
    let mut file = String::from("Email,First Name,Last Name,NPI\n");
    for n in 0..3200 {
        let npi = common::people::npi(match n {
            1100 => 0,
            2100 => 1000,
            _ => n,
        });
        file.push_str(&format!("dr{n}@farside.test,Ann,Lee{n},{npi}\n"));
    }
    let id = app
        .start_import(
            &admin,
            json!({ "kind": "PROVIDERS" }),
            "providers.csv",
            file.into_bytes(),
        )
        .await;
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(
        (
            &job["status"],
            job["createdCount"].as_u64(),
            job["failedCount"].as_u64()
        ),
        (&json!("FINISHED_WITH_ERRORS"), Some(3198), Some(2)),
        "{backend:?}: {job}"
    );
    let data = app
        .ok(&admin, "query($id: ID!) { importJob(id: $id) { rows(status: FAILED) { edges { node { rowNumber errors { field message } } } } } }", json!({ "id": id }))
        .await;
    let failed = failed_rows(&data["importJob"]["rows"]);
    let numbers: Vec<u64> = failed.iter().map(|(number, _)| *number).collect();
    assert_eq!(numbers, [1102, 2102], "{backend:?}: {failed:?}");
    assert!(
        failed
            .iter()
            .all(|(_, errors)| errors[0].starts_with("npi: ")),
        "{failed:?}"
    );
}

#[each_backend]
#[tokio::test]
async fn mappings_templates_dry_runs_and_access_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = importer(&app, "Hillside").await;
    let file = sample("staff_semicolon.csv");

    // A mapping that names an unknown field, repeats one and leaves email out.
    let (_, body) = app
        .upload(&admin, START, json!({ "kind": "USERS", "mapping": [
            { "column": "Surname", "field": "lastName" }, { "column": "Position", "field": "lastName" },
            { "column": "Status", "field": "shoeSize" } ] }), "nord.csv", file.clone())
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let messages: Vec<String> = error_fields(&body).into_iter().map(|(_, m)| m).collect();
    assert!(
        messages.iter().any(|m| m.contains("mapped twice")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("shoeSize")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("required fields are not mapped: email")),
        "{messages:?}"
    );

    // A template maps the file by itself; names are unique per kind.
    const SAVE: &str = "mutation($i: MappingTemplateInput!) { saveMappingTemplate(input: $i) { id name settings { delimiter updateExisting } } }";
    let template = json!({ "i": { "kind": "USERS", "name": "Praxis export", "settings": { "delimiter": ";", "updateExisting": false },
        "mapping": [ { "column": "E-mail", "field": "email" }, { "column": "Surname", "field": "lastName" } ] } });
    let data = app.ok(&admin, SAVE, template.clone()).await;
    let template_id = data["saveMappingTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data["saveMappingTemplate"]["settings"]["delimiter"], ";");
    let (_, body) = app.graphql(Some(&admin), SAVE, template).await;
    assert_eq!(error_code(&body), "CONFLICT");
    let (_, body) = app
        .graphql(Some(&admin), SAVE, json!({ "i": { "kind": "USERS", "name": "No email", "mapping": [ { "column": "Surname", "field": "lastName" } ] } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A dry run records every outcome and writes no record.
    let id = app
        .start_import(
            &admin,
            json!({ "kind": "USERS", "templateId": template_id, "dryRun": true }),
            "nord.csv",
            file.clone(),
        )
        .await;
    let job = app.finished_job(&admin, &id).await;
    assert_eq!(job["createdCount"], 10, "{backend:?}: {job}");
    let data = app
        .ok(
            &admin,
            "{ users { totalCount } mappingTemplates(kind: USERS) { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(data["users"]["totalCount"], 1);
    assert_eq!(data["mappingTemplates"][0]["name"], "Praxis export");
    app.ok(
        &admin,
        "mutation($id: ID!) { deleteMappingTemplate(id: $id) }",
        json!({ "id": template_id }),
    )
    .await;

    // Without IMPORTS_RUN nothing of it is allowed; another organisation sees nothing.
    let org = app.organization("Nosy").await;
    app.user(org, "clerk@nosy.test", &["Billing"]).await;
    app.user(org, "admin@nosy.test", &["Admin"]).await;
    let clerk = app.login("clerk@nosy.test", PASSWORD).await;
    let (_, body) = app
        .upload(
            &clerk,
            PREVIEW,
            json!({ "kind": "USERS" }),
            "nord.csv",
            file.clone(),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let other = app.login("admin@nosy.test", PASSWORD).await;
    let data = app
        .ok(
            &other,
            "query($id: ID!) { importJob(id: $id) { id } importJobs { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "importJob": null, "importJobs": { "totalCount": 0 } })
    );
    let download = app
        .client
        .get(format!("{}/imports/{id}/failed-rows.csv", app.address))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status().as_u16(), 404);
    let (_, body) = app
        .graphql(
            Some(&other),
            "mutation($id: ID!) { cancelImport(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn import_progress_is_pushed_over_the_websocket_until_the_final_value() {
    use futures_util::StreamExt;
    use graphql_client::GraphQLQuery;
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

    struct Progress;
    impl GraphQLQuery for Progress {
        type Variables = Value;
        type ResponseData = Value;
        fn build_query(variables: Value) -> graphql_client::QueryBody<Value> {
            graphql_client::QueryBody {
                variables,
                query: "subscription Follow($id: ID!) { importJobProgress(id: $id) { status processedRows totalRows createdCount progress } }",
                operation_name: "Follow",
            }
        }
    }

    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let admin = importer(&app, "Progress Clinic").await;
        let id = app
            .start_staff_import(&admin, common::staff_file(3000, "progress.test"))
            .await;

        let mut request = app.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (connection, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (client, actor) = graphql_ws_client::Client::build(connection)
            .payload(json!({ "token": admin }))
            .unwrap()
            .await
            .unwrap();
        tokio::spawn(actor.into_future());
        let mut values = client
            .subscribe(
                graphql_ws_client::graphql::StreamingOperation::<Progress>::new(
                    json!({ "id": id }),
                ),
            )
            .await
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_millis(1500), values.next())
                .await
                .expect("a value at least every second");
            let Some(value) = next else { break };
            let value = value.unwrap();
            assert!(value.errors.is_none(), "{:?}", value.errors);
            seen.push(value.data.unwrap()["importJobProgress"].clone());
        }
        let last = seen.last().unwrap();
        assert_eq!(last["status"], "FINISHED", "{backend:?}: {seen:?}");
        assert_eq!(last["createdCount"], 3000);
        assert_eq!(last["progress"], 1.0);
        let progress: Vec<f64> = seen
            .iter()
            .map(|v| v["progress"].as_f64().unwrap())
            .collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    }
}

#[tokio::test]
async fn an_import_changes_only_the_fields_its_rows_change() {
    const STAFF: &str = "{ users(first: 10, filter: { search: \"@fields.test\" }) { edges { node { email firstName lastName title mobilePhone } } } }";
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let admin = importer(&app, "Fields Clinic").await;
        let run = |file: &'static str| {
            let (app, admin) = (&app, &admin);
            async move {
                let id = app
                    .start_staff_import(admin, file.as_bytes().to_vec())
                    .await;
                app.finished_job(admin, &id).await
            }
        };
        let job = run("Email,First Name,Last Name,Job Title,Mobile Phone\n\
                       a@fields.test,Ann,Adams,Nurse,+14155550101\n\
                       b@fields.test,Ben,Brown,Nurse,+14155550102\n\
                       c@fields.test,Cat,Clark,Nurse,+14155550103\n")
        .await;
        assert_eq!(job["createdCount"], 3, "{backend:?}: {job}");

        // A title for two, a last name for one, a blank title kept, and one row
        // that changes nothing.
        let job = run("Email,Last Name,Job Title\n\
                       a@fields.test,,Charge Nurse\n\
                       b@fields.test,Baker,Midwife\n\
                       c@fields.test,Clark,\n")
        .await;
        assert_eq!(
            (
                &job["updatedCount"],
                &job["skippedCount"],
                &job["failedCount"]
            ),
            (&json!(2), &json!(1), &json!(0)),
            "{backend:?}: {job}"
        );
        let data = app.ok(&admin, STAFF, Value::Null).await;
        let mut people: Vec<(String, String, String, String, String)> = data["users"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let n = &e["node"];
                let s = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
                (
                    s("email"),
                    s("firstName"),
                    s("lastName"),
                    s("title"),
                    s("mobilePhone"),
                )
            })
            .collect();
        people.sort();
        let person = |e: &str, f: &str, l: &str, t: &str, m: &str| {
            (
                e.to_owned(),
                f.to_owned(),
                l.to_owned(),
                t.to_owned(),
                m.to_owned(),
            )
        };
        assert_eq!(
            people,
            [
                person(
                    "a@fields.test",
                    "Ann",
                    "Adams",
                    "Charge Nurse",
                    "+14155550101"
                ),
                person("b@fields.test", "Ben", "Baker", "Midwife", "+14155550102"),
                person("c@fields.test", "Cat", "Clark", "Nurse", "+14155550103"),
            ],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_the_database_always_refuses_fails_the_job_and_keeps_the_batches_before_it() {
    use sea_orm::ConnectionTrait;
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let token = importer(&app, "Refusing Clinic").await;
        // The database refuses one row of the second batch (rows are written
        // 1,000 at a time), every time.
        let refuse = match backend {
            common::Backend::Production => vec![
                "CREATE FUNCTION refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.email = 'staff1500@refusing.test' THEN RAISE EXCEPTION 'refused'; END IF;
                   RETURN NEW;
                 END $$",
                "CREATE TRIGGER refuse BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_user()",
            ],
            common::Backend::Embedded => vec![
                "CREATE TRIGGER refuse BEFORE INSERT ON users
                 WHEN NEW.email = 'staff1500@refusing.test'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ],
        };
        for statement in refuse {
            app.db.execute_unprepared(statement).await.unwrap();
        }
        let mut file = String::from("Email,First Name,Last Name\n");
        for i in 0..2_500 {
            file.push_str(&format!("staff{i}@refusing.test,Staff,Member {i}\n"));
        }
        let id = app.start_staff_import(&token, file.into_bytes()).await;
        let job = app.finished_job(&token, &id).await;
        assert_eq!(job["status"], "FAILED", "{backend:?}: {job}");
        let message = job["errorMessage"].as_str().unwrap();
        assert!(
            message.contains("after 5 attempts") && message.contains("the 1000 rows before"),
            "{message}"
        );
        // The first batch stays, with its outcomes; nothing of the second.
        assert_eq!(job["processedRows"], 1000, "{job}");
        assert_eq!(job["createdCount"], 1000, "{job}");
        let data = app
            .ok(
                &token,
                "{ first: users(first: 1, filter: { search: \"staff999@\" }) { totalCount }
                   second: users(first: 1, filter: { search: \"staff1001@\" }) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(data["first"]["totalCount"], 1, "{data}");
        assert_eq!(data["second"]["totalCount"], 0, "{data}");
        app.stop().await;
    }
}

/// The flow admins follow: preview the file, then import the same file. The
/// import does what the preview said, over more batches than a database
/// connection needs to settle on a plan for its lookups.
#[each_backend]
#[tokio::test]
async fn a_previewed_file_imports_as_its_preview_said(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = importer(&app, "Riverside").await;
    let (file, bad) = common::hr_staff_file(7_000);

    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS" }),
            "hr-export.csv",
            file.clone(),
        )
        .await;
    let preview = &body["data"]["previewImport"];
    assert_eq!(preview["totalRows"], 7_000, "{backend:?}: {body}");
    assert_eq!(preview["invalidRows"], bad, "{backend:?}: {preview}");
    assert_eq!(preview["validRows"], 7_000 - bad);

    let job = app
        .import_finished(&admin, json!({ "kind": "USERS" }), "hr-export.csv", file)
        .await;
    assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{backend:?}: {job}");
    assert_eq!(job["createdCount"], 7_000 - bad, "{job}");
    assert_eq!(job["failedCount"], bad, "{job}");

    // Roles and employee status went in with the people.
    let data = app
        .ok(
            &admin,
            "{ users(first: 2, filter: { search: \"nurse6996@hr\" }) { edges { node { employeeStatus roles { name } } } }
                   leave: users(first: 2, filter: { search: \"nurse6990@hr\" }) { edges { node { employeeStatus roles { name } } } } }",
            json!({}),
        )
        .await;
    let nurse = &data["users"]["edges"][0]["node"];
    assert_eq!(nurse["employeeStatus"], "ACTIVE", "{data}");
    let mut roles: Vec<&str> = nurse["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["Billing", "Provider"], "{data}");
    assert_eq!(
        data["leave"]["edges"][0]["node"]["employeeStatus"], "LEAVE",
        "{data}"
    );
}

/// When each of `tables` was last analysed by hand, as PostgreSQL counts it.
async fn analysed_at(app: &TestApp, tables: &[&str]) -> Vec<Option<String>> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let mut seen = Vec::new();
    for table in tables {
        let row = app
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT last_analyze::text FROM pg_stat_user_tables WHERE relname = $1",
                [(*table).into()],
            ))
            .await
            .unwrap()
            .unwrap();
        seen.push(row.try_get_by_index::<Option<String>>(0).unwrap());
    }
    seen
}

#[tokio::test]
async fn a_large_import_leaves_the_planner_statistics_of_what_it_wrote_fresh() {
    if !common::reachable(Backend::Production).await {
        return;
    }
    let app = TestApp::spawn(Backend::Production).await;
    let token = importer(&app, "Growing Clinic").await;
    let tables = ["users", "user_roles", "import_rows"];
    assert_eq!(analysed_at(&app, &tables).await, [None, None, None]);

    // 300 staff into an organisation of one: the tables the planner knew as
    // a few rows now hold hundreds.
    let mut file = String::from("Email,First Name,Last Name,Roles\n");
    for i in 0..300 {
        file.push_str(&format!("staff{i}@growing.test,Staff,Member {i},Billing\n"));
    }
    let id = app.start_staff_import(&token, file.into_bytes()).await;
    assert_eq!(app.finished_job(&token, &id).await["createdCount"], 300);
    // The statistics follow the job's end, as soon as it is recorded.
    let mut after = analysed_at(&app, &tables).await;
    for _ in 0..50 {
        if after.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = analysed_at(&app, &tables).await;
    }
    assert!(
        after.iter().all(Option::is_some),
        "users, their roles and the row log: {after:?}"
    );

    // Ten more change too little of them to be worth it, as autovacuum counts.
    let mut file = String::from("Email,First Name,Last Name\n");
    for i in 0..10 {
        file.push_str(&format!("late{i}@growing.test,Late,Member {i}\n"));
    }
    let id = app.start_staff_import(&token, file.into_bytes()).await;
    assert_eq!(app.finished_job(&token, &id).await["createdCount"], 10);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(analysed_at(&app, &tables).await, after);
}
