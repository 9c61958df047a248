//! Care teams and who sees which patients: the self-assignment flow of an
//! onboarding (a role may see all patients while users assign themselves their
//! own, then is narrowed, and from the very next request each user sees only
//! their patients), admins' assignments, and what a user without PATIENTS_ALL
//! may enrol.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code};
use serde_json::{Value, json};

const ASSIGN: &str = "mutation($u: ID!, $p: [ID!]!) { assignPatients(userId: $u, patientIds: $p) }";
const UNASSIGN: &str =
    "mutation($u: ID!, $p: [ID!]!) { unassignPatients(userId: $u, patientIds: $p) }";

async fn seen(app: &TestApp, token: &str, project: &str) -> (Vec<String>, Vec<String>) {
    let data = app
        .ok(
            token,
            "query($id: ID!) { patients(first: 100) { edges { node { externalId } } }
                project(id: $id) { enrollments(first: 100) { edges { node { externalId } } } } }",
            json!({ "id": project }),
        )
        .await;
    let ids = |edges: &Value| -> Vec<String> {
        let mut ids: Vec<String> = edges
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["externalId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    (
        ids(&data["patients"]["edges"]),
        ids(&data["project"]["enrollments"]["edges"]),
    )
}

#[each_backend]
#[tokio::test]
async fn self_assignment_then_a_narrowed_role_shows_each_user_only_their_patients(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (org, admin) = app
        .admin_in("Onboarding Clinic", "admin@onboard.test")
        .await;
    let (project, patients) = app.project_with_patients(&admin, "Home visits", 3).await;

    // A role that sees all patients and lets its users assign themselves.
    let role = app
        .ok(
            &admin,
            "mutation { createRole(input: { name: \"Home Nurse\", permissions: [PROJECTS_READ, PATIENTS_READ, PATIENTS_ALL, PATIENTS_SELF_ASSIGN] }) { id } }",
            json!({}),
        )
        .await["createRole"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ana_id = app
        .user(org, "ana@onboard.test", &["Home Nurse"])
        .await
        .to_string();
    let ben_id = app
        .user(org, "ben@onboard.test", &["Home Nurse"])
        .await
        .to_string();
    let ana = app.login("ana@onboard.test", PASSWORD).await;
    let ben = app.login("ben@onboard.test", PASSWORD).await;
    assert_eq!(seen(&app, &ana, &project).await.0, ["P-1", "P-2", "P-3"]);

    let assigned = app
        .ok(&ana, ASSIGN, json!({ "u": ana_id, "p": [patients[0]] }))
        .await;
    assert_eq!(assigned["assignPatients"], 1);
    let assigned = app
        .ok(
            &ben,
            ASSIGN,
            json!({ "u": ben_id, "p": [patients[1], patients[2]] }),
        )
        .await;
    assert_eq!(assigned["assignPatients"], 2);
    let again = app
        .ok(&ben, ASSIGN, json!({ "u": ben_id, "p": [patients[1]] }))
        .await;
    assert_eq!(again["assignPatients"], 0, "already assigned");
    // Self-assignment is for oneself only.
    let (_, body) = app
        .graphql(
            Some(&ana),
            ASSIGN,
            json!({ "u": ben_id, "p": [patients[0]] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // The role is narrowed: from the very next request, each their own.
    app.ok(
        &admin,
        "mutation($id: ID!) { updateRole(id: $id, input: { name: \"Home Nurse\", permissions: [PROJECTS_READ, PATIENTS_READ] }) { id } }",
        json!({ "id": role }),
    )
    .await;
    assert_eq!(
        seen(&app, &ana, &project).await,
        (vec!["P-1".to_owned()], vec!["P-1".to_owned()])
    );
    let both = vec!["P-2".to_owned(), "P-3".to_owned()];
    assert_eq!(seen(&app, &ben, &project).await, (both.clone(), both));
    let lookup = app
        .ok(
            &ana,
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patients[1] }),
        )
        .await;
    assert!(lookup["patient"].is_null(), "not in Ana's care team");
    let (_, body) = app
        .graphql(
            Some(&ana),
            ASSIGN,
            json!({ "u": ana_id, "p": [patients[1]] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Search narrows within the caller's view, never beyond it.
    let search = "query($q: String!) { patients(search: $q) { edges { node { externalId } } } }";
    let found = app.ok(&admin, search, json!({ "q": "IENT2" })).await;
    assert_eq!(
        found["patients"]["edges"],
        json!([{ "node": { "externalId": "P-2" } }])
    );
    let found = app.ok(&ben, search, json!({ "q": "ient1" })).await;
    assert_eq!(found["patients"]["edges"], json!([]), "P-1 is Ana's");

    // Admins see care teams and caseloads, and change them; each change is audited.
    let team = app
        .ok(
            &admin,
            "query($id: ID!) { patient(id: $id) { careTeam { email } } }",
            json!({ "id": patients[0] }),
        )
        .await;
    assert_eq!(
        team["patient"]["careTeam"],
        json!([{ "email": "ana@onboard.test" }])
    );
    let caseload = app
        .ok(
            &admin,
            "query($u: ID!) { patients(assignedTo: $u) { totalCount } }",
            json!({ "u": ben_id }),
        )
        .await;
    assert_eq!(caseload["patients"]["totalCount"], 2);
    let removed = app
        .ok(&admin, UNASSIGN, json!({ "u": ana_id, "p": [patients[0]] }))
        .await;
    assert_eq!(removed["unassignPatients"], 1);
    assert_eq!(seen(&app, &ana, &project).await, (vec![], vec![]));
    let audit = app
        .ok(
            &admin,
            "{ assigned: auditEvents(filter: { action: \"patients.assign\" }) { totalCount }
                   unassigned: auditEvents(filter: { action: \"patients.unassign\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["assigned"]["totalCount"], 2);
    assert_eq!(audit["unassigned"]["totalCount"], 1);

    // Unknown or foreign patients are refused by id.
    let (_, stranger) = app.admin_in("Other Clinic", "admin@other.test").await;
    let (_, body) = app
        .graphql(
            Some(&stranger),
            ASSIGN,
            json!({ "u": ana_id, "p": [patients[0]] }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    app.stop().await;
}

#[each_backend]
#[tokio::test]
async fn a_user_without_all_patients_enrols_into_their_own_care_team_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Team Clinic").await;
    app.user(org, "admin@team.test", &["Admin"]).await;
    app.user(org, "doc@team.test", &["Clinical Provider"]).await;
    let admin = app.login("admin@team.test", PASSWORD).await;
    let doc = app.login("doc@team.test", PASSWORD).await;
    let project = app
        .ok(
            &admin,
            "mutation { createProject(input: { name: \"Clinic days\" }) { id } }",
            json!({}),
        )
        .await["createProject"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let add = "mutation($p: ID!, $input: ProjectPatientInput!) { addProjectPatient(projectId: $p, input: $input) { patient { careTeam { email } } } }";
    app.ok(
        &admin,
        add,
        json!({ "p": project, "input": { "externalId": "A-1", "firstName": "Ann", "lastName": "Other" } }),
    )
    .await;

    // A new patient joins the provider's care team.
    let mine = app
        .ok(
            &doc,
            add,
            json!({ "p": project, "input": { "externalId": "D-1", "firstName": "Dee", "lastName": "Mine" } }),
        )
        .await;
    assert_eq!(
        mine["addProjectPatient"]["patient"]["careTeam"],
        json!([{ "email": "doc@team.test" }])
    );
    assert_eq!(
        seen(&app, &doc, &project).await,
        (vec!["D-1".to_owned()], vec!["D-1".to_owned()])
    );
    // Someone else's patient is not theirs to enrol or to see.
    let (_, body) = app
        .graphql(
            Some(&doc),
            add,
            json!({ "p": project, "input": { "externalId": "A-1", "firstName": "Ann", "lastName": "Other" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(
            Some(&doc),
            "mutation($p: ID!) { sendProjectRequests(projectId: $p, channel: EMAIL) }",
            json!({ "p": project }),
        )
        .await;
    // Only D-1 is in view, and D-1 has no email: refused by name, A-1 unmentioned.
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let message = body["errors"][0]["extensions"]["fields"].to_string();
    assert!(
        message.contains("D-1") && !message.contains("A-1"),
        "{message}"
    );
    app.stop().await;
}
