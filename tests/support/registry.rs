//! A real upstream registry (`docker-registry serve`, distribution 2.8) on a
//! free loopback port, with filesystem storage in a tempdir.
//!
//! ```ignore
//! let reg = Registry::builder().auth(Auth::token("alice", "s3cret")).tls(true).start().await;
//! let pusher = reg.pusher();
//! let img = pusher.push_image("library/app", "v1", ImageSpec::small("hi")).await;
//! ```
//!
//! Process hygiene: the registry is started through a tiny `sh` wrapper that
//! keeps a watcher reading a pipe from this test process and then `exec`s the
//! registry (so the child's pid *is* the registry). When the test process
//! goes away for any reason — including SIGKILL or a `static` registry that is
//! never dropped — the pipe closes and the watcher kills the registry, so no
//! registries outlive the test binary. `Drop` and [`Registry::stop`] also
//! kill it directly.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::certs::material;
use super::images::Pusher;
use super::token::{TokenConfig, TokenRequest, TokenServer};

/// How clients must authenticate to the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// Open registry.
    #[default]
    None,
    /// `auth.htpasswd` with one bcrypt user (`htpasswd -Bbn`): HTTP Basic.
    Htpasswd { user: String, password: String },
    /// `auth.token` backed by the harness's in-process token server.
    Token { user: String, password: String },
}

impl Auth {
    pub fn htpasswd(user: &str, password: &str) -> Self {
        Auth::Htpasswd {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn token(user: &str, password: &str) -> Self {
        Auth::Token {
            user: user.into(),
            password: password.into(),
        }
    }

    fn credentials(&self) -> Option<(String, String)> {
        match self {
            Auth::None => None,
            Auth::Htpasswd { user, password } | Auth::Token { user, password } => {
                Some((user.clone(), password.clone()))
            }
        }
    }
}

/// How to start a [`Registry`]; doubles as its builder.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub auth: Auth,
    /// Serve HTTPS with a certificate for `127.0.0.1`/`localhost` signed by
    /// the harness CA ([`Registry::ca_pem`]).
    pub tls: bool,
    /// Token lifetime for [`Auth::Token`] (default 300 s). The registry
    /// rejects a token after exactly this long (see
    /// [`super::token::TokenConfig::ttl`]).
    pub token_ttl: Duration,
    /// [`Auth::Token`] only: anonymous token requests get `pull`.
    pub anonymous_pull: bool,
    /// Registry log level (`error`, `warn`, `info`, `debug`); default `warn`.
    pub log_level: String,
    /// How long to wait for `GET /v2/` to answer (default 10 s).
    pub start_timeout: Duration,
    /// `storage.cache.blobdescriptor: inmemory`, as in Debian's stock
    /// `/etc/docker/registry/config.yml` (default off: tests that change
    /// the storage behind the registry's back must not see a stale cache).
    pub blob_descriptor_cache: bool,
    /// Listen on this port instead of a free one (demos; tests never fix
    /// ports).
    pub port: Option<u16>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            auth: Auth::None,
            tls: false,
            token_ttl: Duration::from_secs(300),
            anonymous_pull: false,
            log_level: "warn".into(),
            start_timeout: Duration::from_secs(10),
            blob_descriptor_cache: false,
            port: None,
        }
    }
}

impl RegistryOptions {
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    pub fn anonymous_pull(mut self, yes: bool) -> Self {
        self.anonymous_pull = yes;
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// A fixed port (for demos); tests use a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Debian's stock configuration: blob descriptors cached in memory.
    pub fn blob_descriptor_cache(mut self, yes: bool) -> Self {
        self.blob_descriptor_cache = yes;
        self
    }

    pub async fn start(self) -> Registry {
        Registry::start(self).await
    }
}

/// Token service name the registry expects (`aud`).
pub const TOKEN_SERVICE: &str = "regmirror-test-registry";
/// Token issuer the registry expects (`iss`).
pub const TOKEN_ISSUER: &str = "regmirror-test-token-issuer";
/// Response header carrying a per-instance nonce; readiness checks require
/// it so a foreign server that grabbed our port is never mistaken for ours.
const INSTANCE_HEADER: &str = "x-regmirror-instance";

/// A running `docker-registry`. Killed on drop; storage lives as long as this.
pub struct Registry {
    opts: RegistryOptions,
    dir: tempfile::TempDir,
    port: u16,
    nonce: String,
    child: Option<Child>,
    /// Write end of the watcher pipe; closing it makes the watcher kill the
    /// registry.
    lifeline: Option<ChildStdin>,
    token: Option<TokenServer>,
}

impl Registry {
    /// Options builder: `Registry::builder().tls(true).start().await`.
    pub fn builder() -> RegistryOptions {
        RegistryOptions::default()
    }

    /// Open registry over plain HTTP.
    pub async fn plain() -> Registry {
        Registry::start(RegistryOptions::default()).await
    }

