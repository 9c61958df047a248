//! Admins at work: organisations and their first admin, staff users, roles, and
//! the invite that lets a new user set their first password.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::{
    Ctx,
    connection::parse_id,
    people::{EmployeeStatus, Organization, Role, User},
    session::{self, LoginPayload},
};
use crate::{
    auth::Permission,
    domain::{self, Email, Locale, Phone, text},
    error::{AppError, AppResult, Validation},
    services::{
        organizations::{self, FirstAdmin, SettingsChanges},
        roles::{self, RoleSpec},
        users::{self, Credentials, RawUser, UserChanges, UserDetails, field, parse_idle_timeout},
    },
};

impl From<EmployeeStatus> for domain::EmployeeStatus {
    fn from(status: EmployeeStatus) -> Self {
        match status {
            EmployeeStatus::Active => Self::Active,
            EmployeeStatus::Inactive => Self::Inactive,
            EmployeeStatus::Leave => Self::Leave,
        }
    }
}

/// A new organisation and its first admin.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    pub name: String,
    pub admin_email: String,
    pub admin_first_name: String,
    pub admin_last_name: String,
}

#[derive(SimpleObject)]
pub struct CreateOrganizationPayload {
    organization: Organization,
    admin: User,
    /// The first admin's password, shown once; it must be changed at first login.
    generated_password: String,
}

/// Organisation settings; omitted fields stay as they are.
#[derive(InputObject, Default)]
pub struct UpdateOrganizationInput {
    pub name: Option<String>,
    /// 1 to 720 minutes.
    pub default_idle_timeout_minutes: Option<i32>,
    /// 8 to 64 characters.
    pub password_min_length: Option<i32>,
    pub password_require_digit: Option<bool>,
    /// IANA name, e.g. `America/Chicago`: staff availability is written in it.
    pub time_zone: Option<String>,
    /// Who must have a second factor. Applies at the next request of every
    /// session; changing it needs a recent second factor of one's own.
    pub mfa_required: Option<super::people::MfaPolicy>,
    /// The longest emergency access ("break glass") a user may give
    /// themselves, 1 to 1440 minutes.
    pub break_glass_max_minutes: Option<i32>,
    /// Deactivate users who have not signed in for this many days (14 to
    /// 3650; warned by email a week before); null turns it off.
    pub dormant_after_days: async_graphql::MaybeUndefined<i32>,
}

/// A new staff user. Give `password`, or `generatePassword: true`, or neither for
/// a one-time invite link (valid 72 hours) that lets the user set their own.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// The username; unique across Rollcall, compared case-insensitively.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub employee_status: Option<EmployeeStatus>,
    /// Any common notation; stored in E.164. Without a country code, North American.
    pub mobile_phone: Option<String>,
    /// BCP 47, e.g. `en-US`.
    pub locale: Option<String>,
    /// Auto logout after this many idle minutes (1 to 720); the organisation's default when null.
    pub idle_timeout_minutes: Option<i32>,
    pub external_id: Option<String>,
    /// Roles to give (needs ROLES_MANAGE).
    #[graphql(default)]
    pub role_ids: Vec<ID>,
    /// A password to start with; it must be changed at first login.
    pub password: Option<String>,
    /// Generate a strong password, returned once; it must be changed at first login.
    #[graphql(default)]
    pub generate_password: bool,
}

/// Changes to a user: omitted fields stay as they are; `null` clears an optional one.
#[derive(InputObject, Default)]
pub struct UpdateUserInput {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: MaybeUndefined<String>,
    pub employee_status: Option<EmployeeStatus>,
    pub mobile_phone: MaybeUndefined<String>,
    pub locale: MaybeUndefined<String>,
    pub idle_timeout_minutes: MaybeUndefined<i32>,
    pub external_id: MaybeUndefined<String>,
}

#[derive(SimpleObject)]
pub struct CreateUserPayload {
    user: User,
    /// The generated password, shown once (with `generatePassword: true`).
    generated_password: Option<String>,
    /// The one-time link to set a first password (when no password was given),
    /// shown once; it is also emailed when email delivery is configured.
    invite_link: Option<String>,
}

#[derive(SimpleObject)]
pub struct ResetPasswordPayload {
    /// Shown once; it must be changed at next login.
    generated_password: String,
}

/// A role's name, description and permissions.
#[derive(InputObject)]
pub struct RoleInput {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
    /// Certifications (by name, e.g. "State licence") a holder must have,
    /// valid, for the role to apply: without them it is suspended. Omitted on
    /// an update: left as they are.
    pub required_certifications: Option<Vec<String>>,
}

