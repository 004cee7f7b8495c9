//! Settings: command-line flags, `MIRROR_*` environment variables and an
//! optional TOML file, merged in that order of precedence (flag > env >
//! file > default).
//!
//! TOML keys are the flag names: `listen`, `data_dir` (or `data-dir`),
//! `admin_password`, `worker_concurrency`, and for blob pushes
//! `max_uploads` (sessions open at once), `max_uploads_per_account` (of
//! those, how many one account may hold; default a quarter of
//! `max_uploads`, at most 16) and `upload_timeout_secs` (idle time before
//! a session is canceled). The admin password is not a flag on purpose:
//! command lines are visible to every local user.
//!
//! Against slow clients: `header_read_timeout_secs`
//! (`MIRROR_HEADER_READ_TIMEOUT_SECS`, default 30): a client must send a
//! request's head within it, and a keep-alive connection idle for that long
//! is closed (see `serve`).
//!
//! Against server-side request forgery (see `mirror_core::remote::RemoteGuard`):
//! `remote_hosts_allow` (a list of host patterns such as
//! `registry.example.com`, `*.example.com`, `10.0.0.5:5000`; empty: any
//! host; `MIRROR_REMOTE_HOSTS_ALLOW`, comma-separated) and
//! `forbid_private_remotes` (refuse loopback, private, link-local and
//! similar addresses, checked on resolved addresses and redirects, except
//! hosts the allow-list names exactly; `MIRROR_FORBID_PRIVATE_REMOTES`).
//! Both are off by default.
//!
//! Against hostile or broken remotes, a `[remote_limits]` table (see
//! `mirror_core::remote::RemoteLimits`): `request_timeout_secs` (a request
//! other than a blob download, body included; default 120),
//! `max_token_bytes` (1 MiB), `max_tag_page_bytes` (16 MiB), `max_tags` (per
//! listing, 200000), `min_transfer_rate` (bytes/s a blob transfer must keep
//! over `low_speed_window_secs`; 10240 over 60), `min_pulls_left_percent`
//! (manifest GETs wait for a later poll while a registry announces this
//! share of its pull limit or less left; 10, 0 for never),
//! `max_bytes_per_sec` (the most all polls' blob transfers together read
//! from remotes; 0, the default, for no limit; a policy's `maxBytesPerSec`
//! limits it further).
//!
//! Blobs: `blob_store` (`--blob-store`, `MIRROR_BLOB_STORE`): `fs` (the
//! default, `<data_dir>/blobs`) or `s3://bucket/prefix`, an S3-compatible
//! bucket, with an `[s3]` table (`endpoint`, `region`, `allow_http`,
//! `access_key_id`, `secret_access_key`, `session_token`,
//! `virtual_hosted_style`) whose unset keys come from the usual `AWS_*`
//! variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
//! `[s3] redirect_secs` (default 0, off): an authorized blob `GET` is
//! answered `307` with a presigned URL of the bucket valid that long, so
//! blob bytes go from the bucket to the client directly.
//! The databases stay in the data directory unless `database_url` is set.
//!
//! Scale-out: `database_url` (`--database-url`, `MIRROR_DATABASE_URL`;
//! `postgres://user:password@host:port/dbname`) puts mirror-core's stores
//! and the server's own (accounts, tokens, grants, crons, settings) in
//! PostgreSQL, where replicas share them; it is never printed or logged
//! (`Debug` shows `***`). `database_pool_size`
//! (`MIRROR_DATABASE_POOL_SIZE`, default 16, 1 to 1000): the engine's
//! pool; the server's own pool is a quarter of it, at least 2. Replicas
//! need the same `MIRROR_SECRET_KEY` (remote passwords are sealed with it)
//! and blobs every replica reaches (`s3://…`, or a shared mount).
//!
//! Behind a reverse proxy: `trusted_proxies` (addresses or networks such as
//! `10.0.0.5`, `10.0.0.0/8`; `MIRROR_TRUSTED_PROXIES`, comma-separated):
//! requests from these peers are counted for login limits under the client
//! address in their `X-Forwarded-For` (see `client_ip`). Empty by default:
//! the header is ignored.
//!
//! TLS (see `tls`): `tls` (`MIRROR_TLS`): `off` (the default: plain
//! HTTP), `auto` (a CA and a server certificate generated at first start
//! in `<data_dir>/tls/`, for the names in `public_name`), or `files`,
//! implied by `tls_cert` and `tls_key` (`MIRROR_TLS_CERT`,
//! `MIRROR_TLS_KEY`; PEM, the certificate file may hold a chain, the
//! server's first), which are given together and reloaded when they
//! change or on `SIGHUP`. `public_name` (`MIRROR_PUBLIC_NAME`,
//! comma-separated DNS names and IP addresses; default `localhost`,
//! `127.0.0.1`, `::1` and the listen address unless unspecified) is for
//! `auto` only. `tls_reload_interval_secs`
//! (`MIRROR_TLS_RELOAD_INTERVAL_SECS`, default 10): how often the files
//! are checked.
//!
//! Garbage collection (`onlinegc` jobs; see `mirror_core::gc`), a `[gc]`
//! table: `grace_period` (a duration such as `"30m"` or `"2h"`, default
//! `"1h"`: content written, linked or held within it stays) and
//! `delete_untagged` (default false: manifests no tag reaches stay). A
//! job's `gracePeriod` and `deleteUntagged` parameters override them.
//!
//! Pull-through caches (see `mirror_core::proxy_cache`): `[[proxy_cache]]`
//! tables (`namespace`, `remote_host`, `username`, `password`,
//! `remote_ca`, `skip_tls_verification`, `tag_ttl_secs`, `max_bytes`,
//! `anonymous_pull`, `default`), each creating or changing its namespace's
//! cache at start; caches made through `/api/v0/proxyCaches` and not named
//! in the file are left alone.
//!
//! Policies as code (`mirror_core::policy_file`): `policies`
//! (`--policies`, `MIRROR_POLICIES`), a YAML or TOML file of repositories
//! and policies applied at start, before serving (an invalid file stops
//! the start), and `prune_policies` (`--prune-policies`) to delete the
//! policies of its repositories that it does not list. `mirror-server
//! apply FILE` applies one without serving (the settings flags above are
//! accepted before or after `apply`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use mirror_core::Secret;
use mirror_core::gc::GcSettings;
use mirror_core::proxy_cache::ProxyCacheForm;
use mirror_core::remote::{RemoteGuard, RemoteLimits};
use mirror_core::store::S3Options;
use serde::Deserialize;

