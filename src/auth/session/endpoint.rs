//! Where the Redis store connects, and a connection that follows the primary.
//!
//! `REDIS_URL` is either one server (`redis://`, or `rediss://` for TLS: a
//! standalone Redis, a managed endpoint, a proxy in front of a replicated
//! pair) or a set of Sentinels and the name of the primary they watch:
//!
//! ```text
//! redis+sentinel://[user:password@]host:26379[,host:26379...]/service[/db][?sentinel_username=…&sentinel_password=…]
//! rediss+sentinel://…   (TLS to the Sentinels and the Redis servers)
//! ```
//!
//! The credentials before `@` are the Redis servers'; the Sentinels' own, when
//! they require any, are the query parameters. With Sentinels, a call that
//! fails because the primary is gone or has become a replica makes the store ask
//! the Sentinels again, in the background, and move to the new primary.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisConnectionInfo, RedisError,
    RedisResult, ServerErrorKind, TlsMode,
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
};

/// The port Sentinels listen on unless told otherwise.
const SENTINEL_PORT: u16 = 26379;

pub enum Endpoint {
    Direct(redis::Client),
    Sentinel {
        client: tokio::sync::Mutex<SentinelClient>,
        service: String,
    },
}

impl Endpoint {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            (true, rest)
        } else {
            return Ok(Self::Direct(
                redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?,
            ));
        };
        let sentinel = SentinelUrl::parse(rest, tls)?;
        let service = sentinel.service.clone();
        let mut nodes =
            SentinelNodeConnectionInfo::default().set_redis_connection_info(sentinel.servers);
        if sentinel.tls {
            nodes = nodes.set_tls_mode(TlsMode::Secure);
        }
        let client = SentinelClient::build(
            sentinel.sentinels,
            sentinel.service,
            Some(nodes),
            SentinelServerType::Master,
        )
        .context("REDIS_URL names no usable Sentinel")?;
        Ok(Self::Sentinel {
            client: tokio::sync::Mutex::new(client),
            service,
        })
    }

    /// A client for the primary: asks the Sentinels where it is now.
    pub async fn client(&self) -> RedisResult<redis::Client> {
        match self {
            Self::Direct(client) => Ok(client.clone()),
            Self::Sentinel { client, .. } => client.lock().await.async_get_client().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Direct(client) => client.get_connection_info().addr().to_string(),
            Self::Sentinel { service, .. } => format!("the primary of {service}"),
        }
    }
}

/// The parts of a `redis+sentinel://` URL.
struct SentinelUrl {
    sentinels: Vec<ConnectionInfo>,
    service: String,
    /// How to log in to the Redis servers the Sentinels name.
    servers: RedisConnectionInfo,
    tls: bool,
}

