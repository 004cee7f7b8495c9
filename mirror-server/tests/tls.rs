//! TLS (issue 14), on loopback with real clients: `reqwest` (rustls),
//! a hand-written HTTP/1.1 exchange over `tokio-rustls`, `skopeo`, the
//! `mirror-server` binary, and mirror-core's engine mirroring from a TLS
//! server.
//!
//! - `tls = "auto"`: `/ca` fetched without verification (as `curl -k`),
//!   then clients that trust only that CA talk HTTP/2 (or HTTP/1.1); the
//!   files are 0600 in a 0700 `tls/`, reused on restart, re-issued from the
//!   same CA when the names change or the certificate nears its end.
//! - With TLS off `/ca` is a 404 that says why.
//! - Certificate files: new connections get a replaced certificate within
//!   the reload interval while a connection opened before keeps working; a
//!   broken replacement is ignored; bad files stop the start with the
//!   setting and file named; `SIGHUP` makes the binary switch at once.
//! - A client that never sends a `ClientHello` is dropped after
//!   `header_read_timeout`.
//! - `skopeo` pushes into and pulls from the server with the CA from
//!   `/ca` and verification on; another regmirror mirrors from it with
//!   `remoteCA`, and without it is refused.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mirror_core::{PolicyForm, RepositoryName, Secret};
use mirror_server::tls::TlsSettings;
use mirror_server::{CancellationToken, Config, ServerError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const PASSWORD: &str = "tls-admin-pa55word";

/// A server run in this process by `mirror_server::run`.
struct Server {
    base: String,
    addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), ServerError>>,
}

fn config(data: &Path, tls: TlsSettings) -> Config {
    let mut config = Config::new(data);
    config.admin_password = Some(PASSWORD.into());
    config.tls = tls;
    config
}

fn auto(names: &[&str]) -> TlsSettings {
    TlsSettings::auto(names.iter().map(|n| n.to_string()).collect())
}

