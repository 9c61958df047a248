//! Organisations, users and roles as clients read them.

use std::sync::Arc;

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject, dataloader::DataLoader,
};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    loaders::{
        AuthenticatorsOfUser, AvailabilityOfUser, CertificationsOfUser, PermissionsOfRole,
        ProviderOfUser, RecoveryCodesLeft, RolesOfUser, loader_error,
    },
};
use crate::{
    auth::Permission,
    services::{organizations, roles, users},
};

/// A tenant: a practice, clinic or research programme.
pub struct Organization(pub entity::organization::Model);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Minutes of inactivity after which a session ends, unless the user has their own.
    async fn default_idle_timeout_minutes(&self) -> i32 {
        self.0.default_idle_timeout_minutes
    }
    /// Shortest password the organisation accepts.
    async fn password_min_length(&self) -> i32 {
        self.0.password_min_length
    }
    /// Whether passwords must contain a digit.
    async fn password_require_digit(&self) -> bool {
        self.0.password_require_digit
    }
    /// IANA name; staff availability is written in it.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// Who must have a second factor.
    async fn mfa_required(&self) -> super::mfa::MfaPolicy {
        crate::auth::mfa::MfaPolicy::from_stored(&self.0.mfa_required).into()
    }
    /// The longest emergency access a user may give themselves, in minutes.
    async fn break_glass_max_minutes(&self) -> i32 {
        self.0.break_glass_max_minutes
    }
    /// Users who have not signed in for this many days are deactivated; null:
    /// never.
    async fn dormant_after_days(&self) -> Option<i32> {
        self.0.dormant_after_days
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Whether a user may log in.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Inactive,
}

/// Employment status as the organisation's records have it.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeStatus {
    Active,
    Inactive,
    Leave,
}

/// A staff login. Shared, not copied: `me` answers from the record the
/// request's session check already holds. The second part holds the user's
/// roles when the list that found them read them with its page; without it
/// they come through the roles loader.
pub struct User(
    pub Arc<entity::user::Model>,
    Option<Vec<entity::role::Model>>,
);

impl From<entity::user::Model> for User {
    fn from(model: entity::user::Model) -> Self {
        Self(Arc::new(model), None)
    }
}

impl From<Arc<entity::user::Model>> for User {
    fn from(model: Arc<entity::user::Model>) -> Self {
        Self(model, None)
    }
}

impl User {
    /// The user's roles, read with the page when it did, else through the loader.
    async fn held_roles(&self, ctx: &Context<'_>) -> Result<Vec<entity::role::Model>> {
        if let Some(roles) = &self.1 {
            return Ok(roles.clone());
        }
        let loader = ctx.data::<DataLoader<RolesOfUser>>()?;
        let roles = loader.load_one(self.0.id).await.map_err(loader_error)?;
        Ok(roles.unwrap_or_default())
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The username, lower case.
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn status(&self) -> UserStatus {
        if self.0.status == "ACTIVE" {
            UserStatus::Active
        } else {
            UserStatus::Inactive
        }
    }
    async fn employee_status(&self) -> EmployeeStatus {
        match self.0.employee_status.as_str() {
            "INACTIVE" => EmployeeStatus::Inactive,
            "LEAVE" => EmployeeStatus::Leave,
            _ => EmployeeStatus::Active,
        }
    }
    /// E.164, e.g. `+14155550123`.
    async fn mobile_phone(&self) -> Option<&str> {
        self.0.mobile_phone.as_deref()
    }
    /// BCP 47, e.g. `en-US`.
    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }
    /// The user's own inactivity timeout in minutes; the organisation's applies when null.
    async fn idle_timeout_minutes(&self) -> Option<i32> {
        self.0.idle_timeout_minutes
    }
    /// The organisation's own identifier for this person.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Until changed, the user can do nothing but change their password.
    async fn must_change_password(&self) -> bool {
        self.0.must_change_password
    }
    /// The user's second factors, never their secrets: for the user and for
    /// those with USERS_WRITE; null for anyone else.
    async fn authenticators(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::mfa::Authenticator>>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.0.id && !actor.has(Permission::UsersWrite) {
            return Ok(None);
        }
        let found = ctx
            .data::<DataLoader<AuthenticatorsOfUser>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        Ok(Some(
            found.into_iter().map(super::mfa::Authenticator).collect(),
        ))
    }
    /// Unused recovery codes: for the user and for those with USERS_WRITE.
    async fn recovery_codes_left(&self, ctx: &Context<'_>) -> Result<Option<u64>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.0.id && !actor.has(Permission::UsersWrite) {
            return Ok(None);
        }
        let left = ctx
            .data::<DataLoader<RecoveryCodesLeft>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?;
        Ok(Some(left.unwrap_or_default()))
    }
    /// Whether the user may act in every organisation.
    async fn is_super_admin(&self) -> bool {
        self.0.is_super_admin
    }
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor_in_setup()?;
        // Boxed: every field of a user is resolved through one future type, as
        // large as the largest field's; with a query inline here, each `id` or
        // `email` of every user would be moved around as kilobytes.
        let find = Box::pin(organizations::find(
            &state.db,
            actor,
            Some(self.0.organization_id),
        ));
        Ok(Organization(find.await?))
    }
    /// The user's provider record, if they are a provider (PROVIDERS_READ to see it).
    async fn provider(&self, ctx: &Context<'_>) -> Result<Option<super::providers::Provider>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.0.id && !actor.has(Permission::ProvidersRead) {
            return Ok(None);
        }
        let provider = ctx
            .data::<DataLoader<ProviderOfUser>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?;
        Ok(provider.map(super::providers::Provider))
    }
    /// The roles the user holds.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        Ok(self.held_roles(ctx).await?.into_iter().map(Role).collect())
    }
    /// The roles the user holds but that do not apply now: a certification
    /// they require is missing or has expired.
    async fn suspended_roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        let roles = ctx
            .data::<DataLoader<super::loaders::SuspendedRolesOfUser>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?;
        Ok(roles.unwrap_or_default().into_iter().map(Role).collect())
    }
    /// Appended to emails the user sends from the front-ends.
    async fn email_signature(&self) -> Option<&str> {
        self.0.email_signature.as_deref()
    }
    /// The front-ends' settings for this user (a JSON object).
    async fn preferences(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.preferences.clone().map(async_graphql::Json)
    }
    /// The user's certifications, soonest to expire first.
    async fn certifications(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::profiles::Certification>> {
        Ok(ctx
            .data::<DataLoader<CertificationsOfUser>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(super::profiles::Certification)
            .collect())
    }
    /// The user's weekly availability, by day and time.
    async fn availability(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::profiles::AvailabilitySlot>> {
        Ok(ctx
            .data::<DataLoader<AvailabilityOfUser>>()?
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(super::profiles::AvailabilitySlot)
            .collect())
    }
    /// What the user's roles allow, together.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<Permission>> {
        let roles = self.held_roles(ctx).await?;
        let by_role = ctx
            .data::<DataLoader<PermissionsOfRole>>()?
            .load_many(roles.iter().map(|r| r.id))
            .await
            .map_err(loader_error)?;
        let all: std::collections::BTreeSet<Permission> = by_role.into_values().flatten().collect();
        Ok(all.into_iter().collect())
    }
}

