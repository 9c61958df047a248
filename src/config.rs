//! One typed configuration, read from flags or the matching environment variables.
//!
//! Every field has a default that works on a laptop with nothing installed: SQLite
//! in the working directory and sessions kept in process. Production sets
//! `DATABASE_URL` and `REDIS_URL`.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use ipnet::IpNet;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Rollcall: staff, roles, providers, projects and imports for healthcare organisations.
#[derive(Debug, Parser)]
#[command(name = "rollcall", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Create a super admin.
    CreateAdmin(CreateAdminArgs),
    /// Print the GraphQL schema that the server serves.
    ExportSchema,
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every organisation's hash chain of audit events; exit 1 and name
    /// the first broken or missing event of each chain that does not hold.
    Verify,
}

#[derive(Debug, Args)]
pub struct CreateAdminArgs {
    /// Email of the new super admin (their username).
    #[arg(long)]
    pub email: String,
    /// Keep this password as it is; without it a strong one is generated, printed once,
    /// and must be changed at first login.
    #[arg(long, env = "ROLLCALL_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The organisation the admin belongs to; created when it does not exist.
    #[arg(long, default_value = "Rollcall")]
    pub organization: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Database URL: `postgres://…` in production, `sqlite://…` for the embedded store.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://rollcall.db?mode=rwc",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Maximum connections in the database pool.
    #[arg(
        long,
        env = "ROLLCALL_DB_POOL_SIZE",
        default_value_t = 10,
        global = true
    )]
    pub db_pool_size: u32,

    /// How long a request waits for a database connection or a statement, in seconds.
    #[arg(
        long,
        env = "ROLLCALL_DB_TIMEOUT_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub db_timeout_seconds: u64,

    /// How long one SQL statement may run on PostgreSQL before it is cancelled, in seconds.
    #[arg(
        long,
        env = "ROLLCALL_DB_STATEMENT_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub db_statement_timeout_seconds: u64,

    /// How long one GraphQL request may run before it is stopped and answers
    /// SERVICE_UNAVAILABLE, in seconds.
    #[arg(
        long,
        env = "ROLLCALL_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub request_timeout_seconds: u64,

    /// The key that encrypts secrets at rest (TOTP secrets) and keys the
    /// digests of recovery codes: 32 random bytes in base64 (`openssl rand
    /// -base64 32`). Every instance sharing a database needs the same key.
    /// Required with PostgreSQL; with the embedded SQLite database a key is
    /// generated once and kept beside it (`<database>.key`).
    #[arg(
        long,
        env = "ROLLCALL_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// The relying party id of passkeys: the domain they are made for
    /// (`example.org` lets `https://rollcall.example.org` use them). By
    /// default the public URL's host.
    #[arg(long, env = "ROLLCALL_WEBAUTHN_RP_ID", global = true)]
    pub webauthn_rp_id: Option<String>,

    /// The origins a passkey answer may come from, comma separated
    /// (`https://rollcall.example.org`). By default the public URL.
    #[arg(
        long,
        env = "ROLLCALL_WEBAUTHN_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub webauthn_origins: Vec<String>,

    /// Redis URL for sessions, revocation and rate limits; without it sessions are
    /// kept in process (one instance only).
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel Rollcall uses.
    #[arg(
        long,
        env = "ROLLCALL_REDIS_PREFIX",
        default_value = "rollcall:",
        global = true
    )]
    pub redis_prefix: String,

    /// How long a Redis command may take before the request answers SERVICE_UNAVAILABLE, in milliseconds.
    #[arg(
        long,
        env = "ROLLCALL_REDIS_TIMEOUT_MS",
        default_value_t = 1500,
        global = true
    )]
    pub redis_timeout_ms: u64,

    /// Address to listen on.
    #[arg(
        long,
        env = "ROLLCALL_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: SocketAddr,

    /// Public base URL for links in emails and the API; by default `http://` and the bound address.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Log format.
    #[arg(long, env = "ROLLCALL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,

    /// Log filter, in tracing's `EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,

    /// Serve the GraphiQL explorer at `GET /graphql` for browsers.
    #[arg(long, env = "ROLLCALL_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub graphiql: bool,

    /// Mark the session cookie `Secure`; turn off only for local plain HTTP.
    #[arg(long, env = "ROLLCALL_SECURE_COOKIES", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub secure_cookies: bool,

    /// Serve Prometheus metrics at `/metrics` on the main address to requests
    /// with `Authorization: Bearer <this token>`. Without it (and without
    /// `--metrics-bind`) metrics are not served at all.
    #[arg(
        long,
        env = "ROLLCALL_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,

    /// Serve `/metrics` on this separate address (say, one only the monitoring
    /// network reaches), without a token.
    #[arg(long, env = "ROLLCALL_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Answer the introspection queries that GraphiQL and client generators send.
    #[arg(long, env = "ROLLCALL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub introspection: bool,

    /// Origins allowed to call the API from a browser with credentials, comma separated.
    #[arg(
        long,
        env = "ROLLCALL_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Load balancers and reverse proxies whose `X-Forwarded-For` is believed,
    /// comma separated: addresses or networks (`10.0.0.0/8`). Requests from them
    /// are taken to come from the address they forwarded for, for audit,
    /// sessions and per-address limits; unset, the connection's peer is the client.
    #[arg(
        long,
        env = "ROLLCALL_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_network,
        global = true
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// Absolute maximum lifetime of a session, whatever the activity, in minutes.
    #[arg(
        long,
        env = "ROLLCALL_SESSION_MAX_MINUTES",
        default_value_t = 720,
        global = true
    )]
    pub session_max_minutes: u32,

    /// Requests one API client may make per minute, on all instances
    /// together; more answer 429 with `Retry-After`.
    #[arg(
        long,
        env = "ROLLCALL_API_CLIENT_RATE_LIMIT",
        default_value_t = 600,
        global = true
    )]
    pub api_client_rate_limit: u32,

    /// Let webhooks and feeds reach private, loopback and link-local
    /// addresses and plain http (a closed network, a test). Off, such URLs
    /// are refused before any connection, after redirects too.
    #[arg(
        long,
        env = "ROLLCALL_OUTBOUND_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub outbound_allow_private: bool,

    /// A PEM file of certificates that webhooks and feeds trust beyond the
    /// public roots: an internal certificate authority's.
    #[arg(long, env = "ROLLCALL_OUTBOUND_CA_FILE", global = true)]
    pub outbound_ca_file: Option<std::path::PathBuf>,

    /// Seconds before the outbox's first retry of a message; each later one
    /// waits twice as long, up to an hour.
    #[arg(
        long,
        env = "ROLLCALL_OUTBOX_RETRY_SECONDS",
        default_value_t = 15,
        global = true
    )]
    pub outbox_retry_seconds: u64,

    /// Password hashes computed at once; more wait their turn so that logins cannot
    /// take every core from other requests. 0 means one less than the cores (at least one).
    #[arg(
        long,
        env = "ROLLCALL_HASH_CONCURRENCY",
        default_value_t = 0,
        global = true
    )]
    pub hash_concurrency: usize,

    /// Deepest selection a query may nest.
    #[arg(long, env = "ROLLCALL_MAX_DEPTH", default_value_t = 12, global = true)]
    pub max_depth: usize,

    /// Highest complexity a query may have: each field counts one, and a page
    /// counts its selection once per item it may hold (`first`, 20 when not
    /// given). A full page of 100 with fifty fields each fits; a page of pages
    /// does not.
    #[arg(
        long,
        env = "ROLLCALL_MAX_COMPLEXITY",
        default_value_t = 5000,
        global = true
    )]
    pub max_complexity: usize,

    /// Most aliased fields one request may hold.
    #[arg(
        long,
        env = "ROLLCALL_MAX_ALIASES",
        default_value_t = 30,
        global = true
    )]
    pub max_aliases: usize,

    /// Most operations one batched request may hold.
    #[arg(long, env = "ROLLCALL_MAX_BATCH", default_value_t = 10, global = true)]
    pub max_batch: usize,

    /// How long a data loader gathers the keys that one request's fields ask for
    /// before it sends one statement for them all, in milliseconds. A longer
    /// gathering keeps batches whole on a saturated server, at that much latency
    /// per level of relations.
    #[arg(
        long,
        env = "ROLLCALL_LOADER_DELAY_MS",
        default_value_t = 1,
        global = true
    )]
    pub loader_delay_ms: u64,

    /// Largest request body, in bytes, for requests that are not uploads.
    #[arg(long, env = "ROLLCALL_MAX_BODY_BYTES", default_value_t = 1 << 20, global = true)]
    pub max_body_bytes: usize,

    /// Largest uploaded file, in bytes.
    #[arg(long, env = "ROLLCALL_MAX_UPLOAD_BYTES", default_value_t = 10 << 20, global = true)]
    pub max_upload_bytes: usize,

    /// Largest `first` a list accepts.
    #[arg(
        long,
        env = "ROLLCALL_MAX_PAGE_SIZE",
        default_value_t = 100,
        global = true
    )]
    pub max_page_size: usize,

    /// SMTP server for outgoing email: `smtps://user:pass@host:465` (TLS from the
    /// start), `smtp://user:pass@host:587?tls=required` (STARTTLS), or
    /// `smtp://host:25` (no TLS: a relay on a trusted network). Unset: messages are
    /// logged and marked undelivered.
    #[arg(long, env = "ROLLCALL_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,

    /// Sender of outgoing email.
    #[arg(
        long,
        env = "ROLLCALL_MAIL_FROM",
        default_value = "Rollcall <no-reply@rollcall.invalid>",
        global = true
    )]
    pub mail_from: String,

    /// Webhook that sends text messages: Rollcall POSTs JSON `{ "to", "body" }`
    /// (`to` in E.164) and counts any 2xx answer as sent. Unset: text messages
    /// are logged and marked undelivered.
    #[arg(
        long,
        env = "ROLLCALL_SMS_WEBHOOK_URL",
        hide_env_values = true,
        global = true
    )]
    pub sms_webhook_url: Option<String>,

    /// A SIEM that receives every audit event as RFC 5424 syslog:
    /// `tcp://host:port` or `tls://host:port` (trusting the public roots and
    /// `ROLLCALL_OUTBOUND_CA_FILE`). Sent at least once, in chain order.
    #[arg(long, env = "ROLLCALL_AUDIT_SYSLOG_URL", global = true)]
    pub audit_syslog_url: Option<String>,

    /// How many seconds a minute of emergency access ("break glass") lasts:
    /// 60. Shorter only to rehearse or test a grant's end.
    #[arg(
        long,
        env = "ROLLCALL_BREAK_GLASS_MINUTE_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub break_glass_minute_seconds: u64,

    /// How often the sweeps run (certification reminders), in seconds; one
    /// instance at a time does them.
    #[arg(
        long,
        env = "ROLLCALL_SWEEP_INTERVAL_SECONDS",
        default_value_t = 3600,
        global = true
    )]
    pub sweep_interval_seconds: u64,

    /// How long an instance's claim on an import job lasts without progress, in
    /// seconds: a job whose instance died is taken over after this.
    #[arg(
        long,
        env = "ROLLCALL_IMPORT_LEASE_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub import_lease_seconds: u64,

    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    #[arg(
        long,
        env = "ROLLCALL_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub shutdown_timeout_seconds: u64,
}

impl Config {
    /// Parse a configuration from arguments only, ignoring nothing: tests build
    /// theirs this way and then override fields.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.config)
    }

    pub fn db_timeout(&self) -> Duration {
        Duration::from_secs(self.db_timeout_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    pub fn loader_delay(&self) -> Duration {
        Duration::from_millis(self.loader_delay_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn session_max(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_max_minutes) * 60)
    }

    pub fn hash_permits(&self) -> usize {
        if self.hash_concurrency > 0 {
            return self.hash_concurrency;
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        cores.saturating_sub(1).max(1)
    }

    /// Whether the database is the embedded SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The file of the embedded SQLite database, if it is one (not `:memory:`).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
    }
}

/// Parse one trusted proxy: a network (`10.0.0.0/8`, `fd00::/8`) or a single
/// address (`10.1.2.3`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a network such as 10.0.0.0/8"))
}