/// Starts a server and waits until it answers.
async fn start(config: Config) -> Server {
    let scheme = if config.tls.is_on() { "https" } else { "http" };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("{scheme}://{addr}");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(mirror_server::run(config, listener, shutdown.clone()));
    let client = insecure();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.get(format!("{base}/ca")).send().await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline || handle.is_finished() => {
                panic!("server did not start: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Server {
        base,
        addr,
        shutdown,
        handle,
    }
}

impl Server {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }

    /// `GET /ca` without verifying the certificate, as `curl -k` does.
    async fn ca(&self) -> String {
        let resp = insecure()
            .get(format!("{}/ca", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-pem-file");
        resp.text().await.unwrap()
    }
}

/// A client that verifies nothing.
fn insecure() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// A client builder that trusts `ca_pem` only, verification on.
fn trusting(ca_pem: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
}

fn ders(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_serves_its_ca_speaks_http2_and_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tls_dir = data.join("tls");
    let names = ["localhost", "127.0.0.1"];

    let server = start(config(&data, auto(&names))).await;
    let ca = server.ca().await;
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(
        ders(&ca),
        ders(&std::fs::read_to_string(tls_dir.join("ca.pem")).unwrap())
    );

    // Verification on, trusting that CA alone: HTTP/2 by ALPN.
    let client = trusting(&ca).build().unwrap();
    let v2 = format!("{}/v2/", server.base);
    let resp = client
        .get(&v2)
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    // An answer before the body was read carries no `Connection` header
    // on HTTP/2 (it is illegal there) ...
    let resp = client
        .put(format!("{}/v2/admin/x/blobs/uploads/1", server.base))
        .body(vec![7u8; 256 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert!(resp.headers().get("connection").is_none());
    // ... and `Connection: close` on HTTP/1.1, as over plain HTTP.
    let h1 = trusting(&ca).http1_only().build().unwrap();
    let resp = h1
        .put(format!("{}/v2/admin/x/blobs/uploads/1", server.base))
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.headers()["connection"], "close");
    let resp = h1
        .get(&v2)
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status(), resp.version()),
        (StatusCode::OK, reqwest::Version::HTTP_11)
    );
    // A client that does not trust the CA refuses the server.
    let other = test_ca();
    let e = trusting(&other.pem)
        .build()
        .unwrap()
        .get(&v2)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");

    // The files: 0600 in a 0700 directory.
    #[cfg(unix)]
    {
        assert_eq!(mode(&tls_dir), 0o700);
        for f in [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "issued.json",
        ] {
            assert_eq!(mode(&tls_dir.join(f)), 0o600, "{f}");
        }
    }
    let server_pem = std::fs::read(tls_dir.join("server.pem")).unwrap();
    server.stop().await;

    // A restart reuses both.
    let server = start(config(&data, auto(&names))).await;
    assert_eq!(server.ca().await, ca, "same CA after a restart");
    assert_eq!(
        std::fs::read(tls_dir.join("server.pem")).unwrap(),
        server_pem
    );
    server.stop().await;

    // New names: a new server certificate from the same CA.
    let server = start(config(&data, auto(&["regmirror.test", "127.0.0.1"]))).await;
    assert_eq!(server.ca().await, ca, "same CA for new names");
    let reissued = std::fs::read(tls_dir.join("server.pem")).unwrap();
    assert_ne!(reissued, server_pem);
    let port = server.addr.port();
    let resp = trusting(&ca)
        .resolve("regmirror.test", server.addr)
        .build()
        .unwrap()
        .get(format!("https://regmirror.test:{port}/v2/"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;

    // A certificate ending within 30 days is re-issued at start.
    let issued_path = tls_dir.join("issued.json");
    let mut issued: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&issued_path).unwrap()).unwrap();
    issued["server_not_after"] = (chrono::Utc::now().timestamp() + 86_400).into();
    std::fs::write(&issued_path, serde_json::to_vec(&issued).unwrap()).unwrap();
    let server = start(config(&data, auto(&["regmirror.test", "127.0.0.1"]))).await;
    assert_eq!(server.ca().await, ca);
    assert_ne!(std::fs::read(tls_dir.join("server.pem")).unwrap(), reissued);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_is_a_clear_404_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir.path().join("data"), TlsSettings::default())).await;
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/ca", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TLS_NOT_ENABLED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("only over TLS"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_client_hello_is_dropped_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir.path().join("data"), auto(&["127.0.0.1"]));
    config.connections.header_read_timeout = Duration::from_secs(1);
    let server = start(config).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the server closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A client that does finish its handshake is served.
    let ca = server.ca().await;
    let resp = trusting(&ca)
        .build()
        .unwrap()
        .get(format!("{}/v2/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

// ------------------------------------------------------------ files ----

/// A CA of the test's own.
struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
}

fn test_ca() -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tls test CA");
    let pem = params.self_signed(&key).unwrap().pem();
    TestCa { key, params, pem }
}

/// A server certificate for `127.0.0.1` from `ca`: the chain file's
/// text (certificate, then the CA), the key's, and the certificate's DER.
fn leaf(ca: &TestCa) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", cert.pem(), ca.pem),
        key.serialize_pem(),
        cert.der().to_vec(),
    )
}

/// Writes the key, then the chain.
fn install(cert_path: &Path, key_path: &Path, (chain, key, _): &(String, String, Vec<u8>)) {
    std::fs::write(key_path, key).unwrap();
    std::fs::write(cert_path, chain).unwrap();
}

