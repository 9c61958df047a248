//! Webhooks: an organisation's systems told of its events as they happen.
//!
//! Every change Rollcall audits is an event. `webhook_events::fan_out`, called
//! by `audit::record` in the transaction of the change, queues one outbox
//! message (channel `WEBHOOK`) per subscribed webhook: a change that rolls
//! back tells no one. The outbox delivers them (the `webhook` room's
//! transport), signed by the Standard Webhooks scheme, retried with
//! backoff on anything but a 2xx or a 4xx, at least once, each with a stable
//! `webhook-id` a receiver deduplicates by. Payloads name records by id and
//! carry no personal data: a receiver reads what it needs through the API.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    QueryFilter, QueryOrder,
};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

pub use super::webhook_events::{EVENTS, event_type};
use super::{
    audit::{self, AuditEntry},
    outbox::{self, WEBHOOK},
    webhook_events::event_kind,
};
use crate::db::{Page, PageRequest, paginate};
use crate::{
    auth::{Actor, Permission, mfa::SecretKey},
    error::{AppError, AppResult, Validation},
    outbound,
};

fn parse_events(events: &[String], v: &mut Validation) -> Vec<String> {
    let mut parsed: Vec<String> = Vec::new();
    for event in events {
        let event = event.trim();
        if event == "*" || EVENTS.iter().any(|(name, _, _)| *name == event) {
            if !parsed.iter().any(|e| e == event) {
                parsed.push(event.to_owned());
            }
        } else {
            v.add(
                "events",
                format!("{event:?} is not an event: use {} or *", names()),
            );
        }
    }
    if parsed.is_empty() && events.is_empty() {
        v.add("events", "name at least one event, or * for all");
    }
    parsed
}