use crate::client_ip::TrustedProxies;
use crate::serve::ConnectionLimits;
use crate::tls::settings::{check_public_name, default_public_names};
use crate::tls::{TlsMode, TlsSettings};
use crate::uploads::UploadLimits;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Command-line flags (each also read from its environment variable).
#[derive(Debug, Parser)]
#[command(
    name = "mirror-server",
    version,
    about = "regmirror's registry server with a DTR-compatible mirroring API",
    after_help = "Several replicas on PostgreSQL and S3: see deploy/compose.yaml, deploy/kubernetes.yaml and the README's Scale-out section."
)]
pub struct Cli {
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "MIRROR_LISTEN", value_name = "ADDR", global = true)]
    pub listen: Option<String>,
    /// Directory for all state (blobs, databases) [default: ./data].
    #[arg(long, env = "MIRROR_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML file with the same settings.
    #[arg(long, env = "MIRROR_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Remote hosts policies may use, comma-separated patterns
    /// (`registry.example.com`, `*.example.com`, `10.0.0.5:5000`) [default: any].
    #[arg(
        long,
        env = "MIRROR_REMOTE_HOSTS_ALLOW",
        value_name = "PATTERNS",
        value_delimiter = ',',
        global = true
    )]
    pub remote_hosts_allow: Option<Vec<String>>,
    /// Refuse remote hosts on loopback, private, link-local and similar
    /// addresses (after DNS, and on redirects) [default: false].
    #[arg(
        long,
        env = "MIRROR_FORBID_PRIVATE_REMOTES",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        default_missing_value = "true",
        global = true
    )]
    pub forbid_private_remotes: Option<bool>,
    /// Reverse proxies whose `X-Forwarded-For` names the client, for login
    /// limits; comma-separated addresses or networks [default: none].
    #[arg(
        long,
        env = "MIRROR_TRUSTED_PROXIES",
        value_name = "NETWORKS",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a client may take to send a request's head (and a
    /// keep-alive connection may sit idle) before it is closed [default: 30].
    #[arg(
        long,
        env = "MIRROR_HEADER_READ_TIMEOUT_SECS",
        value_name = "SECS",
        global = true
    )]
    pub header_read_timeout_secs: Option<u64>,
    /// TLS: `off` (plain HTTP), `auto` (a CA and certificate generated in
    /// the data directory; `GET /ca` serves the CA), or `files` (implied
    /// by --tls-cert and --tls-key) [default: off].
    #[arg(long, env = "MIRROR_TLS", value_name = "MODE", global = true)]
    pub tls: Option<String>,
    /// PEM certificate chain, the server's certificate first; reloaded
    /// when it changes or on SIGHUP. Needs --tls-key.
    #[arg(long, env = "MIRROR_TLS_CERT", value_name = "FILE", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MIRROR_TLS_KEY", value_name = "FILE", global = true)]
    pub tls_key: Option<PathBuf>,
    /// DNS names and IP addresses of the `--tls auto` certificate,
    /// comma-separated [default: localhost,127.0.0.1,::1 and the listen address].
    #[arg(
        long,
        env = "MIRROR_PUBLIC_NAME",
        value_name = "NAMES",
        value_delimiter = ',',
        global = true
    )]
    pub public_name: Option<Vec<String>>,
    /// Seconds between checks of the TLS files for a change [default: 10].
    #[arg(
        long,
        env = "MIRROR_TLS_RELOAD_INTERVAL_SECS",
        value_name = "SECS",
        global = true
    )]
    pub tls_reload_interval_secs: Option<u64>,
    /// Where blobs are kept: `fs` (the data directory) or
    /// `s3://bucket/prefix` (endpoint, region and credentials from the
    /// `AWS_*` variables or the `[s3]` table) [default: fs].
    #[arg(long, env = "MIRROR_BLOB_STORE", value_name = "URL", global = true)]
    pub blob_store: Option<String>,
    /// PostgreSQL for every store, shared by replicas
    /// (`postgres://user:password@host/db`) [default: the data directory].
    #[arg(
        long,
        env = "MIRROR_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<Secret>,
    /// Connections the engine keeps to the database at most; the server's
    /// own pool is a quarter of it [default: 16].
    #[arg(
        long,
        env = "MIRROR_DATABASE_POOL_SIZE",
        value_name = "N",
        global = true
    )]
    pub database_pool_size: Option<usize>,
    /// A policies file (YAML or TOML, see `mirror-server apply`) applied
    /// at start, before serving; an invalid file stops the start.
    #[arg(long, env = "MIRROR_POLICIES", value_name = "FILE")]
    pub policies: Option<PathBuf>,
    /// With --policies: also delete the policies of the file's
    /// repositories that it does not list [default: false].
    #[arg(
        long,
        env = "MIRROR_PRUNE_POLICIES",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new(),
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub prune_policies: Option<bool>,
    /// What to do; without a command, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `mirror-server`'s commands besides serving (the default). The
