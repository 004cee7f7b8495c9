//! The real `mirror-server` binary in a child process, and HTTP helpers for
//! its APIs.
//!
//! The binary runs under a tiny `sh` wrapper (as the registry harness does)
//! holding a pipe from this test process: when the test process goes away,
//! even by SIGKILL, the pipe closes and the server is killed, so no server
//! outlives the test. The wrapper then `exec`s the server, so the child's
//! pid is the server's and `kill -9` hits it. With a file size limit, the
//! wrapper ignores SIGXFSZ and runs the server under `prlimit`, so writes
//! past the limit fail with `EFBIG` instead of killing the process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest as _;

use crate::support::http::Api;
use crate::support::policies;

pub const ADMIN_PASSWORD: &str = "reliability-admin-pw";
/// The admin's Basic credentials.
pub const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);

/// A running `mirror-server`; killed on drop.
pub struct Server {
    child: Option<Child>,
    lifeline: Option<ChildStdin>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
    /// The worker ID it logged at start (job records name it).
    pub worker: String,
}

impl Server {
    /// Starts the binary on `data_dir` and waits until it listens. With
    /// `fsize_limit`, no file it writes may grow past that many bytes.
    pub fn start(data_dir: &Path, fsize_limit: Option<u64>) -> Server {
        Server::start_with(data_dir, fsize_limit, &[])
    }

