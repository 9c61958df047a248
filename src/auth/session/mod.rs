//! Server-side sessions: one interface, two stores.
//!
//! [`redis::RedisStore`] is the production store, shared by every instance;
//! [`memory::MemoryStore`] keeps sessions in process for the embedded default.
//! Both pass the same conformance tests (`tests/session_store.rs`).
//!
//! A client holds a 256-bit random token; the store knows only its SHA-256 digest,
//! which is also the session's public id. Knowing an id (from `mySessions` or the
//! audit trail) gives no way to forge the token.
//!
//! Besides sessions the store keeps what every instance must share: the
//! authorisation epoch of each organisation (bumped by any change of roles,
//! permissions or user status, so that no instance keeps permissions a change has
//! made stale), the failed-login counters, and the revocation broadcast.

mod endpoint;
pub mod memory;
pub mod redis;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use uuid::Uuid;

/// A failure of the store itself (unreachable, timed out), never "no such session".
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for crate::error::AppError {
    fn from(err: StoreError) -> Self {
        tracing::warn!(error = %err.0, "session store unavailable");
        Self::Unavailable("session store")
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The secret a client presents. Never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

impl SessionToken {
    /// 256 bits from the operating system's generator, URL-safe base64.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random generator failed");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accept a presented token only if it has the shape of one we issue, so that
    /// garbage never reaches the store.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public id of the session this token opens.
    pub fn id(&self) -> SessionId {
        SessionId(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
    }
}

/// The digest of a token: the store's key and the session's public id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a session's user proved who they are, by the names of RFC 8176
/// (Authentication Method Reference Values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthMethod {
    /// A password.
    Password,
    /// A one-time code: TOTP, or a recovery code.
    Otp,
    /// A hardware-bound key: a WebAuthn passkey or security key.
    HardwareKey,
    /// Single sign-on through the organisation's identity provider.
    Sso,
    /// More than one factor, verified by the identity provider (its ID
    /// token's `amr` says so; see [`AuthMethod::from_provider`]).
    Mfa,
}

impl AuthMethod {
    pub const ALL: [Self; 5] = [
        Self::Password,
        Self::Otp,
        Self::HardwareKey,
        Self::Sso,
        Self::Mfa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Otp => "otp",
            Self::HardwareKey => "hwk",
            Self::Sso => "sso",
            Self::Mfa => "mfa",
        }
    }

    /// What an identity provider's `amr` (RFC 8176) says of a sign-in: `Mfa`
    /// when it names several factors (`mfa`) or any factor beyond something
    /// known (a one-time code, a key, a smart card, a biometric).
    pub fn from_provider<'a>(amr: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        const BEYOND_KNOWLEDGE: [&str; 12] = [
            "mfa", "otp", "hwk", "swk", "sms", "tel", "sc", "fpt", "face", "iris", "retina", "vbm",
        ];
        amr.into_iter()
            .any(|m| BEYOND_KNOWLEDGE.contains(&m))
            .then_some(Self::Mfa)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// Whether this method is a second factor (on top of a password).
    pub fn is_second_factor(self) -> bool {
        matches!(self, Self::Otp | Self::HardwareKey | Self::Mfa)
    }
}

/// The methods of a session, as stores keep them: comma-separated names.
pub(crate) fn methods_to_string(methods: &[AuthMethod]) -> String {
    methods_names(methods).join(",")
}

/// The names of methods, as the API and the audit trail show them.
pub fn methods_names(methods: &[AuthMethod]) -> Vec<&'static str> {
    methods.iter().map(|m| m.as_str()).collect()
}

/// Methods from their stored form; a session stored before methods were
/// recorded was made with a password.
pub(crate) fn methods_from_str(raw: &str) -> Vec<AuthMethod> {
    let methods: Vec<AuthMethod> = raw.split(',').filter_map(AuthMethod::parse).collect();
    if methods.is_empty() {
        vec![AuthMethod::Password]
    } else {
        methods
    }
}

/// What a login asks the store to remember.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub auth_methods: Vec<AuthMethod>,
    /// The password was right but a second factor is still to come: the
    /// session may do nothing but complete the login.
    pub mfa_pending: bool,
    /// The login verified a second factor now.
    pub mfa_verified: bool,
}

/// A live session as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, whatever the activity.
    pub absolute_expiry: DateTime<Utc>,
    pub idle_timeout: Duration,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// How the session was made, and what was verified on it since.
    pub auth_methods: Vec<AuthMethod>,
    /// A login waiting for its second factor.
    pub mfa_pending: bool,
    /// When a second factor was last verified on this session.
    pub mfa_verified_at: Option<DateTime<Utc>>,
}

impl SessionRecord {
    /// When the session ends if nothing else happens.
    pub fn expires_at(&self) -> DateTime<Utc> {
        let idle_end = self.last_seen_at
            + chrono::Duration::from_std(self.idle_timeout).unwrap_or(chrono::Duration::MAX);
        idle_end.min(self.absolute_expiry)
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at()
    }
}

