//! Emergency access ("break glass"): a nurse who sees only her assigned
//! patients widens her view with a reason, on every instance at once; the
//! grant ends by itself; reviewers hear of it at once and work through their
//! queue; and every way to misuse it is refused.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{Backend, PASSWORD, Storage, TestApp, error_code, error_fields};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

const BREAK: &str = "mutation($r: String!, $p: ID, $m: Int) {
    breakGlass(reason: $r, patientId: $p, minutes: $m) { id active endsAt patientId user { email } } }";
const PATIENT: &str = "query($id: ID!) { patient(id: $id) { id lastName } }";
const PATIENTS: &str = "{ patients(first: 100) { edges { node { id } } } }";
const REASON: &str = "Patient collapsed in the corridor; assigned nurse unavailable";

/// A ward: an admin, an auditor (Medical Director: AUDIT_READ), a nurse
/// (Clinical Provider: BREAK_GLASS, assigned patients only) caring for one
/// patient of three; the patients' ids, the nurse's first.
struct Ward {
    org: Uuid,
    admin: String,
    auditor: String,
    nurse: String,
    patients: Vec<String>,
}

async fn ward(app: &TestApp) -> Ward {
    let org = app.organization("General Hospital").await;
    app.user(org, "admin@general.test", &["Admin"]).await;
    app.user(org, "auditor@general.test", &["Medical Director"])
        .await;
    let nurse_id = app
        .user(org, "nurse@general.test", &["Clinical Provider"])
        .await;
    let admin = app.login("admin@general.test", PASSWORD).await;
    let (_, patients) = app.project_with_patients(&admin, "Ward 4", 3).await;
    app.ok(
        &admin,
        "mutation($u: ID!, $p: [ID!]!) { assignPatients(userId: $u, patientIds: $p) }",
        json!({ "u": nurse_id, "p": [patients[0]] }),
    )
    .await;
    Ward {
        org,
        admin,
        auditor: app.login("auditor@general.test", PASSWORD).await,
        nurse: app.login("nurse@general.test", PASSWORD).await,
        patients,
    }
}

async fn sees(app: &TestApp, token: &str, patient: &str) -> bool {
    !app.ok(token, PATIENT, json!({ "id": patient })).await["patient"].is_null()
}

async fn count_seen(app: &TestApp, token: &str) -> usize {
    app.ok(token, PATIENTS, json!({})).await["patients"]["edges"]
        .as_array()
        .unwrap()
        .len()
}

/// A server where a minute of emergency access lasts `seconds`, so that a
/// grant's end comes within the test.
async fn spawn(storage: std::sync::Arc<Storage>, seconds: u64) -> TestApp {
    TestApp::spawn_with(storage, |config| {
        config.break_glass_minute_seconds = seconds;
        config.outbound_allow_private = true;
    })
    .await
}

