//! Crons: the default `poll_mirror` schedule, and a changed schedule that
//! fires without a restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_cron_and_a_cron_that_fires() {
    let server = TestServer::start().await;
    let (s, cron) = server
        .call(Method::GET, "/api/v0/crons/poll_mirror", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{cron}");
    assert_eq!(cron["schedule"], "0 */30 * * * *");
    assert!(cron["nextRun"].is_string(), "{cron}");

    assert_eq!(jobs(&server).await, 0);

    // Every second: takes effect at once, without a restart.
    let (s, cron) = server
        .call(
            Method::POST,
            "/api/v0/crons",
            ADMIN,
            Some(json!({"action": "poll_mirror", "schedule": "* * * * * *"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{cron}");
    assert_eq!(cron["schedule"], "* * * * * *");
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs(&server).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the cron did not fire twice in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Deleted: no more jobs (one already due may still land).
    let (s, _) = server
        .call(Method::DELETE, "/api/v0/crons/poll_mirror", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = jobs(&server).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jobs(&server).await, settled);
    let (s, b) = server.call(Method::GET, "/api/v0/crons", ADMIN, None).await;
    assert_eq!((s, &b["crons"]), (StatusCode::OK, &json!([])));

    // A deleted default cron stays deleted across restarts; a new one persists.
    let server = server.restart().await;
    let (s, b) = server.call(Method::GET, "/api/v0/crons", ADMIN, None).await;
    assert_eq!((s, &b["crons"]), (StatusCode::OK, &json!([])));
    let (s, cron) = server
        .call(
            Method::POST,
            "/api/v0/crons",
            ADMIN,
            Some(json!({"action": "poll_mirror", "schedule": "@hourly", "deadline": "20m"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{cron}");
    let server = server.restart().await;
    let (s, cron) = server
        .call(Method::GET, "/api/v0/crons/poll_mirror", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{cron}");
    assert_eq!(
        (cron["schedule"].as_str(), cron["deadline"].as_str()),
        (Some("@hourly"), Some("20m"))
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_cancel_and_delete() {
    let server = TestServer::start().await;
    // Scheduled in an hour: stays waiting until canceled.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (s, job) = server
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror", "scheduledAt": later, "deadline": "30m"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["status"], "waiting");
    assert!(job["deadline"].as_str().unwrap().ends_with('Z'), "{job}");
    let (s, b) = server
        .call(Method::GET, "/api/v0/jobs?running=true", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["jobs"][0]["id"], id.as_str());
    let (s, _) = server
        .call(
            Method::POST,
            &format!("/api/v0/jobs/{id}/cancel"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, job) = server
        .call(Method::GET, &format!("/api/v0/jobs/{id}"), ADMIN, None)
        .await;
    assert_eq!(job["status"], "canceled", "{job}");
    let (s, b) = server
        .call(Method::GET, "/api/v0/jobs?running=false", ADMIN, None)
        .await;
    assert_eq!(
        (s, b["jobs"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (s, _) = server
        .call(Method::DELETE, &format!("/api/v0/jobs/{id}"), ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = server
        .call(Method::GET, &format!("/api/v0/jobs/{id}"), ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = server
        .call(Method::DELETE, &format!("/api/v0/jobs/{id}"), ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// How many `poll_mirror` jobs exist.
async fn jobs(server: &TestServer) -> usize {
    let (s, b) = server
        .call(
            Method::GET,
            "/api/v0/jobs?action=poll_mirror&limit=100",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["jobs"].as_array().unwrap().len()
}
