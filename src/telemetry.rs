//! Structured logs with tracing, plain or JSON.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Plain => builder.try_init(),
    };
}

/// Counters of what the product does, served at `/metrics` beside the request
/// and database figures, for dashboards and alerts: a burst of failed logins, a
/// mail transport that stopped delivering, imports failing rows. Labels are
/// closed sets (outcomes, kinds, channels): never an id, an email or a name.
pub mod events {
    /// A login attempt: `ok`, `failed` (wrong credentials, of any kind),
    /// `locked` (refused by the lockout before any check), `mfa_pending` (the
    /// password was right, a second factor is asked for) or `mfa_failed` (a
    /// wrong or reused code).
    pub fn login(outcome: &'static str) {
        metrics::counter!("rollcall_logins_total", "outcome" => outcome).increment(1);
    }

    /// A request for a password-reset link: `accepted` or `limited`.
    pub fn password_reset_requested(outcome: &'static str) {
        metrics::counter!("rollcall_password_reset_requests_total", "outcome" => outcome)
            .increment(1);
    }

    /// The rows of one committed import batch, by their outcome.
    pub fn import_rows(kind: &str, outcome: &'static str, rows: u64) {
        if rows > 0 {
            metrics::counter!("rollcall_import_rows_total", "kind" => kind.to_owned(), "outcome" => outcome)
                .increment(rows);
        }
    }

    /// An import job that ended, by its final status.
    pub fn import_job_ended(kind: &str, status: &'static str) {
        metrics::counter!("rollcall_import_jobs_ended_total", "kind" => kind.to_owned(), "status" => status)
            .increment(1);
    }

    /// One delivery attempt of an outbox message: `sent`, `retry`, `failed` or
    /// `undelivered` (no transport configured for its channel).
    pub fn message_settled(channel: &str, outcome: &'static str) {
        metrics::counter!("rollcall_outbox_deliveries_total", "channel" => channel.to_owned(), "outcome" => outcome)
            .increment(1);
    }
}
