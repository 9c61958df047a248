//! The outbox: messages written in the same transaction as the change that causes
//! them (so a rolled-back change sends nothing), then delivered by a worker in
//! every instance with retries and backoff.
//!
//! Email and text messages go at most once: an instance claims a message by
//! moving it from PENDING to SENDING with a compare-and-set that only one
//! instance can win. One left in SENDING by an instance that died may or may
//! not have gone out, so it is marked FAILED ("outcome unknown") rather than
//! sent again. Webhook deliveries go at least once: receivers deduplicate by
//! their stable `webhook-id`, so an abandoned one is simply sent again.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::db::unscoped;
use crate::{domain::Email, error::AppResult};

/// The channel of webhook deliveries: the recipient is the webhook's id,
/// the subject the delivery's `webhook-id`, the body the JSON payload.
pub const WEBHOOK: &str = "WEBHOOK";

/// Attempts before a message is given up as FAILED.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claim lasts before the message counts as abandoned.
const CLAIM: Duration = Duration::from_secs(120);
const BATCH: u64 = 20;

/// An email to send once the current transaction commits.
pub struct NewEmail<'a> {
    pub organization_id: Option<Uuid>,
    /// What it is for, e.g. `user.invite`: for operators, never shown to the recipient.
    pub kind: &'static str,
    pub to: &'a Email,
    pub subject: String,
    pub body: String,
}

/// Queue an email in the caller's transaction; its id.
pub async fn enqueue_email(db: &impl ConnectionTrait, email: NewEmail<'_>) -> AppResult<Uuid> {
    enqueue(
        db,
        NewMessage {
            organization_id: email.organization_id,
            kind: email.kind,
            channel: "EMAIL",
            to: email.to.as_str().to_owned(),
            subject: email.subject,
            body: email.body,
        },
    )
    .await
}

