//! Webhooks (issue 16): subscriptions through DTR's `/api/v0/webhooks`,
//! deliveries to a receiver the test starts on loopback (an axum server
//! recording each request), in DTR's envelope, signed with the hook's
//! secret; retries with backoff and the delivery log; a receiver that
//! hangs is cut off; pending deliveries outlive a restart; who may
//! subscribe; the remote-host guard; `PUSH_MIRRORING` from a real push
//! mirroring policy (to Debian's `docker-registry`); `REPO_EVENT`,
//! `MANIFEST_PUSH` and `TAG_PUSH` from pulls through a proxy cache.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::server::{ADMIN_PASSWORD, TestServer};
use crate::support::images::{ImageSpec, Pusher};
use crate::support::registry::Registry;

const SECRET: &str = "hook-s3cret-value";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

#[derive(Default)]
struct Script {
    got: Vec<Got>,
    /// Statuses to answer, in order; then 200.
    answers: VecDeque<u16>,
    /// Never answer.
    hang: bool,
}

/// A webhook receiver on `127.0.0.1:0`.
#[derive(Clone)]
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let (hang, status) = {
        let mut s = script.lock().unwrap();
        s.got.push(Got {
            headers,
            body: body.to_vec(),
        });
        (s.hang, s.answers.pop_front().unwrap_or(200))
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    axum::http::StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start(answers: &[u16], hang: bool) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            got: Vec::new(),
            answers: answers.iter().copied().collect(),
            hang,
        }));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.script.lock().unwrap().got.clone()
    }

    /// Waits (at most `within`) until `n` requests came; all of them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries came: {:?}",
                got.len(),
                got.iter()
                    .map(|g| String::from_utf8_lossy(&g.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// HMAC-SHA256 (RFC 2104), written here from the definition rather than
/// taken from the server, as a receiver would.
fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(body);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

/// A server whose deliveries retry quickly.
async fn fast_server() -> TestServer {
    fast_server_with(|_| {}).await
}

/// [`fast_server`], configured further by `f`.
async fn fast_server_with(f: impl FnOnce(&mut mirror_server::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.webhooks.retry_base = Duration::from_millis(200);
        c.webhooks.poll_interval = Duration::from_millis(100);
        c.webhooks.timeout = Duration::from_secs(2);
        c.webhooks.registry_host = Some("registry.test".into());
        f(c);
    })
    .await
}

/// Creates a webhook as the administrator; its JSON.
async fn subscribe(server: &TestServer, kind: &str, key: &str, endpoint: &str) -> Value {
    let form = json!({"type": kind, "key": key, "endpoint": endpoint, "secret": SECRET,
                      "tlsCert": "", "skipTLSVerification": false, "unknownField": 1});
    let created = server.admin().post("/api/v0/webhooks").json(&form).await;
    created.expect(StatusCode::CREATED).json()
}

/// The delivery log of `hook`, newest first.
async fn deliveries(server: &TestServer, hook: &str) -> Vec<Value> {
    let path = format!("/api/v0/webhooks/{hook}/deliveries");
    let log = server.admin().get(path).await.expect(StatusCode::OK).json();
    log.as_array().unwrap().clone()
}

/// Waits until `hook`'s newest delivery is no longer pending; it.
async fn settled(server: &TestServer, hook: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let log = deliveries(server, hook).await;
        if let Some(d) = log.first()
            && d["status"] != "pending"
        {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "still pending: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_is_delivered_once_signed_in_dtrs_envelope() {
    let up = Registry::plain().await;
    up.pusher()
        .push_image("team/app", "v1", ImageSpec::small("mirrored"))
        .await;
    let server = fast_server().await;
    let r = Receiver::start(&[], false).await;
    let elsewhere = Receiver::start(&[], false).await;
    // `acme` and `mirrors` are namespaces once they hold a repository.
    server.create_repo("acme", "keep", "private").await;
    server.create_repo("mirrors", "other", "private").await;
    let mut hooks = std::collections::BTreeMap::new();
    for kind in [
        "TAG_PUSH",
        "TAG_DELETE",
        "MANIFEST_PUSH",
        "MANIFEST_DELETE",
        "REPO_EVENT",
    ] {
        let hook = subscribe(&server, kind, "acme", &r.url).await;
        assert_eq!(hook["key"], "acme");
        assert_eq!(hook["hasSecret"], true);
        assert!(hook.get("secret").is_none(), "{hook}");
        hooks.insert(kind, hook["id"].as_str().unwrap().to_string());
    }
    let policy = server
        .add_policy("mirrors/app", &up.url(), "team/app")
        .await;
    let poll_hook = subscribe(&server, "POLL_MIRRORING", "mirrors/app", &r.url).await;
    // Another namespace's hook hears nothing of `acme`.
    subscribe(&server, "TAG_PUSH", "mirrors", &elsewhere.url).await;

    // REPO_EVENT (created), TAG_PUSH + MANIFEST_PUSH, then a delete by
    // digest: TAG_DELETE + MANIFEST_DELETE, then REPO_EVENT (deleted).
    server.create_repo("acme", "app", "private").await;
    let pusher = Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    );
    let pushed = pusher
        .push_image("acme/app", "v1", ImageSpec::small("pushed"))
        .await;
    let delete = format!("/v2/acme/app/manifests/{}", pushed.digest);
    server
        .admin()
        .delete(delete)
        .await
        .expect(StatusCode::ACCEPTED);
    let gone = server.admin().delete("/api/v0/repositories/acme/app").await;
    gone.expect(StatusCode::NO_CONTENT);
    // POLL_MIRRORING: one tag mirrored into `mirrors/app`.
    let job = server.submit_poll(Some(&policy)).await;
    assert_eq!(server.wait_done(&job).await["status"], "done");

    let got = r.wait_for(7, Duration::from_secs(30)).await;
    // Nothing more comes (each event once).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_now = r.got();
    assert_eq!(got_now.len(), 7, "{got_now:?}");
    assert!(elsewhere.got().is_empty());
    let mut by_type: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for g in &got {
        let body = g.json();
        let kind = body["type"].as_str().unwrap().to_string();
        assert_eq!(g.header("x-regmirror-event"), kind);
        assert!(!g.header("x-regmirror-delivery").is_empty());
        assert_eq!(g.header("content-type"), "application/json");
        let expected = format!("sha256={}", hmac_hex(SECRET.as_bytes(), &g.body));
        assert_eq!(g.header("x-regmirror-signature"), expected, "{kind}");
        assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
        by_type
            .entry(kind)
            .or_default()
            .push(body["contents"].clone());
    }
    let counts: Vec<(&str, usize)> = by_type.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(
        counts,
        [
            ("MANIFEST_DELETE", 1),
            ("MANIFEST_PUSH", 1),
            ("POLL_MIRRORING", 1),
            ("REPO_EVENT", 2),
            ("TAG_DELETE", 1),
            ("TAG_PUSH", 1),
        ]
    );
    let push = &by_type["TAG_PUSH"][0];
    assert_eq!(push["namespace"], "acme");
    assert_eq!(push["repository"], "app");
    assert_eq!(push["tag"], "v1");
    assert_eq!(push["digest"], pushed.digest);
    assert_eq!(push["imageName"], "registry.test/acme/app:v1");
    assert_eq!(push["author"], "admin");
    assert_eq!(push["os"], "linux");
    assert_eq!(push["architecture"], "amd64");
    assert!(push["pushedAt"].is_string());
    let deleted = &by_type["TAG_DELETE"][0];
    assert_eq!(deleted["tag"], "v1");
    assert_eq!(deleted["digest"], pushed.digest);
    assert!(deleted["deletedAt"].is_string());
    assert_eq!(by_type["MANIFEST_DELETE"][0]["digest"], pushed.digest);
    let repo_events: Vec<&Value> = by_type["REPO_EVENT"].iter().map(|c| &c["event"]).collect();
    assert_eq!(
        repo_events,
        [&json!("REPO_CREATED"), &json!("REPO_DELETED")]
    );
    assert_eq!(by_type["REPO_EVENT"][0]["author"], "admin");
    let polled = &by_type["POLL_MIRRORING"][0];
    assert_eq!(polled["namespace"], "mirrors");
    assert_eq!(polled["tag"], "v1");
    assert_eq!(polled["policyID"], policy);
    assert!(
        polled["remoteRepository"]
            .as_str()
            .unwrap()
            .ends_with("team/app")
    );

    // The log: one delivered attempt, the receiver's 200; the hook's
    // `lastSuccessfulAt` is set; the secret is never shown.
    let log = deliveries(&server, &hooks["TAG_PUSH"]).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["statusCode"], 200);
    assert_eq!(log[0]["type"], "TAG_PUSH");
    let listed = server.admin().get("/api/v0/webhooks").await;
    let text = listed.expect(StatusCode::OK).text();
    assert!(!text.contains(SECRET));
    let all: Value = serde_json::from_str(&text).unwrap();
    let push_hook = all
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hooks["TAG_PUSH"].as_str())
        .unwrap();
    assert!(push_hook["lastSuccessfulAt"].is_string(), "{push_hook}");
    let per_repo = server
        .admin()
        .get("/api/v0/repositories/mirrors/app/webhooks")
        .await;
    let per_repo = per_repo.expect(StatusCode::OK).json();
    assert_eq!(per_repo.as_array().unwrap().len(), 1);
    assert_eq!(per_repo[0]["id"], poll_hook["id"]);
    let per_ns = server.admin().get("/api/v0/accounts/acme/webhooks").await;
    assert_eq!(
        per_ns
            .expect(StatusCode::OK)
            .json()
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // PUSH_MIRRORING (and any type): the test call sends its sample now.
    let test = json!({"type": "PUSH_MIRRORING", "endpoint": r.url, "secret": SECRET});
    let sent = server
        .admin()
        .post("/api/v0/webhooks/test")
        .json(&test)
        .await;
    let result = sent.expect(StatusCode::OK).json();
    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(result["statusCode"], 200);
    let sample = r.got().pop().unwrap();
    assert_eq!(sample.json()["type"], "PUSH_MIRRORING");
    assert!(sample.json()["contents"]["remoteRepository"].is_string());
    let expected = format!("sha256={}", hmac_hex(SECRET.as_bytes(), &sample.body));
    assert_eq!(sample.header("x-regmirror-signature"), expected);

    // Deleting a hook: 204, then 404 NO_SUCH_WEBHOOK.
    let path = format!("/api/v0/webhooks/{}", hooks["TAG_PUSH"]);
    server
        .admin()
        .delete(&path)
        .await
        .expect(StatusCode::NO_CONTENT);
    let again = server.admin().delete(&path).await;
    again.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_WEBHOOK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_is_retried_and_the_log_shows_each_attempt() {
    let server = fast_server().await;
    let flaky = Receiver::start(&[500, 500], false).await;
    let refusing = Receiver::start(&[404], false).await;
    let retried = subscribe(&server, "REPO_EVENT", "", &flaky.url).await;
    let refused = subscribe(&server, "REPO_EVENT", "", &refusing.url).await;
    server.create_repo("acme", "app", "private").await;

    let got = flaky.wait_for(3, Duration::from_secs(20)).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|g| g.header("x-regmirror-delivery"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one delivery: {ids:?}");
    assert!(got.iter().all(|g| g.body == got[0].body));
    let d = settled(
        &server,
        retried["id"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["statusCode"], 200);
    assert!(d["deliveredAt"].is_string());

    // A 404 is not retried.
    let d = settled(
        &server,
        refused["id"].as_str().unwrap(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["statusCode"], 404);
    assert!(d["error"].as_str().unwrap().contains("404"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(refusing.got().len(), 1);

    // An inactive hook gets nothing; reactivated, it does again.
    let id = retried["id"].as_str().unwrap();
    let off = json!({"id": id, "inactive": true});
    let changed = server
        .admin()
        .post("/api/v0/webhooks/update")
        .json(&off)
        .await;
    assert_eq!(changed.expect(StatusCode::OK).json()["inactive"], true);
    server.create_repo("acme", "quiet", "private").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(flaky.got().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_is_cut_off_and_given_up_on() {
    let server = TestServer::start_with(|c| {
        c.webhooks.retry_base = Duration::from_millis(100);
        c.webhooks.poll_interval = Duration::from_millis(100);
        c.webhooks.timeout = Duration::from_secs(1);
        c.webhooks.max_attempts = 2;
    })
    .await;
    let hanging = Receiver::start(&[], true).await;
    let hook = subscribe(&server, "REPO_EVENT", "admin", &hanging.url).await;
    let started = Instant::now();
    server.create_repo("admin", "app", "private").await;
    let d = settled(
        &server,
        hook["id"].as_str().unwrap(),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 2);
    assert!(d["statusCode"].is_null());
    assert!(d["error"].as_str().unwrap().contains("no answer"), "{d}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(hanging.got().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_admins_subscribe_to_their_repositories_only() {
    let server = fast_server().await;
    server.create_repo("acme", "app", "private").await;
    for user in ["owner", "writer"] {
        server.create_user(user, &format!("{user}-pa55word")).await;
    }
    server.grant("acme/app", "owner", "admin").await;
    server.grant("acme/app", "writer", "read-write").await;
    let owner = server.api().creds(Some(("owner", "owner-pa55word")));
    let writer = server.api().creds(Some(("writer", "writer-pa55word")));
    let form = json!({"type": "TAG_PUSH", "key": "acme/app", "endpoint": "http://127.0.0.1:9/x"});

    server
        .api()
        .post("/api/v0/webhooks")
        .json(&form)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    writer
        .post("/api/v0/webhooks")
        .json(&form)
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    let hook = owner.post("/api/v0/webhooks").json(&form).await;
    let hook = hook.expect(StatusCode::CREATED).json();
    // Every repository, or another namespace: administrators only.
    let everything = json!({"type": "TAG_PUSH", "endpoint": "http://127.0.0.1:9/x"});
    owner
        .post("/api/v0/webhooks")
        .json(&everything)
        .await
        .expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    // What each sees.
    let mine = owner
        .get("/api/v0/webhooks")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], hook["id"]);
    let theirs = writer
        .get("/api/v0/webhooks")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(theirs, json!([]));
    let path = format!("/api/v0/webhooks/{}", hook["id"].as_str().unwrap());
    writer
        .delete(&path)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NO_SUCH_WEBHOOK");

    // Each bad field is named.
    for (field, bad) in [
        (
            "type",
            json!({"type": "TAG_PULL", "key": "acme/app", "endpoint": "http://127.0.0.1:9/x"}),
        ),
        (
            "endpoint",
            json!({"type": "TAG_PUSH", "key": "acme/app", "endpoint": "ftp://127.0.0.1/x"}),
        ),
        (
            "key",
            json!({"type": "TAG_PUSH", "key": "acme/missing", "endpoint": "http://127.0.0.1:9/x"}),
        ),
        (
            "key",
            json!({"type": "TAG_PUSH", "key": "nobody-here", "endpoint": "http://127.0.0.1:9/x"}),
        ),
    ] {
        let refused = server.admin().post("/api/v0/webhooks").json(&bad).await;
        refused.expect(StatusCode::BAD_REQUEST).expect_field(field);
    }
    owner.delete(&path).await.expect(StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_host_guard_refuses_endpoints_it_forbids() {
    let server = TestServer::start_with(|c| {
        c.remote_guard = mirror_core::remote::RemoteGuard::new(Vec::<String>::new(), true).unwrap();
    })
    .await;
    let r = Receiver::start(&[], false).await;
    for endpoint in [r.url.as_str(), "http://169.254.169.254/latest/meta-data"] {
        let form = json!({"type": "TAG_PUSH", "key": "admin", "endpoint": endpoint});
        let refused = server.admin().post("/api/v0/webhooks").json(&form).await;
        refused
            .expect(StatusCode::BAD_REQUEST)
            .expect_field("endpoint");
        let test = json!({"type": "TAG_PUSH", "endpoint": endpoint});
        let refused = server
            .admin()
            .post("/api/v0/webhooks/test")
            .json(&test)
            .await;
        refused
            .expect(StatusCode::BAD_REQUEST)
            .expect_field("endpoint");
    }
    // A name that resolves to loopback passes the URL check but not the
    // resolved-address check at delivery.
    let by_name = r.url.replace("127.0.0.1", "localhost");
    let test = json!({"type": "TAG_PUSH", "endpoint": by_name});
    let sent = server
        .admin()
        .post("/api/v0/webhooks/test")
        .json(&test)
        .await;
    let result = sent.expect(StatusCode::OK).json();
    assert_eq!(result["delivered"], false, "{result}");
    assert!(r.got().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_outlives_a_restart() {
    let server = TestServer::start_with(|c| {
        c.webhooks.retry_base = Duration::from_secs(3600);
        c.webhooks.poll_interval = Duration::from_millis(100);
    })
    .await;
    let down = Receiver::start(&[503], false).await;
    let hook = subscribe(&server, "REPO_EVENT", "admin", &down.url).await;
    let id = hook["id"].as_str().unwrap().to_string();
    server.create_repo("admin", "app", "private").await;
    down.wait_for(1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while deliveries(&server, &id).await[0]["attempts"] != 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server = server.restart().await;
    let log = deliveries(&server, &id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["statusCode"], 503);
    assert!(log[0]["nextAttemptAt"].is_string());
    // Its own hooks go with a deleted repository.
    let own = subscribe(&server, "TAG_PUSH", "admin/app", &down.url).await;
    let gone = server
        .admin()
        .delete("/api/v0/repositories/admin/app")
        .await;
    gone.expect(StatusCode::NO_CONTENT);
    let path = format!(
        "/api/v0/webhooks/{}/deliveries",
        own["id"].as_str().unwrap()
    );
    let missing = server.admin().get(path).await;
    missing.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_WEBHOOK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_mirroring_policy_delivers_push_mirroring() {
    let remote = Registry::builder()
        .auth(crate::support::Auth::htpasswd("push-bot", "push-s3cret"))
        .start()
        .await;
    let server = fast_server().await;
    server.create_repo("src", "app", "private").await;
    let r = Receiver::start(&[], false).await;
    subscribe(&server, "PUSH_MIRRORING", "src/app", &r.url).await;
    let form = json!({
        "remoteHost": remote.url(), "remoteRepository": "team/pushed",
        "username": "push-bot", "password": "push-s3cret", "enabled": true,
    });
    let path = "/api/v0/repositories/src/app/pushMirroringPolicies";
    let policy = server.admin().post(path).json(&form).await;
    let policy = policy.expect(StatusCode::CREATED).json();
    let pusher = Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    );
    let pushed = pusher
        .push_image("src/app", "v1", ImageSpec::small("pushed on"))
        .await;
    let got = r.wait_for(1, Duration::from_secs(120)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "PUSH_MIRRORING", "{body}");
    let c = &body["contents"];
    assert_eq!(c["namespace"], "src");
    assert_eq!(c["repository"], "app");
    assert_eq!(c["tag"], "v1");
    assert_eq!(c["remoteTag"], "v1");
    assert_eq!(c["digest"], pushed.digest);
    assert_eq!(c["policyID"], policy["id"]);
    assert!(
        c["remoteRepository"]
            .as_str()
            .unwrap()
            .ends_with("team/pushed")
    );
    let expected = format!("sha256={}", hmac_hex(SECRET.as_bytes(), &got[0].body));
    assert_eq!(got[0].header("x-regmirror-signature"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_a_proxy_cache_deliver_repo_manifest_and_tag_events() {
    let up = Registry::plain().await;
    let pushed = up
        .pusher()
        .push_image("library/hooked", "1", ImageSpec::small("cached"))
        .await;
    let server = fast_server_with(|c| {
        c.proxy_caches = vec![mirror_core::proxy_cache::ProxyCacheForm {
            namespace: Some("hub".into()),
            remote_host: Some(up.url()),
            ..Default::default()
        }];
    })
    .await;
    let r = Receiver::start(&[], false).await;
    // A cache's namespace takes subscriptions before anything was pulled.
    for kind in ["REPO_EVENT", "MANIFEST_PUSH", "TAG_PUSH"] {
        subscribe(&server, kind, "hub", &r.url).await;
    }
    let pull = || async {
        let resp = server
            .request(
                reqwest::Method::GET,
                "/v2/hub/library/hooked/manifests/1",
                Some(("admin", ADMIN_PASSWORD)),
            )
            .header("accept", crate::support::images::MANIFEST_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    };
    pull().await;
    let got = r.wait_for(3, Duration::from_secs(60)).await;
    let mut kinds: Vec<_> = got.iter().map(|g| g.json()["type"].clone()).collect();
    kinds.sort_by_key(|k| k.to_string());
    assert_eq!(
        kinds,
        [
            json!("MANIFEST_PUSH"),
            json!("REPO_EVENT"),
            json!("TAG_PUSH")
        ]
    );
    let tag = got
        .iter()
        .map(Got::json)
        .find(|b| b["type"] == "TAG_PUSH")
        .unwrap();
    let c = &tag["contents"];
    assert_eq!(c["namespace"], "hub", "{tag}");
    assert_eq!(c["repository"], "library/hooked", "{tag}");
    assert_eq!(c["tag"], "1", "{tag}");
    assert_eq!(c["digest"], pushed.digest, "{tag}");
    // Served from the cache the second time: nothing new happened.
    pull().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.got().len(), 3);
}
