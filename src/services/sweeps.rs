//! The sweeps: work done on a clock rather than on a request, once across
//! all instances (whichever holds the lease): reminders of certifications
//! that are about to expire, dormant accounts, and access reviews that
//! reached their due date.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{access_reviews, credentials, dormancy, leases};
use crate::auth::session::SessionStore;

const LEASE: &str = "sweeps";

/// The sweeper of one instance.
pub struct Sweeper {
    pub db: DatabaseConnection,
    pub store: Arc<dyn SessionStore>,
    /// How often it sweeps (`ROLLCALL_SWEEP_INTERVAL_SECONDS`).
    pub interval: Duration,
    /// What a sweep queued goes out at once.
    pub outbox_wake: Arc<Notify>,
}

impl Sweeper {
    /// Sweep now and every interval until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let holder = Uuid::new_v4();
        loop {
            // The lease outlasts the wait, so one instance keeps the work.
            match leases::hold(&self.db, LEASE, holder, self.interval * 2).await {
                Ok(true) => self.sweep().await,
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "the sweeps' lease could not be read"),
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        let _ = leases::release(&self.db, LEASE, holder).await;
    }

    async fn sweep(&self) {
        let now = chrono::Utc::now();
        match credentials::send_due_reminders(&self.db, now).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "certification reminders queued"),
            Err(err) => tracing::warn!(error = %err, "certification reminders failed"),
        }
        match dormancy::sweep(&self.db, self.store.as_ref(), now).await {
            Ok(swept) if swept == dormancy::Swept::default() => {}
            Ok(swept) => tracing::info!(
                warned = swept.warned,
                deactivated = swept.deactivated,
                "dormant accounts swept"
            ),
            Err(err) => tracing::warn!(error = %err, "the dormant accounts' sweep failed"),
        }
        match access_reviews::close_due(&self.db, self.store.as_ref(), now).await {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "access reviews past their due date closed"),
            Err(err) => tracing::warn!(error = %err, "closing due access reviews failed"),
        }
        self.outbox_wake.notify_one();
    }
}
