//! Listing users with their roles, permissions and provider records costs a
//! constant number of database statements, for a page of 10 as for a page of 100,
//! and so does a page of projects with their figures: every relation goes
//! through a data loader. Statements are read from `/metrics`, which
//! is process-wide, so this binary holds this one test alone.
//!
//! The server gathers each loader's keys for 50 ms instead of its default 1 ms:
//! resolving a page of 100 users in a debug build on a loaded machine can take
//! longer than a millisecond, which splits a batch in two, and the count this
//! test asserts is then a figure of the machine's load rather than of the code.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use chrono::Utc;
use common::{Backend, TestApp};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

const LIST: &str = "query($n: Int!) { users(first: $n) { totalCount edges { node {
    email roles { name permissions } suspendedRoles { name } permissions
    provider { npi organizationRole user { email } } } } } }";

async fn statements(app: &TestApp) -> u64 {
    let text = app.scrape().await;
    text.lines()
        .filter(|l| l.starts_with("rollcall_db_queries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The fewest statements one listing of `first` users by `query` took over a
/// few runs (the outbox worker's polls share the counter).
async fn cost(app: &TestApp, token: &str, query: &str, first: u64) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..4 {
        let before = statements(app).await;
        let data = app.ok(token, query, json!({ "n": first })).await;
        let after = statements(app).await;
        assert_eq!(
            data["users"]["edges"].as_array().unwrap().len() as u64,
            first
        );
        fewest = fewest.min(after - before);
    }
    fewest
}

#[tokio::test]
async fn a_page_of_100_users_costs_as_many_statements_as_a_page_of_10() {
    // One backend after the other: the counter is the process's.
    for backend in common::backends().await {
        page_costs_on(backend).await;
    }
}

async fn page_costs_on(backend: Backend) {
    let storage = common::Storage::new(backend).await;
    let app = TestApp::spawn_with(storage, |config| config.loader_delay_ms = 50).await;
    let org = app.organization("Big Practice").await;
    app.user(org, "admin@big.test", &["Admin"]).await;
    let token = app.login("admin@big.test", common::PASSWORD).await;
    let roles = entity::role::Entity::find()
        .filter(entity::role::Column::OrganizationId.eq(org))
        .all(&app.db)
        .await
        .unwrap();
    // One role requires a licence nobody holds: its holders' standing
    // is judged, and the role is suspended for each of them.
    let licensed = roles.iter().find(|r| r.name == "Billing").unwrap();
    entity::role::Entity::update(entity::role::ActiveModel {
        id: Set(licensed.id),
        required_certifications: Set(Some(json!(["State licence"]))),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    let mut staff = Vec::new();
    for i in 0..120u32 {
        let held: Vec<&str> = roles
            .iter()
            .skip(i as usize % 3)
            .step_by(3)
            .map(|r| r.name.as_str())
            .collect();
        let mut person = app
            .person(org, &format!("staff{i}@big.test"))
            .named("Staff", &format!("Member {i}"))
            .without_password()
            .roles(&held);
        if i % 2 == 0 {
            person = person.provider(&common::people::npi(i));
        }
        staff.push(person.insert().await);
    }

    // Count, page, roles, permissions, providers, their users: six
    // statements; the suspended roles three more (the roles requiring a
    // certification, the time zone, the certifications). On PostgreSQL the
    // page's statement reads the ids of each user's roles, and the roles
    // come from the instance's catalog of them: no statement of their own.
    let roles_statement = u64::from(backend == Backend::Embedded);
    for first in [10, 100] {
        let statements = cost(&app, &token, LIST, first).await;
        assert_eq!(
            statements,
            8 + roles_statement,
            "{backend:?}: {first} users cost {statements} statements"
        );
    }

    // The list is counted only when the selection asks for totalCount, by a
    // field or through a fragment: one statement for the page, one more for
    // the count.
    assert_eq!(cost(&app, &token, BARE, 20).await, 1, "{backend:?}");
    assert_eq!(cost(&app, &token, COUNTED, 20).await, 2, "{backend:?}");
    let data = app.ok(&token, COUNTED, json!({ "n": 1 })).await;
    assert_eq!(data["users"]["totalCount"], 121, "{backend:?}");

    // Every field of a user's own record asked of a page: still the one
    // statement (each field's column is read with the page, none through
    // the record's loader), and each user as `user(id:)` reads them whole.
    let filled = staff[7];
    entity::user::Entity::update(entity::user::ActiveModel {
        id: Set(filled),
        title: Set(Some("Charge Nurse".to_owned())),
        mobile_phone: Set(Some("+14155550123".to_owned())),
        locale: Set(Some("fr-CA".to_owned())),
        idle_timeout_minutes: Set(Some(45)),
        external_id: Set(Some("E-0007".to_owned())),
        last_login_at: Set(Some(Utc::now())),
        email_signature: Set(Some("Kind regards".to_owned())),
        preferences: Set(Some(json!({ "view": "board", "n": [1, null] }))),
        employee_status: Set("LEAVE".to_owned()),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    let fields = record_fields(&app, &token).await;
    assert!(fields.len() >= 18, "{fields}", fields = fields.len());
    let fields = fields.join(" ");
    let page =
        format!("query($n: Int!) {{ users(first: $n) {{ edges {{ node {{ {fields} }} }} }} }}");
    assert_eq!(cost(&app, &token, &page, 100).await, 1, "{backend:?}");
    let listed = app.ok(&token, &page, json!({ "n": 100 })).await;
    let one = format!("query($id: ID!) {{ user(id: $id) {{ {fields} }} }}");
    let mut compared = 0;
    for edge in listed["users"]["edges"].as_array().unwrap() {
        let user = &edge["node"];
        let alone = app.ok(&token, &one, json!({ "id": user["id"] })).await;
        assert_eq!(alone["user"], *user, "{backend:?}");
        compared += usize::from(user["id"] == json!(filled.to_string()));
    }
    assert_eq!(compared, 1, "{backend:?}: the filled user is on the page");

    // Roles asked for come with the page, however they are asked for (edges
    // or nodes, a field or a fragment), and the same roles each way: with
    // the page's statement (PostgreSQL), or in one statement more (SQLite).
    assert_eq!(
        cost(&app, &token, WITH_ROLES, 100).await,
        1 + roles_statement,
        "{backend:?}"
    );
    let roles_of = |data: &serde_json::Value, list: &str| -> Vec<(String, serde_json::Value)> {
        data["users"][list]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| if list == "edges" { &user["node"] } else { user })
            .map(|user| {
                (
                    user["email"].as_str().unwrap().to_owned(),
                    user["roles"].clone(),
                )
            })
            .collect()
    };
    let by_edges = roles_of(
        &app.ok(&token, WITH_ROLES, json!({ "n": 100 })).await,
        "edges",
    );
    let by_nodes = app.ok(&token, ROLES_BY_NODES, json!({ "n": 100 })).await;
    assert_eq!(by_edges, roles_of(&by_nodes, "nodes"), "{backend:?}");
    assert_eq!(
        by_edges
            .iter()
            .filter(|(_, roles)| roles
                .as_array()
                .unwrap()
                .contains(&json!({ "name": "Billing" })))
            .count(),
        33,
        "{backend:?}"
    );
    let data = app.ok(&token, LIST, json!({ "n": 100 })).await;
    let suspended = data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["suspendedRoles"] == json!([{ "name": "Billing" }]))
        .count();
    // The page holds the admin and 99 of the staff, every third of whom
    // holds the role.
    assert_eq!(suspended, 33, "{backend:?}");

    // A page of access reviews with their users and roles: the same few
    // statements for 2 reviews as for 12.
    let admin_id = app.ok(&token, "{ me { id } }", json!({})).await["me"]["id"].clone();
    for (n, under_review) in staff.chunks(10).take(12).enumerate() {
        app.ok(
            &token,
            "mutation($i: AccessReviewInput!) { startAccessReview(input: $i) { id } }",
            json!({ "i": {
                "name": format!("Review {n}"),
                "userIds": under_review,
                "reviewerIds": [admin_id],
                "dueAt": (Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
                "onDue": "KEEP",
            } }),
        )
        .await;
    }
    let mut reviews = Vec::new();
    for first in [2, 12] {
        let mut fewest = u64::MAX;
        for _ in 0..4 {
            let before = statements(&app).await;
            let data = app
                .ok(
                    &token,
                    "query($n: Int!) { accessReviews(first: $n) { edges { node {
                            items { user { email } roles { name } decision } } } } }",
                    json!({ "n": first }),
                )
                .await;
            let after = statements(&app).await;
            let edges = data["accessReviews"]["edges"].as_array().unwrap().clone();
            assert_eq!(edges.len(), first, "{data}");
            assert!(
                edges.iter().all(|e| !e["node"]["items"][0]["roles"]
                    .as_array()
                    .unwrap()
                    .is_empty()),
                "{data}"
            );
            fewest = fewest.min(after - before);
        }
        reviews.push(fewest);
    }
    assert_eq!(
        reviews[0], reviews[1],
        "{backend:?}: access reviews {reviews:?}"
    );

    // `me` is the record read with the session: no statement of its own
    // (the session check may read it once after a change; the fewest of
    // a few runs is none).
    let mut fewest = u64::MAX;
    for _ in 0..4 {
        let before = statements(&app).await;
        let data = app.ok(&token, "{ me { id email } }", json!({})).await;
        let after = statements(&app).await;
        assert_eq!(data["me"]["email"], "admin@big.test");
        fewest = fewest.min(after - before);
    }
    assert_eq!(fewest, 0, "{backend:?}: me cost {fewest} statements");

    // Projects with their figures: count, page and one grouped count.
    for i in 0..30 {
        app.ok(
            &token,
            "mutation($n: String!) { createProject(input: { name: $n }) { id } }",
            json!({ "n": format!("Project {i}") }),
        )
        .await;
    }
    let mut fewest = u64::MAX;
    for _ in 0..4 {
        let before = statements(&app).await;
        let data = app.ok(&token, PROJECTS, json!({})).await;
        let after = statements(&app).await;
        assert_eq!(data["projects"]["edges"].as_array().unwrap().len(), 30);
        fewest = fewest.min(after - before);
    }
    assert_eq!(
        fewest, 3,
        "{backend:?}: 30 projects with stats cost {fewest} statements"
    );
}

/// The fields of a user that its record holds: those that take no arguments
/// and answer a scalar or an enum, but for two read from other tables.
async fn record_fields(app: &TestApp, token: &str) -> Vec<String> {
    let data = app
        .ok(
            token,
            "{ __type(name: \"User\") { fields { name args { name }
                type { kind ofType { kind ofType { kind } } } } } }",
            json!({}),
        )
        .await;
    let kind = |t: &serde_json::Value| -> String {
        let mut t = t;
        while t["kind"] == "NON_NULL" || t["kind"] == "LIST" {
            t = &t["ofType"];
        }
        t["kind"].as_str().unwrap_or_default().to_owned()
    };
    data["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["args"].as_array().unwrap().is_empty())
        .filter(|f| ["SCALAR", "ENUM"].contains(&kind(&f["type"]).as_str()))
        .filter(|f| !["permissions", "recoveryCodesLeft"].contains(&f["name"].as_str().unwrap()))
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

const BARE: &str = "query($n: Int!) { users(first: $n) { edges { node { email } } } }";

const COUNTED: &str = "query($n: Int!) { users(first: $n) { ...Total edges { node { email } } } }
    fragment Total on UserConnection { totalCount }";

const WITH_ROLES: &str =
    "query($n: Int!) { users(first: $n) { edges { node { email roles { name } } } } }";

const ROLES_BY_NODES: &str = "query($n: Int!) { users(first: $n) { nodes { email ...Held } } }
    fragment Held on User { roles { name } }";

const PROJECTS: &str = "{ projects(first: 30) { totalCount edges { node {
    name stats { enrolled responseRate byChannel { channel requested } } } } } }";
