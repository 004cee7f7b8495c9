//! What an operator watches: `/metrics` after a poll (bytes copied, 429s,
//! the last success of each policy; administrators only) and a job log
//! followed (`?stream=true`) while the job runs, or until the server stops.
//!
//! The poll has two policies: one on Debian's `docker-registry` with a
//! real image (bytes to copy), one on a small in-test registry that
//! answers the tag list first with `429` and then only after [`SLOW`], so
//! the job runs long enough to be watched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, TestServer};
use crate::support::{ImageSpec, LayerSpec, Registry};

/// How long the slow registry takes to list tags during a poll.
const SLOW: Duration = Duration::from_secs(4);

/// A registry with one empty repository `slow/app` whose full tag list
/// (the one a poll asks for, `n=1000`) answers 429 once, then waits
/// [`SLOW`]. The connection check (`n=1`) is answered at once.
async fn slow_registry() -> (String, Arc<AtomicUsize>) {
    use axum::extract::{Query, State};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let polls = Arc::new(AtomicUsize::new(0));
    let tags = |State(polls): State<Arc<AtomicUsize>>,
                Query(q): Query<std::collections::HashMap<String, String>>| async move {
        if q.get("n").map(String::as_str) == Some("1") {
            return axum::Json(json!({"name": "slow/app", "tags": []})).into_response();
        }
        if polls.fetch_add(1, Ordering::SeqCst) == 0 {
            return (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                "slow down",
            )
                .into_response();
        }
        tokio::time::sleep(SLOW).await;
        axum::Json(json!({"name": "slow/app", "tags": []})).into_response()
    };
    let app = axum::Router::new()
        .route("/v2/", get(|| async { axum::Json(json!({})) }))
        .route("/v2/slow/app/tags/list", get(tags))
        .with_state(polls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, polls)
}

/// Reads a followed log to its end; returns the lines and whether the
/// job was still running when the first of them arrived.
async fn follow(server: &TestServer, path: &str) -> (Vec<Value>, Option<String>) {
    let job_path = path.split("/logs").next().unwrap().to_string();
    let resp = server
        .request(Method::GET, path, ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let mut status_at_first = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(chunk) = tokio::time::timeout_at(deadline.into(), body.next())
        .await
        .expect("the followed log ends when the job does")
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if status_at_first.is_none() {
            let job = server.admin().get(&job_path).await.json();
            status_at_first = Some(job["status"].as_str().unwrap().to_string());
        }
    }
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    (lines, status_at_first)
}

/// The text of a scrape of `/metrics` as admin.
async fn scrape(server: &TestServer) -> String {
    let scrape = server.admin().get("/metrics").await;
    let scrape = scrape.expect(StatusCode::OK);
    let content_type = scrape.header("content-type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    scrape.text()
}

/// `name{labels} value` lines of a scrape.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_scrape_metrics() {
    let server = TestServer::start().await;
    server.create_user("bob", "bob-pa55word").await;
    let anonymous = server.api().get("/metrics").await;
    anonymous.expect(StatusCode::UNAUTHORIZED);
    let bob = server.api().creds(Some(("bob", "bob-pa55word")));
    bob.get("/metrics").await.expect(StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_log_of_a_missing_job_is_not_found() {
    let server = TestServer::start().await;
    let missing = server
        .admin()
        .get("/api/v0/jobs/no-such-job/logs?stream=true");
    missing
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_JOB");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_followed_while_it_runs_and_counted_in_the_metrics() {
    let up = Registry::plain().await;
    up.pusher()
        .push_image(
            "team/app",
            "v1",
            ImageSpec::new(vec![LayerSpec::Random {
                size: 400_000,
                seed: 3,
            }]),
        )
        .await;
    let (slow_url, slow_polls) = slow_registry().await;
    let server = TestServer::start().await;
    let real = server
        .add_policy("mirrors/app", &up.url(), "team/app")
        .await;
    let slow = server
        .add_policy("mirrors/slow", &slow_url, "slow/app")
        .await;

    // One job polls both policies; its log is followed from the start.
    let id = &server.submit_poll(None).await;
    let started = Instant::now();
    let (lines, status_at_first) =
        follow(&server, &format!("/api/v0/jobs/{id}/logs?stream=true")).await;
    assert!(started.elapsed() >= SLOW, "the stream ended before the job");
    assert_eq!(
        status_at_first.as_deref(),
        Some("running"),
        "lines arrive while the job runs"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["lineNum"], i as i64, "{lines:?}");
    }
    assert_eq!(lines.last().unwrap()["data"], "job done", "{lines:?}");
    let job = server.wait_done(id).await;
    assert_eq!(job["status"], "done");
    let stored = server.admin().get(format!("/api/v0/jobs/{id}/logs")).await;
    assert_eq!(stored.json(), Value::Array(lines.clone()));
    assert_eq!(slow_polls.load(Ordering::SeqCst), 2, "429, then the answer");

    // offset and limit apply to a followed log too; a finished job's log
    // ends at once.
    let (part, _) = follow(
        &server,
        &format!("/api/v0/jobs/{id}/logs?stream=true&offset=1&limit=2"),
    )
    .await;
    assert_eq!(part, lines[1..3].to_vec());

    // The scrape.
    let text = scrape(&server).await;
    let get =
        |prefix: &str| sample(&text, prefix).unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
    assert!(get("regmirror_bytes_copied_total") > 400_000.0, "{text}");
    assert_eq!(get("regmirror_tags_copied_total"), 1.0);
    assert_eq!(get("regmirror_blobs_copied_total"), 2.0);
    assert_eq!(get("regmirror_polls_total{result=\"success\"}"), 2.0);
    assert_eq!(get("regmirror_polls_total{result=\"failed\"}"), 0.0);
    assert!(get("regmirror_remote_rate_limited_total") >= 1.0);
    assert_eq!(get("regmirror_jobs_total{status=\"done\"}"), 1.0);
    assert_eq!(get("regmirror_job_duration_seconds_count"), 1.0);
    assert!(get("regmirror_job_duration_seconds_sum") >= SLOW.as_secs_f64());
    assert_eq!(get("regmirror_jobs_running"), 0.0);
    let now = chrono::Utc::now().timestamp() as f64;
    for (policy, repo) in [(&real, "mirrors/app"), (&slow, "mirrors/slow")] {
        let at = get(&format!(
            "regmirror_policy_last_success_timestamp_seconds{{policy=\"{policy}\",repository=\"{repo}\"}}"
        ));
        assert!((now - at).abs() < 120.0, "{at} vs {now}");
    }

    // The last success survives a restart (from the stored status); the
    // counters start over.
    let server = server.restart().await;
    let text = scrape(&server).await;
    assert_eq!(sample(&text, "regmirror_bytes_copied_total"), Some(0.0));
    assert!(
        text.contains(&format!("policy=\"{real}\"")),
        "last success lost:\n{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_log_of_a_job_not_started_ends_when_the_server_stops() {
    let server = TestServer::start().await;
    // Without holding up the shutdown.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let form = json!({"action": "poll_mirror", "scheduledAt": later});
    let job = server.admin().post("/api/v0/jobs").json(&form).await.json();
    let resp = server
        .request(
            Method::GET,
            &format!(
                "/api/v0/jobs/{}/logs?stream=true",
                job["id"].as_str().unwrap()
            ),
            ADMIN,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let reader = tokio::spawn(async move { resp.bytes().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    server.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "shutdown waited for the followed log: {:?}",
        stopping.elapsed()
    );
    let rest = reader.await.unwrap().unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}
