//! Revocation takes effect on the next request: a deactivated or deleted
//! access token, a changed password and a deactivated account are refused
//! at once, although the server remembers verified passwords for 60 s.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN, ADMIN_PASSWORD, TestServer, assert_error};

const OLD: &str = "carol-old-password";
const NEW: &str = "carol-new-password";

async fn v2(server: &TestServer, user: &str, secret: &str) -> StatusCode {
    server
        .call(Method::GET, "/v2/", Some((user, secret)), None)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_passwords_and_accounts_are_revoked_at_once() {
    let server = TestServer::start().await;
    server.create_user("carol", OLD).await;
    server.create_user("dave", "dave-password-1").await;
    let carol = Some(("carol", OLD));

    // Tokens: deactivating one refuses it on the next request.
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            carol,
            Some(json!({"tokenLabel": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let hashed = tok["hashedToken"].as_str().unwrap().to_string();
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::OK);
    // A request notes the use in memory, never writing; the listing
    // shows it.
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::OK);
    let (_, list) = server
        .call(Method::GET, "/api/v0/api_tokens", carol, None)
        .await;
    assert!(list[0]["lastUsed"].is_string(), "{list}");
    let token_path = format!("/api/v0/api_tokens/{hashed}");
    let (s, b) = server
        .call(
            Method::PATCH,
            &token_path,
            carol,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["isActive"], false);
    assert!(!b.to_string().contains(&token), "{b}");
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::UNAUTHORIZED);
    let (_, list) = server
        .call(Method::GET, "/api/v0/api_tokens", carol, None)
        .await;
    assert_eq!(list[0]["isActive"], false, "{list}");
    // Reactivated, relabelled, then deleted.
    let (s, b) = server
        .call(
            Method::PATCH,
            &token_path,
            carol,
            Some(json!({"isActive": true, "tokenLabel": "ci-2"})),
        )
        .await;
    assert_eq!((s, &b["tokenLabel"]), (StatusCode::OK, &json!("ci-2")));
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::OK);
    // Dave cannot touch carol's token; unknown tokens are 404.
    let dave = Some(("dave", "dave-password-1"));
    let got = server
        .call(
            Method::PATCH,
            &token_path,
            dave,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_API_TOKEN", None);
    let got = server
        .call(
            Method::PATCH,
            &format!("{token_path}?username=carol"),
            dave,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::OK);
    let (s, _) = server.call(Method::DELETE, &token_path, carol, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::UNAUTHORIZED);

    // Passwords: the old one is cached (just used), and still refused at
    // once after the change.
    assert_eq!(v2(&server, "carol", OLD).await, StatusCode::OK);
    let change = "/api/v0/accounts/carol/changePassword";
    let got = server
        .call(
            Method::POST,
            change,
            carol,
            Some(json!({"oldPassword": "not-it", "newPassword": NEW})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_ACCOUNT",
        Some("oldPassword"),
    );
    let got = server
        .call(
            Method::POST,
            change,
            carol,
            Some(json!({"oldPassword": OLD, "newPassword": "short"})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_ACCOUNT",
        Some("newPassword"),
    );
    // Nobody but an admin changes another's password (and learns nothing).
    let got = server
        .call(
            Method::POST,
            change,
            dave,
            Some(json!({"oldPassword": OLD, "newPassword": "dave-owns-you"})),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_ACCOUNT", None);
    let (s, b) = server
        .call(
            Method::POST,
            change,
            carol,
            Some(json!({"oldPassword": OLD, "newPassword": NEW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b.to_string().contains(NEW) && !b.to_string().contains(OLD));
    assert_eq!(v2(&server, "carol", OLD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(v2(&server, "carol", NEW).await, StatusCode::OK);
    // An administrator needs no old password.
    let (s, _) = server
        .call(
            Method::POST,
            change,
            ADMIN,
            Some(json!({"newPassword": OLD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v2(&server, "carol", NEW).await, StatusCode::UNAUTHORIZED);
    assert_eq!(v2(&server, "carol", OLD).await, StatusCode::OK);

    // Accounts: deactivating refuses the (cached) password and tokens.
    let (_, tok) = server
        .call(Method::POST, "/api/v0/api_tokens", carol, Some(json!({})))
        .await;
    let token = tok["token"].as_str().unwrap().to_string();
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::OK);
    let (s, b) = server
        .call(
            Method::PATCH,
            "/api/v0/accounts/carol",
            ADMIN,
            Some(json!({"isActive": false, "fullName": "Carol"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["isActive"], &b["fullName"]),
        (&json!(false), &json!("Carol"))
    );
    assert_eq!(v2(&server, "carol", OLD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(v2(&server, "carol", &token).await, StatusCode::UNAUTHORIZED);
    let (s, _) = server
        .call(
            Method::PATCH,
            "/api/v0/accounts/carol",
            ADMIN,
            Some(json!({"isActive": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v2(&server, "carol", OLD).await, StatusCode::OK);
    // Only administrators change accounts, and not their own standing.
    let got = server
        .call(
            Method::PATCH,
            "/api/v0/accounts/carol",
            dave,
            Some(json!({"isAdmin": true})),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let got = server
        .call(
            Method::PATCH,
            "/api/v0/accounts/admin",
            ADMIN,
            Some(json!({"isActive": false})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_ACCOUNT",
        Some("isActive"),
    );
    assert_eq!(v2(&server, "admin", ADMIN_PASSWORD).await, StatusCode::OK);
    server.stop().await;
}
