//! API clients: an organisation's machine credentials.
//!
//! A client is created with a name, permissions and an expiry by someone who
//! holds ORGANIZATION_MANAGE and every permission they give it (the access
//! rule: nobody gives what they do not hold). Its token is shown once and
//! stored as a digest. It acts through a service account (a `users` row that
//! no email, login, list or change can reach), so the audit trail and every
//! `createdBy` name it as they name a person.
//!
//! Each request with a client token reads the client from the database: a
//! revocation, an expiry or a change of its creator's rights applies to the
//! very next request on every instance. A client uses at most what its
//! creator holds *now*: demoting or deactivating the creator narrows or
//! silences their clients, so a token seen once is no way to keep rights
//! taken away.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    QueryFilter, QueryOrder, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    audit::{self, AuditEntry},
    auth::Authenticator,
    roles,
};
use crate::db::{Scope, unscoped};
use crate::{
    auth::{Actor, Credential, Permission, actor::Origin, client_token::ClientToken},
    domain::text,
    error::{AppError, AppResult},
};

/// The audit action of each call a client makes.
pub const CALL: &str = audit::CLIENT_CALL;

/// The longest a client may live: its token is then rotated.
pub const MAX_LIFETIME: Duration = Duration::days(730);
/// How often a client's last use is written, at most.
const LAST_USE_PRECISION: Duration = Duration::seconds(60);
/// The window of the per-client rate limit.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// A client to create.
pub struct NewApiClient {
    pub name: String,
    pub permissions: BTreeSet<Permission>,
    pub expires_at: DateTime<Utc>,
}

/// The stored permissions of a client.
pub fn permissions_of(client: &entity::api_client::Model) -> BTreeSet<Permission> {
    client
        .permissions
        .split(',')
        .filter_map(Permission::parse)
        .collect()
}

/// The address of a client's service account: not an email address, so no
/// door that takes one (login, reset, import, SSO, SCIM) can name it.
fn service_address(client_id: Uuid) -> String {
    format!("api-client:{client_id}")
}

