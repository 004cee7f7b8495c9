//! Online garbage collection (`onlinegc` jobs, issue 14): moved, deleted
//! and orphaned content goes, with a dry run first, bytes reported in the
//! job log and `/metrics`; every remaining tag still pulls with skopeo,
//! byte for byte. Only administrators start it or schedule it. And a race:
//! collections every second or so while pushes and polls move tags over
//! content that collections are sweeping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, Creds, TestServer, sha256, skopeo};
use crate::support::http::Api;
use crate::support::{ImageSpec, Pusher, Registry};

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));

/// Every blob file of the server's store: digest → size.
fn stored_blobs(data: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(data.join("blobs/sha256")) else {
        return out;
    };
    for dir in dirs {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let f = f.unwrap();
            out.insert(
                format!("sha256:{}", f.file_name().to_str().unwrap()),
                f.metadata().unwrap().len(),
            );
        }
    }
    out
}

/// Submits an `onlinegc` job with `parameters` as admin, waits for it to
/// finish `done`; its log lines.
async fn run_gc(server: &TestServer, parameters: Value) -> Vec<String> {
    let body = json!({"action": "onlinegc", "parameters": parameters});
    let job = server.admin().post("/api/v0/jobs").json(&body).await;
    let id = job.expect(StatusCode::ACCEPTED).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, log) = server.job_outcome(&id, Duration::from_secs(120)).await;
    assert_eq!(status, "done", "{log:#?}");
    log
}

/// The bytes the job's summary line reports as freed (or to be freed).
fn bytes_reported(log: &[String]) -> u64 {
    let line = log
        .iter()
        .find(|l| l.starts_with("garbage collection "))
        .unwrap_or_else(|| panic!("no summary in {log:#?}"));
    let before = line.split(" bytes ").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The value of the sample `name` (no labels) in a `/metrics` text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .parse()
        .unwrap()
}

/// Pulls `repo:tag` from the server with skopeo into a `dir:` and checks
/// the manifest hashes to `digest` and every file re-hashes to its name;
/// the digests of the manifest and every blob pulled.
async fn pull_and_verify(
    server: &TestServer,
    repo: &str,
    tag: &str,
    digest: &str,
) -> BTreeSet<String> {
    let mut pulled = BTreeSet::from([digest.to_string()]);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("image");
    skopeo(vec![
        "copy".into(),
        format!("--src-creds=admin:{ADMIN_PASSWORD}"),
        "--src-tls-verify=false".into(),
        format!("docker://{}/{repo}:{tag}", server.host_port),
        format!("dir:{}", dir.display()),
    ])
    .await;
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(sha256(&manifest), digest, "{repo}:{tag}");
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_str().unwrap().to_string();
        if name.len() == 64 {
            let bytes = std::fs::read(f.path()).unwrap();
            assert_eq!(sha256(&bytes), format!("sha256:{name}"), "{repo}:{tag}");
            pulled.insert(format!("sha256:{name}"));
        }
    }
    pulled
}

