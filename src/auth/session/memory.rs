//! The in-process session store: the embedded default when `REDIS_URL` is unset.
//! It serves one instance only; revocations reach subscriptions through an
//! in-process broadcast.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    Attempts, AuthMethod, NewSession, SessionId, SessionRecord, SessionStore, SessionToken,
    StoreEvent, StoreResult, Touched, new_epoch,
};

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, SessionRecord>,
    epochs: HashMap<Uuid, String>,
    user_epochs: HashMap<Uuid, String>,
    failures: HashMap<String, (u64, Instant)>,
    /// Fixed-window request counts, keyed by client.
    requests: HashMap<String, (u64, Instant)>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    events: broadcast::Sender<StoreEvent>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            events: broadcast::channel(1024).0,
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another request panicked mid-update of plain
        // maps; the data is still consistent enough to serve.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, new: NewSession) -> StoreResult<(SessionToken, SessionRecord)> {
        let token = SessionToken::generate();
        let now = Utc::now();
        let record = SessionRecord {
            id: token.id(),
            user_id: new.user_id,
            organization_id: new.organization_id,
            created_at: now,
            last_seen_at: now,
            absolute_expiry: now
                + chrono::Duration::from_std(new.max_lifetime).unwrap_or(chrono::Duration::MAX),
            idle_timeout: new.idle_timeout,
            ip_address: new.ip_address,
            user_agent: new.user_agent,
            auth_methods: new.auth_methods,
            mfa_pending: new.mfa_pending,
            mfa_verified_at: new.mfa_verified.then_some(now),
        };
        let mut state = self.lock();
        let now = Utc::now();
        state.sessions.retain(|_, s| !s.is_expired(now));
        state.sessions.insert(record.id.clone(), record.clone());
        Ok((token, record))
    }

    async fn touch(&self, id: &SessionId) -> StoreResult<Option<Touched>> {
        let now = Utc::now();
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(id) else {
            return Ok(None);
        };
        if session.is_expired(now) {
            state.sessions.remove(id);
            return Ok(None);
        }
        session.last_seen_at = now;
        let session = session.clone();
        let organization = state
            .epochs
            .entry(session.organization_id)
            .or_insert_with(new_epoch)
            .clone();
        let user = state
            .user_epochs
            .entry(session.user_id)
            .or_insert_with(new_epoch)
            .clone();
        let authz_epoch = format!("{organization}/{user}");
        Ok(Some(Touched {
            session,
            authz_epoch,
        }))
    }

    async fn get(&self, id: &SessionId) -> StoreResult<Option<SessionRecord>> {
        let now = Utc::now();
        Ok(self
            .lock()
            .sessions
            .get(id)
            .filter(|s| !s.is_expired(now))
            .cloned())
    }

    async fn list_for_user(&self, user_id: Uuid) -> StoreResult<Vec<SessionRecord>> {
        let now = Utc::now();
        let mut sessions: Vec<SessionRecord> = self
            .lock()
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && !s.is_expired(now))
            .cloned()
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn revoke(&self, id: &SessionId) -> StoreResult<bool> {
        let removed = self.lock().sessions.remove(id).is_some();
        if removed {
            let _ = self.events.send(StoreEvent::Revoked(id.clone()));
        }
        Ok(removed)
    }

    async fn revoke_user(&self, user_id: Uuid, keep: Option<&SessionId>) -> StoreResult<u64> {
        let ended: Vec<SessionId> = {
            let mut state = self.lock();
            let ids: Vec<SessionId> = state
                .sessions
                .values()
                .filter(|s| s.user_id == user_id && Some(&s.id) != keep)
                .map(|s| s.id.clone())
                .collect();
            for id in &ids {
                state.sessions.remove(id);
            }
            ids
        };
        for id in &ended {
            let _ = self.events.send(StoreEvent::Revoked(id.clone()));
        }
        Ok(ended.len() as u64)
    }

    async fn bump_authz_epoch(&self, organization_id: Uuid) -> StoreResult<()> {
        self.lock().epochs.insert(organization_id, new_epoch());
        Ok(())
    }

    async fn bump_user_epoch(&self, user_id: Uuid) -> StoreResult<()> {
        self.lock().user_epochs.insert(user_id, new_epoch());
        Ok(())
    }

    async fn record_failure(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> StoreResult<Attempts> {
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state
            .failures
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        if entry.0 >= limit {
            entry.1 = now + window;
        }
        Ok(Attempts {
            count: entry.0,
            retry_after: entry.1.saturating_duration_since(now),
        })
    }

    async fn count_request(&self, key: &str, window: Duration) -> StoreResult<Attempts> {
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state
            .requests
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(Attempts {
            count: entry.0,
            retry_after: entry.1.saturating_duration_since(now),
        })
    }

    async fn failures(&self, keys: &[String]) -> StoreResult<Vec<Attempts>> {
        let now = Instant::now();
        let state = self.lock();
        Ok(keys
            .iter()
            .map(|key| match state.failures.get(key) {
                Some((count, until)) if *until > now => Attempts {
                    count: *count,
                    retry_after: until.saturating_duration_since(now),
                },
                _ => Attempts {
                    count: 0,
                    retry_after: Duration::ZERO,
                },
            })
            .collect())
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        self.lock().failures.remove(key);
        Ok(())
    }

    async fn forgive_attempt(&self, key: &str) -> StoreResult<()> {
        if let Some(entry) = self.lock().failures.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn record_second_factor(
        &self,
        id: &SessionId,
        method: AuthMethod,
    ) -> StoreResult<Option<SessionRecord>> {
        let now = Utc::now();
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(id).filter(|s| !s.is_expired(now)) else {
            return Ok(None);
        };
        session.mfa_verified_at = Some(now);
        if !session.auth_methods.contains(&method) {
            session.auth_methods.push(method);
        }
        Ok(Some(session.clone()))
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
