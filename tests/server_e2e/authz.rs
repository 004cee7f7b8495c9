//! Who may do what: anonymous, a reader, a namespace owner, a server admin,
//! and access tokens used as passwords.

use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN, Creds, TestServer, repository_names};
use crate::support::http::Api;

const ALICE: Creds<'static> = Some(("alice", "alice-pa55word"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pa55word").await;
    server
        .create_repo("mirrors", "private-app", "private")
        .await;
    server.create_repo("mirrors", "hidden", "private").await;
    server.create_repo("pub", "app", "public").await;
    let anonymous = Api::new(&server.client, &server.url);
    let (alice, admin) = (anonymous.creds(ALICE), anonymous.creds(ADMIN));
    let policies = "/api/v0/repositories/mirrors/private-app/pollMirroringPolicies";
    let policy = json!({"remoteHost": "http://127.0.0.1:9", "remoteRepository": "a/b"});
    let private_tags = "/v2/mirrors/private-app/tags/list";
    let missing_tags = "/v2/mirrors/does-not-exist/tags/list";
    let (forbidden, not_authorized) = (StatusCode::FORBIDDEN, "NOT_AUTHORIZED");

    // Anonymous: 401 on the management API (without a challenge, so a
    // browser never prompts and caches credentials) and private repos.
    for path in ["/api/v0/repositories", "/api/v0/jobs", policies] {
        let r = anonymous.get(path).await;
        r.expect_error(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED");
    }
    let r = anonymous.get("/api/v0/repositories").await;
    assert!(!r.headers.contains_key("www-authenticate"));
    for path in ["/v2/", private_tags, missing_tags] {
        anonymous.get(path).await.expect(StatusCode::UNAUTHORIZED);
    }
    // ...but public repositories can be pulled anonymously.
    let public_tags = "/v2/pub/app/tags/list";
    anonymous.get(public_tags).await.expect(StatusCode::OK);
    // The catalog challenges anonymous callers (distribution with auth
    // does the same), so clients log in and list what they may read.
    let catalog = anonymous
        .get("/v2/_catalog")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(
        catalog
            .header("www-authenticate")
            .starts_with("Bearer realm=")
    );

    // Wrong passwords never fall back to anonymous.
    let wrong = anonymous.creds(Some(("alice", "not-her-password")));
    let r = wrong.get("/api/v0/repositories").await;
    r.expect_error(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED");
    wrong
        .get(public_tags)
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // Alice without grants: private repositories are invisible.
    let repo = "/api/v0/repositories/mirrors/private-app";
    let r = alice.get(repo).await;
    r.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY");
    alice.get(private_tags).await.expect(forbidden);
    assert_eq!(
        alice.get(missing_tags).await.status,
        forbidden,
        "missing and private look the same"
    );

    // Only the repository admin may grant access.
    let grant = "/api/v0/repositories/mirrors/private-app/userAccess/alice";
    let level = |level: &str| json!({ "accessLevel": level });
    let r = alice.put(grant).json(&level("admin")).await;
    r.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY");
    let r = admin.put(grant).json(&level("read-only")).await;
    r.expect(StatusCode::OK);

    // Read-only: can see and pull, cannot create policies or delete.
    alice.get(repo).await.expect(StatusCode::OK);
    alice.get(policies).await.expect(StatusCode::OK);
    let tags = alice.get(private_tags).await.expect(StatusCode::OK);
    assert_eq!(tags.json()["tags"], json!([]));
    let r = alice.post(policies).json(&policy).await;
    r.expect_error(forbidden, not_authorized);
    let r = alice.delete(repo).await;
    r.expect_error(forbidden, not_authorized);
    let catalog = alice.get("/v2/_catalog").await.expect(StatusCode::OK);
    assert_eq!(
        catalog.json()["repositories"],
        json!(["mirrors/private-app", "pub/app"])
    );
    let listed = alice.get("/api/v0/repositories").await;
    let listed = listed.expect(StatusCode::OK).json();
    assert_eq!(
        repository_names(&listed),
        ["mirrors/private-app", "pub/app"]
    );

    // Public is read-only for others too.
    let pub_policies = "/api/v0/repositories/pub/app/pollMirroringPolicies";
    let r = alice.post(pub_policies).json(&policy).await;
    r.expect_error(forbidden, not_authorized);

    // Server-admin-only endpoints.
    let mallory = json!({"name": "mallory", "password": "12345678"});
    for call in [
        alice.get("/api/v0/jobs"),
        alice
            .post("/api/v0/jobs")
            .json(&json!({"action": "poll_mirror"})),
        alice.get("/api/v0/crons"),
        alice.delete("/api/v0/crons/poll_mirror"),
        alice.post("/api/v0/accounts").json(&mallory),
    ] {
        call.await.expect_error(forbidden, not_authorized);
    }

    // Repositories: only in one's own namespace, where one is admin.
    let mine = json!({"name": "mine"});
    // A namespace no account owns is "no such account", as DTR answers
    // (an admin may still create organization-less namespaces).
    let r = alice.post("/api/v0/repositories/mirrors").json(&mine).await;
    r.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT");
    let r = alice.post("/api/v0/repositories/alice").json(&mine).await;
    assert_eq!(
        r.expect(StatusCode::CREATED).json()["namespaceType"],
        "user"
    );
    // ...where the policy check passes authorization and reaches the remote.
    let own_policies = "/api/v0/repositories/alice/mine/pollMirroringPolicies";
    let r = alice.post(own_policies).json(&policy).await;
    r.expect_error(
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
    );

    // Access tokens work as passwords; the secret is shown once.
    let label = json!({"tokenLabel": "ci"});
    let r = alice.post("/api/v0/api_tokens").json(&label).await;
    let tok = r.expect(StatusCode::OK).json();
    let token = tok["token"].as_str().unwrap().to_string();
    let hashed = tok["hashedToken"].as_str().unwrap().to_string();
    let with_token = anonymous.creds(Some(("alice", token.as_str())));
    with_token.get(private_tags).await.expect(StatusCode::OK);
    let list = with_token.get("/api/v0/api_tokens").await;
    let list = list.expect(StatusCode::OK).json();
    assert_eq!(list[0]["hashedToken"], hashed.as_str());
    assert_eq!(list[0]["tokenLabel"], "ci");
    assert!(!list.to_string().contains(&token));
    // The token is alice's: it is not valid for another user name.
    let as_admin = anonymous.creds(Some(("admin", token.as_str())));
    as_admin.get("/v2/").await.expect(StatusCode::UNAUTHORIZED);
    // Alice cannot read admin's tokens; deleting hers revokes it at once.
    let r = alice.get("/api/v0/api_tokens?username=admin").await;
    r.expect_error(forbidden, not_authorized);
    let r = alice.delete(format!("/api/v0/api_tokens/{hashed}")).await;
    r.expect(StatusCode::NO_CONTENT);
    with_token
        .get("/v2/")
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // A repository admin (by grant) may manage policies and grants.
    let r = admin.put(grant).json(&level("admin")).await;
    r.expect(StatusCode::OK);
    let r = alice.post(policies).json(&policy).await;
    r.expect_error(
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
    );
    let r = alice.get(format!("{repo}/userAccess")).await;
    assert_eq!(
        r.expect(StatusCode::OK).json(),
        json!([{"username": "alice", "accessLevel": "admin"}])
    );
    // ...but not server-wide things.
    let r = alice.get("/api/v0/jobs").await;
    r.expect_error(forbidden, not_authorized);

    // Revoking the grant hides the repository again.
    admin.delete(grant).await.expect(StatusCode::NO_CONTENT);
    alice.get(private_tags).await.expect(forbidden);

    // Admin deletes a repository; its grants and policies go with it.
    let hidden = "/api/v0/repositories/mirrors/hidden";
    admin.delete(hidden).await.expect(StatusCode::NO_CONTENT);
    let r = admin.get(hidden).await;
    r.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY");

    // Push (see `push.rs`): after authentication, into an existing
    // repository the caller may write to (alice owns her namespace).
    let uploads = |repo: &str| format!("/v2/{repo}/blobs/uploads/");
    let r = anonymous.post(uploads("alice/mine")).await;
    r.expect(StatusCode::UNAUTHORIZED);
    let r = alice.post(uploads("alice/mine")).await;
    r.expect(StatusCode::ACCEPTED);
    for (repo, status, code) in [
        ("alice/missing", StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        ("mirrors/private-app", forbidden, "DENIED"),
    ] {
        alice.post(uploads(repo)).await.expect_error(status, code);
    }

    server.stop().await;
}
