//! [`ApiClient`]: a typed client of a running `mirror-server`'s DTR
//! `/api/v0` (feature `client`), for any Rust program, and the Python
//! module's `regmirror.Client`.
//!
//! It speaks the wire types of [`crate::api`] and answers with the
//! engine's own types ([`PollMirroringPolicy`], [`Job`], [`api::Tag`],
//! [`LogLine`]), so code written against [`crate::Mirror`] reads the same
//! against a server. Credentials are HTTP Basic (a password or an access
//! token). Lists follow `X-Next-Page-Start`. An error answer becomes
//! [`MirrorError::Api`] with the kind the server gave in `detail.kind`
//! (else [`api::error_kind`] of its code and status) and the field it
//! named; no answer at all is `unreachable`, `tls` or `transient`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ErrorBody, PolicyForm, PolicyView, RegistryCheck};
use crate::error::ErrorKind;
use crate::job::{Job, JobFilter, JobSubmission, LogLine, PARAM_POLICY_ID, POLL_MIRROR};
use crate::mirror::MirrorError;
use crate::policy::PollMirroringPolicy;
use crate::proxy_cache::{ProxyCacheForm, ProxyCacheView};
use crate::push_policy::{PushPolicyForm, PushPolicyView};
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::Visibility;

/// `pageSize` asked for on paged lists.
const PAGE_SIZE: usize = 1000;
/// The most jobs the server lists per request.
const JOB_PAGE: usize = 1000;
/// Pages followed at most, against a `X-Next-Page-Start` that loops.
const MAX_PAGES: usize = 10_000;
/// The first wait between looks at a job [`ApiClient::wait_job`] follows;
/// each wait doubles, up to [`LAST_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(25);
/// The longest wait between looks at a followed job.
const LAST_DELAY: Duration = Duration::from_millis(500);

/// A client of one server, with one set of credentials.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: Secret,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .finish()
    }
}

/// A failure this client reports itself (not an answer of the server).
fn failure(kind: ErrorKind, message: impl Into<String>) -> MirrorError {
    MirrorError::Api {
        kind,
        message: message.into(),
        field: None,
    }
}

/// A successful answer: `X-Next-Page-Start` and the body (`Null` when empty).
struct Answer {
    next_page: Option<String>,
    body: Value,
}

