//! The whole path a user takes: upstream registry with images → repository
//! and policy over the API → `poll_mirror` → pull out of the mirror with
//! skopeo, digests equal to upstream's; the `/v2` read API on what was
//! mirrored. Before that: wrong upstream credentials are refused when
//! connecting, saving and rotating.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo};
use crate::support::images::PushedManifest;
use crate::support::images::{MixedImages, MixedTags};
use crate::support::policies::{add_policy, policies};
use crate::support::{Auth, ImageSpec, Registry};

const UPSTREAM_USER: &str = "upstream-bot";
const UPSTREAM_PASSWORD: &str = "upstream-s3cret";

/// skopeo flags to read from the mirror as admin over plain HTTP.
fn mirror_src(prefix: &str) -> Vec<String> {
    vec![
        format!("--{prefix}creds=admin:{ADMIN_PASSWORD}"),
        format!("--{prefix}tls-verify=false"),
    ]
}

fn oci_index_digest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Upstream {
    registry: Registry,
    docker: PushedManifest,
    oci: PushedManifest,
    index: PushedManifest,
}

/// Debian's registry, behind htpasswd (`UPSTREAM_USER`), empty.
async fn guarded_registry() -> Registry {
    Registry::builder()
        .auth(Auth::htpasswd(UPSTREAM_USER, UPSTREAM_PASSWORD))
        .start()
        .await
}

async fn upstream() -> Upstream {
    let registry = guarded_registry().await;
    let p = registry.pusher();
    let MixedImages {
        docker,
        amd64: oci,
        index,
        ..
    } = p
        .push_mixed(
            "team/app",
            MixedTags {
                docker: "v1",
                amd64: "v2",
                arm64: "v3-arm64",
                index: "v3",
            },
            300_000,
            7,
        )
        .await;
    Upstream {
        registry,
        docker,
        oci,
        index,
    }
}

fn policy_body(up: &Registry, password: &str) -> Value {
    json!({
        "remoteHost": up.url(),
        "remoteRepository": "team/app",
        "username": UPSTREAM_USER,
        "password": password,
        "enabled": true,
    })
}