/// Create a client; its token is returned once and never again.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewApiClient,
) -> AppResult<(entity::api_client::Model, ClientToken)> {
    actor.require(Permission::OrganizationManage)?;
    actor.require_recent_mfa()?;
    let name = text::required(&input.name, "name", 100)?;
    if input.permissions.is_empty() {
        return Err(AppError::bad_input(
            "permissions",
            "must name at least one permission",
        ));
    }
    actor
        .authority()
        .ensure_may_grant(&name, &input.permissions, "permissions")?;
    let now = Utc::now();
    if input.expires_at <= now {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    if input.expires_at > now + MAX_LIFETIME {
        return Err(AppError::bad_input(
            "expiresAt",
            "must be within two years: a client's token is rotated at least that often",
        ));
    }

    let id = Uuid::now_v7();
    let user_id = Uuid::now_v7();
    let token = ClientToken::generate();
    let permissions: Vec<&str> = input.permissions.iter().map(|p| p.as_str()).collect();
    let txn = crate::db::begin_write(db).await?;
    entity::user::ActiveModel {
        id: Set(user_id),
        organization_id: Set(actor.organization_id),
        email: Set(service_address(id)),
        password_hash: Set(None),
        first_name: Set(name.clone()),
        last_name: Set("(API client)".to_owned()),
        title: Set(None),
        status: Set("ACTIVE".to_owned()),
        employee_status: Set("ACTIVE".to_owned()),
        mobile_phone: Set(None),
        locale: Set(None),
        idle_timeout_minutes: Set(None),
        external_id: Set(None),
        must_change_password: Set(false),
        is_super_admin: Set(false),
        last_login_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        email_signature: Set(None),
        preferences: Set(None),
        service_account: Set(true),
        user_name: Set(None),
        employee_number: Set(None),
        department: Set(None),
        deprovisioned_at: Set(None),
        reactivated_at: Set(None),
        dormancy_warned_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let client = entity::api_client::ActiveModel {
        id: Set(id),
        organization_id: Set(actor.organization_id),
        user_id: Set(user_id),
        name: Set(name),
        permissions: Set(permissions.join(",")),
        token_hash: Set(token.digest()),
        token_hint: Set(token.hint()),
        created_by: Set(Some(actor.user_id)),
        created_at: Set(now),
        expires_at: Set(input.expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "api_client.create")
            .target("ApiClient", id)
            .changes(serde_json::json!({
                "name": client.name,
                "permissions": permissions,
                "expiresAt": client.expires_at,
            })),
    )
    .await?;
    txn.commit().await?;
    Ok((client, token))
}

/// The organisation's clients, newest first, revoked ones included.
pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> AppResult<Vec<entity::api_client::Model>> {
    actor.require(Permission::OrganizationManage)?;
    Ok(actor
        .scope::<entity::api_client::Entity>()
        .order_by_desc(entity::api_client::Column::CreatedAt)
        .all(db)
        .await?)
}

/// End a client at once: its next request, on any instance, is refused.
pub async fn revoke(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::api_client::Model> {
    actor.require(Permission::OrganizationManage)?;
    let txn = crate::db::begin_write(db).await?;
    let client = actor
        .scope::<entity::api_client::Entity>()
        .filter(entity::api_client::Column::Id.eq(id))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("ApiClient"))?;
    if client.revoked_at.is_some() {
        return Ok(client);
    }
    let mut active: entity::api_client::ActiveModel = client.into();
    active.revoked_at = Set(Some(Utc::now()));
    let client = active.update(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "api_client.revoke")
            .target("ApiClient", id)
            .changes(serde_json::json!({ "name": client.name })),
    )
    .await?;
    txn.commit().await?;
    Ok(client)
}

impl Authenticator {
    /// The actor behind a client token, or `None` when it opens nothing: an
    /// unknown, revoked or expired token. A client over its rate limit is
    /// refused with `RATE_LIMITED`. Every call is audited as the client
    /// (`api_client.call`, with `call`: the door and what it asked). Costs
    /// four short statements and one store round trip; nothing is cached, so
    /// a revocation applies at once.
    pub async fn client_actor(
        &self,
        token: &ClientToken,
        organization: Option<Uuid>,
        origin: Origin,
        call: &str,
    ) -> AppResult<Option<Actor>> {
        let now = Utc::now();
        let Some(client) = unscoped::find::<entity::api_client::Entity>()
            .filter(entity::api_client::Column::TokenHash.eq(token.digest()))
            .one(&self.db)
            .await?
            .filter(|c| c.revoked_at.is_none() && c.expires_at > now)
        else {
            return Ok(None);
        };
        if organization.is_some_and(|id| id != client.organization_id) {
            return Err(AppError::forbidden(
                "An API client acts only inside its own organisation.",
            ));
        }
        let attempts = self
            .store
            .count_request(&format!("client:{}", client.id), RATE_WINDOW)
            .await?;
        if attempts.count > u64::from(self.client_rate_limit) {
            return Err(AppError::RateLimited {
                retry_after_seconds: attempts.retry_after.as_secs().max(1),
            });
        }
        let Some(user) = unscoped::find_by_id::<entity::user::Entity>(client.user_id)
            .one(&self.db)
            .await?
            .filter(|u| u.service_account && u.status == "ACTIVE")
        else {
            return Ok(None);
        };
        let creator = roles::authority_of(
            &self.db,
            Scope::of(client.organization_id),
            client.created_by,
        )
        .await?;
        let permissions = creator.bound(&permissions_of(&client));
        if client
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USE_PRECISION)
        {
            unscoped::update_many::<entity::api_client::Entity>()
                .col_expr(entity::api_client::Column::LastUsedAt, Expr::value(now))
                .filter(entity::api_client::Column::Id.eq(client.id))
                .exec(&self.db)
                .await?;
        }
        let actor = Actor {
            user_id: user.id,
            organization_id: client.organization_id,
            credential: Credential::ApiClient(client.id),
            permissions: std::sync::Arc::new(permissions),
            user: std::sync::Arc::new(user),
            origin,
            auth_methods: Vec::new(),
            mfa_pending: false,
            mfa_verified_at: None,
            has_second_factor: false,
            must_enroll_mfa: false,
            break_glass: None,
            epoch: None,
        };
        audit::record(
            &self.db,
            AuditEntry::by(&actor, CALL)
                .target("ApiClient", client.id)
                .changes(serde_json::json!({ "call": call.chars().take(200).collect::<String>() })),
        )
        .await?;
        Ok(Some(actor))
    }
}
