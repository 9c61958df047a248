//! Providers as clients read and change them.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    people::{CredentialingStatus, EmployeeStatus, Provider},
    staff::{clearable, parse_credentials, parse_ids, parse_user_details},
};
use crate::{
    domain::Npi,
    error::{AppError, Validation},
    services::providers::{self, Given, PracticeDetails, RawPractice},
};

/// A new provider: their login and their practice details. Give `password`, or
/// `generatePassword: true`, or neither for a one-time invite link.
#[derive(InputObject)]
pub struct CreateProviderInput {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub employee_status: Option<EmployeeStatus>,
    pub mobile_phone: Option<String>,
    pub locale: Option<String>,
    pub idle_timeout_minutes: Option<i32>,
    pub external_id: Option<String>,
    /// Roles to give (needs ROLES_MANAGE); by default the built-in Provider role.
    pub role_ids: Option<Vec<ID>>,
    pub password: Option<String>,
    #[graphql(default)]
    pub generate_password: bool,
    /// Ten digits with a valid check digit; unique within the organisation.
    pub npi: String,
    /// Provider, Admin, Billing, …; Provider when omitted.
    pub organization_role: Option<String>,
    pub specialty: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// Contact phone; stored in E.164.
    pub phone: Option<String>,
    /// EIN, 9 digits.
    pub billing_tax_id: Option<String>,
    pub billing_address: Option<String>,
    pub credentialing_status: Option<CredentialingStatus>,
    /// The organisation's location the provider practises at.
    pub location_id: Option<ID>,
}

/// Changes to a provider: omitted fields stay as they are; `null` clears an optional one.
#[derive(InputObject, Default)]
pub struct UpdateProviderInput {
    pub npi: Option<String>,
    pub organization_role: Option<String>,
    pub specialty: MaybeUndefined<String>,
    pub address_line1: MaybeUndefined<String>,
    pub address_line2: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
    pub state: MaybeUndefined<String>,
    pub postal_code: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub billing_tax_id: MaybeUndefined<String>,
    pub billing_address: MaybeUndefined<String>,
    pub credentialing_status: Option<CredentialingStatus>,
    /// The organisation's location the provider practises at; `null` clears.
    pub location_id: MaybeUndefined<ID>,
}

#[derive(SimpleObject)]
pub struct CreateProviderPayload {
    provider: Provider,
    /// Shown once, with `generatePassword: true`; it must be changed at first login.
    generated_password: Option<String>,
    /// The one-time link to set a first password, when no password was given.
    invite_link: Option<String>,
}

/// What `providers` may be narrowed by.
#[derive(InputObject, Default)]
pub struct ProviderFilter {
    /// Part of a name, email or NPI.
    pub search: Option<String>,
    pub organization_role: Option<String>,
    pub credentialing_status: Option<CredentialingStatus>,
}

/// A GraphQL input's practice field: undefined is absent, `null` clears.
fn practice_field(value: &MaybeUndefined<String>) -> Given<'_> {
    match value {
        MaybeUndefined::Undefined => Given::Absent,
        MaybeUndefined::Null => Given::Clear,
        MaybeUndefined::Value(raw) => Given::text(Some(raw)),
    }
}

fn parse_practice(
    v: &mut Validation,
    organization_role: Option<String>,
    fields: [MaybeUndefined<String>; 10],
    credentialing_status: Option<CredentialingStatus>,
) -> PracticeDetails {
    let [
        specialty,
        address_line1,
        address_line2,
        city,
        state,
        postal_code,
        phone,
        billing_tax_id,
        billing_address,
        location_id,
    ] = fields;
    PracticeDetails {
        credentialing_status: credentialing_status.map(Into::into),
        location_id: clearable(v, location_id, |id| {
            parse_id(&ID(id.to_owned()), "locationId")
        }),
        ..RawPractice {
            organization_role: organization_role.as_deref(),
            specialty: practice_field(&specialty),
            address_line1: practice_field(&address_line1),
            address_line2: practice_field(&address_line2),
            city: practice_field(&city),
            state: practice_field(&state),
            postal_code: practice_field(&postal_code),
            phone: practice_field(&phone),
            billing_tax_id: practice_field(&billing_tax_id),
            billing_address: practice_field(&billing_address),
        }
        .parse(v)
    }
}