/// A TLS connection to `addr` trusting `ca_pem`, speaking HTTP/1.1.
async fn connect(addr: SocketAddr, ca_pem: &str) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// The certificate the server presented on `conn`.
fn served(conn: &TlsStream<TcpStream>) -> Vec<u8> {
    conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// The certificate a new connection gets.
async fn served_now(addr: SocketAddr, ca_pem: &str) -> Vec<u8> {
    served(&connect(addr, ca_pem).await)
}

/// `GET path` on a kept-alive HTTP/1.1 connection: the status and body.
async fn get_on(conn: &mut TlsStream<TcpStream>, path: &str) -> (u16, Vec<u8>) {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    assert!(!head.contains("connection: close"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    (status, body)
}

/// Waits until new connections get `want`.
async fn await_served(addr: SocketAddr, ca_pem: &str, want: &[u8], within: Duration) {
    let deadline = Instant::now() + within;
    while served_now(addr, ca_pem).await != want {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_files_serve_new_connections_and_keep_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ca = test_ca();
    let (first, second) = (leaf(&ca), leaf(&ca));
    install(&cert, &key, &first);
    let mut tls = TlsSettings::files(&cert, &key);
    tls.reload_interval = Duration::from_millis(200);
    let server = start(config(&dir.path().join("data"), tls)).await;
    // `/ca` is the chain's last certificate.
    assert_eq!(ders(&server.ca().await), ders(&ca.pem));

    let mut kept = connect(server.addr, &ca.pem).await;
    assert_eq!(served(&kept), first.2);
    let (status, body) = get_on(&mut kept, "/ca").await;
    assert_eq!(status, 200);
    assert_eq!(ders(&String::from_utf8(body).unwrap()), ders(&ca.pem));

    install(&cert, &key, &second);
    await_served(server.addr, &ca.pem, &second.2, Duration::from_secs(5)).await;
    // The connection opened before keeps its certificate, and works.
    let (status, _) = get_on(&mut kept, "/v2/").await;
    assert_eq!(status, 401);
    assert_eq!(served(&kept), first.2);

    // Garbage, then a key of another certificate: ignored.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(served_now(server.addr, &ca.pem).await, second.2);
    install(
        &cert,
        &key,
        &(first.0.clone(), second.1.clone(), Vec::new()),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(served_now(server.addr, &ca.pem).await, second.2);
    // A good pair again is taken.
    install(&cert, &key, &first);
    await_served(server.addr, &ca.pem, &first.2, Duration::from_secs(5)).await;
    let (status, _) = get_on(&mut kept, "/ca").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_stop_the_start_naming_the_setting_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca();
    let (first, second) = (leaf(&ca), leaf(&ca));
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("cert.pem"), &first.0).unwrap();
    std::fs::write(path("key.pem"), &first.1).unwrap();
    std::fs::write(path("other.key"), &second.1).unwrap();
    std::fs::write(path("garbage"), "hello\n").unwrap();
    let cases: [(PathBuf, PathBuf, &[&str]); 4] = [
        (
            path("missing.pem"),
            path("key.pem"),
            &["tls_cert", "missing.pem", "cannot read"],
        ),
        (
            path("garbage"),
            path("key.pem"),
            &["tls_cert", "garbage", "not a PEM certificate file"],
        ),
        (
            path("cert.pem"),
            path("garbage"),
            &["tls_key", "garbage", "not a PEM private key file"],
        ),
        (
            path("cert.pem"),
            path("other.key"),
            &[
                "tls_key",
                "other.key",
                "does not match",
                "tls_cert",
                "cert.pem",
            ],
        ),
    ];
    for (cert, key, words) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = config(&path("data"), TlsSettings::files(&cert, &key));
        let e = mirror_server::run(config, listener, CancellationToken::new())
            .await
            .unwrap_err()
            .to_string();
        for w in words {
            assert!(e.contains(w), "{w:?} not in {e:?}");
        }
    }
}

// ----------------------------------------------------------- binary ----

/// The binary, killed on drop.
struct Binary(Child);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_the_binary_reload_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ca = test_ca();
    let (first, second) = (leaf(&ca), leaf(&ca));
    install(&cert, &key, &first);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--tls-reload-interval-secs", "3600"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("MIRROR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("MIRROR_ADMIN_PASSWORD", PASSWORD);
    let mut binary = Binary(cmd.spawn().expect("spawn mirror-server"));
    let (tx, log) = mpsc::channel();
    let stderr = binary.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let addr: SocketAddr = loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("a 'listening' line");
        if line.contains("mirror-server listening") {
            assert!(line.contains("tls=\"files\""), "{line}");
            let at = line.find("addr=").unwrap() + "addr=".len();
            break line[at..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    assert_eq!(served_now(addr, &ca.pem).await, first.2);
    install(&cert, &key, &second);
    // An hour between checks: nothing changes by itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_now(addr, &ca.pem).await, first.2);
    let pid = binary.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    await_served(addr, &ca.pem, &second.2, Duration::from_secs(3)).await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while binary.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = log.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("TLS certificate reloaded") && l.contains("SIGHUP")),
        "{rest:#?}"
    );
}

// ------------------------------------------------- skopeo, mirroring ----

/// Runs skopeo off the runtime; panics with its stderr on failure.
async fn skopeo(args: Vec<String>) -> Vec<u8> {
    let out = tokio::task::spawn_blocking({
        let args = args.clone();
        move || Command::new("skopeo").args(&args).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Creates `admin/<name>` through the API, trusting `ca`.
async fn create_repository(server: &Server, ca: &str, name: &str) {
    let resp = trusting(ca)
        .build()
        .unwrap()
        .post(format!("{}/api/v0/repositories/admin", server.base))
        .basic_auth("admin", Some(PASSWORD))
        .json(&serde_json::json!({"name": name, "visibility": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_with_the_ca_from_slash_ca() {
    let upstream = support::Registry::plain().await;
    let image = upstream
        .pusher()
        .push_image("library/app", "v1", support::ImageSpec::small("tls"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir.path().join("data"), auto(&["127.0.0.1"]))).await;
    let ca = server.ca().await;
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &ca).unwrap();
    create_repository(&server, &ca, "app").await;
    let here = format!("docker://{}/admin/app:v1", server.addr);
    let creds = format!("admin:{PASSWORD}");
    let certs = certs.display().to_string();

    skopeo(vec![
        "copy".into(),
        "--src-tls-verify=false".into(),
        "--dest-cert-dir".into(),
        certs.clone(),
        "--dest-creds".into(),
        creds.clone(),
        format!("docker://{}", upstream.reference("library/app", "v1")),
        here.clone(),
    ])
    .await;
    // No skip flag anywhere from here on: the CA is what is trusted.
    let inspect: serde_json::Value = serde_json::from_slice(
        &skopeo(vec![
            "inspect".into(),
            "--cert-dir".into(),
            certs.clone(),
            "--creds".into(),
            creds.clone(),
            here.clone(),
        ])
        .await,
    )
    .unwrap();
    assert_eq!(inspect["Digest"], image.digest.as_str());
    let out = dir.path().join("pulled");
    skopeo(vec![
        "copy".into(),
        "--src-cert-dir".into(),
        certs.clone(),
        "--src-creds".into(),
        creds.clone(),
        here.clone(),
        format!("dir:{}", out.display()),
    ])
    .await;
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&manifest))),
        image.digest
    );
    for blob in image.blob_digests() {
        let bytes = std::fs::read(out.join(blob.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
            blob
        );
    }
    // Without the CA, skopeo refuses the server.
    let refused = tokio::task::spawn_blocking(move || {
        Command::new("skopeo")
            .args(["inspect", "--creds", &creds, &here])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regmirror_mirrors_from_regmirror_over_tls_with_remote_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir.path().join("source"), auto(&["127.0.0.1"]))).await;
    let ca = server.ca().await;
    create_repository(&server, &ca, "src").await;
    let image = support::Pusher::from_parts(
        &server.base,
        Some(("admin".into(), PASSWORD.into())),
        Some(&ca),
    )
    .push_image(
        "admin/src",
        "v1",
        support::ImageSpec::small("mirrored over tls"),
    )
    .await;

    // Another regmirror's engine mirrors from it.
    let mirror = mirror_core::Mirror::open(&dir.path().join("mirror")).unwrap();
    let local = RepositoryName::parse("mirror/copy").unwrap();
    let form = |remote_ca: Option<String>| PolicyForm {
        remote_ca,
        username: Some("admin".into()),
        password: Some(Secret::new(PASSWORD)),
        ..PolicyForm::new(format!("https://{}", server.addr), "admin/src")
    };
    // Without `remoteCA` the server's certificate is not trusted.
    let e = mirror
        .add_policy(&local, &form(None), None)
        .await
        .unwrap_err();
    assert!(
        format!("{e} {e:?}").to_lowercase().contains("certificate"),
        "{e} {e:?}"
    );
    let policy = mirror
        .add_policy(&local, &form(Some(ca.clone())), None)
        .await
        .unwrap();
    let job = mirror.poll(&policy.id).await.unwrap();
    assert_eq!(job.status, mirror_core::JobStatus::Done, "{job:?}");
    let tags = mirror.tag_views(&local).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].name, "v1");
    assert_eq!(tags[0].digest, image.digest);
    server.stop().await;
}
