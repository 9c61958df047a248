//! The Redis session store, shared by every instance.
//!
//! Keys, all under the configured prefix:
//! - `s:{id}`: a hash per session, expiring with it (the shorter of the inactivity
//!   window and what remains of the absolute lifetime); its field `chk` holds
//!   what a request needs of the others as one string, for the session check;
//! - `us:{user}`: the set of a user's session ids, for listing and revoking;
//! - `authz:{organization}`: the organisation's authorisation epoch;
//! - `uep:{user}`: the user's record epoch (a day without use and it lapses;
//!   a new one then only makes instances read the record again);
//! - `fail:{key}`: failed-login counters;
//! - channel `revoked`: the ids of revoked sessions, for every instance's subscriptions.
//!
//! Every check-and-change is a Lua script, so it is atomic and costs one round trip;
//! times come from Redis's own clock, so instances with skewed clocks agree. The
//! common session check changes nothing and needs no script: see [`Checks`].

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::{
    Attempts, AuthMethod, NewSession, SessionId, SessionRecord, SessionStore, SessionToken,
    StoreError, StoreEvent, StoreResult, Touched,
    endpoint::{Endpoint, Link},
    methods_from_str, methods_to_string, millis_to_time, new_epoch,
};

/// Lua: `check_string(f)`, a session's check string (the hash's `chk`) from
/// its fields `uid`, `org`, `created`, `seen`, `abs`, `idle`, `amr`, `pend`
/// and `mfa`, in that order: they, separated by spaces. Every script that
/// writes one of those fields writes the string with it.
macro_rules! check_string_lua {
    () => {
        r"
local function check_string(f)
  return f[1] .. ' ' .. f[2] .. ' ' .. f[3] .. ' ' .. f[4] .. ' ' .. f[5] .. ' ' .. f[6] ..
    ' ' .. (f[7] or 'pwd') .. ' ' .. (f[8] or '0') .. ' ' .. (f[9] or '0')
end
"
    };
}

/// For each session key: reads the session, refuses it if ended, slides it, and
/// reads its organisation's authorisation epoch and its user's record epoch
/// (creating them if Redis lost them; both in one call, since each call
/// from the script costs Redis more than the command itself), all at once.
/// It answers, per key, false or the session's check string (see
/// [`check_string_lua`]; what a request needs, not the address and user
/// agent) followed by a space and the two epochs. One string costs the
/// client far less to parse than an array. It slides a session at most once
/// per tenth of its inactivity window (once a second at most): a burst of
/// requests writes once, and the session still ends no more than that much
/// before its sliding expiry. It writes the check string whenever it slides,
/// and when the stored one differs (a session stored before there was one).
/// A session an instance has checked before is read without it unless one
/// of those writes is due (see [`Checks`]).
const TOUCH: &str = concat!(
    check_string_lua!(),
    r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local replies = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'uid', 'org', 'created', 'seen', 'abs', 'idle', 'amr',
    'pend', 'mfa', 'chk')
  if not f[1] then
    replies[i] = false
  else
    local seen = tonumber(f[4])
    local abs = tonumber(f[5])
    local idle = tonumber(f[6])
    if now >= abs or now >= seen + idle then
      redis.call('DEL', key)
      replies[i] = false
    else
      local slide = now - seen >= math.min(1000, idle / 10)
      if slide then
        f[4] = tostring(now)
      end
      local check = check_string(f)
      if slide then
        redis.call('HSET', key, 'seen', now, 'chk', check)
        redis.call('PEXPIRE', key, math.min(idle, abs - now))
      elseif f[10] ~= check then
        redis.call('HSET', key, 'chk', check)
      end
      local epoch_key = ARGV[1] .. f[2]
      local user_key = ARGV[3] .. f[1]
      local epochs = redis.call('MGET', epoch_key, user_key)
      local epoch = epochs[1]
      if not epoch then
        epoch = ARGV[2]
        redis.call('SET', epoch_key, epoch)
      end
      local user_epoch = epochs[2]
      if not user_epoch then
        user_epoch = ARGV[2]
        redis.call('SET', user_key, user_epoch, 'PX', 86400000)
      end
      replies[i] = check .. ' ' .. epoch .. '/' .. user_epoch
    end
  end
