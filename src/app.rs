//! Building the application from a [`Config`]: database, migrations, session
//! store, schema, routes. Tests build it exactly as `main` does, on a free port.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use poem::{
    Endpoint, EndpointExt, IntoResponse, Route, get,
    listener::{Acceptor, Listener, TcpListener},
    middleware::{CatchPanic, Cors},
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{
        mfa::SecretKey,
        password::Hasher,
        session::{SessionStore, memory::MemoryStore, redis::RedisStore},
    },
    config::Config,
    graphql::{AppSchema, SocketSchema, build_schema, build_socket_schema},
    http,
    import::feeds::Scheduler,
    import::jobs::Runner,
    mail::{NoTransport, SmtpMailer},
    outbound::Outbound,
    services::sweeps::Sweeper,
    services::{
        accounts,
        auth::Authenticator,
        outbox::{Deliverer, Transport},
        passkeys::Passkeys,
    },
    siem,
    sms::{Channels, SmsWebhook},
    state::AppState,
    webhook::WebhookTransport,
};

/// Connect to the database with bounded waits, and make SQLite fit for concurrent use.
pub async fn connect_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(config.database_url.clone());
    options
        .max_connections(config.db_pool_size)
        .min_connections(1)
        .connect_timeout(config.db_timeout())
        .acquire_timeout(config.db_timeout())
        .idle_timeout(Duration::from_secs(300))
        .statement_timeout(Duration::from_secs(config.db_statement_timeout_seconds))
        .sqlx_logging(false);
    let mut db = Database::connect(options)
        .await
        .with_context(|| "cannot connect to the database")?;
    db.set_metric_callback(http::metrics::record_query);
    if config.is_sqlite() {
        // WAL lets readers proceed while an import writes; foreign keys are off by
        // default in SQLite.
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA busy_timeout = 5000",
        ] {
            db.execute_unprepared(pragma).await?;
        }
    }
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("migrations failed")
}

/// The configured session store: Redis when `REDIS_URL` is set, else in process.
pub async fn connect_store(config: &Config) -> anyhow::Result<Arc<dyn SessionStore>> {
    Ok(match &config.redis_url {
        Some(url) => {
            let store =
                RedisStore::connect(url, &config.redis_prefix, config.redis_timeout()).await?;
            tracing::info!("sessions are kept in Redis");
            Arc::new(store)
        }
        None => {
            tracing::warn!(
                "REDIS_URL is not set: sessions are kept in process; run one instance only"
            );
            Arc::new(MemoryStore::default())
        }
    })
}

/// The key for secrets at rest: `ROLLCALL_SECRET_KEY`; with the embedded
/// SQLite database and no key set, the one kept beside the database (made on
/// first start, readable by its owner only).
pub fn secret_key(config: &Config) -> anyhow::Result<SecretKey> {
    if let Some(encoded) = &config.secret_key {
        return SecretKey::parse(encoded)
            .map_err(|why| anyhow::anyhow!("ROLLCALL_SECRET_KEY {why}: give 32 bytes in base64"));
    }
    if !config.is_sqlite() {
        anyhow::bail!(
            "ROLLCALL_SECRET_KEY is not set: give every instance the same 32 random bytes in \
             base64 (openssl rand -base64 32); it encrypts second-factor secrets"
        );
    }
    let Some(database) = config.sqlite_path() else {
        tracing::warn!("in-memory database: second-factor secrets use a key that ends with it");
        return SecretKey::parse(&SecretKey::generate_encoded()).map_err(anyhow::Error::msg);
    };
    let mut path = database.into_os_string();
    path.push(".key");
    let path = std::path::PathBuf::from(path);
    if !path.exists() {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot create the key file {}", path.display()))?;
        writeln!(file, "{}", SecretKey::generate_encoded())?;
        tracing::info!(file = %path.display(), "made the key for secrets at rest; keep it with the database's backups, apart from them");
    }
    let encoded = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    SecretKey::parse(&encoded)
        .map_err(|why| anyhow::anyhow!("the key file {} {why}", path.display()))
}

