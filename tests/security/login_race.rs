//! The login limit cannot be raced: an attempt is counted before its
//! password is verified, so 200 concurrent guesses at one user get at most
//! `max_failures` (10) Argon2id checks and the rest `429`; and an unknown
//! user costs an Argon2id check like a known one, so answer times do not
//! tell which user names exist. Checks are counted by
//! `regmirror_password_checks_total` at `/metrics`.

use reqwest::{Method, StatusCode};

use crate::server::{ADMIN, TestServer};

const ALICE: &str = "alice-correct-horse";

/// Argon2id verifications the server has run so far.
async fn password_checks(server: &TestServer) -> u64 {
    let resp = server
        .request(Method::GET, "/metrics", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("regmirror_password_checks_total "))
        .unwrap_or_else(|| panic!("no password check counter in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_outrun_the_limit() {
    let server = TestServer::start().await;
    server.create_user("alice", ALICE).await;
    // The admin's own check is done (and remembered) before counting.
    let before = password_checks(&server).await;

    let guesses: Vec<_> = (0..200)
        .map(|i| {
            let password = format!("guess-{i}");
            tokio::spawn(
                server
                    .request(Method::GET, "/v2/", Some(("alice", password.as_str())))
                    .send(),
            )
        })
        .collect();
    let (mut wrong, mut limited) = (0, 0);
    for g in guesses {
        match g.await.unwrap().unwrap().status() {
            StatusCode::UNAUTHORIZED => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    let checked = password_checks(&server).await - before;
    assert!(
        (1..=10).contains(&checked),
        "{checked} of 200 concurrent guesses were verified (limit 10)"
    );
    assert_eq!(wrong, checked, "each verified guess is a 401");
    assert_eq!(wrong + limited, 200);

    // Locked out now: the right password is refused, and not checked.
    let resp = server
        .request(Method::GET, "/v2/", Some(("alice", ALICE)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(password_checks(&server).await - before, checked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_costs_a_password_check_like_a_known_one() {
    let server = TestServer::start().await;
    server.create_user("alice", ALICE).await;
    let status = |user: &'static str, password: &'static str| {
        let server = &server;
        async move {
            server
                .request(Method::GET, "/v2/", Some((user, password)))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let before = password_checks(&server).await;
    assert_eq!(status("alice", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(password_checks(&server).await, before + 1);
    assert_eq!(status("nobody", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        password_checks(&server).await,
        before + 2,
        "an unknown user was answered without an Argon2id check"
    );
    // And it is limited like a known one (10 failures, then 429).
    for _ in 0..9 {
        assert_eq!(status("nobody", "wrong").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        status("nobody", "wrong").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;
}
