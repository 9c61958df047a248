//! The outbox's webhook transport: each delivery POSTed to its webhook's
//! URL, signed by the Standard Webhooks scheme (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`).
//!
//! A 2xx is delivered. A 4xx (but 408 and 429) is refused for good: the
//! receiver says the request is wrong, and the same request will stay wrong.
//! Anything else (5xx, a timeout, a refused connection) is retried with the
//! outbox's backoff. A webhook deleted or turned off since is not called.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::db::unscoped;
use crate::{
    auth::mfa::SecretKey,
    outbound::Outbound,
    services::{
        outbox::{DeliveryError, Transport},
        webhooks,
    },
};

pub struct WebhookTransport {
    db: DatabaseConnection,
    secrets: SecretKey,
    client: reqwest::Client,
    outbound: Outbound,
}

impl WebhookTransport {
    pub fn new(
        db: DatabaseConnection,
        secrets: SecretKey,
        outbound: Outbound,
    ) -> anyhow::Result<Self> {
        // Receivers answer at once and work later: 15 s is generous, and no
        // redirect is followed (a signed request goes where it was meant to).
        let client = outbound.client(Duration::from_secs(15), 0)?;
        Ok(Self {
            db,
            secrets,
            client,
            outbound,
        })
    }
}

#[async_trait::async_trait]
impl Transport for WebhookTransport {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        let gone = || DeliveryError::Permanent("the webhook was deleted or turned off".into());
        let id = message
            .recipient
            .parse::<uuid::Uuid>()
            .map_err(|_| gone())?;
        let webhook = unscoped::find_by_id::<entity::webhook::Entity>(id)
            .one(&self.db)
            .await
            .map_err(|e| DeliveryError::Transient(format!("reading the webhook: {e}")))?
            .filter(|w| w.active)
            .ok_or_else(gone)?;
        let url: reqwest::Url = webhook
            .url
            .parse()
            .map_err(|_| DeliveryError::Permanent("the webhook's URL is not a URL".into()))?;
        if let Some(reason) = self.outbound.refuse(&url) {
            return Err(DeliveryError::Permanent(reason));
        }
        let secret = webhooks::secret_of(&webhook, &self.secrets).ok_or_else(|| {
            DeliveryError::Permanent(
                "the webhook's secret does not open with this server's key".into(),
            )
        })?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = webhooks::sign(&secret, &message.subject, timestamp, &message.body)
            .ok_or_else(|| DeliveryError::Permanent("the webhook's secret is malformed".into()))?;
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.subject)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(format!("webhook: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(DeliveryError::Permanent(format!(
                "the receiver refused the event: HTTP {status}"
            )))
        } else {
            Err(DeliveryError::Transient(format!(
                "the receiver answered HTTP {status}"
            )))
        }
    }
}
