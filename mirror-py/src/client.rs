//! [`ApiClient`]: a running `mirror-server` over its DTR-compatible
//! `/api/v0` API, with HTTP Basic credentials (a password or an access token).
//!
//! It only moves JSON: forms out (mirror-core's [`NewPolicy`] and
//! [`PolicyUpdate`] in DTR's field names), answers in (decoded by `model.rs`
//! like the embedded engine's), and the server's error codes into
//! [`Failure`]s so both raise the same exception classes.

use std::time::Duration;

use mirror_core::api::{ErrorBody, error_kind};
use mirror_core::{ErrorKind, NewPolicy, PolicyUpdate, RepositoryName, Secret};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::backend::{Access, JobQuery};
use crate::errors::Failure;
use crate::model::{Policy, Tag, decode};

/// Page size asked for on list endpoints (DTR's `pageSize`).
const PAGE_SIZE: &str = "1000";
/// The most jobs the server lists per request.
const JOB_PAGE: usize = 1000;
/// Hard cap on pages followed, against a `X-Next-Page-Start` that loops.
const MAX_PAGES: usize = 10_000;

/// A client of one server, with one set of credentials.
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

/// A successful answer: `X-Next-Page-Start` and the JSON body (`Null` when empty).
struct Answer {
    next_page: Option<String>,
    body: Value,
}

