//! Load: clients keep being served while a poll copies a large image.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::server::{Server, wait_until};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::store_checks::uploads;
use crate::support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;
/// Concurrent clients, each with its own connection pool.
const CLIENTS: usize = 50;
/// Pulls per client (manifest and every blob, each hashed).
const PULLS: usize = 6;
/// The whole load phase must end within this.
const LOAD_BUDGET: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_pull_while_a_large_image_is_copied() {
    let reg = Registry::plain().await;
    let p = reg.pusher();
    let small = p
        .push_image(
            "team/small",
            "v1",
            ImageSpec::small("pulled under load").layer(LayerSpec::Random {
                size: 512 * 1024,
                seed: 5,
            }),
        )
        .await;
    let big = p
        .push_image(
            "team/big",
            "v1",
            ImageSpec::small("copied meanwhile").layer(LayerSpec::Random {
                size: 64 * MIB,
                seed: 64,
            }),
        )
        .await;
    let big_layer = big.layers.last().unwrap().digest.clone();
    let proxy = FaultProxy::start(&reg, 3);
    let slow = proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 2 * MIB,
        })
        .get()
        .path_contains(&big_layer),
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, None);
    // A reader with Basic credentials and read-only access.
    let (st, b) = s
        .call(
            Method::POST,
            "/api/v0/accounts",
            Some(serde_json::json!({"name": "puller", "password": "puller-pa55word"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    s.create_repo("mirrors", "small").await;
    s.create_repo("mirrors", "big").await;
    let (st, b) = s
        .call(
            Method::PUT,
            "/api/v0/repositories/mirrors/small/userAccess/puller",
            Some(serde_json::json!({"accessLevel": "read-only"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let first = s
        .create_policy("mirrors/small", &proxy.url(), "team/small")
        .await;
    s.wait_done(&first, Duration::from_secs(60)).await;

    // The large copy is under way...
    let copy = s
        .create_policy("mirrors/big", &proxy.url(), "team/big")
        .await;
    wait_until("the large copy to start", Duration::from_secs(60), || {
        uploads(&data).iter().any(|(_, n)| *n > 0)
    })
    .await;

    // ... while the clients pull.
    let started = Instant::now();
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let s = s.clone();
        let digest = small.digest.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut errors = Vec::new();
            let mut pulls = 0;
            for _ in 0..PULLS {
                if started.elapsed() > LOAD_BUDGET {
                    break;
                }
                match s
                    .pull_verified(
                        &client,
                        ("puller", "puller-pa55word"),
                        "mirrors/small",
                        "v1",
                        &digest,
                    )
                    .await
                {
                    Ok(_) => pulls += 1,
                    Err(e) => errors.push(e),
                }
            }
            (pulls, errors)
        }));
    }
    let mut pulls = 0;
    let mut errors = Vec::new();
    for t in tasks {
        let (n, e) = tokio::time::timeout(LOAD_BUDGET + Duration::from_secs(30), t)
            .await
            .expect("a client finishes")
            .unwrap();
        pulls += n;
        errors.extend(e);
    }
    let took = started.elapsed();
    eprintln!("load: {pulls} verified pulls by {CLIENTS} clients in {took:?}");
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(pulls, CLIENTS * PULLS, "the load phase ran out of time");

    // The copy was not disturbed: still running, or done.
    let status = s.job(&copy).await["status"].as_str().unwrap().to_string();
    assert!(status == "running" || status == "done", "{status}");
    proxy.remove(&slow);
    s.wait_done(&copy, Duration::from_secs(180)).await;
    s.pull_verified(
        &s.client,
        crate::server::ADMIN,
        "mirrors/big",
        "v1",
        &big.digest,
    )
    .await
    .unwrap();
}
