//! [`HttpRemote`]: the registry HTTP API over reqwest.
//!
//! reqwest is used directly (not through a higher-level OCI client) because
//! mirroring needs the headers: `Link` for tag pages, `Retry-After` on 429,
//! `Docker-Content-Digest` on HEAD, exact `Content-Type`, and a streaming
//! body that is never buffered whole.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::auth::{AuthState, Challenge, Credentials, TokenResponse, parse_challenge};
use super::guard::{GuardedResolver, HostRefused, RemoteGuard, find_refusal, redirect_policy};
use super::retry::{RetryPolicy, parse_retry_after};
use super::{
    BlobBody, ManifestHead, Permissions, RemoteConnector, RemoteError, RemoteManifest,
    RemoteRegistry,
};
use crate::digest::Digest;
use crate::error::error_chain;
use crate::manifest::{ACCEPT_MANIFESTS, Descriptor, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX};
use crate::policy::{RemoteEndpoint, is_docker_hub};
use crate::reference::RepositoryName;

mod bulk;
mod low_speed;
mod push;
use low_speed::{LowSpeed, WatchedBody};
use push::Payload;

/// Tag list page size asked for.
const TAG_PAGE_SIZE: usize = 1000;
/// Hard cap on tag pages, against a registry whose `Link` loops.
const MAX_TAG_PAGES: usize = 10_000;
/// Pages of one manifest's referrers list followed at most (each at most
/// [`MAX_MANIFEST_SIZE`]).
const MAX_REFERRER_PAGES: usize = 16;

/// What a remote can make this client hold or wait for. Every body read
/// into memory is capped; blob bodies are streamed, and must keep a minimum
/// rate instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLimits {
    /// Longest time one request other than a blob download may take, the
    /// body included: a remote that drips its answer is cut off.
    pub request_timeout: Duration,
    /// Largest token server answer.
    pub max_token_bytes: u64,
    /// Largest tag list page.
    pub max_tag_page_bytes: u64,
    /// Most tags one listing returns (over all pages).
    pub max_tags: usize,
    /// A blob transfer that receives fewer than `min_transfer_rate` bytes
    /// per second over `low_speed_window` is abandoned (not resumed).
    pub min_transfer_rate: u64,
    /// The window over which `min_transfer_rate` is measured.
    pub low_speed_window: Duration,
    /// Manifest GETs (what Docker Hub counts as pulls) are deferred while
    /// the registry announces this percentage of its limit or less left
    /// (`ratelimit-remaining` / `ratelimit-limit`), so other pulls on the
    /// same budget keep working; 0 turns deferral off.
    pub min_pulls_left_percent: u8,
    /// The most every poll's blob transfers together read from remotes,
    /// in bytes per second (0: no limit); [`crate::Mirror::open_on`] makes
    /// it the engine's [`crate::bandwidth::Bandwidth`]. Not applied to a
    /// lone `HttpRemote`.
    pub max_bytes_per_sec: u64,
}

impl Default for RemoteLimits {
    fn default() -> Self {
        RemoteLimits {
            request_timeout: Duration::from_secs(120),
            max_token_bytes: 1024 * 1024,
            max_tag_page_bytes: 16 * 1024 * 1024,
            max_tags: 200_000,
            min_transfer_rate: 10 * 1024,
            low_speed_window: Duration::from_secs(60),
            min_pulls_left_percent: 10,
            max_bytes_per_sec: 0,
        }
    }
}

/// Network settings shared by every remote client.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before it counts as a
    /// stalled transfer.
    pub idle_timeout: Duration,
    /// Caps on bodies, tags, request time and transfer rate.
    pub limits: RemoteLimits,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Idle connections kept per host (HEAD pipelines reuse them).
    pub pool_per_host: usize,
    /// `User-Agent` sent.
    pub user_agent: String,
    /// Where 429 answers are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Which hosts may be reached (default: any); see [`RemoteGuard`].
    pub guard: RemoteGuard,
    /// Bytes per `PATCH` of a blob pushed to a remote (push mirroring;
    /// default 8 MiB): what one upload holds in memory.
    pub push_chunk_size: u64,
    /// Docker Hub's web API, where a poll of Docker Hub reads tag digests
    /// in bulk (default `https://hub.docker.com`; tests point it at a
    /// stand-in).
    pub hub_api: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            limits: RemoteLimits::default(),
            retry: RetryPolicy::default(),
            pool_per_host: 32,
            user_agent: concat!("regmirror/", env!("CARGO_PKG_VERSION")).to_string(),
            metrics: Arc::default(),
            guard: RemoteGuard::default(),
            push_chunk_size: 8 * 1024 * 1024,
            hub_api: "https://hub.docker.com".to_string(),
        }
    }
}