#[each_backend]
#[tokio::test]
async fn a_grant_for_one_patient_widens_the_view_on_every_instance_and_ends_by_itself(
    backend: Backend,
) {
    let storage = Storage::new(backend).await;
    let app = spawn(storage.clone(), 2).await;
    let peer = match app.peer().await {
        Some(_) => Some(spawn(storage.clone(), 2).await),
        None => None,
    };
    let ward = ward(&app).await;
    let other = peer.as_ref().unwrap_or(&app);
    assert!(sees(&app, &ward.nurse, &ward.patients[0]).await);
    assert!(!sees(other, &ward.nurse, &ward.patients[1]).await);

    // Two minutes, each of two seconds here.
    let grant = app
        .ok(
            &ward.nurse,
            BREAK,
            json!({ "r": REASON, "p": ward.patients[1], "m": 2 }),
        )
        .await["breakGlass"]
        .clone();
    assert_eq!(grant["active"], true, "{backend:?}");
    assert_eq!(grant["patientId"], ward.patients[1]);
    assert!(
        sees(other, &ward.nurse, &ward.patients[1]).await,
        "{backend:?}: the other instance sees the grant at the next request"
    );
    assert!(!sees(other, &ward.nurse, &ward.patients[2]).await);
    assert_eq!(count_seen(other, &ward.nurse).await, 2);

    // What she read under it is marked with the grant.
    let reads = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::OrganizationId.eq(ward.org))
        .filter(entity::audit_event::Column::Action.eq("patients.read"))
        .all(&app.db)
        .await
        .unwrap();
    let grant_id = grant["id"].as_str().unwrap();
    assert!(
        reads
            .iter()
            .any(|e| e.target_id.as_deref() == Some(&ward.patients[1])
                && e.changes.as_ref().unwrap()["breakGlassGrantId"] == grant_id),
        "{backend:?}: {reads:?}"
    );

    // Four seconds later it has ended, with no one doing anything.
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    for instance in [&app, other] {
        assert!(
            !sees(instance, &ward.nurse, &ward.patients[1]).await,
            "{backend:?}"
        );
        assert!(sees(instance, &ward.nurse, &ward.patients[0]).await);
    }
    let mine = app
        .ok(
            &ward.nurse,
            "{ breakGlassGrants { edges { node { id active } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["breakGlassGrants"]["edges"][0]["node"]["active"], false,
        "{backend:?}"
    );
}

