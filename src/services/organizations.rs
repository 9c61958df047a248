//! Organisations: one's own, or any for a super admin; creating one with its first
//! admin; its settings.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter,
    TransactionSession, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    accounts,
    audit::{self, AuditEntry},
    users,
};
use crate::db::{Page, PageRequest, Scope, global, paginate};
use crate::{
    auth::{
        Actor, Permission,
        mfa::MfaPolicy,
        password::{Hasher, Password},
        session::SessionStore,
    },
    domain::{Email, text},
    error::{AppError, AppResult, Validation},
};

/// The actor's organisation, or with an id any organisation for a super admin.
/// Another organisation's id answers NOT_FOUND for everyone else.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Option<Uuid>,
) -> AppResult<entity::organization::Model> {
    let id = id.unwrap_or(actor.organization_id);
    if id != actor.organization_id && !actor.is_super_admin() {
        return Err(AppError::NotFound("Organization"));
    }
    global::find_by_id::<entity::organization::Entity>(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Organization"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    page: PageRequest,
) -> AppResult<Page<entity::organization::Model>> {
    actor.require_super_admin()?;
    paginate(
        db,
        global::find::<entity::organization::Entity>(),
        entity::organization::Column::Id,
        page,
    )
    .await
}

/// The first admin of a new organisation.
pub struct FirstAdmin {
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
}

/// A created organisation with its first admin and their generated password.
pub struct CreatedOrganization {
    pub organization: entity::organization::Model,
    pub admin: entity::user::Model,
    pub generated_password: Password,
}

/// Create an organisation, its built-in roles and its first admin (holding the
/// Admin role, with a generated password to change at first login), in one
/// transaction (super admin).
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    hasher: &Hasher,
    actor: &Actor,
    name: &str,
    admin: FirstAdmin,
) -> AppResult<CreatedOrganization> {
    actor.require_super_admin()?;
    let password = Password::generate();
    let hash = hasher.hash(&password).await?;
    let txn = crate::db::begin_write(db).await?;
    users::ensure_email_free(&txn, &admin.email, None).await?;
    let (organization, _) = accounts::create_organization(&txn, name).await?;
    let details = users::UserDetails::named(admin.email, admin.first_name, admin.last_name);
    let user = users::insert(&txn, organization.id, &details, Some(hash)).await?;
    let admin_role = Scope::of(organization.id)
        .find::<entity::role::Entity>()
        .filter(entity::role::Column::Name.eq("Admin"))
        .one(&txn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("built-in Admin role missing"))?;
    users::assign_roles(&txn, user.id, &[admin_role]).await?;
    let entry = |action, target_type, id: Uuid| AuditEntry {
        organization_id: Some(organization.id),
        ..AuditEntry::by(actor, action).target(target_type, id)
    };
    audit::record(
        &txn,
        entry("organization.create", "Organization", organization.id)
            .changes(json!({ "name": organization.name })),
    )
    .await?;
    audit::record(
        &txn,
        entry("user.create", "User", user.id)
            .changes(json!({ "email": user.email, "roles": ["Admin"], "credentials": "password" })),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedOrganization {
        organization,
        admin: user,
        generated_password: password,
    })
}

/// An organisation's settings; `None` leaves one as it is.
#[derive(Clone, Debug, Default)]
pub struct SettingsChanges {
    pub name: Option<String>,
    pub default_idle_timeout_minutes: Option<i32>,
    pub password_min_length: Option<i32>,
    pub password_require_digit: Option<bool>,
    pub time_zone: Option<String>,
    /// Who must have a second factor; a change applies at the next request of
    /// every session, and needs a recent second factor of the caller's own.
    pub mfa_required: Option<MfaPolicy>,
    /// The longest emergency access a user may give themselves, in minutes.
    pub break_glass_max_minutes: Option<i32>,
    /// Deactivate users who have not signed in for this many days
    /// (`Some(None)`: never).
    pub dormant_after_days: Option<Option<i32>>,
}

