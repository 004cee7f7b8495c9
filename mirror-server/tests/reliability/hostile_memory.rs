//! Memory stays bounded under attack: while a hostile remote answers the
//! Connect check with an endless (1.5 GB and more) token and a poll with an
//! endless (400 MiB and more) tag page, and 200 logins with wrong passwords
//! race, the real binary's peak RSS stays under 100 MiB, and every attack
//! ends with a message that names the limit that stopped it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::Server;
use crate::support::hostile::start_hostile;

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_rss_stays_bounded_under_hostile_remotes_and_racing_logins() {
    let hostile = start_hostile().await;
    let host = format!("http://{hostile}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    server.create_repo("victim", "page").await;
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/accounts",
            Some(json!({"name": "target", "password": "target-pa55word"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let policy = server.create_policy("victim/page", &host, "bigpage/app");
    let checks = futures_util::future::join_all((0..8).map(|_| {
        server.call(
            Method::POST,
            "/api/v0/remote/registry",
            Some(json!({"remoteHost": host, "remoteRepository": "bigtoken/app"})),
        )
    }));
    let logins = futures_util::future::join_all((0..200).map(|i| {
        server
            .client
            .get(format!("{}/api/v0/accounts/target", server.url))
            .basic_auth("target", Some(format!("wrong-{i}")))
            .send()
    }));
    let (job, checks, logins) = tokio::join!(policy, checks, logins);

    for (status, body) in checks {
        assert!(status.is_client_error(), "{status} {body}");
        assert!(body.to_string().contains("max_token_bytes"), "{body}");
    }
    for resp in logins {
        let status = resp.unwrap().status();
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}"
        );
    }
    let status = server.wait_job(&job, Duration::from_secs(60)).await;
    let log = server.job_log(&job).await;
    assert_eq!(status, "errored", "{log}");
    assert!(log.contains("remote_limits.max_tag_page_bytes"), "{log}");

    let peak = peak_rss_kib(server.pid());
    eprintln!("peak RSS of mirror-server: {} MiB", peak / 1024);
    assert!(peak < 100 * 1024, "peak RSS {} MiB", peak / 1024);
}
