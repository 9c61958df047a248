//! A person's graph as clients read it: the organisation, its users and
//! roles, a user's provider record, certifications, availability and second
//! factors. These types name each other (a user's provider, a provider's
//! user), so they live together; the queries and mutations over them live in
//! `account`, `providers`, `profiles` and `mfa`.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputValueError, InputValueResult, Object, Result, Scalar, ScalarType,
    SimpleObject, Value, dataloader::DataLoader,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::user::Column;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{
    Ctx,
    loaders::{
        AuthenticatorsOfUser, AvailabilityOfUser, ById, CertificationsOfUser, Key,
        PermissionsOfRole, ProviderOfUser, RecoveryCodesLeft, RolesOfUser, UserById, loader_error,
    },
    locations::Location,
};
use crate::{
    auth::Permission,
    db::rows::Partial,
    error::AppError,
    services::{organizations, profiles, providers::CredentialingStatus as Status},
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
    async fn mfa_required(&self) -> MfaPolicy {
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

/// A staff login: its record, and its roles when the list that found it read
/// them with its page (without them they come through the roles loader).
pub struct User {
    id: Uuid,
    organization_id: Uuid,
    record: Record,
    roles: Option<Vec<Arc<entity::role::Model>>>,
}

enum Record {
    /// Shared, not copied: `me` answers from the record the request's
    /// session check already holds.
    Whole(Arc<entity::user::Model>),
    /// A user of a page, read with the columns its selection asks for
    /// ([`FIELD_COLUMNS`]). A field that needs another column reads the whole
    /// record, once, through the loader (with the page's other users).
    /// Boxed: a page's users are moved whole from its rows to its edges,
    /// and a record inline made each move hundreds of bytes.
    Listed(
        Box<Partial<entity::user::Model>>,
        OnceCell<Arc<entity::user::Model>>,
    ),
}

/// The column of the record each field of a user reads, so that a page of
/// users reads those of the fields asked for and no others. A field left out
/// here still answers, from the whole record read for it.
pub(super) const FIELD_COLUMNS: [(&str, Column); 17] = [
    ("email", Column::Email),
    ("firstName", Column::FirstName),
    ("lastName", Column::LastName),
    ("title", Column::Title),
    ("status", Column::Status),
    ("employeeStatus", Column::EmployeeStatus),
    ("mobilePhone", Column::MobilePhone),
    ("locale", Column::Locale),
    ("idleTimeoutMinutes", Column::IdleTimeoutMinutes),
    ("externalId", Column::ExternalId),
    ("mustChangePassword", Column::MustChangePassword),
    ("isSuperAdmin", Column::IsSuperAdmin),
    ("lastLoginAt", Column::LastLoginAt),
    ("createdAt", Column::CreatedAt),
    ("updatedAt", Column::UpdatedAt),
    ("emailSignature", Column::EmailSignature),
    ("preferences", Column::Preferences),
];

impl From<entity::user::Model> for User {
    fn from(model: entity::user::Model) -> Self {
        Self::from(Arc::new(model))
    }
}

impl From<Arc<entity::user::Model>> for User {
    fn from(model: Arc<entity::user::Model>) -> Self {
        Self {
            id: model.id,
            organization_id: model.organization_id,
            record: Record::Whole(model),
            roles: None,
        }
    }
}

impl User {
    /// A user of a page, read in part; `None` if its id and organisation were
    /// not read.
    pub(super) fn listed(part: Partial<entity::user::Model>) -> Option<Self> {
        let id = part.get(Column::Id as u32)?.id;
        let organization_id = part.get(Column::OrganizationId as u32)?.organization_id;
        Some(Self {
            id,
            organization_id,
            record: Record::Listed(Box::new(part), OnceCell::new()),
            roles: None,
        })
    }

    pub(super) fn uuid(&self) -> Uuid {
        self.id
    }

    /// The roles the user holds, read with their page.
    pub(super) fn held(&mut self, roles: Vec<Arc<entity::role::Model>>) {
        self.roles = Some(roles);
    }

    /// The record, for a field that reads its `column`.
    async fn record(&self, ctx: &Context<'_>, column: Column) -> Result<&entity::user::Model> {
        match &self.record {
            Record::Whole(model) => Ok(model),
            Record::Listed(part, whole) => match part.get(column as u32) {
                Some(model) => Ok(model),
                // Boxed: every field of a user is resolved through one
                // future type, as large as the largest field's.
                None => Ok(whole
                    .get_or_try_init(|| Box::pin(self.read_whole(ctx)))
                    .await?),
            },
        }
    }

    async fn read_whole(&self, ctx: &Context<'_>) -> Result<Arc<entity::user::Model>> {
        ctx.data::<DataLoader<UserById>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?
            .map(Arc::new)
            .ok_or_else(|| AppError::NotFound("user").into())
    }

    /// The user's roles, read with the page when it did, else through the loader.
    async fn held_roles(&self, ctx: &Context<'_>) -> Result<Vec<Arc<entity::role::Model>>> {
        if let Some(roles) = &self.roles {
            return Ok(roles.clone());
        }
        let loader = ctx.data::<DataLoader<RolesOfUser>>()?;
        let roles = loader
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?;
        Ok(roles
            .unwrap_or_default()
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// The username, lower case.
    async fn email(&self, ctx: &Context<'_>) -> Result<&str> {
        let record = self.record(ctx, Column::Email).await?;
        Ok(&record.email)
    }
    async fn first_name(&self, ctx: &Context<'_>) -> Result<&str> {
        let record = self.record(ctx, Column::FirstName).await?;
        Ok(&record.first_name)
    }
    async fn last_name(&self, ctx: &Context<'_>) -> Result<&str> {
        let record = self.record(ctx, Column::LastName).await?;
        Ok(&record.last_name)
    }
    async fn title(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let record = self.record(ctx, Column::Title).await?;
        Ok(record.title.as_deref())
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<UserStatus> {
        let record = self.record(ctx, Column::Status).await?;
        Ok(if record.status == "ACTIVE" {
            UserStatus::Active
        } else {
            UserStatus::Inactive
        })
    }
    async fn employee_status(&self, ctx: &Context<'_>) -> Result<EmployeeStatus> {
        let record = self.record(ctx, Column::EmployeeStatus).await?;
        Ok(match record.employee_status.as_str() {
            "INACTIVE" => EmployeeStatus::Inactive,
            "LEAVE" => EmployeeStatus::Leave,
            _ => EmployeeStatus::Active,
        })
    }
    /// E.164, e.g. `+14155550123`.
    async fn mobile_phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let record = self.record(ctx, Column::MobilePhone).await?;
        Ok(record.mobile_phone.as_deref())
    }
    /// BCP 47, e.g. `en-US`.
    async fn locale(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let record = self.record(ctx, Column::Locale).await?;
        Ok(record.locale.as_deref())
    }
    /// The user's own inactivity timeout in minutes; the organisation's applies when null.
    async fn idle_timeout_minutes(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        let record = self.record(ctx, Column::IdleTimeoutMinutes).await?;
        Ok(record.idle_timeout_minutes)
    }
    /// The organisation's own identifier for this person.
    async fn external_id(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let record = self.record(ctx, Column::ExternalId).await?;
        Ok(record.external_id.as_deref())
    }
    /// Until changed, the user can do nothing but change their password.
    async fn must_change_password(&self, ctx: &Context<'_>) -> Result<bool> {
        let record = self.record(ctx, Column::MustChangePassword).await?;
        Ok(record.must_change_password)
    }
    /// The user's second factors, never their secrets: for the user and for
    /// those with USERS_WRITE; null for anyone else.
    async fn authenticators(&self, ctx: &Context<'_>) -> Result<Option<Vec<Authenticator>>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.id && !actor.has(Permission::UsersWrite) {
            return Ok(None);
        }
        let found = ctx
            .data::<DataLoader<AuthenticatorsOfUser>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        Ok(Some(found.into_iter().map(Authenticator).collect()))
    }
    /// Unused recovery codes: for the user and for those with USERS_WRITE.
    async fn recovery_codes_left(&self, ctx: &Context<'_>) -> Result<Option<u64>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.id && !actor.has(Permission::UsersWrite) {
            return Ok(None);
        }
        let left = ctx
            .data::<DataLoader<RecoveryCodesLeft>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?;
        Ok(Some(left.unwrap_or_default()))
    }
    /// Whether the user may act in every organisation.
    async fn is_super_admin(&self, ctx: &Context<'_>) -> Result<bool> {
        let record = self.record(ctx, Column::IsSuperAdmin).await?;
        Ok(record.is_super_admin)
    }
    async fn last_login_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let record = self.record(ctx, Column::LastLoginAt).await?;
        Ok(record.last_login_at)
    }
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let record = self.record(ctx, Column::CreatedAt).await?;
        Ok(record.created_at)
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let record = self.record(ctx, Column::UpdatedAt).await?;
        Ok(record.updated_at)
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
            Some(self.organization_id),
        ));
        Ok(Organization(find.await?))
    }
    /// The user's provider record, if they are a provider (PROVIDERS_READ to see it).
    async fn provider(&self, ctx: &Context<'_>) -> Result<Option<Provider>> {
        let actor = ctx.caller()?.actor_in_setup()?;
        if actor.user_id != self.id && !actor.has(Permission::ProvidersRead) {
            return Ok(None);
        }
        let provider = ctx
            .data::<DataLoader<ProviderOfUser>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?;
        Ok(provider.map(Provider))
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
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?;
        Ok(roles
            .unwrap_or_default()
            .into_iter()
            .map(Role::from)
            .collect())
    }
    /// Appended to emails the user sends from the front-ends.
    async fn email_signature(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let record = self.record(ctx, Column::EmailSignature).await?;
        Ok(record.email_signature.as_deref())
    }
    /// The front-ends' settings for this user (a JSON object).
    async fn preferences(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<async_graphql::Json<serde_json::Value>>> {
        let record = self.record(ctx, Column::Preferences).await?;
        Ok(record.preferences.clone().map(async_graphql::Json))
    }
    /// The user's certifications, soonest to expire first.
    async fn certifications(&self, ctx: &Context<'_>) -> Result<Vec<Certification>> {
        Ok(ctx
            .data::<DataLoader<CertificationsOfUser>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(Certification)
            .collect())
    }
    /// The user's weekly availability, by day and time.
    async fn availability(&self, ctx: &Context<'_>) -> Result<Vec<AvailabilitySlot>> {
        Ok(ctx
            .data::<DataLoader<AvailabilityOfUser>>()?
            .load_one(Key::within(self.organization_id, self.id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(AvailabilitySlot)
            .collect())
    }
    /// What the user's roles allow, together.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<Permission>> {
        let roles = self.held_roles(ctx).await?;
        let by_role = ctx
            .data::<DataLoader<PermissionsOfRole>>()?
            .load_many(roles.iter().map(|r| Key::within(r.organization_id, r.id)))
            .await
            .map_err(loader_error)?;
        let all: std::collections::BTreeSet<Permission> = by_role.into_values().flatten().collect();
        Ok(all.into_iter().collect())
    }
}

/// A named set of permissions.
pub struct Role(pub Arc<entity::role::Model>);

impl From<entity::role::Model> for Role {
    fn from(model: entity::role::Model) -> Self {
        Self(Arc::new(model))
    }
}

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
        let permissions = loader
            .load_one(Key::within(self.0.organization_id, self.0.id))
            .await
            .map_err(loader_error)?;
        Ok(permissions.unwrap_or_default().into_iter().collect())
    }
}

