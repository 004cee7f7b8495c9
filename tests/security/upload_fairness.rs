//! Fair upload sessions: one account cannot hold every push slot. With
//! `max_uploads_per_account = 3`, alice's fourth open upload is refused
//! (`429 TOOMANYREQUESTS` naming the limit) while bob still starts and
//! finishes a push; a finished or canceled upload gives alice her slot
//! back.

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::server::{Creds, TestServer, sha256};

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));
const BOB: Creds<'static> = Some(("bob", "bob-pa55word"));
const UPLOADS: &str = "/v2/acme/app/blobs/uploads/";

/// `POST` a new upload session as `creds`.
async fn open(server: &TestServer, creds: Creds<'_>) -> reqwest::Response {
    server
        .request(Method::POST, UPLOADS, creds)
        .send()
        .await
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()[LOCATION].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_take_every_upload_slot() {
    let server = TestServer::start_with(|c| c.uploads.max_per_account = 3).await;
    server.create_repo("acme", "app", "private").await;
    for (user, password) in [ALICE.unwrap(), BOB.unwrap()] {
        server.create_user(user, password).await;
        server.grant("acme/app", user, "read-write").await;
    }

    let mut alices = Vec::new();
    for _ in 0..3 {
        let r = open(&server, ALICE).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        alices.push(location(&r));
    }
    let refused = open(&server, ALICE).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS", "{body}");
    let reason = body["errors"][0]["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("max_uploads_per_account"), "{body}");

    // Bob is unaffected: a whole push, started and finished.
    let blob = b"bob's layer".to_vec();
    let digest = sha256(&blob);
    let started = open(&server, BOB).await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let finished = server
        .request(
            Method::PUT,
            &format!("{}?digest={digest}", location(&started)),
            BOB,
        )
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), StatusCode::CREATED);
    let pulled = server
        .request(Method::GET, &format!("/v2/acme/app/blobs/{digest}"), BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), blob.as_slice());

    // Canceling one of alice's uploads gives her the slot back.
    let canceled = server
        .request(Method::DELETE, &alices[0], ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), StatusCode::NO_CONTENT);
    assert_eq!(open(&server, ALICE).await.status(), StatusCode::ACCEPTED);
    server.stop().await;
}