/// A validated, slid session, with the epochs of its organisation's
/// authorisation and of its user's record, read in the same round trip. What a request needs only: its address and user
/// agent may be left out (`get` and `list_for_user` have them).
#[derive(Clone, Debug)]
pub struct Touched {
    pub session: SessionRecord,
    /// The organisation's authorisation epoch and the user's record epoch,
    /// together: a change of either means what an instance cached is stale.
    pub authz_epoch: String,
}

/// Why a session ended, as `sessionEvents` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Revoked,
    Expired,
}

/// What the store broadcasts to every instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// This session was revoked.
    Revoked(SessionId),
    /// The broadcast was interrupted: events may have been missed, so listeners
    /// must look their session up again.
    Resync,
}

/// The outcome of recording a failed login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts {
    pub count: u64,
    pub retry_after: Duration,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Remember a new session; the token is returned once and never stored.
    async fn create(&self, new: NewSession) -> StoreResult<(SessionToken, SessionRecord)>;

    /// Validate a session and slide its inactivity window, in one round trip.
    /// `None` when it does not exist or has ended. A store may slide it at most
    /// once per tenth of the window (a second at most), to spare writes.
    async fn touch(&self, id: &SessionId) -> StoreResult<Option<Touched>>;

    /// Read a session without sliding it.
    async fn get(&self, id: &SessionId) -> StoreResult<Option<SessionRecord>>;

    /// The live sessions of a user, newest first.
    async fn list_for_user(&self, user_id: Uuid) -> StoreResult<Vec<SessionRecord>>;

    /// End one session; whether it existed.
    async fn revoke(&self, id: &SessionId) -> StoreResult<bool>;

    /// End every session of a user but `keep`; how many were ended.
    async fn revoke_user(&self, user_id: Uuid, keep: Option<&SessionId>) -> StoreResult<u64>;

    /// Invalidate every cached authorisation of an organisation's users.
    async fn bump_authz_epoch(&self, organization_id: Uuid) -> StoreResult<()>;

    /// Replace a user's record epoch: their record changed, and every instance
    /// reads it again on the user's next request.
    async fn bump_user_epoch(&self, user_id: Uuid) -> StoreResult<()>;

    /// Count an attempt under `key` within `window`, atomically, before it is
    /// judged: of concurrent attempts exactly `limit` see a count within the
    /// limit. Once `limit` is reached the key stays locked for `window` from the
    /// last attempt.
    async fn record_failure(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> StoreResult<Attempts>;

    /// Count a request under `key` in a fixed window that starts with the
    /// window's first request: the count so far and when the window ends.
    /// Rate limits of API clients use it.
    async fn count_request(&self, key: &str, window: Duration) -> StoreResult<Attempts>;

    /// How many failures `key` holds now, and for how much longer.
    async fn failures(&self, keys: &[String]) -> StoreResult<Vec<Attempts>>;

    /// Forget the failures of `key` (after a successful login).
    async fn clear_failures(&self, key: &str) -> StoreResult<()>;

    /// Take back one attempt counted under `key` that turned out to succeed
    /// (a shared address keeps its allowance for failures).
    async fn forgive_attempt(&self, key: &str) -> StoreResult<()>;

    /// Note a second factor verified on a live session now (a step-up): its
    /// methods gain `method`. The session as it is now, or `None` if it ended.
    async fn record_second_factor(
        &self,
        id: &SessionId,
        method: AuthMethod,
    ) -> StoreResult<Option<SessionRecord>>;

    /// Revocations from every instance.
    fn subscribe(&self) -> broadcast::Receiver<StoreEvent>;

    /// Whether the store answers.
    async fn ping(&self) -> StoreResult<()>;

    /// `"redis"` or `"memory"`, for logs and readiness.
    fn kind(&self) -> &'static str;
}

pub(crate) fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A fresh random epoch, from the thread's generator (seeded from the
/// operating system) rather than a system call per value: the session check
/// asks for one per call.
pub(crate) fn new_epoch() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

/// Wait until the session `id` ends, and say why: revoked (on any instance) or
/// expired. A store outage is waited out; a broken broadcast is answered by
/// looking the session up again.
pub async fn wait_for_end(store: std::sync::Arc<dyn SessionStore>, id: SessionId) -> EndReason {
    let mut events = store.subscribe();
    loop {
        let record = match store.get(&id).await {
            Ok(Some(record)) => record,
            Ok(None) => return EndReason::Expired,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let until_expiry = (record.expires_at() - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + Duration::from_millis(50);
        let expiry = tokio::time::sleep(until_expiry);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                () = &mut expiry => break,
                event = events.recv() => match event {
                    Ok(StoreEvent::Revoked(revoked)) if revoked == id => return EndReason::Revoked,
                    Ok(StoreEvent::Revoked(_)) => {}
                    Ok(StoreEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if matches!(store.get(&id).await, Ok(None)) {
                            return EndReason::Revoked;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        events = store.subscribe();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe_and_ids_are_their_digest() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(SessionToken::parse(a.expose()).is_some());
        assert_ne!(a.id().0, a.expose());
        assert_eq!(
            a.id(),
            SessionToken::parse(a.expose())
                .map(|t| t.id())
                .expect("parsed")
        );
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        for raw in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}!", "a".repeat(42)),
        ] {
            assert!(SessionToken::parse(raw).is_none(), "{raw}");
        }
    }
}