/// settings flags apply to each, before or after its name.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Make the server's repositories and policies match a policies file
    /// (YAML or TOML): print the plan, then apply it to the stores the
    /// settings name (safe while servers run on them).
    Apply(ApplyArgs),
}

/// `mirror-server apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// The policies file (`*.yaml`, `*.yml` or `*.toml`); secrets come
    /// from the environment variables its `passwordEnv`/`authTokenEnv` name.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also delete the policies of the file's repositories that it does
    /// not list (repositories and images are never deleted).
    #[arg(long)]
    pub prune: bool,
    /// Print the plan only; change nothing.
    #[arg(long, visible_alias = "plan-only")]
    pub dry_run: bool,
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(alias = "data-dir")]
    data_dir: Option<PathBuf>,
    #[serde(alias = "admin-password")]
    admin_password: Option<Secret>,
    #[serde(alias = "worker-concurrency")]
    worker_concurrency: Option<usize>,
    #[serde(alias = "max-uploads")]
    max_uploads: Option<usize>,
    #[serde(alias = "max-uploads-per-account")]
    max_uploads_per_account: Option<usize>,
    #[serde(alias = "upload-timeout-secs")]
    upload_timeout_secs: Option<u64>,
    #[serde(alias = "remote-hosts-allow")]
    remote_hosts_allow: Option<Vec<String>>,
    #[serde(alias = "forbid-private-remotes")]
    forbid_private_remotes: Option<bool>,
    #[serde(alias = "trusted-proxies")]
    trusted_proxies: Option<Vec<String>>,
    #[serde(alias = "header-read-timeout-secs")]
    header_read_timeout_secs: Option<u64>,
    #[serde(alias = "remote-limits")]
    remote_limits: Option<RemoteLimitsFile>,
    tls: Option<String>,
    #[serde(alias = "tls-cert")]
    tls_cert: Option<PathBuf>,
    #[serde(alias = "tls-key")]
    tls_key: Option<PathBuf>,
    #[serde(alias = "public-name")]
    public_name: Option<Vec<String>>,
    #[serde(alias = "tls-reload-interval-secs")]
    tls_reload_interval_secs: Option<u64>,
    #[serde(alias = "blob-store")]
    blob_store: Option<String>,
    s3: Option<S3File>,
    #[serde(alias = "database-url")]
    database_url: Option<Secret>,
    #[serde(alias = "database-pool-size")]
    database_pool_size: Option<usize>,
    gc: Option<GcFile>,
    policies: Option<PathBuf>,
    #[serde(alias = "prune-policies")]
    prune_policies: Option<bool>,
    #[serde(default, alias = "proxy-cache")]
    proxy_cache: Vec<toml::Table>,
}

/// The `[gc]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcFile {
    #[serde(alias = "grace-period")]
    grace_period: Option<String>,
    #[serde(alias = "delete-untagged")]
    delete_untagged: Option<bool>,
}

/// The `[s3]` table: the bucket's endpoint, region and credentials (each
/// also from its `AWS_*` variable).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3File {
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: Option<bool>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    session_token: Option<Secret>,
    virtual_hosted_style: Option<bool>,
    redirect_secs: Option<u64>,
}

/// Where the server keeps blobs.
#[derive(Debug, Clone, Default)]
pub enum BlobStoreConfig {
    /// `<data_dir>/blobs` (the default).
    #[default]
    DataDir,
    /// An S3-compatible bucket.
    S3(Box<S3Options>),
}

impl BlobStoreConfig {
    /// From the `blob_store` setting and the `[s3]` table.
    fn resolve(url: Option<String>, s3: Option<S3File>) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "blob_store",
            reason,
        };
        let url = url.map(|u| u.trim().to_string()).unwrap_or_default();
        if url.is_empty() || url == "fs" {
            return match s3 {
                Some(_) => Err(invalid(
                    "an [s3] table is given but blob_store is not an s3:// URL".into(),
                )),
                None => Ok(BlobStoreConfig::DataDir),
            };
        }
        let mut options = S3Options::from_url(&url).map_err(|e| invalid(e.to_string()))?;
        let file = s3.unwrap_or_default();
        options.endpoint = file.endpoint.or(options.endpoint);
        options.region = file.region.or(options.region);
        options.allow_http = file.allow_http.unwrap_or(options.allow_http);
        options.access_key_id = file.access_key_id.or(options.access_key_id);
        options.secret_access_key = file.secret_access_key.or(options.secret_access_key);
        options.session_token = file.session_token.or(options.session_token);
        options.virtual_hosted_style = file
            .virtual_hosted_style
            .unwrap_or(options.virtual_hosted_style);
        options.validate().map_err(|e| ConfigError::Invalid {
            key: "s3",
            reason: e.to_string(),
        })?;
        Ok(BlobStoreConfig::S3(Box::new(options)))
    }
}