/// Parse the user part of a create input, collecting every field error.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of a user, parsed together"
)]
pub(crate) fn parse_user_details(
    v: &mut Validation,
    email: &str,
    first_name: &str,
    last_name: &str,
    title: Option<&str>,
    employee_status: Option<EmployeeStatus>,
    mobile_phone: Option<&str>,
    locale: Option<&str>,
    idle_timeout_minutes: Option<i32>,
    external_id: Option<&str>,
) -> Option<UserDetails> {
    let idle_timeout_minutes = idle_timeout_minutes.map(|minutes| minutes.to_string());
    RawUser {
        email: Some(email),
        first_name: Some(first_name),
        last_name: Some(last_name),
        title,
        employee_status: employee_status.map(|s| domain::EmployeeStatus::from(s).as_str()),
        mobile_phone,
        locale,
        idle_timeout_minutes: idle_timeout_minutes.as_deref(),
        external_id,
        ..RawUser::default()
    }
    .parse(v, users::client_name)
    .details()
}

/// How the new user will first log in, from `password` and `generatePassword`.
pub(crate) fn parse_credentials(
    v: &mut Validation,
    password: Option<String>,
    generate: bool,
) -> Credentials {
    match (password, generate) {
        (Some(_), true) => {
            v.add(
                "generatePassword",
                "give a password or ask for a generated one, not both",
            );
            Credentials::Invite
        }
        (Some(password), false) => Credentials::Password(password),
        (None, true) => Credentials::Generate,
        (None, false) => Credentials::Invite,
    }
}

pub(crate) fn parse_ids(v: &mut Validation, ids: &[ID], field: &str) -> Vec<uuid::Uuid> {
    ids.iter()
        .filter_map(|id| v.check(parse_id(id, field)))
        .collect()
}

/// An optional field of a change: `None` when absent, `Some(None)` for an explicit
/// null or blank, `Some(Some(parsed))` for a value.
pub(crate) fn clearable<T>(
    v: &mut Validation,
    value: MaybeUndefined<String>,
    parse: impl FnOnce(&str) -> AppResult<T>,
) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(raw) if raw.trim().is_empty() => Some(None),
        MaybeUndefined::Value(raw) => v.check(parse(&raw)).map(Some),
    }
}

fn parse_user_changes(input: UpdateUserInput) -> AppResult<UserChanges> {
    let mut v = Validation::default();
    let changes = UserChanges {
        email: input.email.and_then(|e| v.check(Email::parse(&e, "email"))),
        first_name: input
            .first_name
            .and_then(|n| v.check(field::first_name(&n, "firstName"))),
        last_name: input
            .last_name
            .and_then(|n| v.check(field::last_name(&n, "lastName"))),
        title: clearable(&mut v, input.title, |t| field::title(t, "title")),
        employee_status: input.employee_status.map(Into::into),
        mobile_phone: clearable(&mut v, input.mobile_phone, |p| {
            Phone::parse(p, "mobilePhone")
        }),
        locale: clearable(&mut v, input.locale, |l| Locale::parse(l, "locale")),
        idle_timeout_minutes: match input.idle_timeout_minutes {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(m) => v
                .check(parse_idle_timeout(m, "idleTimeoutMinutes"))
                .map(Some),
        },
        external_id: clearable(&mut v, input.external_id, |e| {
            field::external_id(e, "externalId")
        }),
        ..UserChanges::default()
    };
    v.finish()?;
    Ok(changes)
}

fn parse_role(input: RoleInput) -> AppResult<RoleSpec> {
    RoleSpec::parse(
        &input.name,
        input.description.as_deref(),
        input.permissions,
        input.required_certifications.as_deref(),
    )
}

#[derive(Default)]
pub struct StaffMutation;

