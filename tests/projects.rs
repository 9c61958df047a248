//! Projects and patients end to end, as an admin and a patient use them: the
//! generic link and its QR code, unique links, requests by email (a real SMTP
//! conversation) and by text message (a real HTTP webhook), responses, response
//! rates, forged tokens, and another organisation.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{
    Backend, PASSWORD, TestApp, error_code, error_fields, smtp::SmtpSink, webhook::WebhookSink,
};
use serde_json::{Value, json};

const PROJECT_FIELDS: &str = "id name description archived patientLink qrCodeUrl stats { enrolled requested responded outstanding responseRate byChannel { channel requested responded outstanding responseRate } }";

async fn create_project(app: &TestApp, token: &str, name: &str) -> Value {
    let data = app
        .ok(
            token,
            &format!(
                "mutation($input: ProjectInput!) {{ createProject(input: $input) {{ {PROJECT_FIELDS} }} }}"
            ),
            json!({ "input": { "name": name, "description": "Seasonal flu vaccination follow-up." } }),
        )
        .await;
    data["createProject"].clone()
}

async fn project(app: &TestApp, token: &str, id: &str) -> Value {
    app.ok(
        token,
        &format!("query($id: ID!) {{ project(id: $id) {{ {PROJECT_FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await["project"]
        .clone()
}

async fn enrollments(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let data = app
        .ok(
            token,
            "query($id: ID!) { project(id: $id) { enrollments(first: 100) { totalCount edges { node {
                id externalId status source requestedAt respondedAt requestCount requestChannel uniqueLink
                delivery { status error }
                patient { id externalId firstName lastName email phone dateOfBirth } } } } } }",
            json!({ "id": id }),
        )
        .await;
    data["project"]["enrollments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The path of a link built from the server's public URL.
fn path_of(link: &str) -> String {
    let rest = link.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}

async fn respond(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn wait_for<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited 10 s in vain");
}

const ADD: &str = "mutation($p: ID!, $input: ProjectPatientInput!) {
    addProjectPatient(projectId: $p, input: $input) { id status source uniqueLink patient { id } } }";
const SEND: &str = "mutation($p: ID!, $ids: [ID!], $c: RequestChannel!) {
    sendProjectRequests(projectId: $p, enrollmentIds: $ids, channel: $c) }";
const UNIQUE_LINK: &str =
    "query($id: ID!, $x: String!) { project(id: $id) { uniqueLink(externalId: $x) } }";

/// A clinic whose requests go out by mail to an SMTP sink and by text to a
/// webhook sink that refuses one number.
struct Lakeside {
    app: TestApp,
    admin: String,
    smtp: SmtpSink,
    sms: WebhookSink,
}

async fn lakeside(backend: Backend) -> Lakeside {
    let smtp = SmtpSink::start().await;
    let sms = WebhookSink::start(&["+12175550999"]).await;
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage, |c| {
        c.smtp_url = Some(smtp.url());
        c.mail_from = "Rollcall <no-reply@rollcall.test>".into();
        c.sms_webhook_url = Some(sms.url());
    })
    .await;
    let (_, admin) = app.admin_in("Lakeside Clinic", "admin@lakeside.test").await;
    Lakeside {
        app,
        admin,
        smtp,
        sms,
    }
}

/// Ada's answer on the generic link's form.
const ADA: [(&str, &str); 4] = [
    ("firstName", "Ada"),
    ("lastName", "Lovelace"),
    ("email", "Ada@Mail.Example"),
    ("consent", "yes"),
];

/// Add a patient to a project; the enrolment as the server returns it.
async fn add_patient(clinic: &Lakeside, project_id: &str, input: Value) -> Value {
    clinic
        .app
        .ok(
            &clinic.admin,
            ADD,
            json!({ "p": project_id, "input": input }),
        )
        .await["addProjectPatient"]
        .clone()
}

