//! Staff users of the actor's organisation: reading, creating, changing,
//! deactivating, resetting passwords and giving roles.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry, Changes},
    auth::{self, policy_of},
    invites, organizations, roles,
};
use crate::db::{
    Page, PageRequest, escape_like, page_select,
    rows::{self, Partial},
    unscoped,
};
use crate::{
    auth::{
        Actor, Permission,
        password::{Hasher, Password},
        session::SessionStore,
    },
    domain::{Email, EmployeeStatus, Locale, Phone},
    error::{AppError, AppResult, OnConstraint, Validation},
};

/// What `users` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Matched against first name, last name and email, case-insensitively.
    pub search: Option<String>,
    pub status: Option<String>,
    pub role_id: Option<Uuid>,
}

/// A user of the actor's organisation, or `None` (also for other organisations').
/// Anyone may read themselves; others need USERS_READ.
pub async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Option<entity::user::Model>> {
    if id != actor.user_id {
        actor.require(Permission::UsersRead)?;
    }
    Ok(actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.eq(id))
        .one(db)
        .await?)
}

/// A user of a page: what the page read of their record, and the ids of the
/// roles they hold when the page read those too.
pub struct Listed {
    pub record: Partial<entity::user::Model>,
    pub role_ids: Option<Vec<Uuid>>,
}

/// A page of the organisation's staff with `columns` read: what the caller
/// will show of them, besides their id and organisation, read always. With
/// `role_ids`, on PostgreSQL, the same statement reads the ids of the roles
/// each holds (the links of a hundred users, read by their key), so that
/// their roles cost no statement of their own; SQLite leaves them unread.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: UserFilter,
    page: PageRequest,
    columns: &[entity::user::Column],
    role_ids: bool,
) -> AppResult<Page<Listed>> {
    use entity::user::Column;
    actor.require(Permission::UsersRead)?;
    let mut select = actor.scope::<entity::user::Entity>();
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let like = || LikeExpr::new(&pattern).escape('\\');
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(Column::FirstName))).like(like()))
                .add(Expr::expr(Func::lower(Expr::col(Column::LastName))).like(like()))
                .add(Expr::col(Column::Email).like(like())),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status));
    }
    if let Some(role_id) = filter.role_id {
        select = select.filter(
            Column::Id.in_subquery(
                Query::select()
                    .column(entity::user_role::Column::UserId)
                    .from(entity::user_role::Entity)
                    .and_where(Expr::col(entity::user_role::Column::RoleId).eq(role_id))
                    .to_owned(),
            ),
        );
    }
    let columns: Vec<_> = [Column::Id, Column::OrganizationId]
        .into_iter()
        .chain(
            columns
                .iter()
                .copied()
                .filter(|c| !matches!(c, Column::Id | Column::OrganizationId)),
        )
        .collect();
    let (select, total_count) = page_select(db, select, Column::Id, &page).await?;
    let found = if role_ids && db.get_database_backend() == sea_orm::DbBackend::Postgres {
        rows::partial_with(db, select, &columns, [(role_ids_of_row(), "role_ids")])
            .await?
            .into_iter()
            .map(|(record, ids)| Listed {
                record,
                role_ids: Some(ids),
            })
            .collect()
    } else {
        rows::partial(db, select, &columns)
            .await?
            .into_iter()
            .map(|record| Listed {
                record,
                role_ids: None,
            })
            .collect()
    };
    Ok(Page::of(found, &page, total_count))
}

/// The ids of the roles the user of a row of `users` holds, as an array.
fn role_ids_of_row() -> sea_orm::sea_query::SimpleExpr {
    use entity::{user, user_role};
    use sea_orm::{EntityName as _, IdenStatic as _};
    Expr::cust(format!(
        "ARRAY(SELECT \"{role_id}\" FROM \"{links}\" WHERE \"{user_id}\" = \"{users}\".\"{id}\")",
        role_id = user_role::Column::RoleId.as_str(),
        links = user_role::Entity.table_name(),
        user_id = user_role::Column::UserId.as_str(),
        users = user::Entity.table_name(),
        id = user::Column::Id.as_str(),
    ))
}