/// The relying party of passkeys: the configured id and origins, else the
/// public URL's host and origin.
fn passkeys(config: &Config, public_url: &str) -> anyhow::Result<Passkeys> {
    let public = url::Url::parse(public_url).context("the public URL is not a URL")?;
    let origins = if config.webauthn_origins.is_empty() {
        vec![public.clone()]
    } else {
        config
            .webauthn_origins
            .iter()
            .map(|o| {
                url::Url::parse(o.trim())
                    .with_context(|| format!("ROLLCALL_WEBAUTHN_ORIGINS: {o:?} is not a URL"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let rp_id = match &config.webauthn_rp_id {
        Some(id) => id.clone(),
        None => public.host_str().unwrap_or_default().to_owned(),
    };
    Ok(Passkeys::new(&rp_id, &origins))
}

pub struct Application {
    port: u16,
    acceptor: poem::listener::TcpAcceptor,
    /// The separate metrics address, when configured.
    metrics: Option<(
        poem::listener::TcpAcceptor,
        poem::endpoint::BoxEndpoint<'static>,
    )>,
    app: poem::endpoint::BoxEndpoint<'static>,
    shutdown_timeout: Duration,
    deliverer: Deliverer,
    runner: Runner,
    scheduler: Scheduler,
    forwarder: Option<siem::Forwarder>,
    sweeper: Sweeper,
    pub state: AppState,
}

impl Application {
    /// Connect, migrate, bootstrap an empty database, and bind the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Refused before anything else: a misconfigured instance should not
        // touch the database.
        let secrets = secret_key(&config)?;
        let db = connect_database(&config).await?;
        if config.is_sqlite() {
            tracing::info!(
                "using the embedded SQLite database ({})",
                redact_url(&config.database_url)
            );
        }
        migrate(&db).await?;
        let store = connect_store(&config).await?;
        let hasher = Hasher::new(config.hash_permits());
        if let Some(admin) = accounts::bootstrap(&db, &hasher).await?
            && let Some(password) = admin.generated_password
        {
            // Printed once, to the terminal, never to the log.
            println!(
                "\nCreated the first super admin.\n  email:    {}\n  password: {}\nChange it at first login; it is not shown again.\n",
                admin.user.email,
                password.expose()
            );
        }
        let acceptor = TcpListener::bind(config.bind).into_acceptor().await?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no address")?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_owned();
        let passkeys = passkeys(&config, &public_url)?;
        let auth = Arc::new(
            Authenticator::new(
                db.clone(),
                store,
                hasher,
                secrets,
                passkeys,
                config.session_max(),
            )
            .with_client_rate_limit(config.api_client_rate_limit),
        );
        let email: Arc<dyn Transport> = match &config.smtp_url {
            Some(url) => {
                tracing::info!("email is delivered by SMTP");
                Arc::new(SmtpMailer::new(url, &config.mail_from)?)
            }
            None => {
                tracing::warn!(
                    "ROLLCALL_SMTP_URL is not set: emails are not sent, only marked undelivered"
                );
                Arc::new(NoTransport)
            }
        };
        let sms: Arc<dyn Transport> = match &config.sms_webhook_url {
            Some(url) => {
                tracing::info!("text messages are delivered by webhook");
                Arc::new(SmsWebhook::new(url)?)
            }
            None => Arc::new(NoTransport),
        };
        let outbound = Arc::new(Outbound::from_config(&config)?);
        let webhook = Arc::new(WebhookTransport::new(
            db.clone(),
            auth.secrets().clone(),
            (*outbound).clone(),
        )?);
        let transport: Arc<dyn Transport> = Arc::new(Channels {
            email,
            sms,
            webhook,
        });
        let outbox_wake = Arc::new(Notify::new());
        let deliverer = Deliverer::new(
            db.clone(),
            transport,
            outbox_wake.clone(),
            Duration::from_secs(config.outbox_retry_seconds.max(1)),
        );
        let import_wake = Arc::new(Notify::new());
        let runner = Runner::new(
            db.clone(),
            auth.store().clone(),
            public_url.clone(),
            import_wake.clone(),
            Duration::from_secs(config.import_lease_seconds.max(1)),
        );
        let forwarder = match &config.audit_syslog_url {
            Some(url) => {
                let roots = match &config.outbound_ca_file {
                    Some(path) => Some(std::fs::read(path).with_context(|| {
                        format!("ROLLCALL_OUTBOUND_CA_FILE {}", path.display())
                    })?),
                    None => None,
                };
                let target = siem::SyslogTarget::parse(url, roots.as_deref())?;
                tracing::info!("the audit trail is forwarded to syslog");
                Some(siem::Forwarder::new(
                    db.clone(),
                    target,
                    siem::hostname(&public_url),
                    Duration::from_secs(config.outbox_retry_seconds.max(1)),
                ))
            }
            None => None,
        };
        let config = Arc::new(config);
        let state = AppState {
            db,
            auth,
            config: config.clone(),
            public_url,
            outbox_wake,
            import_wake,
            outbound,
            roles: Arc::default(),
        };
        let scheduler = Scheduler {
            feeds: state.feeds(),
        };
        let sweeper = Sweeper {
            db: state.db.clone(),
            store: state.auth.store().clone(),
            interval: Duration::from_secs(config.sweep_interval_seconds.max(1)),
            outbox_wake: state.outbox_wake.clone(),
        };
        let schema = build_schema(Some(state.clone()));
        let socket_schema = build_socket_schema(state.clone());
        http::metrics::handle();
        let app = routes(state.clone(), schema, socket_schema);
        tracing::info!(%address, "listening");
        let metrics = match config.metrics_bind {
            Some(bind) => {
                let acceptor = TcpListener::bind(bind).into_acceptor().await?;
                tracing::info!(%bind, "metrics are served on their own address");
                let route = Route::new()
                    .at("/metrics", get(http::metrics::render))
                    .data(state.clone())
                    .boxed();
                Some((acceptor, route))
            }
            None => {
                if config.metrics_token.is_none() {
                    tracing::info!(
                        "metrics are not served: set ROLLCALL_METRICS_TOKEN or ROLLCALL_METRICS_BIND"
                    );
                }
                None
            }
        };
        Ok(Self {
            port: address.port(),
            acceptor,
            metrics,
            app,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_seconds),
            deliverer,
            runner,
            scheduler,
            forwarder,
            sweeper,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stopping = CancellationToken::new();
        let worker = tokio::spawn(self.deliverer.run(stopping.clone().cancelled_owned()));
        let imports = tokio::spawn(self.runner.run(stopping.clone().cancelled_owned()));
        let feeds = tokio::spawn(self.scheduler.run(stopping.clone().cancelled_owned()));
        let sweeps = tokio::spawn(self.sweeper.run(stopping.clone().cancelled_owned()));
        let forwarder = self
            .forwarder
            .map(|f| tokio::spawn(f.run(stopping.clone().cancelled_owned())));
        let stop_serving = CancellationToken::new();
        let metrics = self.metrics.map(|(acceptor, route)| {
            tokio::spawn(
                poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    route,
                    stop_serving.clone().cancelled_owned(),
                    Some(self.shutdown_timeout),
                ),
            )
        });
        let served = poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, stop, Some(self.shutdown_timeout))
            .await;
        stop_serving.cancel();
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        // Hand a running import back so another instance takes it over at once.
        stopping.cancel();
        let _ = tokio::join!(worker, imports, feeds, sweeps);
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn routes(
    state: AppState,
    schema: AppSchema,
    socket_schema: SocketSchema,
) -> poem::endpoint::BoxEndpoint<'static> {
    let route = Route::new()
        .at(
            "/graphql",
            get(http::graphql::endpoint).post(http::graphql::endpoint),
        )
        .at("/graphql/ws", get(http::ws::endpoint))
        .at("/graphiql/assets/:name", get(http::graphiql::asset))
        .at("/healthz", get(http::health::healthz))
        .at("/readyz", get(http::health::readyz))
        .at("/metrics", get(http::metrics::guarded))
        .at("/imports/templates/:file", get(http::downloads::template))
        .at("/exports/audit.ndjson", get(http::downloads::audit_trail))
        .at(
            "/exports/access-reviews/:file",
            get(http::downloads::access_review),
        )
        .at("/exports/:file", get(http::downloads::staff))
        .at("/imports/:id/:file", get(http::downloads::failed_rows))
        .at(
            "/invite/:token",
            get(http::invite::show).post(http::invite::submit),
        )
        .at(
            "/reset-password/:token",
            get(http::invite::show).post(http::invite::submit),
        )
        .at("/projects/:id/qr.svg", get(http::patient_page::qr_code))
        .at("/sso/:id/start", get(http::sso::start))
        .at("/sso/callback", get(http::sso::callback))
        .at("/scim/v2/*path", http::scim::endpoint)
        .at(
            "/sso/backchannel-logout",
            poem::post(http::sso::backchannel_logout),
        )
        .at(
            "/p/:token",
            get(http::patient_page::show).post(http::patient_page::submit),
        );
    let cors = (!state.config.cors_origins.is_empty()).then(|| {
        Cors::new()
            .allow_origins(state.config.cors_origins.iter().map(String::as_str))
            .allow_credentials(true)
            .allow_headers([
                "content-type",
                "authorization",
                http::graphql::CSRF_HEADER,
                http::ORGANIZATION_HEADER,
            ])
            .allow_methods([poem::http::Method::GET, poem::http::Method::POST])
    });
    let secure = state.config.secure_cookies;
    route
        .data(state)
        .data(schema)
        .data(socket_schema)
        .with(CatchPanic::new())
        .around(move |next, req| http::security_headers(next, req, secure))
        .around(log_request)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .boxed()
}

/// One structured log line per request: method, path (never the query string, nor
/// the token of a link), status and duration.
async fn log_request<E: Endpoint>(next: E, req: poem::Request) -> poem::Result<poem::Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = http::loggable_path(req.uri().path());
    let result = next.call(req).await.map(IntoResponse::into_response);
    let status = match &result {
        Ok(response) => response.status(),
        Err(err) => err.status(),
    };
    tracing::info!(
        %method,
        path,
        status = status.as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    result
}

/// Install the SIGTERM and SIGINT handlers now (before the listener is bound, so no
/// early signal kills the process outright) and return the future that resolves
/// on either: stop accepting, then finish requests in flight within the bound.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: no new connections, finishing requests in flight");
    })
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
