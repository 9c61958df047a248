//! The tenant scope (`rollcall::db::Scope`) keeps every statement to one
//! organisation's rows, on both backends: records with an organisation of
//! their own, records reached through their owner (a role's holders and
//! permissions, a user's recovery codes), reads, updates and deletions alike,
//! whatever ids the caller holds. The people of an organisation leave out its
//! API clients' service accounts; `accounts` has both.

// The last test marks a service account directly, as an API client would have.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, TestApp};
use rollcall::db::Scope;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

/// Two organisations, each with an administrator and a nurse.
struct Tenants {
    app: TestApp,
    ours: Scope,
    theirs: Scope,
    our_nurse: Uuid,
    their_nurse: Uuid,
    their_admin_role: Uuid,
}

async fn tenants(backend: common::Backend) -> Tenants {
    let app = TestApp::spawn(backend).await;
    let ours = app.organization("Ours").await;
    let theirs = app.organization("Theirs").await;
    app.user(ours, "admin@ours.test", &["Admin"]).await;
    let our_nurse = app
        .user(ours, "nurse@ours.test", &["Clinical Provider"])
        .await;
    app.user(theirs, "admin@theirs.test", &["Admin"]).await;
    let their_nurse = app
        .user(theirs, "nurse@theirs.test", &["Clinical Provider"])
        .await;
    let their_admin_role = Scope::of(theirs)
        .find::<entity::role::Entity>()
        .filter(entity::role::Column::Name.eq("Admin"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    Tenants {
        app,
        ours: Scope::of(ours),
        theirs: Scope::of(theirs),
        our_nurse,
        their_nurse,
        their_admin_role,
    }
}

#[each_backend]
#[tokio::test]
async fn reads_reach_only_the_organisations_own_rows(backend: Backend) {
    let t = tenants(backend).await;
    let db = &t.app.db;
    let people = t.ours.find::<entity::user::Entity>().all(db).await.unwrap();
    let mut emails: Vec<_> = people.iter().map(|u| u.email.as_str()).collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        ["admin@ours.test", "nurse@ours.test"],
        "{backend:?}"
    );
    assert!(
        t.ours
            .find_by_id::<entity::user::Entity>(t.their_nurse)
            .one(db)
            .await
            .unwrap()
            .is_none(),
        "{backend:?}: another organisation's person by id"
    );
    assert!(
        t.ours
            .find_by_id::<entity::role::Entity>(t.their_admin_role)
            .one(db)
            .await
            .unwrap()
            .is_none(),
        "{backend:?}: another organisation's role by id"
    );
    // Through the owner: a role's holders and permissions.
    let holders = t
        .ours
        .find::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::RoleId.eq(t.their_admin_role))
        .all(db)
        .await
        .unwrap();
    assert!(holders.is_empty(), "{backend:?}: {holders:?}");
    let theirs = t
        .theirs
        .find::<entity::role_permission::Entity>()
        .filter(entity::role_permission::Column::RoleId.eq(t.their_admin_role))
        .all(db)
        .await
        .unwrap();
    assert!(!theirs.is_empty(), "{backend:?}");
    let ours = t
        .ours
        .find::<entity::role_permission::Entity>()
        .filter(entity::role_permission::Column::RoleId.eq(t.their_admin_role))
        .all(db)
        .await
        .unwrap();
    assert!(ours.is_empty(), "{backend:?}: {ours:?}");
    // The service helpers that take ids take the scope too.
    let held = rollcall::services::roles::roles_by_user(db, t.ours, &[t.their_nurse])
        .await
        .unwrap();
    assert!(held.is_empty(), "{backend:?}: {held:?}");
    let held = rollcall::services::roles::roles_by_user(db, t.theirs, &[t.their_nurse])
        .await
        .unwrap();
    assert_eq!(held[&t.their_nurse].len(), 1, "{backend:?}");
}

#[each_backend]
#[tokio::test]
async fn changes_and_deletions_reach_only_the_organisations_own_rows(backend: Backend) {
    let t = tenants(backend).await;
    let db = &t.app.db;
    let changed = t
        .ours
        .update_many::<entity::user::Entity>()
        .col_expr(entity::user::Column::Title, Expr::value("Changed"))
        .filter(entity::user::Column::Id.is_in([t.our_nurse, t.their_nurse]))
        .exec(db)
        .await
        .unwrap()
        .rows_affected;
    assert_eq!(changed, 1, "{backend:?}");
    let theirs = t
        .theirs
        .find_by_id::<entity::user::Entity>(t.their_nurse)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.title, None, "{backend:?}");
    let removed = t
        .ours
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::UserId.eq(t.their_nurse))
        .exec(db)
        .await
        .unwrap()
        .rows_affected;
    assert_eq!(removed, 0, "{backend:?}: another organisation's role links");
    let removed = t
        .ours
        .delete_by_id::<entity::role::Entity>(t.their_admin_role)
        .exec(db)
        .await
        .unwrap()
        .rows_affected;
    assert_eq!(removed, 0, "{backend:?}: another organisation's role");
    assert!(
        t.theirs
            .find_by_id::<entity::role::Entity>(t.their_admin_role)
            .one(db)
            .await
            .unwrap()
            .is_some(),
        "{backend:?}"
    );
}

#[each_backend]
#[tokio::test]
async fn people_leave_out_service_accounts_and_accounts_hold_both(backend: Backend) {
    let t = tenants(backend).await;
    let db = &t.app.db;
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::ServiceAccount, Expr::value(true))
        .filter(entity::user::Column::Id.eq(t.our_nurse))
        .exec(db)
        .await
        .unwrap();
    let people = t.ours.find::<entity::user::Entity>().all(db).await.unwrap();
    assert!(people.iter().all(|u| u.id != t.our_nurse), "{backend:?}");
    let accounts = t.ours.accounts().all(db).await.unwrap();
    assert!(accounts.iter().any(|u| u.id == t.our_nurse), "{backend:?}");
    assert_eq!(accounts.len(), 2, "{backend:?}");
}

#[each_backend]
#[tokio::test]
async fn super_admins_act_in_every_organisation_and_belong_to_their_own(backend: Backend) {
    let t = tenants(backend).await;
    let db = &t.app.db;
    let root = t
        .app
        .user(t.theirs.organization_id(), "root@theirs.test", &[])
        .await;
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::IsSuperAdmin, Expr::value(true))
        .filter(entity::user::Column::Id.eq(root))
        .exec(db)
        .await
        .unwrap();
    let actors = t.ours.actors().all(db).await.unwrap();
    assert!(actors.iter().any(|u| u.id == root), "{backend:?}");
    assert!(
        actors.iter().all(|u| u.id != t.their_nurse),
        "{backend:?}: another organisation's nurse acts nowhere but there"
    );
    let accounts = t.ours.accounts().all(db).await.unwrap();
    assert!(accounts.iter().all(|u| u.id != root), "{backend:?}");
    // What a super admin starts elsewhere carries their authority.
    let authority = rollcall::services::roles::authority_of(db, t.ours, Some(root))
        .await
        .unwrap();
    assert!(authority.is_super_admin(), "{backend:?}");
    // Another organisation's nurse starts nothing here.
    let read = rollcall::auth::Permission::PatientsRead;
    let at_home = rollcall::services::roles::authority_of(db, t.theirs, Some(t.their_nurse))
        .await
        .unwrap();
    assert!(at_home.holds(read), "{backend:?}");
    let here = rollcall::services::roles::authority_of(db, t.ours, Some(t.their_nurse))
        .await
        .unwrap();
    assert!(!here.holds(read), "{backend:?}");
}
