//! Login rate limiting: 10 failures of one user from one address within
//! 5 minutes refuse that user from that address (429 with `Retry-After`),
//! on `/v2` and `/api/v0` alike, even with the right password; other
//! users and other addresses go on; a success resets the count; correct
//! logins are not slowed. Behind a trusted reverse proxy the client address
//! comes from `X-Forwarded-For`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::server::TestServer;

const ALICE: &str = "alice-correct-horse";
const BOB: &str = "bob-battery-staple";

/// A client whose connections come from `ip` (any 127.0.0.0/8 address
/// works on loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `GET path` as `user:password`: status, `Retry-After`, body.
async fn login(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    user: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    let resp = client
        .request(Method::GET, format!("{}{path}", server.url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_user_and_address() {
    let server = TestServer::start().await;
    server.create_user("alice", ALICE).await;
    server.create_user("bob", BOB).await;
    let a = client_from("127.0.0.1");
    let b = client_from("127.0.0.2");

    // Nine failures, then a success: the success resets the count.
    for _ in 0..9 {
        let (s, _, _) = login(&server, &a, "/v2/", "alice", "wrong").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&server, &a, "/v2/", "alice", ALICE).await.0,
        StatusCode::OK
    );
    // Ten more failures are still answered 401 (wrong password)...
    for i in 0..10 {
        let (s, _, _) = login(&server, &a, "/v2/", "alice", &format!("guess{i}")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    // ...then alice is refused from this address, right password or not,
    // without the password being checked.
    for password in ["guess10", ALICE] {
        let (s, retry, body) = login(&server, &a, "/v2/", "alice", password).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
        let retry = retry.expect("Retry-After");
        assert!((1..=300).contains(&retry), "{retry}");
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS", "{body}");
    }
    let (s, retry, body) = login(&server, &a, "/api/v0/repositories", "alice", ALICE).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some());
    assert_eq!(body["errors"][0]["code"], "TOO_MANY_REQUESTS", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("try again"),
        "{body}"
    );

    // Another user on the same address, and the same user on another
    // address, are unaffected.
    assert_eq!(
        login(&server, &a, "/v2/", "bob", BOB).await.0,
        StatusCode::OK
    );
    assert_eq!(
        login(&server, &a, "/v2/", "bob", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server, &b, "/v2/", "alice", ALICE).await.0,
        StatusCode::OK
    );
    assert_eq!(
        login(&server, &b, "/api/v0/repositories", "alice", ALICE)
            .await
            .0,
        StatusCode::OK
    );
    // Anonymous requests are not refused by it.
    let anon = a.get(format!("{}/v2/", server.url)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Behind a trusted reverse proxy, failures count under the client address
/// the proxy reports in `X-Forwarded-For`; from any other peer the header
/// is ignored, so a client cannot pick a fresh address for every guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_client_address_is_believed_only_from_trusted_proxies() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies =
            mirror_server::client_ip::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    server.create_user("alice", ALICE).await;
    let proxy = client_from("127.0.0.1");
    let other = client_from("127.0.0.2");
    let via = |client: &reqwest::Client, forwarded: &str, password: &str| {
        client
            .get(format!("{}/v2/", server.url))
            .basic_auth("alice", Some(password))
            .header("X-Forwarded-For", forwarded)
            .send()
    };

    // Ten failures of a client behind the proxy lock out that client...
    for i in 0..10 {
        let r = via(&proxy, "203.0.113.5", &format!("guess{i}"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let r = via(&proxy, "203.0.113.5", ALICE).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...and only that client: another one behind the same proxy, and the
    // proxy's own address, log in.
    let r = via(&proxy, "198.51.100.7", ALICE).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        login(&server, &proxy, "/v2/", "alice", ALICE).await.0,
        StatusCode::OK
    );
    // A spoofed entry on the left does not help: the proxy appends the
    // address it saw, and that one is counted.
    let r = via(&proxy, "192.0.2.99, 203.0.113.5", ALICE).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // An untrusted peer's header is ignored: a new address per guess
    // still counts against the peer.
    for i in 0..10 {
        let r = via(&other, &format!("192.0.2.{i}"), "wrong").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let r = via(&other, "192.0.2.200", ALICE).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

/// The limit costs correct logins nothing: no sleep, no extra hashing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_does_not_slow_correct_logins() {
    let server = TestServer::start().await;
    server.create_user("bob", BOB).await;
    let a = client_from("127.0.0.1");
    let time_logins = |n: usize| {
        let (server, a) = (&server, &a);
        async move {
            let start = Instant::now();
            for _ in 0..n {
                assert_eq!(login(server, a, "/v2/", "bob", BOB).await.0, StatusCode::OK);
            }
            start.elapsed()
        }
    };
    time_logins(1).await; // the first login verifies the hash
    let before = time_logins(20).await;
    // Failures of bob just under the limit, and of many other names from
    // this address.
    for i in 0..9 {
        login(&server, &a, "/v2/", "bob", &format!("wrong{i}")).await;
        login(&server, &a, "/v2/", &format!("nobody{i}"), "x").await;
    }
    let after = time_logins(20).await;
    assert!(
        after < before * 3 + Duration::from_millis(300),
        "20 correct logins took {before:?} before the failures, {after:?} after"
    );
    server.stop().await;
}