/// A pusher into the server as admin.
fn admin_pusher(server: &TestServer) -> Pusher {
    Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_moved_deleted_and_orphaned_content_and_every_tag_still_pulls() {
    let upstream = Registry::plain().await;
    let up = upstream.pusher();
    let old_v1 = up
        .push_image("team/app", "v1", ImageSpec::small("upstream v1"))
        .await;
    let v2 = up
        .push_image("team/app", "v2", ImageSpec::small("upstream v2"))
        .await;
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    let admin = server.admin();
    let alice = Api::new(&server.client, &server.url).creds(ALICE);

    // Only administrators start or schedule a collection; bad parameters
    // are named. No onlinegc cron until an administrator creates one.
    let gc = json!({"action": "onlinegc"});
    alice
        .post("/api/v0/jobs")
        .json(&gc)
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    for (key, value) in [
        ("gracePeriod", "soon"),
        ("gracePeriod", "0s"),
        ("dryRun", "yes"),
        ("deleteUntagged", "1"),
    ] {
        admin
            .post("/api/v0/jobs")
            .json(&json!({"action": "onlinegc", "parameters": {key: value}}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "INVALID_JOB")
            .expect_field(key);
    }
    admin
        .post("/api/v0/jobs")
        .json(&json!({"action": "onlinegc", "parameters": {"policyID": "x"}}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_JOB")
        .expect_field("parameters");
    let crons = admin
        .get("/api/v0/crons")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        !crons.to_string().contains("onlinegc"),
        "an onlinegc cron exists by default: {crons}"
    );
    let nightly = json!({"action": "onlinegc", "schedule": "0 0 3 * * *",
                         "parameters": {"deleteUntagged": "true"}});
    alice
        .post("/api/v0/crons")
        .json(&nightly)
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    let bad = json!({"action": "onlinegc", "schedule": "0 0 3 * * *",
                     "parameters": {"gracePeriod": "forever"}});
    admin
        .post("/api/v0/crons")
        .json(&bad)
        .await
        .expect(StatusCode::BAD_REQUEST)
        .expect_field("gracePeriod");
    admin
        .post("/api/v0/crons")
        .json(&nightly)
        .await
        .expect(StatusCode::ACCEPTED);
    let cron = admin
        .get("/api/v0/crons/onlinegc")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cron["parameters"]["deleteUntagged"], "true");

    // Mirrored content, then v1 moves upstream and is mirrored again.
    let policy = server
        .add_policy("mirrors/app", &upstream.url(), "team/app")
        .await;
    server
        .wait_done(&server.submit_poll(Some(&policy)).await)
        .await;
    let new_v1 = up
        .push_image("team/app", "v1", ImageSpec::small("upstream v1, moved"))
        .await;
    server
        .wait_done(&server.submit_poll(Some(&policy)).await)
        .await;

    // Pushed content: a tag moved, a tag deleted, a blob pushed without a
    // manifest, and a whole repository deleted.
    server.create_repo("team", "pushed", "private").await;
    server.create_repo("team", "doomed", "private").await;
    let pusher = admin_pusher(&server);
    let first = pusher
        .push_image("team/pushed", "1.0", ImageSpec::small("pushed 1"))
        .await;
    let kept = pusher
        .push_image("team/pushed", "1.0", ImageSpec::small("pushed 1, moved"))
        .await;
    let deleted = pusher
        .push_image("team/pushed", "2.0", ImageSpec::small("pushed 2"))
        .await;
    admin
        .delete("/api/v0/repositories/team/pushed/tags/2.0")
        .await
        .expect(StatusCode::NO_CONTENT);
    let loose = pusher
        .push_blob("team/pushed", b"a layer nobody references".to_vec())
        .await;
    let doomed = pusher
        .push_image("team/doomed", "1", ImageSpec::small("doomed"))
        .await;
    admin
        .delete("/api/v0/repositories/team/doomed")
        .await
        .expect(StatusCode::NO_CONTENT);

    // Within the grace period (default 1 h) nothing goes.
    let data = server.data_dir();
    let before = stored_blobs(&data);
    let log = run_gc(&server, json!({"deleteUntagged": "true"})).await;
    assert_eq!(bytes_reported(&log), 0, "{log:#?}");
    assert_eq!(stored_blobs(&data), before);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let params = |dry: bool| json!({"dryRun": dry.to_string(), "gracePeriod": "1s", "deleteUntagged": "true"});
    let dry = run_gc(&server, params(true)).await;
    assert!(dry.iter().any(|l| l.contains("would remove")), "{dry:#?}");
    assert_eq!(stored_blobs(&data), before, "a dry run deleted");
    let real = run_gc(&server, params(false)).await;
    let after = stored_blobs(&data);
    let gone: BTreeMap<&String, &u64> = before
        .iter()
        .filter(|(d, _)| !after.contains_key(*d))
        .collect();
    let freed: u64 = gone.values().copied().sum();
    assert!(freed > 0);
    assert_eq!(bytes_reported(&dry), freed, "dry run: {dry:#?}");
    assert_eq!(bytes_reported(&real), freed, "real run: {real:#?}");

    // What went: the old v1, the first 1.0, 2.0, the loose blob, the
    // deleted repository; everything a remaining tag references stayed.
    let mut expected_gone: BTreeSet<String> = BTreeSet::new();
    for image in [&old_v1, &first, &deleted, &doomed] {
        expected_gone.insert(image.digest.clone());
        expected_gone.extend(image.blob_digests());
    }
    expected_gone.insert(loose.clone());
    let gone_set: BTreeSet<String> = gone.keys().map(|d| d.to_string()).collect();
    assert_eq!(gone_set, expected_gone);
    for image in [&new_v1, &v2, &kept] {
        assert!(after.contains_key(&image.digest));
        for b in image.blob_digests() {
            assert!(after.contains_key(&b), "{b} of a kept image went");
        }
    }
    pusher_sees_gone(
        &server,
        "team/pushed",
        &[&first.digest, &deleted.digest, &loose],
    )
    .await;

    // Reported in /metrics too.
    let metrics = admin.get("/metrics").await.expect(StatusCode::OK).text();
    assert_eq!(metric(&metrics, "regmirror_gc_bytes_freed_total"), freed);
    assert_eq!(
        metric(&metrics, "regmirror_gc_blobs_removed_total"),
        gone.len() as u64
    );
    assert_eq!(metric(&metrics, "regmirror_gc_manifests_removed_total"), 3);
    assert_eq!(
        metric(&metrics, "regmirror_gc_dry_run_reclaimable_bytes"),
        freed
    );

    // Every remaining tag pulls, digests equal upstream's (or the push's).
    pull_and_verify(&server, "mirrors/app", "v1", &new_v1.digest).await;
    pull_and_verify(&server, "mirrors/app", "v2", &v2.digest).await;
    pull_and_verify(&server, "team/pushed", "1.0", &kept.digest).await;
    assert_eq!(
        upstream.pusher().manifest_digest("team/app", "v1").await,
        Some(new_v1.digest.clone())
    );
}

/// Each of `digests` is no longer served from `repo`.
async fn pusher_sees_gone(server: &TestServer, repo: &str, digests: &[&String]) {
    let pusher = admin_pusher(server);
    for d in digests {
        assert!(!pusher.blob_exists(repo, d).await, "{d} still served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_racing_pushes_and_polls_never_breaks_a_tag() {
    let upstream = Registry::plain().await;
    let up = upstream.pusher();
    up.push_image("team/app", "a", ImageSpec::small("u0")).await;
    let server = TestServer::start().await;
    let policy = server
        .add_policy("mirrors/app", &upstream.url(), "team/app")
        .await;
    server.create_repo("team", "pushed", "private").await;
    let run_for = Duration::from_secs(20);
    let start = Instant::now();

    // Pushes move tags among a few contents that keep coming back, so
    // pushes re-link blobs collections are sweeping.
    let pushes = {
        let pusher = admin_pusher(&server);
        tokio::spawn(async move {
            let mut i = 0u32;
            while start.elapsed() < run_for {
                let tag = format!("t{}", i % 3);
                let spec = ImageSpec::small(&format!("pushed {}", i % 5));
                pusher.push_image("team/pushed", &tag, spec).await;
                i += 1;
            }
            i
        })
    };
    // Upstream tags move the same way, and polls mirror them.
    let polls = {
        let up = upstream.pusher();
        let server_url = server.url.clone();
        let client = server.client.clone();
        let policy = policy.clone();
        tokio::spawn(async move {
            let admin = Api::new(&client, &server_url).creds(crate::server::ADMIN);
            let mut i = 0u32;
            while start.elapsed() < run_for {
                let tag = ["a", "b"][i as usize % 2];
                up.push_image("team/app", tag, ImageSpec::small(&format!("u{}", i % 4)))
                    .await;
                let body = json!({"action": "poll_mirror", "parameters": {"policyID": policy}});
                let job = admin.post("/api/v0/jobs").json(&body).await;
                let id = job.expect(StatusCode::ACCEPTED).json()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                loop {
                    let job = admin.get(format!("/api/v0/jobs/{id}")).await.json();
                    match job["status"].as_str().unwrap() {
                        "waiting" | "running" => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        "done" => break,
                        other => panic!("poll {id} ended {other}: {job}"),
                    }
                }
                i += 1;
            }
            i
        })
    };
    // Collections, back to back, with a short grace period.
    let mut collections = 0;
    while start.elapsed() < run_for {
        run_gc(
            &server,
            json!({"gracePeriod": "2s", "deleteUntagged": "true"}),
        )
        .await;
        collections += 1;
    }
    let (pushed, polled) = (pushes.await.unwrap(), polls.await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    run_gc(
        &server,
        json!({"gracePeriod": "2s", "deleteUntagged": "true"}),
    )
    .await;
    let metrics = server
        .admin()
        .get("/metrics")
        .await
        .expect(StatusCode::OK)
        .text();
    let removed = metric(&metrics, "regmirror_gc_blobs_removed_total");
    eprintln!(
        "race: {pushed} pushes, {polled} polls, {collections} collections, {removed} blobs removed"
    );
    assert!(
        removed > 0 && pushed > 5 && polled > 2 && collections > 3,
        "no race took place: {pushed} pushes, {polled} polls, {collections} collections, {removed} blobs removed"
    );

    let stored = stored_blobs(&server.data_dir());

    // Every tag pulls whole, mirrored ones as upstream has them, and the
    // store holds nothing else (past the grace period).
    let mut referenced = BTreeSet::new();
    let admin = server.admin();
    for repo in ["team/pushed", "mirrors/app"] {
        let tags = admin
            .get(format!("/api/v0/repositories/{repo}/tags"))
            .await
            .expect(StatusCode::OK)
            .json();
        let tags = tags.as_array().unwrap();
        assert!(!tags.is_empty());
        for t in tags {
            let (name, digest) = (t["name"].as_str().unwrap(), t["digest"].as_str().unwrap());
            if repo == "mirrors/app" {
                assert_eq!(
                    up.manifest_digest("team/app", name).await.as_deref(),
                    Some(digest)
                );
            }
            referenced.extend(pull_and_verify(&server, repo, name, digest).await);
        }
    }
    let stored_set: BTreeSet<String> = stored.keys().cloned().collect();
    assert_eq!(
        stored_set, referenced,
        "the store is not back to what tags reference"
    );
    // And every stored blob still hashes to its name.
    let data = server.data_dir();
    for (digest, _) in stored_blobs(&data) {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(data.join("blobs/sha256").join(&hex[..2]).join(hex)).unwrap();
        assert_eq!(sha256(&bytes), digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_on_an_s3_bucket_deletes_the_moved_tags_objects() {
    use crate::support::s3::S3Server;
    use mirror_server::config::BlobStoreConfig;

    let upstream = Registry::plain().await;
    let up = upstream.pusher();
    let old = up
        .push_image("team/app", "v1", ImageSpec::small("s3 v1"))
        .await;
    let bucket = S3Server::shared().bucket().await;
    let options = bucket.options("gc");
    let server =
        TestServer::start_with(|c| c.blob_store = BlobStoreConfig::S3(Box::new(options))).await;
    let policy = server
        .add_policy("mirrors/app", &upstream.url(), "team/app")
        .await;
    server
        .wait_done(&server.submit_poll(Some(&policy)).await)
        .await;
    let new = up
        .push_image("team/app", "v1", ImageSpec::small("s3 v1, moved"))
        .await;
    server
        .wait_done(&server.submit_poll(Some(&policy)).await)
        .await;
    let key = |d: &str| format!("gc/blobs/sha256/{}", d.strip_prefix("sha256:").unwrap());
    let digests = |image: &crate::support::PushedManifest| {
        let mut all = image.blob_digests();
        all.push(image.digest.clone());
        all
    };
    let keys = bucket.keys("gc/").await;
    for d in digests(&old).iter().chain(&digests(&new)) {
        assert!(keys.contains(&key(d)), "{d} not in the bucket");
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let log = run_gc(
        &server,
        json!({"gracePeriod": "1s", "deleteUntagged": "true"}),
    )
    .await;
    assert!(bytes_reported(&log) > 0, "{log:#?}");
    let keys = bucket.keys("gc/").await;
    for d in digests(&old) {
        assert!(
            !keys.contains(&key(&d)),
            "{d} of the moved tag still in the bucket"
        );
    }
    for d in digests(&new) {
        assert!(keys.contains(&key(&d)), "{d} of the tag went");
    }
    pull_and_verify(&server, "mirrors/app", "v1", &new.digest).await;
}
