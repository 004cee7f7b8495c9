//! What the OCI distribution-spec conformance suite and DTR scripts expect
//! of `/v2` and of jobs, sent as they send it (issue 12):
//!
//! - an answer given before a request's body was read closes the
//!   connection it leaves unusable (`Connection: close`), so a Go client
//!   does not reuse it and fail with `EOF`; a request whose body was read
//!   keeps its connection;
//! - referrers carry their manifests' `annotations`;
//! - a tag that cannot exist is "not found" on reads and deletes, and
//!   invalid on `PUT`;
//! - the catalog challenges anonymous callers;
//! - a poll submitted while another polls the same policy is `done` only
//!   once the policy is up to date;
//! - the Connect check answers at once when retrying cannot help.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::server::{ADMIN, ADMIN_PASSWORD, TestServer, sha256};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::http::Api;
use crate::support::{ImageSpec, LayerSpec, Pusher, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Reads one response head from `sock`: the status and the lower-case
/// header lines.
async fn read_head(sock: &mut TcpStream) -> (u16, Vec<String>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut byte))
            .await
            .expect("a response head within 10 s")
            .unwrap();
        assert_eq!(n, 1, "connection closed before a response head");
        buf.push(byte[0]);
    }
    let text = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (status, lines.map(str::to_string).collect())
}

