//! Push mirroring (DTR's `pushMirroringPolicies`) against Debian's
//! `docker-registry`: tags pushed to regmirror, or mirrored into it by a
//! poll, reach the remote with equal digests (a multi-platform index
//! included), under the policy's tag template; a second push sends no
//! blob again; wrong credentials are refused when saving; Basic auth, and
//! Bearer tokens over TLS with a private CA; the chain upstream → (poll)
//! regmirror → (push) registry B with no manual step; the chunked upload
//! of the client itself; 5xx and 429 answers (through the fault proxy)
//! retried until the push lands whole.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, TestServer};
use crate::support::images::{MixedImages, MixedTags, Pusher};
use crate::support::{Auth, ImageSpec, Registry};

const REMOTE_USER: &str = "push-bot";
const REMOTE_PASSWORD: &str = "push-s3cret";

fn push_policies(repo: &str) -> String {
    format!("/api/v0/repositories/{repo}/pushMirroringPolicies")
}

fn regmirror_pusher(server: &TestServer) -> Pusher {
    Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    )
}

/// Waits until at least `n` `push_mirror_tag` jobs exist and none is
/// waiting or running; the jobs, oldest first. Panics with their logs if
/// one did not end `done`.
async fn push_jobs_done(server: &TestServer, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = server
            .admin()
            .get("/api/v0/jobs?action=push_mirror_tag&limit=100")
            .await;
        let list = list.expect(StatusCode::OK).json();
        let mut jobs: Vec<Value> = list["jobs"].as_array().cloned().unwrap_or_default();
        jobs.reverse();
        let busy = jobs
            .iter()
            .any(|j| matches!(j["status"].as_str(), Some("waiting" | "running")));
        if jobs.len() >= n && !busy {
            for j in &jobs {
                let id = j["id"].as_str().unwrap();
                let (status, log) = server.job_outcome(id, Duration::from_secs(1)).await;
                assert_eq!(status, "done", "push job {id}: {log:#?}");
            }
            return jobs;
        }
        assert!(
            Instant::now() < deadline,
            "{} push jobs, {} wanted: {jobs:#?}",
            jobs.len(),
            n
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn job_log(server: &TestServer, job: &Value) -> String {
    let id = job["id"].as_str().unwrap();
    server
        .job_outcome(id, Duration::from_secs(1))
        .await
        .1
        .join("\n")
}

fn mixed_tags() -> MixedTags<'static> {
    MixedTags {
        docker: "v1",
        amd64: "v2",
        arm64: "v3-arm64",
        index: "v3",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_tags_reach_a_basic_auth_registry_with_equal_digests_and_are_not_sent_twice() {
    let remote = Registry::builder()
        .auth(Auth::htpasswd(REMOTE_USER, REMOTE_PASSWORD))
        .start()
        .await;
    let server = TestServer::start().await;
    let admin = server.admin();
    server.create_repo("src", "app", "private").await;
    let form = |password: &str| {
        json!({
            "remoteHost": remote.url(),
            "remoteRepository": "team/pushed",
            "username": REMOTE_USER,
            "password": password,
            "enabled": true,
            "tagTemplate": "%n-copy",
        })
    };

    // Wrong credentials: refused at save, with the reason; nothing saved.
    let bad = admin
        .post(push_policies("src/app"))
        .json(&form("wrong"))
        .await;
    let bad = bad.expect_error(
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
    );
    assert!(bad.text().contains("authentication"), "{}", bad.text());
    let listed = admin.get(push_policies("src/app")).await;
    assert_eq!(listed.expect(StatusCode::OK).json(), json!([]));
    // A template that makes no tag names the field.
    let mut bad_template = form(REMOTE_PASSWORD);
    bad_template["tagTemplate"] = json!("%n/x");
    let bad = admin
        .post(push_policies("src/app"))
        .json(&bad_template)
        .await;
    bad.expect_error(StatusCode::BAD_REQUEST, "INVALID_PUSH_MIRRORING_POLICY")
        .expect_field("tagTemplate");

    let created = admin
        .post(push_policies("src/app"))
        .json(&form(REMOTE_PASSWORD))
        .await;
    let created = created.expect(StatusCode::CREATED);
    assert!(
        !created.text().contains(REMOTE_PASSWORD),
        "{}",
        created.text()
    );
    let policy = created.json();
    assert_eq!(policy["tagTemplate"], "%n-copy");
    assert_eq!(policy["lastStatus"]["code"], "NEVER_RUN");
    let id = policy["id"].as_str().unwrap().to_string();

    // Pushed to regmirror: each tag goes on, the index with its children.
    let MixedImages {
        docker,
        amd64,
        arm64,
        index,
    } = regmirror_pusher(&server)
        .push_mixed("src/app", mixed_tags(), 300_000, 11)
        .await;
    let jobs = push_jobs_done(&server, 4).await;
    let theirs = remote.pusher();
    for (tag, pushed) in [
        ("v1", &docker),
        ("v2", &amd64),
        ("v3-arm64", &arm64),
        ("v3", &index),
    ] {
        let remote_digest = theirs
            .manifest_digest("team/pushed", &format!("{tag}-copy"))
            .await;
        assert_eq!(
            remote_digest.as_deref(),
            Some(pushed.digest.as_str()),
            "{tag}"
        );
    }
    for child in &index.children {
        assert!(
            theirs
                .manifest_digest("team/pushed", &child.digest)
                .await
                .is_some(),
            "child {}",
            child.digest
        );
    }
    let logs = futures_util::future::join_all(jobs.iter().map(|j| job_log(&server, j))).await;
    assert!(
        logs.iter().any(|l| l.contains("pushed tag src/app:v1 to")),
        "{logs:#?}"
    );
    let one = admin
        .get(format!("{}/{id}", push_policies("src/app")))
        .await;
    let one = one.expect(StatusCode::OK).json();
    assert_eq!(one["lastStatus"]["code"], "SUCCESS", "{one}");
    assert!(!one["lastMirroredAt"].as_str().unwrap().is_empty());

    // The same tag again: nothing the remote has is sent again.
    regmirror_pusher(&server)
        .push_image("src/app", "v1-again", ImageSpec::small("unused"))
        .await;
    let (media_type, bytes) = theirs.get_manifest("team/pushed", "v1-copy").await.unwrap();
    let put = server
        .request(
            reqwest::Method::PUT,
            "/v2/src/app/manifests/v1",
            crate::server::ADMIN,
        )
        .header("content-type", media_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let jobs = push_jobs_done(&server, 6).await;
    let log = job_log(&server, jobs.last().unwrap()).await;
    assert!(log.contains("pushed tag src/app:v1 to"), "{log}");
    assert!(log.contains(": 0 blobs sent, 3 skipped"), "{log}");

    // Both kinds in DTR's union list.
    let all = admin
        .get("/api/v0/repositories/src/app/mirroringPolicies")
        .await;
    let all = all.expect(StatusCode::OK).json();
    assert_eq!(all[0]["mirroringType"], "push", "{all}");
    // Deleted: no more pushes, 404 after.
    let one = format!("{}/{id}", push_policies("src/app"));
    admin.delete(&one).await.expect(StatusCode::NO_CONTENT);
    admin
        .get(&one)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_PUSH_MIRRORING_POLICY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_registry_over_tls_with_a_private_ca_gets_the_tag_and_initial_evaluation_works()
 {
    let remote = Registry::builder()
        .auth(Auth::token(REMOTE_USER, REMOTE_PASSWORD))
        .tls(true)
        .start()
        .await;
    let server = TestServer::start().await;
    server.create_repo("src", "tls", "private").await;
    // A tag already there: pushed by `initialEvaluation=true`.
    let image = regmirror_pusher(&server)
        .push_image("src/tls", "1.0", ImageSpec::small("over tls"))
        .await;
    let form = json!({
        "remoteHost": remote.url(),
        "remoteRepository": "team/secure",
        "username": REMOTE_USER,
        "password": REMOTE_PASSWORD,
        "remoteCA": remote.ca_pem(),
        "tagTemplate": "%n-%Y",
    });
    let created = server
        .admin()
        .post(push_policies("src/tls"))
        .query("initialEvaluation=true")
        .json(&form)
        .await;
    let created = created.expect(StatusCode::CREATED);
    assert!(!created.header("x-job-id").is_empty());
    push_jobs_done(&server, 1).await;
    let year = chrono::Utc::now().format("%Y").to_string();
    let digest = remote
        .pusher()
        .manifest_digest("team/secure", &format!("1.0-{year}"))
        .await;
    assert_eq!(digest.as_deref(), Some(image.digest.as_str()));
    assert!(remote.token_requests() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_to_regmirror_by_poll_then_to_registry_b_by_push_keeps_every_digest() {
    let upstream = Registry::plain().await;
    let pushed = upstream
        .pusher()
        .push_mixed("team/app", mixed_tags(), 200_000, 5)
        .await;
    let b = Registry::plain().await;
    let server = TestServer::start().await;
    server.create_repo("chain", "app", "private").await;
    let push = json!({"remoteHost": b.url(), "remoteRepository": "edge/app"});
    server
        .admin()
        .post(push_policies("chain/app"))
        .json(&push)
        .await
        .expect(StatusCode::CREATED);
    // Save & Apply a poll policy: its poll's tags are pushed on.
    let poll = json!({
        "remoteHost": upstream.url(),
        "remoteRepository": "team/app",
        "enabled": true,
        "initialEvaluation": true,
    });
    let job = server
        .apply_policy(crate::server::ADMIN, "chain/app", poll)
        .await;
    server.wait_done(&job).await;
    push_jobs_done(&server, 4).await;
    let theirs = b.pusher();
    for (tag, m) in [
        ("v1", &pushed.docker),
        ("v2", &pushed.amd64),
        ("v3-arm64", &pushed.arm64),
        ("v3", &pushed.index),
    ] {
        let got = theirs.manifest_digest("edge/app", tag).await;
        assert_eq!(got.as_deref(), Some(m.digest.as_str()), "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_uploads_a_blob_in_chunks_and_finds_it_there_after() {
    use mirror_core::remote::{HttpRemote, HttpSettings, RemoteWriter};
    use mirror_core::store::{BlobStore, FsBlobStore, FsOptions};
    let registry = Registry::plain().await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = mirror_core::Digest::of(&data);
    blobs
        .put(bytes::Bytes::from(data.clone()), &digest)
        .await
        .unwrap();
    let endpoint = mirror_core::RemoteEndpoint::anonymous(&registry.url(), "chunks/test").unwrap();
    let settings = HttpSettings {
        push_chunk_size: 64 * 1024,
        ..HttpSettings::default()
    };
    let remote = HttpRemote::new(&endpoint, &settings).unwrap();
    let repo = &endpoint.repository;
    assert!(!remote.blob_exists(repo, &digest).await.unwrap());
    let upload = remote
        .push_blob(repo, &digest, data.len() as u64, &blobs)
        .await
        .unwrap();
    assert_eq!(upload.chunks, 5, "{upload:?}");
    assert!(!upload.monolithic);
    assert_eq!(upload.bytes_sent, data.len() as u64);
    assert!(remote.blob_exists(repo, &digest).await.unwrap());
    let stored = registry
        .pusher()
        .get_blob("chunks/test", &digest.to_string())
        .await;
    assert_eq!(stored.as_deref(), Some(data.as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_through_5xx_answers_is_retried_and_lands_whole() {
    use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
    use axum::http::Method;

    let remote = Registry::plain().await;
    let proxy = FaultProxy::start(&remote, 21);
    // The first blob upload's closing PUT and the first manifest PUT fail
    // with 5xx; a 429 answers one blob HEAD.
    let upload = proxy.add(
        Rule::new(Fault::status(503))
            .method(Method::PUT)
            .path_contains("/blobs/uploads/")
            .once(),
    );
    let manifest = proxy.add(
        Rule::new(Fault::status(500))
            .method(Method::PUT)
            .manifests()
            .once(),
    );
    let head = proxy.add(
        Rule::new(Fault::too_many_requests(Some(1)))
            .head()
            .blobs()
            .once(),
    );
    let server = TestServer::start().await;
    server.create_repo("src", "app", "private").await;
    let form = json!({"remoteHost": proxy.url(), "remoteRepository": "team/pushed"});
    server
        .admin()
        .post(push_policies("src/app"))
        .json(&form)
        .await
        .expect(StatusCode::CREATED);
    let image = regmirror_pusher(&server)
        .push_image("src/app", "v1", ImageSpec::small("pushed through faults"))
        .await;
    let jobs = push_jobs_done(&server, 1).await;
    let log = job_log(&server, &jobs[0]).await;
    assert_eq!(
        (upload.hits(), manifest.hits(), head.hits()),
        (1, 1, 1),
        "every fault fired once; log: {log}"
    );
    assert!(
        upload.matched() >= 2 && manifest.matched() >= 2,
        "the failed PUTs were sent again; log: {log}"
    );
    let theirs = remote.pusher();
    assert_eq!(
        theirs.manifest_digest("team/pushed", "v1").await.as_deref(),
        Some(image.digest.as_str()),
        "{log}"
    );
    for blob in image.blob_digests() {
        assert!(theirs.blob_exists("team/pushed", &blob).await, "{blob}");
    }
}