/// The rules of a user's text fields, in one place for every door: GraphQL,
/// the import and SCIM call these, so a limit changes in one edit. Each
/// takes a value that is there (callers treat blank as absent) and the name
/// of the field to report.
pub mod field {
    use crate::{domain::text, error::AppResult};

    pub fn first_name(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn last_name(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn title(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn external_id(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    pub fn employee_number(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 64)
    }
    pub fn department(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 100)
    }
    /// What a provisioning client knows the user by.
    pub fn user_name(raw: &str, field: &str) -> AppResult<String> {
        text::required(raw, field, 255)
    }

    /// An optional field: blank is absent, anything else passes `rule`.
    pub fn optional(
        raw: Option<&str>,
        field: &str,
        rule: fn(&str, &str) -> AppResult<String>,
    ) -> AppResult<Option<String>> {
        raw.filter(|r| !r.trim().is_empty())
            .map(|r| rule(r, field))
            .transpose()
    }
}

/// A user's fields as a door received them, before any rule: the text a
/// client sent or a cell held, `None` where it gave nothing. GraphQL inputs,
/// import rows and SCIM representations map onto this, and [`RawUser::parse`]
/// holds every field to its rule in one place.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawUser<'a> {
    pub email: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub title: Option<&'a str>,
    pub employee_status: Option<&'a str>,
    pub mobile_phone: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub idle_timeout_minutes: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub employee_number: Option<&'a str>,
    pub department: Option<&'a str>,
    pub user_name: Option<&'a str>,
}

/// A user's fields as parsed: each one given and valid, else `None`.
#[derive(Clone, Debug, Default)]
pub struct UserFields {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub employee_status: Option<EmployeeStatus>,
    pub mobile_phone: Option<Phone>,
    pub locale: Option<Locale>,
    pub idle_timeout_minutes: Option<i32>,
    pub external_id: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub user_name: Option<String>,
}

/// The clients' names of a user's fields, as GraphQL and the import's
/// mapping use them: the names a door's errors give unless it names its
/// fields otherwise (SCIM's `name.givenName`).
pub fn client_name(field: &'static str) -> &'static str {
    field
}

impl RawUser<'_> {
    /// Each given field held to its rule; every error goes to `v`, under the
    /// name `name` gives the field (see [`client_name`]). A blank optional
    /// field is absent; the address, the names and `userName` given blank
    /// are required.
    pub fn parse(&self, v: &mut Validation, name: fn(&'static str) -> &'static str) -> UserFields {
        fn given(raw: Option<&str>) -> Option<&str> {
            raw.filter(|r| !r.trim().is_empty())
        }
        let text = |v: &mut Validation, raw, key, rule| {
            v.check(field::optional(raw, name(key), rule)).flatten()
        };
        UserFields {
            email: self
                .email
                .and_then(|raw| v.check(Email::parse(raw, name("email")))),
            first_name: self
                .first_name
                .and_then(|raw| v.check(field::first_name(raw, name("firstName")))),
            last_name: self
                .last_name
                .and_then(|raw| v.check(field::last_name(raw, name("lastName")))),
            title: text(v, self.title, "title", field::title),
            employee_status: given(self.employee_status)
                .and_then(|raw| v.check(EmployeeStatus::parse(raw, name("employeeStatus")))),
            mobile_phone: given(self.mobile_phone)
                .and_then(|raw| v.check(Phone::parse(raw, name("mobilePhone")))),
            locale: given(self.locale).and_then(|raw| v.check(Locale::parse(raw, name("locale")))),
            idle_timeout_minutes: given(self.idle_timeout_minutes).and_then(|raw| {
                let field = name("idleTimeoutMinutes");
                v.check(
                    raw.trim()
                        .parse::<i32>()
                        .map_err(|_| {
                            AppError::bad_input(field, "must be a whole number of minutes")
                        })
                        .and_then(|minutes| parse_idle_timeout(minutes, field)),
                )
            }),
            external_id: text(v, self.external_id, "externalId", field::external_id),
            employee_number: text(
                v,
                self.employee_number,
                "employeeNumber",
                field::employee_number,
            ),
            department: text(v, self.department, "department", field::department),
            user_name: self
                .user_name
                .and_then(|raw| v.check(field::user_name(raw, name("userName")))),
        }
    }
}

impl UserFields {
    /// A new user's details: `None` unless the address and both names are
    /// there. An employee status not given is Active.
    pub fn details(self) -> Option<UserDetails> {
        Some(UserDetails {
            title: self.title,
            employee_status: self.employee_status.unwrap_or(EmployeeStatus::Active),
            mobile_phone: self.mobile_phone,
            locale: self.locale,
            idle_timeout_minutes: self.idle_timeout_minutes,
            external_id: self.external_id,
            employee_number: self.employee_number,
            department: self.department,
            user_name: self.user_name,
            ..UserDetails::named(self.email?, self.first_name?, self.last_name?)
        })
    }

    /// What these fields change on a user who exists: each one given; what is
    /// absent is left as it is, never cleared.
    pub fn changes(self) -> UserChanges {
        UserChanges {
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            title: self.title.map(Some),
            employee_status: self.employee_status,
            mobile_phone: self.mobile_phone.map(Some),
            locale: self.locale.map(Some),
            idle_timeout_minutes: self.idle_timeout_minutes.map(Some),
            external_id: self.external_id.map(Some),
            employee_number: self.employee_number.map(Some),
            department: self.department.map(Some),
            user_name: self.user_name.map(Some),
        }
    }
}

/// The details of a staff user, valid by construction.
#[derive(Clone, Debug)]
pub struct UserDetails {
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub employee_status: EmployeeStatus,
    pub mobile_phone: Option<Phone>,
    pub locale: Option<Locale>,
    pub idle_timeout_minutes: Option<i32>,
    pub external_id: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    /// The `userName` a SCIM client knows the user by, when not the email.
    pub user_name: Option<String>,
}

impl UserDetails {
    /// The record of a new, active user of `organization_id` with these
    /// details: the one place a user is built, for every door that makes one.
    /// With a password, it must be changed at first login.
    pub fn new_user(
        &self,
        organization_id: Uuid,
        password_hash: Option<String>,
        now: chrono::DateTime<Utc>,
    ) -> entity::user::Model {
        entity::user::Model {
            id: Uuid::now_v7(),
            organization_id,
            email: self.email.as_str().to_owned(),
            must_change_password: password_hash.is_some(),
            password_hash,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            title: self.title.clone(),
            status: "ACTIVE".to_owned(),
            employee_status: self.employee_status.as_str().to_owned(),
            mobile_phone: self.mobile_phone.as_ref().map(|p| p.as_str().to_owned()),
            locale: self.locale.as_ref().map(|l| l.as_str().to_owned()),
            idle_timeout_minutes: self.idle_timeout_minutes,
            external_id: self.external_id.clone(),
            is_super_admin: false,
            last_login_at: None,
            created_at: now,
            updated_at: now,
            email_signature: None,
            preferences: None,
            service_account: false,
            user_name: self.user_name.clone(),
            employee_number: self.employee_number.clone(),
            department: self.department.clone(),
            deprovisioned_at: None,
            reactivated_at: None,
            dormancy_warned_at: None,
        }
    }

    /// A user with a name and an address, and nothing else yet.
    pub fn named(email: Email, first_name: String, last_name: String) -> Self {
        Self {
            email,
            first_name,
            last_name,
            title: None,
            employee_status: EmployeeStatus::Active,
            mobile_phone: None,
            locale: None,
            idle_timeout_minutes: None,
            external_id: None,
            employee_number: None,
            department: None,
            user_name: None,
        }
    }
}

/// How a new user will first log in.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A password chosen by the admin, to be changed at first login.
    Password(String),
    /// A strong password generated now, returned once, to be changed at first login.
    Generate,
    /// No password: a one-time invite link to set one.
    Invite,
    /// Nothing: the user signs in through single sign-on, or sets a first
    /// password with a reset link (what SCIM provisioning gives).
    None,
}

/// What `createUser` hands back: the user, and the secret shown once.
pub struct CreatedUser {
    pub user: entity::user::Model,
    pub generated_password: Option<Password>,
    pub invite_link: Option<String>,
}

/// Changes to a user: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<Option<String>>,
    pub employee_status: Option<EmployeeStatus>,
    pub mobile_phone: Option<Option<Phone>>,
    pub locale: Option<Option<Locale>>,
    pub idle_timeout_minutes: Option<Option<i32>>,
    pub external_id: Option<Option<String>>,
    pub employee_number: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub user_name: Option<Option<String>>,
}

