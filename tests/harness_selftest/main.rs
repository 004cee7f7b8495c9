//! Self-tests of the integration-test harness (`tests/support`): real
//! `docker-registry` processes in every auth mode, with and without TLS,
//! seeded over HTTP and cross-checked with `skopeo`.

#[path = "../support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use support::data::{generated_bytes, generated_digest, sha256_digest};
use support::images::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use support::{Auth, ImageSpec, LayerSpec, ManifestKind, Registry};

/// Start, push a small image, read its digest back by tag.
async fn roundtrip(auth: Auth, tls: bool) {
    let reg = Registry::builder().auth(auth).tls(tls).start().await;
    assert_eq!(reg.url().starts_with("https://"), tls);
    let pusher = reg.pusher();
    assert_eq!(pusher.ping().await, StatusCode::OK);
    let img = pusher
        .push_image("team/app", "v1", ImageSpec::small("roundtrip"))
        .await;
    assert_eq!(img.digest, sha256_digest(&img.bytes));
    assert_eq!(
        pusher.manifest_digest("team/app", "v1").await.as_deref(),
        Some(img.digest.as_str())
    );
    assert_eq!(pusher.manifest_digest("team/app", "nope").await, None);
    for d in img.blob_digests() {
        assert!(pusher.blob_exists("team/app", &d).await, "{d}");
    }
    let (mt, bytes) = pusher.get_manifest("team/app", "v1").await.unwrap();
    assert_eq!(mt, DOCKER_MANIFEST);
    assert_eq!(bytes, img.bytes);
}

#[tokio::test]
async fn open_plain() {
    roundtrip(Auth::None, false).await;
}

#[tokio::test]
async fn open_tls() {
    roundtrip(Auth::None, true).await;
}

#[tokio::test]
async fn htpasswd_plain() {
    roundtrip(Auth::htpasswd("alice", "pw-alice"), false).await;
}

#[tokio::test]
async fn htpasswd_tls() {
    roundtrip(Auth::htpasswd("alice", "pw-alice"), true).await;
}

#[tokio::test]
async fn token_plain() {
    roundtrip(Auth::token("bob", "pw-bob"), false).await;
}

#[tokio::test]
async fn token_tls() {
    roundtrip(Auth::token("bob", "pw-bob"), true).await;
}

