//! Single sign-on with the organisation's OpenID Connect identity providers
//! (Entra ID, Okta, Google Workspace, any certified provider), through the
//! openidconnect crate: the authorization code flow with PKCE, `state` and
//! `nonce`, the ID token's signature checked against the provider's current
//! keys (discovered afresh at each login, so a key rotation there needs
//! nothing here), its issuer, audience, expiry and issue time.
//!
//! - An identity provider serves some email domains; `ssoLoginUrl(email)`
//!   answers by the domain alone, so it says nothing of who has an account.
//! - A signed-in address is matched only inside the provider's organisation
//!   and domains: an account of another organisation is never reached.
//! - Just-in-time provisioning, when the provider allows it, creates the user
//!   with the roles their groups map to; at every login the mapped roles
//!   follow the groups (a group removed there removes its role here), and
//!   roles no mapping names stay as they are.
//! - A login under way is kept under its `state` for ten minutes and taken
//!   once, with its nonce and its PKCE verifier (encrypted).
//! - OpenID Connect Back-Channel Logout: the provider's logout token, its
//!   signature checked against the provider's keys, ends every session of the
//!   account its subject signed in to, on every instance at once.

use std::{collections::BTreeSet, sync::OnceLock};

use base64::Engine;
use chrono::Utc;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    auth::{Authenticator, LoggedIn},
    roles, users,
};
use crate::db::{Scope as Tenant, global, unscoped};
use crate::{
    auth::{Actor, Permission, actor::Origin, session::AuthMethod},
    domain::{Email, text},
    error::{AppError, AppResult, Validation},
    telemetry::events,
};

/// How long a login may take at the identity provider.
const LOGIN_MINUTES: i64 = 10;
/// How far ahead of this server's clock a provider may issue an ID token.
const ISSUED_AHEAD_SECONDS: i64 = 60;

/// One group of the provider and the role it gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleMapping {
    pub group: String,
    pub role_id: Uuid,
}

/// An identity provider as an administrator saves it.
#[derive(Clone, Debug, Default)]
pub struct ProviderInput {
    /// The provider to change; none to add one.
    pub id: Option<Uuid>,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Required for a new provider; a change without one keeps the old.
    pub client_secret: Option<String>,
    pub email_domains: Vec<String>,
    pub groups_claim: Option<String>,
    pub role_mappings: Vec<RoleMapping>,
    pub jit_provisioning: bool,
    pub required: bool,
    /// Addresses that keep password logins while `required` holds.
    pub break_glass_emails: Vec<String>,
}

/// The email domains a provider serves.
pub fn domains_of(provider: &entity::identity_provider::Model) -> Vec<String> {
    serde_json::from_str(&provider.email_domains).unwrap_or_default()
}

/// The addresses that keep password logins while a provider is required.
pub fn break_glass_of(provider: &entity::identity_provider::Model) -> Vec<String> {
    serde_json::from_str(&provider.break_glass_emails).unwrap_or_default()
}

/// Whether `user` may log in with a password: not when a required identity
/// provider of their organisation serves their address's domain, unless they
/// are a super admin or one of its break-glass addresses.
pub async fn password_login_allowed(
    db: &impl ConnectionTrait,
    user: &entity::user::Model,
) -> AppResult<bool> {
    if user.is_super_admin {
        return Ok(true);
    }
    // Only the user's own organisation's providers govern their account, and
    // only those are read: a login does not scan every organisation's.
    let domain = user
        .email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default();
    let required = Tenant::of(user.organization_id)
        .find::<entity::identity_provider::Entity>()
        .filter(entity::identity_provider::Column::Required.eq(true))
        .all(db)
        .await?
        .into_iter()
        .find(|p| domains_of(p).iter().any(|d| d == domain));
    Ok(required.is_none_or(|provider| break_glass_of(&provider).contains(&user.email)))
}

/// The group-to-role mappings of a provider.
pub fn mappings_of(provider: &entity::identity_provider::Model) -> Vec<RoleMapping> {
    serde_json::from_str(&provider.role_mappings).unwrap_or_default()
}

