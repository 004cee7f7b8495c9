//! Bandwidth limits (issue 17): a policy's `maxBytesPerSec` and the
//! server's `remote_limits.max_bytes_per_sec` keep a poll's blob transfers
//! to their rate (a 3 MiB layer at 1 MiB/s, with one second of burst,
//! takes two seconds or more; unlimited, it takes milliseconds on
//! loopback); the job log names the limit and the time waited, `/metrics`
//! counts it, the policy shows it, and a limit too low to be one is
//! refused naming the field. Digests still equal upstream's.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN_PASSWORD, TestServer};
use crate::support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;

/// An upstream holding `team/big:v1`, a 3 MiB layer and a small one; its
/// URL and the image's digest.
async fn upstream() -> (Registry, String) {
    let up = Registry::plain().await;
    let image = ImageSpec::small("limited").layer(LayerSpec::Random {
        size: 3 * MIB,
        seed: 17,
    });
    let pushed = up.pusher().push_image("team/big", "v1", image).await;
    (up, pushed.digest)
}

/// Mirrors `team/big` into `mirrors/big` with `extra` policy fields;
/// the wall time, the job log and the mirrored tag's digest.
async fn mirror(
    server: &TestServer,
    up: &Registry,
    extra: serde_json::Value,
) -> (Duration, String, String) {
    let mut form = json!({"remoteHost": up.url(), "remoteRepository": "team/big"});
    form.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let start = Instant::now();
    let job = server
        .apply_policy(Some(("admin", ADMIN_PASSWORD)), "mirrors/big", form)
        .await;
    let (status, log) = server.job_outcome(&job, Duration::from_secs(60)).await;
    let took = start.elapsed();
    assert_eq!(status, "done", "{log:#?}");
    let tag = server
        .admin()
        .get("/api/v0/repositories/mirrors/big/tags/v1")
        .await
        .expect(StatusCode::OK)
        .json();
    (
        took,
        log.join("\n"),
        tag[0]["digest"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_bandwidth_limit_paces_its_copy_and_the_log_says_so() {
    let (up, digest) = upstream().await;
    let server = TestServer::start().await;
    server.create_repo("mirrors", "big", "private").await;

    // A limit that is not one is refused, naming the field.
    let path = "/api/v0/repositories/mirrors/big/pollMirroringPolicies";
    let form =
        json!({"remoteHost": up.url(), "remoteRepository": "team/big", "maxBytesPerSec": 100});
    let refused = server.admin().post(path).json(&form).await;
    let body = refused.expect(StatusCode::BAD_REQUEST).json();
    assert!(body.to_string().contains("maxBytesPerSec"), "{body}");

    let (took, log, mirrored) = mirror(&server, &up, json!({"maxBytesPerSec": MIB})).await;
    assert_eq!(mirrored, digest);
    assert!(
        took >= Duration::from_millis(1900),
        "3 MiB at 1 MiB/s in {took:?}"
    );
    assert!(log.contains("bandwidth limit: 1.0 MiB/s (policy)"), "{log}");
    assert!(log.contains("for the bandwidth limit"), "{log}");
    assert!(
        server
            .metric("regmirror_bandwidth_wait_seconds_total")
            .await
            >= 0.9
    );
    assert_eq!(
        server
            .metric("regmirror_bandwidth_limit_bytes_per_second")
            .await,
        0.0
    );
    let policies = server.admin().get(path).await.expect(StatusCode::OK).json();
    assert_eq!(policies[0]["maxBytesPerSec"], MIB, "{policies}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_bandwidth_limit_paces_every_policy() {
    let (up, digest) = upstream().await;
    let server = TestServer::start_with(|c| c.remote_limits.max_bytes_per_sec = MIB).await;
    server.create_repo("mirrors", "big", "private").await;
    let (took, log, mirrored) = mirror(&server, &up, json!({})).await;
    assert_eq!(mirrored, digest);
    assert!(
        took >= Duration::from_millis(1900),
        "3 MiB at 1 MiB/s in {took:?}"
    );
    assert!(log.contains("bandwidth limit: 1.0 MiB/s (server)"), "{log}");
    assert_eq!(
        server
            .metric("regmirror_bandwidth_limit_bytes_per_second")
            .await,
        MIB as f64
    );
    server.stop().await;
}