impl UserChanges {
    /// Set on `active` each field that these changes give a value other than
    /// `user`'s: the one place a user's fields change, for every door. What
    /// changed, under the clients' names for the fields, for the audit trail;
    /// empty when nothing did.
    pub fn apply(
        self,
        user: &entity::user::Model,
        active: &mut entity::user::ActiveModel,
    ) -> Changes {
        let mut changed = Changes::default();
        let c = &mut changed;
        if let Some(email) = self.email {
            c.set_if_changed(
                "email",
                &mut active.email,
                &user.email,
                email.as_str().to_owned(),
            );
        }
        if let Some(name) = self.first_name {
            c.set_if_changed("firstName", &mut active.first_name, &user.first_name, name);
        }
        if let Some(name) = self.last_name {
            c.set_if_changed("lastName", &mut active.last_name, &user.last_name, name);
        }
        if let Some(title) = self.title {
            c.set_if_changed("title", &mut active.title, &user.title, title);
        }
        if let Some(status) = self.employee_status {
            let status = status.as_str().to_owned();
            c.set_if_changed(
                "employeeStatus",
                &mut active.employee_status,
                &user.employee_status,
                status,
            );
        }
        if let Some(phone) = self.mobile_phone {
            let phone = phone.map(|p| p.as_str().to_owned());
            c.set_if_changed(
                "mobilePhone",
                &mut active.mobile_phone,
                &user.mobile_phone,
                phone,
            );
        }
        if let Some(locale) = self.locale {
            let locale = locale.map(|l| l.as_str().to_owned());
            c.set_if_changed("locale", &mut active.locale, &user.locale, locale);
        }
        if let Some(minutes) = self.idle_timeout_minutes {
            let current = &user.idle_timeout_minutes;
            c.set_if_changed(
                "idleTimeoutMinutes",
                &mut active.idle_timeout_minutes,
                current,
                minutes,
            );
        }
        if let Some(id) = self.external_id {
            c.set_if_changed("externalId", &mut active.external_id, &user.external_id, id);
        }
        if let Some(number) = self.employee_number {
            let current = &user.employee_number;
            c.set_if_changed(
                "employeeNumber",
                &mut active.employee_number,
                current,
                number,
            );
        }
        if let Some(department) = self.department {
            c.set_if_changed(
                "department",
                &mut active.department,
                &user.department,
                department,
            );
        }
        if let Some(name) = self.user_name {
            c.set_if_changed("userName", &mut active.user_name, &user.user_name, name);
        }
        changed
    }
}

