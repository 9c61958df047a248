//! Webhooks: the organisation's systems told of its events, and the log of
//! what was delivered.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    Ctx,
    connection::{Conn, into_connection, page_request, parse_id},
};
use crate::services::webhooks::{self, WebhookInput as Input};

/// An endpoint of the organisation's that receives its events, signed by the
/// Standard Webhooks scheme. Its secret is shown once, when it is created.
pub struct Webhook(entity::webhook::Model);

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Event types (see `webhookEvents`), or `*` for every event.
    async fn events(&self) -> Vec<String> {
        webhooks::events_of(&self.0)
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A saved webhook, and its signing secret when it was just created.
#[derive(SimpleObject)]
pub struct WebhookPayload {
    webhook: Webhook,
    /// `whsec_…`: what a Standard Webhooks library verifies signatures with.
    /// Shown once; stored encrypted.
    secret: Option<String>,
}

/// One delivery of an event to a webhook, with its attempts.
pub struct WebhookDelivery(entity::outbox_message::Model);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn webhook_id(&self) -> ID {
        ID(self.0.recipient.clone())
    }
    /// The `webhook-id` header: the same for a redelivery, so a receiver
    /// handles an event once.
    async fn message_id(&self) -> &str {
        &self.0.subject
    }
    async fn event_type(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.0.body)
            .ok()
            .and_then(|p| p["type"].as_str().map(str::to_owned))
            .unwrap_or_else(|| self.0.kind.clone())
    }
    /// `PENDING` (waiting for its next attempt), `SENDING`, `SENT` or `FAILED`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == "PENDING").then_some(self.0.next_attempt_at)
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// What was sent: the event's type, time and the ids it concerns.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.body).unwrap_or_default())
    }
}

/// An event a webhook may ask for.
#[derive(SimpleObject)]
pub struct WebhookEvent {
    name: &'static str,
    description: &'static str,
}

/// A webhook to add (no `id`) or change.
#[derive(InputObject)]
pub struct WebhookInput {
    id: Option<ID>,
    /// https, at a public address (unless the server allows private ones).
    url: String,
    /// Event types (`webhookEvents`), or `*` for every audited event.
    events: Vec<String>,
    #[graphql(default = true)]
    active: bool,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The organisation's webhooks (ORGANIZATION_MANAGE).
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(webhooks::list(&state.db, actor)
            .await?
            .into_iter()
            .map(Webhook)
            .collect())
    }

    /// The events a webhook may ask for by name.
    async fn webhook_events(&self) -> Vec<WebhookEvent> {
        webhooks::EVENTS
            .iter()
            .map(|(name, _, description)| WebhookEvent { name, description })
            .collect()
    }

    /// A webhook's deliveries, oldest first (ORGANIZATION_MANAGE).
    #[graphql(complexity = "super::connection::page_cost(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<WebhookDelivery>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let page = page_request(ctx, first, after.as_deref())?;
        let id = parse_id(&webhook_id, "webhookId")?;
        let page = webhooks::deliveries(&state.db, actor, id, page).await?;
        Ok(into_connection(page, |m| m.id, WebhookDelivery))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Add or change a webhook (ORGANIZATION_MANAGE, with a recent second
    /// factor when the caller has one).
    async fn save_webhook(&self, ctx: &Context<'_>, input: WebhookInput) -> Result<WebhookPayload> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let input = Input {
            id: input.id.as_ref().map(|id| parse_id(id, "id")).transpose()?,
            url: input.url,
            events: input.events,
            active: input.active,
        };
        let (webhook, secret) = webhooks::save(
            &state.db,
            state.auth.secrets(),
            state.config.outbound_allow_private,
            actor,
            input,
        )
        .await?;
        Ok(WebhookPayload {
            webhook: Webhook(webhook),
            secret,
        })
    }

    /// Remove a webhook; its undelivered events are not sent (ORGANIZATION_MANAGE).
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        webhooks::delete(&state.db, actor, parse_id(&id, "id")?).await?;
        Ok(true)
    }

    /// Send a delivery again, with the same payload and `webhook-id`
    /// (ORGANIZATION_MANAGE).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> Result<WebhookDelivery> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(WebhookDelivery(
            webhooks::redeliver(&state.db, actor, parse_id(&delivery_id, "deliveryId")?).await?,
        ))
    }
}