/// The `[remote_limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteLimitsFile {
    request_timeout_secs: Option<u64>,
    max_token_bytes: Option<u64>,
    max_tag_page_bytes: Option<u64>,
    max_tags: Option<usize>,
    min_transfer_rate: Option<u64>,
    low_speed_window_secs: Option<u64>,
    min_pulls_left_percent: Option<u8>,
    max_bytes_per_sec: Option<u64>,
}

impl RemoteLimitsFile {
    /// `defaults` with the values the file sets, each checked.
    fn apply(self, mut limits: RemoteLimits) -> Result<RemoteLimits, ConfigError> {
        fn ranged<T: PartialOrd + std::fmt::Display + Copy>(
            key: &'static str,
            value: Option<T>,
            min: T,
            max: T,
        ) -> Result<Option<T>, ConfigError> {
            match value {
                Some(v) if v < min || v > max => Err(ConfigError::Invalid {
                    key,
                    reason: format!("must be between {min} and {max}"),
                }),
                v => Ok(v),
            }
        }
        const GIB: u64 = 1024 * 1024 * 1024;
        if let Some(s) = ranged(
            "remote_limits.request_timeout_secs",
            self.request_timeout_secs,
            1,
            86_400,
        )? {
            limits.request_timeout = Duration::from_secs(s);
        }
        if let Some(n) = ranged(
            "remote_limits.max_token_bytes",
            self.max_token_bytes,
            1024,
            GIB,
        )? {
            limits.max_token_bytes = n;
        }
        if let Some(n) = ranged(
            "remote_limits.max_tag_page_bytes",
            self.max_tag_page_bytes,
            1024,
            GIB,
        )? {
            limits.max_tag_page_bytes = n;
        }
        if let Some(n) = ranged("remote_limits.max_tags", self.max_tags, 1, 100_000_000)? {
            limits.max_tags = n;
        }
        if let Some(n) = ranged(
            "remote_limits.min_transfer_rate",
            self.min_transfer_rate,
            0,
            GIB,
        )? {
            limits.min_transfer_rate = n;
        }
        if let Some(s) = ranged(
            "remote_limits.low_speed_window_secs",
            self.low_speed_window_secs,
            1,
            86_400,
        )? {
            limits.low_speed_window = Duration::from_secs(s);
        }
        if let Some(p) = ranged(
            "remote_limits.min_pulls_left_percent",
            self.min_pulls_left_percent,
            0,
            100,
        )? {
            limits.min_pulls_left_percent = p;
        }
        if let Some(rate) = self.max_bytes_per_sec {
            mirror_core::policy::check_bytes_per_sec(rate).map_err(|reason| {
                ConfigError::Invalid {
                    key: "remote_limits.max_bytes_per_sec",
                    reason,
                }
            })?;
            limits.max_bytes_per_sec = rate;
        }
        Ok(limits)
    }
}

/// The resolved settings of a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (used by `main`; `run` takes a bound listener).
    pub listen: SocketAddr,
    /// Directory for all state.
    pub data_dir: PathBuf,
    /// Password for the `admin` account created on first start; random
    /// (and printed once) when unset.
    pub admin_password: Option<Secret>,
    /// Jobs run at once.
    pub worker_concurrency: usize,
    /// How long open connections may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Blob upload sessions: how many at once (in all, and per account),
    /// how long one may sit idle.
    pub uploads: UploadLimits,
    /// How long a connection may take to send a request's head.
    pub connections: ConnectionLimits,
    /// Which remote hosts policies may reach (default: any).
    pub remote_guard: RemoteGuard,
    /// What a remote can make the server hold or wait for.
    pub remote_limits: RemoteLimits,
    /// Peers whose `X-Forwarded-For` is believed (default: none).
    pub trusted_proxies: TrustedProxies,
    /// HTTPS, and with which certificate (default: off).
    pub tls: TlsSettings,
    /// Where blobs are kept (default: the data directory).
    pub blob_store: BlobStoreConfig,
    /// Blob `GET`s answered with a `307` to a presigned URL valid this long
    /// (`None`: blobs are streamed through the server).
    pub blob_redirect: Option<Duration>,
    /// PostgreSQL for every store (default: SQLite in the data directory).
    pub database_url: Option<Secret>,
    /// The engine's connection pool size with `database_url`.
    pub database_pool_size: usize,
    /// How `onlinegc` jobs collect unless their parameters say otherwise.
    pub gc: GcSettings,
    /// A policies file applied at start, before serving
    /// (`mirror_core::policy_file`).
    pub policies: Option<PathBuf>,
    /// With `policies`: delete the listed repositories' other policies.
    pub prune_policies: bool,
    /// How webhook deliveries are sent and retried (`crate::webhooks`).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// The `[[proxy_cache]]` tables: proxy caches made to exist as written
    /// at start (`mirror_core::proxy_cache`).
    pub proxy_caches: Vec<ProxyCacheForm>,
}

/// The default [`Config::database_pool_size`].
pub const DEFAULT_DATABASE_POOL_SIZE: usize = 16;