/// An inactivity timeout in minutes: 1 to 720.
pub fn parse_idle_timeout(minutes: i32, field: &str) -> AppResult<i32> {
    if (1..=720).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(AppError::bad_input(
            field,
            "must be between 1 and 720 minutes",
        ))
    }
}

/// Create a staff user (USERS_WRITE; giving roles also needs ROLES_MANAGE).
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    hasher: &Hasher,
    actor: &Actor,
    details: UserDetails,
    role_ids: &[Uuid],
    credentials: Credentials,
    public_url: &str,
) -> AppResult<CreatedUser> {
    actor.require(Permission::UsersWrite)?;
    if !role_ids.is_empty() {
        actor.require(Permission::RolesManage)?;
    }
    let organization = organizations::find(db, actor, None).await?;
    let secret = Secret::prepare(hasher, &organization, &details.email, credentials).await?;
    let txn = crate::db::begin_write(db).await?;
    let roles = roles::resolve_ids(&txn, actor, role_ids, "roleIds").await?;
    roles::ensure_may_give(&txn, &actor.authority(), &roles, "roleIds").await?;
    let created = create_in(
        &txn,
        actor,
        &organization,
        &details,
        &roles,
        secret,
        public_url,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// A new user's first credential, checked and hashed before any transaction opens
/// (no database lock waits on argon2).
pub(crate) struct Secret {
    password: Option<Password>,
    hash: Option<String>,
    generated: bool,
    /// Without a password: whether to send an invite link.
    invite: bool,
}

impl Secret {
    pub(crate) async fn prepare(
        hasher: &Hasher,
        organization: &entity::organization::Model,
        email: &Email,
        credentials: Credentials,
    ) -> AppResult<Self> {
        let invite = matches!(credentials, Credentials::Invite);
        let (password, generated) = match credentials {
            Credentials::Password(raw) => (
                Some(Password::parse(
                    &raw,
                    policy_of(organization),
                    Some(email.as_str()),
                    "password",
                )?),
                false,
            ),
            Credentials::Generate => (Some(Password::generate()), true),
            Credentials::Invite | Credentials::None => (None, false),
        };
        let hash = match &password {
            Some(password) => Some(hasher.hash(password).await?),
            None => None,
        };
        Ok(Self {
            password,
            hash,
            generated,
            invite,
        })
    }
}

/// Create a user with their roles and first credential inside the caller's
/// transaction, and audit it: what `createUser` and `createProvider` share.
pub(crate) async fn create_in(
    txn: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    organization: &entity::organization::Model,
    details: &UserDetails,
    roles: &[entity::role::Model],
    secret: Secret,
    public_url: &str,
) -> AppResult<CreatedUser> {
    ensure_email_free(txn, &details.email, None).await?;
    let has_password = secret.hash.is_some();
    let user = insert(txn, organization.id, details, secret.hash).await?;
    assign_roles(txn, user.id, roles).await?;
    let invite_link = if has_password || !secret.invite {
        None
    } else {
        Some(
            invites::issue(
                txn,
                Some(actor.user_id),
                &user,
                &organization.name,
                public_url,
            )
            .await?,
        )
    };
    audit::record(
        txn,
        AuditEntry::by(actor, "user.create")
            .target("User", user.id)
            .changes(json!({
                "email": user.email,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "roles": roles.iter().map(|r| &r.name).collect::<Vec<_>>(),
                "credentials": match (has_password, secret.invite) {
                    (true, _) => "password",
                    (false, true) => "invite",
                    (false, false) => "none",
                },
            })),
    )
    .await?;
    Ok(CreatedUser {
        user,
        generated_password: secret.password.filter(|_| secret.generated),
        invite_link,
    })
}

/// Insert a user row (no roles, no audit): the part `create` shares with providers.
pub(crate) async fn insert(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    details: &UserDetails,
    password_hash: Option<String>,
) -> AppResult<entity::user::Model> {
    let user = details.new_user(organization_id, password_hash, Utc::now());
    entity::user::Entity::insert(entity::user::ActiveModel::from(user.clone()))
        .exec_without_returning(db)
        .await
        .on_unique_violation(|| email_taken(&details.email))?;
    Ok(user)
}

/// Change a user's details (USERS_WRITE); only the given fields change.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: Uuid,
    changes: UserChanges,
) -> AppResult<entity::user::Model> {
    actor.require(Permission::UsersWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let user = find_manageable(&txn, actor, id).await?;
    if let Some(email) = &changes.email
        && email.as_str() != user.email
    {
        ensure_email_free(&txn, email, Some(id)).await?;
    }
    let email = changes.email.clone();
    let mut active: entity::user::ActiveModel = user.clone().into();
    let changed = changes.apply(&user, &mut active);
    if changed.is_empty() {
        return Ok(user);
    }
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await.on_unique_violation(|| {
        email.as_ref().map_or_else(
            || AppError::Conflict("This change conflicts with another user.".into()),
            email_taken,
        )
    })?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.update")
            .target("User", id)
            .changes(changed.into_json()),
    )
    .await?;
    txn.commit().await?;
    store.bump_user_epoch(id).await?;
    Ok(user)
}

/// Deactivate a user (USERS_WRITE): every session of theirs ends at once, on every
/// instance. The organisation's last administrator cannot be deactivated.
pub async fn deactivate(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::user::Model> {
    actor.require(Permission::UsersWrite)?;
    let txn = crate::db::begin_write(db).await?;
    roles::lock_organization(&txn, actor.organization_id).await?;
    let user = find_manageable(&txn, actor, id).await?;
    if user.status == "INACTIVE" {
        return Ok(user);
    }
    let user = set_status(&txn, user, "INACTIVE").await?;
    roles::ensure_an_administrator_remains(&txn, actor.organization_id).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.deactivate").target("User", id),
    )
    .await?;
    // End the sessions before the commit: if the store is down, nothing changes.
    store.revoke_user(id, None).await?;
    super::commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(user)
}

/// Let a deactivated user log in again (USERS_WRITE).
pub async fn reactivate(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::user::Model> {
    actor.require(Permission::UsersWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let user = find_manageable(&txn, actor, id).await?;
    if user.status == "ACTIVE" {
        return Ok(user);
    }
    let user = set_status(&txn, user, "ACTIVE").await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.reactivate").target("User", id),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Give a user a generated password that must be changed at next login
/// (USERS_WRITE); their sessions and open invites end.
pub async fn reset_password(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    hasher: &Hasher,
    actor: &Actor,
    id: Uuid,
) -> AppResult<Password> {
    actor.require(Permission::UsersWrite)?;
    actor.require_recent_mfa()?;
    find_manageable(db, actor, id).await?;
    let password = Password::generate();
    let hash = hasher.hash(&password).await?;
    let txn = crate::db::begin_write(db).await?;
    let user = find_manageable(&txn, actor, id).await?;
    let mut active: entity::user::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.must_change_password = Set(true);
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await?;
    invites::revoke_open(&txn, id).await?;
    auth::notify_password_changed(&txn, &user, auth::PasswordChanged::ByAdministrator).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.reset_password").target("User", id),
    )
    .await?;
    store.revoke_user(id, None).await?;
    super::commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(password)
}

/// Replace a user's roles (ROLES_MANAGE); applies to their next request.
pub async fn set_roles(
    db: &(impl ConnectionTrait + TransactionTrait),
    store: &dyn SessionStore,
    actor: &Actor,
    id: Uuid,
    role_ids: &[Uuid],
) -> AppResult<entity::user::Model> {
    actor.require(Permission::RolesManage)?;
    actor.require_recent_mfa()?;
    let txn = crate::db::begin_write(db).await?;
    roles::lock_organization(&txn, actor.organization_id).await?;
    let user = find_manageable(&txn, actor, id).await?;
    let roles = roles::resolve_ids(&txn, actor, role_ids, "roleIds").await?;
    roles::ensure_may_give(&txn, &actor.authority(), &roles, "roleIds").await?;
    let before: Vec<String> = roles::roles_by_user(&txn, actor.tenant(), &[id])
        .await?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    actor
        .tenant()
        .delete_many::<entity::user_role::Entity>()
        .filter(entity::user_role::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    assign_roles(&txn, id, &roles).await?;
    roles::ensure_an_administrator_remains(&txn, actor.organization_id).await?;
    let mut after: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    after.sort_unstable();
    audit::record(
        &txn,
        AuditEntry::by(actor, "user.set_roles")
            .target("User", id)
            .changes(json!({ "before": before, "after": after })),
    )
    .await?;
    super::commit_authz_change(txn, store, actor.organization_id).await?;
    Ok(user)
}

pub(crate) async fn assign_roles(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    roles: &[entity::role::Model],
) -> AppResult<()> {
    if roles.is_empty() {
        return Ok(());
    }
    entity::user_role::Entity::insert_many(roles.iter().map(|role| {
        entity::user_role::ActiveModel {
            user_id: Set(user_id),
            role_id: Set(role.id),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub(crate) async fn set_status(
    db: &impl ConnectionTrait,
    user: entity::user::Model,
    status: &str,
) -> AppResult<entity::user::Model> {
    let now = Utc::now();
    let mut active: entity::user::ActiveModel = user.into();
    active.status = Set(status.to_owned());
    if status == "ACTIVE" {
        // Dormancy counts afresh from a reactivation.
        active.reactivated_at = Set(Some(now));
        active.dormancy_warned_at = Set(None);
    }
    active.updated_at = Set(now);
    Ok(active.update(db).await?)
}

/// A user of the actor's organisation whom the actor may manage under the access
/// rule: every permission the user holds is held by the actor (and only a super
/// admin manages a super admin).
pub(crate) async fn find_manageable(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::user::Model> {
    let user = actor
        .scope::<entity::user::Entity>()
        .filter(entity::user::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("User"))?;
    let held = roles::permissions_by_user(db, actor.tenant(), &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    actor.authority().ensure_may_manage(&user, &held, "id")?;
    Ok(user)
}

/// Emails are unique across the platform, compared case-insensitively (they are
/// stored lower case).
pub(crate) async fn ensure_email_free(
    db: &impl ConnectionTrait,
    email: &Email,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut select = unscoped::find::<entity::user::Entity>()
        .filter(entity::user::Column::Email.eq(email.as_str()));
    if let Some(id) = except {
        select = select.filter(entity::user::Column::Id.ne(id));
    }
    if select.count(db).await? > 0 {
        return Err(email_taken(email));
    }
    Ok(())
}

fn email_taken(email: &Email) -> AppError {
    AppError::Conflict(format!("A user with the email {email} already exists."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(raw: RawUser<'_>, name: fn(&'static str) -> &'static str) -> Vec<(String, String)> {
        let mut v = Validation::default();
        raw.parse(&mut v, name);
        v.into_errors()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn every_door_gets_the_same_fields_from_the_same_text() {
        let mut v = Validation::default();
        let fields = RawUser {
            email: Some(" Nurse@Clinic.TEST "),
            first_name: Some("Ana"),
            last_name: Some("Silva"),
            title: Some("  "),
            employee_status: Some("On leave"),
            mobile_phone: Some("(415) 555-2671"),
            idle_timeout_minutes: Some("30"),
            ..RawUser::default()
        }
        .parse(&mut v, client_name);
        assert!(v.into_errors().is_empty());
        assert_eq!(fields.title, None, "blank is absent");
        let details = fields.clone().details().unwrap();
        assert_eq!(details.email.as_str(), "nurse@clinic.test");
        assert_eq!(details.employee_status, EmployeeStatus::Leave);
        assert_eq!(details.mobile_phone.unwrap().as_str(), "+14155552671");
        assert_eq!(details.idle_timeout_minutes, Some(30));
        let changes = fields.changes();
        assert_eq!(changes.title, None, "what is absent is left as it is");
        assert_eq!(changes.first_name.as_deref(), Some("Ana"));
    }

    #[test]
    fn a_required_field_given_blank_is_required_and_each_door_names_it_its_way() {
        let raw = RawUser {
            email: Some("not an address"),
            first_name: Some(" "),
            last_name: Some("Silva"),
            idle_timeout_minutes: Some("half an hour"),
            ..RawUser::default()
        };
        let ours = errors(raw, client_name);
        let fields: Vec<&str> = ours.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["email", "firstName", "idleTimeoutMinutes"]);
        assert_eq!(ours[1].1, "is required");
        let scim = errors(raw, |field| match field {
            "firstName" => "name.givenName",
            other => other,
        });
        assert_eq!(scim[1].0, "name.givenName");
        // Absent, nothing is required: an import row may leave a name out.
        assert!(errors(RawUser::default(), client_name).is_empty());
        assert!(
            RawUser::default()
                .parse(&mut Validation::default(), client_name)
                .details()
                .is_none()
        );
    }
}
