//! A `mirror-server` started in-process on `127.0.0.1:0`, and the steps
//! tests take through its APIs (users, repositories, grants, policies,
//! jobs), sent with the request DSL of `support::http`.

use std::time::{Duration, Instant};

use mirror_server::{CancellationToken, Config, ServerError};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::http::Api;
use crate::support::policies;

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

    /// Anonymous calls to this server through the request DSL
    /// (`support::http`).
    pub fn api(&self) -> Api {
        Api::new(&self.client, &self.url)
    }

    /// Calls to this server as the administrator.
    pub fn admin(&self) -> Api {
        self.api().creds(ADMIN)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Grants `user` `level` on `repo` (`namespace/name`) as admin.
    pub async fn grant(&self, repo: &str, user: &str, level: &str) {
        let put = self
            .admin()
            .put(format!("/api/v0/repositories/{repo}/userAccess/{user}"));
        let granted = put.json(&serde_json::json!({"accessLevel": level})).await;
        granted.expect(StatusCode::OK);
    }

    /// A request to `path` with `creds`.
    pub fn request(&self, method: Method, path: &str, creds: Creds) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.url));
        match creds {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    }

    /// A JSON API call: status and parsed body (`Null` when empty; panics
    /// on a body that is not JSON). The older style: the tests of
    /// `tests/server_e2e` send with `support::http` instead; kept for
    /// `tests/security` and `benches/e2e.rs`.
    #[allow(dead_code)]
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        creds: Creds<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.request(method, path, creds);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    /// Creates a user as admin.
    pub async fn create_user(&self, name: &str, password: &str) {
        let form = serde_json::json!({"name": name, "password": password});
        let created = self.admin().post("/api/v0/accounts").json(&form).await;
        created.expect(StatusCode::CREATED);
    }

    /// Creates `namespace/name` as admin.
    pub async fn create_repo(&self, namespace: &str, name: &str, visibility: &str) {
        let form = serde_json::json!({"name": name, "visibility": visibility});
        let post = self
            .admin()
            .post(format!("/api/v0/repositories/{namespace}"));
        post.json(&form).await.expect(StatusCode::CREATED);
    }

    /// Waits (at most `within`) until a job is no longer `waiting` or
    /// `running`; its status (the last one seen, if it never ended) and its
    /// log lines.
    pub async fn job_outcome(&self, job_id: &str, within: Duration) -> (String, Vec<String>) {
        let deadline = Instant::now() + within;
        let admin = self.admin();
        loop {
            let job = admin.get(format!("/api/v0/jobs/{job_id}")).await;
            let job = job.expect(StatusCode::OK).json();
            let status = job["status"].as_str().unwrap().to_string();
            if matches!(status.as_str(), "waiting" | "running") && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let logs = admin.get(format!("/api/v0/jobs/{job_id}/logs")).await;
            let lines = logs
                .json()
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
        self.admin()
            .get(format!("/api/v0/jobs/{job_id}"))
            .await
            .json()
    }

    /// Creates the private repository `repo` (`namespace/name`) and an
    /// enabled policy mirroring `remote_repo` of `remote_host` into it as
    /// admin, which waits for the next poll; the policy's ID.
    pub async fn add_policy(&self, repo: &str, remote_host: &str, remote_repo: &str) -> String {
        let (namespace, name) = repo.split_once('/').unwrap();
        self.create_repo(namespace, name, "private").await;
        let form = serde_json::json!({
            "remoteHost": remote_host, "remoteRepository": remote_repo, "enabled": true
        });
        policies::add_policy(&self.admin(), repo, &form).await
    }

    /// Creates a poll mirroring policy on `repo` as `creds` with "Save &
    /// Apply"; the ID of the job it started.
    pub async fn apply_policy(&self, creds: Creds<'_>, repo: &str, form: Value) -> String {
        policies::apply_policy(&self.api().creds(creds), repo, &form).await
    }

    /// The value of the `/metrics` sample `name` (without labels).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .admin()
            .get("/metrics")
            .await
            .expect(StatusCode::OK)
            .text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
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
        let submitted = self.admin().post("/api/v0/jobs").json(&body).await;
        let job = submitted.expect(StatusCode::ACCEPTED).json();
        job["id"].as_str().unwrap().to_string()
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

/// Asserts a DTR error of [`TestServer::call`]: status, code, and (when
/// given) `detail.field`. Kept for `tests/security`; the tests of
/// `tests/server_e2e` use `Reply::expect_error` and `expect_field`.
#[allow(dead_code)]
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

/// `namespace/name` of each repository of a `/api/v0` listing (`{"repositories": [...]}`).
pub fn repository_names(listing: &Value) -> Vec<String> {
    let repos = listing["repositories"].as_array().unwrap();
    repos
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect()
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
