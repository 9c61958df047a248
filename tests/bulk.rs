//! Bulk inserts store exactly what each model holds: every column type the
//! imports write, NULL beside values in one column, a column no model sets
//! taking its default, and chunks larger than one statement; bulk updates
//! change exactly what each model sets.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Backend, TestApp};
use rollcall::db::bulk;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn user(org: Uuid, i: u32) -> entity::user::Model {
    // Every other row leaves the optional columns NULL.
    let some = i.is_multiple_of(2);
    entity::user::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        email: format!("bulk{i}@bulk.test"),
        password_hash: None,
        first_name: format!("Ünïcode {i}"),
        last_name: "O'Brien, \"Jr\"\t\\".to_owned(),
        title: some.then(|| "Registered Nurse".to_owned()),
        status: "ACTIVE".to_owned(),
        employee_status: "LEAVE".to_owned(),
        mobile_phone: some.then(|| "+15551234567".to_owned()),
        locale: None,
        idle_timeout_minutes: some.then_some(i32::try_from(i).unwrap()),
        external_id: some.then(|| format!("EXT-{i}")),
        must_change_password: some,
        is_super_admin: false,
        last_login_at: some.then(|| at(i64::from(i))),
        created_at: at(0),
        updated_at: at(1),
        email_signature: None,
        preferences: some.then(|| json!({ "view": "list", "n": i, "nested": [null, "x"] })),
        service_account: false,
        user_name: None,
        employee_number: None,
        department: None,
        deprovisioned_at: None,
        reactivated_at: None,
        dormancy_warned_at: None,
    }
}

/// The organisation's users in the order they were made.
async fn users_of(app: &TestApp, org: Uuid) -> Vec<entity::user::Model> {
    entity::user::Entity::find()
        .filter(entity::user::Column::OrganizationId.eq(org))
        .order_by_asc(entity::user::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

#[each_backend]
#[tokio::test]
async fn bulk_writes_store_every_value_and_every_null_as_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Bulk Clinic").await;

    // More rows than one PostgreSQL statement takes.
    let users: Vec<entity::user::Model> = (0..5_003).map(|i| user(org, i)).collect();
    bulk::insert_all::<entity::user::ActiveModel>(&app.db, users.clone())
        .await
        .unwrap();
    let stored = users_of(&app, org).await;
    assert_eq!(stored.len(), users.len(), "{backend:?}");
    for (stored, given) in stored.iter().zip(&users) {
        assert_eq!(stored, given, "{backend:?}");
    }

    // Dates, and a column that no model sets: it takes its default.
    let patients: Vec<entity::patient::ActiveModel> = (0..3)
        .map(|i| entity::patient::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(org),
            external_id: Set(Some(format!("P-{i}"))),
            first_name: Set(None),
            last_name: Set(Some("Doe".to_owned())),
            email: NotSet,
            phone: Set(None),
            date_of_birth: Set((i != 1).then(|| NaiveDate::from_ymd_opt(1950 + i, 2, 28).unwrap())),
            created_at: Set(at(2)),
            updated_at: Set(at(3)),
        })
        .collect();
    bulk::insert_all(&app.db, patients).await.unwrap();
    let stored = entity::patient::Entity::find()
        .order_by_asc(entity::patient::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    let births: Vec<Option<NaiveDate>> = stored.iter().map(|p| p.date_of_birth).collect();
    assert_eq!(
        births,
        [
            NaiveDate::from_ymd_opt(1950, 2, 28),
            None,
            NaiveDate::from_ymd_opt(1952, 2, 28)
        ],
        "{backend:?}"
    );
    assert!(
        stored
            .iter()
            .all(|p| p.email.is_none() && p.first_name.is_none())
    );
    assert_eq!(stored[2].external_id.as_deref(), Some("P-2"));
    assert_eq!(stored[0].updated_at, at(3));

    // Updates: each row changes only what it sets, NULL included; a
    // column some rows leave alone keeps their stored value, one that
    // every row sets takes each row's value; a chunk that names a row
    // twice still applies both changes in order.
    let change = |given: &entity::user::Model, i: usize| {
        let mut active = entity::user::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(given.id),
            updated_at: Set(at(9 + i64::try_from(i).unwrap())),
            ..Default::default()
        };
        if i.is_multiple_of(3) {
            active.title = Set(None);
            active.preferences = Set(Some(json!({ "changed": i })));
        }
        if i % 3 == 1 {
            active.last_name = Set(format!("Renamed {i}"));
            active.idle_timeout_minutes = Set(Some(-1));
        }
        active
    };
    let updates: Vec<entity::user::ActiveModel> = users
        .iter()
        .enumerate()
        .map(|(i, u)| change(u, i))
        .collect();
    bulk::update_changed(&app.db, updates).await.unwrap();
    let twice = vec![
        entity::user::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(users[2].id),
            locale: Set(Some("fr-CA".to_owned())),
            ..Default::default()
        },
        entity::user::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(users[2].id),
            locale: Set(Some("en-GB".to_owned())),
            ..Default::default()
        },
    ];
    bulk::update_changed(&app.db, twice).await.unwrap();
    let stored = users_of(&app, org).await;
    for (i, (stored, given)) in stored.iter().zip(&users).enumerate() {
        let mut expected = given.clone();
        expected.updated_at = at(9 + i64::try_from(i).unwrap());
        if i.is_multiple_of(3) {
            expected.title = None;
            expected.preferences = Some(json!({ "changed": i }));
        }
        if i % 3 == 1 {
            expected.last_name = format!("Renamed {i}");
            expected.idle_timeout_minutes = Some(-1);
        }
        if i == 2 {
            expected.locale = Some("en-GB".to_owned());
        }
        assert_eq!(stored, &expected, "{backend:?} row {i}");
    }
    app.stop().await;
}