/// Makes [`HttpRemote`]s. Each endpoint gets its own client, so two policies
/// with different credentials on one host never share tokens.
#[derive(Debug, Clone, Default)]
pub struct HttpConnector {
    /// Settings for every client made.
    pub settings: HttpSettings,
}

/// Time limits of an interactive check (see
/// [`RemoteConnector::connect_interactive`]).
const INTERACTIVE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const INTERACTIVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl RemoteConnector for HttpConnector {
    fn connect(&self, endpoint: &RemoteEndpoint) -> Result<Arc<dyn RemoteRegistry>, RemoteError> {
        Ok(Arc::new(HttpRemote::new(endpoint, &self.settings)?))
    }

    fn connect_writer(
        &self,
        endpoint: &RemoteEndpoint,
        interactive: bool,
    ) -> Result<Arc<dyn super::RemoteWriter>, RemoteError> {
        let mut settings = self.settings.clone();
        if interactive {
            settings.retry.max_retries = 0;
            settings.connect_timeout = settings.connect_timeout.min(INTERACTIVE_CONNECT_TIMEOUT);
            settings.limits.request_timeout = settings
                .limits
                .request_timeout
                .min(INTERACTIVE_REQUEST_TIMEOUT);
        }
        Ok(Arc::new(HttpRemote::new(endpoint, &settings)?))
    }

    fn connect_interactive(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<Arc<dyn RemoteRegistry>, RemoteError> {
        let mut settings = self.settings.clone();
        settings.retry.max_retries = 0;
        settings.connect_timeout = settings.connect_timeout.min(INTERACTIVE_CONNECT_TIMEOUT);
        settings.limits.request_timeout = settings
            .limits
            .request_timeout
            .min(INTERACTIVE_REQUEST_TIMEOUT);
        Ok(Arc::new(HttpRemote::new(endpoint, &settings)?))
    }
}

/// A registry endpoint reached over HTTP(S).
pub struct HttpRemote {
    client: reqwest::Client,
    /// Scheme, host and port (Docker Hub's API host for `index.docker.io`).
    base: Url,
    /// For messages.
    host: String,
    credentials: Credentials,
    auth: Mutex<AuthState>,
    retry: RetryPolicy,
    metrics: Arc<crate::metrics::Metrics>,
    /// Checked before every request (the resolver and redirect policy
    /// check the rest).
    guard: RemoteGuard,
    limits: RemoteLimits,
    /// See [`HttpSettings::push_chunk_size`].
    push_chunk_size: u64,
    /// See [`HttpSettings::hub_api`].
    hub_api: String,
}

impl std::fmt::Debug for HttpRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRemote")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl HttpRemote {
    /// A client for `endpoint`.
    pub fn new(endpoint: &RemoteEndpoint, settings: &HttpSettings) -> Result<Self, RemoteError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.pool_per_host)
            .user_agent(settings.user_agent.clone());
        if !endpoint.remote_ca.trim().is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(endpoint.remote_ca.as_bytes())
                .map_err(|e| RemoteError::Config {
                    reason: format!("remoteCA cannot be parsed: {e}"),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        if endpoint.skip_tls_verification {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if settings.guard.is_active() {
            builder = builder
                .dns_resolver(GuardedResolver::new(settings.guard.clone()))
                .redirect(redirect_policy(settings.guard.clone()));
        }
        let client = builder.build().map_err(|e| RemoteError::Config {
            reason: format!("cannot build the HTTP client: {}", error_chain(&e)),
        })?;
        let api_host = if is_docker_hub(&endpoint.host) {
            // Docker Hub's web name is not its registry API host.
            "https://registry-1.docker.io".to_string()
        } else {
            endpoint.host.clone()
        };
        let base = Url::parse(&api_host).map_err(|e| RemoteError::Config {
            reason: format!("remoteHost {api_host:?} is not a URL: {e}"),
        })?;
        // Refused before anything is sent.
        settings.guard.check_url(&base).map_err(refused)?;
        let credentials = if !endpoint.auth_token.is_empty() {
            Credentials::Token(endpoint.auth_token.clone())
        } else if !endpoint.username.is_empty() {
            Credentials::Basic {
                username: endpoint.username.clone(),
                password: endpoint.password.clone(),
            }
        } else {
            Credentials::Anonymous
        };
        Ok(HttpRemote {
            client,
            host: endpoint.host.clone(),
            base,
            credentials,
            auth: Mutex::new(AuthState::default()),
            retry: settings.retry.clone(),
            metrics: settings.metrics.clone(),
            guard: settings.guard.clone(),
            limits: settings.limits.clone(),
            push_chunk_size: settings.push_chunk_size.max(1),
            hub_api: settings.hub_api.clone(),
        })
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u
    }

    /// The `Authorization` header to send up front for `scope`, if known.
    fn auth_header(&self, scope: &str) -> Option<String> {
        // Another host than the registry's: nothing of ours goes there.
        if scope == bulk::HUB_API_SCOPE {
            return None;
        }
        if let Credentials::Token(t) = &self.credentials {
            return Some(format!("Bearer {}", t.expose()));
        }
        let state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        // DTR's API sends no challenge: the password goes up front, to the
        // host it was given for, unless the registry said it takes it only
        // at a token server elsewhere (DTR's is on its own origin).
        if scope == bulk::DTR_API_SCOPE {
            let takes_password = match &state.challenge {
                Some(Challenge::Basic) | None => true,
                Some(Challenge::Bearer { realm, .. }) => {
                    Url::parse(realm).is_ok_and(|r| r.origin() == self.base.origin())
                }
            };
            return takes_password
                .then(|| self.credentials.basic_header())
                .flatten();
        }
        match &state.challenge {
            Some(Challenge::Basic) => self.credentials.basic_header(),
            Some(Challenge::Bearer { .. }) => {
                state.token(scope).map(|t| format!("Bearer {}", t.expose()))
            }
            None => None,
        }
    }

    /// Answers a 401 to a request sent with the `Authorization` value
    /// `sent`: learns the challenge and, for Bearer, fetches a token for
    /// `scope`, unless another request already replaced the refused one
    /// while this one waited its turn. Returns an error when there is
    /// nothing more to try.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        scope: &str,
        repo: &str,
        sent: Option<&str>,
    ) -> Result<(), RemoteError> {
        let unauthorized = |reason: String| RemoteError::Unauthorized {
            host: self.host.clone(),
            repository: repo.to_string(),
            reason,
        };
        if let Credentials::Token(_) = self.credentials {
            return Err(unauthorized(
                "the registry refused the given authToken".into(),
            ));
        }
        let challenge = headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(|| {
                unauthorized("HTTP 401 without a usable WWW-Authenticate challenge".into())
            })?;
        match &challenge {
            Challenge::Basic => {
                if matches!(self.credentials, Credentials::Anonymous) {
                    return Err(unauthorized(
                        "the registry requires credentials (Basic auth) and none were given".into(),
                    ));
                }
                self.auth
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .challenge = Some(challenge);
                Ok(())
            }
            Challenge::Bearer { realm, service, .. } => {
                let lock = self
                    .auth
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .fetch_lock(scope);
                let _turn = lock.lock().await;
                {
                    let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
                    state.challenge = Some(challenge.clone());
                    let current = state.token(scope).map(|t| format!("Bearer {}", t.expose()));
                    if current.is_some() && current.as_deref() != sent {
                        // Fetched by another request meanwhile: use that.
                        return Ok(());
                    }
                    // The refused token may have been revoked or expired
                    // early: never send it again.
                    state.tokens.remove(scope);
                }
                let token = self
                    .fetch_token(realm, service.as_deref(), scope, repo)
                    .await?;
                self.auth
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .tokens
                    .insert(scope.to_string(), token);
                Ok(())
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        repo: &str,
    ) -> Result<super::auth::CachedToken, RemoteError> {
        let fail = |reason: String| RemoteError::Unauthorized {
            host: self.host.clone(),
            repository: repo.to_string(),
            reason,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| fail(format!("token realm {realm:?} is not a URL: {e}")))?;
        // The realm comes from the remote: it must not lead inside either.
        self.guard.check_url_resolved(&url).await.map_err(|mut r| {
            r.reason = format!("the remote's token server: {}", r.reason);
            refused(r)
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let mut attempt = 0;
        loop {
            let mut req = self.client.get(url.clone());
            if let Some(h) = self.credentials.basic_header() {
                req = req.header(header::AUTHORIZATION, h);
            }
            let answer = tokio::time::timeout(self.limits.request_timeout, req.send()).await;
            let Ok(answer) = answer else {
                return Err(self.timed_out("the token server", &url));
            };
            let resp = match answer {
                Ok(r) => r,
                Err(e) if find_refusal(&e).is_some() => {
                    return Err(refused(find_refusal(&e).expect("checked")));
                }
                Err(e) if attempt < self.retry.max_retries && !is_tls(&e) => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    continue;
                }
                Err(e) => {
                    return Err(fail(format!(
                        "token server {} could not be reached: {}",
                        url.host_str().unwrap_or(""),
                        error_chain(&e)
                    )));
                }
            };
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.metrics.count_rate_limited();
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                && attempt < self.retry.max_retries
            {
                attempt += 1;
                let wait = parse_retry_after(resp.headers().get(header::RETRY_AFTER));
                tokio::time::sleep(self.retry.delay(attempt, wait)).await;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let who = match &self.credentials {
                    Credentials::Basic { username, .. } => format!("user {username:?}"),
                    _ => "anonymous access".into(),
                };
                return Err(fail(format!(
                    "the token server refused {who} (HTTP {}): check username and password",
                    status.as_u16()
                )));
            }
            if !status.is_success() {
                return Err(fail(format!(
                    "the token server answered HTTP {}",
                    status.as_u16()
                )));
            }
            let body = self
                .read_capped(
                    resp,
                    &url,
                    "the token server's answer",
                    self.limits.max_token_bytes,
                    "remote_limits.max_token_bytes",
                )
                .await?;
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| fail(format!("the token server's answer is not valid JSON: {e}")))?;
            return parsed
                .into_cached()
                .ok_or_else(|| fail("the token server's answer holds no token".into()));
        }
    }

    /// Sends a request built by `build`, with authentication for `scope`,
    /// answering one 401 by authenticating, and retrying connection errors,
    /// 429 and 5xx with backoff. Returns the first other response.
    async fn send(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        repo: &str,
        extra: &[(header::HeaderName, String)],
    ) -> Result<reqwest::Response, RemoteError> {
        self.send_with(
            method,
            url,
            scope,
            repo,
            extra,
            Some(self.limits.request_timeout),
        )
        .await
    }

    /// [`HttpRemote::send`] with a total time limit per attempt (`None`:
    /// only the idle timeout, for streamed blob bodies).
    async fn send_with(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        repo: &str,
        extra: &[(header::HeaderName, String)],
        total: Option<Duration>,
    ) -> Result<reqwest::Response, RemoteError> {
        self.send_full(method, url, scope, repo, extra, total, &Payload::Empty)
            .await
    }

    /// [`HttpRemote::send_with`] with a request body, made again for each
    /// attempt (a retry or the one re-authentication resends it whole).
    #[allow(clippy::too_many_arguments)]
    async fn send_full(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        repo: &str,
        extra: &[(header::HeaderName, String)],
        total: Option<Duration>,
        payload: &Payload<'_>,
    ) -> Result<reqwest::Response, RemoteError> {
        // Every URL: the endpoint's, a `Link` page, an upload `Location`.
        self.guard.check_url_resolved(&url).await.map_err(refused)?;
        let mut attempt: u32 = 0;
        let mut authenticated = false;
        loop {
            let mut req = self.client.request(method.clone(), url.clone());
            for (k, v) in extra {
                req = req.header(k, v);
            }
            if let Some(body) = payload.body().await? {
                req = req.body(body);
            }
            let sent = self.auth_header(scope);
            if let Some(h) = &sent {
                let mut v = HeaderValue::from_str(h).map_err(|_| RemoteError::Config {
                    reason: "credentials contain characters not allowed in an HTTP header".into(),
                })?;
                v.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, v);
            }
            let answer = match total {
                Some(t) => tokio::time::timeout(t, req.send()).await,
                None => Ok(req.send().await),
            };
            // The whole time allowed is spent: another attempt would let a
            // dripping remote hold the poll that much longer.
            let Ok(answer) = answer else {
                return Err(self.timed_out("the registry", &url));
            };
            let resp = match answer {
                Ok(r) => r,
                Err(e) => {
                    let err = self.classify(&url, &e);
                    if matches!(
                        err,
                        RemoteError::Tls { .. }
                            | RemoteError::HostRefused { .. }
                            | RemoteError::Protocol { .. }
                    ) || attempt >= self.retry.max_retries
                    {
                        return Err(err);
                    }
                    attempt += 1;
                    tracing::debug!(url = %url, attempt, "retrying after: {err}");
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    continue;
                }
            };
            self.metrics.record_pull_budget(
                &self.host,
                header_str(resp.headers(), "ratelimit-limit").as_deref(),
                header_str(resp.headers(), "ratelimit-remaining").as_deref(),
            );
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authenticated && !bulk::is_api_scope(scope) {
                authenticated = true;
                self.authenticate(resp.headers(), scope, repo, sent.as_deref())
                    .await?;
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.metrics.count_rate_limited();
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || matches!(status.as_u16(), 500 | 502 | 503 | 504);
            if retryable {
                let retry_after = parse_retry_after(resp.headers().get(header::RETRY_AFTER));
                if attempt >= self.retry.max_retries {
                    return Err(RemoteError::Unavailable {
                        url: url.to_string(),
                        status: status.as_u16(),
                        detail: read_error_body(resp).await,
                        attempts: attempt + 1,
                        retry_after,
                    });
                }
                attempt += 1;
                let wait = self.retry.delay(attempt, retry_after);
                tracing::info!(url = %url, status = status.as_u16(), attempt, wait_ms = wait.as_millis() as u64, "remote busy, retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Waits for a pull (a manifest GET) to be allowed, and refuses it while
    /// the registry's announced pull budget, less the pulls under way, is
    /// at or under `min_pulls_left_percent` of its limit: the rest is left
    /// for other pulls, and the tag is tried again at the next poll
    /// ([`crate::metrics::Metrics::start_pull`]). The pull counts as under
    /// way until the slot is dropped.
    async fn pull_slot(&self, what: &str) -> Result<PullSlot<'_>, RemoteError> {
        use crate::metrics::PullGate;
        let floor = self.limits.min_pulls_left_percent;
        loop {
            match self.metrics.start_pull(&self.host, floor) {
                PullGate::Go => {
                    return Ok(PullSlot {
                        metrics: &self.metrics,
                        host: &self.host,
                    });
                }
                PullGate::Wait => tokio::time::sleep(Duration::from_millis(20)).await,
                PullGate::Low(b) => {
                    return Err(RemoteError::Deferred {
                        what: format!("pulling {what} from {}", self.host),
                        reason: format!(
                            "the registry has {} of {} pulls left in its window, at or under the {floor}% kept in reserve: deferred to a later poll",
                            b.remaining.unwrap_or(0),
                            b.limit.unwrap_or(0)
                        ),
                        setting: "remote_limits.min_pulls_left_percent",
                    });
                }
            }
        }
    }

    /// The error of a request that used up `request_timeout`.
    fn timed_out(&self, who: &str, url: &Url) -> RemoteError {
        RemoteError::LimitExceeded {
            what: format!("{who} at {}", url_for_message(url)),
            limit: format!(
                "did not answer within {} s",
                self.limits.request_timeout.as_secs()
            ),
            setting: "remote_limits.request_timeout_secs",
        }
    }

    /// Reads a whole body of at most `max` bytes (checked against
    /// `Content-Length` first, then as it arrives), within
    /// `request_timeout`; past the cap, a `LimitExceeded` naming `setting`.
    async fn read_capped(
        &self,
        resp: reqwest::Response,
        url: &Url,
        what: &str,
        max: u64,
        setting: &'static str,
    ) -> Result<Vec<u8>, RemoteError> {
        let over = |_size: u64, announced: bool| RemoteError::LimitExceeded {
            what: format!("{what} at {}", url_for_message(url)),
            limit: format!(
                "{} over the {} limit",
                if announced { "announced" } else { "read" },
                human_bytes(max)
            ),
            setting,
        };
        self.read_body(resp, url, what, max, over).await
    }

    /// The one bounded read of a body into memory: at most `max` bytes
    /// (`too_large(size, announced)` is the error past it, from
    /// `Content-Length` or as it arrives), within `request_timeout`
    /// (`what` names the answer in that error).
    async fn read_body(
        &self,
        resp: reqwest::Response,
        url: &Url,
        what: &str,
        max: u64,
        too_large: impl Fn(u64, bool) -> RemoteError,
    ) -> Result<Vec<u8>, RemoteError> {
        if let Some(n) = resp.content_length().filter(|n| *n > max) {
            return Err(too_large(n, true));
        }
        let read = async {
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.classify(url, &e))?;
                let size = (body.len() + chunk.len()) as u64;
                if size > max {
                    return Err(too_large(size, false));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(self.limits.request_timeout, read)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what, url)))
    }

    fn classify(&self, url: &Url, e: &reqwest::Error) -> RemoteError {
        if let Some(r) = find_refusal(e) {
            refused(r)
        } else if is_tls(e) {
            RemoteError::Tls {
                host: self.host.clone(),
                reason: error_chain(e),
            }
        } else if e.is_redirect() {
            // A redirect loop (or a chain past reqwest's limit of 10) is the
            // remote's configuration, not a passing failure: never retried.
            RemoteError::Protocol {
                url: url.to_string(),
                reason: format!("too many redirects: {}", error_chain(e)),
            }
        } else if e.is_connect() {
            RemoteError::Unreachable {
                host: self.host.clone(),
                reason: connect_cause(e),
            }
        } else {
            RemoteError::Transfer {
                url: url.to_string(),
                reason: error_chain(e),
            }
        }
    }

    /// Maps a non-success status to an error about `what`.
    async fn status_error(&self, resp: reqwest::Response, repo: &str, what: String) -> RemoteError {
        let status = resp.status();
        let url = resp.url().to_string();
        let body = read_error_body(resp).await;
        match status {
            StatusCode::UNAUTHORIZED => RemoteError::Unauthorized {
                host: self.host.clone(),
                repository: repo.to_string(),
                reason: format!("the registry refused the credentials{body}"),
            },
            StatusCode::FORBIDDEN => RemoteError::Denied {
                host: self.host.clone(),
                repository: repo.to_string(),
                reason: format!("HTTP 403{body}"),
            },
            StatusCode::NOT_FOUND => RemoteError::NotFound {
                host: self.host.clone(),
                what,
            },
            _ => RemoteError::Protocol {
                url,
                reason: format!("HTTP {}{body}", status.as_u16()),
            },
        }
    }
}

/// A URL for a message: scheme, host, port and path, never a query (a
/// remote's `Link` may carry anything there).
fn url_for_message(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// `n` bytes in words: `1 MiB`, `512 KiB`, `100 bytes`.
fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn refused(r: HostRefused) -> RemoteError {
    RemoteError::HostRefused {
        host: r.host,
        reason: r.reason,
    }
}

fn pull_scope(repo: &RepositoryName) -> String {
    format!("repository:{repo}:pull")
}

/// Longest error body read: the error JSON is small, and a remote must not
/// make us buffer an endless one.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest time spent reading an error body.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The first OCI error of a response body, as `: CODE message` (the message
/// cut at 300 characters), or empty when the body holds none.
async fn read_error_body(mut resp: reqwest::Response) -> String {
    let read = async {
        let mut bytes = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            if bytes.len() + chunk.len() > MAX_ERROR_BODY {
                return None;
            }
            bytes.extend_from_slice(&chunk);
        }
        Some(bytes)
    };
    // Only a detail for a message: not worth waiting on a slow remote.
    let Ok(Some(bytes)) = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(e) if !e.errors.is_empty() => {
            let message: String = e.errors[0].message.chars().take(300).collect();
            format!(": {} {}", e.errors[0].code, message)
        }
        _ => String::new(),
    }
}

/// Why a connection could not be made, in plain words: "connection
/// refused", "the host name cannot be resolved (...)", "timed out"; the
/// whole error chain when it is something else.
fn connect_cause(e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused (nothing listens on that port)".into();
                }
                std::io::ErrorKind::TimedOut => return "timed out while connecting".into(),
                std::io::ErrorKind::ConnectionReset => {
                    return "the connection was reset while connecting".into();
                }
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    return "no route to the host".into();
                }
                _ => {}
            }
        }
        src = err.source();
    }
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        let detail = chain
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        return format!("the host name cannot be resolved ({detail})");
    }
    if e.is_timeout() {
        return "timed out while connecting".into();
    }
    chain
}