/// One entry of the permission catalogue.
#[derive(SimpleObject)]
pub struct PermissionInfo {
    pub permission: Permission,
    pub description: &'static str,
}

/// Who in an organisation must have a second factor.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::auth::mfa::MfaPolicy")]
pub enum MfaPolicy {
    /// Nobody; anyone may enrol.
    None,
    /// Holders of USERS_WRITE, ROLES_MANAGE, SESSIONS_MANAGE,
    /// ORGANIZATION_MANAGE, IMPORTS_RUN or AUDIT_READ, and super admins.
    Privileged,
    /// Everyone.
    All,
}

/// The kind of a second factor.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatorKind {
    /// An authenticator app's six-digit codes (RFC 6238).
    Totp,
    /// A passkey or security key.
    Webauthn,
}

/// One of a user's second factors; never its secret.
pub struct Authenticator(pub entity::authenticator::Model);

#[Object]
impl Authenticator {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> AuthenticatorKind {
        match self.0.kind.as_str() {
            "WEBAUTHN" => AuthenticatorKind::Webauthn,
            _ => AuthenticatorKind::Totp,
        }
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("\"{s}\" is not a date as YYYY-MM-DD"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayOfWeek {
    pub(super) fn iso(self) -> i16 {
        match self {
            Self::Monday => 1,
            Self::Tuesday => 2,
            Self::Wednesday => 3,
            Self::Thursday => 4,
            Self::Friday => 5,
            Self::Saturday => 6,
            Self::Sunday => 7,
        }
    }

    fn from_iso(day: i16) -> Self {
        match day {
            2 => Self::Tuesday,
            3 => Self::Wednesday,
            4 => Self::Thursday,
            5 => Self::Friday,
            6 => Self::Saturday,
            7 => Self::Sunday,
            _ => Self::Monday,
        }
    }
}

/// A certification a staff user holds.
pub struct Certification(pub entity::certification::Model);

#[Object]
impl Certification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let user = ctx
            .data::<DataLoader<UserById>>()?
            .load_one(Key::within(self.0.organization_id, self.0.user_id))
            .await
            .map_err(loader_error)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("certification without user")))?;
        Ok(User::from(user))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn issuing_body(&self) -> Option<&str> {
        self.0.issuing_body.as_deref()
    }
    async fn number(&self) -> Option<&str> {
        self.0.number.as_deref()
    }
    async fn issued_on(&self) -> Option<Date> {
        self.0.issued_on.map(Date)
    }
    async fn expires_on(&self) -> Option<Date> {
        self.0.expires_on.map(Date)
    }
    /// Whether it expired before today (UTC).
    async fn expired(&self) -> bool {
        self.0
            .expires_on
            .is_some_and(|d| d < Utc::now().date_naive())
    }
}