    /// [`Server::start`] with `env` set (`MIRROR_*` variables of this
    /// process are never passed on; these are).
    pub fn start_with(data_dir: &Path, fsize_limit: Option<u64>, env: &[(&str, &str)]) -> Server {
        let script = match fsize_limit {
            None => r#"exec 3<&0
( read -r _ <&3; kill -9 $$ 2>/dev/null ) &
exec "$0" "$@" </dev/null 3<&-"#
                .to_string(),
            Some(n) => format!(
                r#"exec 3<&0
( read -r _ <&3; kill -9 $$ 2>/dev/null ) &
trap '' XFSZ
exec prlimit --fsize={n}:unlimited -- "$0" "$@" </dev/null 3<&-"#
            ),
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_mirror-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("MIRROR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("MIRROR_") && k != "MIRROR_ADMIN_PASSWORD" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn mirror-server");
        let lifeline = child.stdin.take();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "mirror-server did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
            if line.contains("mirror-server listening") {
                let field = |name: &str| {
                    let at = line.find(name).expect("a field of the listening line") + name.len();
                    line[at..].split_whitespace().next().unwrap().to_string()
                };
                break (field("addr="), field("worker="));
            }
        };
        let (addr, worker) = addr;
        Server {
            child: Some(child),
            lifeline,
            url: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            log,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            worker,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.lifeline.take();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// An `/api/v0` call as admin: status and JSON body (`Null` if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Creates `namespace/name` (private).
    pub async fn create_repo(&self, namespace: &str, name: &str) {
        let (s, b) = self
            .call(
                Method::POST,
                &format!("/api/v0/repositories/{namespace}"),
                Some(serde_json::json!({"name": name, "visibility": "private"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// Calls to the server as the administrator, with the request DSL.
    pub fn admin(&self) -> Api {
        Api::new(&self.client, &self.url).creds(Some(ADMIN))
    }

    /// Creates a "Save & Apply" policy `local` <- `remote_host`/`remote_repo`
    /// and returns the ID of the poll it started.
    pub async fn create_policy(&self, local: &str, remote_host: &str, remote_repo: &str) -> String {
        let form = serde_json::json!({
            "remoteHost": remote_host,
            "remoteRepository": remote_repo,
            "username": "",
            "password": "",
            "enabled": true,
        });
        policies::apply_policy(&self.admin(), local, &form).await
    }

    /// Submits `poll_mirror` (every enabled policy); returns the job ID.
    pub async fn poll_all(&self) -> String {
        let (s, job) = self
            .call(
                Method::POST,
                "/api/v0/jobs",
                Some(serde_json::json!({"action": "poll_mirror"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        job["id"].as_str().unwrap().to_string()
    }

    pub async fn job(&self, id: &str) -> Value {
        let (s, job) = self
            .call(Method::GET, &format!("/api/v0/jobs/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{job}");
        job
    }

    /// The job's log lines, joined.
    pub async fn job_log(&self, id: &str) -> String {
        let (s, lines) = self
            .call(Method::GET, &format!("/api/v0/jobs/{id}/logs"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{lines}");
        lines
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["data"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits (at most `timeout`) for the job to finish; returns its status.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            let status = job["status"].as_str().unwrap().to_string();
            if status != "waiting" && status != "running" {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} still {status} after {timeout:?}; log:\n{}",
                self.job_log(id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the job and expects `done`.
    pub async fn wait_done(&self, id: &str, timeout: Duration) {
        let status = self.wait_job(id, timeout).await;
        assert_eq!(status, "done", "job {id}; log:\n{}", self.job_log(id).await);
    }

    /// Pulls `repo:reference` through `/v2` with `client` and `creds`: the
    /// manifest (its digest must be `expected`) and every blob it
    /// references (each must hash to its digest). Index children are
    /// followed. Returns the bytes pulled.
    pub async fn pull_verified(
        &self,
        client: &reqwest::Client,
        creds: (&str, &str),
        repo: &str,
        reference: &str,
        expected: &str,
    ) -> Result<u64, String> {
        let mut bytes = 0;
        let mut pending = vec![(reference.to_string(), Some(expected.to_string()))];
        while let Some((reference, expected)) = pending.pop() {
            let resp = client
                .get(format!("{}/v2/{repo}/manifests/{reference}", self.url))
                .basic_auth(creds.0, Some(creds.1))
                .header("accept", MANIFEST_ACCEPT)
                .send()
                .await
                .map_err(|e| format!("GET manifest {repo}:{reference}: {e}"))?;
            if resp.status() != StatusCode::OK {
                return Err(format!(
                    "GET manifest {repo}:{reference}: HTTP {}",
                    resp.status()
                ));
            }
            let header = resp
                .headers()
                .get("docker-content-digest")
                .map(|v| v.to_str().unwrap().to_string());
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            bytes += body.len() as u64;
            let digest = sha256(&body);
            if let Some(e) = expected
                && digest != e
            {
                return Err(format!("{repo}:{reference} is {digest}, expected {e}"));
            }
            if header.as_deref() != Some(digest.as_str()) {
                return Err(format!("Docker-Content-Digest {header:?} for {digest}"));
            }
            let m: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if let Some(children) = m["manifests"].as_array() {
                for c in children {
                    let d = c["digest"].as_str().unwrap().to_string();
                    pending.push((d.clone(), Some(d)));
                }
            }
            let blobs = m["config"].as_object().into_iter().chain(
                m["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object),
            );
            for b in blobs {
                let d = b["digest"].as_str().unwrap();
                bytes += self.pull_blob(client, creds, repo, d).await?;
            }
        }
        Ok(bytes)
    }

    /// GETs a blob, hashing it as it streams; errors unless it hashes to
    /// `digest`. Returns its size.
    pub async fn pull_blob(
        &self,
        client: &reqwest::Client,
        creds: (&str, &str),
        repo: &str,
        digest: &str,
    ) -> Result<u64, String> {
        use futures_util::StreamExt;
        let resp = client
            .get(format!("{}/v2/{repo}/blobs/{digest}", self.url))
            .basic_auth(creds.0, Some(creds.1))
            .send()
            .await
            .map_err(|e| format!("GET blob {digest}: {e}"))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("GET blob {digest}: HTTP {}", resp.status()));
        }
        let mut h = sha2::Sha256::new();
        let mut n = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("reading blob {digest}: {e}"))?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        let got = format!("sha256:{}", hex::encode(h.finalize()));
        if got != digest {
            return Err(format!("blob {digest} served as {got}"));
        }
        Ok(n)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Polls `f` every 50 ms until it returns true; panics with `what` after
/// `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