fn names() -> String {
    EVENTS
        .iter()
        .map(|(name, _, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The events a webhook asked for.
pub fn events_of(webhook: &entity::webhook::Model) -> Vec<String> {
    webhook.events.split(',').map(str::to_owned).collect()
}

/// A webhook to create (no `id`) or change.
pub struct WebhookInput {
    pub id: Option<Uuid>,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, as the
/// Standard Webhooks libraries read it.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed");
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Save a webhook (ORGANIZATION_MANAGE, with a recent second factor when the
/// caller has one); a new one's secret is answered once.
pub async fn save(
    db: &DatabaseConnection,
    secrets: &SecretKey,
    allow_private: bool,
    actor: &Actor,
    input: WebhookInput,
) -> AppResult<(entity::webhook::Model, Option<String>)> {
    actor.require(Permission::OrganizationManage)?;
    actor.require_recent_mfa()?;
    let mut v = Validation::default();
    let url = match reqwest::Url::parse(input.url.trim()) {
        Ok(url) => match outbound::refuse_url(&url, allow_private) {
            Some(reason) => {
                v.add("url", reason);
                None
            }
            None => Some(url),
        },
        Err(_) => {
            v.add("url", "is not an absolute URL");
            None
        }
    };
    if input.url.len() > 2048 {
        v.add("url", "must be at most 2048 characters long");
    }
    let events = parse_events(&input.events, &mut v);
    v.finish()?;
    let url = url.map(String::from).unwrap_or_default();
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let (webhook, secret) = match input.id {
        Some(id) => {
            let existing = find(&txn, actor, id).await?;
            let mut active: entity::webhook::ActiveModel = existing.into();
            active.url = Set(url);
            active.events = Set(events.join(","));
            active.active = Set(input.active);
            active.updated_at = Set(now);
            (active.update(&txn).await?, None)
        }
        None => {
            let id = Uuid::now_v7();
            let secret = new_secret();
            let webhook = entity::webhook::ActiveModel {
                id: Set(id),
                organization_id: Set(actor.organization_id),
                url: Set(url),
                events: Set(events.join(",")),
                secret_sealed: Set(secrets.seal(secret.as_bytes(), id.as_bytes())),
                active: Set(input.active),
                created_by: Set(Some(actor.user_id)),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            (webhook, Some(secret))
        }
    };
    audit::record(
        &txn,
        AuditEntry::by(actor, "webhook.save")
            .target("Webhook", webhook.id)
            .changes(json!({
                "url": webhook.url,
                "events": events,
                "active": webhook.active,
            })),
    )
    .await?;
    txn.commit().await?;
    Ok((webhook, secret))
}

async fn find(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> AppResult<entity::webhook::Model> {
    actor
        .scope::<entity::webhook::Entity>()
        .filter(entity::webhook::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("Webhook"))
}

pub async fn list(
    db: &impl ConnectionTrait,
    actor: &Actor,
) -> AppResult<Vec<entity::webhook::Model>> {
    actor.require(Permission::OrganizationManage)?;
    Ok(actor
        .scope::<entity::webhook::Entity>()
        .order_by_asc(entity::webhook::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Delete a webhook; deliveries not yet made are not made.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> AppResult<()> {
    actor.require(Permission::OrganizationManage)?;
    let txn = crate::db::begin_write(db).await?;
    let webhook = find(&txn, actor, id).await?;
    actor
        .tenant()
        .delete_by_id::<entity::webhook::Entity>(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "webhook.delete")
            .target("Webhook", id)
            .changes(json!({ "url": webhook.url })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A webhook's deliveries, oldest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    actor: &Actor,
    webhook_id: Uuid,
    page: PageRequest,
) -> AppResult<Page<entity::outbox_message::Model>> {
    use entity::outbox_message::Column;
    actor.require(Permission::OrganizationManage)?;
    find(db, actor, webhook_id).await?;
    let select = actor
        .tenant()
        .find::<entity::outbox_message::Entity>()
        .filter(Column::Channel.eq(WEBHOOK))
        .filter(Column::Recipient.eq(webhook_id.to_string()))
        .filter(Column::OrganizationId.eq(actor.organization_id));
    paginate(db, select, Column::Id, page).await
}

/// Send a delivery again, with its payload and `webhook-id`: a new entry in
/// the webhook's log.
pub async fn redeliver(
    db: &DatabaseConnection,
    actor: &Actor,
    delivery_id: Uuid,
) -> AppResult<entity::outbox_message::Model> {
    use entity::outbox_message::Column;
    actor.require(Permission::OrganizationManage)?;
    let txn = crate::db::begin_write(db).await?;
    let delivery = actor
        .tenant()
        .find_by_id::<entity::outbox_message::Entity>(delivery_id)
        .filter(Column::Channel.eq(WEBHOOK))
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("WebhookDelivery"))?;
    let webhook_id: Uuid = delivery
        .recipient
        .parse()
        .map_err(|_| AppError::NotFound("Webhook"))?;
    find(&txn, actor, webhook_id).await?;
    let id = outbox::enqueue(
        &txn,
        outbox::NewMessage {
            organization_id: delivery.organization_id,
            kind: event_kind(&delivery.kind),
            channel: WEBHOOK,
            to: delivery.recipient.clone(),
            subject: delivery.subject.clone(),
            body: delivery.body.clone(),
        },
    )
    .await?;
    audit::record(
        &txn,
        AuditEntry::by(actor, "webhook.redeliver")
            .target("Webhook", webhook_id)
            .changes(json!({ "delivery": delivery_id, "webhookId": delivery.subject })),
    )
    .await?;
    txn.commit().await?;
    actor
        .tenant()
        .find_by_id::<entity::outbox_message::Entity>(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("WebhookDelivery"))
}

/// The webhook's signing secret, as given when it was created.
pub fn secret_of(webhook: &entity::webhook::Model, secrets: &SecretKey) -> Option<String> {
    secrets
        .open(&webhook.secret_sealed, webhook.id.as_bytes())
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The `webhook-signature` header of the Standard Webhooks scheme: `v1,` and
/// the base64 HMAC-SHA256, keyed by the secret's bytes, of
/// `{webhook-id}.{webhook-timestamp}.{body}`. `None` for a malformed secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_specification_shows() {
        // The example of the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert!(sign("not-a-secret", "msg", 1, "{}").is_none());
    }

    #[test]
    fn audit_actions_are_delivered_under_their_event() {
        assert_eq!(event_type("user.deprovision"), "user.deactivated");
        assert_eq!(event_type("user.set_roles"), "role.changed");
        assert_eq!(event_type("project.update"), "project.update");
        let mut v = Validation::default();
        assert_eq!(
            parse_events(&["user.created".into(), "*".into()], &mut v),
            ["user.created", "*"]
        );
        parse_events(&["user.craeted".into()], &mut v);
        assert!(v.finish().is_err());
    }
}
