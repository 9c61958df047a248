//! Users and roles read by position or by the names of some of their columns
//! (`rollcall::db::rows`, on PostgreSQL) come out exactly as sea-orm reads
//! them: every column filled, every optional one NULL, and a role joined to
//! its holder; a statement whose columns are not the model's, in its order,
//! is refused rather than read into the wrong fields, and a model read in part
//! is handed out only for the columns read. On SQLite the rows are read
//! whole, through sea-orm.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use chrono::{TimeZone, Utc};
use common::{Backend, TestApp};
use entity::user::Column;
use rollcall::db::{bulk, rows};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, Iterable, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

/// A user with every column filled, or every optional one NULL.
fn user(org: Uuid, i: i64, filled: bool) -> entity::user::Model {
    let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    let text = |s: &str| filled.then(|| format!("{s} {i} — ü"));
    entity::user::Model {
        id: Uuid::now_v7(),
        organization_id: org,
        email: format!("row{i}@rows.test"),
        password_hash: text("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"),
        first_name: "Zoë".to_owned(),
        last_name: "O'Brien".to_owned(),
        title: text("Registered Nurse"),
        status: "ACTIVE".to_owned(),
        employee_status: "LEAVE".to_owned(),
        mobile_phone: text("+1555"),
        locale: filled.then(|| "fr-CA".to_owned()),
        idle_timeout_minutes: filled.then_some(45),
        external_id: text("EXT"),
        must_change_password: filled,
        is_super_admin: false,
        last_login_at: filled.then(|| at(i)),
        created_at: at(0),
        updated_at: at(1),
        email_signature: text("Kind regards"),
        preferences: filled.then(|| json!({ "view": "list", "n": i, "nested": [null, "x"] })),
        service_account: false,
        user_name: text("principal"),
        employee_number: text("00042"),
        department: text("Cardiology"),
        deprovisioned_at: filled.then(|| at(2)),
        reactivated_at: filled.then(|| at(3)),
        dormancy_warned_at: filled.then(|| at(4)),
    }
}

#[each_backend]
#[tokio::test]
async fn models_read_by_position_equal_those_read_by_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Rows Clinic").await;
    let users: Vec<_> = (0..6).map(|i| user(org, i, i % 2 == 0)).collect();
    bulk::insert_all::<entity::user::ActiveModel>(&app.db, users.clone())
        .await
        .unwrap();
    let select = || {
        entity::user::Entity::find()
            .filter(entity::user::Column::OrganizationId.eq(org))
            .filter(entity::user::Column::Email.like("row%"))
            .order_by_asc(entity::user::Column::Id)
    };
    let by_name = select().all(&app.db).await.unwrap();
    assert_eq!(by_name, users, "{backend:?}");
    let postgres = matches!(backend, Backend::Production);
    if postgres {
        let by_position: Vec<entity::user::Model> =
            rows::read(&app.db, select().build(DbBackend::Postgres))
                .await
                .unwrap();
        assert_eq!(by_position, users);
        // Columns of the model's but out of its order: refused.
        let swapped = select()
            .select_only()
            .column(Column::OrganizationId)
            .column(Column::Id)
            .build(DbBackend::Postgres);
        let err = rows::read::<entity::user::Model, _>(&app.db, swapped)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("id at position 0"), "{err}");
    }

    // Every column asked for: each model whole.
    let every: Vec<Column> = Column::iter().collect();
    let whole = rows::partial(&app.db, select(), &every).await.unwrap();
    for (part, user) in whole.iter().zip(&users) {
        for column in Column::iter() {
            assert_eq!(part.get(column as u32), Some(user), "{column:?}");
        }
    }
    // Some, in another order than the model's: those read are the record's;
    // the others are not handed out (on SQLite the rows are read whole).
    let some = [
        Column::Email,
        Column::Preferences,
        Column::Id,
        Column::LastLoginAt,
    ];
    let parts = rows::partial(&app.db, select(), &some).await.unwrap();
    assert_eq!(parts.len(), users.len());
    for (part, user) in parts.iter().zip(&users) {
        for column in Column::iter() {
            let read = part.get(column as u32);
            if some.iter().any(|c| *c as u32 == column as u32) || !postgres {
                let read = read.unwrap();
                assert_eq!(read.id, user.id);
                assert_eq!(read.email, user.email);
                assert_eq!(read.preferences, user.preferences);
                assert_eq!(read.last_login_at, user.last_login_at);
            } else {
                assert!(read.is_none(), "{column:?} was not read");
            }
        }
    }

    // Expressions after the columns, read by position beside each model:
    // on PostgreSQL only.
    let ids = (
        sea_orm::sea_query::Expr::cust("ARRAY[\"id\", \"organization_id\"]"),
        "ids",
    );
    let read: Result<Vec<(rows::Partial<entity::user::Model>, Vec<Uuid>)>, _> =
        rows::partial_with(&app.db, select(), &some, [ids]).await;
    if postgres {
        let read = read.unwrap();
        assert_eq!(read.len(), users.len());
        for ((part, ids), user) in read.iter().zip(&users) {
            assert_eq!(part.get(Column::Email as u32).unwrap().email, user.email);
            assert!(part.get(Column::Title as u32).is_none());
            assert_eq!(*ids, [user.id, user.organization_id]);
        }
    } else {
        assert!(read.is_err());
    }

    // Roles with their holders: the same each way.
    let roles = entity::role::Entity::find()
        .filter(entity::role::Column::OrganizationId.eq(org))
        .all(&app.db)
        .await
        .unwrap();
    for (user, role) in users
        .iter()
        .zip(roles.iter().cycle())
        .chain(users.iter().zip(roles.iter().cycle().skip(3)))
    {
        entity::user_role::Entity::insert(entity::user_role::ActiveModel {
            user_id: sea_orm::ActiveValue::Set(user.id),
            role_id: sea_orm::ActiveValue::Set(role.id),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let held =
        rollcall::services::roles::roles_by_user(&app.db, rollcall::db::Scope::of(org), &ids)
            .await
            .unwrap();
    for user in &users {
        let mut by_name: Vec<entity::role::Model> = entity::user_role::Entity::find()
            .filter(entity::user_role::Column::UserId.eq(user.id))
            .find_also_related(entity::role::Entity)
            .all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(_, role)| role)
            .collect();
        by_name.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(held[&user.id], by_name, "{backend:?}");
        assert_eq!(by_name.len(), 2, "{backend:?}");
    }
}
