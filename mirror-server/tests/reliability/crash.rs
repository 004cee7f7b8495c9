//! `kill -9` of the server mid-copy and between a copy and its publish,
//! then a restart on the same data directory.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::server::{MANIFEST_ACCEPT, Server, wait_until};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::store_checks::{assert_blobs_rehash, uploads};
use crate::support::{ImageSpec, LayerSpec, ManifestKind, Registry};

const MIB: u64 = 1024 * 1024;
/// The large layer copied when the server is killed.
const LARGE: u64 = 256 * MIB;

use crate::server::ADMIN;

/// Status of `GET /v2/{repo}/manifests/{reference}` as admin.
async fn manifest_status(s: &Server, repo: &str, reference: &str) -> StatusCode {
    s.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap()
        .status()
}

/// After a restart: the killed job was found at once and marked errored
/// (it was submitted without retries), its log says why, and `uploads/`
/// is empty.
async fn assert_recovered(s: &Server, job: &str) {
    let j = s.job(job).await;
    assert_eq!(
        j["status"], "errored",
        "the job killed mid-run is not recovered at restart: {j}"
    );
    let log = s.job_log(job).await;
    assert!(log.contains("worker lost"), "{log}");
    let left = uploads(&s.data_dir);
    assert!(left.is_empty(), "left in uploads/ after restart: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_copy_of_a_large_layer_then_restart() {
    let reg = Registry::plain().await;
    let img = reg
        .pusher()
        .push_image(
            "team/big",
            "v1",
            ImageSpec::small("big").layer(LayerSpec::Random {
                size: LARGE,
                seed: 256,
            }),
        )
        .await;
    let large = img.layers.last().unwrap().digest.clone();
    let proxy = FaultProxy::start(&reg, 1);
    let slow = proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 16 * MIB,
        })
        .get()
        .path_contains(&large),
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, None);
    s.create_repo("mirrors", "big").await;
    let job = s
        .create_policy("mirrors/big", &proxy.url(), "team/big")
        .await;

    // Mid-copy: a good part of the layer is in `uploads/`.
    wait_until(
        "32 MiB of the layer in uploads/",
        Duration::from_secs(180),
        || uploads(&data).iter().any(|(_, n)| *n >= 32 * MIB),
    )
    .await;
    s.kill9();
    assert!(
        !uploads(&data).is_empty(),
        "the kill should leave a partial upload behind"
    );

    let s = Server::start(&data, None);
    assert_recovered(&s, &job).await;
    assert_eq!(
        manifest_status(&s, "mirrors/big", "v1").await,
        StatusCode::NOT_FOUND,
        "a tag was published by a killed copy"
    );
    assert_blobs_rehash(&data);

    // The next poll completes, at full speed.
    proxy.remove(&slow);
    let next = s.poll_all().await;
    s.wait_done(&next, Duration::from_secs(300)).await;
    let pulled = s
        .pull_verified(&s.client, ADMIN, "mirrors/big", "v1", &img.digest)
        .await
        .unwrap();
    assert!(pulled > LARGE);
    assert!(uploads(&data).is_empty());
    assert_blobs_rehash(&data);
}

