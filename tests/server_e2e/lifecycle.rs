//! Repository lifecycle through DTR's API (issue 14's first slice):
//! `createRepositoryOnPush` (`POST /api/v0/meta/settings`, `202` as DTR),
//! and deleting a tag with `DELETE .../tags/{tag}`.

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN, Creds, TestServer};
use crate::support::http::Api;
use crate::support::{ImageSpec, Pusher};

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));
const BOB: Creds<'static> = Some(("bob", "bob-pa55word"));

/// A pusher to `server` as `creds`.
fn pusher(server: &TestServer, creds: Creds) -> Pusher {
    let (user, password) = creds.unwrap();
    Pusher::from_parts(&server.url, Some((user.into(), password.into())), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_creates_its_repository_only_when_the_setting_says_so() {
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    server.create_user("bob", "bob-pa55word").await;
    let api = Api::new(&server.client, &server.url);
    let (admin, alice) = (api.creds(ADMIN), api.creds(ALICE));

    // Off by default, as in DTR: pushing to a missing repository fails.
    let settings = admin
        .get("/api/v0/meta/settings")
        .await
        .expect(StatusCode::OK);
    assert_eq!(settings.json()["createRepositoryOnPush"], false);
    alice
        .post("/v2/alice/new/blobs/uploads/")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    // Only an administrator changes it; the answer is DTR's 202.
    alice
        .post("/api/v0/meta/settings")
        .json(&json!({"createRepositoryOnPush": true}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    let changed = admin
        .post("/api/v0/meta/settings")
        .json(&json!({"createRepositoryOnPush": true, "dtrHost": "ignored"}))
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(changed.json()["createRepositoryOnPush"], true);

    // A push into one's own namespace creates the repository, private.
    let pushed = pusher(&server, ALICE)
        .push_image("alice/new", "1.0", ImageSpec::small("created on push"))
        .await;
    let repo = alice
        .get("/api/v0/repositories/alice/new")
        .await
        .expect(StatusCode::OK);
    assert_eq!(repo.json()["visibility"], "private");
    let tag = alice
        .head("/v2/alice/new/manifests/1.0")
        .header("accept", pushed.media_type.as_str())
        .await
        .expect(StatusCode::OK);
    assert_eq!(tag.header("docker-content-digest"), pushed.digest);
    api.head("/v2/alice/new/manifests/1.0")
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Not into someone else's: nothing is created there.
    api.creds(BOB)
        .post("/v2/alice/other/blobs/uploads/")
        .await
        .expect_error(StatusCode::FORBIDDEN, "DENIED");
    admin
        .get("/api/v0/repositories/alice/other")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY");
    // A delete never creates one.
    alice
        .delete("/v2/alice/gone/manifests/1.0")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");

    // The setting survives a restart.
    let server = server.restart().await;
    let admin = Api::new(&server.client, &server.url).creds(ADMIN);
    let settings = admin
        .get("/api/v0/meta/settings")
        .await
        .expect(StatusCode::OK);
    assert_eq!(settings.json()["createRepositoryOnPush"], true);
    let features = admin
        .get("/api/v0/meta/features")
        .await
        .expect(StatusCode::OK);
    assert_eq!(features.json()["mirroringLicensed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_deleted_through_the_api_is_gone_and_its_manifest_stays() {
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    server.create_user("bob", "bob-pa55word").await;
    server.create_repo("alice", "app", "private").await;
    server.grant("alice/app", "bob", "read-only").await;
    let pushed = pusher(&server, ALICE)
        .push_image("alice/app", "1.0", ImageSpec::small("to untag"))
        .await;
    let api = Api::new(&server.client, &server.url);
    let (alice, bob) = (api.creds(ALICE), api.creds(BOB));
    let tag = "/api/v0/repositories/alice/app/tags/1.0";

    bob.delete(tag)
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    alice.delete(tag).await.expect(StatusCode::NO_CONTENT);
    alice
        .get(tag)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REF");
    alice
        .delete(tag)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_TAG");
    let listed = alice
        .get("/api/v0/repositories/alice/app/tags")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed.json(), json!([]));
    // The manifest is still there by digest (until garbage collection).
    alice
        .head(format!("/v2/alice/app/manifests/{}", pushed.digest))
        .header("accept", pushed.media_type.as_str())
        .await
        .expect(StatusCode::OK);
}
