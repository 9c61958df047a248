//! The audit trail as admins search it.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, dataloader::DataLoader};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
    loaders::{Key, PeopleInTrail, loader_error},
    people::User,
};
use crate::services::audit;

/// Who did what, to which record, when, from where.
pub struct AuditEvent(entity::audit_event::Model);

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A stable dotted name such as `session.revoke` or `user.deactivate`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The user who acted; null for system actions and failed logins of unknown accounts.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.actor_user_id {
            Some(id) => user_in_trail(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn session_id(&self) -> Option<ID> {
        self.0.session_id.clone().map(ID)
    }
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }
    async fn target_id(&self) -> Option<ID> {
        self.0.target_id.clone().map(ID)
    }
    /// The changed fields; never secrets.
    async fn changes(&self) -> Option<Json<serde_json::Value>> {
        self.0.changes.clone().map(Json)
    }
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// SHA-256 (hex) of this event's content and `previousHash`: the seal of
    /// its place in the organisation's chain (`rollcall audit verify` checks it).
    async fn hash(&self) -> Option<&str> {
        self.0.hash.as_deref()
    }
    /// The hash of the event before it in the chain; null for the first.
    async fn previous_hash(&self) -> Option<&str> {
        self.0.previous_hash.as_deref()
    }
}

/// A user named by a record of the caller's organisation (who acted, who was
/// given access, who reviewed it): shown when they belong to it, or are a
/// super admin who acted in it; other tenants' users are not.
pub(super) async fn user_in_trail(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<User>> {
    let caller = ctx.caller()?.actor()?;
    let user = ctx
        .data::<DataLoader<PeopleInTrail>>()?
        .load_one(Key::new(caller.tenant(), id))
        .await
        .map_err(loader_error)?;
    Ok(user.map(User::from))
}

/// What `auditEvents` may be narrowed by.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    pub actor_id: Option<ID>,
    pub action: Option<String>,
    pub target_id: Option<ID>,
    /// From this time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this time, exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The organisation's audit trail, oldest first (AUDIT_READ).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> Result<Conn<AuditEvent>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = audit::AuditFilter {
            actor_id: filter
                .actor_id
                .as_ref()
                .map(|id| parse_id(id, "filter.actorId"))
                .transpose()?,
            action: filter.action,
            target_id: filter.target_id.map(|id| id.0),
            from: filter.from,
            to: filter.to,
        };
        let page = audit::search(&state.db, actor, filter, page).await?;
        Ok(into_connection(page, |m| m.id, AuditEvent))
    }
}