end
return replies
"
);

const CREATE: &str = concat!(
    check_string_lua!(),
    r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local mfa = 0
if ARGV[10] == '1' then mfa = now end
local check = check_string({ARGV[1], ARGV[2], now, now, now + max, idle, ARGV[8], ARGV[9], mfa})
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'org', ARGV[2], 'created', now, 'seen', now,
  'abs', now + max, 'idle', idle, 'ip', ARGV[5], 'ua', ARGV[6], 'amr', ARGV[8],
  'pend', ARGV[9], 'mfa', mfa, 'chk', check)
redis.call('PEXPIRE', KEYS[1], math.min(idle, max))
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[2], max)
return now
"
);

/// A second factor verified on a live session: note when, and add its method.
const RECORD_SECOND_FACTOR: &str = concat!(
    check_string_lua!(),
    r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'uid', 'org', 'created', 'seen', 'abs', 'idle', 'amr',
  'pend', 'mfa')
if not f[1] then return false end
if now >= tonumber(f[5]) or now >= tonumber(f[4]) + tonumber(f[6]) then return false end
local amr = f[7] or 'pwd'
local found = false
for m in string.gmatch(amr, '[^,]+') do
  if m == ARGV[1] then found = true end
end
if not found then amr = amr .. ',' .. ARGV[1] end
f[7] = amr
f[9] = now
redis.call('HSET', KEYS[1], 'mfa', now, 'amr', amr, 'chk', check_string(f))
return now
"
);

const REVOKE: &str = r"
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. uid, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
";

const REVOKE_USER: &str = r"
local ended = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] then
    redis.call('SREM', KEYS[1], id)
    if redis.call('DEL', ARGV[1] .. id) == 1 then
      ended = ended + 1
      redis.call('PUBLISH', ARGV[3], id)
    end
  end
end
return ended
";

const RECORD_FAILURE: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 or count >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {count, redis.call('PTTL', KEYS[1])}
";

/// A fixed window: the first request of a window sets its end.
const COUNT_REQUEST: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
";

/// One fewer attempt, never below zero, keeping the key's expiry.
const FORGIVE_ATTEMPT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
";

struct Scripts {
    create: Script,
    record_second_factor: Script,
    revoke: Script,
    revoke_user: Script,
    record_failure: Script,
    count_request: Script,
    forgive_attempt: Script,
}

pub struct RedisStore {
    link: Arc<Link>,
    touches: mpsc::UnboundedSender<Waiting>,
    sender: tokio::task::AbortHandle,
    prefix: String,
    timeout: Duration,
    scripts: Arc<Scripts>,
    events: broadcast::Sender<StoreEvent>,
    relay: tokio::task::AbortHandle,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.relay.abort();
        self.sender.abort();
    }
}

