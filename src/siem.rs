//! The audit trail forwarded to a SIEM as RFC 5424 syslog over TCP or TLS
//! (`ROLLCALL_AUDIT_SYSLOG_URL`, `tcp://host:port` or `tls://host:port`),
//! framed by octet counting (RFC 6587, RFC 5425).
//!
//! The forwarder follows each organisation's hash chain from its own cursor
//! (`audit_forwarded`): it sends the events after it, in chain order, and
//! moves the cursor once the SIEM has taken them. So every event is sent at
//! least once (an instance that dies between sending and moving the cursor
//! sends the last events again; the SIEM tells them apart by their `event`
//! id) and in the order of the chain. A SIEM that is down is retried with the
//! outbox's backoff. One instance at a time forwards, under a lease.
//!
//! Each record carries the event's hash and the one before it, so the SIEM
//! holds an anchor of the chain outside the database: events cut from the
//! end of the chain, which the database alone cannot show, show there.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};
use uuid::Uuid;

use crate::db::{global, unscoped};
use crate::{
    error::{AppError, AppResult},
    services::{audit, leases, outbox::backoff},
};

/// Facility 13 (log audit), severity 6 (informational).
const PRIORITY: u8 = 13 * 8 + 6;
/// The private enterprise number of the structured data: 32473 is the one
/// RFC 5612 sets aside for documentation and examples.
const SD_ID: &str = "rollcall@32473";
const LEASE: &str = "audit.syslog";
const LEASE_LENGTH: Duration = Duration::from_secs(30);
/// Events read and sent at a time.
const PAGE: u64 = 500;

/// Where the audit trail goes.
#[derive(Clone)]
pub struct SyslogTarget {
    host: String,
    port: u16,
    /// The TLS settings, for `tls://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl SyslogTarget {
    /// `url` read, with `extra_roots` (PEM, `ROLLCALL_OUTBOUND_CA_FILE`)
    /// trusted beside the public roots for TLS.
    pub fn parse(url: &str, extra_roots: Option<&[u8]>) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).context("ROLLCALL_AUDIT_SYSLOG_URL is not a URL")?;
        let host = parsed
            .host_str()
            .context("ROLLCALL_AUDIT_SYSLOG_URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed
            .port()
            .context("ROLLCALL_AUDIT_SYSLOG_URL has no port")?;
        let tls = match parsed.scheme() {
            "tcp" => None,
            "tls" => Some(Arc::new(tls_config(extra_roots)?)),
            other => {
                anyhow::bail!("ROLLCALL_AUDIT_SYSLOG_URL must be tcp:// or tls://, not {other}://")
            }
        };
        Ok(Self { host, port, tls })
    }

    async fn connect(&self) -> std::io::Result<Box<dyn AsyncWrite + Send + Unpin>> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))??;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stream = TlsConnector::from(tls.clone()).connect(name, tcp).await?;
        Ok(Box::new(stream))
    }
}

