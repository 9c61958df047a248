//! API clients: machine credentials for provisioning and integrations.

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject, dataloader::DataLoader,
};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::parse_id,
    loaders::{Key, PeopleInTrail, loader_error},
    people::User,
};
use crate::{
    auth::Permission,
    services::api_clients::{self, NewApiClient},
};

/// An API client of the organisation. Its token is shown once, at creation.
pub struct ApiClient(entity::api_client::Model);

#[Object]
impl ApiClient {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it was given. It uses at most what its creator holds now.
    async fn permissions(&self) -> Vec<Permission> {
        api_clients::permissions_of(&self.0).into_iter().collect()
    }
    /// The token's first characters, to tell it apart.
    async fn token_hint(&self) -> &str {
        &self.0.token_hint
    }
    /// Who created it; its rights never exceed theirs.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .data::<DataLoader<PeopleInTrail>>()?
            .load_one(Key::within(self.0.organization_id, id))
            .await
            .map_err(loader_error)?
            .map(User::from))
    }
    /// The user id its actions carry in the audit trail (`actor`).
    async fn actor_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// Its last request, to the minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    /// Neither revoked nor expired.
    async fn active(&self) -> bool {
        self.0.revoked_at.is_none() && self.0.expires_at > Utc::now()
    }
}

/// A new client and its token, shown this once.
#[derive(SimpleObject)]
pub struct ApiClientPayload {
    client: ApiClient,
    /// Sent as `Authorization: Bearer <token>`. Stored only as a digest:
    /// lost, it cannot be shown again; revoke the client and create another.
    token: String,
}

/// A client to create.
#[derive(InputObject)]
pub struct ApiClientInput {
    name: String,
    /// Each must be held by the creator.
    permissions: Vec<Permission>,
    /// At most two years ahead.
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct ApiClientQuery;

#[Object]
impl ApiClientQuery {
    /// The organisation's API clients, newest first (ORGANIZATION_MANAGE).
    async fn api_clients(&self, ctx: &Context<'_>) -> Result<Vec<ApiClient>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(api_clients::list(&state.db, actor)
            .await?
            .into_iter()
            .map(ApiClient)
            .collect())
    }
}

#[derive(Default)]
pub struct ApiClientMutation;

#[Object]
impl ApiClientMutation {
    /// Create an API client (ORGANIZATION_MANAGE and every permission given,
    /// with a recent second factor when the caller has one).
    async fn create_api_client(
        &self,
        ctx: &Context<'_>,
        input: ApiClientInput,
    ) -> Result<ApiClientPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let (client, token) = api_clients::create(
            &state.db,
            actor,
            NewApiClient {
                name: input.name,
                permissions: input.permissions.into_iter().collect(),
                expires_at: input.expires_at,
            },
        )
        .await?;
        Ok(ApiClientPayload {
            client: ApiClient(client),
            token: token.expose().to_owned(),
        })
    }

    /// End an API client at once, on every instance (ORGANIZATION_MANAGE).
    async fn revoke_api_client(&self, ctx: &Context<'_>, id: ID) -> Result<ApiClient> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(ApiClient(
            api_clients::revoke(&state.db, actor, parse_id(&id, "id")?).await?,
        ))
    }
}