impl Config {
    /// Defaults with `data_dir`, for tests and embedding.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            data_dir: data_dir.into(),
            admin_password: None,
            worker_concurrency: 2,
            shutdown_grace: Duration::from_secs(10),
            uploads: UploadLimits::default(),
            connections: ConnectionLimits::default(),
            remote_guard: RemoteGuard::default(),
            remote_limits: RemoteLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            tls: TlsSettings::default(),
            blob_store: BlobStoreConfig::DataDir,
            blob_redirect: None,
            database_url: None,
            database_pool_size: DEFAULT_DATABASE_POOL_SIZE,
            gc: GcSettings::default(),
            policies: None,
            prune_policies: false,
            webhooks: crate::webhooks::WebhookSettings::default(),
            proxy_caches: Vec::new(),
        }
    }

    /// Merges flags, `env_admin_password` (`MIRROR_ADMIN_PASSWORD`), the
    /// config file and defaults.
    pub fn resolve(cli: Cli, env_admin_password: Option<String>) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|e| ConfigError::Invalid {
            key: "listen",
            reason: format!("{listen_text:?} is not an address such as 127.0.0.1:5000 ({e})"),
        })?;
        let mut config = Config::new(
            cli.data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        );
        config.listen = listen;
        config.admin_password = env_admin_password
            .filter(|p| !p.is_empty())
            .map(Secret::new)
            .or(file.admin_password);
        if let Some(n) = file.worker_concurrency {
            if n == 0 || n > 64 {
                return Err(ConfigError::Invalid {
                    key: "worker_concurrency",
                    reason: "must be between 1 and 64".into(),
                });
            }
            config.worker_concurrency = n;
        }
        if let Some(n) = file.max_uploads {
            if n == 0 || n > 100_000 {
                return Err(ConfigError::Invalid {
                    key: "max_uploads",
                    reason: "must be between 1 and 100000".into(),
                });
            }
            config.uploads.max_sessions = n;
            config.uploads.max_per_account = UploadLimits::default_per_account(n);
        }
        if let Some(n) = file.max_uploads_per_account {
            if n == 0 || n > config.uploads.max_sessions {
                return Err(ConfigError::Invalid {
                    key: "max_uploads_per_account",
                    reason: format!(
                        "must be between 1 and max_uploads ({})",
                        config.uploads.max_sessions
                    ),
                });
            }
            config.uploads.max_per_account = n;
        }
        if let Some(secs) = file.upload_timeout_secs {
            if secs == 0 || secs > 7 * 24 * 3600 {
                return Err(ConfigError::Invalid {
                    key: "upload_timeout_secs",
                    reason: "must be between 1 and 604800 (a week)".into(),
                });
            }
            config.uploads.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = cli
            .header_read_timeout_secs
            .or(file.header_read_timeout_secs)
        {
            if secs == 0 || secs > 3600 {
                return Err(ConfigError::Invalid {
                    key: "header_read_timeout_secs",
                    reason: "must be between 1 and 3600".into(),
                });
            }
            config.connections.header_read_timeout = Duration::from_secs(secs);
        }
        let allow: Vec<String> = cli
            .remote_hosts_allow
            .or(file.remote_hosts_allow)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect();
        let forbid_private = cli
            .forbid_private_remotes
            .or(file.forbid_private_remotes)
            .unwrap_or(false);
        config.remote_guard =
            RemoteGuard::new(&allow, forbid_private).map_err(|e| ConfigError::Invalid {
                key: "remote_hosts_allow",
                reason: e.to_string(),
            })?;
        if let Some(limits) = file.remote_limits {
            config.remote_limits = limits.apply(config.remote_limits)?;
        }
        if let Some(gc) = file.gc {
            if let Some(grace) = gc.grace_period {
                config.gc.grace =
                    mirror_core::gc::parse_grace("gc.grace_period", &grace).map_err(|e| {
                        ConfigError::Invalid {
                            key: e.field,
                            reason: e.reason,
                        }
                    })?;
            }
            config.gc.delete_untagged = gc.delete_untagged.unwrap_or(false);
        }
        if let Some(secs) = file.s3.as_ref().and_then(|s3| s3.redirect_secs) {
            if secs > 7 * 24 * 3600 {
                return Err(ConfigError::Invalid {
                    key: "s3.redirect_secs",
                    reason: "must be between 0 (off) and 604800 (a week, S3's longest)".into(),
                });
            }
            config.blob_redirect = (secs > 0).then(|| Duration::from_secs(secs));
        }
        config.blob_store = BlobStoreConfig::resolve(cli.blob_store.or(file.blob_store), file.s3)?;
        // The database (scale-out).
        config.database_url = cli
            .database_url
            .or(file.database_url)
            .filter(|u| !u.expose().trim().is_empty());
        if let Some(n) = cli.database_pool_size.or(file.database_pool_size) {
            if n == 0 || n > 1000 {
                return Err(ConfigError::Invalid {
                    key: "database_pool_size",
                    reason: "must be between 1 and 1000".into(),
                });
            }
            config.database_pool_size = n;
        }
        config.proxy_caches = proxy_cache_forms(file.proxy_cache)?;
        config.policies = cli.policies.or(file.policies);
        config.prune_policies = cli.prune_policies.or(file.prune_policies).unwrap_or(false);
        config.trusted_proxies = TrustedProxies::parse(
            &cli.trusted_proxies
                .or(file.trusted_proxies)
                .unwrap_or_default(),
        )
        .map_err(|reason| ConfigError::Invalid {
            key: "trusted_proxies",
            reason,
        })?;
        config.tls = TlsChoice {
            mode: cli.tls.or(file.tls),
            cert: cli.tls_cert.or(file.tls_cert),
            key: cli.tls_key.or(file.tls_key),
            public_names: cli.public_name.or(file.public_name),
            reload_interval_secs: cli
                .tls_reload_interval_secs
                .or(file.tls_reload_interval_secs),
        }
        .resolve(config.listen)?;
        Ok(config)
    }
}

