//! Single sign-on: the organisation's identity providers, and where a login
//! page sends an address whose domain has one.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Ctx, connection::parse_id};
use crate::services::sso::{self, ProviderInput, RoleMapping};

/// An OpenID Connect identity provider of the organisation. Its client secret
/// is never returned.
pub struct IdentityProvider(entity::identity_provider::Model);

/// A group of the identity provider and the role it gives.
#[derive(SimpleObject)]
pub struct GroupRoleMapping {
    group: String,
    role_id: ID,
}

#[Object]
impl IdentityProvider {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The issuer URL; its `/.well-known/openid-configuration` describes it.
    async fn issuer(&self) -> &str {
        &self.0.issuer
    }
    async fn client_id(&self) -> &str {
        &self.0.client_id
    }
    /// Addresses at these domains sign in here.
    async fn email_domains(&self) -> Vec<String> {
        sso::domains_of(&self.0)
    }
    /// The ID token claim that lists the user's groups.
    async fn groups_claim(&self) -> &str {
        &self.0.groups_claim
    }
    async fn role_mappings(&self) -> Vec<GroupRoleMapping> {
        sso::mappings_of(&self.0)
            .into_iter()
            .map(|m| GroupRoleMapping {
                group: m.group,
                role_id: ID(m.role_id.to_string()),
            })
            .collect()
    }
    /// Whether a first sign-in creates the account.
    async fn jit_provisioning(&self) -> bool {
        self.0.jit_provisioning
    }
    /// Whether password logins are off for these domains (super admins and
    /// the break-glass addresses keep theirs).
    async fn required(&self) -> bool {
        self.0.required
    }
    /// Addresses that keep password logins while `required` holds.
    async fn break_glass_emails(&self) -> Vec<String> {
        sso::break_glass_of(&self.0)
    }
    /// Where a browser starts signing in.
    async fn login_url(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(format!(
            "{}/sso/{}/start",
            ctx.state()?.public_url,
            self.0.id
        ))
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A group and the role it gives.
#[derive(InputObject)]
pub struct RoleMappingInput {
    group: String,
    role_id: ID,
}

/// An identity provider to add (no `id`) or change.
#[derive(InputObject)]
pub struct IdentityProviderInput {
    id: Option<ID>,
    name: String,
    /// The issuer URL, e.g. `https://login.microsoftonline.com/{tenant}/v2.0`.
    issuer: String,
    client_id: String,
    /// Required when adding; leave it out to keep the stored one. Stored
    /// encrypted, never returned.
    client_secret: Option<String>,
    email_domains: Vec<String>,
    /// The ID token claim listing groups; `groups` by default.
    groups_claim: Option<String>,
    #[graphql(default)]
    role_mappings: Vec<RoleMappingInput>,
    #[graphql(default)]
    jit_provisioning: bool,
    /// Password logins off for these domains: people sign in here only.
    #[graphql(default)]
    required: bool,
    /// Addresses that keep password logins while `required` holds: an
    /// administrator who must get in when the identity provider is down.
    #[graphql(default)]
    break_glass_emails: Vec<String>,
}

#[derive(Default)]
pub struct SsoQuery;

#[Object]
impl SsoQuery {
    /// The organisation's identity providers (ORGANIZATION_MANAGE).
    async fn identity_providers(&self, ctx: &Context<'_>) -> Result<Vec<IdentityProvider>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(sso::list(&state.db, actor)
            .await?
            .into_iter()
            .map(IdentityProvider)
            .collect())
    }

    /// Where a login page sends `email` to sign in, when its domain has an
    /// identity provider; null otherwise. Answers by the domain alone, so it
    /// says nothing of whether the account exists.
    async fn sso_login_url(&self, ctx: &Context<'_>, email: String) -> Result<Option<String>> {
        let state = ctx.state()?;
        Ok(sso::provider_for_email(&state.db, &email)
            .await?
            .map(|p| format!("{}/sso/{}/start", state.public_url, p.id)))
    }
}

#[derive(Default)]
pub struct SsoMutation;

#[Object]
impl SsoMutation {
    /// Add or change an identity provider (ORGANIZATION_MANAGE, with a recent
    /// second factor when the caller has one).
    async fn save_identity_provider(
        &self,
        ctx: &Context<'_>,
        input: IdentityProviderInput,
    ) -> Result<IdentityProvider> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let mut role_mappings = Vec::with_capacity(input.role_mappings.len());
        for mapping in input.role_mappings {
            role_mappings.push(RoleMapping {
                group: mapping.group,
                role_id: parse_id(&mapping.role_id, "roleMappings")?,
            });
        }
        let input = ProviderInput {
            id: input.id.as_ref().map(|id| parse_id(id, "id")).transpose()?,
            name: input.name,
            issuer: input.issuer,
            client_id: input.client_id,
            client_secret: input.client_secret,
            email_domains: input.email_domains,
            groups_claim: input.groups_claim,
            role_mappings,
            jit_provisioning: input.jit_provisioning,
            required: input.required,
            break_glass_emails: input.break_glass_emails,
        };
        Ok(IdentityProvider(
            sso::save(&state.db, state.auth.secrets(), actor, input).await?,
        ))
    }

    /// Remove an identity provider (ORGANIZATION_MANAGE, with a recent second
    /// factor when the caller has one).
    async fn delete_identity_provider(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        sso::delete(&state.db, actor, parse_id(&id, "id")?).await?;
        Ok(true)
    }
}