fn tls_config(extra_roots: Option<&[u8]>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_roots {
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.context("ROLLCALL_OUTBOUND_CA_FILE holds a malformed certificate")?)
                .context("ROLLCALL_OUTBOUND_CA_FILE holds a certificate rustls refuses")?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One audit event as an RFC 5424 record: the event's time, this service as
/// the host and app, the action as the message id, the chain's fields as
/// structured data, and the event as JSON for the message.
pub fn record(event: &entity::audit_event::Model, hostname: &str) -> String {
    let msgid: String = event
        .action
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let sd_value = |value: Option<String>| value.unwrap_or_default();
    format!(
        "<{PRIORITY}>1 {time} {hostname} rollcall - {msgid} [{SD_ID} event=\"{id}\" organization=\"{org}\" seq=\"{seq}\" hash=\"{hash}\" previousHash=\"{previous}\"] \u{feff}{json}",
        time = event
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        msgid = if msgid.is_empty() {
            "-".to_owned()
        } else {
            msgid
        },
        id = event.id,
        org = sd_value(event.organization_id.map(|id| id.to_string())),
        seq = sd_value(event.seq.map(|seq| seq.to_string())),
        hash = sd_value(event.hash.clone()),
        previous = sd_value(event.previous_hash.clone()),
        json = audit::event_json(event),
    )
}

/// The host name of records: the public URL's host, as RFC 5424 allows it.
pub fn hostname(public_url: &str) -> String {
    let host: String = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if host.is_empty() {
        "-".to_owned()
    } else {
        host
    }
}

/// The forwarder of one instance.
pub struct Forwarder {
    db: DatabaseConnection,
    target: SyslogTarget,
    hostname: String,
    holder: Uuid,
    retry_base: Duration,
}

impl Forwarder {
    pub fn new(
        db: DatabaseConnection,
        target: SyslogTarget,
        hostname: String,
        retry_base: Duration,
    ) -> Self {
        Self {
            db,
            target,
            hostname,
            holder: Uuid::new_v4(),
            retry_base,
        }
    }

    /// Forward until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut connection = None;
        let mut failures = 0;
        loop {
            let wait = match self.pass(&mut connection).await {
                Ok(sent) => {
                    failures = 0;
                    if sent > 0 {
                        continue;
                    }
                    Duration::from_secs(1)
                }
                Err(err) => {
                    connection = None;
                    failures += 1;
                    let wait = backoff(self.retry_base, failures);
                    tracing::warn!(error = %err, retry_in_s = wait.as_secs(), "forwarding the audit trail to syslog failed");
                    wait
                }
            };
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let _ = leases::release(&self.db, LEASE, self.holder).await;
    }

    /// Send what every chain holds beyond its cursor; how many events went.
    async fn pass(
        &self,
        connection: &mut Option<Box<dyn AsyncWrite + Send + Unpin>>,
    ) -> AppResult<usize> {
        use entity::audit_event::{Column, Entity};
        if !leases::hold(&self.db, LEASE, self.holder, LEASE_LENGTH).await? {
            return Ok(0);
        }
        let heads = global::find::<entity::audit_chain::Entity>()
            .all(&self.db)
            .await?;
        let cursors: HashMap<Uuid, i64> = global::find::<entity::audit_forwarded::Entity>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.chain_id, c.seq))
            .collect();
        let mut sent = 0;
        for head in heads {
            let after = cursors.get(&head.chain_id).copied().unwrap_or(0);
            if head.seq <= after {
                continue;
            }
            let events = unscoped::find::<Entity>()
                .filter(if head.chain_id == audit::NO_ORGANIZATION {
                    Column::OrganizationId.is_null()
                } else {
                    Column::OrganizationId.eq(head.chain_id)
                })
                .filter(Column::Seq.gt(after))
                .order_by_asc(Column::Seq)
                .limit(PAGE)
                .all(&self.db)
                .await?;
            let Some(last) = events.last().and_then(|e| e.seq) else {
                continue;
            };
            let mut frames = Vec::with_capacity(events.len() * 768);
            for event in &events {
                let record = record(event, &self.hostname);
                frames.extend_from_slice(format!("{} ", record.len()).as_bytes());
                frames.extend_from_slice(record.as_bytes());
            }
            let stream = match connection {
                Some(stream) => stream,
                None => connection.insert(self.target.connect().await.map_err(io_error)?),
            };
            stream.write_all(&frames).await.map_err(io_error)?;
            stream.flush().await.map_err(io_error)?;
            entity::audit_forwarded::Entity::insert(entity::audit_forwarded::ActiveModel {
                chain_id: Set(head.chain_id),
                seq: Set(last),
                updated_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::column(entity::audit_forwarded::Column::ChainId)
                    .update_columns([
                        entity::audit_forwarded::Column::Seq,
                        entity::audit_forwarded::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
            sent += events.len();
        }
        Ok(sent)
    }
}

fn io_error(err: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("syslog: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_rfc_5424() {
        let event = entity::audit_event::Model {
            id: Uuid::now_v7(),
            organization_id: Some(Uuid::now_v7()),
            actor_user_id: None,
            session_id: None,
            action: "user.deactivate".to_owned(),
            target_type: Some("User".to_owned()),
            target_id: Some("7".to_owned()),
            changes: None,
            ip_address: Some("10.0.0.1".to_owned()),
            user_agent: None,
            created_at: Utc::now(),
            seq: Some(3),
            hash: Some("ab".repeat(32)),
            previous_hash: Some("cd".repeat(32)),
        };
        let text = record(&event, &hostname("https://rollcall.example.org"));
        let parsed = syslog_rfc5424::parse_message(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(parsed.hostname.as_deref(), Some("rollcall.example.org"));
        assert_eq!(parsed.appname.as_deref(), Some("rollcall"));
        assert_eq!(parsed.msgid.as_deref(), Some("user.deactivate"));
        assert_eq!(parsed.facility, syslog_rfc5424::SyslogFacility::LOG_AUDIT);
        assert_eq!(
            parsed.sd.find_tuple(SD_ID, "seq").map(String::as_str),
            Some("3")
        );
        // The message opens with the byte order mark that says it is UTF-8.
        let message = parsed.msg.strip_prefix('\u{feff}').unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(message).unwrap_or_else(|e| panic!("{e}: {message}"));
        assert_eq!(json["hash"], "ab".repeat(32));
    }
}