/// A message on any channel: `EMAIL` (to an address) or `SMS` (to an E.164
/// number; the subject is unused).
pub struct NewMessage {
    pub organization_id: Option<Uuid>,
    pub kind: &'static str,
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Queue a message in the caller's transaction; its id.
pub async fn enqueue(db: &impl ConnectionTrait, message: NewMessage) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    entity::outbox_message::Entity::insert(entity::outbox_message::ActiveModel {
        id: Set(id),
        organization_id: Set(message.organization_id),
        channel: Set(message.channel.to_owned()),
        kind: Set(message.kind.to_owned()),
        recipient: Set(message.to),
        subject: Set(message.subject),
        body: Set(message.body),
        status: Set("PENDING".to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

/// Why a delivery failed.
#[derive(Debug)]
pub enum DeliveryError {
    /// Worth trying again later (connection refused, 4xx from the server).
    Transient(String),
    /// Will never succeed (5xx: no such mailbox, message refused).
    Permanent(String),
    /// No transport is configured for this channel.
    NotConfigured,
}

/// Something that sends a message of the outbox.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError>;
}

/// The delivery worker of one instance.
pub struct Deliverer {
    db: DatabaseConnection,
    transport: Arc<dyn Transport>,
    wake: Arc<Notify>,
    /// The wait before a first retry; each later one doubles it.
    retry_base: Duration,
}

impl Deliverer {
    pub fn new(
        db: DatabaseConnection,
        transport: Arc<dyn Transport>,
        wake: Arc<Notify>,
        retry_base: Duration,
    ) -> Self {
        Self {
            db,
            transport,
            wake,
            retry_base,
        }
    }

    /// Deliver due messages until `stop` resolves; woken early by `wake`.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            match self.deliver_due().await {
                Ok(n) if n as u64 == BATCH => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "outbox delivery pass failed"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    /// One pass: give up abandoned claims, then claim and send what is due; how many
    /// were claimed.
    pub async fn deliver_due(&self) -> AppResult<usize> {
        use entity::outbox_message::{Column, Entity};
        let now = Utc::now();
        let abandoned = unscoped::find::<Entity>()
            .filter(Column::Status.eq("SENDING"))
            .filter(Column::LockedUntil.lt(now))
            .all(&self.db)
            .await?;
        for message in abandoned {
            if message.channel == WEBHOOK {
                // At least once: it goes again.
                unscoped::update_many::<Entity>()
                    .col_expr(Column::Status, Expr::value("PENDING"))
                    .col_expr(
                        Column::LockedUntil,
                        Expr::value(Option::<chrono::DateTime<Utc>>::None),
                    )
                    .filter(Column::Id.eq(message.id))
                    .filter(Column::Status.eq("SENDING"))
                    .exec(&self.db)
                    .await?;
                continue;
            }
            unscoped::update_many::<Entity>()
                .col_expr(Column::Status, Expr::value("FAILED"))
                .col_expr(
                    Column::LastError,
                    Expr::value("the instance sending it stopped; delivery outcome unknown"),
                )
                .col_expr(Column::Body, Expr::value(redact_links(&message.body)))
                .filter(Column::Id.eq(message.id))
                .filter(Column::Status.eq("SENDING"))
                .exec(&self.db)
                .await?;
        }
        let due: Vec<Uuid> = unscoped::find::<Entity>()
            .select_only()
            .column(Column::Id)
            .filter(Column::Status.eq("PENDING"))
            .filter(Column::NextAttemptAt.lte(now))
            .order_by_asc(Column::NextAttemptAt)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut claimed = 0;
        for id in due {
            // The compare-and-set: only one instance moves it out of PENDING.
            let won = unscoped::update_many::<Entity>()
                .col_expr(Column::Status, Expr::value("SENDING"))
                .col_expr(Column::LockedUntil, Expr::value(now + CLAIM))
                .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
                .filter(Column::Id.eq(id))
                .filter(Column::Status.eq("PENDING"))
                .exec(&self.db)
                .await?
                .rows_affected
                == 1;
            if !won {
                continue;
            }
            claimed += 1;
            let Some(message) = unscoped::find_by_id::<Entity>(id).one(&self.db).await? else {
                continue;
            };
            let outcome = self.transport.send(&message).await;
            self.settle(&message, outcome).await?;
        }
        Ok(claimed)
    }

    async fn settle(
        &self,
        message: &entity::outbox_message::Model,
        outcome: Result<(), DeliveryError>,
    ) -> AppResult<()> {
        use entity::outbox_message::{Column, Entity};
        let now = Utc::now();
        let update = unscoped::update_many::<Entity>()
            .col_expr(
                Column::LockedUntil,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(Column::Id.eq(message.id));
        // Once a message is settled for good, the one-time links in it are of
        // use to no one but a reader of the database: they go.
        let settled_for_good = !matches!(
            &outcome,
            Err(DeliveryError::Transient(_)) if message.attempts < MAX_ATTEMPTS
        );
        let update = if settled_for_good {
            update.col_expr(Column::Body, Expr::value(redact_links(&message.body)))
        } else {
            update
        };
        let (update, settled) = match outcome {
            Ok(()) => {
                tracing::info!(message_id = %message.id, kind = message.kind, "message delivered");
                (
                    update
                        .col_expr(Column::Status, Expr::value("SENT"))
                        .col_expr(Column::SentAt, Expr::value(now)),
                    "sent",
                )
            }
            Err(DeliveryError::NotConfigured) => {
                tracing::warn!(
                    message_id = %message.id,
                    kind = message.kind,
                    channel = message.channel,
                    "no transport configured for this channel; message left undelivered"
                );
                (
                    update
                        .col_expr(Column::Status, Expr::value("UNDELIVERED"))
                        .col_expr(
                            Column::LastError,
                            Expr::value("no transport is configured for this channel"),
                        ),
                    "undelivered",
                )
            }
            Err(DeliveryError::Permanent(reason)) => {
                tracing::warn!(message_id = %message.id, reason, "message refused");
                (
                    update
                        .col_expr(Column::Status, Expr::value("FAILED"))
                        .col_expr(Column::LastError, Expr::value(truncate(&reason))),
                    "failed",
                )
            }
            Err(DeliveryError::Transient(reason)) if message.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(message_id = %message.id, reason, "message given up");
                (
                    update
                        .col_expr(Column::Status, Expr::value("FAILED"))
                        .col_expr(Column::LastError, Expr::value(truncate(&reason))),
                    "failed",
                )
            }
            Err(DeliveryError::Transient(reason)) => {
                let delay = backoff(self.retry_base, message.attempts);
                tracing::info!(message_id = %message.id, reason, retry_in_s = delay.as_secs(), "delivery will be retried");
                (
                    update
                        .col_expr(Column::Status, Expr::value("PENDING"))
                        .col_expr(Column::LastError, Expr::value(truncate(&reason)))
                        .col_expr(
                            Column::NextAttemptAt,
                            Expr::value(
                                now + chrono::Duration::from_std(delay).unwrap_or_default(),
                            ),
                        ),
                    "retry",
                )
            }
        };
        update.exec(&self.db).await?;
        crate::telemetry::events::message_settled(&message.channel, settled);
        Ok(())
    }
}

/// The paths whose last segment is a secret: invites, password resets and
/// patients' links.
const LINK_PATHS: [&str; 3] = ["/invite/", "/reset-password/", "/p/"];

/// `body` with the secret token of every link in it replaced: what is kept of
/// a message once it has been sent or given up.
pub fn redact_links(body: &str) -> String {
    let is_token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((at, path)) = LINK_PATHS
        .iter()
        .filter_map(|p| rest.find(p).map(|at| (at, *p)))
        .min()
    {
        let after = at + path.len();
        out.push_str(&rest[..after]);
        let token_len = rest[after..]
            .find(|c: char| !is_token(c))
            .unwrap_or(rest.len() - after);
        if token_len > 0 {
            out.push_str("[removed]");
        }
        rest = &rest[after + token_len..];
    }
    out.push_str(rest);
    out
}

/// `base` (15 s by default), then twice as long each time, up to an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 12) - 1).unwrap_or(0);
    Ord::min(
        base.saturating_mul(1 << exponent),
        Duration::from_secs(3600),
    )
}

fn truncate(reason: &str) -> String {
    reason.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_messages_keep_no_link_secret() {
        let body = "Hello Ada,\n\nSet your password:\n\nhttps://rollcall.example/invite/AbC-12_xyz\n\n\
                    Or respond: https://rollcall.example/p/tok3n.\nReset: http://h/reset-password/q\n";
        let kept = redact_links(body);
        assert_eq!(
            kept,
            "Hello Ada,\n\nSet your password:\n\nhttps://rollcall.example/invite/[removed]\n\n\
             Or respond: https://rollcall.example/p/[removed].\nReset: http://h/reset-password/[removed]\n"
        );
        assert_eq!(redact_links("no links here"), "no links here");
        assert_eq!(redact_links(&kept), kept);
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(15);
        assert_eq!(backoff(base, 1), Duration::from_secs(15));
        assert_eq!(backoff(base, 2), Duration::from_secs(30));
        assert_eq!(backoff(base, 3), Duration::from_secs(60));
        assert_eq!(backoff(base, 12), Duration::from_secs(3600));
    }
}
