//! A user granted one mirrored repository cannot list, pull or learn the
//! names of others: for every `/api/v0` route that names a repository
//! (from `ROUTES`, so new routes are included) and every `/v2` endpoint
//! form, a repository that exists but is not granted answers exactly like
//! one that does not exist; listings never show it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::server::{ADMIN, Creds, TestServer};

const BOB: Creds<'static> = Some(("bob", "bob-password-1"));

/// Status and error code (the message names the repository asked for, so
/// it is compared with that name replaced).
async fn answer(server: &TestServer, method: Method, path: &str, name: &str) -> (u16, String) {
    let resp = server
        .request(method, path, BOB)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, text.replace(name, "NAME"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_repositories_are_indistinguishable_from_missing_ones() {
    let server = TestServer::start().await;
    server.create_user("bob", "bob-password-1").await;
    server.create_repo("mirrors", "granted", "private").await;
    server.create_repo("mirrors", "secretproj", "private").await;
    server.grant("mirrors/granted", "bob", "read-only").await;

    let mut compared = 0;
    for (template, _) in mirror_server::api::dtr::ROUTES {
        if !template.contains("{reponame}") {
            continue;
        }
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let path = |repo: &str| {
                format!(
                    "/api/v0{}",
                    template
                        .replace("{namespace}", "mirrors")
                        .replace("{reponame}", repo)
                        .replace("{username}", "bob")
                        .replace("{id}", "00000000-0000-0000-0000-000000000000")
                )
            };
            let hidden = answer(&server, method.clone(), &path("secretproj"), "secretproj").await;
            let missing = answer(&server, method.clone(), &path("nosuchrepo"), "nosuchrepo").await;
            assert_eq!(hidden, missing, "{method} {template}");
            assert!(hidden.0 >= 400, "{method} {template}: {hidden:?}");
            compared += 1;
        }
    }
    for (method, form) in [
        (Method::GET, "/v2/mirrors/{r}/tags/list"),
        (Method::GET, "/v2/mirrors/{r}/manifests/latest"),
        (Method::HEAD, "/v2/mirrors/{r}/manifests/latest"),
        (
            Method::GET,
            "/v2/mirrors/{r}/blobs/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        (
            Method::GET,
            "/v2/mirrors/{r}/referrers/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        (Method::POST, "/v2/mirrors/{r}/blobs/uploads/"),
        (Method::PUT, "/v2/mirrors/{r}/manifests/latest"),
        (Method::DELETE, "/v2/mirrors/{r}/manifests/latest"),
    ] {
        let hidden = answer(
            &server,
            method.clone(),
            &form.replace("{r}", "secretproj"),
            "secretproj",
        )
        .await;
        let missing = answer(
            &server,
            method.clone(),
            &form.replace("{r}", "nosuchrepo"),
            "nosuchrepo",
        )
        .await;
        assert_eq!(hidden, missing, "{method} {form}");
        assert!(hidden.0 >= 400, "{method} {form}: {hidden:?}");
        compared += 1;
    }
    assert!(compared > 20, "{compared}");

    // Listings show the granted repository only.
    for path in [
        "/api/v0/repositories",
        "/api/v0/repositories/mirrors",
        "/v2/_catalog",
        "/api/v0/jobs",
        "/api/v0/accounts/bob",
    ] {
        let (s, body) = server.call(Method::GET, path, BOB, None).await;
        let text = body.to_string();
        assert!(!text.contains("secretproj"), "{path}: {text}");
        if s.is_success() && (path.contains("repositories") || path == "/v2/_catalog") {
            assert!(text.contains("granted"), "{path}: {text}");
        }
    }
    // The admin sees both (the check above is not vacuous).
    let (_, all): (_, Value) = server
        .call(Method::GET, "/api/v0/repositories", ADMIN, None)
        .await;
    assert!(all.to_string().contains("secretproj"));
    server.stop().await;
}
