//! The whole path a user takes: upstream registry with images → repository
//! and policy over the API → `poll_mirror` → pull out of the mirror with
//! skopeo, digests equal to upstream's.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, ADMIN_PASSWORD, TestServer, assert_error, sha256, skopeo};
use crate::support::images::PushedManifest;
use crate::support::images::{MixedImages, MixedTags};
use crate::support::{Auth, Registry};

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

async fn upstream() -> Upstream {
    let registry = Registry::builder()
        .auth(Auth::htpasswd(UPSTREAM_USER, UPSTREAM_PASSWORD))
        .start()
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_then_pull_with_skopeo() {
    let up = upstream().await;
    let server = TestServer::start().await;
    server.create_repo("mirrors", "app", "private").await;

    // "Connect": wrong credentials are refused with the reason, right ones pass.
    let check = |password: &str| {
        let mut b = policy_body(&up.registry, password);
        b.as_object_mut().unwrap().remove("enabled");
        server.call(Method::POST, "/api/v0/remote/registry", ADMIN, Some(b))
    };
    let bad = check("wrong-password").await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
        None,
    );
    let (s, ok) = check(UPSTREAM_PASSWORD).await;
    assert_eq!(s, StatusCode::CREATED, "{ok}");
    assert_eq!(ok["permissions"]["read"], true, "{ok}");
    assert_eq!(ok["registryType"], "registry");

    // A policy with wrong credentials is not saved.
    let policies = "/api/v0/repositories/mirrors/app/pollMirroringPolicies";
    let bad = server
        .call(
            Method::POST,
            policies,
            ADMIN,
            Some(policy_body(&up.registry, "wrong-password")),
        )
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
        None,
    );
    assert!(bad.1.to_string().contains("authentication"), "{}", bad.1);

    // The real one. The response never carries the password.
    let resp = server
        .request(
            Method::POST,
            &format!("{policies}?initialEvaluation=true"),
            ADMIN,
        )
        .json(&policy_body(&up.registry, UPSTREAM_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // initialEvaluation=true ("Save & Apply") started a poll of the policy.
    let applied = resp.headers()["x-job-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(UPSTREAM_PASSWORD), "{text}");
    let policy: Value = serde_json::from_str(&text).unwrap();
    assert!(policy.get("password").is_none() && policy.get("authToken").is_none());
    assert_eq!(policy["localRepository"], "mirrors/app");
    assert_eq!(policy["remoteRepository"], "team/app");
    assert_eq!(policy["enabled"], true);
    let id = policy["id"].as_str().unwrap();
    let (s, listed) = server.call(Method::GET, policies, ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed[0]["id"], id);

    let job = server.wait_done(&applied).await;
    assert_eq!(job["parameters"]["policyID"], id);

    // Trigger poll_mirror (all enabled policies) and wait for it.
    let (s, job) = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["status"], "waiting");
    let job = server.wait_done(job["id"].as_str().unwrap()).await;
    assert_eq!(job["action"], "poll_mirror");
    let (s, logs) = server
        .call(
            Method::GET,
            &format!("/api/v0/jobs/{}/logs", job["id"].as_str().unwrap()),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(logs.as_array().unwrap().len() > 2, "{logs}");
    assert_eq!(logs[0]["lineNum"], 0);
    let (_, policy) = server
        .call(Method::GET, &format!("{policies}/{id}"), ADMIN, None)
        .await;
    assert_eq!(policy["lastStatus"]["code"], "SUCCESS", "{policy}");

    // Partial updates: disable; rotating to bad credentials is refused and
    // changes nothing.
    let one = format!("{policies}/{id}");
    let (s, p) = server
        .call(Method::PUT, &one, ADMIN, Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["enabled"], false);
    assert_eq!(p["remoteRepository"], "team/app");
    let bad = server
        .call(
            Method::PUT,
            &one,
            ADMIN,
            Some(json!({"password": "rotated-wrong"})),
        )
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
        None,
    );
    let (s, p) = server
        .call(
            Method::PUT,
            &one,
            ADMIN,
            Some(json!({"enabled": true, "password": UPSTREAM_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["enabled"], true);
    assert!(!p.to_string().contains(UPSTREAM_PASSWORD));

    // The DTR tag list shows the upstream digests and where they came from.
    let (s, tags) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/app/tags",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let digest_of = |name: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("tag {name} not mirrored: {tags}"))["digest"]
            .clone()
    };
    assert_eq!(digest_of("v1"), up.docker.digest.as_str());
    assert_eq!(digest_of("v2"), up.oci.digest.as_str());
    assert_eq!(digest_of("v3"), up.index.digest.as_str());
    let v1 = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "v1")
        .unwrap();
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
    let get = |path: &str, creds| server.request(Method::GET, path, creds);
    let layer = up.docker.layers[1].clone();

    // HEAD on a manifest: exact headers, no body.
    let resp = server
        .request(Method::HEAD, "/v2/mirrors/app/manifests/v1", ADMIN)
        .header("accept", crate::support::images::MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["content-type"], up.docker.media_type.as_str());
    assert_eq!(h["docker-content-digest"], up.docker.digest.as_str());
    assert_eq!(h["content-length"], up.docker.size.to_string().as_str());
    assert_eq!(h["docker-distribution-api-version"], "registry/2.0");

    // By digest too.
    let resp = get(
        &format!("/v2/mirrors/app/manifests/{}", up.index.digest),
        ADMIN,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], up.index.media_type.as_str());
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        up.index.bytes.as_slice()
    );

    // Blobs: whole, HEAD, and a Range.
    let path = format!("/v2/mirrors/app/blobs/{}", layer.digest);
    let whole = get(&path, ADMIN).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(
        whole.headers()["content-length"],
        layer.size.to_string().as_str()
    );
    let whole = whole.bytes().await.unwrap();
    assert_eq!(sha256(&whole), layer.digest);
    let head = server
        .request(Method::HEAD, &path, ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        layer.size.to_string().as_str()
    );
    assert_eq!(
        head.headers()["docker-content-digest"],
        layer.digest.as_str()
    );
    let part = get(&path, ADMIN)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 1000-1999/{}", layer.size).as_str()
    );
    let part = part.bytes().await.unwrap();
    assert!(
        part == whole.slice(1000..2000),
        "wrong bytes ({} of them)",
        part.len()
    );
    let tail = get(&path, ADMIN)
        .header("range", format!("bytes={}-", layer.size - 10))
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    let tail = tail.bytes().await.unwrap();
    assert!(
        tail == whole.slice(whole.len() - 10..),
        "wrong tail {tail:?}"
    );
    let beyond = get(&path, ADMIN)
        .header("range", format!("bytes={}-", layer.size))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{}", layer.size).as_str()
    );

    // A blob upstream has but this repository does not hold: unknown.
    let (s, b) = server
        .call(
            Method::GET,
            &format!("/v2/mirrors/app/blobs/sha256:{}", "0".repeat(64)),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["errors"][0]["code"], "BLOB_UNKNOWN");
    let (s, b) = server
        .call(Method::GET, "/v2/mirrors/app/manifests/nope", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["errors"][0]["code"], "MANIFEST_UNKNOWN");

    // Tag paging with n/last and Link.
    let mut seen = Vec::new();
    let mut next = Some("/v2/mirrors/app/tags/list?n=2".to_string());
    while let Some(path) = next.take() {
        let resp = get(&path, ADMIN).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        next = resp.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l[l.find('<').unwrap() + 1..l.find('>').unwrap()].to_string()
        });
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["name"], "mirrors/app");
        let tags = page["tags"].as_array().unwrap();
        assert!(tags.len() <= 2);
        seen.extend(tags.iter().map(|t| t.as_str().unwrap().to_string()));
    }
    assert_eq!(seen, ["v1", "v2", "v3", "v3-arm64"]);

    let (s, cat) = server.call(Method::GET, "/v2/_catalog", ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cat["repositories"], json!(["mirrors/app"]));

    // Anonymous: the repository is private.
    let resp = get("/v2/mirrors/app/manifests/v1", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"regmirror\""
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
}
