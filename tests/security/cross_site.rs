//! Browsers cannot be made to act for another site (cross-site request
//! forgery). The attack: a page elsewhere posts `text/plain` shaped as JSON
//! to `/api/v0/accounts`, and a browser that holds the admin's Basic
//! credentials (cached after a login prompt) sends them along. Now:
//!
//! - `/api/v0` writes with a body need `Content-Type: application/json`
//!   (`415` otherwise), which no page can send cross-site without asking;
//! - writes with a foreign `Origin` (or `Sec-Fetch-Site: cross-site`) are
//!   refused (`403`), the server's own origin (its web page) is accepted;
//! - `/api/v0` answers 401 without `WWW-Authenticate`, so browsers never
//!   prompt and cache credentials; `/v2` keeps the challenge for docker;
//! - bodiless writes (cancel a job, delete) and reads need nothing more.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, TestServer, assert_error};

/// The attacker's body: JSON, declared as something else.
fn create_admin_body() -> String {
    json!({"name": "mallory", "password": "mallory-pa55word", "isAdmin": true}).to_string()
}

/// `POST /api/v0/accounts` as admin with `headers`: status and body.
async fn post_account(server: &TestServer, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut rb = server
        .request(Method::POST, "/api/v0/accounts", ADMIN)
        .body(create_admin_body());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn mallory_exists(server: &TestServer) -> bool {
    let (s, _) = server
        .call(Method::GET, "/api/v0/accounts/mallory", ADMIN, None)
        .await;
    s == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused() {
    let server = TestServer::start().await;
    let own_origin = server.url.clone();

    // Bodies a page of another site can send without asking: refused.
    for content_type in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let got = post_account(&server, &[("content-type", content_type)]).await;
        assert_error(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            Some("Content-Type"),
        );
    }
    let got = post_account(&server, &[]).await;
    assert_error(
        &got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        None,
    );
    // JSON from a foreign origin, or marked cross-site: refused too.
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let mut headers = headers;
        headers.push(("content-type", "application/json"));
        let got = post_account(&server, &headers).await;
        assert_error(&got, StatusCode::FORBIDDEN, "FOREIGN_ORIGIN", None);
    }
    assert!(!mallory_exists(&server).await, "the forged request acted");

    // The server's own page (same origin, JSON) works.
    let (s, b) = post_account(
        &server,
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(mallory_exists(&server).await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodiless_writes_and_reads_need_no_content_type() {
    let server = TestServer::start().await;
    server.create_repo("acme", "gone", "private").await;
    // A bodiless POST (cancel) reaches its handler: a missing job is 404.
    let resp = server
        .request(Method::POST, "/api/v0/jobs/no-such-job/cancel", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = server
        .request(Method::DELETE, "/api/v0/repositories/acme/gone", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Reads are not guarded (browsers keep other sites from reading them).
    let resp = server
        .request(Method::GET, "/api/v0/repositories", ADMIN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_v2_challenges_for_credentials() {
    let server = TestServer::start().await;
    for path in ["/api/v0/repositories", "/api/v0/accounts/admin"] {
        for creds in [None, Some(("admin", "wrong-password"))] {
            let resp = server
                .request(Method::GET, path, creds)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(
                !resp.headers().contains_key("www-authenticate"),
                "{path}: a challenge makes browsers prompt and cache credentials"
            );
        }
    }
    let resp = server
        .request(Method::GET, "/v2/", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // DTR's Bearer challenge (browsers never prompt for it), naming the
    // token endpoint at the origin the client used.
    assert_eq!(
        resp.headers()["www-authenticate"],
        format!(
            "Bearer realm=\"{}/auth/token\",service=\"regmirror\"",
            server.url
        )
    );
    // A forwarded host is believed from trusted proxies only (none here),
    // and a Host that is not a plain `host[:port]` never reaches the
    // quoted realm.
    for (name, value) in [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("host", "evil.example\",error=\"x"),
        ("host", "user@evil.example"),
    ] {
        let resp = server
            .request(Method::GET, "/v2/", None)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            !challenge.contains("evil") && !challenge.contains("https"),
            "{name}: {value} → {challenge}"
        );
    }
    server.stop().await;
}