impl RedisStore {
    /// Connect (see [`Endpoint`] for the URLs understood), and start relaying
    /// revocations from other instances.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let endpoint = Arc::new(Endpoint::parse(url)?);
        let link = Link::connect(endpoint.clone(), timeout).await?;
        let (events, _) = broadcast::channel(1024);
        let channel = revoked_channel(prefix);
        let relay =
            tokio::spawn(relay_revocations(endpoint, channel, events.clone())).abort_handle();
        let (touches, waiting) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_touches(
            link.clone(),
            Script::new(TOUCH),
            prefix.to_owned(),
            timeout,
            waiting,
        ))
        .abort_handle();
        Ok(Self {
            link,
            touches,
            sender,
            prefix: prefix.to_owned(),
            timeout,
            scripts: Arc::new(Scripts {
                create: Script::new(CREATE),
                record_second_factor: Script::new(RECORD_SECOND_FACTOR),
                revoke: Script::new(REVOKE),
                revoke_user: Script::new(REVOKE_USER),
                record_failure: Script::new(RECORD_FAILURE),
                count_request: Script::new(COUNT_REQUEST),
                forgive_attempt: Script::new(FORGIVE_ATTEMPT),
            }),
            events,
            relay,
        })
    }

    fn session_key(&self, id: &SessionId) -> String {
        session_key(&self.prefix, id)
    }

    fn user_key(&self, user_id: Uuid) -> String {
        format!("{}us:{}", self.prefix, user_id)
    }

    fn revoked_channel(&self) -> String {
        revoked_channel(&self.prefix)
    }

    /// Bound every call: a dead Redis must answer SERVICE_UNAVAILABLE quickly, not hang.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                self.link.failed(Some(&err));
                Err(StoreError(err.to_string()))
            }
            Err(_) => {
                self.link.failed(None);
                Err(StoreError("timed out".to_owned()))
            }
        }
    }

    /// A session from its fields in [`FIELDS`] order; address and user agent
    /// may be left out.
    fn record_from_fields(
        id: SessionId,
        fields: &[Option<impl AsRef<str>>],
    ) -> Option<SessionRecord> {
        let get = |i: usize| fields.get(i)?.as_ref().map(AsRef::as_ref);
        let number = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
        let optional = |i: usize| get(i).filter(|v| !v.is_empty()).map(str::to_owned);
        let mfa_verified_at = number(8).filter(|ms| *ms > 0).map(millis_to_time);
        Some(SessionRecord {
            id,
            user_id: get(0)?.parse().ok()?,
            organization_id: get(1)?.parse().ok()?,
            created_at: millis_to_time(number(2)?),
            last_seen_at: millis_to_time(number(3)?),
            absolute_expiry: millis_to_time(number(4)?),
            idle_timeout: Duration::from_millis(u64::try_from(number(5)?).ok()?),
            auth_methods: methods_from_str(get(6).unwrap_or_default()),
            mfa_pending: get(7) == Some("1"),
            mfa_verified_at,
            ip_address: optional(9),
            user_agent: optional(10),
        })
    }
}

/// A session check's answer: the session with its epochs, or `None` when it
/// does not exist or ended.
type TouchReply = StoreResult<Option<Touched>>;

/// A session check waiting to be sent: its session, when it was asked (its
/// answer is due within the timeout of that), and where to answer it.
type Waiting = (SessionId, Instant, oneshot::Sender<TouchReply>);

/// How long a user's record epoch lasts, in milliseconds (as the script sets it).
const USER_EPOCH_MS: u64 = 86_400_000;

/// The most session checks sent in one call.
const MOST_TOUCHES: usize = 128;

/// The most sessions whose user and organisation an instance remembers; past
/// it, it forgets them all and learns them again from the script.
const MOST_OWNERS: usize = 100_000;

/// Send the session checks of this instance: whatever arrived while the last
/// call was out goes in the next one. Under load that is one round trip for
/// many requests; alone, a check goes at once.
///
/// Every check is answered within `timeout` of being asked: a call may take
/// until the oldest check it carries is due, and checks already due when their
/// call would start (they waited out a call that hung) fail without one. One
/// timer per call, none per request.
async fn send_touches(
    link: Arc<Link>,
    script: Script,
    prefix: String,
    timeout: Duration,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
) {
    let mut checks = Checks {
        script,
        keys: Keys::new(&prefix),
        owners: HashMap::new(),
    };
    let mut batch: Vec<Waiting> = Vec::with_capacity(MOST_TOUCHES);
    while waiting.recv_many(&mut batch, MOST_TOUCHES).await > 0 {
        // Requests that gave up waiting need no call, nor do checks that are
        // already due (they waited out a call that hung): those fail at once.
        let now = Instant::now();
        let overdue = |(_, asked, answer): &mut Waiting| {
            answer.is_closed() || now.saturating_duration_since(*asked) >= timeout
        };
        for (_, _, answer) in batch.extract_if(.., overdue) {
            let _ = answer.send(Err(StoreError("timed out".to_owned())));
        }
        let Some(asked) = batch.iter().map(|(_, asked, _)| *asked).min() else {
            continue;
        };
        let due = tokio::time::Instant::from_std(asked + timeout);
        let ids: Vec<&SessionId> = batch.iter().map(|(id, _, _)| id).collect();
        let checked = tokio::time::timeout_at(due, checks.run(&link, &ids)).await;
        let failure = match checked {
            Ok(Ok(answers)) => {
                for ((_, _, answer), touched) in batch.drain(..).zip(answers) {
                    let _ = answer.send(Ok(touched));
                }
                None
            }
            Ok(Err(err)) => {
                link.failed(Some(&err));
                Some(err.to_string())
            }
            Err(_) => {
                link.failed(None);
                Some("timed out".to_owned())
            }
        };
        if let Some(failure) = failure {
            for (_, _, answer) in batch.drain(..) {
                let _ = answer.send(Err(StoreError(failure.clone())));
            }
        }
    }
}