    /// Starts a registry and waits until `GET /v2/` answers 200 or 401.
    ///
    /// Retries with a new port when the one picked was taken in the meantime;
    /// panics with the registry's log if it does not come up.
    pub async fn start(opts: RegistryOptions) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("regmirror-registry-")
            .tempdir()
            .expect("registry tempdir");
        let m = material();
        let d = dir.path();
        std::fs::create_dir_all(d.join("storage")).unwrap();
        std::fs::create_dir_all(d.join("certs")).unwrap();
        // `certs/ca.crt` makes the dir usable as skopeo's `--cert-dir`.
        std::fs::write(d.join("certs/ca.crt"), &m.ca_cert_pem).unwrap();
        std::fs::write(d.join("server.crt"), &m.server_cert_pem).unwrap();
        std::fs::write(d.join("server.key"), &m.server_key_pem).unwrap();
        std::fs::write(d.join("token.crt"), &m.token_cert_pem).unwrap();
        std::fs::write(d.join("token.key"), &m.token_key_pem).unwrap();

        let token = match &opts.auth {
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
                None
            }
            Auth::Token { user, password } => Some(TokenServer::start(TokenConfig {
                user: user.clone(),
                password: password.clone(),
                service: TOKEN_SERVICE.into(),
                issuer: TOKEN_ISSUER.into(),
                key_path: d.join("token.key"),
                x5c: m.token_cert_der_b64.clone(),
                ttl: opts.token_ttl,
                anonymous_pull: opts.anonymous_pull,
                compensate_leeway: true,
            })),
            Auth::None => None,
        };