/// The `[[proxy_cache]]` tables as forms; a key that is not a form field
/// is refused (the API ignores unknown fields as DTR did; a file's typo
/// should not silently fall back to a default).
fn proxy_cache_forms(tables: Vec<toml::Table>) -> Result<Vec<ProxyCacheForm>, ConfigError> {
    let known = ProxyCacheForm::field_names();
    tables
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(ConfigError::Invalid {
                    key: "proxy_cache",
                    reason: format!(
                        "proxy_cache[{i}]: unknown key {key:?} (known: {})",
                        known
                            .iter()
                            .filter(|k| !k.chars().any(|c| c.is_ascii_uppercase()))
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            table
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    key: "proxy_cache",
                    reason: format!("proxy_cache[{i}]: {}", e.message()),
                })
        })
        .collect()
}

/// The TLS settings as given, before they are checked.
struct TlsChoice {
    mode: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    public_names: Option<Vec<String>>,
    reload_interval_secs: Option<u64>,
}

impl TlsChoice {
    fn resolve(self, listen: SocketAddr) -> Result<TlsSettings, ConfigError> {
        let invalid = |key, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_string(),
        };
        let mut tls = TlsSettings::default();
        if let Some(secs) = self.reload_interval_secs {
            if secs == 0 || secs > 86_400 {
                return Err(invalid(
                    "tls_reload_interval_secs",
                    "must be between 1 and 86400",
                ));
            }
            tls.reload_interval = Duration::from_secs(secs);
        }
        let files = self.cert.is_some() || self.key.is_some();
        let mode = match self.mode.as_deref().map(str::trim) {
            None if files => "files",
            None => "off",
            Some(m) => m,
        };
        tls.mode = match (mode, self.cert, self.key) {
            ("off", None, None) => TlsMode::Off,
            ("off", ..) => {
                return Err(invalid(
                    "tls",
                    "is \"off\" but tls_cert or tls_key is set: remove tls = \"off\" to serve them",
                ));
            }
            ("auto", None, None) => TlsMode::Auto {
                public_names: Vec::new(),
            },
            ("auto", ..) => {
                return Err(invalid(
                    "tls",
                    "is \"auto\" but tls_cert or tls_key is set: give the files or auto, not both",
                ));
            }
            ("files", Some(cert), Some(key)) => TlsMode::Files { cert, key },
            ("files", _, None) => {
                return Err(invalid(
                    "tls_key",
                    "is required with tls_cert (or tls = \"files\")",
                ));
            }
            ("files", None, _) => {
                return Err(invalid(
                    "tls_cert",
                    "is required with tls_key (or tls = \"files\")",
                ));
            }
            (other, ..) => {
                return Err(ConfigError::Invalid {
                    key: "tls",
                    reason: format!("{other:?} is not one of \"off\", \"auto\", \"files\""),
                });
            }
        };
        let names: Option<Vec<String>> = self.public_names.map(|names| {
            names
                .into_iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        });
        match (&mut tls.mode, names) {
            (TlsMode::Auto { public_names }, Some(names)) if !names.is_empty() => {
                for name in &names {
                    check_public_name(name).map_err(|reason| ConfigError::Invalid {
                        key: "public_name",
                        reason,
                    })?;
                }
                *public_names = names;
            }
            (TlsMode::Auto { public_names }, _) => *public_names = default_public_names(listen),
            (_, Some(names)) if !names.is_empty() => {
                return Err(invalid(
                    "public_name",
                    "is only used with tls = \"auto\" (a certificate from files has its own names)",
                ));
            }
            _ => {}
        }
        Ok(tls)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (it names the key).
        reason: String,
    },
    /// A setting has an invalid value.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("mirror-server").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn proxy_cache_tables_are_forms_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[proxy_cache]]\nnamespace = \"docker.io\"\nremote_host = \"https://index.docker.io\"\n\
             tag_ttl_secs = 60\nanonymous_pull = true\ndefault = true\n\n\
             [[proxy_cache]]\nnamespace = \"ghcr\"\nremote_host = \"https://ghcr.io\"\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", file.to_str().unwrap()]), None).unwrap();
        assert_eq!(c.proxy_caches.len(), 2);
        let hub = &c.proxy_caches[0];
        assert_eq!(hub.tag_ttl_secs, Some(60));
        assert_eq!(
            (hub.anonymous_pull, hub.is_default),
            (Some(true), Some(true))
        );
        std::fs::write(
            &file,
            "[[proxy_cache]]\nnamespace = \"q\"\nremote_host = \"https://quay.io\"\ntag_ttl = 5\n",
        )
        .unwrap();
        let e = Config::resolve(cli(&["--config", file.to_str().unwrap()]), None).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("proxy_cache[0]") && e.contains("\"tag_ttl\""),
            "{e}"
        );
        assert!(e.contains("tag_ttl_secs"), "{e}");
    }

    #[test]
    fn policies_file_from_flag_or_config() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "policies = \"/etc/p.yaml\"\nprune-policies = true\n").unwrap();
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.policies, Some(PathBuf::from("/etc/p.yaml")));
        assert!(c.prune_policies);
        let c = Config::resolve(
            cli(&[
                "--config",
                f,
                "--policies",
                "/p.toml",
                "--prune-policies=false",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.policies, Some(PathBuf::from("/p.toml")));
        assert!(!c.prune_policies);
        // `apply` takes the settings flags before or after its name.
        let parsed = cli(&["apply", "--data-dir", "/d", "p.yaml", "--prune"]);
        assert_eq!(parsed.data_dir, Some(PathBuf::from("/d")));
        let Some(Command::Apply(args)) = parsed.command else {
            panic!("no apply")
        };
        assert!(args.prune && !args.dry_run);
        assert_eq!(args.file, PathBuf::from("p.yaml"));
    }

    #[test]
    fn precedence_flag_over_file_over_default() {
        let dir = std::env::temp_dir().join(format!("regmirror-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\ndata-dir = \"/srv/m\"\nadmin_password = \"from-file\"\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(c.data_dir, PathBuf::from("/srv/m"));
        assert_eq!(c.admin_password.unwrap().expose(), "from-file");
        let c = Config::resolve(
            cli(&["--config", f, "--listen", "0.0.0.0:7000"]),
            Some("from-env".into()),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(c.admin_password.unwrap().expose(), "from-env");
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));

        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        let e = Config::resolve(cli(&["--config", f]), None).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        let e = Config::resolve(cli(&["--listen", "nowhere"]), None).unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remote_guard_from_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("regmirror-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "remote_hosts_allow = [\"registry.example.com\", \"*.corp.example\"]\nforbid_private_remotes = true\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert!(c.remote_guard.forbids_private());
        assert_eq!(c.remote_guard.allow().len(), 2);
        // Flags (and so MIRROR_* variables) win over the file.
        let c = Config::resolve(
            cli(&[
                "--config",
                f,
                "--remote-hosts-allow",
                "a.example,127.0.0.1:5001",
                "--forbid-private-remotes",
                "false",
            ]),
            None,
        )
        .unwrap();
        assert!(!c.remote_guard.forbids_private());
        assert_eq!(c.remote_guard.allow()[1].to_string(), "127.0.0.1:5001");
        let c = Config::resolve(cli(&["--forbid-private-remotes"]), None).unwrap();
        assert!(c.remote_guard.forbids_private() && c.remote_guard.allow().is_empty());
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert!(!c.remote_guard.is_active());
        let e =
            Config::resolve(cli(&["--remote-hosts-allow", "https://x.example"]), None).unwrap_err();
        assert!(e.to_string().contains("remote_hosts_allow"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gc_table_sets_the_collection_defaults_and_names_a_bad_key() {
        let dir = std::env::temp_dir().join(format!("regmirror-gc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert_eq!(c.gc, GcSettings::default());
        std::fs::write(
            &file,
            "[gc]\ngrace_period = \"30m\"\ndelete_untagged = true\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.gc.grace, Duration::from_secs(1800));
        assert!(c.gc.delete_untagged && !c.gc.dry_run);
        for bad in ["grace_period = \"soon\"", "grace_period = \"0s\""] {
            std::fs::write(&file, format!("[gc]\n{bad}\n")).unwrap();
            let e = Config::resolve(cli(&["--config", f]), None).unwrap_err();
            assert!(e.to_string().contains("gc.grace_period"), "{e}");
        }
        std::fs::write(&file, "[gc]\nkeep = true\n").unwrap();
        assert!(Config::resolve(cli(&["--config", f]), None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn blob_store_from_flag_and_s3_table() {
        let dir = std::env::temp_dir().join(format!("regmirror-s3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "blob_store = \"s3://mirror-blobs/prod\"\n[s3]\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\nregion = \"eu-west-1\"\nsecret_access_key = \"s3cr3t-key\"\nredirect_secs = 600\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        let BlobStoreConfig::S3(o) = &c.blob_store else {
            panic!("{:?}", c.blob_store)
        };
        assert_eq!(
            (o.bucket.as_str(), o.prefix.as_str()),
            ("mirror-blobs", "prod")
        );
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(o.allow_http);
        assert_eq!(c.blob_redirect, Some(Duration::from_secs(600)));
        assert!(
            !format!("{c:?}").contains("s3cr3t-key"),
            "a secret in Debug"
        );
        // The flag wins; `fs` is the data directory.
        let c = Config::resolve(cli(&["--config", f, "--blob-store", "s3://other"]), None).unwrap();
        assert!(matches!(&c.blob_store, BlobStoreConfig::S3(o) if o.bucket == "other"));
        let e = Config::resolve(cli(&["--config", f, "--blob-store", "fs"]), None).unwrap_err();
        assert!(e.to_string().contains("[s3] table"), "{e}");
        let e = Config::resolve(cli(&["--blob-store", "gs://x"]), None).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid setting blob_store"),
            "{e}"
        );
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert!(matches!(c.blob_store, BlobStoreConfig::DataDir));
    }

    #[test]
    fn trusted_proxies_from_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("regmirror-proxies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.trusted_proxies.networks().len(), 2);
        let c = Config::resolve(
            cli(&["--config", f, "--trusted-proxies", "192.0.2.1"]),
            None,
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.networks()[0].to_string(), "192.0.2.1/32");
        assert!(
            Config::resolve(cli(&[]), None)
                .unwrap()
                .trusted_proxies
                .is_empty()
        );
        let e = Config::resolve(cli(&["--trusted-proxies", "10.0.0.0/8,proxy"]), None).unwrap_err();
        assert!(
            e.to_string().contains("trusted_proxies") && e.to_string().contains("\"proxy\""),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upload_and_connection_limits() {
        let dir = std::env::temp_dir().join(format!("regmirror-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert_eq!(
            (c.uploads.max_sessions, c.uploads.max_per_account),
            (128, 16)
        );
        assert_eq!(c.connections.header_read_timeout, Duration::from_secs(30));
        std::fs::write(&file, "max_uploads = 20\nheader_read_timeout_secs = 5\n").unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.uploads.max_per_account, 5, "a quarter");
        assert_eq!(c.connections.header_read_timeout, Duration::from_secs(5));
        let c = Config::resolve(
            cli(&["--config", f, "--header-read-timeout-secs", "7"]),
            None,
        )
        .unwrap();
        assert_eq!(c.connections.header_read_timeout, Duration::from_secs(7));
        std::fs::write(&file, "max_uploads = 20\nmax_uploads_per_account = 20\n").unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(c.uploads.max_per_account, 20);
        std::fs::write(&file, "max_uploads = 20\nmax_uploads_per_account = 21\n").unwrap();
        let e = Config::resolve(cli(&["--config", f]), None).unwrap_err();
        assert!(e.to_string().contains("max_uploads_per_account"), "{e}");
        let e = Config::resolve(cli(&["--header-read-timeout-secs", "0"]), None).unwrap_err();
        assert!(e.to_string().contains("header_read_timeout_secs"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_settings() {
        let dir = std::env::temp_dir().join(format!("regmirror-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert_eq!(c.tls, TlsSettings::default(), "off by default");
        assert_eq!(c.tls.reload_interval, Duration::from_secs(10));
        // Files imply `files`.
        let c =
            Config::resolve(cli(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]), None).unwrap();
        assert_eq!(c.tls, TlsSettings::files("/c.pem", "/k.pem"));
        // `auto`: the default names add a specific listen address.
        std::fs::write(
            &file,
            "tls = \"auto\"\nlisten = \"10.0.0.7:443\"\ntls_reload_interval_secs = 2\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        let names = ["localhost", "127.0.0.1", "::1", "10.0.0.7"].map(String::from);
        assert_eq!(
            c.tls.mode,
            TlsMode::Auto {
                public_names: names.into()
            }
        );
        assert_eq!(c.tls.reload_interval, Duration::from_secs(2));
        let c = Config::resolve(
            cli(&[
                "--config",
                f,
                "--public-name",
                "registry.example.com, 10.0.0.7",
            ]),
            None,
        )
        .unwrap();
        let names = ["registry.example.com", "10.0.0.7"].map(String::from);
        assert_eq!(
            c.tls.mode,
            TlsMode::Auto {
                public_names: names.into()
            }
        );
        // Errors name the key.
        for (args, key) in [
            (
                &["--tls", "off", "--tls-cert", "/c", "--tls-key", "/k"][..],
                "setting tls:",
            ),
            (
                &["--tls", "auto", "--tls-cert", "/c", "--tls-key", "/k"],
                "setting tls:",
            ),
            (&["--tls-cert", "/c"], "setting tls_key:"),
            (&["--tls-key", "/k"], "setting tls_cert:"),
            (&["--tls", "on"], "setting tls:"),
            (
                &["--tls", "auto", "--public-name", "a b"],
                "setting public_name:",
            ),
            (&["--public-name", "x.example"], "setting public_name:"),
            (
                &["--tls-reload-interval-secs", "0"],
                "setting tls_reload_interval_secs:",
            ),
        ] {
            let e = Config::resolve(cli(args), None).unwrap_err().to_string();
            assert!(e.contains(key), "{args:?}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn database_url_and_pool_size() {
        let dir = std::env::temp_dir().join(format!("regmirror-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let f = file.to_str().unwrap();
        let c = Config::resolve(cli(&[]), None).unwrap();
        assert!(c.database_url.is_none());
        assert_eq!(c.database_pool_size, DEFAULT_DATABASE_POOL_SIZE);
        std::fs::write(
            &file,
            "database_url = \"postgres://u:pg-pa55@db/regmirror\"\ndatabase_pool_size = 40\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", f]), None).unwrap();
        assert_eq!(
            c.database_url.as_ref().unwrap().expose(),
            "postgres://u:pg-pa55@db/regmirror"
        );
        assert_eq!(c.database_pool_size, 40);
        assert!(
            !format!("{c:?}").contains("pg-pa55"),
            "the password in Debug"
        );
        let flags = [
            "--config",
            f,
            "--database-url",
            "postgres://other/db",
            "--database-pool-size",
            "3",
        ];
        let c = Config::resolve(cli(&flags), None).unwrap();
        assert_eq!(c.database_url.unwrap().expose(), "postgres://other/db");
        assert_eq!(c.database_pool_size, 3);
        let e = Config::resolve(cli(&["--database-pool-size", "0"]), None).unwrap_err();
        assert!(e.to_string().contains("database_pool_size"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
