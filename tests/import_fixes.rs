//! Fixing and undoing imports in place, end to end over HTTP on both backends:
//! values translated by the mapping (suggested by the preview, kept in
//! templates), a failed row edited in the log and retried, and a whole import
//! reverted while what others changed since is left alone.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use serde_json::{Value, json};

const PREVIEW: &str = "mutation($input: ImportInput!) { previewImport(input: $input) {
    suggestedMapping { column field values { from to } } validRows invalidRows
    sampleRows { rowNumber errors { field message } } } }";
const UPDATE_ROW: &str = "mutation($job: ID!, $row: Int!, $values: JSON!) {
    updateImportRow(jobId: $job, rowNumber: $row, values: $values) {
        rowNumber status editedAt values errors { field message } } }";
const JOB: &str = "query($id: ID!) { importJob(id: $id) {
    status createdCount updatedCount skippedCount failedCount
    retryOf { id } reverts { id }
    rows(first: 50) { edges { node { rowNumber status recordId retriedInJobId errors { field message } } } } } }";

/// An organisation with an admin who may import; the admin's token.
async fn importer(app: &TestApp) -> (uuid::Uuid, String) {
    let org = app.organization("Riverside").await;
    app.user(org, "admin@riverside.test", &["Admin"]).await;
    (org, app.login("admin@riverside.test", PASSWORD).await)
}

fn csv(lines: &[&str]) -> Vec<u8> {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text.into_bytes()
}

async fn job(app: &TestApp, token: &str, id: &str) -> Value {
    app.ok(token, JOB, json!({ "id": id })).await["importJob"].clone()
}

fn row(job: &Value, number: u64) -> &Value {
    &job["rows"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["rowNumber"] == number)
        .unwrap_or_else(|| panic!("no row {number} in {job}"))["node"]
}

/// A user's details by email, or null.
async fn person(app: &TestApp, token: &str, email: &str) -> Value {
    let data = app
        .ok(
            token,
            "query($s: String!) { users(first: 2, filter: { search: $s }) { edges { node {
                id email title employeeStatus status roles { name } } } } }",
            json!({ "s": email }),
        )
        .await;
    data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .find(|n| n["email"] == email)
        .unwrap_or(Value::Null)
}