#[tokio::test]
async fn htpasswd_rejects_anonymous_and_wrong_password() {
    let reg = Registry::builder()
        .auth(Auth::htpasswd("alice", "pw-alice"))
        .start()
        .await;
    let resp = reg
        .http_client()
        .get(format!("{}/v2/", reg.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");

    let pusher = reg.pusher();
    assert_eq!(pusher.ping().await, StatusCode::OK);
    let wrong = pusher.with_credentials(Some(("alice", "wrong")));
    assert_eq!(wrong.ping().await, StatusCode::UNAUTHORIZED);
    let anon = pusher.with_credentials(None);
    assert_eq!(anon.ping().await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_auth_rejects_wrong_password_and_anonymous() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .start()
        .await;
    let realm = reg.token_realm().unwrap();
    let service = reg.token_service().unwrap().to_owned();
    let client = reg.http_client();

    // The registry's challenge names our realm and service.
    let resp = client
        .get(format!("{}/v2/x/tags/list", reg.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let ch = support::images::parse_challenge(resp.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(ch.scheme, "Bearer");
    assert_eq!(ch.params["realm"], realm);
    assert_eq!(ch.params["service"], service);
    assert_eq!(ch.params["scope"], "repository:x:pull");

    // Token server: wrong password → 401.
    let resp = client
        .get(reg.token_url("repository:x:pull").unwrap())
        .basic_auth("bob", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Through the pusher: wrong password fails end to end.
    let wrong = reg.pusher().with_credentials(Some(("bob", "wrong")));
    let status = wrong
        .request(Method::GET, "/v2/x/tags/list", Some("x"))
        .await
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!reg.token_log().last().unwrap().issued);

    // Anonymous: a token is issued, but it grants nothing.
    let resp = client
        .get(reg.token_url("repository:x:pull").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let anon = reg.pusher().with_credentials(None);
    let status = anon
        .request(Method::GET, "/v2/x/tags/list", Some("x"))
        .await
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_anonymous_pull_only() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .anonymous_pull(true)
        .start()
        .await;
    let img = reg
        .pusher()
        .push_image("pub/app", "latest", ImageSpec::small("anon"))
        .await;
    let anon = reg.pusher().with_credentials(None);
    assert_eq!(
        anon.manifest_digest("pub/app", "latest").await,
        Some(img.digest.clone())
    );
    // Pushing needs credentials.
    let status = anon
        .request(Method::POST, "/v2/pub/app/blobs/uploads/", Some("pub/app"))
        .await
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_caching_and_expiry() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .token_ttl(Duration::from_secs(2))
        .start()
        .await;
    let pusher = reg.pusher();
    pusher
        .push_image("cache/app", "v1", ImageSpec::small("a"))
        .await;
    // One token for the whole push (POST/PUT/HEAD of 2 blobs + manifest).
    assert_eq!(reg.token_requests(), 1, "{:?}", reg.token_log());
    let log = reg.token_log();
    assert_eq!(log[0].user.as_deref(), Some("bob"));
    assert!(
        log[0]
            .scopes
            .contains(&"repository:cache/app:pull,push".to_owned()),
        "{log:?}"
    );

    // Fetch a token by hand and check the registry stops accepting it once
    // the TTL is over (the server compensates distribution's 60 s leeway).
    let client = reg.http_client();
    let body: serde_json::Value = client
        .get(reg.token_url("repository:cache/app:pull").unwrap())
        .basic_auth("bob", Some("pw-bob"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 2);
    let token = body["token"].as_str().unwrap().to_owned();
    let url = format!("{}/v2/cache/app/tags/list", reg.url());
    let status = |t: String| {
        let (c, u) = (client.clone(), url.clone());
        async move { c.get(u).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(status(token.clone()).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(status(token).await, StatusCode::UNAUTHORIZED);

    // The pusher's cached token is stale too: it re-authenticates on 401.
    reg.reset_token_requests();
    assert!(pusher.manifest_digest("cache/app", "v1").await.is_some());
    assert_eq!(reg.token_requests(), 1);
}

/// Runs skopeo, panicking with its stderr on failure.
fn skopeo(args: &[String]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

async fn skopeo_inspect_raw_matches(auth: Auth, tls: bool) {
    let reg = Registry::builder().auth(auth).tls(tls).start().await;
    let img = reg
        .pusher()
        .push_image("skopeo/app", "v1", ImageSpec::small("skopeo").oci())
        .await;
    let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
    args.extend(reg.skopeo_args(""));
    args.push(format!("docker://{}", reg.reference("skopeo/app", "v1")));
    let raw = tokio::task::spawn_blocking(move || skopeo(&args))
        .await
        .unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&raw))),
        img.digest
    );
}

#[tokio::test]
async fn skopeo_inspect_htpasswd_tls() {
    skopeo_inspect_raw_matches(Auth::htpasswd("alice", "pw-alice"), true).await;
}

#[tokio::test]
async fn skopeo_inspect_token_plain() {
    skopeo_inspect_raw_matches(Auth::token("bob", "pw-bob"), false).await;
}

#[tokio::test]
async fn skopeo_copy_multiarch_to_oci_layout() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .tls(true)
        .start()
        .await;
    let pusher = reg.pusher();
    let amd = pusher
        .push_image(
            "multi/app",
            "amd64",
            ImageSpec::new(vec![
                LayerSpec::file("etc/a.txt", "amd64 a"),
                LayerSpec::Files(vec![
                    ("bin/tool".into(), vec![7u8; 3000]),
                    ("README".into(), b"readme".to_vec()),
                ]),
                LayerSpec::Bytes(support::tarball::tar(&[("raw.txt", b"raw")])),
            ]),
        )
        .await;
    let arm = pusher
        .push_image(
            "multi/app",
            "arm64",
            ImageSpec::small("arm64").platform("linux", "arm64/v8"),
        )
        .await;
    let list = pusher
        .push_index(
            "multi/app",
            "latest",
            &[(amd.clone(), "linux", "amd64"), (arm, "linux", "arm64/v8")],
            ManifestKind::Docker,
        )
        .await;
    assert_eq!(
        pusher.manifest_digest("multi/app", "latest").await,
        Some(list.digest.clone())
    );
    let (mt, _) = pusher.get_manifest("multi/app", "latest").await.unwrap();
    assert_eq!(mt, DOCKER_MANIFEST_LIST);

    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["copy".to_owned(), "--all".to_owned()];
    args.extend(reg.skopeo_args("src"));
    args.push(format!("docker://{}", reg.reference("multi/app", "latest")));
    args.push(format!("oci:{}:latest", out.path().display()));
    tokio::task::spawn_blocking(move || skopeo(&args))
        .await
        .unwrap();
    // Every gzip layer of the amd64 image landed in the OCI layout intact.
    // (skopeo rewrites the rest: Docker configs become OCI configs, and the
    // oci: transport gzips uncompressed layers.)
    for d in amd
        .layers
        .iter()
        .filter(|l| l.media_type.ends_with("gzip"))
        .map(|l| &l.digest)
    {
        let path = out
            .path()
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap());
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(&sha256_digest(&data), d);
    }
}

#[tokio::test]
async fn oci_index_roundtrip() {
    let reg = Registry::plain().await;
    let pusher = reg.pusher();
    let a = pusher
        .push_image("oci/app", "a", ImageSpec::small("a").oci())
        .await;
    let b = pusher
        .push_image(
            "oci/app",
            "b",
            ImageSpec::small("b").oci().platform("linux", "arm/v7"),
        )
        .await;
    let idx = pusher
        .push_index(
            "oci/app",
            "multi",
            &[(a, "linux", "amd64"), (b, "linux", "arm/v7")],
            ManifestKind::Oci,
        )
        .await;
    let (mt, bytes) = pusher.get_manifest("oci/app", "multi").await.unwrap();
    assert_eq!(mt, OCI_INDEX);
    assert_eq!(bytes, idx.bytes);
    let (mt, _) = pusher.get_manifest("oci/app", "a").await.unwrap();
    assert_eq!(mt, OCI_MANIFEST);
    let mut tags = pusher.tags("oci/app").await;
    tags.sort();
    assert_eq!(tags, ["a", "b", "multi"]);
    assert_eq!(pusher.catalog().await, ["oci/app"]);
}

#[tokio::test]
async fn large_generated_layer() {
    const SIZE: u64 = 64 << 20;
    let reg = Registry::builder()
        .auth(Auth::htpasswd("alice", "pw-alice"))
        .start()
        .await;
    let pusher = reg.pusher();
    let t = Instant::now();
    let (digest, size) = pusher.push_blob_generated("big/app", SIZE, 42).await;
    let push_time = t.elapsed();
    assert_eq!(size, SIZE);
    assert_eq!(digest, generated_digest(SIZE, 42));
    assert!(pusher.blob_exists("big/app", &digest).await);
    let on_disk = std::fs::metadata(reg.blob_data_path(&digest))
        .unwrap()
        .len();
    assert_eq!(on_disk, SIZE);
    // Pushing it again is a HEAD hit, not a second upload.
    let t = Instant::now();
    pusher.push_blob_generated("big/app", SIZE, 42).await;
    eprintln!(
        "64 MiB push: {push_time:?}; re-push (hash + HEAD): {:?}",
        t.elapsed()
    );

    // As a layer of an image, alongside a small real one.
    let img = pusher
        .push_image(
            "big/app",
            "v1",
            ImageSpec::new(vec![
                LayerSpec::file("a", "b"),
                LayerSpec::Random {
                    size: SIZE,
                    seed: 42,
                },
            ]),
        )
        .await;
    assert_eq!(img.layers[1].digest, digest);
    assert_eq!(
        pusher.manifest_digest("big/app", "v1").await,
        Some(img.digest)
    );
}

#[test]
fn generated_data_is_deterministic_and_incompressible() {
    let a = generated_bytes(3 * support::data::CHUNK as u64 + 5, 7);
    assert_eq!(a.len(), 3 * support::data::CHUNK + 5);
    assert_eq!(a, generated_bytes(a.len() as u64, 7));
    assert_ne!(a, generated_bytes(a.len() as u64, 8));
    assert_eq!(sha256_digest(&a), generated_digest(a.len() as u64, 7));
    // A prefix of a longer stream is the shorter stream.
    assert_eq!(&a[..1000], &generated_bytes(1000, 7)[..]);
    // Byte histogram is flat: no compressor will shrink it.
    let mut hist = [0usize; 256];
    a.iter().for_each(|&b| hist[b as usize] += 1);
    let expected = a.len() / 256;
    assert!(
        hist.iter()
            .all(|&n| n > expected * 9 / 10 && n < expected * 11 / 10)
    );
}

#[test]
fn tar_gz_is_readable_by_system_tools() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 70_000]; // > one stored deflate block
    let tgz = support::tarball::tar_gz(&[("dir/hello.txt", b"hello\n"), ("big.bin", &big)]);
    let path = dir.path().join("layer.tar.gz");
    std::fs::write(&path, &tgz).unwrap();
    let out = Command::new("tar")
        .arg("-tzvf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("dir/hello.txt") && listing.contains("big.bin"),
        "{listing}"
    );
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(&path)
        .arg("dir/hello.txt")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hello\n");
    let empty = support::tarball::gzip_stored(b"");
    std::fs::write(&path, &empty).unwrap();
    let out = Command::new("gzip").arg("-t").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn stop_and_restart_keeps_content() {
    let mut reg = Registry::plain().await;
    let pusher = reg.pusher();
    let img = pusher
        .push_image("r/app", "v1", ImageSpec::small("restart"))
        .await;
    reg.stop();
    assert!(!reg.is_running());
    let err = reg
        .http_client()
        .get(format!("{}/v2/", reg.url()))
        .send()
        .await;
    assert!(err.is_err(), "registry still answering after stop");
    reg.restart().await;
    assert_eq!(
        pusher.manifest_digest("r/app", "v1").await,
        Some(img.digest)
    );
}

#[tokio::test]
async fn delete_by_digest_removes_all_its_tags() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .start()
        .await;
    let pusher = reg.pusher();
    let img = pusher
        .push_image("d/app", "v1", ImageSpec::small("del"))
        .await;
    pusher
        .push_manifest_raw("d/app", "v1-alias", &img.media_type, img.bytes.clone())
        .await;
    // distribution 2.8 refuses DELETE by tag.
    let status = pusher
        .request(Method::DELETE, "/v2/d/app/manifests/v1", Some("d/app"))
        .await
        .status();
    assert!(status.is_client_error(), "{status}");
    assert!(pusher.delete_tag("d/app", "v1").await);
    assert_eq!(pusher.manifest_digest("d/app", "v1").await, None);
    assert_eq!(pusher.manifest_digest("d/app", "v1-alias").await, None);
}

/// Documents how distribution 2.8 paginates listings: `_catalog` honours
/// `n`/`last` with a `Link` header; `tags/list` ignores `n` and returns every
/// tag at once, in no particular order (pagination arrived in distribution 3).
#[tokio::test]
async fn listing_pagination() {
    let reg = Registry::plain().await;
    let pusher = reg.pusher();
    let img = pusher
        .push_image("p/app", "t0", ImageSpec::small("page"))
        .await;
    for i in 1..5 {
        pusher
            .push_manifest_raw(
                "p/app",
                &format!("t{i}"),
                &img.media_type,
                img.bytes.clone(),
            )
            .await;
    }
    for r in ["p/b", "p/c"] {
        pusher.push_image(r, "x", ImageSpec::small(r)).await;
    }
    let client = reg.http_client();
    let resp = client
        .get(format!("{}/v2/p/app/tags/list?n=2", reg.url()))
        .send()
        .await
        .unwrap();
    let link = resp.headers().get("link").cloned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tags"].as_array().unwrap().len(), 5, "{body}");
    assert!(link.is_none());
    let resp = client
        .get(format!("{}/v2/_catalog?n=1", reg.url()))
        .send()
        .await
        .unwrap();
    let link = resp.headers().get("link").cloned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["repositories"], serde_json::json!(["p/app"]));
    let link = link.unwrap();
    assert_eq!(link, "</v2/_catalog?last=p%2Fapp&n=1>; rel=\"next\"");

    let mut tags = pusher.tags("p/app").await;
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4"]);
    let mut repos = pusher.catalog().await;
    repos.sort();
    assert_eq!(repos, ["p/app", "p/b", "p/c"]);
}

/// Behaviour of distribution 2.8.2 that a mirror client must cope with,
/// pinned here so a registry upgrade that changes it is noticed.
#[tokio::test]
async fn distribution_2_8_quirks() {
    let reg = Registry::builder()
        .auth(Auth::token("bob", "pw-bob"))
        .start()
        .await;
    let pusher = reg.pusher();
    let img = pusher
        .push_image("q/app", "v1", ImageSpec::small("quirks"))
        .await;
    let oci = pusher
        .push_image("q/app", "oci", ImageSpec::small("quirks").oci())
        .await;
    let client = reg.http_client();
    let challenge = |method: Method, path: &str| {
        let rb = client.request(method, format!("{}{path}", reg.url()));
        async move {
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            let h = r.headers()["www-authenticate"].to_str().unwrap();
            support::images::parse_challenge(h).params["scope"].clone()
        }
    };
    // DELETE needs the `delete` action; the catalog its own scope.
    assert_eq!(
        challenge(
            Method::DELETE,
            &format!("/v2/q/app/manifests/{}", img.digest)
        )
        .await,
        "repository:q/app:delete"
    );
    assert_eq!(
        challenge(Method::GET, "/v2/_catalog").await,
        "registry:catalog:*"
    );
    // The action order in a push challenge is random (a Go map): parse it.
    let scope = challenge(Method::POST, "/v2/q/app/blobs/uploads/").await;
    let (typ, name, mut actions) = support::token::parse_scope(&scope).unwrap();
    actions.sort();
    assert_eq!(
        (typ, name, actions),
        ("repository", "q/app", vec!["pull", "push"])
    );

    // Without an Accept header a schema 2 manifest is down-converted to a
    // signed schema 1 one (another digest), and an OCI manifest is a 404
    // even by digest: always send the four manifest types in Accept.
    let r = pusher
        .request(Method::GET, "/v2/q/app/manifests/v1", Some("q/app"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
    );
    assert_ne!(r.headers()["docker-content-digest"], img.digest.as_str());
    let r = pusher
        .request(
            Method::GET,
            &format!("/v2/q/app/manifests/{}", oci.digest),
            Some("q/app"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A manifest whose blobs are missing is refused.
    let missing = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 3,
            "digest": format!("sha256:{}", "0".repeat(64)),
        },
        "layers": [],
    });
    let body = serde_json::to_vec(&missing).unwrap();
    let url = format!("{}/v2/q/app/manifests/bad", reg.url());
    let r = pusher
        .send(Some("q/app"), |c| {
            c.put(url.clone())
                .header("content-type", DOCKER_MANIFEST)
                .body(body.clone())
        })
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("MANIFEST_BLOB_UNKNOWN"));

    // Blobs support Range requests.
    let layer = &img.layers[0];
    let url = format!("{}/v2/q/app/blobs/{}", reg.url(), layer.digest);
    let r = pusher
        .send(Some("q/app"), |c| {
            c.get(url.clone()).header("range", "bytes=10-19")
        })
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", layer.size).as_str()
    );

    // Cross-repository mount works (token scope: push on target, pull on
    // source, both requested in one token request).
    let url = format!(
        "{}/v2/other/blobs/uploads/?mount={}&from=q/app",
        reg.url(),
        layer.digest
    );
    let r = pusher.send(Some("other"), |c| c.post(url.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(pusher.blob_exists("other", &layer.digest).await);
}

/// A registry that cannot start fails fast with its own log in the message.
#[tokio::test]
#[should_panic(expected = "docker-registry exited during startup")]
async fn startup_failure_reports_log() {
    Registry::builder().log_level("bogus").start().await;
}
