//! Outgoing text messages through an HTTP webhook (an SMS gateway, or a small
//! adapter in front of one), and the router that sends each outbox message
//! through the transport of its channel.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use crate::services::outbox::{DeliveryError, Transport};

/// POSTs `{ "to", "body" }` as JSON to the configured URL.
pub struct SmsWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl SmsWebhook {
    /// From `ROLLCALL_SMS_WEBHOOK_URL`; a bad URL fails the start.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let url: reqwest::Url = url
            .parse()
            .map_err(|e| anyhow::anyhow!("ROLLCALL_SMS_WEBHOOK_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("ROLLCALL_SMS_WEBHOOK_URL must be an http or https URL");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, url })
    }
}

#[async_trait::async_trait]
impl Transport for SmsWebhook {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        let response = self
            .client
            .post(self.url.clone())
            .json(&json!({ "to": message.recipient, "body": message.body }))
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(format!("SMS webhook: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(DeliveryError::Permanent(format!(
                "SMS webhook refused the message: HTTP {status}"
            )))
        } else {
            Err(DeliveryError::Transient(format!(
                "SMS webhook answered HTTP {status}"
            )))
        }
    }
}

/// Sends each message through the transport of its channel.
pub struct Channels {
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
    pub webhook: Arc<dyn Transport>,
}

#[async_trait::async_trait]
impl Transport for Channels {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        match message.channel.as_str() {
            "EMAIL" => self.email.send(message).await,
            "SMS" => self.sms.send(message).await,
            crate::services::outbox::WEBHOOK => self.webhook.send(message).await,
            _ => Err(DeliveryError::Permanent(format!(
                "unknown channel {}",
                message.channel
            ))),
        }
    }
}