/// Killed after an index's first child is stored (blobs and manifest
/// committed) but before the index's tag is published; a tag published
/// earlier in the same poll stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_copy_and_publish_then_restart() {
    let reg = Registry::plain().await;
    let p = reg.pusher();
    let a = p
        .push_image("team/multi", "a", ImageSpec::small("tag a"))
        .await;
    let amd = p
        .push_image("team/multi", "z-amd", ImageSpec::small("child amd64"))
        .await;
    let arm = p
        .push_image(
            "team/multi",
            "z-arm",
            ImageSpec::small("child arm64")
                .platform("linux", "arm64")
                .layer(LayerSpec::Random {
                    size: 2 * MIB,
                    seed: 64,
                }),
        )
        .await;
    let index = p
        .push_index(
            "team/multi",
            "b",
            &[
                (amd.clone(), "linux", "amd64"),
                (arm.clone(), "linux", "arm64"),
            ],
            ManifestKind::Docker,
        )
        .await;
    // Tags are copied in name order: `a`, then `b` (whose children are
    // also tagged, later, as `z-amd` and `z-arm`).
    let arm_layer = arm.layers.last().unwrap().digest.clone();
    let proxy = FaultProxy::start(&reg, 2);
    // The arm64 child's big layer never arrives.
    proxy.add(
        Rule::new(Fault::Stall {
            after: 0,
            pause: Duration::from_secs(600),
        })
        .get()
        .path_contains(&arm_layer),
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, None);
    s.create_repo("mirrors", "multi").await;
    let job = s
        .create_policy("mirrors/multi", &proxy.url(), "team/multi")
        .await;
    // `a` is published; the amd64 child of `b` is stored whole (its
    // manifest goes to the blob store after its blobs); `b` waits on arm64.
    let amd_manifest = data
        .join("blobs/sha256")
        .join(&amd.digest[7..9])
        .join(&amd.digest[7..]);
    let mut a_served = false;
    for _ in 0..2400 {
        if !a_served {
            a_served = manifest_status(&s, "mirrors/multi", "a").await == StatusCode::OK;
        }
        if a_served && amd_manifest.exists() && proxy.count(|l| l.path.contains(&arm_layer)) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        a_served && amd_manifest.exists(),
        "the poll did not get there"
    );
    s.kill9();

    let s = Server::start(&data, None);
    assert_recovered(&s, &job).await;
    // What was published stays; what was not is invisible, even the child
    // manifest whose bytes are stored.
    s.pull_verified(&s.client, ADMIN, "mirrors/multi", "a", &a.digest)
        .await
        .unwrap();
    for reference in ["b", amd.digest.as_str(), index.digest.as_str()] {
        assert_eq!(
            manifest_status(&s, "mirrors/multi", reference).await,
            StatusCode::NOT_FOUND,
            "{reference} is visible after a crash before its publish"
        );
    }
    assert_blobs_rehash(&data);

    // Again, with a job allowed one rerun: a restart requeues it and the
    // worker runs it to the end.
    let arm_gets = proxy.count(|l| l.path.contains(&arm_layer));
    let (st, retried) = s
        .call(
            Method::POST,
            "/api/v0/jobs",
            Some(serde_json::json!({"action": "poll_mirror", "retries": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{retried}");
    let retried = retried["id"].as_str().unwrap().to_string();
    wait_until(
        "the rerun to reach the stall",
        Duration::from_secs(60),
        || proxy.count(|l| l.path.contains(&arm_layer)) > arm_gets,
    )
    .await;
    let mut s = s;
    s.kill9();
    proxy.clear();
    let s = Server::start(&data, None);
    s.wait_done(&retried, Duration::from_secs(120)).await;
    let log = s.job_log(&retried).await;
    assert!(
        log.contains("worker lost") && log.contains("requeued"),
        "{log}"
    );
    assert!(log.contains("reused"), "{log}");
    assert!(uploads(&data).is_empty());
    s.pull_verified(&s.client, ADMIN, "mirrors/multi", "b", &index.digest)
        .await
        .unwrap();
    s.pull_verified(&s.client, ADMIN, "mirrors/multi", "a", &a.digest)
        .await
        .unwrap();
    assert!(uploads(&data).is_empty());
    assert_blobs_rehash(&data);
}

/// The key both replicas seal secrets with (`MIRROR_SECRET_KEY`).
const SHARED_KEY: &str = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";
/// How long a replica holds a policy: the time within which another must
/// have finished a dead replica's job.
const LEASE_PERIOD: Duration = Duration::from_secs(120);

/// Two replicas (two processes) on one PostgreSQL database and one bucket;
/// `kill -9` of the one copying a 256 MiB image. The other finds the job
/// stale, runs it again (it has a retry) and finishes it within one lease
/// period; the image pulls with upstream digests from it, and the bucket
/// holds exactly the image's blobs (the killed copy's multipart upload
/// never became an object).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_replica_copying_hands_the_job_to_another() {
    use crate::support::postgres::PgServer;
    use crate::support::s3::S3Server;

    let reg = Registry::plain().await;
    let img = reg
        .pusher()
        .push_image(
            "team/big",
            "v1",
            ImageSpec::small("replicated big").layer(LayerSpec::Random {
                size: LARGE,
                seed: 257,
            }),
        )
        .await;
    let large = img.layers.last().unwrap().digest.clone();
    let proxy = FaultProxy::start(&reg, 2);
    let slow = proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 16 * MIB,
        })
        .get()
        .path_contains(&large),
    );

    let database = PgServer::shared().database().await;
    let bucket = S3Server::shared().bucket().await;
    let s3 = bucket.options("p");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("replica.toml");
    std::fs::write(
        &config,
        format!(
            "blob_store = \"s3://{}/p\"\n[s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\naccess_key_id = \"testing\"\nsecret_access_key = \"testing-secret\"\n",
            s3.bucket,
            s3.endpoint.as_deref().unwrap()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let env = [
        ("MIRROR_DATABASE_URL", database.as_str()),
        ("MIRROR_SECRET_KEY", SHARED_KEY),
        ("MIRROR_CONFIG", config.as_str()),
    ];
    let a = Server::start_with(&dir.path().join("a"), None, &env);
    let b = Server::start_with(&dir.path().join("b"), None, &env);
    a.create_repo("mirrors", "big").await;
    let form = serde_json::json!({"remoteHost": proxy.url(), "remoteRepository": "team/big"});
    let policy = crate::support::policies::add_policy(&a.admin(), "mirrors/big", &form).await;
    let submitted = a
        .admin()
        .post("/api/v0/jobs")
        .json(&serde_json::json!({
            "action": "poll_mirror",
            "parameters": {"policyID": policy},
            "retries": 1,
        }))
        .await;
    let job = submitted.expect(StatusCode::ACCEPTED).json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Whichever replica claimed it copies for a while, then dies.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let runner = loop {
        let j = a.job(&job).await;
        if j["status"] == "running" {
            break j["workerID"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "never started: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut victim, survivor) = if runner == a.worker { (a, b) } else { (b, a) };
    assert_eq!(victim.worker, runner, "the job runs on neither replica");
    wait_until(
        "the large layer being copied",
        Duration::from_secs(60),
        || proxy.count(|r| r.path.contains(&large) && r.status == 200) > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    victim.kill9();
    let killed = std::time::Instant::now();
    proxy.remove(&slow);

    survivor.wait_done(&job, LEASE_PERIOD).await;
    let took = killed.elapsed();
    assert!(took < LEASE_PERIOD, "taken over after {took:?}");
    eprintln!("the dead replica's job was finished by the other {took:?} after the kill");
    let log = survivor.job_log(&job).await;
    assert!(log.contains(&survivor.worker), "{log}");
    survivor
        .pull_verified(&survivor.client, ADMIN, "mirrors/big", "v1", &img.digest)
        .await
        .unwrap();

    // Exactly the image's blobs: nothing partial, nothing orphaned.
    let mut expected: Vec<String> = img
        .layers
        .iter()
        .chain(img.config.iter())
        .map(|d| d.digest.clone())
        .chain([img.digest.clone()])
        .map(|d| format!("p/blobs/sha256/{}", d.trim_start_matches("sha256:")))
        .collect();
    expected.sort();
    assert_eq!(bucket.keys("p/blobs/").await, expected);
    assert_eq!(bucket.keys("p/uploads/").await, Vec::<String>::new());
}
