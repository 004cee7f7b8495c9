//! Who may do what: anonymous, a reader, a namespace owner, a server admin,
//! and access tokens used as passwords.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN, Creds, TestServer, assert_error};

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
    let policies = "/api/v0/repositories/mirrors/private-app/pollMirroringPolicies";
    let policy = json!({"remoteHost": "http://127.0.0.1:9", "remoteRepository": "a/b"});

    // Anonymous: 401 on the management API (without a challenge, so a
    // browser never prompts and caches credentials) and private repos.
    for path in ["/api/v0/repositories", "/api/v0/jobs", policies] {
        let got = server.call(Method::GET, path, None, None).await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", None);
    }
    let resp = server
        .request(Method::GET, "/api/v0/repositories", None)
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("www-authenticate"));
    for path in [
        "/v2/",
        "/v2/mirrors/private-app/tags/list",
        "/v2/mirrors/does-not-exist/tags/list",
    ] {
        let (s, b) = server.call(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {b}");
    }
    // ...but public repositories can be pulled anonymously.
    let (s, b) = server
        .call(Method::GET, "/v2/pub/app/tags/list", None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = server.call(Method::GET, "/v2/_catalog", None, None).await;
    assert_eq!(
        (s, &b["repositories"]),
        (StatusCode::OK, &json!(["pub/app"]))
    );

    // Wrong passwords never fall back to anonymous.
    let wrong = Some(("alice", "not-her-password"));
    let got = server
        .call(Method::GET, "/api/v0/repositories", wrong, None)
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", None);
    let (s, _) = server
        .call(Method::GET, "/v2/pub/app/tags/list", wrong, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Alice without grants: private repositories are invisible.
    let got = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/private-app",
            ALICE,
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY", None);
    let (s, _) = server
        .call(
            Method::GET,
            "/v2/mirrors/private-app/tags/list",
            ALICE,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = server
        .call(
            Method::GET,
            "/v2/mirrors/does-not-exist/tags/list",
            ALICE,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "missing and private look the same"
    );

    // Only the repository admin may grant access.
    let grant = "/api/v0/repositories/mirrors/private-app/userAccess/alice";
    let got = server
        .call(
            Method::PUT,
            grant,
            ALICE,
            Some(json!({"accessLevel": "admin"})),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY", None);
    let (s, b) = server
        .call(
            Method::PUT,
            grant,
            ADMIN,
            Some(json!({"accessLevel": "read-only"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Read-only: can see and pull, cannot create policies or delete.
    let (s, b) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/private-app",
            ALICE,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = server.call(Method::GET, policies, ALICE, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = server
        .call(
            Method::GET,
            "/v2/mirrors/private-app/tags/list",
            ALICE,
            None,
        )
        .await;
    assert_eq!((s, &b["tags"]), (StatusCode::OK, &json!([])));
    let got = server
        .call(Method::POST, policies, ALICE, Some(policy.clone()))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let got = server
        .call(
            Method::DELETE,
            "/api/v0/repositories/mirrors/private-app",
            ALICE,
            None,
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let (s, b) = server.call(Method::GET, "/v2/_catalog", ALICE, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["repositories"], json!(["mirrors/private-app", "pub/app"]));
    let (s, b) = server
        .call(Method::GET, "/api/v0/repositories", ALICE, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<_> = b["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["mirrors/private-app", "pub/app"]);

    // Public is read-only for others too.
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/pub/app/pollMirroringPolicies",
            ALICE,
            Some(policy.clone()),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);

    // Server-admin-only endpoints.
    for (method, path, body) in [
        (Method::GET, "/api/v0/jobs", None),
        (
            Method::POST,
            "/api/v0/jobs",
            Some(json!({"action": "poll_mirror"})),
        ),
        (Method::GET, "/api/v0/crons", None),
        (Method::DELETE, "/api/v0/crons/poll_mirror", None),
        (
            Method::POST,
            "/api/v0/accounts",
            Some(json!({"name": "mallory", "password": "12345678"})),
        ),
    ] {
        let got = server.call(method, path, ALICE, body).await;
        assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    }

    // Repositories: only in one's own namespace, where one is admin.
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/mirrors",
            ALICE,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/repositories/alice",
            ALICE,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["namespaceType"], "user");
    // ...where the policy check passes authorization and reaches the remote.
    let got = server
        .call(
            Method::POST,
            "/api/v0/repositories/alice/mine/pollMirroringPolicies",
            ALICE,
            Some(policy.clone()),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
        None,
    );

    // Access tokens work as passwords; the secret is shown once.
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            ALICE,
            Some(json!({"tokenLabel": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let hashed = tok["hashedToken"].as_str().unwrap().to_string();
    let with_token = Some(("alice", token.as_str()));
    let (s, _) = server
        .call(
            Method::GET,
            "/v2/mirrors/private-app/tags/list",
            with_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, list) = server
        .call(Method::GET, "/api/v0/api_tokens", with_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["hashedToken"], hashed.as_str());
    assert_eq!(list[0]["tokenLabel"], "ci");
    assert!(!list.to_string().contains(&token));
    // The token is alice's: it is not valid for another user name.
    let (s, _) = server
        .call(Method::GET, "/v2/", Some(("admin", token.as_str())), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Alice cannot read admin's tokens; deleting hers revokes it at once.
    let got = server
        .call(
            Method::GET,
            "/api/v0/api_tokens?username=admin",
            ALICE,
            None,
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let (s, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v0/api_tokens/{hashed}"),
            ALICE,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = server.call(Method::GET, "/v2/", with_token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A repository admin (by grant) may manage policies and grants.
    let (s, _) = server
        .call(
            Method::PUT,
            grant,
            ADMIN,
            Some(json!({"accessLevel": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = server
        .call(Method::POST, policies, ALICE, Some(policy.clone()))
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "REMOTE_REGISTRY_INVALID_PERMISSIONS",
        None,
    );
    let (s, b) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/private-app/userAccess",
            ALICE,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!([{"username": "alice", "accessLevel": "admin"}]));
    // ...but not server-wide things.
    let got = server.call(Method::GET, "/api/v0/jobs", ALICE, None).await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);

    // Revoking the grant hides the repository again.
    let (s, _) = server.call(Method::DELETE, grant, ADMIN, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = server
        .call(
            Method::GET,
            "/v2/mirrors/private-app/tags/list",
            ALICE,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Admin deletes a repository; its grants and policies go with it.
    let (s, _) = server
        .call(
            Method::DELETE,
            "/api/v0/repositories/mirrors/hidden",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let got = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/hidden",
            ADMIN,
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_REPOSITORY", None);

    // Push (see `push.rs`): after authentication, into an existing
    // repository the caller may write to (alice owns her namespace).
    let (s, _) = server
        .call(Method::POST, "/v2/alice/mine/blobs/uploads/", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = server
        .call(Method::POST, "/v2/alice/mine/blobs/uploads/", ALICE, None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    for (repo, status, code) in [
        ("alice/missing", StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        ("mirrors/private-app", StatusCode::FORBIDDEN, "DENIED"),
    ] {
        let (s, b) = server
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                ALICE,
                None,
            )
            .await;
        assert_eq!(
            (s, &b["errors"][0]["code"]),
            (status, &json!(code)),
            "{repo}"
        );
    }

    server.stop().await;
}