/// A path under `/api/v0`, one segment at a time (each percent-encoded).
type Path<'a> = &'a [&'a str];

impl ApiClient {
    /// A client of the server at `base_url` (`http://127.0.0.1:5000`, maybe
    /// with a path prefix) as `username` with `password` (or an access
    /// token; both empty: anonymous). `timeout` bounds each request.
    pub fn new(
        base_url: &str,
        username: &str,
        password: Secret,
        timeout: Duration,
    ) -> Result<Self, MirrorError> {
        let invalid = |message: String| MirrorError::Api {
            kind: ErrorKind::Invalid,
            message,
            field: Some("baseUrl".into()),
        };
        let base = Url::parse(base_url.trim().trim_end_matches('/')).map_err(|e| {
            invalid(format!(
                "{base_url:?} is not a URL ({e}); give one such as http://127.0.0.1:5000"
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(invalid(format!(
                "{base_url:?} must be an http:// or https:// URL with a host"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("regmirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                failure(
                    ErrorKind::Internal,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(ApiClient {
            http,
            base,
            username: username.to_string(),
            password,
        })
    }

    /// The server's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The user name sent.
    pub fn username(&self) -> &str {
        &self.username
    }

    fn url(&self, path: Path<'_>, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v0"]).extend(path);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request; a non-2xx answer is an error.
    async fn send(
        &self,
        method: Method,
        path: Path<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, MirrorError> {
        let mut req = self.http.request(method.clone(), self.url(path, query));
        if !self.username.is_empty() || !self.password.is_empty() {
            req = req.basic_auth(&self.username, Some(self.password.expose()));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(self.base_url(), &e))?;
        let status = resp.status();
        let next_page = resp
            .headers()
            .get(api::NEXT_PAGE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(self.base_url(), &e))?;
        if !status.is_success() {
            let request = format!("{method} /api/v0/{}", path.join("/"));
            return Err(api_error(status, &bytes, &request));
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                failure(
                    ErrorKind::Internal,
                    format!("the answer to {method} is not JSON: {e}"),
                )
            })?
        };
        Ok(Answer { next_page, body })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: Path<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, MirrorError> {
        decode(self.send(method, path, query, body).await?.body)
    }

    async fn get<T: DeserializeOwned>(&self, path: Path<'_>) -> Result<T, MirrorError> {
        self.call(Method::GET, path, &[], None).await
    }

    /// Every item of a paged list (an array, or an object holding one
    /// under `key`), following `X-Next-Page-Start`.
    async fn get_all<T: DeserializeOwned>(
        &self,
        path: Path<'_>,
        key: &str,
    ) -> Result<Vec<T>, MirrorError> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        let size = PAGE_SIZE.to_string();
        for _ in 0..MAX_PAGES {
            let mut query = vec![("pageSize", size.as_str())];
            if let Some(s) = &start {
                query.push(("pageStart", s.as_str()));
            }
            let answer = self.send(Method::GET, path, &query, None).await?;
            let items = page_items(answer.body, key);
            let got = items.len();
            for item in items {
                out.push(decode(item)?);
            }
            match next_start(start.as_deref(), got, answer.next_page) {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// Creates `repo` with `visibility`; `conflict` if it exists.
    pub async fn create_repository(
        &self,
        repo: &RepositoryName,
        visibility: Visibility,
    ) -> Result<(), MirrorError> {
        let body = json!({"name": repo.name_in_namespace(), "visibility": visibility});
        let path = ["repositories", repo.namespace()];
        self.send(Method::POST, &path, &[], Some(&body)).await?;
        Ok(())
    }

    /// Creates `repo` (private) unless it exists.
    pub async fn ensure_repository(&self, repo: &RepositoryName) -> Result<(), MirrorError> {
        let path = ["repositories", repo.namespace(), repo.name_in_namespace()];
        match self.send(Method::GET, &path, &[], None).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match self.create_repository(repo, Visibility::Private).await {
            // Created meanwhile by someone else: fine.
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
            other => other,
        }
    }

    /// The "Connect" check: whether the remote of `form` can be reached
    /// and read (and written) with its credentials.
    pub async fn check_connection(&self, form: &PolicyForm) -> Result<RegistryCheck, MirrorError> {
        let path = ["remote", "registry"];
        self.call(Method::POST, &path, &[], Some(&to_json(form)))
            .await
    }

    /// Creates a policy for `local` (and the repository, private, if
    /// missing), after the server checked its credentials. Like
    /// [`crate::Mirror::add_policy`], it starts no job: [`Self::poll`] does.
    pub async fn add_policy(
        &self,
        local: &RepositoryName,
        form: &PolicyForm,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        self.ensure_repository(local).await?;
        // Left out, `initialEvaluation` is true and starts no job.
        let form = PolicyForm {
            initial_evaluation: form.initial_evaluation.filter(|apply| !apply),
            ..form.clone()
        };
        let view: PolicyView = self
            .call(
                Method::POST,
                &policies_path(local),
                &[],
                Some(&to_json(&form)),
            )
            .await?;
        policy_of(view)
    }

    /// Every repository name (the API lists policies per repository only).
    async fn repositories(&self) -> Result<Vec<RepositoryName>, MirrorError> {
        #[derive(Deserialize)]
        struct Repo {
            #[serde(default)]
            namespace: String,
            name: String,
        }
        let repos: Vec<Repo> = self.get_all(&["repositories"], "repositories").await?;
        Ok(repos
            .into_iter()
            .filter_map(|r| {
                let full = match r.namespace.as_str() {
                    "" => r.name,
                    _ if r.name.contains('/') => r.name,
                    ns => format!("{ns}/{}", r.name),
                };
                RepositoryName::parse(&full).ok()
            })
            .collect())
    }

    /// The policies of `local`, or of every repository the caller sees.
    pub async fn policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PollMirroringPolicy>, MirrorError> {
        let repos = match local {
            Some(r) => vec![r.clone()],
            None => self.repositories().await?,
        };
        let mut out = Vec::new();
        for repo in repos {
            let views: Vec<PolicyView> = match self.get_all(&policies_path(&repo), "").await {
                Ok(views) => views,
                // Deleted between the listing and this call.
                Err(e) if local.is_none() && e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for view in views {
                out.push(policy_of(view)?);
            }
        }
        Ok(out)
    }

    /// One policy, by its ID alone (`GET /pollMirroringPolicies/{id}`,
    /// regmirror's extension of DTR's API).
    pub async fn policy(&self, id: &str) -> Result<PollMirroringPolicy, MirrorError> {
        let view: PolicyView = self.get(&["pollMirroringPolicies", id]).await?;
        policy_of(view)
    }

    /// Changes the fields `update` sets; the policy as saved.
    pub async fn update_policy(
        &self,
        id: &str,
        update: &PolicyForm,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        let current = self.policy(id).await?;
        let mut path = policies_path(&current.local_repository);
        path.push(id);
        let body = to_json(update);
        let view: PolicyView = self.call(Method::PUT, &path, &[], Some(&body)).await?;
        policy_of(view)
    }

    /// Deletes a policy (its tags stay); whether it existed.
    pub async fn delete_policy(&self, id: &str) -> Result<bool, MirrorError> {
        let current = match self.policy(id).await {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut path = policies_path(&current.local_repository);
        path.push(id);
        self.send(Method::DELETE, &path, &[], None).await?;
        Ok(true)
    }

    /// Creates a push mirroring policy for `local` (and the repository,
    /// private, if missing) after the server checked that its credentials
    /// may push; with `initialEvaluation`, the server also queues a push of
    /// every current tag the rules keep. Answers the policy as shown (the
    /// API never returns its secrets).
    pub async fn add_push_policy(
        &self,
        local: &RepositoryName,
        form: &PushPolicyForm,
    ) -> Result<PushPolicyView, MirrorError> {
        self.ensure_repository(local).await?;
        let body = to_json(form);
        self.call(Method::POST, &push_policies_path(local), &[], Some(&body))
            .await
    }

    /// The push policies of `local`, or of every repository the caller sees.
    pub async fn push_policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PushPolicyView>, MirrorError> {
        let repos = match local {
            Some(r) => vec![r.clone()],
            None => self.repositories().await?,
        };
        let mut out = Vec::new();
        for repo in repos {
            match self.get_all(&push_policies_path(&repo), "").await {
                Ok(views) => out.extend(views),
                // Deleted between the listing and this call.
                Err(e) if local.is_none() && e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One push policy by ID (the API has them per repository only: found
    /// among every repository's).
    pub async fn push_policy(&self, id: &str) -> Result<PushPolicyView, MirrorError> {
        self.push_policies(None)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("push mirroring policy {id}"),
            })
    }

    /// Changes the fields `update` sets; the push policy as saved.
    pub async fn update_push_policy(
        &self,
        id: &str,
        update: &PushPolicyForm,
    ) -> Result<PushPolicyView, MirrorError> {
        let current = self.push_policy(id).await?;
        let local = RepositoryName::parse(&current.local_repository)
            .map_err(|e| failure(ErrorKind::Internal, format!("the server sent {e}")))?;
        let mut path = push_policies_path(&local);
        path.push(id);
        let body = to_json(update);
        self.call(Method::PUT, &path, &[], Some(&body)).await
    }

    /// Deletes a push policy (what it pushed stays); whether it existed.
    pub async fn delete_push_policy(&self, id: &str) -> Result<bool, MirrorError> {
        let current = match self.push_policy(id).await {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let local = RepositoryName::parse(&current.local_repository)
            .map_err(|e| failure(ErrorKind::Internal, format!("the server sent {e}")))?;
        let mut path = push_policies_path(&local);
        path.push(id);
        self.send(Method::DELETE, &path, &[], None).await?;
        Ok(true)
    }

    /// Every proxy cache (pull-through), by namespace, as shown: the API
    /// never returns a cache's password (server administrators only).
    pub async fn proxy_caches(&self) -> Result<Vec<ProxyCacheView>, MirrorError> {
        self.get(&["proxyCaches"]).await
    }

    /// The proxy cache of `namespace`; `not_found` if there is none.
    pub async fn proxy_cache(&self, namespace: &str) -> Result<ProxyCacheView, MirrorError> {
        self.get(&["proxyCaches", namespace]).await
    }

    /// Creates a proxy cache from `form` (`namespace` and `remoteHost`
    /// required), as [`crate::Mirror::add_proxy_cache`] does on the
    /// server; a bad field is `invalid` naming it, a namespace that has a
    /// cache or holds repositories `conflict`. Answers the cache as shown.
    pub async fn add_proxy_cache(
        &self,
        form: &ProxyCacheForm,
    ) -> Result<ProxyCacheView, MirrorError> {
        let body = to_json(form);
        self.call(Method::POST, &["proxyCaches"], &[], Some(&body))
            .await
    }

    /// Changes the fields `update` sets of the proxy cache of `namespace`
    /// (its namespace cannot change; a new remote host or user name drops
    /// the stored password unless `update` gives one); the cache as saved.
    pub async fn update_proxy_cache(
        &self,
        namespace: &str,
        update: &ProxyCacheForm,
    ) -> Result<ProxyCacheView, MirrorError> {
        let body = to_json(update);
        self.call(Method::PUT, &["proxyCaches", namespace], &[], Some(&body))
            .await
    }

    /// Deletes the proxy cache of `namespace` (its cached repositories
    /// stay, no longer filled); `not_found` if there is none.
    pub async fn delete_proxy_cache(&self, namespace: &str) -> Result<(), MirrorError> {
        self.send(Method::DELETE, &["proxyCaches", namespace], &[], None)
            .await?;
        Ok(())
    }

    /// Runs one `push_mirror_tag` job (`tag` through the push policy
    /// `policy_id`) on the server and waits for its end, as [`Self::poll`].
    pub async fn push(
        &self,
        policy_id: &str,
        tag: &str,
        cancel: CancellationToken,
    ) -> Result<Job, MirrorError> {
        use crate::push_policy::{PARAM_PUSH_POLICY_ID, PARAM_TAG, PUSH_MIRROR_TAG};
        let submission = JobSubmission {
            action: PUSH_MIRROR_TAG.into(),
            parameters: BTreeMap::from([
                (PARAM_PUSH_POLICY_ID.to_string(), policy_id.to_string()),
                (PARAM_TAG.to_string(), tag.to_string()),
            ]),
            ..Default::default()
        };
        let job = self.submit_job(&submission).await?;
        self.wait_job(&job.id, cancel).await
    }

    /// The tags of a local repository, as [`crate::Mirror::tag_views`].
    pub async fn tags(&self, repo: &RepositoryName) -> Result<Vec<api::Tag>, MirrorError> {
        let path = [
            "repositories",
            repo.namespace(),
            repo.name_in_namespace(),
            "tags",
        ];
        self.get_all(&path, "tags").await
    }

    /// A tag's earlier values, newest first, as
    /// [`crate::Mirror::tag_history`].
    pub async fn tag_history(
        &self,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Vec<crate::store::TagHistoryEntry>, MirrorError> {
        let (ns, name) = (repo.namespace(), repo.name_in_namespace());
        self.get(&["repositories", ns, name, "tags", tag, "history"])
            .await
    }

    /// Schedules a job (server administrators only); the job as queued.
    pub async fn submit_job(&self, submission: &JobSubmission) -> Result<Job, MirrorError> {
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        let body = json!({
            "action": submission.action,
            "parameters": submission.parameters,
            "retries": submission.retries,
            "scheduledAt": time(submission.scheduled_at),
            "deadline": time(submission.deadline),
        });
        self.call(Method::POST, &["jobs"], &[], Some(&body)).await
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Job, MirrorError> {
        self.get(&["jobs", id]).await
    }

    /// Jobs, newest first, as `filter` says (`limit` 0: all), fetched in
    /// pages of at most the server's maximum.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, MirrorError> {
        let running = match filter.running {
            Some(true) => "true",
            Some(false) => "false",
            None => "any",
        };
        let status = filter.status.map_or("any", |s| s.as_str());
        let mut out: Vec<Job> = Vec::new();
        loop {
            let want = match filter.limit {
                0 => JOB_PAGE,
                n => (n - out.len()).min(JOB_PAGE),
            };
            let (start, limit) = ((filter.start + out.len()).to_string(), want.to_string());
            let query = [
                ("action", filter.action.as_deref().unwrap_or("any")),
                ("running", running),
                ("status", status),
                ("start", start.as_str()),
                ("limit", limit.as_str()),
            ];
            #[derive(Deserialize)]
            struct Page {
                jobs: Vec<Job>,
            }
            let page: Page = self.call(Method::GET, &["jobs"], &query, None).await?;
            let short = page.jobs.len() < want;
            out.extend(page.jobs);
            if short || (filter.limit > 0 && out.len() >= filter.limit) {
                return Ok(out);
            }
        }
    }

    /// A job's log, oldest line first.
    pub async fn job_logs(&self, id: &str) -> Result<Vec<LogLine>, MirrorError> {
        self.get(&["jobs", id, "logs"]).await
    }

    /// Requests a cancel: a waiting job ends at once, a running one at its
    /// next check. The job as it is then.
    pub async fn cancel_job(&self, id: &str) -> Result<Job, MirrorError> {
        self.send(Method::POST, &["jobs", id, "cancel"], &[], None)
            .await?;
        self.job(id).await
    }

    /// Runs one `poll_mirror` job for `policy_id` on the server and waits
    /// for its end (see [`Self::wait_job`]): `done`, `errored` or
    /// `canceled`.
    pub async fn poll(
        &self,
        policy_id: &str,
        cancel: CancellationToken,
    ) -> Result<Job, MirrorError> {
        let submission = JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: BTreeMap::from([(PARAM_POLICY_ID.to_string(), policy_id.to_string())]),
            ..Default::default()
        };
        let job = self.submit_job(&submission).await?;
        self.wait_job(&job.id, cancel).await
    }

    /// Follows a job until it finishes, looking again after a wait that
    /// starts short and doubles. A cancel of `cancel` cancels the job on
    /// the server, then waits for it to stop, at most its `stopTimeout`
    /// (after which the job as last seen is returned).
    pub async fn wait_job(&self, id: &str, cancel: CancellationToken) -> Result<Job, MirrorError> {
        let mut delay = FIRST_DELAY;
        let mut stop_by: Option<tokio::time::Instant> = None;
        loop {
            let job = self.job(id).await?;
            if job.status.is_final() {
                return Ok(job);
            }
            if stop_by.is_none() && cancel.is_cancelled() {
                match self.cancel_job(id).await {
                    Ok(job) if job.status.is_final() => return Ok(job),
                    Ok(_) => {}
                    // Finished meanwhile: the next look says how.
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(e),
                }
                stop_by = Some(tokio::time::Instant::now() + job.stop_timeout);
                delay = FIRST_DELAY;
            }
            if stop_by.is_some_and(|t| tokio::time::Instant::now() >= t) {
                return Ok(job);
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled(), if stop_by.is_none() => {}
            }
            delay = (delay * 2).min(LAST_DELAY);
        }
    }
}

/// `/api/v0/repositories/{repo}/pollMirroringPolicies`.
fn policies_path(repo: &RepositoryName) -> Vec<&str> {
    vec![
        "repositories",
        repo.namespace(),
        repo.name_in_namespace(),
        "pollMirroringPolicies",
    ]
}

fn push_policies_path(repo: &RepositoryName) -> Vec<&str> {
    vec![
        "repositories",
        repo.namespace(),
        repo.name_in_namespace(),
        "pushMirroringPolicies",
    ]
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Reads an answer, or says it is not what the API sends.
fn decode<T: DeserializeOwned>(value: Value) -> Result<T, MirrorError> {
    serde_json::from_value(value).map_err(|e| {
        failure(
            ErrorKind::Internal,
            format!(
                "unexpected answer (not a {}): {e}",
                std::any::type_name::<T>()
            ),
        )
    })
}

fn policy_of(view: PolicyView) -> Result<PollMirroringPolicy, MirrorError> {
    PollMirroringPolicy::try_from(view)
        .map_err(|e| failure(ErrorKind::Internal, format!("the server sent a policy {e}")))
}

/// The items of one page: the body if it is an array, else its `key` array.
fn page_items(body: Value, key: &str) -> Vec<Value> {
    match body {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove(key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Where the page after one that started at `current` and held `got`
/// items starts: the server's `next`, unless the page was empty or `next`
/// would read the same page again.
fn next_start(current: Option<&str>, got: usize, next: Option<String>) -> Option<String> {
    next.filter(|n| got > 0 && current != Some(n.as_str()))
}

/// A request that got no HTTP answer.
fn transport_error(base: &str, err: &reqwest::Error) -> MirrorError {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if lower.contains("certificate") || lower.contains("tls") {
        ErrorKind::Tls
    } else if err.is_timeout() {
        ErrorKind::Transient
    } else if err.is_connect() {
        ErrorKind::Unreachable
    } else {
        ErrorKind::Transient
    };
    failure(kind, format!("cannot reach the server at {base}: {chain}"))
}

/// An error answer ([`ErrorBody`]) to `request`: the kind the server gave
/// in `detail.kind` (else [`api::error_kind`] of its code and `status`),
/// its message and field. A body that is not an [`ErrorBody`] gives the
/// status's kind and a message quoting the body's start.
fn api_error(status: StatusCode, body: &[u8], request: &str) -> MirrorError {
    let first = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let Some(item) = first else {
        let text = String::from_utf8_lossy(&body[..body.len().min(500)]);
        let text = match serde_json::from_slice::<Value>(body) {
            Ok(Value::String(s)) => s,
            _ => text.trim().to_string(),
        };
        let message = match text.as_str() {
            "" => format!("{request}: HTTP {status}"),
            t => format!("{request}: HTTP {status}: {t}"),
        };
        return failure(api::error_kind("", status.as_u16()), message);
    };
    MirrorError::Api {
        kind: item
            .kind()
            .unwrap_or_else(|| api::error_kind(&item.code, status.as_u16())),
        field: item.field().map(str::to_string),
        message: item.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: Value, kind: ErrorKind, field: Option<&str>, message: &str) {
        let bytes = match &body {
            Value::Null => Vec::new(),
            b => serde_json::to_vec(b).unwrap(),
        };
        let e = api_error(StatusCode::from_u16(status).unwrap(), &bytes, "GET /x");
        let MirrorError::Api {
            kind: k,
            field: f,
            message: m,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            (*k, f.as_deref(), m.as_str()),
            (kind, field, message),
            "{body}"
        );
        assert_eq!(e.kind(), kind);
        assert_eq!(e.to_string(), message);
    }

    fn error(code: &str, message: &str, detail: Value) -> Value {
        json!({"errors": [{"code": code, "message": message, "detail": detail}]})
    }

    #[test]
    fn error_answers_map_to_kinds_with_their_field() {
        use ErrorKind::*;
        for (status, code, kind) in [
            (401, "NOT_AUTHENTICATED", Unauthorized),
            (403, "NOT_AUTHORIZED", Denied),
            (404, "NO_SUCH_REPOSITORY", NotFound),
            (404, "NO_SUCH_JOB", NotFound),
            (409, "REPOSITORY_EXISTS", Conflict),
            (400, "REMOTE_REGISTRY_INVALID_PERMISSIONS", Unauthorized),
            (429, "TOO_MANY_REQUESTS", Transient),
        ] {
            check(status, error(code, "m", json!({})), kind, None, "m");
        }
        check(
            400,
            error(
                "INVALID_POLL_MIRRORING_POLICY",
                "remoteHost: bad",
                json!({"field": "remoteHost", "reason": "bad"}),
            ),
            Invalid,
            Some("remoteHost"),
            "remoteHost: bad",
        );
        // The server's `detail.kind` wins over the code's.
        for kind in [Tls, NotFound, Unreachable] {
            let body = error(
                "REMOTE_REGISTRY_INVALID_PERMISSIONS",
                "m",
                json!({"kind": kind.code()}),
            );
            check(400, body, kind, None, "m");
        }
        check(
            502,
            json!("bad gateway"),
            Transient,
            None,
            "GET /x: HTTP 502 Bad Gateway: bad gateway",
        );
        check(
            404,
            Value::Null,
            NotFound,
            None,
            "GET /x: HTTP 404 Not Found",
        );
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>down</html>", "GET /x");
        assert_eq!(
            e.to_string(),
            "GET /x: HTTP 502 Bad Gateway: <html>down</html>"
        );
    }

    #[test]
    fn paging_follows_next_until_empty_or_repeated() {
        assert_eq!(next_start(None, 3, Some("b".into())).as_deref(), Some("b"));
        assert_eq!(next_start(Some("a"), 3, Some("b".into())), Some("b".into()));
        assert_eq!(next_start(Some("b"), 3, Some("b".into())), None, "loops");
        assert_eq!(next_start(Some("a"), 0, Some("b".into())), None, "empty");
        assert_eq!(next_start(Some("a"), 3, None), None, "last page");
        assert_eq!(page_items(json!([1, 2]), "tags"), vec![json!(1), json!(2)]);
        assert_eq!(page_items(json!({"tags": [1]}), "tags"), vec![json!(1)]);
        assert!(page_items(json!({"other": [1]}), "tags").is_empty());
        assert!(page_items(Value::Null, "").is_empty());
    }

    #[test]
    fn urls_keep_a_prefix_and_encode_segments() {
        let c = ApiClient::new(
            "http://h:5000/mirror/",
            "u",
            Secret::default(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(c.base_url(), "http://h:5000/mirror");
        assert_eq!(
            c.url(&["jobs", "a b/c"], &[("limit", "1")]).as_str(),
            "http://h:5000/mirror/api/v0/jobs/a%20b%2Fc?limit=1"
        );
        for bad in ["not a url", "ftp://h", "file:///x"] {
            let e = ApiClient::new(bad, "", Secret::default(), Duration::from_secs(1)).unwrap_err();
            assert!(
                matches!(&e, MirrorError::Api { kind: ErrorKind::Invalid, field: Some(f), .. } if f == "baseUrl"),
                "{e:?}"
            );
        }
    }
}