/// One weekly slot, in the organisation's time zone.
pub struct AvailabilitySlot(pub entity::availability_slot::Model);

#[Object]
impl AvailabilitySlot {
    async fn day_of_week(&self) -> DayOfWeek {
        DayOfWeek::from_iso(self.0.day_of_week)
    }
    /// `HH:MM`, local time.
    async fn start(&self) -> String {
        profiles::format_time(self.0.start_minute)
    }
    /// `HH:MM`, local time (exclusive).
    async fn end(&self) -> String {
        profiles::format_time(self.0.end_minute)
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let Some(id) = self.0.location_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<DataLoader<ById<entity::location::Entity>>>()?
            .load_one(Key::within(self.0.organization_id, id))
            .await
            .map_err(loader_error)?
            .map(Location))
    }
}

/// Where a provider is in credentialing.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CredentialingStatus {
    Pending,
    InReview,
    Credentialed,
    Expired,
    Denied,
}

impl From<CredentialingStatus> for Status {
    fn from(status: CredentialingStatus) -> Self {
        match status {
            CredentialingStatus::Pending => Self::Pending,
            CredentialingStatus::InReview => Self::InReview,
            CredentialingStatus::Credentialed => Self::Credentialed,
            CredentialingStatus::Expired => Self::Expired,
            CredentialingStatus::Denied => Self::Denied,
        }
    }
}