fn role_names(person: &Value) -> Vec<String> {
    let mut names: Vec<String> = person["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[each_backend]
#[tokio::test]
async fn values_are_translated_as_the_preview_suggests_and_a_template_keeps_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = importer(&app).await;
    let file = csv(&[
        "Email,First Name,Last Name,Job Code,HR Status",
        "ana@riverside.test,Ana,Ortiz,MD,Active",
        "bo@riverside.test,Bo,Lind,PC; Biling,Term",
        "cy@riverside.test,Cy,Ng,Janitor,LOA",
    ]);
    let mapping = json!([
        { "column": "Email", "field": "email" },
        { "column": "First Name", "field": "firstName" },
        { "column": "Last Name", "field": "lastName" },
        { "column": "Job Code", "field": "roles" },
        { "column": "HR Status", "field": "employeeStatus" },
    ]);

    // Untranslated, the codes are no roles and the statuses none known.
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS", "mapping": mapping }),
            "staff.csv",
            file.clone(),
        )
        .await;
    let preview = &body["data"]["previewImport"];
    assert_eq!(preview["invalidRows"], 3, "{backend:?}: {body}");
    let suggested = preview["suggestedMapping"].as_array().unwrap();
    let values_of = |field: &str| {
        suggested
            .iter()
            .find(|m| m["field"] == field)
            .unwrap_or_else(|| panic!("no {field} in {suggested:?}"))["values"]
            .clone()
    };
    // Initials and near spellings name roles; HR words name statuses.
    // What is near nothing is left to the admin.
    assert_eq!(
        values_of("roles"),
        json!([
            { "from": "Biling", "to": "Billing" },
            { "from": "MD", "to": "Medical Director" },
            { "from": "PC", "to": "Patient Coordinator" },
        ]),
        "{backend:?}"
    );
    assert_eq!(
        values_of("employeeStatus"),
        json!([
            { "from": "LOA", "to": "Leave" },
            { "from": "Term", "to": "Inactive" },
        ])
    );

    // The admin keeps the suggestion in a template, adding one of their own.
    let mut kept: Vec<Value> = suggested.clone();
    for mapping in &mut kept {
        if mapping["field"] == "roles" {
            mapping["values"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "from": "janitor", "to": "Billing" }));
        }
    }
    let template = app
        .ok(
            &admin,
            "mutation($input: MappingTemplateInput!) { saveMappingTemplate(input: $input) {
                    id mapping { column field values { from to } } } }",
            json!({ "input": { "kind": "USERS", "name": "HR codes", "mapping": kept } }),
        )
        .await;
    let template = &template["saveMappingTemplate"];
    let roles_column = template["mapping"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["field"] == "roles")
        .unwrap()
        .clone();
    assert_eq!(roles_column["values"].as_array().unwrap().len(), 4);

    let job = app
        .import_finished(
            &admin,
            json!({ "kind": "USERS", "templateId": template["id"] }),
            "staff.csv",
            file,
        )
        .await;
    assert_eq!(job["createdCount"], 3, "{backend:?}: {job}");
    let ana = person(&app, &admin, "ana@riverside.test").await;
    assert_eq!(role_names(&ana), ["Medical Director"], "{ana}");
    assert_eq!(ana["employeeStatus"], "ACTIVE");
    let bo = person(&app, &admin, "bo@riverside.test").await;
    assert_eq!(role_names(&bo), ["Billing", "Patient Coordinator"], "{bo}");
    assert_eq!(bo["employeeStatus"], "INACTIVE");
    let cy = person(&app, &admin, "cy@riverside.test").await;
    assert_eq!(role_names(&cy), ["Billing"], "{cy}");
    assert_eq!(cy["employeeStatus"], "LEAVE");

    // A translation given twice is refused before anything runs.
    let (_, body) = app
        .upload(
            &admin,
            "mutation($input: ImportInput!) { startImport(input: $input) { id } }",
            json!({ "kind": "USERS", "mapping": [
                { "column": "Email", "field": "email" },
                { "column": "HR Status", "field": "employeeStatus",
                  "values": [{ "from": "Term", "to": "Inactive" }, { "from": "TERM", "to": "Leave" }] },
            ] }),
            "staff.csv",
            csv(&["Email,HR Status", "dee@riverside.test,Term"]),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        error_fields(&body)
            .iter()
            .any(|(field, message)| field == "mapping" && message.contains("twice")),
        "{body}"
    );
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_failed_row_fixed_in_place_goes_in_on_retry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = importer(&app).await;
    let file = csv(&[
        "Email,First Name,Last Name,Roles",
        "ana@riverside.test,Ana,Ortiz,Billing",
        "bo at riverside,Bo,Lind,Billing",
        "cy@riverside.test,Cy,Ng,Surgeon",
        "dee@riverside.test,Dee,Moss,Nobody",
    ]);
    let first = app
        .start_import(&admin, json!({ "kind": "USERS" }), "staff.csv", file)
        .await;
    let ended = app.finished_job(&admin, &first).await;
    assert_eq!(ended["createdCount"], 1, "{backend:?}: {ended}");
    assert_eq!(ended["failedCount"], 3, "{ended}");

    // A fix that is still wrong says why at once; the right one has no errors.
    let edit = |row: u64, values: Value| {
        let (app, admin, first) = (&app, &admin, &first);
        async move {
            app.graphql(
                Some(admin),
                UPDATE_ROW,
                json!({ "job": first, "row": row, "values": values }),
            )
            .await
            .1
        }
    };
    let body = edit(3, json!({ "Email": "bo@riverside" })).await;
    let fixed = &body["data"]["updateImportRow"];
    assert_eq!(fixed["status"], "FAILED", "{body}");
    assert_eq!(fixed["errors"][0]["field"], "email", "{body}");
    assert!(fixed["editedAt"].is_string(), "{body}");
    let body = edit(3, json!({ "Email": "bo@riverside.test" })).await;
    let fixed = &body["data"]["updateImportRow"];
    assert_eq!(fixed["errors"], json!([]), "{body}");
    assert_eq!(fixed["values"]["Email"], "bo@riverside.test");
    assert_eq!(fixed["values"]["First Name"], "Bo", "other cells stay");
    let body = edit(4, json!({ "Roles": "Billing" })).await;
    assert_eq!(
        body["data"]["updateImportRow"]["errors"],
        json!([]),
        "{body}"
    );

    // Only failed rows, only the file's columns, only cells.
    let body = edit(2, json!({ "First Name": "Anna" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_fields(&body)[0].0, "rowNumber", "{body}");
    let body = edit(5, json!({ "Shoe Size": "9", "Roles": ["Billing"] })).await;
    let mut fields: Vec<String> = error_fields(&body).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["values.Roles", "values.Shoe Size"], "{body}");
    let body = edit(99, json!({ "Roles": "Billing" })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // The edited rows run as a job of their own; the row left as it was
    // (row 5) stays failed in the first job.
    let retry = app
        .ok(
            &admin,
            "mutation($id: ID!) { retryFailedRows(jobId: $id) { id status totalRows } }",
            json!({ "id": first }),
        )
        .await["retryFailedRows"]
        .clone();
    assert_eq!(retry["totalRows"], 2, "{retry}");
    let retry_id = retry["id"].as_str().unwrap();
    let ended = app.finished_job(&admin, retry_id).await;
    assert_eq!(ended["status"], "FINISHED", "{backend:?}: {ended}");
    assert_eq!(ended["createdCount"], 2, "{ended}");
    let retried = job(&app, &admin, retry_id).await;
    assert_eq!(retried["retryOf"]["id"], first.as_str());
    assert_eq!(
        role_names(&person(&app, &admin, "cy@riverside.test").await),
        ["Billing"]
    );
    assert!(person(&app, &admin, "bo@riverside.test").await.is_object());
    let original = job(&app, &admin, &first).await;
    assert_eq!(row(&original, 3)["retriedInJobId"], retry_id);
    assert_eq!(row(&original, 5)["retriedInJobId"], Value::Null);

    // A retried row is edited in its retry; nothing edited, nothing to retry.
    let body = edit(3, json!({ "First Name": "Bob" })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let (_, body) = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { retryFailedRows(jobId: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // Someone who may not import cannot edit the log either.
    let (_, stranger) = app.admin_in("Elsewhere", "admin@elsewhere.test").await;
    let (_, body) = app
        .graphql(
            Some(&stranger),
            UPDATE_ROW,
            json!({ "job": first, "row": 5, "values": { "Roles": "Billing" } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_revert_undoes_an_import_and_leaves_alone_what_others_changed_since(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (org, admin) = importer(&app).await;
    app.user(org, "alice@riverside.test", &["Provider"]).await;
    app.user(org, "bob@riverside.test", &["Provider"]).await;
    let file = csv(&[
        "Email,First Name,Last Name,Title,Roles",
        "alice@riverside.test,Alice,Test,Charge Nurse,Billing",
        "bob@riverside.test,Bob,Test,Night Nurse,Provider",
        "carol@riverside.test,Carol,Hart,Nurse,Billing",
        "dan@riverside.test,Dan,Cole,Nurse,Billing",
        "not an email,Eve,Moss,Nurse,Billing",
        "erin@riverside.test,Erin,Park,,Billing",
    ]);
    let import = app
        .start_import(&admin, json!({ "kind": "USERS" }), "staff.csv", file)
        .await;
    let ended = app.finished_job(&admin, &import).await;
    assert_eq!(ended["createdCount"], 3, "{backend:?}: {ended}");
    assert_eq!(ended["updatedCount"], 2, "{ended}");

    // After the import, another admin gives Bob and Erin (who came
    // without one) a title, and Dan signs in.
    for email in ["bob@riverside.test", "erin@riverside.test"] {
        let someone = person(&app, &admin, email).await;
        app.ok(
            &admin,
            "mutation($id: ID!) { updateUser(id: $id, input: { title: \"Ward Lead\" }) { id } }",
            json!({ "id": someone["id"] }),
        )
        .await;
    }
    let dan = person(&app, &admin, "dan@riverside.test").await;
    let password = app
        .ok(
            &admin,
            "mutation($id: ID!) { resetUserPassword(id: $id) { generatedPassword } }",
            json!({ "id": dan["id"] }),
        )
        .await["resetUserPassword"]["generatedPassword"]
        .as_str()
        .unwrap()
        .to_owned();
    let dan_token = app.login("dan@riverside.test", &password).await;

    let revert = app
        .ok(
            &admin,
            "mutation($id: ID!) { revertImport(id: $id) { id status totalRows } }",
            json!({ "id": import }),
        )
        .await["revertImport"]
        .clone();
    assert_eq!(revert["totalRows"], 5, "{backend:?}: {revert}");
    let revert_id = revert["id"].as_str().unwrap();
    let ended = app.finished_job(&admin, revert_id).await;
    assert_eq!(ended["status"], "FINISHED", "{backend:?}: {ended}");
    assert_eq!(ended["updatedCount"], 3, "{ended}");
    assert_eq!(ended["skippedCount"], 2, "{ended}");

    // Alice has her title and roles back; Carol, who never used her
    // account, is gone; Dan is deactivated and his session ended.
    let alice = person(&app, &admin, "alice@riverside.test").await;
    assert_eq!(alice["title"], Value::Null, "{alice}");
    assert_eq!(role_names(&alice), ["Provider"], "{alice}");
    assert_eq!(
        person(&app, &admin, "carol@riverside.test").await,
        Value::Null
    );
    let dan = person(&app, &admin, "dan@riverside.test").await;
    assert_eq!(dan["status"], "INACTIVE", "{dan}");
    assert_eq!(role_names(&dan), Vec::<String>::new(), "{dan}");
    let (_, body) = app
        .graphql(Some(&dan_token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // Bob and Erin, edited since, are left as the other admin left them,
    // and the revert says so on their rows.
    let reverted = job(&app, &admin, revert_id).await;
    assert_eq!(reverted["reverts"]["id"], import.as_str());
    for (email, number) in [("bob@riverside.test", 3), ("erin@riverside.test", 7)] {
        let someone = person(&app, &admin, email).await;
        assert_eq!(someone["title"], "Ward Lead", "{someone}");
        assert_eq!(someone["status"], "ACTIVE", "{someone}");
        let outcome = row(&reverted, number);
        assert_eq!(outcome["status"], "SKIPPED", "{reverted}");
        assert_eq!(outcome["errors"][0]["field"], "title", "{reverted}");
        assert!(
            outcome["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("changed after the import"),
            "{reverted}"
        );
    }

    // Once is enough, and a revert is not itself reverted.
    for (id, code) in [(import.as_str(), "CONFLICT"), (revert_id, "BAD_USER_INPUT")] {
        let (_, body) = app
            .graphql(
                Some(&admin),
                "mutation($id: ID!) { revertImport(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&body), code, "{body}");
    }
    let actions = app.audit_actions(org).await;
    assert!(actions.iter().any(|a| a == "import.revert"), "{actions:?}");
    app.stop().await;
}

/// A revert removes the users an import created, unless records made since
/// name them: a user whose certification an admin has since recorded is
/// deactivated and keeps it. Two reverts sent at once make one.
#[each_backend]
#[tokio::test]
async fn a_revert_keeps_created_users_whom_later_records_name_and_runs_once_when_sent_twice(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = importer(&app).await;
    let file = csv(&[
        "Email,First Name,Last Name,Roles",
        "frank@riverside.test,Frank,Lowe,Billing",
        "gina@riverside.test,Gina,Marsh,Billing",
    ]);
    let import = app
        .start_import(&admin, json!({ "kind": "USERS" }), "staff.csv", file)
        .await;
    let ended = app.finished_job(&admin, &import).await;
    assert_eq!(ended["createdCount"], 2, "{backend:?}: {ended}");

    let frank = person(&app, &admin, "frank@riverside.test").await;
    app.ok(
        &admin,
        "mutation($id: ID!) { updateUserProfile(userId: $id, input: {
                certifications: [{ name: \"BLS\", expiresOn: \"2030-01-31\" }] }) { id } }",
        json!({ "id": frank["id"] }),
    )
    .await;

    let send = || {
        app.graphql(
            Some(&admin),
            "mutation($id: ID!) { revertImport(id: $id) { id } }",
            json!({ "id": import }),
        )
    };
    let (first, second) = tokio::join!(send(), send());
    let mut outcomes = [&first.1, &second.1]
        .map(|body| match body["data"]["revertImport"]["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(error_code(body).to_owned()),
        })
        .to_vec();
    outcomes.sort();
    let [Ok(revert), Err(code)] = &outcomes[..] else {
        panic!("{backend:?}: not one revert and one refusal: {outcomes:?}");
    };
    assert_eq!(code, "CONFLICT", "{backend:?}");

    let ended = app.finished_job(&admin, revert).await;
    assert_eq!(ended["status"], "FINISHED", "{backend:?}: {ended}");
    assert_eq!(
        person(&app, &admin, "gina@riverside.test").await,
        Value::Null
    );
    let frank = person(&app, &admin, "frank@riverside.test").await;
    assert_eq!(frank["status"], "INACTIVE", "{backend:?}: {frank}");
    assert_eq!(role_names(&frank), Vec::<String>::new(), "{frank}");
    let kept = app
        .ok(
            &admin,
            "query($id: ID!) { user(id: $id) { certifications { name } } }",
            json!({ "id": frank["id"] }),
        )
        .await;
    assert_eq!(
        kept["user"]["certifications"],
        json!([{ "name": "BLS" }]),
        "{kept}"
    );
    app.stop().await;
}