        let mut reg = Registry {
            opts,
            dir,
            port: 0,
            nonce: hex::encode(rand::random::<[u8; 8]>()),
            child: None,
            lifeline: None,
            token,
        };
        let mut last_log = String::new();
        for _attempt in 0..8 {
            reg.port = reg.opts.port.unwrap_or_else(free_port);
            match reg.launch().await {
                Ok(()) => return reg,
                Err(Launch::PortTaken(log)) => last_log = log,
                Err(Launch::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "docker-registry could not bind a free port after 8 attempts; last log:\n{last_log}"
        );
    }

    /// Writes the config for `self.port`, spawns the registry and waits for it.
    async fn launch(&mut self) -> Result<(), Launch> {
        let config = self.dir.path().join("config.yml");
        std::fs::write(&config, self.config_yaml()).unwrap();
        let log_path = self.log_path();
        let log = File::create(&log_path).expect("registry log file");

        // fd 3 keeps the pipe from us; the background watcher blocks reading
        // it (background jobs get /dev/null as stdin, hence the dup) and kills
        // `$$` — which is the registry after `exec` — on EOF.
        let script = r#"exec 3<&0
( read -r _ <&3; kill -9 $$ 2>/dev/null ) &
exec docker-registry serve "$1" </dev/null 3<&-"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // distribution lets REGISTRY_* environment variables override any
        // config key; never let the caller's environment leak in.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn docker-registry via sh: {e}"));
        self.lifeline = child.stdin.take();
        self.child = Some(child);

        let client = self.raw_client();
        let url = format!("{}/v2/", self.url());
        let deadline = Instant::now() + self.opts.start_timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.kill();
                let log = self.logs();
                if log.contains("address already in use") {
                    return Err(Launch::PortTaken(log));
                }
                return Err(Launch::Failed(format!(
                    "docker-registry exited during startup ({status}) on port {}; log:\n{log}",
                    self.port
                )));
            }
            if let Ok(resp) = client.get(&url).send().await {
                let ours = resp
                    .headers()
                    .get(INSTANCE_HEADER)
                    .is_some_and(|v| v.as_bytes() == self.nonce.as_bytes());
                let s = resp.status().as_u16();
                if ours && (s == 200 || s == 401) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(Launch::Failed(format!(
                    "docker-registry did not answer GET {url} within {:?}; log:\n{}",
                    self.opts.start_timeout,
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn config_yaml(&self) -> String {
        let d = self.dir.path();
        let p = |rel: &str| d.join(rel).display().to_string();
        let mut y = format!(
            r#"version: 0.1
log:
  level: {level}
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
{cache}  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {nonce}-secret
  headers:
    X-Content-Type-Options: [nosniff]
    X-Regmirror-Instance: ["{nonce}"]
"#,
            level = self.opts.log_level,
            storage = p("storage"),
            cache = if self.opts.blob_descriptor_cache {
                "  cache:\n    blobdescriptor: inmemory\n"
            } else {
                ""
            },
            port = self.port,
            nonce = self.nonce,
        );
        if self.opts.tls {
            y += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p("server.crt"),
                p("server.key")
            );
        }
        match &self.opts.auth {
            Auth::None => {}
            Auth::Htpasswd { .. } => {
                y += &format!(
                    "auth:\n  htpasswd:\n    realm: regmirror-basic-realm\n    path: {}\n",
                    p("htpasswd")
                );
            }
            Auth::Token { .. } => {
                let realm = self.token.as_ref().unwrap().realm();
                y += &format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    p("token.crt")
                );
            }
        }
        y
    }

    /// A client for harness-internal probes: trusts the harness CA, ignores
    /// proxy environment variables (loopback must never go through a proxy).
    fn raw_client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2));
        if self.opts.tls {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(
                material().ca_cert_pem.as_bytes(),
            )
            .unwrap()]);
        }
        b.build().unwrap()
    }

    /// A `reqwest::Client` that trusts this registry's CA (no auth attached).
    pub fn http_client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().no_proxy();
        if self.opts.tls {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(
                material().ca_cert_pem.as_bytes(),
            )
            .unwrap()]);
        }
        b.build().unwrap()
    }

    /// Kills the registry process (storage and token server stay).
    fn kill(&mut self) {
        // Close the lifeline first: the watcher's `kill` then targets a pid
        // that is still ours (alive or a zombie) until we reap it below.
        self.lifeline.take();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the registry (e.g. to test an upstream outage). Storage is kept;
    /// [`Registry::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// The registry process's id, while it runs (for profilers).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the registry process is currently running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// (Re)starts the registry on the same port with the same storage.
    /// Panics if the port was taken meanwhile.
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.launch().await {
                Ok(()) => return,
                Err(Launch::PortTaken(log)) if Instant::now() > deadline => {
                    panic!(
                        "cannot restart registry: port {} is taken; log:\n{log}",
                        self.port
                    )
                }
                Err(Launch::PortTaken(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(Launch::Failed(msg)) => panic!("{msg}"),
            }
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.opts.tls
    }

    pub fn auth(&self) -> &Auth {
        &self.opts.auth
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// `(user, password)` for htpasswd and token modes, `None` when open.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.opts.auth.credentials()
    }

    /// PEM of the harness CA that signed the registry's certificate (the same
    /// CA for every registry in the process; returned even without TLS).
    pub fn ca_pem(&self) -> String {
        material().ca_cert_pem.clone()
    }

    /// A directory holding `ca.crt`, for `skopeo --cert-dir` / `certs.d`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// Path of the CA certificate file.
    pub fn ca_path(&self) -> PathBuf {
        self.cert_dir().join("ca.crt")
    }

    /// Filesystem-driver root (contains `docker/registry/v2/...`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the bytes of blob `digest` (`sha256:...`);
    /// handy for corrupting or deleting a blob behind the registry's back.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's tempdir (config, log, keys, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Contents of the registry's log (stdout+stderr) so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Token realm URL (`http://127.0.0.1:PORT/token`) in token mode.
    pub fn token_realm(&self) -> Option<String> {
        self.token.as_ref().map(TokenServer::realm)
    }

    /// `realm?service=..&scope=SCOPE` in token mode: the URL a client would
    /// fetch a token from for `scope` (e.g. `repository:foo:pull`).
    pub fn token_url(&self, scope: &str) -> Option<String> {
        let realm = self.token_realm()?;
        let mut url = reqwest::Url::parse(&realm).unwrap();
        url.query_pairs_mut()
            .append_pair("service", TOKEN_SERVICE)
            .append_pair("scope", scope);
        Some(url.into())
    }

    /// Token `service` in token mode.
    pub fn token_service(&self) -> Option<&str> {
        self.token.as_ref().map(|_| TOKEN_SERVICE)
    }

    /// Number of token requests served so far (0 when not in token mode).
    pub fn token_requests(&self) -> usize {
        self.token.as_ref().map_or(0, TokenServer::requests)
    }

    /// Every token request served so far (user, scopes, issued?).
    pub fn token_log(&self) -> Vec<TokenRequest> {
        self.token.as_ref().map_or_else(Vec::new, TokenServer::log)
    }

    /// Resets [`Registry::token_requests`] and [`Registry::token_log`].
    pub fn reset_token_requests(&self) {
        if let Some(t) = &self.token {
            t.reset();
        }
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.token
            .as_ref()
            .expect("set_token_ttl needs Auth::Token")
            .set_ttl(ttl);
    }

    /// A [`Pusher`] authenticated with this registry's credentials.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(self)
    }

    /// Image reference `127.0.0.1:PORT/REPO:TAG` (or `@digest`).
    pub fn reference(&self, repo: &str, tag_or_digest: &str) -> String {
        let sep = if tag_or_digest.contains(':') {
            '@'
        } else {
            ':'
        };
        format!("{}/{repo}{sep}{tag_or_digest}", self.host_port())
    }

    /// Arguments for `skopeo` reading from this registry: credentials and TLS
    /// trust (`--src-creds`, `--src-cert-dir`); use with `prefix = "src"`,
    /// `"dest"`, or `""` for commands like `inspect`.
    pub fn skopeo_args(&self, prefix: &str) -> Vec<String> {
        let flag = |name: &str| {
            if prefix.is_empty() {
                format!("--{name}")
            } else {
                format!("--{prefix}-{name}")
            }
        };
        let mut args = Vec::new();
        if let Some((u, p)) = self.credentials() {
            args.push(format!("{}={u}:{p}", flag("creds")));
        }
        if self.opts.tls {
            args.push(format!(
                "{}={}",
                flag("cert-dir"),
                self.cert_dir().display()
            ));
        } else {
            args.push(format!("{}=false", flag("tls-verify")));
        }
        args
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

enum Launch {
    PortTaken(String),
    Failed(String),
}

/// A port that was free a moment ago. Racy by nature; [`Registry::start`]
/// retries when the registry then fails to bind it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
