//! A `mirror-server` started in-process on `127.0.0.1:0`, and small HTTP
//! helpers for its APIs.

use std::time::{Duration, Instant};

use mirror_server::{CancellationToken, Config, ServerError};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The admin password every test server is started with.
pub const ADMIN_PASSWORD: &str = "admin-pa55word";

pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub host_port: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
    _dir: tempfile::TempDir,
}

/// Credentials of a request: `None` is anonymous.
pub type Creds<'a> = Option<(&'a str, &'a str)>;

pub const ADMIN: Creds<'static> = Some(("admin", ADMIN_PASSWORD));

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server whose settings `configure` adjusts.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("regmirror-server-")
            .tempdir()
            .unwrap();
        TestServer::start_in(dir, configure).await
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        let dir = self.shutdown_keep_dir().await;
        TestServer::start_in(dir, |_| {}).await
    }

    async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::new(dir.path().join("data"));
        config.admin_password = Some(ADMIN_PASSWORD.into());
        config.shutdown_grace = Duration::from_secs(5);
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(mirror_server::run(config, listener, shutdown.clone()));
        let server = TestServer {
            url: format!("http://{addr}"),
            host_port: addr.to_string(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            shutdown,
            handle: Some(handle),
            _dir: dir,
        };
        // The listener is bound already; wait until the router answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = server
                .client
                .get(format!("{}/v2/", server.url))
                .send()
                .await
            {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
                break;
            }
            assert!(Instant::now() < deadline, "mirror-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Grants `user` `level` on `repo` (`namespace/name`) as admin.
    pub async fn grant(&self, repo: &str, user: &str, level: &str) {
        let (s, b) = self
            .call(
                Method::PUT,
                &format!("/api/v0/repositories/{repo}/userAccess/{user}"),
                ADMIN,
                Some(serde_json::json!({"accessLevel": level})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// A request to `path` with `creds`.
    pub fn request(&self, method: Method, path: &str, creds: Creds) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.url));
        match creds {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    }

    /// A request to `path` with `Authorization: Bearer <token>`.
    pub fn request_bearer(
        &self,
        method: Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    /// A JSON API call: status and parsed body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        creds: Creds<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = exchange(self.request(method, path, creds), body).await;
        (status, value)
    }

    /// Sends a raw body (for malformed JSON).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        creds: Creds<'_>,
        body: &str,
    ) -> (StatusCode, Value) {
        let resp = self
            .request(method, path, creds)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates a user as admin.
    pub async fn create_user(&self, name: &str, password: &str) {
        let (s, b) = self
            .call(
                Method::POST,
                "/api/v0/accounts",
                ADMIN,
                Some(serde_json::json!({"name": name, "password": password})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// Creates `namespace/name` as admin.
    pub async fn create_repo(&self, namespace: &str, name: &str, visibility: &str) {
        let (s, b) = self
            .call(
                Method::POST,
                &format!("/api/v0/repositories/{namespace}"),
                ADMIN,
                Some(serde_json::json!({"name": name, "visibility": visibility})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// Waits (at most `within`) until a job is no longer `waiting` or
    /// `running`; its status (the last one seen, if it never ended) and its
    /// log lines.
    pub async fn job_outcome(&self, job_id: &str, within: Duration) -> (String, Vec<String>) {
        let deadline = Instant::now() + within;
        loop {
            let (s, job) = self
                .call(Method::GET, &format!("/api/v0/jobs/{job_id}"), ADMIN, None)
                .await;
            assert_eq!(s, StatusCode::OK, "{job}");
            let status = job["status"].as_str().unwrap().to_string();
            if matches!(status.as_str(), "waiting" | "running") && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let (_, logs) = self
                .call(
                    Method::GET,
                    &format!("/api/v0/jobs/{job_id}/logs"),
                    ADMIN,
                    None,
                )
                .await;
            let lines = logs
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|l| l["data"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            return (status, lines);
        }
    }

    /// Waits for a job to finish; panics with its log unless it is `done`.
    pub async fn wait_done(&self, job_id: &str) -> Value {
        let (status, log) = self.job_outcome(job_id, Duration::from_secs(120)).await;
        assert_eq!(status, "done", "job {job_id}; log: {log:#?}");
        self.call(Method::GET, &format!("/api/v0/jobs/{job_id}"), ADMIN, None)
            .await
            .1
    }

    /// Creates a policy on `repo` as `creds` with `query` (such as
    /// `?initialEvaluation=true`); the response's status, body and
    /// `X-Job-ID`.
    pub async fn post_policy(
        &self,
        repo: &str,
        creds: Creds<'_>,
        query: &str,
        body: Value,
    ) -> (StatusCode, Value, Option<String>) {
        let resp = self
            .request(
                Method::POST,
                &format!("/api/v0/repositories/{repo}/pollMirroringPolicies{query}"),
                creds,
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let job = resp
            .headers()
            .get("x-job-id")
            .map(|v| v.to_str().unwrap().to_string());
        (status, resp.json().await.unwrap_or(Value::Null), job)
    }

    /// Creates a poll mirroring policy on `repo` as `creds` with "Save &
    /// Apply"; the ID of the job it started.
    #[allow(dead_code)] // used by tests/security
    pub async fn apply_policy(&self, creds: Creds<'_>, repo: &str, form: Value) -> String {
        let (status, body, job) = self
            .post_policy(repo, creds, "?initialEvaluation=true", form)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        job.expect("Save & Apply answers the job's ID in X-Job-ID")
    }

    /// Submits a `poll_mirror` job as admin (of one policy, or of all);
    /// its ID.
    pub async fn submit_poll(&self, policy_id: Option<&str>) -> String {
        let body = match policy_id {
            Some(id) => {
                serde_json::json!({"action": "poll_mirror", "parameters": {"policyID": id}})
            }
            None => serde_json::json!({"action": "poll_mirror"}),
        };
        let (s, b) = self
            .call(Method::POST, "/api/v0/jobs", ADMIN, Some(body))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// Stops the server and checks it shut down cleanly.
    pub async fn stop(mut self) {
        self.shutdown_keep_dir().await;
    }

    async fn shutdown_keep_dir(&mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let handle = self.handle.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .expect("server stops within 20 s")
            .expect("server task does not panic");
        result.expect("server stops without error");
        std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends `rb` (with `body` as JSON, when given): status, headers and parsed
/// body (`Null` when empty).
pub async fn exchange(
    mut rb: reqwest::RequestBuilder,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, headers, value)
}

/// Asserts a DTR error: status, code, and (when given) `detail.field`.
#[track_caller]
pub fn assert_error(
    got: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    let e = &body["errors"][0];
    assert_eq!(e["code"], code, "{body}");
    assert!(e["message"].is_string(), "{body}");
    if let Some(f) = field {
        assert_eq!(e["detail"]["field"], f, "{body}");
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Runs skopeo off the async runtime; panics with its stderr on failure.
pub async fn skopeo(args: Vec<String>) -> Vec<u8> {
    let out = skopeo_output(args.clone()).await;
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs skopeo off the async runtime; returns its output, success or not.
pub async fn skopeo_output(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("skopeo")
            .args(&args)
            .output()
            .expect("run skopeo")
    })
    .await
    .unwrap()
}
