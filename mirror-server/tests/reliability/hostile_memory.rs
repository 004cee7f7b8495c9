//! Memory stays bounded under attack: while a hostile remote answers the
//! Connect check with an endless (1.5 GB and more) token and a poll with an
//! endless (400 MiB and more) tag page, and 200 logins with wrong passwords
//! race, the real binary's peak memory (less the pages of its own code) stays
//! under 100 MiB, and every attack ends with a message that names the limit
//! that stopped it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::Server;
use crate::support::hostile::start_hostile;

/// A `kB` field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The process's peak resident memory that is not file-backed, in KiB: the
/// peak resident set (`VmHWM`) less the pages mapped from files (`RssFile`,
/// `RssShmem`, which only grow while the binary runs). What an attacker can
/// make the server hold is anonymous memory; the file-backed part is the
/// debug binary's code (about 35 MiB here), which grows with every feature
/// and says nothing about bounded reads.
fn peak_anonymous_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
        .saturating_sub(status_kib(pid, "RssFile") + status_kib(pid, "RssShmem"))
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

    let pid = server.pid();
    let (peak, anonymous) = (status_kib(pid, "VmHWM"), peak_anonymous_kib(pid));
    eprintln!(
        "peak RSS of mirror-server: {} MiB, of which not file-backed: {} MiB",
        peak / 1024,
        anonymous / 1024
    );
    assert!(
        anonymous < 100 * 1024,
        "peak anonymous memory {} MiB",
        anonymous / 1024
    );
}