#[each_backend]
#[tokio::test]
async fn a_grant_for_every_patient_is_ended_by_its_holder_everywhere_at_once(backend: Backend) {
    let storage = Storage::new(backend).await;
    let app = spawn(storage.clone(), 60).await;
    let peer = match app.peer().await {
        Some(_) => Some(spawn(storage.clone(), 60).await),
        None => None,
    };
    let other = peer.as_ref().unwrap_or(&app);
    let ward = ward(&app).await;
    assert_eq!(count_seen(other, &ward.nurse).await, 1);
    let grant = app.ok(&ward.nurse, BREAK, json!({ "r": REASON })).await["breakGlass"].clone();
    assert!(grant["patientId"].is_null());
    assert_eq!(count_seen(other, &ward.nurse).await, 3, "{backend:?}");
    // A second grant while one is in force is refused.
    let (_, body) = app
        .graphql(
            Some(&ward.nurse),
            BREAK,
            json!({ "r": REASON, "p": ward.patients[2] }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    let ended = app
        .ok(&ward.nurse, "mutation { endBreakGlass }", json!({}))
        .await;
    assert_eq!(ended["endBreakGlass"], true);
    assert_eq!(count_seen(other, &ward.nurse).await, 1, "{backend:?}");
    let again = app
        .ok(&ward.nurse, "mutation { endBreakGlass }", json!({}))
        .await;
    assert_eq!(again["endBreakGlass"], false);
    let _ = ward.admin;
}

#[each_backend]
#[tokio::test]
async fn reviewers_are_told_at_once_and_work_through_their_queue(backend: Backend) {
    let app = spawn(Storage::new(backend).await, 60).await;
    let ward = ward(&app).await;
    let webhook = app
        .ok(
            &ward.admin,
            "mutation { saveWebhook(input: { url: \"http://127.0.0.1:9/siem\", events: [\"break_glass.started\"] }) { webhook { id } } }",
            json!({}),
        )
        .await["saveWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = app
        .ok(
            &ward.nurse,
            BREAK,
            json!({ "r": REASON, "p": ward.patients[2], "m": 30 }),
        )
        .await["breakGlass"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The auditor and the admin (both AUDIT_READ) are emailed, the nurse
    // is not; the mail names no patient.
    let mails = entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Kind.eq("break_glass.started"))
        .filter(entity::outbox_message::Column::Channel.eq("EMAIL"))
        .all(&app.db)
        .await
        .unwrap();
    let mut to: Vec<&str> = mails.iter().map(|m| m.recipient.as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        ["admin@general.test", "auditor@general.test"],
        "{backend:?}"
    );
    assert!(mails[0].body.contains(REASON) && !mails[0].body.contains("Ient3"));
    let deliveries = app
        .ok(
            &ward.admin,
            "query($w: ID!) { webhookDeliveries(webhookId: $w) { edges { node { eventType payload } } } }",
            json!({ "w": webhook }),
        )
        .await;
    let delivery = &deliveries["webhookDeliveries"]["edges"][0]["node"];
    assert_eq!(delivery["eventType"], "break_glass.started", "{backend:?}");

    // The queue: the nurse sees only her own grant and cannot review it.
    let queue =
        "{ breakGlassGrants(pendingReview: true) { edges { node { id reason user { email } } } } }";
    let pending = app.ok(&ward.auditor, queue, json!({})).await;
    let node = &pending["breakGlassGrants"]["edges"][0]["node"];
    assert_eq!(node["id"], grant.as_str());
    assert_eq!(node["user"]["email"], "nurse@general.test");
    let review = "mutation($id: ID!, $n: String!) { reviewBreakGlass(id: $id, note: $n) { reviewedAt reviewNote reviewedBy { email } } }";
    let (_, body) = app
        .graphql(
            Some(&ward.nurse),
            review,
            json!({ "id": grant, "n": "fine" }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(
            Some(&ward.auditor),
            review,
            json!({ "id": grant, "n": " " }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let reviewed = app
        .ok(
            &ward.auditor,
            review,
            json!({ "id": grant, "n": "Confirmed with the charge nurse: a real emergency." }),
        )
        .await;
    assert_eq!(
        reviewed["reviewBreakGlass"]["reviewedBy"]["email"],
        "auditor@general.test"
    );
    let pending = app.ok(&ward.auditor, queue, json!({})).await;
    assert_eq!(
        pending["breakGlassGrants"]["edges"],
        json!([]),
        "{backend:?}"
    );
    let (_, body) = app
        .graphql(
            Some(&ward.admin),
            review,
            json!({ "id": grant, "n": "again" }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT");
    let actions = app.audit_actions(ward.org).await;
    for action in ["break_glass.start", "break_glass.review"] {
        assert!(actions.contains(&action.to_owned()), "{actions:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn break_glass_is_refused_without_the_right_a_reason_or_within_the_limit(backend: Backend) {
    let app = spawn(Storage::new(backend).await, 60).await;
    let ward = ward(&app).await;
    // No reason worth the name, too long, a stranger's patient.
    let (_, body) = app
        .graphql(
            Some(&ward.nurse),
            BREAK,
            json!({ "r": "emergency", "m": 61 }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let fields: Vec<String> = error_fields(&body).into_iter().map(|f| f.0).collect();
    assert_eq!(fields, ["reason", "minutes"], "{body}");
    let (_, body) = app
        .graphql(
            Some(&ward.nurse),
            BREAK,
            json!({ "r": REASON, "p": Uuid::now_v7() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // The organisation lowers its limit; more is refused.
    app.ok(
        &ward.admin,
        "mutation { updateOrganization(input: { breakGlassMaxMinutes: 15 }) { breakGlassMaxMinutes } }",
        json!({}),
    )
    .await;
    let (_, body) = app
        .graphql(Some(&ward.nurse), BREAK, json!({ "r": REASON, "m": 20 }))
        .await;
    assert_eq!(error_fields(&body)[0].0, "minutes", "{body}");

    // Whoever sees every patient has nothing to break; a role without
    // BREAK_GLASS may not.
    let (_, body) = app
        .graphql(Some(&ward.auditor), BREAK, json!({ "r": REASON }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(Some(&ward.admin), BREAK, json!({ "r": REASON }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.user(ward.org, "portal@general.test", &["Provider"])
        .await;
    let portal = app.login("portal@general.test", PASSWORD).await;
    let (_, body) = app
        .graphql(Some(&portal), BREAK, json!({ "r": REASON }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let data: Value = app
        .ok(
            &portal,
            "{ breakGlassGrants { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["breakGlassGrants"]["edges"], json!([]));
}
