//! Outgoing email: the outbox's transport over SMTP, or none when no server is
//! configured (messages are then marked undelivered, so an operator sees them).

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};

use crate::services::outbox::{DeliveryError, Transport};

/// Sends email through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// From `ROLLCALL_SMTP_URL` and `ROLLCALL_MAIL_FROM`; a bad URL or sender fails
    /// the start, not the first message.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("ROLLCALL_SMTP_URL is not usable: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("ROLLCALL_MAIL_FROM is not a mailbox: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Transport for SmtpMailer {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        if message.channel != "EMAIL" {
            return Err(DeliveryError::NotConfigured);
        }
        let to: Mailbox = message
            .recipient
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("recipient address: {e}")))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| DeliveryError::Permanent(format!("message: {e}")))?;
        self.transport.send(email).await.map(drop).map_err(|e| {
            if e.is_permanent() {
                DeliveryError::Permanent(e.to_string())
            } else {
                DeliveryError::Transient(e.to_string())
            }
        })
    }
}

/// No delivery configured: every message is left undelivered, and logged.
pub struct NoTransport;

#[async_trait::async_trait]
impl Transport for NoTransport {
    async fn send(&self, _: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        Err(DeliveryError::NotConfigured)
    }
}