/// The actor's organisation's identity providers (ORGANIZATION_MANAGE).
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> AppResult<Vec<entity::identity_provider::Model>> {
    actor.require(Permission::OrganizationManage)?;
    Ok(actor
        .scope::<entity::identity_provider::Entity>()
        .all(db)
        .await?)
}

fn parse_issuer(raw: &str) -> AppResult<String> {
    let url =
        url::Url::parse(raw.trim()).map_err(|_| AppError::bad_input("issuer", "is not a URL"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(AppError::bad_input("issuer", "must be an https:// URL"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

fn parse_domain(raw: &str) -> Option<String> {
    let domain = raw.trim().trim_start_matches('@').to_lowercase();
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (labels_ok && domain.len() <= 253).then_some(domain)
}

/// Add or change an identity provider (ORGANIZATION_MANAGE, with a recent
/// second factor). A domain belongs to one provider across the platform, and
/// not to one whose addresses another organisation's users hold; groups map
/// only to roles the caller may give.
pub async fn save(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    secrets: &crate::auth::mfa::SecretKey,
    actor: &Actor,
    input: ProviderInput,
) -> AppResult<entity::identity_provider::Model> {
    actor.require(Permission::OrganizationManage)?;
    actor.require_recent_mfa()?;
    let existing = match input.id {
        Some(id) => Some(
            actor
                .scope::<entity::identity_provider::Entity>()
                .filter(entity::identity_provider::Column::Id.eq(id))
                .one(db)
                .await?
                .ok_or(AppError::NotFound("IdentityProvider"))?,
        ),
        None => None,
    };
    let mut v = Validation::default();
    let name = v.check(text::required(&input.name, "name", 200));
    let issuer = v.check(parse_issuer(&input.issuer));
    let client_id = v.check(text::required(&input.client_id, "clientId", 500));
    let client_secret = match (&input.client_secret, &existing) {
        (Some(secret), _) if !secret.trim().is_empty() => Some(secret.trim().to_owned()),
        (_, Some(_)) => None,
        _ => {
            v.add("clientSecret", "is required");
            None
        }
    };
    let mut domains = BTreeSet::new();
    for raw in &input.email_domains {
        match parse_domain(raw) {
            Some(domain) => {
                domains.insert(domain);
            }
            None => v.add("emailDomains", format!("{raw:?} is not a domain")),
        }
    }
    if domains.is_empty() {
        v.add("emailDomains", "name at least one domain");
    }
    let mut break_glass = BTreeSet::new();
    for raw in &input.break_glass_emails {
        if let Some(email) = v.check(Email::parse(raw, "breakGlassEmails")) {
            break_glass.insert(email.as_str().to_owned());
        }
    }
    let groups_claim = match input.groups_claim.as_deref() {
        Some(claim) => v.check(text::required(claim, "groupsClaim", 200)),
        None => Some("groups".to_owned()),
    };
    v.finish()?;
    let role_ids: Vec<Uuid> = input.role_mappings.iter().map(|m| m.role_id).collect();
    let mapped = roles::resolve_ids(db, actor, &role_ids, "roleMappings").await?;
    roles::ensure_may_give(db, &actor.authority(), &mapped, "roleMappings").await?;
    let own_id = existing.as_ref().map(|p| p.id);
    for provider in actor
        .tenant()
        .find::<entity::identity_provider::Entity>()
        .all(db)
        .await?
    {
        if Some(provider.id) == own_id {
            continue;
        }
        if let Some(taken) = domains_of(&provider).iter().find(|d| domains.contains(*d)) {
            return Err(AppError::Conflict(format!(
                "The domain {taken} is already served by another identity provider."
            )));
        }
    }
    for domain in &domains {
        let pattern = format!("%@{}", crate::db::escape_like(domain));
        // Another organisation's people, by their addresses: the one look
        // beyond the caller's own.
        let foreign = unscoped::find::<entity::user::Entity>()
            .filter(
                Expr::col(entity::user::Column::Email).like(LikeExpr::new(&pattern).escape('\\')),
            )
            .filter(entity::user::Column::OrganizationId.ne(actor.organization_id))
            .one(db)
            .await?;
        if foreign.is_some() {
            return Err(AppError::Conflict(format!(
                "Users of another organisation have addresses at {domain}."
            )));
        }
    }
    let now = Utc::now();
    let id = own_id.unwrap_or_else(Uuid::now_v7);
    let mut active = match existing {
        Some(model) => entity::identity_provider::ActiveModel::from(model),
        None => entity::identity_provider::ActiveModel {
            id: Set(id),
            organization_id: Set(actor.organization_id),
            created_at: Set(now),
            ..Default::default()
        },
    };
    active.name = Set(name.unwrap_or_default());
    active.issuer = Set(issuer.unwrap_or_default());
    active.client_id = Set(client_id.unwrap_or_default());
    if let Some(secret) = client_secret {
        active.client_secret = Set(secrets.seal(secret.as_bytes(), id.as_bytes()));
    }
    active.email_domains =
        Set(serde_json::to_string(&domains).map_err(|e| AppError::Internal(e.into()))?);
    active.groups_claim = Set(groups_claim.unwrap_or_default());
    active.role_mappings =
        Set(serde_json::to_string(&input.role_mappings)
            .map_err(|e| AppError::Internal(e.into()))?);
    active.jit_provisioning = Set(input.jit_provisioning);
    active.required = Set(input.required);
    active.break_glass_emails =
        Set(serde_json::to_string(&break_glass).map_err(|e| AppError::Internal(e.into()))?);
    active.updated_at = Set(now);
    let saved = if own_id.is_some() {
        active.update(db).await?
    } else {
        active.insert(db).await?
    };
    audit::record(
        db,
        AuditEntry::by(actor, "sso.provider_saved")
            .target("IdentityProvider", saved.id)
            .changes(serde_json::json!({
                "name": saved.name,
                "issuer": saved.issuer,
                "emailDomains": domains,
                "jitProvisioning": saved.jit_provisioning,
                "required": saved.required,
                "breakGlassEmails": break_glass,
                "clientSecretChanged": input.client_secret.is_some(),
            })),
    )
    .await?;
    Ok(saved)
}

/// Remove an identity provider (ORGANIZATION_MANAGE, with a recent second factor).
pub async fn delete(
    db: &(impl ConnectionTrait + sea_orm::TransactionTrait),
    actor: &Actor,
    id: Uuid,
) -> AppResult<()> {
    actor.require(Permission::OrganizationManage)?;
    actor.require_recent_mfa()?;
    let removed = actor
        .tenant()
        .delete_many::<entity::identity_provider::Entity>()
        .filter(entity::identity_provider::Column::Id.eq(id))
        .exec(db)
        .await?;
    if removed.rows_affected == 0 {
        return Err(AppError::NotFound("IdentityProvider"));
    }
    audit::record(
        db,
        AuditEntry::by(actor, "sso.provider_deleted").target("IdentityProvider", id),
    )
    .await
}

/// The provider serving the domain of `email`, if any.
pub async fn provider_for_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> AppResult<Option<entity::identity_provider::Model>> {
    let Some(domain) = email.trim().rsplit_once('@').map(|(_, d)| d.to_lowercase()) else {
        return Ok(None);
    };
    Ok(unscoped::find::<entity::identity_provider::Entity>()
        .all(db)
        .await?
        .into_iter()
        .find(|p| domains_of(p).contains(&domain)))
}

fn http_client() -> AppResult<&'static openidconnect::reqwest::Client> {
    static CLIENT: OnceLock<openidconnect::reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // Following redirects would let a provider's answer lead elsewhere.
    let client = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// A refusal of a sign-in: what the person sees.
fn refused(reason: impl Into<String>) -> AppError {
    AppError::forbidden(format!("Single sign-on failed: {}", reason.into()))
}

impl Authenticator {
    /// The provider's client, from its metadata as published now, and
    /// whether it offers a `groups` scope (Okta's way to send groups; Entra
    /// ID and Google send them by their own configuration).
    async fn oidc_client(
        &self,
        provider: &entity::identity_provider::Model,
        redirect_uri: &str,
    ) -> AppResult<(
        openidconnect::core::CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        bool,
    )> {
        let issuer = IssuerUrl::new(provider.issuer.clone())
            .map_err(|_| refused("the issuer is not a URL"))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http_client()?)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %provider.id, error = %e, "OpenID discovery failed");
                refused("the identity provider could not be reached or did not describe itself as configured")
            })?;
        let secret = self
            .secrets
            .open(&provider.client_secret, provider.id.as_bytes())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "an identity provider's secret does not open with ROLLCALL_SECRET_KEY"
                ))
            })?;
        let groups_scope = metadata
            .scopes_supported()
            .is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == "groups"));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(secret)),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| AppError::Internal(e.into()))?,
        );
        Ok((client, groups_scope))
    }

    /// Begin signing in with `provider_id`: where to send the browser.
    pub async fn sso_start(
        &self,
        provider_id: Uuid,
        redirect_uri: &str,
        return_to: &str,
    ) -> AppResult<String> {
        let provider = unscoped::find_by_id::<entity::identity_provider::Entity>(provider_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("IdentityProvider"))?;
        let (client, groups_scope) = self.oidc_client(&provider, redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()));
        if groups_scope {
            request = request.add_scope(Scope::new("groups".to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let now = Utc::now();
        global::delete_many::<entity::sso_login::Entity>()
            .filter(entity::sso_login::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        let id = Uuid::now_v7();
        entity::sso_login::ActiveModel {
            id: Set(id),
            state: Set(state.secret().clone()),
            provider_id: Set(provider.id),
            nonce: Set(nonce.secret().clone()),
            pkce_verifier: Set(self
                .secrets
                .seal(verifier.secret().as_bytes(), state.secret().as_bytes())),
            return_to: Set(return_to.to_owned()),
            expires_at: Set(now + chrono::Duration::minutes(LOGIN_MINUTES)),
        }
        .insert(&self.db)
        .await?;
        Ok(url.to_string())
    }

    /// Finish signing in: the provider sent the browser back with `code` for
    /// `state`. The session, and where the browser goes next.
    pub async fn sso_callback(
        &self,
        code: &str,
        state: &str,
        redirect_uri: &str,
        origin: Origin,
    ) -> AppResult<(LoggedIn, String)> {
        let login = global::find::<entity::sso_login::Entity>()
            .filter(entity::sso_login::Column::State.eq(state))
            .one(&self.db)
            .await?
            .ok_or_else(|| refused("this sign-in is unknown or was already used; start again"))?;
        let taken = global::delete_many::<entity::sso_login::Entity>()
            .filter(entity::sso_login::Column::Id.eq(login.id))
            .exec(&self.db)
            .await?
            .rows_affected
            == 1;
        if !taken || login.expires_at <= Utc::now() {
            return Err(refused(
                "this sign-in expired or was already used; start again",
            ));
        }
        let provider = unscoped::find_by_id::<entity::identity_provider::Entity>(login.provider_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("IdentityProvider"))?;
        let verifier = self
            .secrets
            .open(&login.pkce_verifier, state.as_bytes())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("an SSO verifier does not open")))?;
        let (client, _) = self.oidc_client(&provider, redirect_uri).await?;
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(provider = %provider.id, error = %e, "{what}");
            refused(what.to_owned())
        };
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| failed("the identity provider has no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(http_client()?)
            .await
            .map_err(|e| failed("the identity provider refused the code", &e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| refused("the identity provider sent no ID token"))?;
        // openidconnect checks the expiry with no leeway; the issue time it
        // leaves to us: a token minted for this exchange, give or take a
        // provider clock a minute ahead.
        let verifier = client
            .id_token_verifier()
            .set_issue_time_verifier_fn(|iat| {
                let now = Utc::now();
                if iat > now + chrono::Duration::seconds(ISSUED_AHEAD_SECONDS) {
                    Err(format!("issued in the future ({iat})"))
                } else if iat < now - chrono::Duration::minutes(LOGIN_MINUTES) {
                    Err(format!("issued too long ago ({iat})"))
                } else {
                    Ok(())
                }
            });
        let claims = id_token
            .claims(&verifier, &Nonce::new(login.nonce.clone()))
            .map_err(|e| failed("the ID token was not valid", &e))?;
        let email = claims
            .email()
            .map(|e| e.as_str().to_lowercase())
            .ok_or_else(|| refused("the identity provider sent no email address"))?;
        if claims.email_verified() == Some(false) {
            return Err(refused(
                "the identity provider has not verified this address",
            ));
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        if !domains_of(&provider).contains(&domain) {
            return Err(refused(format!(
                "{domain} is not a domain of this identity provider"
            )));
        }
        let groups = groups_of(&id_token.to_string(), &provider.groups_claim);
        let given = claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        let family = claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        let user = self
            .sso_user(&provider, &email, given, family, &groups, &origin)
            .await?;
        remember_subject(&self.db, provider.id, claims.subject().as_str(), user.id).await?;
        events::login("ok");
        // A second factor the provider verified counts as one here.
        let mut methods = vec![AuthMethod::Sso];
        methods.extend(AuthMethod::from_provider(
            claims
                .auth_method_refs()
                .into_iter()
                .flatten()
                .map(|m| m.as_str()),
        ));
        let logged_in = self
            .open_session(user, &methods, "auth.login", origin)
            .await?;
        Ok((logged_in, login.return_to))
    }

    /// The account an SSO login opens: matched inside the provider's
    /// organisation, or created there just in time; its mapped roles made to
    /// follow the groups.
    async fn sso_user(
        &self,
        provider: &entity::identity_provider::Model,
        email: &str,
        given: Option<String>,
        family: Option<String>,
        groups: &BTreeSet<String>,
        origin: &Origin,
    ) -> AppResult<entity::user::Model> {
        let mappings = mappings_of(provider);
        let wanted: BTreeSet<Uuid> = mappings
            .iter()
            .filter(|m| groups.contains(&m.group))
            .map(|m| m.role_id)
            .collect();
        let mapped: BTreeSet<Uuid> = mappings.iter().map(|m| m.role_id).collect();
        let txn = crate::db::begin_write(&self.db).await?;
        // An address is one account's in every organisation: found
        // elsewhere, it is refused below.
        let found = unscoped::find::<entity::user::Entity>()
            .filter(entity::user::Column::Email.eq(email))
            .one(&txn)
            .await?;
        let (user, created) = match found {
            Some(user) if user.organization_id != provider.organization_id => {
                return Err(refused(
                    "this address belongs to an account of another organisation",
                ));
            }
            Some(user) if user.status != "ACTIVE" => {
                return Err(refused("this account is deactivated"));
            }
            Some(user) => (user, false),
            None if provider.jit_provisioning => {
                // A name the provider gives that a user's name may not be
                // is replaced, as one it does not give.
                let name = |raw: Option<String>, rule: fn(&str, &str) -> AppResult<String>| {
                    raw.and_then(|n| rule(&n, "name").ok())
                };
                let local = email.split('@').next().unwrap_or("user");
                let details = users::UserDetails::named(
                    Email::parse(email, "email")?,
                    name(given, users::field::first_name).unwrap_or_else(|| local.to_owned()),
                    name(family, users::field::last_name).unwrap_or_else(|| "-".to_owned()),
                );
                (
                    users::insert(&txn, provider.organization_id, &details, None).await?,
                    true,
                )
            }
            None => {
                return Err(refused(
                    "there is no account for this address; ask an administrator",
                ));
            }
        };
        let held: BTreeSet<Uuid> = Tenant::of(provider.organization_id)
            .find::<entity::user_role::Entity>()
            .filter(entity::user_role::Column::UserId.eq(user.id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|ur| ur.role_id)
            .collect();
        let remove: Vec<Uuid> = held
            .iter()
            .filter(|r| mapped.contains(*r) && !wanted.contains(*r))
            .copied()
            .collect();
        let add: Vec<Uuid> = wanted
            .iter()
            .filter(|r| !held.contains(*r))
            .copied()
            .collect();
        if !remove.is_empty() {
            Tenant::of(provider.organization_id)
                .delete_many::<entity::user_role::Entity>()
                .filter(entity::user_role::Column::UserId.eq(user.id))
                .filter(entity::user_role::Column::RoleId.is_in(remove.clone()))
                .exec(&txn)
                .await?;
        }
        if !add.is_empty() {
            let roles = Tenant::of(provider.organization_id)
                .find::<entity::role::Entity>()
                .filter(entity::role::Column::Id.is_in(add.clone()))
                .all(&txn)
                .await?;
            users::assign_roles(&txn, user.id, &roles).await?;
        }
        if !remove.is_empty() {
            roles::ensure_an_administrator_remains(&txn, provider.organization_id).await?;
        }
        let entry = |action| AuditEntry {
            organization_id: Some(provider.organization_id),
            actor_user_id: Some(user.id),
            action,
            origin: origin.clone(),
            ..AuditEntry::default()
        };
        if created {
            audit::record(
                &txn,
                entry("sso.user_provisioned")
                    .target("User", user.id)
                    .changes(serde_json::json!({ "provider": provider.id, "email": email })),
            )
            .await?;
        }
        if !remove.is_empty() || !add.is_empty() {
            audit::record(
                &txn,
                entry("sso.roles_synced")
                    .target("User", user.id)
                    .changes(serde_json::json!({
                        "provider": provider.id,
                        "added": add,
                        "removed": remove,
                    })),
            )
            .await?;
        }
        if !remove.is_empty() || !add.is_empty() {
            super::commit_authz_change(txn, self.store.as_ref(), provider.organization_id).await?;
        } else {
            txn.commit().await?;
        }
        Ok(user)
    }
}

/// Record that the provider's `subject` signs in to `user_id`.
async fn remember_subject(
    db: &impl ConnectionTrait,
    provider_id: Uuid,
    subject: &str,
    user_id: Uuid,
) -> AppResult<()> {
    use sea_orm::sea_query::OnConflict;
    entity::sso_identity::Entity::insert(entity::sso_identity::ActiveModel {
        provider_id: Set(provider_id),
        subject: Set(subject.to_owned()),
        user_id: Set(user_id),
        last_login_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            entity::sso_identity::Column::ProviderId,
            entity::sso_identity::Column::Subject,
        ])
        .update_columns([
            entity::sso_identity::Column::UserId,
            entity::sso_identity::Column::LastLoginAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// How far a logout token's times may stray from this server's clock.
const CLOCK_SKEW_SECONDS: i64 = 300;
/// The event a back-channel logout token carries.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token's header and claims, once its signature holds.
fn verified_logout_token(
    jwt: &str,
    keys: &openidconnect::core::CoreJsonWebKeySet,
) -> Result<serde_json::Value, String> {
    use openidconnect::JsonWebKey;
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "is not a JWT".to_owned())
    };
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("is not a signed JWT".to_owned());
    };
    let head: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "has no readable header")?;
    let alg: openidconnect::core::CoreJwsSigningAlgorithm =
        serde_json::from_value(head["alg"].clone()).map_err(|_| "names no known algorithm")?;
    if head["alg"] == "none" {
        return Err("is not signed".to_owned());
    }
    let kid = head["kid"].as_str();
    let signature = decode(signature)?;
    let message = format!("{header}.{payload}");
    let verified = keys
        .keys()
        .iter()
        .filter(|key| kid.is_none() || key.key_id().map(|k| k.as_str()) == kid)
        .any(|key| {
            key.verify_signature(&alg, message.as_bytes(), &signature)
                .is_ok()
        });
    if !verified {
        return Err("is not signed by the identity provider".to_owned());
    }
    serde_json::from_slice(&decode(payload)?).map_err(|_| "has no readable claims".to_owned())
}

impl Authenticator {
    /// OpenID Connect Back-Channel Logout 1.0: end every session of the
    /// account the token's subject signed in to. The token must be signed by
    /// the keys of a configured provider whose issuer and client id it names,
    /// carry the logout event and a subject, no nonce, and be recent.
    pub async fn sso_backchannel_logout(&self, logout_token: &str) -> AppResult<u64> {
        let invalid = |why: &str| AppError::bad_input("logout_token", why.to_owned());
        // Read unverified only to find the provider whose keys must verify it.
        let payload = jwt_payload(logout_token).ok_or_else(|| invalid("is not a JWT"))?;
        let issuer = payload["iss"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        let audiences: Vec<&str> = match &payload["aud"] {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|a| a.as_str()).collect(),
            _ => Vec::new(),
        };
        // Only a provider the token names may vouch for it.
        let provider = unscoped::find::<entity::identity_provider::Entity>()
            .filter(entity::identity_provider::Column::Issuer.eq(issuer))
            .all(&self.db)
            .await?
            .into_iter()
            .find(|p| audiences.contains(&p.client_id.as_str()))
            .ok_or_else(|| invalid("names no configured identity provider"))?;
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(provider.issuer.clone()).map_err(|_| invalid("names no issuer"))?,
            http_client()?,
        )
        .await
        .map_err(|_| AppError::Unavailable("identity provider"))?;
        let claims =
            verified_logout_token(logout_token, metadata.jwks()).map_err(|why| invalid(&why))?;
        let now = Utc::now().timestamp();
        let iat = claims["iat"]
            .as_i64()
            .ok_or_else(|| invalid("has no iat"))?;
        if (iat - now).abs() > CLOCK_SKEW_SECONDS + 600 {
            return Err(invalid("is not recent"));
        }
        if claims["exp"]
            .as_i64()
            .is_some_and(|exp| exp + CLOCK_SKEW_SECONDS < now)
        {
            return Err(invalid("has expired"));
        }
        if claims["events"].get(LOGOUT_EVENT).is_none() {
            return Err(invalid("carries no back-channel logout event"));
        }
        if claims.get("nonce").is_some() {
            return Err(invalid("must not carry a nonce"));
        }
        let subject = claims["sub"]
            .as_str()
            .ok_or_else(|| invalid("names no subject"))?;
        let identity =
            unscoped::find_by_id::<entity::sso_identity::Entity>((provider.id, subject.to_owned()))
                .one(&self.db)
                .await?;
        let Some(identity) = identity else {
            // Nobody signed in here as that subject: nothing to end.
            return Ok(0);
        };
        let ended = self.store.revoke_user(identity.user_id, None).await?;
        audit::record(
            &self.db,
            AuditEntry {
                organization_id: Some(provider.organization_id),
                action: "sso.backchannel_logout",
                changes: Some(
                    serde_json::json!({ "provider": provider.id, "sessionsEnded": ended }),
                ),
                ..AuditEntry::default()
            }
            .target("User", identity.user_id),
        )
        .await?;
        Ok(ended)
    }
}

/// The groups an ID token (already verified) names under `claim`: an array
/// of strings, or one string.
fn groups_of(jwt: &str, claim: &str) -> BTreeSet<String> {
    match jwt_payload(jwt).as_ref().and_then(|p| p.get(claim)) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => BTreeSet::from([one.clone()]),
        _ => BTreeSet::new(),
    }
}

/// The claims of a JWT, read without checking anything: callers verify first
/// or only look up what must then verify it.
fn jwt_payload(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