impl From<Status> for CredentialingStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::InReview => Self::InReview,
            Status::Credentialed => Self::Credentialed,
            Status::Expired => Self::Expired,
            Status::Denied => Self::Denied,
        }
    }
}

/// A practice address.
#[derive(SimpleObject)]
pub struct Address {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
}

/// How the provider is billed for.
#[derive(SimpleObject)]
pub struct BillingDetails {
    /// EIN, `12-3456789`.
    tax_id: Option<String>,
    address: Option<String>,
}

/// A staff user who provides care.
pub struct Provider(pub entity::provider::Model);

#[Object]
impl Provider {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The National Provider Identifier (10 digits).
    async fn npi(&self) -> &str {
        &self.0.npi
    }
    /// The provider's role in the organisation: Provider, Admin, Billing, …
    async fn organization_role(&self) -> &str {
        &self.0.organization_role
    }
    async fn specialty(&self) -> Option<&str> {
        self.0.specialty.as_deref()
    }
    async fn practice_address(&self) -> Address {
        Address {
            line1: self.0.address_line1.clone(),
            line2: self.0.address_line2.clone(),
            city: self.0.city.clone(),
            state: self.0.state.clone(),
            postal_code: self.0.postal_code.clone(),
        }
    }
    /// Contact phone, E.164.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn billing(&self) -> BillingDetails {
        BillingDetails {
            tax_id: self.0.billing_tax_id.clone(),
            address: self.0.billing_address.clone(),
        }
    }
    /// The organisation's location the provider practises at.
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<super::locations::Location>> {
        let Some(id) = self.0.location_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<DataLoader<super::loaders::ById<entity::location::Entity>>>()?
            .load_one(Key::within(self.0.organization_id, id))
            .await
            .map_err(loader_error)?
            .map(super::locations::Location))
    }
    async fn credentialing_status(&self) -> CredentialingStatus {
        Status::from_stored(&self.0.credentialing_status).into()
    }
    /// The provider's login.
    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        let user = ctx
            .data::<DataLoader<UserById>>()?
            .load_one(Key::within(self.0.organization_id, self.0.user_id))
            .await
            .map_err(loader_error)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("provider without user")))?;
        Ok(User::from(user))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