/// A named set of permissions.
pub struct Role(pub entity::role::Model);

#[Object]
impl Role {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Created with the organisation; admins may still edit it.
    async fn built_in(&self) -> bool {
        self.0.built_in
    }
    /// Certifications a holder must have, valid, for the role to apply.
    async fn required_certifications(&self) -> Vec<String> {
        self.0.required_certifications()
    }
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<Permission>> {
        let loader = ctx.data::<DataLoader<PermissionsOfRole>>()?;
        let permissions = loader.load_one(self.0.id).await.map_err(loader_error)?;
        Ok(permissions.unwrap_or_default().into_iter().collect())
    }
}

/// One entry of the permission catalogue.
#[derive(SimpleObject)]
pub struct PermissionInfo {
    pub permission: Permission,
    pub description: &'static str,
}

/// What `users` may be narrowed by.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Part of a first name, last name or email, in any case.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    /// Only holders of this role.
    pub role_id: Option<ID>,
}

#[derive(Default)]
pub struct AccountQuery;

/// Whether a list of users is asked for its users' roles or permissions
/// (both read the roles), through its edges or its nodes.
fn selects_roles(ctx: &Context<'_>) -> bool {
    let ahead = ctx.look_ahead();
    [ahead.field("edges").field("node"), ahead.field("nodes")]
        .iter()
        .any(|user| user.field("roles").exists() || user.field("permissions").exists())
}

#[Object]
impl AccountQuery {
    /// The logged-in user. Answers even while the password must be changed.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let actor = ctx.caller()?.actor_in_setup()?;
        Ok(User::from(actor.user.clone()))
    }

    /// The caller's organisation, or with `id` any organisation for a super admin.
    async fn organization(&self, ctx: &Context<'_>, id: Option<ID>) -> Result<Organization> {
        let actor = ctx.caller()?.actor()?;
        let id = id.as_ref().map(|id| parse_id(id, "id")).transpose()?;
        Ok(Organization(
            organizations::find(&ctx.state()?.db, actor, id).await?,
        ))
    }

    /// Every organisation (super admin).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Organization>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let page = organizations::list(&state.db, actor, page).await?;
        Ok(into_connection(page, |m| m.id, Organization))
    }

    /// Staff users of the organisation (USERS_READ).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
    ) -> Result<Conn<User>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = users::UserFilter {
            search: filter.search,
            status: filter.status.map(|s| match s {
                UserStatus::Active => "ACTIVE".to_owned(),
                UserStatus::Inactive => "INACTIVE".to_owned(),
            }),
            role_id: filter
                .role_id
                .as_ref()
                .map(|id| parse_id(id, "filter.roleId"))
                .transpose()?,
        };
        let page = users::list(&state.db, actor, filter, page).await?;
        // Roles asked for come with the page, in one statement, rather than
        // through the loader a hundred keys at a time.
        let mut roles = if selects_roles(ctx) {
            let ids: Vec<_> = page.items.iter().map(|m| m.id).collect();
            Some(roles::roles_by_user(&state.db, &ids).await?)
        } else {
            None
        };
        Ok(into_connection(
            page,
            |m| m.id,
            |m| {
                let held = roles
                    .as_mut()
                    .map(|roles| roles.remove(&m.id).unwrap_or_default());
                User(Arc::new(m), held)
            },
        ))
    }

    /// One user of the organisation; null for an unknown id or another organisation's.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(users::find(&ctx.state()?.db, actor, id)
            .await?
            .map(User::from))
    }

    /// The organisation's roles, by name.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        let actor = ctx.caller()?.actor()?;
        Ok(roles::list(&ctx.state()?.db, actor)
            .await?
            .into_iter()
            .map(Role)
            .collect())
    }

    /// The permission catalogue, with what each permission allows.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<PermissionInfo>> {
        ctx.caller()?.actor()?;
        Ok(Permission::ALL
            .into_iter()
            .map(|permission| PermissionInfo {
                permission,
                description: permission.description(),
            })
            .collect())
    }
}