/// Refused for wrong upstream credentials, with the reason.
const INVALID_PERMISSIONS: &str = "REMOTE_REGISTRY_INVALID_PERMISSIONS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_upstream_credentials_are_refused_with_the_reason_on_connect_save_and_update() {
    let registry = guarded_registry().await;
    let pusher = registry.pusher();
    pusher
        .push_image("team/app", "v1", ImageSpec::small("app"))
        .await;
    let server = TestServer::start().await;
    let admin = server.admin();
    server.create_repo("mirrors", "app", "private").await;

    // "Connect": wrong credentials are refused with the reason, right ones pass.
    let check = |password: &str| {
        let mut form = policy_body(&registry, password);
        form.as_object_mut().unwrap().remove("enabled");
        admin.post("/api/v0/remote/registry").json(&form)
    };
    let bad = check("wrong-password").await;
    bad.expect_error(StatusCode::BAD_REQUEST, INVALID_PERMISSIONS);
    let ok = check(UPSTREAM_PASSWORD).await;
    let ok = ok.expect(StatusCode::CREATED).json();
    assert_eq!(ok["permissions"]["read"], true, "{ok}");
    assert_eq!(ok["registryType"], "registry");

    // A policy with wrong credentials is not saved.
    let form = policy_body(&registry, "wrong-password");
    let bad = admin.post(policies("mirrors/app")).json(&form).await;
    let bad = bad.expect_error(StatusCode::BAD_REQUEST, INVALID_PERMISSIONS);
    assert!(bad.text().contains("authentication"), "{}", bad.text());
    let listed = admin.get(policies("mirrors/app")).await;
    assert_eq!(listed.expect(StatusCode::OK).json(), json!([]));

    // The right ones are (here without Save & Apply).
    let form = policy_body(&registry, UPSTREAM_PASSWORD);
    let id = add_policy(&admin, "mirrors/app", &form).await;

    // Partial updates: disable; rotating to bad credentials is refused and
    // changes nothing.
    let one = format!("{}/{id}", policies("mirrors/app"));
    let p = admin.put(&one).json(&json!({"enabled": false})).await;
    let p = p.expect(StatusCode::OK).json();
    assert_eq!(p["enabled"], false);
    assert_eq!(p["remoteRepository"], "team/app");
    let bad = admin.put(&one).json(&json!({"password": "rotated-wrong"}));
    bad.await
        .expect_error(StatusCode::BAD_REQUEST, INVALID_PERMISSIONS);
    let unchanged = admin.get(&one).await.expect(StatusCode::OK).json();
    assert_eq!(unchanged["enabled"], false, "{unchanged}");
    let rotated = json!({"enabled": true, "password": UPSTREAM_PASSWORD});
    let p = admin.put(&one).json(&rotated).await;
    let p = p.expect(StatusCode::OK);
    assert_eq!(p.json()["enabled"], true);
    assert!(!p.text().contains(UPSTREAM_PASSWORD));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_then_pull_with_skopeo() {
    let up = upstream().await;
    let server = TestServer::start().await;
    let admin = server.admin();
    server.create_repo("mirrors", "app", "private").await;

    // Save & Apply. The response never carries the password.
    let save_and_apply = admin
        .post(policies("mirrors/app"))
        .query("initialEvaluation=true");
    let created = save_and_apply
        .json(&policy_body(&up.registry, UPSTREAM_PASSWORD))
        .await;
    let created = created.expect(StatusCode::CREATED);
    // initialEvaluation=true ("Save & Apply") started a poll of the policy.
    let applied = created.header("x-job-id");
    let text = created.text();
    assert!(!text.contains(UPSTREAM_PASSWORD), "{text}");
    let policy = created.json();
    assert!(policy.get("password").is_none() && policy.get("authToken").is_none());
    assert_eq!(policy["localRepository"], "mirrors/app");
    assert_eq!(policy["remoteRepository"], "team/app");
    assert_eq!(policy["enabled"], true);
    let id = policy["id"].as_str().unwrap();
    let listed = admin.get(policies("mirrors/app")).await;
    assert_eq!(listed.expect(StatusCode::OK).json()[0]["id"], id);

    let job = server.wait_done(applied).await;
    assert_eq!(job["parameters"]["policyID"], id);

    // Trigger poll_mirror (all enabled policies) and wait for it.
    let all = json!({"action": "poll_mirror"});
    let job = admin.post("/api/v0/jobs").json(&all).await;
    let job = job.expect(StatusCode::ACCEPTED).json();
    assert_eq!(job["status"], "waiting");
    let job = server.wait_done(job["id"].as_str().unwrap()).await;
    assert_eq!(job["action"], "poll_mirror");
    let logs = format!("/api/v0/jobs/{}/logs", job["id"].as_str().unwrap());
    let logs = admin.get(logs).await.expect(StatusCode::OK).json();
    assert!(logs.as_array().unwrap().len() > 2, "{logs}");
    assert_eq!(logs[0]["lineNum"], 0);
    let policy = admin.get(format!("{}/{id}", policies("mirrors/app"))).await;
    let policy = policy.json();
    assert_eq!(policy["lastStatus"]["code"], "SUCCESS", "{policy}");

    // The DTR tag list shows the upstream digests and where they came from.
    let tags = admin.get("/api/v0/repositories/mirrors/app/tags").await;
    let tags = tags.expect(StatusCode::OK).json();
    let tag = |name: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("tag {name} not mirrored: {tags}"))
            .clone()
    };
    assert_eq!(tag("v1")["digest"], up.docker.digest.as_str());
    assert_eq!(tag("v2")["digest"], up.oci.digest.as_str());
    assert_eq!(tag("v3")["digest"], up.index.digest.as_str());
    let v1 = tag("v1");
    assert_eq!(v1["mirroring"]["mirroringPolicyID"], id);
    assert_eq!(v1["mirroring"]["remoteTag"], "v1");

    // skopeo inspect --raw: byte-identical manifests for every tag.
    for (tag, pushed) in [("v1", &up.docker), ("v2", &up.oci), ("v3", &up.index)] {
        let mut args = vec!["inspect".to_string(), "--raw".to_string()];
        args.extend(mirror_src(""));
        args.push(format!("docker://{}/mirrors/app:{tag}", server.host_port));
        let raw = skopeo(args).await;
        assert_eq!(sha256(&raw), pushed.digest, "tag {tag}");
        assert_eq!(raw, pushed.bytes, "tag {tag}");
    }

    // skopeo copy to an OCI layout keeps OCI manifests and indexes as they are.
    let out = tempfile::tempdir().unwrap();
    let oci_dir = out.path().join("oci-v2");
    let mut args = vec!["copy".to_string()];
    args.extend(mirror_src("src-"));
    args.push(format!("docker://{}/mirrors/app:v2", server.host_port));
    args.push(format!("oci:{}:v2", oci_dir.display()));
    skopeo(args).await;
    assert_eq!(oci_index_digest(&oci_dir), up.oci.digest);
    for blob in up.oci.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(oci_dir.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256(&bytes), blob);
    }

    let all_dir = out.path().join("oci-v3");
    let mut args = vec!["copy".to_string(), "--all".to_string()];
    args.extend(mirror_src("src-"));
    args.push(format!("docker://{}/mirrors/app:v3", server.host_port));
    args.push(format!("oci:{}:v3", all_dir.display()));
    skopeo(args).await;
    assert_eq!(oci_index_digest(&all_dir), up.index.digest);

    // A Docker schema 2 image: `dir:` keeps the manifest and every blob as is.
    let dir = out.path().join("dir-v1");
    let mut args = vec!["copy".to_string()];
    args.extend(mirror_src("src-"));
    args.push(format!("docker://{}/mirrors/app:v1", server.host_port));
    args.push(format!("dir:{}", dir.display()));
    skopeo(args).await;
    assert_eq!(
        sha256(&std::fs::read(dir.join("manifest.json")).unwrap()),
        up.docker.digest
    );
    for blob in up.docker.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        assert_eq!(sha256(&std::fs::read(dir.join(hex)).unwrap()), blob);
    }

    check_v2_read_api(&server, &up).await;
    server.stop().await;
}

