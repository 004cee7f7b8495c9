//! A hostile remote registry cannot make the server hold memory, a job or
//! a worker slot (issue: isolation under attack, items 3 and 4).
//!
//! The remote here is a small in-process server that lies on purpose:
//! endless token answers and tag pages, a `Link` chain that never ends, a
//! tag list that drips one byte a second. A real registry is used where
//! real software can play the part (a throttled blob, through the fault
//! proxy). Every attack must end in a failed job (or a `400`) whose message
//! names the limit that stopped it, within seconds, and never delay the
//! jobs of another namespace.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, TestServer};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::hostile::start_hostile;
use crate::support::{ImageSpec, LayerSpec, Registry};

/// Creates `repo` (as admin) and a "Save & Apply" policy for it against
/// `remote_host` + `remote_repo`; the job's ID.
async fn apply(server: &TestServer, repo: &str, remote_host: &str, remote_repo: &str) -> String {
    let (ns, name) = repo.split_once('/').unwrap();
    server.create_repo(ns, name, "private").await;
    server
        .apply_policy(
            ADMIN,
            repo,
            json!({"remoteHost": remote_host, "remoteRepository": remote_repo}),
        )
        .await
}

/// The job's status once it has ended (or `within` passed), and its log.
async fn outcome(server: &TestServer, job: &str, within: Duration) -> (String, String) {
    let (status, log) = server.job_outcome(job, within).await;
    (status, log.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_stop_at_a_limit_that_is_named() {
    let hostile = start_hostile().await;
    let host = format!("http://{hostile}");
    let server = TestServer::start_with(|c| c.remote_limits.max_tags = 300).await;

    // The Connect check, open to any user: a 1.5 GB token answer.
    let started = Instant::now();
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/remote/registry",
            ADMIN,
            Some(json!({"remoteHost": host, "remoteRepository": "bigtoken/app"})),
        )
        .await;
    assert!(s.is_client_error(), "{s} {b}");
    let text = b.to_string();
    assert!(
        text.contains("max_token_bytes") && text.contains("1 MiB"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A tag page without end.
    let job = apply(&server, "victim/bigpage", &host, "bigpage/app").await;
    let (status, log) = outcome(&server, &job, Duration::from_secs(30)).await;
    assert_eq!(status, "errored", "{log}");
    assert!(
        log.contains("remote_limits.max_tag_page_bytes") && log.contains("16 MiB"),
        "{log}"
    );

    // A `Link` chain without end, one new tag per page.
    let job = apply(&server, "victim/endless", &host, "endless/app").await;
    let (status, log) = outcome(&server, &job, Duration::from_secs(60)).await;
    assert_eq!(status, "errored", "{log}");
    assert!(
        log.contains("more than 300 tags") && log.contains("remote_limits.max_tags"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_remote_is_cut_off_and_cancel_is_honoured() {
    let hostile = start_hostile().await;
    let host = format!("http://{hostile}");
    let server = TestServer::start_with(|c| {
        c.remote_limits.request_timeout = Duration::from_secs(3);
    })
    .await;

    // Left alone, the request's total time limit ends it.
    let started = Instant::now();
    let job = apply(&server, "victim/drip", &host, "drip/app").await;
    let (status, log) = outcome(&server, &job, Duration::from_secs(30)).await;
    assert_eq!(status, "errored", "{log}");
    assert!(log.contains("did not answer within 3 s"), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // Canceled, it stops within a heartbeat or two.
    let server = TestServer::start().await;
    let job = apply(&server, "victim/drip", &host, "drip/app").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, b) = server
        .call(
            Method::POST,
            &format!("/api/v0/jobs/{job}/cancel"),
            ADMIN,
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    let canceled_at = Instant::now();
    let (status, log) = outcome(&server, &job, Duration::from_secs(20)).await;
    assert_eq!(status, "canceled", "{log}");
    assert!(
        canceled_at.elapsed() < Duration::from_secs(8),
        "{:?}",
        canceled_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_namespace_cannot_hold_every_worker_slot() {
    let hostile = start_hostile().await;
    let host = format!("http://{hostile}");
    let upstream = Registry::plain().await;
    upstream
        .pusher()
        .push_image("team/app", "1.0", ImageSpec::small("team"))
        .await;
    // Two slots (the default); the hog's jobs would hold both for as long
    // as the remote drips (here up to the 120 s default request limit).
    let server = TestServer::start_with(|c| c.worker_concurrency = 2).await;
    let hogs = [
        apply(&server, "hog/one", &host, "drip/app").await,
        apply(&server, "hog/two", &host, "drip/app").await,
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let job = apply(&server, "team/app", &upstream.url(), "team/app").await;
    let (status, log) = outcome(&server, &job, Duration::from_secs(30)).await;
    assert_eq!(status, "done", "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // One hog job runs, the other waits for the namespace's share.
    let mut statuses = Vec::new();
    for hog in &hogs {
        let (_, j): (StatusCode, Value) = server
            .call(Method::GET, &format!("/api/v0/jobs/{hog}"), ADMIN, None)
            .await;
        statuses.push(j["status"].as_str().unwrap().to_string());
    }
    statuses.sort();
    assert_eq!(statuses, ["running", "waiting"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_that_drips_below_the_minimum_rate_is_abandoned() {
    let upstream = Registry::plain().await;
    upstream
        .pusher()
        .push_image(
            "team/slow",
            "1.0",
            ImageSpec::new(vec![LayerSpec::Random {
                size: 1 << 20,
                seed: 3,
            }]),
        )
        .await;
    let proxy = FaultProxy::start(&upstream, 5);
    proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 4 * 1024,
        })
        .get()
        .blobs(),
    );
    let server = TestServer::start_with(|c| {
        c.remote_limits.min_transfer_rate = 64 * 1024;
        c.remote_limits.low_speed_window = Duration::from_secs(2);
    })
    .await;
    let started = Instant::now();
    let job = apply(&server, "victim/slow", &proxy.url(), "team/slow").await;
    let (status, log) = outcome(&server, &job, Duration::from_secs(60)).await;
    assert_eq!(status, "errored", "{log}");
    assert!(
        log.contains("remote_limits.min_transfer_rate") && log.contains("64 KiB/s"),
        "{log}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