fn is_tls(e: &reqwest::Error) -> bool {
    let chain = error_chain(e).to_ascii_lowercase();
    chain.contains("certificate")
        || chain.contains("tls")
        || chain.contains("handshake")
        || chain.contains("invalidcontenttype")
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

/// The `rel="next"` target of a `Link` header, resolved against `base`.
fn next_link(h: &HeaderMap, base: &Url) -> Option<Url> {
    for value in h.get_all(header::LINK) {
        let v = value.to_str().ok()?;
        for part in v.split(',') {
            let (target, params) = part.split_once(';')?;
            if params.contains("rel=\"next\"") || params.contains("rel=next") {
                let target = target.trim().trim_start_matches('<').trim_end_matches('>');
                return base.join(target).ok();
            }
        }
    }
    None
}

#[async_trait]
impl RemoteRegistry for HttpRemote {
    async fn list_tags(&self, repo: &RepositoryName) -> Result<Vec<String>, RemoteError> {
        let scope = pull_scope(repo);
        let mut url = self.url(&format!("/v2/{repo}/tags/list"));
        url.query_pairs_mut()
            .append_pair("n", &TAG_PAGE_SIZE.to_string());
        let mut tags: Vec<String> = Vec::new();
        // Hashes, not URLs: a remote chooses how long its `Link`s are.
        let mut seen_urls = std::collections::HashSet::new();
        let url_key = |u: &Url| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(u.as_str())
        };
        for _ in 0..MAX_TAG_PAGES {
            seen_urls.insert(url_key(&url));
            let resp = self
                .send(Method::GET, url.clone(), &scope, repo.as_str(), &[])
                .await?;
            if !resp.status().is_success() {
                return Err(self
                    .status_error(resp, repo.as_str(), format!("repository {repo}"))
                    .await);
            }
            let next = next_link(resp.headers(), &url);
            let body = self
                .read_capped(
                    resp,
                    &url,
                    &format!("the tag list of {repo}"),
                    self.limits.max_tag_page_bytes,
                    "remote_limits.max_tag_page_bytes",
                )
                .await?;
            #[derive(serde::Deserialize)]
            struct Page {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: Page = serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol {
                url: url.to_string(),
                reason: format!("tag list is not valid JSON: {e}"),
            })?;
            let before = tags.len();
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > self.limits.max_tags {
                return Err(RemoteError::LimitExceeded {
                    what: format!("the tag list of {repo} at {}", url_for_message(&url)),
                    limit: format!("more than {} tags", self.limits.max_tags),
                    setting: "remote_limits.max_tags",
                });
            }
            match next {
                Some(n) if !seen_urls.contains(&url_key(&n)) && tags.len() > before => url = n,
                _ => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    async fn head_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<ManifestHead, RemoteError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(
                Method::HEAD,
                url,
                &pull_scope(repo),
                repo.as_str(),
                &[(header::ACCEPT, ACCEPT_MANIFESTS.to_string())],
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("manifest {repo}:{reference}"))
                .await);
        }
        let h = resp.headers();
        let digest = match header_str(h, "docker-content-digest") {
            Some(d) => Some(Digest::parse(&d).map_err(|e| RemoteError::Protocol {
                url: resp.url().to_string(),
                reason: format!("Docker-Content-Digest: {e}"),
            })?),
            None => None,
        };
        Ok(ManifestHead {
            digest,
            media_type: header_str(h, "content-type"),
            size: resp.content_length(),
        })
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<RemoteManifest, RemoteError> {
        let what = format!("{repo}@{reference}");
        let _pull = self.pull_slot(&what).await?;
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(
                Method::GET,
                url.clone(),
                &pull_scope(repo),
                repo.as_str(),
                &[(header::ACCEPT, ACCEPT_MANIFESTS.to_string())],
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("manifest {repo}:{reference}"))
                .await);
        }
        let content_type = header_str(resp.headers(), "content-type");
        let announced = header_str(resp.headers(), "docker-content-digest");
        let too_large = |size, _announced| RemoteError::ManifestTooLarge {
            what: what.clone(),
            size,
        };
        let body = self
            .read_body(resp, &url, "the registry", MAX_MANIFEST_SIZE, too_large)
            .await?;
        let digest = Digest::of(&body);
        // By digest, the bytes must hash to it; by tag, to what the registry announced.
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            announced
        };
        if let Some(expected) = expected {
            let expected = Digest::parse(&expected).map_err(|e| RemoteError::Protocol {
                url: url.to_string(),
                reason: format!("Docker-Content-Digest: {e}"),
            })?;
            if expected != digest {
                return Err(RemoteError::DigestMismatch {
                    what: format!("manifest {what}"),
                    expected,
                    actual: digest,
                });
            }
        }
        Ok(RemoteManifest {
            bytes: Bytes::from(body),
            content_type,
            digest,
        })
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RemoteError> {
        let mut url = self.url(&format!("/v2/{repo}/referrers/{digest}"));
        let what = format!("the referrers of {repo}@{digest}");
        let mut found = Vec::new();
        for page in 0..MAX_REFERRER_PAGES {
            let resp = self
                .send(
                    Method::GET,
                    url.clone(),
                    &pull_scope(repo),
                    repo.as_str(),
                    &[(header::ACCEPT, OCI_INDEX.to_string())],
                )
                .await?;
            let status = resp.status();
            // No referrers API (distribution 2.x answers 404 for the route;
            // some proxies 405): the caller falls back to cosign's tags.
            if page == 0
                && matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                )
            {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(self.status_error(resp, repo.as_str(), what.clone()).await);
            }
            let next = next_link(resp.headers(), &url);
            let too_large = |size, _| RemoteError::ManifestTooLarge {
                what: what.clone(),
                size,
            };
            let body = self
                .read_body(resp, &url, &what, MAX_MANIFEST_SIZE, too_large)
                .await?;
            let index =
                Manifest::parse(&body, Some(OCI_INDEX)).map_err(|e| RemoteError::Protocol {
                    url: url_for_message(&url),
                    reason: format!("the referrers list is not an image index: {e}"),
                })?;
            found.extend(index.children().iter().cloned());
            match next {
                Some(n) if n != url => url = n,
                _ => break,
            }
        }
        Ok(Some(found))
    }

    async fn get_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobBody, RemoteError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let range = [(header::RANGE, format!("bytes={offset}-"))];
        let extra: &[_] = if offset > 0 { &range } else { &[] };
        let resp = self
            .send_with(
                Method::GET,
                url.clone(),
                &pull_scope(repo),
                repo.as_str(),
                extra,
                None,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(RemoteError::Protocol {
                url: url.to_string(),
                reason: format!("the registry refused a resume at byte {offset} (HTTP 416)"),
            });
        }
        if !status.is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("blob {digest} in {repo}"))
                .await);
        }
        let partial = status == StatusCode::PARTIAL_CONTENT;
        let start = if partial { offset } else { 0 };
        let total = if partial {
            header_str(resp.headers(), "content-range")
                .and_then(|c| c.rsplit('/').next().and_then(|t| t.parse().ok()))
        } else {
            resp.content_length()
        };
        let u = url.to_string();
        let watch = LowSpeed::new(
            self.limits.min_transfer_rate,
            self.limits.low_speed_window,
            format!("blob {digest} from {}", url_for_message(&url)),
        );
        let stream = WatchedBody::new(resp.bytes_stream(), watch, u);
        Ok(BlobBody {
            offset: start,
            total,
            stream: Box::pin(stream),
        })
    }

    async fn tag_digests(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<super::BulkDigests>, RemoteError> {
        self.bulk_tag_digests(repo).await
    }

    async fn check_access(&self, repo: &RepositoryName) -> Result<Permissions, RemoteError> {
        // Reading: the tag list is the cheapest call that needs pull access
        // and says whether the repository exists.
        let scope = pull_scope(repo);
        let mut url = self.url(&format!("/v2/{repo}/tags/list"));
        url.query_pairs_mut().append_pair("n", "1");
        let resp = self
            .send(Method::GET, url, &scope, repo.as_str(), &[])
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, repo.as_str(), format!("repository {repo}"))
                .await);
        }
        // Writing: open an upload session and cancel it at once.
        let push_scope = format!("repository:{repo}:pull,push");
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let write = match self
            .send(Method::POST, url.clone(), &push_scope, repo.as_str(), &[])
            .await
        {
            Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                if let Some(loc) = header_str(resp.headers(), "location")
                    && let Ok(loc) = url.join(&loc)
                {
                    let _ = self
                        .send(Method::DELETE, loc, &push_scope, repo.as_str(), &[])
                        .await;
                }
                true
            }
            _ => false,
        };
        Ok(Permissions { read: true, write })
    }
}

/// A pull under way ([`HttpRemote::pull_slot`]); ends when dropped.
struct PullSlot<'a> {
    metrics: &'a crate::metrics::Metrics,
    host: &'a str,
}

impl Drop for PullSlot<'_> {
    fn drop(&mut self) {
        self.metrics.pull_ended(self.host);
    }
}