/// The keys a session check reads, under the store's prefix.
struct Keys {
    prefix: String,
    epochs: String,
    user_epochs: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            epochs: format!("{prefix}authz:"),
            user_epochs: format!("{prefix}uep:"),
        }
    }

    fn session(&self, id: &SessionId) -> String {
        session_key(&self.prefix, id)
    }
}

/// The epoch keys of a session this instance has checked before: its user and
/// organisation never change, so its next check can read them beside it.
struct Owner {
    user_id: Uuid,
    organization_id: Uuid,
    /// `authz:{organization}` and `uep:{user}`, under the prefix.
    epoch_keys: [String; 2],
}

/// The session checks of one instance, and what they remember between calls.
///
/// A session seen before is checked without a script: one pipeline reads
/// Redis's clock, each such session's check string (`HGET` of its `chk`, one
/// string of what a request needs) and, with one `MGET`, the epochs of their
/// organisations and users. That reads what the script reads, in the same
/// order (the epochs after the session), and writes nothing. Whatever needs a
/// write, or is not what was expected, goes through [`TOUCH`] in a second
/// call: a session the instance has not seen, one due to slide (at most once
/// a tenth of its window, a second at most), one that has ended or has no
/// check string, and one whose epoch Redis lost. Each script call costs Redis
/// several times what the same reads cost a client.
struct Checks {
    script: Script,
    keys: Keys,
    owners: HashMap<SessionId, Owner>,
}

impl Checks {
    /// Check `ids`: each one's answer, in order.
    async fn run(
        &mut self,
        link: &Link,
        ids: &[&SessionId],
    ) -> redis::RedisResult<Vec<Option<Touched>>> {
        let mut answers: Vec<Option<Touched>> = vec![None; ids.len()];
        let (known, mut scripted): (Vec<usize>, Vec<usize>) =
            (0..ids.len()).partition(|&i| self.owners.contains_key(ids[i]));
        if !known.is_empty() {
            let read = self.read(link, ids, &known).await?;
            for (i, touched) in known.into_iter().zip(read) {
                match touched {
                    Some(touched) => answers[i] = Some(touched),
                    None => scripted.push(i),
                }
            }
        }
        if !scripted.is_empty() {
            let mut invocation = self.script.prepare_invoke();
            for &i in &scripted {
                invocation.key(self.keys.session(ids[i]));
            }
            invocation
                .arg(&self.keys.epochs)
                .arg(new_epoch())
                .arg(&self.keys.user_epochs);
            let replies: Vec<Option<String>> = invocation.invoke_async(&mut link.get()).await?;
            if replies.len() != scripted.len() {
                return Err(unexpected_reply());
            }
            for (i, reply) in scripted.into_iter().zip(replies) {
                let touched = reply.and_then(|reply| touched_from_reply(ids[i].clone(), &reply));
                match &touched {
                    Some(touched) => self.remember(&touched.session),
                    None => {
                        self.owners.remove(ids[i]);
                    }
                }
                answers[i] = touched;
            }
        }
        Ok(answers)
    }

