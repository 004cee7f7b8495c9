//! Crons: the default `poll_mirror` schedule, a changed schedule that
//! fires without a restart, deleted and new crons across restarts; jobs
//! canceled and deleted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::server::TestServer;
use crate::support::http::Api;

/// How many `poll_mirror` jobs exist.
async fn jobs(admin: &Api) -> usize {
    let jobs = admin.get("/api/v0/jobs?action=poll_mirror&limit=100").await;
    let jobs = jobs.expect(StatusCode::OK).json();
    jobs["jobs"].as_array().unwrap().len()
}

/// The crons the server lists.
async fn crons(admin: &Api) -> serde_json::Value {
    let crons = admin.get("/api/v0/crons").await;
    crons.expect(StatusCode::OK).json()["crons"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_cron_polls_every_half_hour() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let cron = admin.get("/api/v0/crons/poll_mirror").await;
    let cron = cron.expect(StatusCode::OK).json();
    assert_eq!(cron["schedule"], "0 */30 * * * *");
    assert!(cron["nextRun"].is_string(), "{cron}");
    assert_eq!(jobs(&admin).await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_cron_fires_without_a_restart_until_deleted() {
    let server = TestServer::start().await;
    let admin = server.admin();
    // Every second: takes effect at once, without a restart.
    let every_second = json!({"action": "poll_mirror", "schedule": "* * * * * *"});
    let cron = admin.post("/api/v0/crons").json(&every_second).await;
    let cron = cron.expect(StatusCode::ACCEPTED).json();
    assert_eq!(cron["schedule"], "* * * * * *");
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs(&admin).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the cron did not fire twice in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Deleted: no more jobs (one already due may still land).
    let deleted = admin.delete("/api/v0/crons/poll_mirror").await;
    deleted.expect(StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = jobs(&admin).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jobs(&admin).await, settled);
    assert_eq!(crons(&admin).await, json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_default_cron_stays_deleted_across_restarts_and_a_new_one_persists() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let deleted = admin.delete("/api/v0/crons/poll_mirror").await;
    deleted.expect(StatusCode::NO_CONTENT);

    let server = server.restart().await;
    let admin = server.admin();
    assert_eq!(crons(&admin).await, json!([]));
    let hourly = json!({"action": "poll_mirror", "schedule": "@hourly", "deadline": "20m"});
    let created = admin.post("/api/v0/crons").json(&hourly).await;
    created.expect(StatusCode::ACCEPTED);

    let server = server.restart().await;
    let admin = server.admin();
    let cron = admin.get("/api/v0/crons/poll_mirror").await;
    let cron = cron.expect(StatusCode::OK).json();
    assert_eq!(
        (cron["schedule"].as_str(), cron["deadline"].as_str()),
        (Some("@hourly"), Some("20m"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_is_canceled_then_deleted() {
    let server = TestServer::start().await;
    let admin = server.admin();
    // Scheduled in an hour: stays waiting until canceled.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let form = json!({"action": "poll_mirror", "scheduledAt": later, "deadline": "30m"});
    let job = admin.post("/api/v0/jobs").json(&form).await;
    let job = job.expect(StatusCode::ACCEPTED).json();
    let id = job["id"].as_str().unwrap().to_string();
    let one = format!("/api/v0/jobs/{id}");
    assert_eq!(job["status"], "waiting");
    assert!(job["deadline"].as_str().unwrap().ends_with('Z'), "{job}");
    let running = admin.get("/api/v0/jobs?running=true").await;
    assert_eq!(running.expect(StatusCode::OK).json()["jobs"][0]["id"], id);

    let cancel = admin.post(format!("{one}/cancel")).await;
    cancel.expect(StatusCode::NO_CONTENT);
    let job = admin.get(&one).await.json();
    assert_eq!(job["status"], "canceled", "{job}");
    let ended = admin.get("/api/v0/jobs?running=false").await;
    let ended = ended.expect(StatusCode::OK).json();
    assert_eq!(ended["jobs"].as_array().unwrap().len(), 1, "{ended}");

    admin.delete(&one).await.expect(StatusCode::NO_CONTENT);
    admin.get(&one).await.expect(StatusCode::NOT_FOUND);
    admin.delete(&one).await.expect(StatusCode::NOT_FOUND);
    server.stop().await;
}
