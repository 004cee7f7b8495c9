//! A real S3-compatible server on a free loopback port: moto's
//! (`moto_server`, from the PyPI package `moto[server]` that `scripts/test`
//! installs), started once per test binary; each test makes its own bucket.
//!
//! ```ignore
//! let bucket = S3Server::shared().bucket().await;
//! let store = S3BlobStore::new(&bucket.options("prefix")).unwrap();
//! assert!(bucket.keys("prefix/uploads/").await.is_empty());
//! ```
//!
//! Process hygiene: `process::spawn_watched`. The shared server is never
//! dropped, so the closing pipe is what ends it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use mirror_core::store::S3Options;

use super::process::spawn_watched;
use super::registry::free_port;

/// The pinned package `scripts/test` installs.
pub const MOTO_PACKAGE: &str = "moto[server]==5.2.1";

/// A running moto server.
pub struct S3Server {
    port: u16,
    dir: tempfile::TempDir,
    /// Kept for the life of the process (see the module documentation).
    _child: Mutex<Child>,
    _lifeline: Mutex<ChildStdin>,
}

static SHARED: LazyLock<S3Server> = LazyLock::new(S3Server::start);

impl S3Server {
    /// The server of this test binary, started at the first call.
    pub fn shared() -> &'static S3Server {
        &SHARED
    }

    fn start() -> S3Server {
        let dir = tempfile::Builder::new()
            .prefix("regmirror-s3-")
            .tempdir()
            .expect("s3 server tempdir");
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = free_port();
            let log_path = dir.path().join("moto.log");
            let _ = std::fs::remove_file(&log_path); // this attempt's log only
            // `moto_server` is the package's script; without it on PATH,
            // its module.
            let body = r#"if command -v moto_server >/dev/null 2>&1; then
    exec moto_server -H 127.0.0.1 -p "$1" </dev/null 3<&-
fi
exec python3 -m moto.server -H 127.0.0.1 -p "$1" </dev/null 3<&-"#;
            let (mut child, lifeline) =
                spawn_watched(Command::new("sh"), body, [port.to_string()], &log_path);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if last_log.contains("in use") {
                        break; // another port
                    }
                    panic!(
                        "moto_server exited during startup ({status}); install it with \
                         `pip install '{MOTO_PACKAGE}'` (scripts/test does). Log:\n{last_log}"
                    );
                }
                if http_status(port, "GET", "/moto-api/data.json") == Some(200) {
                    return S3Server {
                        port,
                        dir,
                        _child: Mutex::new(child),
                        _lifeline: Mutex::new(lifeline),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "moto_server did not answer on port {port} within 60 s; log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_server could not bind a free port after 8 attempts; last log:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// A new, empty bucket of its own.
    pub async fn bucket(&self) -> S3Bucket {
        let name = format!("test-{}", hex::encode(rand::random::<[u8; 8]>()));
        let bucket = S3Bucket {
            name,
            endpoint: self.endpoint(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        // moto checks no signatures: plain requests do for the test's view.
        let resp = bucket.request(reqwest::Method::PUT, "").await;
        assert!(resp.status().is_success(), "creating bucket: {resp:?}");
        bucket
    }
}

/// One status line of a blocking HTTP/1.0 request, or `None`.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A bucket on the [`S3Server`], with a plain HTTP view of it for checks.
pub struct S3Bucket {
    pub name: String,
    endpoint: String,
    http: reqwest::Client,
}

impl S3Bucket {
    /// Store options for this bucket under `prefix`, with explicit
    /// (made-up) credentials.
    pub fn options(&self, prefix: &str) -> S3Options {
        S3Options {
            bucket: self.name.clone(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            allow_http: true,
            access_key_id: Some("testing".into()),
            secret_access_key: Some(mirror_core::Secret::new("testing-secret")),
            ..Default::default()
        }
    }

    async fn request(&self, method: reqwest::Method, path_and_query: &str) -> reqwest::Response {
        self.http
            .request(
                method,
                format!("{}/{}{path_and_query}", self.endpoint, self.name),
            )
            .send()
            .await
            .expect("request to moto")
    }

    /// Every key under `prefix`, sorted.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/{}", self.endpoint, self.name)).unwrap();
            url.query_pairs_mut()
                .append_pair("list-type", "2")
                .append_pair("prefix", prefix);
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("continuation-token", t);
            }
            let body = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            keys.extend(xml_values(&body, "Key"));
            token = xml_values(&body, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// Keys of the multipart uploads started and neither completed nor
    /// aborted.
    pub async fn multipart_uploads(&self) -> Vec<String> {
        let body = self
            .request(reqwest::Method::GET, "?uploads")
            .await
            .text()
            .await
            .unwrap();
        xml_values(&body, "Key")
    }

    /// Stores `bytes` at `key`, behind the store's back.
    pub async fn put(&self, key: &str, bytes: impl Into<reqwest::Body>) {
        let resp = self
            .http
            .put(format!("{}/{}/{key}", self.endpoint, self.name))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "PUT {key}: {resp:?}");
    }

    /// A plain GET of `url` (e.g. a presigned one): status and body.
    pub async fn fetch(&self, url: &str) -> (u16, Vec<u8>) {
        let resp = self.http.get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }
}

/// The text of every `<tag>...</tag>` in `xml` (S3 answers are flat enough).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}