    fn remember(&mut self, session: &SessionRecord) {
        if self.owners.contains_key(&session.id) {
            return;
        }
        if self.owners.len() >= MOST_OWNERS {
            self.owners.clear();
        }
        let epoch_keys = [
            format!("{}{}", self.keys.epochs, session.organization_id),
            format!("{}{}", self.keys.user_epochs, session.user_id),
        ];
        self.owners.insert(
            session.id.clone(),
            Owner {
                user_id: session.user_id,
                organization_id: session.organization_id,
                epoch_keys,
            },
        );
    }

    /// Read the sessions `known` (indexes into `ids`) and their epochs in one
    /// pipeline, without a script: each one's answer, or `None` where its
    /// check needs the script.
    async fn read(
        &self,
        link: &Link,
        ids: &[&SessionId],
        known: &[usize],
    ) -> redis::RedisResult<Vec<Option<Touched>>> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        let mut epoch_keys: Vec<&str> = Vec::with_capacity(known.len() * 2);
        let mut places: HashMap<&str, usize> = HashMap::with_capacity(known.len() * 2);
        let mut owners = Vec::with_capacity(known.len());
        for &i in known {
            pipe.cmd("HGET").arg(self.keys.session(ids[i])).arg("chk");
            let owner = &self.owners[ids[i]];
            let [organization, user] = owner.epoch_keys.each_ref().map(|key| {
                *places.entry(key.as_str()).or_insert_with(|| {
                    epoch_keys.push(key);
                    epoch_keys.len() - 1
                })
            });
            owners.push((owner, organization, user));
        }
        pipe.cmd("MGET").arg(&epoch_keys);
        let replies: Vec<redis::Value> = pipe.query_async(&mut link.get()).await?;
        let shape = unexpected_reply;
        let mut replies = replies.into_iter();
        let now = replies
            .next()
            .as_ref()
            .and_then(redis_millis)
            .ok_or_else(shape)?;
        let checks: Vec<redis::Value> = replies.by_ref().take(known.len()).collect();
        let epochs = match replies.next() {
            Some(redis::Value::Array(epochs)) if epochs.len() == epoch_keys.len() => epochs,
            _ => return Err(shape()),
        };
        if checks.len() != known.len() {
            return Err(shape());
        }
        Ok(known
            .iter()
            .zip(checks)
            .zip(owners)
            .map(|((&i, check), (owner, organization, user))| {
                let session = record_from_check(ids[i].clone(), text(&check)?)?;
                let organization = text(&epochs[organization])?;
                let user = text(&epochs[user])?;
                let seen = session.last_seen_at.timestamp_millis();
                let idle = i64::try_from(session.idle_timeout.as_millis()).unwrap_or(i64::MAX);
                let since = now - seen;
                let ended = now >= session.absolute_expiry.timestamp_millis() || since >= idle;
                let slide_due = since >= 1000 || since.saturating_mul(10) >= idle;
                let same_owner = (session.user_id, session.organization_id)
                    == (owner.user_id, owner.organization_id);
                (!ended && !slide_due && same_owner).then(|| Touched {
                    session,
                    authz_epoch: format!("{organization}/{user}"),
                })
            })
            .collect())
    }
}

/// A reply to the session check of another shape than asked for.
fn unexpected_reply() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "session check: a reply of another shape",
    ))
}

/// The fields in a session's check string: [`FIELDS`] without the address
/// and user agent.
const TOUCHED_FIELDS: usize = 9;

