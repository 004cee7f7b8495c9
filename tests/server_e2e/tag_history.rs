//! Tag history (issue 15): a tag that moved upstream and was polled again,
//! or that was deleted (by deletion propagation or the API), keeps its
//! earlier digests in `GET .../tags/{tag}/history`, with times, what
//! replaced it and whether the old manifest still pulls by digest; garbage
//! collection ends that. Read access as for the tag list.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo_output};
use crate::support::images::ImageSpec;
use crate::support::policies::add_policy;
use crate::support::registry::Registry;

const HISTORY: &str = "/api/v0/repositories/mirrors/app/tags";

/// Polls `policy` once, expecting `done`; its log.
async fn poll(server: &TestServer, policy: &str) -> String {
    let job = server.submit_poll(Some(policy)).await;
    let (status, lines) = server.job_outcome(&job, Duration::from_secs(60)).await;
    let log = lines.join("\n");
    assert_eq!(status, "done", "{log}");
    log
}

/// The history of `mirrors/app:{tag}`, as the administrator reads it.
async fn history(server: &TestServer, tag: &str) -> Vec<Value> {
    let reply = server.admin().get(format!("{HISTORY}/{tag}/history")).await;
    let body = reply.expect(StatusCode::OK).json();
    body.as_array().expect("an array").clone()
}

/// The raw manifest `reference` of `mirrors/app`, pulled with skopeo.
async fn pull_raw(server: &TestServer, reference: &str) -> std::process::Output {
    skopeo_output(vec![
        "inspect".into(),
        "--raw".into(),
        format!("--creds=admin:{ADMIN_PASSWORD}"),
        "--tls-verify=false".into(),
        format!("docker://{}/mirrors/app{reference}", server.host_port),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_history_keeps_moved_and_deleted_digests_until_gc() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    let first = pusher
        .push_image("team/app", "v1", ImageSpec::small("first v1"))
        .await;
    let gone = pusher
        .push_image("team/app", "gone", ImageSpec::small("soon deleted"))
        .await;
    let server = TestServer::start().await;
    let admin = server.admin();
    server.create_repo("mirrors", "app", "private").await;
    let form = json!({
        "remoteHost": up.url(), "remoteRepository": "team/app",
        "deleteRemoved": true, "deleteRemovedMaxPercent": 100,
    });
    let policy = add_policy(&admin, "mirrors/app", &form).await;
    poll(&server, &policy).await;
    assert_eq!(history(&server, "v1").await, Vec::<Value>::new());

    // The upstream tag moves; the next poll moves the local one.
    let second = pusher
        .push_image("team/app", "v1", ImageSpec::small("second v1"))
        .await;
    assert_ne!(first.digest, second.digest);
    poll(&server, &policy).await;
    let h = history(&server, "v1").await;
    assert_eq!(h.len(), 1, "{h:?}");
    let entry = &h[0];
    assert_eq!(entry["digest"], first.digest.as_str(), "{entry}");
    assert_eq!(entry["replacedBy"], second.digest.as_str(), "{entry}");
    assert_eq!(entry["mirroredBy"], policy.as_str(), "{entry}");
    assert_eq!(entry["mediaType"], first.media_type.as_str(), "{entry}");
    assert_eq!(entry["size"], first.bytes.len(), "{entry}");
    assert_eq!(entry["available"], true, "{entry}");
    let time = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(entry[field].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{field}: {e}: {entry}"))
    };
    assert!(time("taggedAt") < time("replacedAt"), "{entry}");
    let tags = admin.get(format!("{HISTORY}/v1")).await;
    let tags = tags.expect(StatusCode::OK).json();
    assert_eq!(tags[0]["digest"], second.digest.as_str());
    assert_eq!(tags[0]["updatedAt"], entry["replacedAt"], "{tags}");

    // The old digest still pulls, byte for byte.
    let old = pull_raw(&server, &format!("@{}", first.digest)).await;
    assert!(
        old.status.success(),
        "{}",
        String::from_utf8_lossy(&old.stderr)
    );
    assert_eq!(sha256(&old.stdout), first.digest);
    assert_eq!(old.stdout, first.bytes);

    // Polling again without a move adds nothing.
    poll(&server, &policy).await;
    assert_eq!(history(&server, "v1").await.len(), 1);

    // Deletion propagation records the deleted tag, replaced by nothing.
    assert!(pusher.delete_manifest("team/app", &gone.digest).await);
    let log = poll(&server, &policy).await;
    assert!(log.contains("deleted mirrors/app:gone"), "{log}");
    let h = history(&server, "gone").await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["digest"], gone.digest.as_str());
    assert_eq!(h[0]["replacedBy"], Value::Null);
    assert_eq!(h[0]["available"], true);

    // So does a DELETE through the API.
    admin
        .delete(format!("{HISTORY}/v1"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let h = history(&server, "v1").await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["digest"], second.digest.as_str());
    assert_eq!(h[0]["replacedBy"], Value::Null);
    assert_eq!(h[0]["mirroredBy"], policy.as_str());
    assert_eq!(h[1]["digest"], first.digest.as_str());

    // A tag with neither a value nor a history, or an unknown repository.
    admin
        .get(format!("{HISTORY}/never/history"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_TAG");
    admin
        .get("/api/v0/repositories/mirrors/none/tags/v1/history")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY");

    // Who may not list the tags may not read their history either.
    server.create_user("outsider", "outsider-password").await;
    server.create_user("reader", "reader-password").await;
    server.grant("mirrors/app", "reader", "read-only").await;
    for creds in [None, Some(("outsider", "outsider-password"))] {
        let api = server.api().creds(creds);
        let listed = api.get(HISTORY).await;
        assert!(
            listed.status.is_client_error(),
            "{creds:?}: {}",
            listed.status
        );
        let read = api.get(format!("{HISTORY}/v1/history")).await;
        assert_eq!(read.status, listed.status, "{creds:?}");
        assert_eq!(read.error_code(), listed.error_code(), "{creds:?}");
    }
    let reader = server.api().creds(Some(("reader", "reader-password")));
    let read = reader.get(format!("{HISTORY}/v1/history")).await;
    assert_eq!(
        read.expect(StatusCode::OK).json().as_array().unwrap().len(),
        2
    );

    // Garbage collection removes the untagged manifests: the history
    // stays, no longer available, and the digest no longer pulls.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gc = json!({"action": "onlinegc",
                    "parameters": {"gracePeriod": "1s", "deleteUntagged": "true"}});
    let job = admin.post("/api/v0/jobs").json(&gc).await;
    let id = job.expect(StatusCode::ACCEPTED).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, log) = server.job_outcome(&id, Duration::from_secs(120)).await;
    assert_eq!(status, "done", "{log:#?}");
    let h = history(&server, "v1").await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(h.iter().all(|e| e["available"] == false), "{h:?}");
    let old = pull_raw(&server, &format!("@{}", first.digest)).await;
    assert!(!old.status.success(), "pulled after gc");
    server.stop().await;
}