impl SentinelUrl {
    /// `rest` is the URL after its scheme.
    fn parse(rest: &str, tls: bool) -> anyhow::Result<Self> {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        // Let the URL parser decode credentials, path and query; the host list,
        // which it cannot read, is parsed below.
        let rewritten = match userinfo {
            Some(userinfo) => format!("redis://{userinfo}@sentinels{tail}"),
            None => format!("redis://sentinels{tail}"),
        };
        let parsed = url::Url::parse(&rewritten).context("REDIS_URL is not a valid URL")?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .context("REDIS_URL credentials are not valid UTF-8")
        };
        let mut path = parsed
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty());
        let Some(service) = path.next() else {
            bail!("REDIS_URL names no Sentinel service: redis+sentinel://host:26379/<service>");
        };
        let service = decode(service)?;
        let db = match path.next() {
            Some(db) => db
                .parse::<i64>()
                .context("REDIS_URL: the database after the service is not a number")?,
            None => 0,
        };
        if path.next().is_some() {
            bail!("REDIS_URL: expected /<service>[/<db>] after the Sentinels");
        }

        let mut redis = RedisConnectionInfo::default().set_db(db);
        if !parsed.username().is_empty() {
            redis = redis.set_username(decode(parsed.username())?);
        }
        if let Some(password) = parsed.password() {
            redis = redis.set_password(decode(password)?);
        }
        let mut to_sentinel = RedisConnectionInfo::default();
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "sentinel_username" => to_sentinel = to_sentinel.set_username(value.as_ref()),
                "sentinel_password" => to_sentinel = to_sentinel.set_password(value.as_ref()),
                other => bail!("REDIS_URL: unknown parameter {other}"),
            }
        }

        let sentinels = hosts
            .split(',')
            .map(|host| {
                let (host, port) = split_host(host)?;
                let addr = if tls {
                    ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: false,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(host, port)
                };
                Ok(addr
                    .into_connection_info()?
                    .set_redis_settings(to_sentinel.clone()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            sentinels,
            service,
            servers: redis,
            tls,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host(text: &str) -> anyhow::Result<(String, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .context("REDIS_URL: unclosed [ in a Sentinel address")?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        bail!("REDIS_URL: a Sentinel address is empty");
    }
    let port = match port {
        Some(port) => port
            .parse()
            .with_context(|| format!("REDIS_URL: {port:?} is not a port"))?,
        None => SENTINEL_PORT,
    };
    Ok((host.to_owned(), port))
}

/// The store's connection: one multiplexed connection that reconnects by
/// itself, replaced by one to the new primary when the Sentinels name another.
pub struct Link {
    endpoint: Arc<Endpoint>,
    config: ConnectionManagerConfig,
    timeout: Duration,
    current: RwLock<ConnectionManager>,
    looking: AtomicBool,
}

impl Link {
    pub async fn connect(endpoint: Arc<Endpoint>, timeout: Duration) -> anyhow::Result<Arc<Self>> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = open(&endpoint, config.clone(), timeout)
            .await
            .with_context(|| format!("cannot connect to Redis at {}", endpoint.describe()))?;
        Ok(Arc::new(Self {
            endpoint,
            config,
            timeout,
            current: RwLock::new(connection),
            looking: AtomicBool::new(false),
        }))
    }

    /// The connection to use now (cheap: a handle on a shared connection).
    pub fn get(&self) -> ConnectionManager {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A call failed with `err` (`None`: it timed out). With Sentinels, when the
    /// primary may have moved, look it up again in the background, one lookup
    /// at a time; the calls meanwhile answer unavailable.
    pub fn failed(self: &Arc<Self>, err: Option<&RedisError>) {
        if matches!(*self.endpoint, Endpoint::Direct(_)) || !err.is_none_or(primary_may_have_moved)
        {
            return;
        }
        if self.looking.swap(true, Ordering::AcqRel) {
            return;
        }
        let link = self.clone();
        tokio::spawn(async move {
            match open(&link.endpoint, link.config.clone(), link.timeout).await {
                Ok(connection) => {
                    *link
                        .current
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = connection;
                    tracing::info!("connected to the Redis primary the Sentinels name");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the Sentinels name no reachable Redis primary yet");
                    // Do not hammer the Sentinels while they elect a new primary.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            link.looking.store(false, Ordering::Release);
        });
    }
}

/// Ask where the primary is and connect to it, within a bounded time.
async fn open(
    endpoint: &Endpoint,
    config: ConnectionManagerConfig,
    timeout: Duration,
) -> anyhow::Result<ConnectionManager> {
    let connect = async {
        let client = endpoint.client().await?;
        ConnectionManager::new_with_config(client, config).await
    };
    tokio::time::timeout(timeout * 4, connect)
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))?
        .map_err(Into::into)
}

/// Errors after which the primary may be elsewhere: it went away, or it was
/// demoted to a replica.
fn primary_may_have_moved(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || err.kind() == ErrorKind::Server(ServerErrorKind::MasterDown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> anyhow::Result<SentinelUrl> {
        let rest = url.split_once("://").unwrap().1;
        SentinelUrl::parse(rest, url.starts_with("rediss"))
    }

    #[test]
    fn reads_sentinels_service_database_and_credentials() {
        let url = parse(
            "redis+sentinel://app:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:26381/rollcall/2?sentinel_password=s3",
        )
        .unwrap();
        let addrs: Vec<String> = url.sentinels.iter().map(|s| s.addr().to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:26380", "sentinel-b:26379", "::1:26381"]);
        assert_eq!(url.service, "rollcall");
        assert_eq!(url.sentinels[0].redis_settings().password(), Some("s3"));
        assert_eq!(url.sentinels[0].redis_settings().username(), None);
        assert_eq!(
            (
                url.servers.db(),
                url.servers.username(),
                url.servers.password(),
                url.tls
            ),
            (2, Some("app"), Some("p@ss"), false)
        );
    }

    #[test]
    fn tls_reaches_sentinels_and_servers() {
        let url = parse("rediss+sentinel://s1:26379/rollcall").unwrap();
        assert!(matches!(
            url.sentinels[0].addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
        assert!(url.tls);
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (url, says) in [
            ("redis+sentinel://s1:26379", "names no Sentinel service"),
            ("redis+sentinel://s1:26379/", "names no Sentinel service"),
            ("redis+sentinel://s1:port/rollcall", "is not a port"),
            ("redis+sentinel://s1/rollcall/zero", "not a number"),
            ("redis+sentinel://s1/rollcall/0/more", "expected /<service>"),
            (
                "redis+sentinel://s1/rollcall?tls=yes",
                "unknown parameter tls",
            ),
            ("redis+sentinel://,s1/rollcall", "is empty"),
            ("redis+sentinel://[::1/rollcall", "unclosed"),
        ] {
            let err = parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} was taken"));
            assert!(format!("{err:#}").contains(says), "{url}: {err:#}");
        }
    }

    #[test]
    fn plain_urls_stay_direct() {
        assert!(matches!(
            Endpoint::parse("redis://127.0.0.1:6379/0").unwrap(),
            Endpoint::Direct(_)
        ));
        assert!(Endpoint::parse("http://127.0.0.1").is_err());
    }
}