impl ApiClient {
    /// A client for the server at `base_url` (`http://127.0.0.1:5000`).
    pub fn new(
        base_url: &str,
        username: String,
        password: Secret,
        timeout: Duration,
    ) -> Result<Self, Failure> {
        let invalid =
            |reason: String| Failure::new(ErrorKind::Invalid, reason).with_field("baseUrl");
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
            .user_agent(concat!("regmirror-py/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Failure::new(
                    ErrorKind::Internal,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(ApiClient {
            http,
            base,
            username,
            password,
        })
    }

    /// The server's URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The user name sent.
    pub fn username(&self) -> &str {
        &self.username
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request and turns a non-2xx answer into a [`Failure`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let url = self.url(path, query);
        let mut req = self.http.request(method.clone(), url);
        if !self.username.is_empty() || !self.password.is_empty() {
            req = req.basic_auth(&self.username, Some(self.password.expose()));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_failure(self.base_url(), &e))?;
        let status = resp.status();
        let next_page = resp
            .headers()
            .get("x-next-page-start")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_failure(self.base_url(), &e))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into())
            })
        };
        if status.is_success() {
            Ok(Answer { next_page, body })
        } else {
            Err(api_failure(status, &body, &format!("{method} {path}")))
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        Ok(self.send(Method::GET, path, query, None).await?.body)
    }

    /// Every item of a paged list (an array, or an object holding one
    /// under `key`), following `X-Next-Page-Start`.
    async fn get_all(&self, path: &str, key: &str) -> Result<Vec<Value>, Failure> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("pageSize", PAGE_SIZE)];
            if let Some(s) = &start {
                query.push(("pageStart", s.as_str()));
            }
            let answer = self.send(Method::GET, path, &query, None).await?;
            let items = match answer.body {
                Value::Array(items) => items,
                Value::Object(mut o) => match o.remove(key) {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let got = items.len();
            out.extend(items);
            match answer.next_page {
                Some(next) if got > 0 && start.as_deref() != Some(next.as_str()) => {
                    start = Some(next)
                }
                _ => break,
            }
        }
        Ok(out)
    }

    fn policies_path(repo: &RepositoryName) -> String {
        format!("/api/v0/repositories/{repo}/pollMirroringPolicies")
    }

    /// Creates the local repository (private) unless it exists, then the policy.
    pub async fn add_policy(
        &self,
        local: &RepositoryName,
        form: &NewPolicy,
        initial_evaluation: bool,
    ) -> Result<Policy, Failure> {
        self.ensure_repository(local).await?;
        // Left out, `initialEvaluation` is true but starts no job, as the
        // embedded `Mirror::add_policy` does not: the caller polls.
        let query: &[(&str, &str)] = if initial_evaluation {
            &[]
        } else {
            &[("initialEvaluation", "false")]
        };
        let answer = self
            .send(
                Method::POST,
                &Self::policies_path(local),
                query,
                Some(&form_body(form)),
            )
            .await?;
        decode("policy", answer.body)
    }

    async fn ensure_repository(&self, repo: &RepositoryName) -> Result<(), Failure> {
        match self.get(&format!("/api/v0/repositories/{repo}"), &[]).await {
            Ok(_) => return Ok(()),
            Err(f) if f.kind == ErrorKind::NotFound => {}
            Err(f) => return Err(f),
        }
        let body = json!({"name": repo.short_name(), "visibility": "private"});
        match self
            .send(
                Method::POST,
                &format!("/api/v0/repositories/{}", repo.namespace()),
                &[],
                Some(&body),
            )
            .await
        {
            // Created meanwhile by someone else: fine.
            Err(f) if f.kind == ErrorKind::Conflict => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `POST /api/v0/remote/registry`: the "Connect" check.
    pub async fn check_connection(&self, form: &NewPolicy) -> Result<Access, Failure> {
        let answer = self
            .send(
                Method::POST,
                "/api/v0/remote/registry",
                &[],
                Some(&check_body(form)),
            )
            .await?;
        let perms = answer.body.get("permissions").unwrap_or(&answer.body);
        let flag = |k: &str| perms.get(k).and_then(Value::as_bool).unwrap_or(false);
        Ok(Access {
            read: flag("read"),
            write: flag("write"),
        })
    }

    /// Every repository name, for the policy and tag lookups that DTR only
    /// offers per repository.
    async fn repositories(&self) -> Result<Vec<RepositoryName>, Failure> {
        let items = self.get_all("/api/v0/repositories", "repositories").await?;
        Ok(items
            .iter()
            .filter_map(|r| {
                let name = r.get("name")?.as_str()?;
                let full = match r.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && !name.contains('/') => format!("{ns}/{name}"),
                    _ => name.to_string(),
                };
                RepositoryName::parse(&full).ok()
            })
            .collect())
    }

    /// Policies of one repository, or of every repository.
    pub async fn policies(&self, local: Option<&RepositoryName>) -> Result<Vec<Policy>, Failure> {
        let repos = match local {
            Some(r) => vec![r.clone()],
            None => self.repositories().await?,
        };
        let mut out = Vec::new();
        for repo in repos {
            let items = match self.get_all(&Self::policies_path(&repo), "").await {
                Ok(items) => items,
                // Deleted between the listing and this call.
                Err(f) if local.is_none() && f.kind == ErrorKind::NotFound => continue,
                Err(f) => return Err(f),
            };
            for item in items {
                out.push(decode("policy", item)?);
            }
        }
        Ok(out)
    }

    /// One policy, found among every repository's (DTR has no global path).
    pub async fn policy(&self, id: &str) -> Result<Policy, Failure> {
        self.policies(None)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| {
                Failure::new(
                    ErrorKind::NotFound,
                    format!("poll mirroring policy {id} not found"),
                )
            })
    }

    fn policy_path(p: &Policy) -> Result<String, Failure> {
        let repo = RepositoryName::parse(&p.local_repository)
            .map_err(|e| Failure::new(ErrorKind::Internal, format!("the server sent {e}")))?;
        Ok(format!("{}/{}", Self::policies_path(&repo), p.id))
    }

    /// `PUT` with the fields that are set.
    pub async fn update_policy(&self, id: &str, update: &PolicyUpdate) -> Result<Policy, Failure> {
        let current = self.policy(id).await?;
        let answer = self
            .send(
                Method::PUT,
                &Self::policy_path(&current)?,
                &[],
                Some(&update_body(update)),
            )
            .await?;
        decode("policy", answer.body)
    }

    /// Deletes a policy; `false` if there was none.
    pub async fn delete_policy(&self, id: &str) -> Result<bool, Failure> {
        let current = match self.policy(id).await {
            Ok(p) => p,
            Err(f) if f.kind == ErrorKind::NotFound => return Ok(false),
            Err(f) => return Err(f),
        };
        self.send(Method::DELETE, &Self::policy_path(&current)?, &[], None)
            .await?;
        Ok(true)
    }

    /// The tags of a repository.
    pub async fn tags(&self, repo: &RepositoryName) -> Result<Vec<Tag>, Failure> {
        self.get_all(&format!("/api/v0/repositories/{repo}/tags"), "tags")
            .await?
            .iter()
            .map(Tag::from_api)
            .collect()
    }

    /// Submits a `poll_mirror` job for one policy; the job as queued.
    pub async fn submit_poll(&self, policy_id: &str) -> Result<Value, Failure> {
        let body = json!({"action": "poll_mirror", "parameters": {"policyID": policy_id}});
        Ok(self
            .send(Method::POST, "/api/v0/jobs", &[], Some(&body))
            .await?
            .body)
    }

    /// Jobs, newest first: `limit` of them (0: all), fetched in pages of
    /// at most [`JOB_PAGE`] (the server's maximum).
    pub async fn jobs(&self, q: &JobQuery) -> Result<Vec<Value>, Failure> {
        let running = match q.running {
            Some(true) => "true",
            Some(false) => "false",
            None => "any",
        };
        let mut out = Vec::new();
        loop {
            let want = match q.limit {
                0 => JOB_PAGE,
                n => (n - out.len()).min(JOB_PAGE),
            };
            let (start, limit) = (out.len().to_string(), want.to_string());
            let query = [
                ("action", q.action.as_deref().unwrap_or("any")),
                ("running", running),
                ("start", start.as_str()),
                ("limit", limit.as_str()),
            ];
            let page = match self.get("/api/v0/jobs", &query).await? {
                Value::Object(mut o) => match o.remove("jobs") {
                    Some(Value::Array(jobs)) => jobs,
                    _ => Vec::new(),
                },
                Value::Array(jobs) => jobs,
                _ => Vec::new(),
            };
            let short = page.len() < want;
            out.extend(page);
            if short || (q.limit > 0 && out.len() >= q.limit) {
                return Ok(out);
            }
        }
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Value, Failure> {
        self.get(&format!("/api/v0/jobs/{}", path_segment(id)), &[])
            .await
    }

    /// Requests a cancel.
    pub async fn cancel_job(&self, id: &str) -> Result<(), Failure> {
        self.send(
            Method::POST,
            &format!("/api/v0/jobs/{}/cancel", path_segment(id)),
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// A job's log lines.
    pub async fn job_logs(&self, id: &str) -> Result<Vec<String>, Failure> {
        let body = self
            .get(&format!("/api/v0/jobs/{}/logs", path_segment(id)), &[])
            .await?;
        Ok(body
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.get("data").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Percent-encodes an ID for a path segment (IDs are UUIDs, but a caller
/// may pass anything).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// DTR's create form (`forms.CreatePollMirroringPolicy`).
fn form_body(f: &NewPolicy) -> Value {
    json!({
        "remoteHost": f.remote_host,
        "remoteRepository": f.remote_repository,
        "username": f.username,
        "password": f.password.expose(),
        "authToken": f.auth_token.expose(),
        "remoteCA": f.remote_ca,
        "skipTLSVerification": f.skip_tls_verification,
        "enabled": f.enabled,
    })
}

/// DTR's `CreateRemoteRegistryCheck`: the create form without `enabled`.
fn check_body(f: &NewPolicy) -> Value {
    let mut body = form_body(f);
    if let Some(o) = body.as_object_mut() {
        o.remove("enabled");
    }
    body
}

/// DTR's partial update form: only the fields that are set.
fn update_body(u: &PolicyUpdate) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("remoteHost", u.remote_host.clone().map(Value::from));
    put(
        "remoteRepository",
        u.remote_repository.clone().map(Value::from),
    );
    put("username", u.username.clone().map(Value::from));
    put("password", u.password.as_ref().map(|s| s.expose().into()));
    put(
        "authToken",
        u.auth_token.as_ref().map(|s| s.expose().into()),
    );
    put("remoteCA", u.remote_ca.clone().map(Value::from));
    put(
        "skipTLSVerification",
        u.skip_tls_verification.map(Value::from),
    );
    put("enabled", u.enabled.map(Value::from));
    Value::Object(m)
}

/// A request that got no HTTP answer.
fn transport_failure(base: &str, err: &reqwest::Error) -> Failure {
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
    Failure::new(kind, format!("cannot reach the server at {base}: {chain}"))
}

/// An error answer (`mirror_core::api::ErrorBody`) as a [`Failure`]: the
/// kind the server gave in `detail.kind` (else the one mapping from DTR's
/// code and the status), the message as the server wrote it.
fn api_failure(status: StatusCode, body: &Value, request: &str) -> Failure {
    let first = serde_json::from_value::<ErrorBody>(body.clone())
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let Some(item) = first else {
        let message = match body.as_str() {
            Some(s) if !s.is_empty() => format!("{request}: HTTP {status}: {s}"),
            _ => format!("{request}: HTTP {status}"),
        };
        return Failure::new(error_kind("", status.as_u16()), message);
    };
    let kind = item
        .kind()
        .unwrap_or_else(|| error_kind(&item.code, status.as_u16()));
    let mut failure = Failure::new(kind, item.message.clone());
    if let Some(field) = item.field() {
        failure = failure.with_field(field);
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: Value, kind: ErrorKind, field: Option<&str>, message: &str) {
        let f = api_failure(StatusCode::from_u16(status).unwrap(), &body, "GET /x");
        assert_eq!(f.kind, kind, "{body}");
        assert_eq!(f.field.as_deref(), field, "{body}");
        assert_eq!(f.message, message, "{body}");
    }

    fn error(code: &str, message: &str, detail: Value) -> Value {
        json!({"errors": [{"code": code, "message": message, "detail": detail}]})
    }

    #[test]
    fn server_errors_map_to_kinds() {
        use ErrorKind::*;
        check(
            401,
            error("NOT_AUTHENTICATED", "m", json!({})),
            Unauthorized,
            None,
            "m",
        );
        check(
            403,
            error("NOT_AUTHORIZED", "m", json!({})),
            Denied,
            None,
            "m",
        );
        check(
            404,
            error("NO_SUCH_REPOSITORY", "m", json!({})),
            NotFound,
            None,
            "m",
        );
        check(
            404,
            error("NO_SUCH_JOB", "m", json!({})),
            NotFound,
            None,
            "m",
        );
        check(
            409,
            error("REPOSITORY_EXISTS", "m", json!({})),
            Conflict,
            None,
            "m",
        );
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
        for kind in [Tls, NotFound, Unreachable] {
            let body = error(
                "REMOTE_REGISTRY_INVALID_PERMISSIONS",
                "m",
                json!({"kind": kind.code()}),
            );
            check(400, body, kind, None, "m");
        }
        let body = error("REMOTE_REGISTRY_INVALID_PERMISSIONS", "m", json!({}));
        check(400, body, Unauthorized, None, "m");
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
    }

    #[test]
    fn tags_read_both_shapes() {
        let core = json!({"name": "v1", "digest": "sha256:aa", "mediaType": "m", "size": 3,
            "mirroredBy": "p", "mirroredFrom": "http://h/a/b:v1", "updatedAt": "t"});
        let dtr = json!({"name": "v1", "digest": "sha256:aa", "mediaType": "m", "size": 3,
            "updatedAt": "t", "mirroring": {"mirroringPolicyID": "p", "digest": "sha256:aa",
            "remoteRepository": "http://h/a/b", "remoteTag": "v1"}});
        for v in [core, dtr] {
            let t = Tag::from_api(&v).unwrap();
            assert_eq!(
                (
                    t.name.as_str(),
                    t.digest.as_str(),
                    t.size,
                    t.mirrored_by.as_deref()
                ),
                ("v1", "sha256:aa", 3, Some("p"))
            );
            assert_eq!(t.mirrored_from.as_deref(), Some("http://h/a/b:v1"));
        }
    }
}