#[each_backend]
#[tokio::test]
async fn a_projects_link_serves_its_form_to_anyone_and_its_qr_code_to_staff_only(backend: Backend) {
    let Lakeside { app, admin, .. } = lakeside(backend).await;
    let flu = create_project(&app, &admin, "Flu outreach").await;
    let link = flu["patientLink"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&app.address), "{link}");
    let qr = app
        .client
        .get(flu["qrCodeUrl"].as_str().unwrap())
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
    let anonymous_qr = app.get(&path_of(flu["qrCodeUrl"].as_str().unwrap())).await;
    assert_eq!(anonymous_qr.status(), 401);

    let page = app.get(&path_of(&link)).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("Flu outreach") && html.contains("Seasonal flu vaccination"));
    assert!(html.contains(r#"name="firstName""#) && html.contains(r#"name="consent""#));
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn an_invalid_response_shows_the_form_again_with_its_reasons_and_enrols_no_one(
    backend: Backend,
) {
    let Lakeside { app, admin, .. } = lakeside(backend).await;
    let flu = create_project(&app, &admin, "Flu outreach").await;
    let link = flu["patientLink"].as_str().unwrap();
    let (status, html) = respond(
        &app,
        &path_of(link),
        &[
            ("firstName", "Ada"),
            ("lastName", ""),
            ("email", "not-an-email"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("Last name: is required"), "{html}");
    assert!(
        html.contains("Email: is not a valid email address"),
        "{html}"
    );
    assert!(html.contains("Consent: is required"), "{html}");
    assert!(
        html.contains(r#"value="Ada""#),
        "the form keeps what was typed"
    );
    let flu_id = flu["id"].as_str().unwrap();
    assert!(enrollments(&app, &admin, flu_id).await.is_empty());
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_response_enrols_its_patient_once_as_responded(backend: Backend) {
    let Lakeside { app, admin, .. } = lakeside(backend).await;
    let flu = create_project(&app, &admin, "Flu outreach").await;
    let link = flu["patientLink"].as_str().unwrap();
    for _ in 0..2 {
        let (status, html) = respond(&app, &path_of(link), &ADA).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Thank you"));
    }
    let enrolled = enrollments(&app, &admin, flu["id"].as_str().unwrap()).await;
    assert_eq!(enrolled.len(), 1, "{enrolled:?}");
    assert_eq!(enrolled[0]["status"], "RESPONDED");
    assert_eq!(enrolled[0]["source"], "GENERIC_LINK");
    assert_eq!(enrolled[0]["patient"]["email"], "ada@mail.example");
    assert!(enrolled[0]["respondedAt"].is_string());
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_unique_link_stays_the_same_asks_only_for_consent_and_enrols_its_external_id(
    backend: Backend,
) {
    let Lakeside { app, admin, .. } = lakeside(backend).await;
    let flu = create_project(&app, &admin, "Flu outreach").await;
    let flu_id = flu["id"].as_str().unwrap();
    let unique = app
        .ok(&admin, UNIQUE_LINK, json!({ "id": flu_id, "x": "MRN-9" }))
        .await["project"]["uniqueLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = app
        .ok(&admin, UNIQUE_LINK, json!({ "id": flu_id, "x": "MRN-9" }))
        .await;
    assert_eq!(again["project"]["uniqueLink"], unique.as_str());
    let html = app.get(&path_of(&unique)).await.text().await.unwrap();
    assert!(!html.contains(r#"name="firstName""#) && html.contains(r#"name="consent""#));
    let (status, _) = respond(&app, &path_of(&unique), &[("consent", "yes")]).await;
    assert_eq!(status, 200);
    let enrolled = enrollments(&app, &admin, flu_id).await;
    let mrn9 = enrolled
        .iter()
        .find(|e| e["externalId"] == "MRN-9")
        .unwrap_or_else(|| panic!("{enrolled:?}"));
    assert_eq!(mrn9["status"], "RESPONDED");
    assert_eq!(mrn9["source"], "UNIQUE_LINK");
    assert_eq!(mrn9["uniqueLink"], unique.as_str());
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn forged_tokens_and_a_rotated_link_enrol_no_one(backend: Backend) {
    let Lakeside { app, admin, .. } = lakeside(backend).await;
    let flu = create_project(&app, &admin, "Flu outreach").await;
    let flu_id = flu["id"].as_str().unwrap();
    let link = flu["patientLink"].as_str().unwrap();
    let forged = format!("/p/{}", "A".repeat(43));
    assert_eq!(app.get(&forged).await.status(), 404);
    assert_eq!(respond(&app, &forged, &ADA).await.0, 404);
    assert_eq!(respond(&app, "/p/..%2F..%2Fetc", &ADA).await.0, 404);
    let rotated = app
        .ok(
            &admin,
            "mutation($id: ID!) { rotateProjectLink(id: $id) { patientLink } }",
            json!({ "id": flu_id }),
        )
        .await;
    assert_ne!(rotated["rotateProjectLink"]["patientLink"], link);
    assert_eq!(respond(&app, &path_of(link), &ADA).await.0, 404);
    assert!(enrollments(&app, &admin, flu_id).await.is_empty());
    // The new link is the one that enrols.
    let new_link = rotated["rotateProjectLink"]["patientLink"]
        .as_str()
        .unwrap();
    assert_eq!(respond(&app, &path_of(new_link), &ADA).await.0, 200);
    assert_eq!(enrollments(&app, &admin, flu_id).await.len(), 1);
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_patient_added_to_a_second_project_is_the_same_patient(backend: Backend) {
    let clinic = lakeside(backend).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let outreach = create_project(app, admin, "Diabetes check-in").await;
    let flu = create_project(app, admin, "Flu outreach").await;
    let first = add_patient(
        &clinic,
        outreach["id"].as_str().unwrap(),
        json!({ "externalId": "MRN-100", "firstName": "Liam", "lastName": "Patient",
            "dateOfBirth": "1984-03-12" }),
    )
    .await;
    assert_eq!(first["status"], "ADDED");
    assert_eq!(first["source"], "API");
    let again = add_patient(
        &clinic,
        flu["id"].as_str().unwrap(),
        json!({ "externalId": "MRN-100", "firstName": "Liam", "lastName": "Patient" }),
    )
    .await;
    assert_eq!(again["patient"]["id"], first["patient"]["id"]);
    clinic.app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn email_requests_reach_each_patient_and_the_response_rate_counts_replies_not_reminders(
    backend: Backend,
) {
    let clinic = lakeside(backend).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let outreach = create_project(app, admin, "Diabetes check-in").await;
    let outreach_id = outreach["id"].as_str().unwrap().to_owned();
    let mut added = Vec::new();
    for (i, (first, dob)) in [
        ("Liam", "1984-03-12"),
        ("Chloé", "03/12/1984"),
        ("Noah", "1990-01-31"),
    ]
    .iter()
    .enumerate()
    {
        let enrollment = add_patient(
            &clinic,
            &outreach_id,
            json!({
                "externalId": format!("MRN-10{i}"), "firstName": first, "lastName": "Patient",
                "email": format!("patient{i}@mail.example"), "phone": format!("+1 217 555 010{i}"),
                "dateOfBirth": dob }),
        )
        .await;
        assert_eq!(enrollment["status"], "ADDED");
        added.push(enrollment);
    }

    let ids: Vec<&str> = added.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let queued = app
        .ok(
            admin,
            SEND,
            json!({ "p": outreach_id, "ids": ids, "c": "EMAIL" }),
        )
        .await;
    assert_eq!(queued["sendProjectRequests"], 3);
    let mails = wait_for(async || {
        let received = clinic.smtp.received();
        (received.len() >= 3).then_some(received)
    })
    .await;
    assert_eq!(mails.len(), 3);
    for enrollment in &added {
        let link = enrollment["uniqueLink"].as_str().unwrap();
        assert!(
            mails.iter().any(|m| m.data.contains(link)),
            "no mail holds {link}"
        );
    }
    let (status, _) = respond(
        app,
        &path_of(added[1]["uniqueLink"].as_str().unwrap()),
        &[("consent", "yes")],
    )
    .await;
    assert_eq!(status, 200);
    let stats = project(app, admin, &outreach_id).await["stats"].clone();
    assert_eq!(stats["enrolled"], 3);
    assert_eq!(stats["requested"], 3);
    assert_eq!(stats["responded"], 1);
    assert_eq!(stats["outstanding"], 2);
    assert!((stats["responseRate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let email = stats["byChannel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "EMAIL")
        .unwrap();
    assert_eq!(email["requested"], 3);

    // A reminder is counted, not a new request; a responded patient is refused.
    let reminded = app
        .ok(
            admin,
            SEND,
            json!({ "p": outreach_id, "ids": [ids[0]], "c": "EMAIL" }),
        )
        .await;
    assert_eq!(reminded["sendProjectRequests"], 1);
    let (_, body) = app
        .graphql(
            Some(admin),
            SEND,
            json!({ "p": outreach_id, "ids": [ids[1]], "c": "EMAIL" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let enrolled = enrollments(app, admin, &outreach_id).await;
    let liam = enrolled
        .iter()
        .find(|e| e["externalId"] == "MRN-100")
        .unwrap();
    assert_eq!(liam["requestCount"], 2);
    assert_eq!(liam["requestChannel"], "EMAIL");
    assert_eq!(
        project(app, admin, &outreach_id).await["stats"]["requested"],
        3
    );

    // Reading the project's patients is in the audit trail.
    let audit = app
        .ok(
            admin,
            "query($t: ID) { auditEvents(first: 50, filter: { action: \"patients.read\", targetId: $t }) { totalCount } }",
            json!({ "t": outreach_id }),
        )
        .await;
    assert!(
        audit["auditEvents"]["totalCount"].as_u64().unwrap() >= 1,
        "{audit}"
    );
    clinic.app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn text_requests_go_out_through_the_webhook_and_a_refused_number_shows_on_its_enrolment(
    backend: Backend,
) {
    let clinic = lakeside(backend).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let texts = create_project(app, admin, "Text reminders").await;
    let texts_id = texts["id"].as_str().unwrap().to_owned();
    let mut text_ids = Vec::new();
    for (external_id, phone) in [
        ("MRN-200", "+1 217 555 0200"),
        ("MRN-201", "+1 217 555 0999"),
    ] {
        let enrollment = add_patient(
            &clinic,
            &texts_id,
            json!({ "externalId": external_id, "firstName": "Text",
                "lastName": external_id, "phone": phone }),
        )
        .await;
        text_ids.push(enrollment["id"].as_str().unwrap().to_owned());
    }
    let no_phone = add_patient(
        &clinic,
        &texts_id,
        json!({ "externalId": "MRN-202", "firstName": "Grace",
            "lastName": "Hopper", "email": "grace@mail.example" }),
    )
    .await;
    let (_, body) = app
        .graphql(
            Some(admin),
            SEND,
            json!({ "p": texts_id, "ids": [text_ids[0], no_phone["id"]], "c": "SMS" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let fields = error_fields(&body);
    assert!(
        fields
            .iter()
            .any(|(f, m)| f == "enrollmentIds" && m.contains("Grace Hopper (MRN-202)")),
        "{fields:?}"
    );
    let queued = app
        .ok(
            admin,
            SEND,
            json!({ "p": texts_id, "ids": text_ids, "c": "SMS" }),
        )
        .await;
    assert_eq!(queued["sendProjectRequests"], 2);
    let sent = wait_for(async || {
        let received = clinic.sms.received();
        (!received.is_empty()).then_some(received)
    })
    .await;
    assert_eq!(sent[0]["to"], "+12175550200");
    assert!(
        sent[0]["body"].as_str().unwrap().contains("/p/"),
        "{sent:?}"
    );
    let refused = wait_for(async || {
        let enrolled = enrollments(app, admin, &texts_id).await;
        enrolled
            .into_iter()
            .find(|e| e["externalId"] == "MRN-201" && e["delivery"]["status"] == "FAILED")
    })
    .await;
    assert!(
        refused["delivery"]["error"]
            .as_str()
            .unwrap()
            .contains("422"),
        "{refused}"
    );
    clinic.app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn another_organisation_sees_and_reaches_none_of_a_clinics_projects(backend: Backend) {
    let clinic = lakeside(backend).await;
    let (app, admin) = (&clinic.app, &clinic.admin);
    let flu = create_project(app, admin, "Flu outreach").await;
    let flu_id = flu["id"].as_str().unwrap();
    add_patient(
        &clinic,
        flu_id,
        json!({ "externalId": "MRN-1", "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada@mail.example" }),
    )
    .await;

    let (_, intruder) = app.admin_in("Hillside Clinic", "admin@hillside.test").await;
    let seen = app
        .ok(
            &intruder,
            "query($id: ID!) { project(id: $id) { id } }",
            json!({ "id": flu_id }),
        )
        .await;
    assert!(seen["project"].is_null());
    let (_, body) = app
        .graphql(
            Some(&intruder),
            ADD,
            json!({ "p": flu_id, "input": { "externalId": "X-1", "firstName": "A", "lastName": "B" } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let (_, body) = app
        .graphql(Some(&intruder), SEND, json!({ "p": flu_id, "c": "EMAIL" }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let qr = app
        .client
        .get(flu["qrCodeUrl"].as_str().unwrap())
        .bearer_auth(&intruder)
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 404);
    let listed = app
        .ok(&intruder, "{ projects { totalCount } }", json!({}))
        .await;
    assert_eq!(listed["projects"]["totalCount"], 0);
    clinic.app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn project_rules_permissions_and_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Rules Clinic").await;
    app.user(org, "admin@rules.test", &["Admin"]).await;
    app.user(org, "provider@rules.test", &["Provider"]).await;
    let admin = app.login("admin@rules.test", PASSWORD).await;
    let provider = app.login("provider@rules.test", PASSWORD).await;
    let create = "mutation($input: ProjectInput!) { createProject(input: $input) { id archived } }";

    let (_, body) = app
        .graphql(
            Some(&provider),
            create,
            json!({ "input": { "name": "Mine" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let (_, body) = app
        .graphql(Some(&admin), create, json!({ "input": { "name": "  " } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(error_fields(&body), [("name".into(), "is required".into())]);

    let id = app
        .ok(
            &admin,
            create,
            json!({ "input": { "name": "Asthma study" } }),
        )
        .await["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&admin),
            create,
            json!({ "input": { "name": "Asthma study" } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // Every bad patient field at once.
    let add = "mutation($p: ID!, $input: ProjectPatientInput!) { addProjectPatient(projectId: $p, input: $input) { id } }";
    let (_, body) = app
        .graphql(
            Some(&admin),
            add,
            json!({ "p": id, "input": { "firstName": "Ava", "lastName": "Rossi",
                "phone": "12", "dateOfBirth": "12 Mar 1984" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let fields: Vec<String> = error_fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["phone", "dateOfBirth", "externalId"], "{body}");
    let (_, body) = app
        .graphql(
            Some(&admin),
            add,
            json!({ "p": id, "input": { "externalId": "M-1", "firstName": "Ava", "lastName": "Rossi",
                "dateOfBirth": "1990-02-30" } }),
        )
        .await;
    assert!(
        error_fields(&body)[0]
            .1
            .contains("not a day of the calendar"),
        "{body}"
    );

    // An archived project's links enrol no one and it sends nothing.
    let archived = app
        .ok(
            &admin,
            "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Asthma study\", archived: true }) { archived patientLink } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(archived["updateProject"]["archived"], true);
    let link = archived["updateProject"]["patientLink"].as_str().unwrap();
    assert_eq!(app.get(&path_of(link)).await.status(), 404);
    let (_, body) = app
        .graphql(
            Some(&admin),
            add,
            json!({ "p": id, "input": { "externalId": "M-1", "firstName": "Ava", "lastName": "Rossi" } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // Responses are rate limited per IP address: a script cannot fill a
    // project with made-up patients.
    let open = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Open day\" }) { patientLink } }",
            json!({}),
        )
        .await;
    let open = path_of(open["createProject"]["patientLink"].as_str().unwrap());
    let mut statuses = Vec::new();
    for i in 0..61 {
        let email = format!("visitor{i}@mail.example");
        let form = [
            ("firstName", "Visitor"),
            ("lastName", "Number"),
            ("email", email.as_str()),
            ("consent", "yes"),
        ];
        statuses.push(respond(&app, &open, &form).await.0);
    }
    assert!(statuses[..60].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[60], 429);

    // A provider may read projects but not their patients' requests.
    let read = app
        .ok(&provider, "{ projects { totalCount } }", json!({}))
        .await;
    assert_eq!(read["projects"]["totalCount"], 2);
    let (_, body) = app
        .graphql(
            Some(&provider),
            "mutation($p: ID!) { sendProjectRequests(projectId: $p, channel: EMAIL) }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.stop().await;
}