fn given(value: Option<String>) -> MaybeUndefined<String> {
    value.map_or(MaybeUndefined::Undefined, MaybeUndefined::Value)
}

#[derive(Default)]
pub struct ProviderQuery;

#[Object]
impl ProviderQuery {
    /// The organisation's providers (PROVIDERS_READ).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn providers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ProviderFilter>,
    ) -> Result<Conn<Provider>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = providers::ProviderFilter {
            search: filter.search,
            organization_role: filter.organization_role,
            credentialing_status: filter.credentialing_status.map(Into::into),
        };
        let page = providers::list(&state.db, actor, filter, page).await?;
        Ok(into_connection(page, |m| m.id, Provider))
    }

    /// One provider of the organisation; null for an unknown id or another organisation's.
    async fn provider(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Provider>> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        Ok(providers::find(&ctx.state()?.db, actor, id)
            .await?
            .map(Provider))
    }
}

#[derive(Default)]
pub struct ProviderMutation;

#[Object]
impl ProviderMutation {
    /// Create a provider and their login in one step (PROVIDERS_WRITE). A bad NPI
    /// answers BAD_USER_INPUT on `npi` saying why.
    async fn create_provider(
        &self,
        ctx: &Context<'_>,
        input: CreateProviderInput,
    ) -> Result<CreateProviderPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        actor.require(crate::auth::Permission::ProvidersWrite)?;
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
        let npi = v.check(Npi::parse(&input.npi, "npi"));
        let role_ids = input
            .role_ids
            .as_deref()
            .map(|ids| parse_ids(&mut v, ids, "roleIds"));
        let credentials = parse_credentials(&mut v, input.password, input.generate_password);
        let practice = parse_practice(
            &mut v,
            input.organization_role,
            [
                given(input.specialty),
                given(input.address_line1),
                given(input.address_line2),
                given(input.city),
                given(input.state),
                given(input.postal_code),
                given(input.phone),
                given(input.billing_tax_id),
                given(input.billing_address),
                given(input.location_id.map(|id| id.0)),
            ],
            input.credentialing_status,
        );
        v.finish()?;
        let (Some(details), Some(npi)) = (details, npi) else {
            return Err(AppError::Internal(anyhow::anyhow!("validated input missing")).into());
        };
        let created = providers::create(
            &state.db,
            state.auth.hasher(),
            actor,
            details,
            npi,
            practice,
            role_ids.as_deref(),
            credentials,
            &state.public_url,
        )
        .await?;
        Ok(CreateProviderPayload {
            provider: Provider(created.provider),
            generated_password: created
                .user
                .generated_password
                .map(|p| p.expose().to_owned()),
            invite_link: created.user.invite_link,
        })
    }

    /// Change a provider's NPI and practice details (PROVIDERS_WRITE).
    async fn update_provider(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProviderInput,
    ) -> Result<Provider> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let mut v = Validation::default();
        let id = v.check(parse_id(&id, "id"));
        let npi = input.npi.and_then(|n| v.check(Npi::parse(&n, "npi")));
        let practice = parse_practice(
            &mut v,
            input.organization_role,
            [
                input.specialty,
                input.address_line1,
                input.address_line2,
                input.city,
                input.state,
                input.postal_code,
                input.phone,
                input.billing_tax_id,
                input.billing_address,
                input.location_id.map_value(|id| id.0),
            ],
            input.credentialing_status,
        );
        v.finish()?;
        let id =
            id.ok_or_else(|| AppError::Internal(anyhow::anyhow!("validated input missing")))?;
        Ok(Provider(
            providers::update(&state.db, actor, id, npi, practice).await?,
        ))
    }
}