#[Object]
impl StaffMutation {
    /// Create an organisation with its built-in roles and its first admin (super admin).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<CreateOrganizationPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        actor.require_super_admin()?;
        let mut v = Validation::default();
        let name = v.check(text::required(&input.name, "name", 200));
        let email = v.check(Email::parse(&input.admin_email, "adminEmail"));
        let first_name = v.check(text::required(
            &input.admin_first_name,
            "adminFirstName",
            100,
        ));
        let last_name = v.check(text::required(&input.admin_last_name, "adminLastName", 100));
        v.finish()?;
        let (Some(name), Some(email), Some(first_name), Some(last_name)) =
            (name, email, first_name, last_name)
        else {
            return Err(AppError::Internal(anyhow::anyhow!("validated input missing")).into());
        };
        let created = organizations::create(
            &state.db,
            state.auth.hasher(),
            actor,
            &name,
            FirstAdmin {
                email,
                first_name,
                last_name,
            },
        )
        .await?;
        Ok(CreateOrganizationPayload {
            organization: Organization(created.organization),
            admin: User::from(created.admin),
            generated_password: created.generated_password.expose().to_owned(),
        })
    }

    /// Change the organisation's settings (ORGANIZATION_MANAGE); with `id`, any
    /// organisation's for a super admin.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        input: UpdateOrganizationInput,
    ) -> Result<Organization> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = id.as_ref().map(|id| parse_id(id, "id")).transpose()?;
        let changes = SettingsChanges {
            name: input.name,
            default_idle_timeout_minutes: input.default_idle_timeout_minutes,
            password_min_length: input.password_min_length,
            password_require_digit: input.password_require_digit,
            time_zone: input.time_zone,
            mfa_required: input.mfa_required.map(Into::into),
            break_glass_max_minutes: input.break_glass_max_minutes,
            dormant_after_days: match input.dormant_after_days {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(days) => Some(Some(days)),
            },
        };
        Ok(Organization(
            organizations::update(&state.db, state.auth.store().as_ref(), actor, id, changes)
                .await?,
        ))
    }

    /// Create a staff user (USERS_WRITE; roles need ROLES_MANAGE).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> Result<CreateUserPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        actor.require(Permission::UsersWrite)?;
        let mut v = Validation::default();
        let details = parse_user_details(
            &mut v,
            &input.email,
            &input.first_name,
            &input.last_name,
            input.title.as_deref(),
            input.employee_status,
            input.mobile_phone.as_deref(),
            input.locale.as_deref(),
            input.idle_timeout_minutes,
            input.external_id.as_deref(),
        );
        let role_ids = parse_ids(&mut v, &input.role_ids, "roleIds");
        let credentials = parse_credentials(&mut v, input.password, input.generate_password);
        v.finish()?;
        let details = details
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("validated input missing")))?;
        let created = users::create(
            &state.db,
            state.auth.hasher(),
            actor,
            details,
            &role_ids,
            credentials,
            &state.public_url,
        )
        .await?;
        Ok(CreateUserPayload {
            user: User::from(created.user),
            generated_password: created.generated_password.map(|p| p.expose().to_owned()),
            invite_link: created.invite_link,
        })
    }

    /// Change a user's details (USERS_WRITE).
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        let changes = parse_user_changes(input)?;
        Ok(User::from(
            users::update(&state.db, state.auth.store().as_ref(), actor, id, changes).await?,
        ))
    }

    /// Deactivate a user (USERS_WRITE): all their sessions end at once. Refused
    /// for the organisation's last user who can manage users and roles.
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(User::from(
            users::deactivate(&state.db, state.auth.store().as_ref(), actor, id).await?,
        ))
    }

    /// Let a deactivated user log in again (USERS_WRITE).
    async fn reactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(User::from(users::reactivate(&state.db, actor, id).await?))
    }

    /// Give a user a generated password, to be changed at next login (USERS_WRITE);
    /// their sessions end.
    async fn reset_user_password(&self, ctx: &Context<'_>, id: ID) -> Result<ResetPasswordPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        let password = users::reset_password(
            &state.db,
            state.auth.store().as_ref(),
            state.auth.hasher(),
            actor,
            id,
        )
        .await?;
        Ok(ResetPasswordPayload {
            generated_password: password.expose().to_owned(),
        })
    }

    /// Replace a user's roles (ROLES_MANAGE); applies to their next request.
    async fn set_user_roles(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role_ids: Vec<ID>,
    ) -> Result<User> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let mut v = Validation::default();
        let user_id = v.check(parse_id(&user_id, "userId"));
        let role_ids = parse_ids(&mut v, &role_ids, "roleIds");
        v.finish()?;
        let user_id = user_id
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("validated input missing")))?;
        Ok(User::from(
            users::set_roles(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                user_id,
                &role_ids,
            )
            .await?,
        ))
    }

    /// Create a role (ROLES_MANAGE).
    async fn create_role(&self, ctx: &Context<'_>, input: RoleInput) -> Result<Role> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(Role::from(
            roles::create(&state.db, actor, parse_role(input)?).await?,
        ))
    }

    /// Change a role (ROLES_MANAGE); its holders' next requests see the change.
    async fn update_role(&self, ctx: &Context<'_>, id: ID, input: RoleInput) -> Result<Role> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(Role::from(
            roles::update(
                &state.db,
                state.auth.store().as_ref(),
                actor,
                id,
                parse_role(input)?,
            )
            .await?,
        ))
    }

    /// Delete a role that nobody holds (ROLES_MANAGE).
    async fn delete_role(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        roles::delete(&state.db, actor, id).await?;
        Ok(true)
    }

    /// Set a first password with an invite link's token, and log in (sets the cookie).
    async fn accept_invite(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> Result<LoginPayload> {
        session::set_password_with_link(ctx, &token, &password).await
    }
}