/// The `/v2` details skopeo does not exercise.
async fn check_v2_read_api(server: &TestServer, up: &Upstream) {
    let admin = server.admin();
    let layer = up.docker.layers[1].clone();

    // HEAD on a manifest: exact headers, no body.
    let head = admin.head("/v2/mirrors/app/manifests/v1");
    let head = head.header("accept", crate::support::images::MANIFEST_ACCEPT);
    let head = head.await.expect(StatusCode::OK);
    assert_eq!(head.header("content-type"), up.docker.media_type);
    assert_eq!(head.header("docker-content-digest"), up.docker.digest);
    assert_eq!(head.header("content-length"), up.docker.size.to_string());
    assert_eq!(
        head.header("docker-distribution-api-version"),
        "registry/2.0"
    );
    assert!(head.body.is_empty(), "{:?}", head.body);

    // By digest too.
    let by_digest = format!("/v2/mirrors/app/manifests/{}", up.index.digest);
    let by_digest = admin.get(by_digest).await.expect(StatusCode::OK);
    assert_eq!(by_digest.header("content-type"), up.index.media_type);
    assert_eq!(by_digest.body.as_ref(), up.index.bytes.as_slice());

    // Blobs: whole, HEAD, and a Range.
    let path = format!("/v2/mirrors/app/blobs/{}", layer.digest);
    let whole = admin.get(&path).await.expect(StatusCode::OK);
    assert_eq!(whole.header("content-length"), layer.size.to_string());
    let whole = whole.body;
    assert_eq!(sha256(&whole), layer.digest);
    let head = admin.head(&path).await.expect(StatusCode::OK);
    assert_eq!(head.header("content-length"), layer.size.to_string());
    assert_eq!(head.header("docker-content-digest"), layer.digest);
    let range = |range: String| admin.get(&path).header("range", range);
    let part = range("bytes=1000-1999".into()).await;
    let part = part.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 1000-1999/{}", layer.size)
    );
    let part = part.body;
    assert!(
        part == whole.slice(1000..2000),
        "wrong bytes ({} of them)",
        part.len()
    );
    let tail = range(format!("bytes={}-", layer.size - 10)).await;
    let tail = tail.expect(StatusCode::PARTIAL_CONTENT).body;
    assert!(
        tail == whole.slice(whole.len() - 10..),
        "wrong tail {tail:?}"
    );
    let beyond = range(format!("bytes={}-", layer.size)).await;
    let beyond = beyond.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.header("content-range"),
        format!("bytes */{}", layer.size)
    );

    // A blob upstream has but this repository does not hold: unknown.
    let unknown = format!("/v2/mirrors/app/blobs/sha256:{}", "0".repeat(64));
    let unknown = admin.get(unknown).await;
    unknown.expect_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    let nope = admin.get("/v2/mirrors/app/manifests/nope").await;
    nope.expect_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");

    // Tag paging with n/last and Link.
    let mut seen = Vec::new();
    let mut next = Some("/v2/mirrors/app/tags/list?n=2".to_string());
    while let Some(path) = next.take() {
        let page = admin.get(path).await.expect(StatusCode::OK);
        next = page
            .header_opt("link")
            .map(|l| l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string());
        let page = page.json();
        assert_eq!(page["name"], "mirrors/app");
        let tags = page["tags"].as_array().unwrap();
        assert!(tags.len() <= 2);
        seen.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ["v1", "v2", "v3", "v3-arm64"]);

    let catalog = admin.get("/v2/_catalog").await.expect(StatusCode::OK);
    assert_eq!(catalog.json()["repositories"], json!(["mirrors/app"]));

    // Anonymous: the repository is private.
    let anonymous = server.api().get("/v2/mirrors/app/manifests/v1").await;
    let anonymous = anonymous.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // DTR's challenge: the token endpoint at the origin the client used.
    assert_eq!(
        anonymous.header("www-authenticate"),
        format!(
            "Bearer realm=\"{}/auth/token\",service=\"regmirror\"",
            server.url
        )
    );
}
