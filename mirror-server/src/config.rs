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
//! share of its pull limit or less left; 10, 0 for never).
//!
//! Behind a reverse proxy: `trusted_proxies` (addresses or networks such as
//! `10.0.0.5`, `10.0.0.0/8`; `MIRROR_TRUSTED_PROXIES`, comma-separated):
//! requests from these peers are counted for login limits under the client
//! address in their `X-Forwarded-For` (see `client_ip`). Empty by default:
//! the header is ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use mirror_core::Secret;
use mirror_core::remote::{RemoteGuard, RemoteLimits};
use serde::Deserialize;

use crate::client_ip::TrustedProxies;
use crate::serve::ConnectionLimits;
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
    about = "regmirror's registry server with a DTR-compatible mirroring API"
)]
pub struct Cli {
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "MIRROR_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for all state (blobs, databases) [default: ./data].
    #[arg(long, env = "MIRROR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with the same settings.
    #[arg(long, env = "MIRROR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Remote hosts policies may use, comma-separated patterns
    /// (`registry.example.com`, `*.example.com`, `10.0.0.5:5000`) [default: any].
    #[arg(
        long,
        env = "MIRROR_REMOTE_HOSTS_ALLOW",
        value_name = "PATTERNS",
        value_delimiter = ','
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
        default_missing_value = "true"
    )]
    pub forbid_private_remotes: Option<bool>,
    /// Reverse proxies whose `X-Forwarded-For` names the client, for login
    /// limits; comma-separated addresses or networks [default: none].
    #[arg(
        long,
        env = "MIRROR_TRUSTED_PROXIES",
        value_name = "NETWORKS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a client may take to send a request's head (and a
    /// keep-alive connection may sit idle) before it is closed [default: 30].
    #[arg(long, env = "MIRROR_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,
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
}

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
        config.trusted_proxies = TrustedProxies::parse(
            &cli.trusted_proxies
                .or(file.trusted_proxies)
                .unwrap_or_default(),
        )
        .map_err(|reason| ConfigError::Invalid {
            key: "trusted_proxies",
            reason,
        })?;
        Ok(config)
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
}
