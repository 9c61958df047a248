//! Organisations and their super admins: the bootstrap of an empty database and
//! `rollcall create-admin`.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::audit::{self, AuditEntry};
use crate::db::{Scope, global, unscoped};
use crate::{
    auth::{
        password::{Hasher, Password, PasswordPolicy},
        permissions::built_in_roles,
    },
    domain::Email,
    error::{AppError, AppResult},
};

/// Create an organisation with its built-in roles; returns it with the id of its
/// `All Access` role.
pub async fn create_organization(
    db: &impl ConnectionTrait,
    name: &str,
) -> AppResult<(entity::organization::Model, Uuid)> {
    let now = Utc::now();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input(
            "name",
            "must be 1 to 200 characters long",
        ));
    }
    let exists = global::find::<entity::organization::Entity>()
        .filter(entity::organization::Column::Name.eq(name))
        .count(db)
        .await?
        > 0;
    if exists {
        return Err(AppError::Conflict(format!(
            "An organisation named {name:?} already exists."
        )));
    }
    let organization = entity::organization::Model {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        default_idle_timeout_minutes: 30,
        password_min_length: 8,
        password_require_digit: true,
        created_at: now,
        updated_at: now,
        time_zone: "UTC".to_owned(),
        mfa_required: "NONE".to_owned(),
        break_glass_max_minutes: 60,
        dormant_after_days: None,
    };
    entity::organization::Entity::insert(entity::organization::ActiveModel::from(
        organization.clone(),
    ))
    .exec_without_returning(db)
    .await?;
    let mut all_access = None;
    for (role_name, description, permissions) in built_in_roles() {
        let role_id = Uuid::now_v7();
        if role_name == "All Access" {
            all_access = Some(role_id);
        }
        entity::role::Entity::insert(entity::role::ActiveModel {
            id: Set(role_id),
            organization_id: Set(organization.id),
            name: Set(role_name.to_owned()),
            description: Set(Some(description.to_owned())),
            built_in: Set(true),
            external_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            required_certifications: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        entity::role_permission::Entity::insert_many(permissions.into_iter().map(|p| {
            entity::role_permission::ActiveModel {
                role_id: Set(role_id),
                permission: Set(p.as_str().to_owned()),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    let all_access = all_access.ok_or_else(|| anyhow::anyhow!("no All Access role defined"))?;
    Ok((organization, all_access))
}

/// A created super admin, with the password when it was generated.
pub struct CreatedAdmin {
    pub user: entity::user::Model,
    pub generated_password: Option<Password>,
}

/// Create a super admin in `organization_name` (created if missing). A given
/// password is kept as it is; a generated one must be changed at first login.
pub async fn create_super_admin(
    db: &(impl ConnectionTrait + TransactionTrait),
    hasher: &Hasher,
    email: &str,
    password: Option<&str>,
    organization_name: &str,
) -> AppResult<CreatedAdmin> {
    let email = Email::parse(email, "email")?;
    let (password, generated) = match password {
        Some(raw) => (
            Password::parse(
                raw,
                PasswordPolicy::default(),
                Some(email.as_str()),
                "password",
            )?,
            false,
        ),
        None => (Password::generate(), true),
    };
    let hash = hasher.hash(&password).await?;
    let txn = crate::db::begin_write(db).await?;
    if unscoped::find::<entity::user::Entity>()
        .filter(entity::user::Column::Email.eq(email.as_str()))
        .count(&txn)
        .await?
        > 0
    {
        return Err(AppError::Conflict(format!(
            "A user with the email {email} already exists."
        )));
    }
    let existing = global::find::<entity::organization::Entity>()
        .filter(entity::organization::Column::Name.eq(organization_name.trim()))
        .one(&txn)
        .await?;
    let (organization_id, all_access) = match existing {
        Some(org) => {
            let role = Scope::of(org.id)
                .find::<entity::role::Entity>()
                .filter(entity::role::Column::Name.eq("All Access"))
                .one(&txn)
                .await?;
            (org.id, role.map(|r| r.id))
        }
        None => {
            let (org, role) = create_organization(&txn, organization_name).await?;
            (org.id, Some(role))
        }
    };
    let now = Utc::now();
    let user = entity::user::Model {
        id: Uuid::now_v7(),
        organization_id,
        email: email.as_str().to_owned(),
        password_hash: Some(hash),
        first_name: "Super".to_owned(),
        last_name: "Admin".to_owned(),
        title: None,
        status: "ACTIVE".to_owned(),
        employee_status: "ACTIVE".to_owned(),
        mobile_phone: None,
        locale: None,
        idle_timeout_minutes: None,
        external_id: None,
        must_change_password: generated,
        is_super_admin: true,
        last_login_at: None,
        created_at: now,
        updated_at: now,
        email_signature: None,
        preferences: None,
        service_account: false,
        user_name: None,
        employee_number: None,
        department: None,
        deprovisioned_at: None,
        reactivated_at: None,
        dormancy_warned_at: None,
    };
    entity::user::Entity::insert(entity::user::ActiveModel::from(user.clone()))
        .exec_without_returning(&txn)
        .await?;
    if let Some(role_id) = all_access {
        entity::user_role::Entity::insert(entity::user_role::ActiveModel {
            user_id: Set(user.id),
            role_id: Set(role_id),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    audit::record(
        &txn,
        AuditEntry {
            organization_id: Some(organization_id),
            action: "user.create_super_admin",
            ..AuditEntry::default()
        }
        .target("User", user.id),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedAdmin {
        user,
        generated_password: generated.then_some(password),
    })
}

/// On an empty database, create the first super admin with a generated password.
pub async fn bootstrap(
    db: &(impl ConnectionTrait + TransactionTrait),
    hasher: &Hasher,
) -> AppResult<Option<CreatedAdmin>> {
    if unscoped::find::<entity::user::Entity>().count(db).await? > 0 {
        return Ok(None);
    }
    create_super_admin(db, hasher, "admin@rollcall.local", None, "Rollcall")
        .await
        .map(Some)
}
