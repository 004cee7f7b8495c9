//! Tokens stay revoked. The attack: the holder of a stolen token mints a
//! fresh token with it (or changes the password), or re-enables the token
//! after an administrator revoked it, and so outlives the revocation. Now
//! a request authenticated by a token cannot create tokens or change the
//! password (403), and only an administrator can re-enable a token an
//! administrator deactivated.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server::{ADMIN, Creds, TestServer, assert_error};

const PASSWORD: &str = "erin-pa55word";

async fn v2(server: &TestServer, secret: &str) -> StatusCode {
    server
        .call(Method::GET, "/v2/", Some(("erin", secret)), None)
        .await
        .0
}

/// `PATCH`es the token at `path` to `active` as `creds`.
async fn set_active(
    server: &TestServer,
    path: &str,
    creds: Creds<'_>,
    active: bool,
) -> (StatusCode, serde_json::Value) {
    server
        .call(
            Method::PATCH,
            path,
            creds,
            Some(json!({"isActive": active})),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_outlive_its_revocation() {
    let server = TestServer::start().await;
    server.create_user("erin", PASSWORD).await;
    let erin = Some(("erin", PASSWORD));
    let (s, tok) = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            erin,
            Some(json!({"tokenLabel": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let hashed = tok["hashedToken"].as_str().unwrap().to_string();
    let with_token = Some(("erin", token.as_str()));

    // The token reads, but cannot mint tokens nor change the password.
    let (s, _) = server
        .call(Method::GET, "/api/v0/api_tokens", with_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = server
        .call(
            Method::POST,
            "/api/v0/api_tokens",
            with_token,
            Some(json!({"tokenLabel": "spare"})),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    assert!(
        got.1["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("access token cannot create access tokens"),
        "{}",
        got.1
    );
    let got = server
        .call(
            Method::POST,
            "/api/v0/accounts/erin/changePassword",
            with_token,
            Some(json!({"oldPassword": PASSWORD, "newPassword": "taken-over-1"})),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let (_, list) = server
        .call(Method::GET, "/api/v0/api_tokens", erin, None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(v2(&server, PASSWORD).await, StatusCode::OK);

    // An administrator revokes it; its owner cannot bring it back.
    let as_admin = format!("/api/v0/api_tokens/{hashed}?username=erin");
    let as_owner = format!("/api/v0/api_tokens/{hashed}");
    let (s, b) = set_active(&server, &as_admin, ADMIN, false).await;
    assert_eq!((s, &b["isActive"]), (StatusCode::OK, &json!(false)), "{b}");
    assert_eq!(v2(&server, &token).await, StatusCode::UNAUTHORIZED);
    for body in [
        json!({"isActive": true}),
        json!({"isActive": true, "tokenLabel": "back"}),
    ] {
        let got = server
            .call(Method::PATCH, &as_owner, erin, Some(body))
            .await;
        assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
        assert_eq!(v2(&server, &token).await, StatusCode::UNAUTHORIZED);
    }
    // Revoking it again herself does not clear the administrator's mark.
    let (s, _) = set_active(&server, &as_owner, erin, false).await;
    assert_eq!(s, StatusCode::OK);
    let got = set_active(&server, &as_owner, erin, true).await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);

    // An administrator can re-enable it.
    let (s, b) = set_active(&server, &as_admin, ADMIN, true).await;
    assert_eq!((s, &b["isActive"]), (StatusCode::OK, &json!(true)), "{b}");
    assert_eq!(v2(&server, &token).await, StatusCode::OK);

    // The mark is kept across a restart.
    let (s, _) = set_active(&server, &as_admin, ADMIN, false).await;
    assert_eq!(s, StatusCode::OK);
    let server = server.restart().await;
    let got = set_active(&server, &as_owner, erin, true).await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    server.stop().await;
}