/// A reply's text, if it is one.
fn text(value: &redis::Value) -> Option<&str> {
    match value {
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        redis::Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

/// Redis's clock in milliseconds, from the reply of `TIME`.
fn redis_millis(value: &redis::Value) -> Option<i64> {
    let redis::Value::Array(parts) = value else {
        return None;
    };
    let [seconds, micros] = parts.as_slice() else {
        return None;
    };
    let seconds: i64 = text(seconds)?.parse().ok()?;
    let micros: i64 = text(micros)?.parse().ok()?;
    Some(seconds * 1000 + micros / 1000)
}

/// A session from its check string (see [`check_string_lua`]); `None` if it
/// is not of that shape.
fn record_from_check(id: SessionId, check: &str) -> Option<SessionRecord> {
    let mut parts = check.split(' ');
    let fields: [Option<&str>; TOUCHED_FIELDS] = std::array::from_fn(|_| parts.next());
    if fields.iter().any(Option::is_none) || parts.next().is_some() {
        return None;
    }
    RedisStore::record_from_fields(id, &fields)
}

/// A script's answer to a session check: the session's check string and its
/// epochs, separated by a space (see [`TOUCH`]); `None` if it is not of that
/// shape.
fn touched_from_reply(id: SessionId, reply: &str) -> Option<Touched> {
    let (check, authz_epoch) = reply.rsplit_once(' ')?;
    Some(Touched {
        session: record_from_check(id, check)?,
        authz_epoch: authz_epoch.to_owned(),
    })
}

fn session_key(prefix: &str, id: &SessionId) -> String {
    format!("{prefix}s:{}", id.0)
}

fn revoked_channel(prefix: &str) -> String {
    format!("{prefix}revoked")
}

const FIELDS: [&str; 11] = [
    "uid", "org", "created", "seen", "abs", "idle", "amr", "pend", "mfa", "ip", "ua",
];

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, new: NewSession) -> StoreResult<(SessionToken, SessionRecord)> {
        let token = SessionToken::generate();
        let id = token.id();
        let idle_ms = new.idle_timeout.as_millis() as u64;
        let max_ms = new.max_lifetime.as_millis() as u64;
        let mut connection = self.link.get();
        let mut invocation = self.scripts.create.key(self.session_key(&id));
        invocation
            .key(self.user_key(new.user_id))
            .arg(new.user_id.to_string())
            .arg(new.organization_id.to_string())
            .arg(idle_ms)
            .arg(max_ms)
            .arg(new.ip_address.clone().unwrap_or_default())
            .arg(new.user_agent.clone().unwrap_or_default())
            .arg(&id.0)
            .arg(methods_to_string(&new.auth_methods))
            .arg(if new.mfa_pending { "1" } else { "0" })
            .arg(if new.mfa_verified { "1" } else { "0" });
        let now: i64 = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        let created = millis_to_time(now);
        let record = SessionRecord {
            id,
            user_id: new.user_id,
            organization_id: new.organization_id,
            created_at: created,
            last_seen_at: created,
            absolute_expiry: created
                + chrono::Duration::from_std(new.max_lifetime).unwrap_or(chrono::Duration::MAX),
            idle_timeout: new.idle_timeout,
            ip_address: new.ip_address,
            user_agent: new.user_agent,
            auth_methods: new.auth_methods,
            mfa_pending: new.mfa_pending,
            mfa_verified_at: new.mfa_verified.then_some(created),
        };
        Ok((token, record))
    }

    async fn touch(&self, id: &SessionId) -> StoreResult<Option<Touched>> {
        let (answer, answered) = oneshot::channel();
        // The sending task bounds the wait (see [`send_touches`]).
        self.touches
            .send((id.clone(), Instant::now(), answer))
            .map_err(|_| StoreError("the session checks stopped".to_owned()))?;
        answered
            .await
            .map_err(|_| StoreError("the session check was dropped".to_owned()))?
    }

    async fn get(&self, id: &SessionId) -> StoreResult<Option<SessionRecord>> {
        let mut connection = self.link.get();
        let fields: Vec<Option<String>> = self
            .bounded(
                redis::cmd("HMGET")
                    .arg(self.session_key(id))
                    .arg(&FIELDS[..])
                    .query_async(&mut connection),
            )
            .await?;
        let now = chrono::Utc::now();
        Ok(Self::record_from_fields(id.clone(), &fields).filter(|s| !s.is_expired(now)))
    }

    async fn list_for_user(&self, user_id: Uuid) -> StoreResult<Vec<SessionRecord>> {
        let mut connection = self.link.get();
        let user_key = self.user_key(user_id);
        let ids: Vec<String> = self.bounded(connection.smembers(&user_key)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.session_key(&SessionId(id.clone())))
                .arg(&FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> =
            self.bounded(pipe.query_async(&mut connection)).await?;
        let now = chrono::Utc::now();
        let mut sessions = Vec::new();
        let mut gone = Vec::new();
        for (id, fields) in ids.into_iter().zip(rows) {
            match Self::record_from_fields(SessionId(id.clone()), &fields) {
                Some(session) if !session.is_expired(now) => sessions.push(session),
                _ => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Sessions that expired on their own leave their id behind in the set.
            let _: i64 = self.bounded(connection.srem(&user_key, gone)).await?;
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn revoke(&self, id: &SessionId) -> StoreResult<bool> {
        let mut connection = self.link.get();
        let mut invocation = self.scripts.revoke.key(self.session_key(id));
        invocation
            .arg(format!("{}us:", self.prefix))
            .arg(&id.0)
            .arg(self.revoked_channel());
        let ended: i64 = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok(ended == 1)
    }

    async fn revoke_user(&self, user_id: Uuid, keep: Option<&SessionId>) -> StoreResult<u64> {
        let mut connection = self.link.get();
        let mut invocation = self.scripts.revoke_user.key(self.user_key(user_id));
        invocation
            .arg(format!("{}s:", self.prefix))
            .arg(keep.map(|k| k.0.as_str()).unwrap_or(""))
            .arg(self.revoked_channel());
        self.bounded(invocation.invoke_async(&mut connection)).await
    }

    async fn record_second_factor(
        &self,
        id: &SessionId,
        method: AuthMethod,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut connection = self.link.get();
        let mut invocation = self.scripts.record_second_factor.key(self.session_key(id));
        invocation.arg(method.as_str());
        let verified: Option<i64> = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        match verified {
            Some(_) => self.get(id).await,
            None => Ok(None),
        }
    }

    async fn bump_authz_epoch(&self, organization_id: Uuid) -> StoreResult<()> {
        let mut connection = self.link.get();
        let key = format!("{}authz:{}", self.prefix, organization_id);
        self.bounded(connection.set::<_, _, ()>(key, new_epoch()))
            .await
    }

    async fn bump_user_epoch(&self, user_id: Uuid) -> StoreResult<()> {
        let mut connection = self.link.get();
        let key = format!("{}uep:{}", self.prefix, user_id);
        self.bounded(connection.pset_ex::<_, _, ()>(key, new_epoch(), USER_EPOCH_MS))
            .await
    }

    async fn record_failure(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> StoreResult<Attempts> {
        let mut connection = self.link.get();
        let mut invocation = self
            .scripts
            .record_failure
            .key(format!("{}fail:{}", self.prefix, key));
        invocation.arg(limit).arg(window.as_millis() as u64);
        let (count, ttl): (u64, i64) = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok(Attempts {
            count,
            retry_after: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn count_request(&self, key: &str, window: Duration) -> StoreResult<Attempts> {
        let mut connection = self.link.get();
        let mut invocation = self
            .scripts
            .count_request
            .key(format!("{}rate:{}", self.prefix, key));
        invocation.arg(window.as_millis() as u64);
        let (count, ttl): (u64, i64) = self
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok(Attempts {
            count,
            retry_after: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn failures(&self, keys: &[String]) -> StoreResult<Vec<Attempts>> {
        let mut connection = self.link.get();
        let mut pipe = redis::pipe();
        for key in keys {
            let key = format!("{}fail:{}", self.prefix, key);
            pipe.get(&key).pttl(&key);
        }
        let values: Vec<(Option<u64>, i64)> = {
            let flat: Vec<redis::Value> = self.bounded(pipe.query_async(&mut connection)).await?;
            flat.chunks(2)
                .map(|pair| {
                    let count = redis::from_redis_value::<Option<u64>>(pair[0].clone())
                        .ok()
                        .flatten();
                    let ttl = redis::from_redis_value::<i64>(pair[1].clone()).unwrap_or(-2);
                    (count, ttl)
                })
                .collect()
        };
        Ok(values
            .into_iter()
            .map(|(count, ttl)| Attempts {
                count: count.unwrap_or(0),
                retry_after: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            })
            .collect())
    }

    async fn clear_failures(&self, key: &str) -> StoreResult<()> {
        let mut connection = self.link.get();
        self.bounded(connection.del::<_, ()>(format!("{}fail:{}", self.prefix, key)))
            .await
    }

    async fn forgive_attempt(&self, key: &str) -> StoreResult<()> {
        let mut connection = self.link.get();
        let invocation = self
            .scripts
            .forgive_attempt
            .key(format!("{}fail:{}", self.prefix, key));
        self.bounded(invocation.invoke_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut connection = self.link.get();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut connection))
            .await
            .map(drop)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// Relay the revocation channel to this instance's subscribers, reconnecting with
/// backoff. Pub/sub over RESP2 does not reconnect by itself, and what was published
/// while disconnected is lost: after a reconnect, listeners are told to resync.
async fn relay_revocations(
    endpoint: Arc<Endpoint>,
    channel: String,
    events: broadcast::Sender<StoreEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        let subscribed = async {
            // Asked anew each time: with Sentinels the primary may have moved.
            let mut pubsub = endpoint.client().await?.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
            Ok(Ok(mut pubsub)) => {
                backoff = Duration::from_millis(100);
                if connected_before {
                    tracing::info!("revocation channel reconnected");
                    let _ = events.send(StoreEvent::Resync);
                }
                connected_before = true;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    if let Ok(id) = message.get_payload::<String>() {
                        let _ = events.send(StoreEvent::Revoked(SessionId(id)));
                    }
                }
                tracing::warn!("revocation channel lost; reconnecting");
                let _ = events.send(StoreEvent::Resync);
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot subscribe to revocations"),
            Err(_) => tracing::warn!("timed out subscribing to revocations"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_check_reply_reads_back_into_the_session_and_its_epochs() {
        let (user, organization) = (Uuid::now_v7(), Uuid::now_v7());
        let reply =
            format!("{user} {organization} 1000 2000 43201000 1800000 pwd,otp 0 1500 e1a2/0b3c");
        let touched = touched_from_reply(SessionId("id".to_owned()), &reply).expect("parsed");
        assert_eq!(touched.session.user_id, user);
        assert_eq!(touched.session.organization_id, organization);
        assert_eq!(touched.session.created_at.timestamp_millis(), 1000);
        assert_eq!(touched.session.last_seen_at.timestamp_millis(), 2000);
        assert_eq!(
            touched.session.absolute_expiry.timestamp_millis(),
            43_201_000
        );
        assert_eq!(touched.session.idle_timeout, Duration::from_secs(30 * 60));
        assert_eq!(
            touched.session.auth_methods,
            [AuthMethod::Password, AuthMethod::Otp]
        );
        assert!(!touched.session.mfa_pending);
        assert_eq!(
            touched
                .session
                .mfa_verified_at
                .map(|t| t.timestamp_millis()),
            Some(1500)
        );
        assert_eq!(touched.authz_epoch, "e1a2/0b3c");
    }

    #[test]
    fn a_reply_of_another_shape_opens_no_session() {
        let user = Uuid::now_v7();
        for reply in [
            String::new(),
            format!("{user}"),
            format!("{user} not-a-uuid 1 2 3 4 pwd 0 0 e/u"),
            format!("{user} {user} 1 2 3 -4 pwd 0 0 e/u"),
            format!("{user} {user} 1 2 three 4 pwd 0 0 e/u"),
            format!("{user} {user} 1 2 3 4 pwd 0 0"),
            format!("{user} {user} 1 2 3 4 pwd 0 0 extra e/u"),
        ] {
            assert!(
                touched_from_reply(SessionId("id".to_owned()), &reply).is_none(),
                "{reply:?}"
            );
        }
    }
}