/// Skips a response body of `content-length` bytes.
async fn skip_body(sock: &mut TcpStream, headers: &[String]) {
    let len: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).await.unwrap();
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_closes_the_connection_it_leaves_unusable() {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let head = |auth: Option<String>, path: &str| {
        format!(
            "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\n{}\r\n",
            server.host_port,
            manifest.len(),
            auth.map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default()
        )
    };
    // Headers first, the body in a second write, as Go's client sends a
    // PUT: the 401 (no credentials yet) and the 404 (no such repository)
    // come before the body is read.
    for (auth, path, status) in [
        (None, "/v2/mirrors/app/manifests/t", 401),
        (
            Some(basic("admin", ADMIN_PASSWORD)),
            "/v2/mirrors/missing/manifests/t",
            404,
        ),
    ] {
        let mut sock = TcpStream::connect(&server.host_port).await.unwrap();
        sock.write_all(head(auth, path).as_bytes()).await.unwrap();
        let (got, headers) = read_head(&mut sock).await;
        assert_eq!(got, status, "{path}: {headers:?}");
        assert!(
            headers.iter().any(|h| h == "connection: close"),
            "{path}: an early answer must say the connection closes: {headers:?}"
        );
        skip_body(&mut sock, &headers).await;
        let _ = sock.write_all(manifest).await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection");
        assert!(closed.is_err() || rest.is_empty(), "{rest:?}");
    }
    // A request whose body was read keeps its connection for the next one.
    let mut sock = TcpStream::connect(&server.host_port).await.unwrap();
    let auth = basic("admin", ADMIN_PASSWORD);
    for _ in 0..2 {
        let blob = format!(
            "POST /v2/mirrors/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\n",
            server.host_port
        );
        sock.write_all(blob.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        sock.write_all(b"{}").await.unwrap();
        let (status, headers) = read_head(&mut sock).await;
        assert_eq!(status, 201, "{headers:?}");
        assert!(
            !headers.iter().any(|h| h == "connection: close"),
            "{headers:?}"
        );
        skip_body(&mut sock, &headers).await;
    }
}

/// A server whose `mirrors/app` holds an image and a signature of it (an
/// artifact whose subject is the image).
struct Signed {
    server: TestServer,
    admin: Api,
    /// The image's digest.
    subject: String,
    /// The signature's manifest, and its digest.
    signature: Value,
    signature_digest: String,
}

async fn signed() -> Signed {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let pusher = Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    );
    let subject = pusher
        .push_image("mirrors/app", "1.0", ImageSpec::small("subject"))
        .await;
    let empty = pusher.push_blob("mirrors/app", &b"{}"[..]).await;
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z", "com.example.key": "value"}
    });
    let bytes = serde_json::to_vec(&signature).unwrap();
    let signature_digest = pusher
        .push_manifest_raw("mirrors/app", &sha256(&bytes), OCI_MANIFEST, bytes)
        .await;
    Signed {
        admin: server.admin(),
        server,
        subject: subject.digest,
        signature,
        signature_digest,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_carry_their_manifests_annotations() {
    let t = signed().await;
    let referrers = format!("/v2/mirrors/app/referrers/{}", t.subject);
    let index = t.admin.get(referrers).await.expect(StatusCode::OK).json();
    let found = &index["manifests"][0];
    assert_eq!(found["digest"], t.signature_digest.as_str(), "{index}");
    assert_eq!(
        found["annotations"], t.signature["annotations"],
        "referrers must carry the manifest's annotations: {index}"
    );
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_outside_the_grammar_is_not_found_and_cannot_be_put() {
    let t = signed().await;
    let invalid = "/v2/mirrors/app/manifests/.INVALID";
    for method in [Method::GET, Method::DELETE] {
        let got = t.admin.call(method, invalid).await;
        got.expect_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    }
    t.admin.head(invalid).await.expect(StatusCode::NOT_FOUND);
    let put = t.admin.put(invalid).header("content-type", OCI_MANIFEST);
    let put = put.body(serde_json::to_vec(&t.signature).unwrap()).await;
    put.expect_error(StatusCode::BAD_REQUEST, "TAG_INVALID");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_challenges_anonymous_callers_who_then_log_in() {
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;
    let anonymous = server.api().get("/v2/_catalog").await;
    let anonymous = anonymous.expect(StatusCode::UNAUTHORIZED);
    // A client follows the Bearer challenge as docker does: to the realm,
    // with its credentials, or without them for the anonymous token.
    let challenge = anonymous.header("www-authenticate");
    let realm = challenge
        .strip_prefix("Bearer realm=\"")
        .and_then(|r| r.split_once('"'))
        .map(|(realm, _)| realm.to_string())
        .unwrap_or_else(|| panic!("not a Bearer challenge: {challenge}"));
    let path = realm
        .strip_prefix(&server.url)
        .expect("realm on this server");
    assert_eq!(path, "/auth/token", "{challenge}");
    assert!(challenge.ends_with(",service=\"regmirror\""), "{challenge}");
    let scoped = format!("{path}?scope=registry:catalog:*&service=regmirror");
    let token = server.admin().get(&scoped).await.expect(StatusCode::OK);
    let token = token.json()["token"].as_str().unwrap().to_string();
    let catalog = server.api().bearer(&token).get("/v2/_catalog").await;
    assert_eq!(
        catalog.expect(StatusCode::OK).json(),
        json!({"repositories": ["mirrors/app"]})
    );
    let none = server.api().get(&scoped).await.expect(StatusCode::OK);
    let none = none.json()["token"].as_str().unwrap().to_string();
    let catalog = server.api().bearer(&none).get("/v2/_catalog").await;
    catalog.expect(StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_submitted_during_another_is_done_only_when_up_to_date() {
    let upstream = Registry::plain().await;
    let image = upstream
        .pusher()
        .push_image(
            "team/app",
            "1.0",
            ImageSpec::new(vec![LayerSpec::Random {
                size: 2 << 20,
                seed: 21,
            }]),
        )
        .await;
    // The first poll's layer arrives slowly, so the second is submitted
    // while it runs.
    let proxy = FaultProxy::start(&upstream, 9);
    proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 512 << 10,
        })
        .get()
        .path_contains(&image.layers[0].digest)
        .once(),
    );
    let server = TestServer::start().await;
    let admin = server.admin();
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/app"});
    let first = server.apply_policy(ADMIN, "mirrors/app", form).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.get(format!("/api/v0/jobs/{first}")).await.json()["status"] != "running" {
        assert!(Instant::now() < deadline, "the first poll never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new tag upstream, and a script's "poll now, wait, pull" (DTR
    // scripts submit `poll_mirror` for every policy; one for this policy
    // alone waits in the queue behind the first, as its namespace's share
    // of the workers is taken).
    upstream
        .pusher()
        .push_image("team/app", "2.0", ImageSpec::small("two"))
        .await;
    let second = server.submit_poll(None).await;
    server.wait_done(&second).await;
    for tag in ["1.0", "2.0"] {
        // Each tag is there once the second poll is done.
        let head = admin.head(format!("/v2/mirrors/app/manifests/{tag}"));
        let head = head.header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        );
        head.await.expect(StatusCode::OK);
    }
    let (_, log) = server.job_outcome(&second, Duration::from_secs(1)).await;
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("is being polled by job {first}"))),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_check_answers_at_once_when_retrying_cannot_help() {
    let server = TestServer::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let busy = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .mount(&busy)
        .await;
    for (host, says, within) in [
        (
            format!("http://127.0.0.1:{closed}"),
            "connection refused",
            Duration::from_secs(3),
        ),
        (busy.uri(), "HTTP 503", Duration::from_secs(5)),
    ] {
        let started = Instant::now();
        let form = json!({"remoteHost": host, "remoteRepository": "team/app"});
        let got = server.admin().post("/api/v0/remote/registry").json(&form);
        let got = got.await;
        let took = started.elapsed();
        assert!(got.status.is_client_error(), "{host}: {got:?}");
        let message = got.error()["message"].as_str().unwrap().to_string();
        assert!(message.contains(says), "{host}: {message}");
        assert!(
            !message.contains("error sending request"),
            "plain words, not reqwest's chain: {message}"
        );
        assert!(took < within, "{host}: took {took:?}");
    }
}