/// Change the settings of the actor's organisation (ORGANIZATION_MANAGE), or of
/// any organisation for a super admin.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: Option<Uuid>,
    changes: SettingsChanges,
) -> AppResult<entity::organization::Model> {
    actor.require(Permission::OrganizationManage)?;
    if changes.mfa_required.is_some() {
        actor.require_recent_mfa()?;
    }
    let organization = find(db, actor, id).await?;
    let mut v = Validation::default();
    if let Some(length) = changes.password_min_length
        && !(8..=64).contains(&length)
    {
        v.add("passwordMinLength", "must be between 8 and 64");
    }
    if let Some(minutes) = changes.default_idle_timeout_minutes {
        v.check(users::parse_idle_timeout(
            minutes,
            "defaultIdleTimeoutMinutes",
        ));
    }
    if let Some(minutes) = changes.break_glass_max_minutes
        && !(1..=super::break_glass::MAX_MINUTES).contains(&minutes)
    {
        v.add(
            "breakGlassMaxMinutes",
            format!("must be between 1 and {}", super::break_glass::MAX_MINUTES),
        );
    }
    if let Some(Some(days)) = changes.dormant_after_days
        && !(super::dormancy::MIN_DAYS..=3650).contains(&days)
    {
        v.add(
            "dormantAfterDays",
            format!(
                "must be between {} and 3650 (users are warned a week before)",
                super::dormancy::MIN_DAYS
            ),
        );
    }
    let name = match changes.name.as_deref() {
        Some(name) => v.check(text::required(name, "name", 200)),
        None => None,
    };
    let time_zone = changes
        .time_zone
        .as_deref()
        .and_then(|tz| v.check(crate::domain::parse_time_zone(tz, "timeZone")));
    v.finish()?;
    if let Some(name) = &name
        && *name != organization.name
        && global::find::<entity::organization::Entity>()
            .filter(entity::organization::Column::Name.eq(name.as_str()))
            .count(db)
            .await?
            > 0
    {
        return Err(AppError::Conflict(format!(
            "An organisation named {name:?} already exists."
        )));
    }
    let mut active: entity::organization::ActiveModel = organization.clone().into();
    let mut changed = serde_json::Map::new();
    if let Some(name) = name {
        changed.insert("name".into(), json!(name));
        active.name = Set(name);
    }
    if let Some(minutes) = changes.default_idle_timeout_minutes {
        changed.insert("defaultIdleTimeoutMinutes".into(), json!(minutes));
        active.default_idle_timeout_minutes = Set(minutes);
    }
    if let Some(length) = changes.password_min_length {
        changed.insert("passwordMinLength".into(), json!(length));
        active.password_min_length = Set(length);
    }
    if let Some(digit) = changes.password_require_digit {
        changed.insert("passwordRequireDigit".into(), json!(digit));
        active.password_require_digit = Set(digit);
    }
    if let Some(time_zone) = time_zone {
        changed.insert("timeZone".into(), json!(time_zone));
        active.time_zone = Set(time_zone);
    }
    let policy_changed = changes
        .mfa_required
        .is_some_and(|p| p.as_str() != organization.mfa_required);
    if let Some(policy) = changes.mfa_required {
        changed.insert("mfaRequired".into(), json!(policy.as_str()));
        active.mfa_required = Set(policy.as_str().to_owned());
    }
    if let Some(minutes) = changes.break_glass_max_minutes {
        changed.insert("breakGlassMaxMinutes".into(), json!(minutes));
        active.break_glass_max_minutes = Set(minutes);
    }
    if let Some(days) = changes.dormant_after_days {
        changed.insert("dormantAfterDays".into(), json!(days));
        active.dormant_after_days = Set(days);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await?;
    if policy_changed {
        // Every session of the organisation is judged by the new policy at
        // its next request, on every instance.
        store.bump_authz_epoch(updated.id).await?;
    }
    audit::record(
        db,
        AuditEntry {
            organization_id: Some(updated.id),
            ..AuditEntry::by(actor, "organization.update").target("Organization", updated.id)
        }
        .changes(serde_json::Value::Object(changed)),
    )
    .await?;
    Ok(updated)
}

/// The organisation `user` belongs to, for what is shown before they sign in
/// (their invitation's page and its password rules).
pub async fn of_user(
    db: &impl ConnectionTrait,
    user: &entity::user::Model,
) -> AppResult<Option<entity::organization::Model>> {
    Ok(Scope::of(user.organization_id)
        .organization()
        .one(db)
        .await?)
}
