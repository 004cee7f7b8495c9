//! Scale-out: the server's own stores on PostgreSQL (`support::postgres`,
//! one server for this binary, a database per test), and two or three
//! in-process servers on one database and one moto bucket behaving as one
//! registry.
//!
//! - The server store conformance checks, on SQLite and on PostgreSQL.
//! - Server migrations: concurrent starts apply each step once; a newer
//!   schema is refused.
//! - Three replicas: accounts, tokens, repositories, policies, jobs and
//!   pushed images of one are the others' (a policy saved through A,
//!   polled by whichever claims it, pulled whole from C); a cron due every
//!   second fires about once a second in all, not once per replica.
//! - A token deactivated through one replica is refused by another
//!   within `accounts::RECENT_TTL`.
//! - A chunked push (by hand and by skopeo) through a load balancer that
//!   sends each request to the other replica succeeds, and an unfinished
//!   push outlives the replica it started on.

use std::path::Path;
use std::time::{Duration, Instant};

use mirror_server::config::BlobStoreConfig;
use mirror_server::store::{PgServerStore, ServerStores, conformance};
use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo};
use crate::support::fault_proxy::FaultProxy;
use crate::support::http::Api;
use crate::support::images::ImageSpec;
use crate::support::policies::add_policy;
use crate::support::postgres::PgServer;
use crate::support::registry::Registry;
use crate::support::s3::S3Server;

#[tokio::test]
async fn server_stores_conform_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = ServerStores::sqlite(dir.path()).unwrap();
    conformance::all(&sqlite).await;
    let url = PgServer::shared().database().await;
    let pg = ServerStores::postgres(&url, 4).await.unwrap();
    conformance::all(&pg).await;
}

#[tokio::test]
async fn server_migrations_run_once_and_refuse_a_newer_schema() {
    let pg = PgServer::shared();
    let url = pg.database().await;
    // Replicas starting at once: each step once, both connect.
    let (a, b) = tokio::join!(
        PgServerStore::connect(&url, 2),
        PgServerStore::connect(&url, 2)
    );
    a.unwrap();
    b.unwrap();
    let steps = pg
        .psql(
            &url,
            "SELECT count(*) FROM regmirror_server_schema_migrations",
        )
        .await;
    assert_eq!(steps, "4");
    // A database the previous release left (at step 1: without the shared
    // upload sessions, organizations and webhooks) is upgraded at start.
    pg.psql(
        &url,
        "DROP TABLE webhook_deliveries, webhooks, team_access, team_members, teams, org_members, organizations, blob_uploads;
         DELETE FROM regmirror_server_schema_migrations WHERE version >= 2",
    )
    .await;
    let store = PgServerStore::connect(&url, 2).await.unwrap();
    let steps = pg
        .psql(&url, "SELECT string_agg(version::text, ',' ORDER BY version) FROM regmirror_server_schema_migrations")
        .await;
    assert_eq!(steps, "1,2,3,4");
    assert_eq!(
        mirror_server::store::UploadStore::upload_counts(&store, "x")
            .await
            .unwrap(),
        (0, 0)
    );
    pg.psql(
        &url,
        "INSERT INTO regmirror_server_schema_migrations (version, what) VALUES (99, 'future')",
    )
    .await;
    let e = PgServerStore::connect(&url, 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("newer than this build knows"), "{e}");
    assert!(!e.contains(pg.password()), "the URL's password in {e}");
}

/// The key every replica of a test seals secrets with (as
/// `MIRROR_SECRET_KEY` would be, without changing this process's
/// environment for the other tests).
const SHARED_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

fn share_key(data_dir: &Path) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(data_dir.join("secret.key"))
        .unwrap();
    std::io::Write::write_all(&mut f, SHARED_KEY.as_bytes()).unwrap();
}

/// `n` servers on one new database, blobs in one bucket (prefix `p`).
async fn replicas(n: usize) -> Vec<TestServer> {
    let url = PgServer::shared().database().await;
    let bucket = S3Server::shared().bucket().await;
    let start = || {
        let (url, options) = (url.clone(), bucket.options("p"));
        TestServer::start_with(move |c| {
            share_key(&c.data_dir);
            c.database_url = Some(url.into());
            c.database_pool_size = 4;
            c.blob_store = BlobStoreConfig::S3(Box::new(options));
        })
    };
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(start().await);
    }
    servers
}

/// Two replicas ([`replicas`]).
async fn two_replicas() -> (TestServer, TestServer) {
    let mut r = replicas(2).await;
    let b = r.pop().unwrap();
    (r.pop().unwrap(), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behave_as_one_registry() {
    let up = Registry::plain().await;
    let image = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("replicated"))
        .await;
    let mut three = replicas(3).await;
    let (c, b, a) = (
        three.pop().unwrap(),
        three.pop().unwrap(),
        three.pop().unwrap(),
    );
    assert!(
        !a.data_dir().join("regmirror.db").exists() && !a.data_dir().join("server.db").exists(),
        "no SQLite file with a database URL"
    );

    // An account and its token, created on A, log in on B.
    a.create_user("carol", "carol-pa55word").await;
    let carol_a = a.api().creds(Some(("carol", "carol-pa55word")));
    let token = carol_a
        .post("/api/v0/api_tokens")
        .json(&json!({"tokenLabel": "ci"}))
        .await;
    let token = token.expect(StatusCode::OK).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for creds in [("carol", "carol-pa55word"), ("carol", token.as_str())] {
        let me = b.api().creds(Some(creds)).get("/api/v0/api_tokens").await;
        me.expect(StatusCode::OK);
    }

    // A repository and a policy created on A are B's.
    a.create_repo("mirrors", "app", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "team/app"});
    let policy = add_policy(&a.admin(), "mirrors/app", &form).await;
    let listed = b
        .admin()
        .get("/api/v0/repositories/mirrors/app/pollMirroringPolicies")
        .await;
    let listed = listed.expect(StatusCode::OK).json();
    assert_eq!(listed[0]["id"], policy.as_str(), "{listed}");

    // A poll submitted on B runs once, on either replica.
    let job = b.submit_poll(Some(&policy)).await;
    b.wait_done(&job).await;
    let done = a.admin().get(format!("/api/v0/jobs/{job}")).await;
    assert_eq!(done.expect(StatusCode::OK).json()["status"], "done");
    let polls = a
        .admin()
        .get("/api/v0/jobs?action=poll_mirror&limit=100")
        .await;
    let polls = polls.expect(StatusCode::OK).json();
    assert_eq!(polls["jobs"].as_array().unwrap().len(), 1, "{polls}");

    // Mirrored through B (or A), read from A; pushed to A, pulled from B.
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let inspect = |server: &TestServer, repo: &str| {
        vec![
            "inspect".to_string(),
            "--raw".into(),
            format!("--creds={creds}"),
            "--tls-verify=false".into(),
            format!("docker://{}/{repo}:v1", server.host_port),
        ]
    };
    assert_eq!(
        sha256(&skopeo(inspect(&a, "mirrors/app")).await),
        image.digest
    );
    a.create_repo("mirrors", "pushed", "private").await;
    push_pushed_v1(&up, &a.host_port).await;
    assert_eq!(
        sha256(&skopeo(inspect(&b, "mirrors/pushed")).await),
        image.digest
    );
    // Saved through A, polled by whichever replica claimed it, pulled
    // whole from C.
    let out = tempfile::tempdir().unwrap();
    for repo in ["mirrors/app", "mirrors/pushed"] {
        skopeo(vec![
            "copy".into(),
            format!("--src-creds={creds}"),
            "--src-tls-verify=false".into(),
            format!("docker://{}/{repo}:v1", c.host_port),
            format!(
                "oci:{}:{}",
                out.path().join("layout").display(),
                repo.replace('/', "-")
            ),
        ])
        .await;
        assert_eq!(sha256(&skopeo(inspect(&c, repo)).await), image.digest);
    }
    for server in [a, b, c] {
        server.stop().await;
    }
}

/// Replicas answer who a credential is from memory for a few seconds
/// (`accounts::RECENT_TTL`), so a registry request reads nothing from the
/// database: a token deactivated through A is refused by A at once and by
/// B, which used it a moment before, within that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_other_replicas_within_seconds() {
    use mirror_server::accounts::RECENT_TTL;
    let (a, b) = two_replicas().await;
    a.create_user("erin", "erin-pa55word").await;
    let erin = a.api().creds(Some(("erin", "erin-pa55word")));
    let made = erin
        .post("/api/v0/api_tokens")
        .json(&json!({"tokenLabel": "ci"}))
        .await
        .expect(StatusCode::OK)
        .json();
    let token = made["token"].as_str().unwrap().to_string();
    let hashed = made["hashedToken"].as_str().unwrap().to_string();
    let v2 = async |server: &TestServer| {
        server
            .api()
            .creds(Some(("erin", token.as_str())))
            .get("/v2/")
            .await
            .status
    };
    assert_eq!(v2(&b).await, StatusCode::OK);
    // B noted the use; its listing shows it.
    let listed = b
        .api()
        .creds(Some(("erin", "erin-pa55word")))
        .get("/api/v0/api_tokens")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(listed[0]["lastUsed"].is_string(), "{listed}");

    erin.call(
        reqwest::Method::PATCH,
        format!("/api/v0/api_tokens/{hashed}"),
    )
    .json(&json!({"isActive": false}))
    .await
    .expect(StatusCode::OK);
    let deactivated = Instant::now();
    assert_eq!(v2(&a).await, StatusCode::UNAUTHORIZED, "at once on A");
    while v2(&b).await == StatusCode::OK {
        assert!(
            deactivated.elapsed() < RECENT_TTL + Duration::from_secs(2),
            "B still takes the token {:?} later",
            deactivated.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "B refused the token {:?} after A deactivated it",
        deactivated.elapsed()
    );
    a.stop().await;
    b.stop().await;
}

/// Copies `team/app:v1` of `up` to `mirrors/pushed:v1` at `host_port`
/// with skopeo, as admin.
async fn push_pushed_v1(up: &Registry, host_port: &str) {
    skopeo(vec![
        "copy".into(),
        "--preserve-digests".into(),
        "--src-tls-verify=false".into(),
        format!("--dest-creds=admin:{ADMIN_PASSWORD}"),
        "--dest-tls-verify=false".into(),
        format!("docker://{}", up.reference("team/app", "v1")),
        format!("docker://{host_port}/mirrors/pushed:v1"),
    ])
    .await;
}

/// The upload session a request of a chunked push was for, if any.
fn session_of(path: &str) -> Option<&str> {
    let rest = path.split("/blobs/uploads/").nth(1)?;
    let id = rest.split('?').next()?;
    (!id.is_empty()).then_some(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_push_may_alternate_between_replicas_and_outlive_one() {
    let up = Registry::plain().await;
    let image = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("alternating"))
        .await;
    let (a, b) = two_replicas().await;
    a.create_repo("mirrors", "pushed", "private").await;
    // A load balancer without sticky sessions: each request goes to the
    // other replica than the one before.
    let lb = FaultProxy::balancing(&[a.url.as_str(), b.url.as_str()], None, None, 1);

    // Raw chunked upload through it: POST, two PATCHes and the PUT with the
    // last chunk, each on the other replica.
    let admin = Api::new(&a.client, &lb.url()).creds(Some(("admin", ADMIN_PASSWORD)));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = sha256(&data);
    let upload = admin.post("/v2/mirrors/pushed/blobs/uploads/").await;
    let upload = upload.expect(StatusCode::ACCEPTED).location();
    let mut at = 0;
    for piece in [&data[..1_000_000], &data[1_000_000..2_500_000]] {
        let range = format!("{at}-{}", at + piece.len() - 1);
        let sent = admin
            .patch(&upload)
            .header("content-range", range)
            .body(piece)
            .await;
        at += piece.len();
        let sent = sent.expect(StatusCode::ACCEPTED);
        assert_eq!(sent.header("range"), format!("0-{}", at - 1));
    }
    // A chunk out of order is refused whichever replica gets it.
    let gap = admin
        .patch(&upload)
        .header("content-range", "10-19")
        .body(vec![0u8; 10])
        .await;
    gap.expect_error(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID");
    let put = admin
        .put(format!("{upload}?digest={digest}"))
        .body(&data[at..])
        .await;
    put.expect(StatusCode::CREATED);
    let id = session_of(&upload).unwrap().to_string();
    let served: std::collections::BTreeSet<usize> = lb
        .requests()
        .iter()
        .filter(|r| session_of(&r.path) == Some(id.as_str()))
        .map(|r| r.upstream)
        .collect();
    assert_eq!(served.len(), 2, "one replica served the whole session");
    for server in [&a, &b] {
        let got = server
            .admin()
            .get(format!("/v2/mirrors/pushed/blobs/{digest}"))
            .await;
        assert_eq!(sha256(&got.expect(StatusCode::OK).body), digest);
    }

    // skopeo pushes an image through the balancer; both replicas serve it.
    let creds = format!("admin:{ADMIN_PASSWORD}");
    push_pushed_v1(&up, &lb.host_port()).await;
    // Which replicas served skopeo's upload requests (how its concurrent
    // uploads interleave decides whether one session crossed replicas; the
    // hand-made upload above always does).
    let upload_servers: std::collections::BTreeSet<usize> = lb
        .requests()
        .iter()
        .filter(|r| session_of(&r.path).is_some_and(|s| s != id))
        .map(|r| r.upstream)
        .collect();
    assert_eq!(
        upload_servers.len(),
        2,
        "skopeo's uploads all went to one replica"
    );
    for server in [&a, &b] {
        let raw = skopeo(vec![
            "inspect".to_string(),
            "--raw".into(),
            format!("--creds={creds}"),
            "--tls-verify=false".into(),
            format!("docker://{}/mirrors/pushed:v1", server.host_port),
        ])
        .await;
        assert_eq!(sha256(&raw), image.digest);
    }

    // An unfinished push outlives the replica it started on.
    let on_a = a.admin();
    let upload = on_a.post("/v2/mirrors/pushed/blobs/uploads/").await;
    let upload = upload.expect(StatusCode::ACCEPTED).location();
    on_a.patch(&upload)
        .body(&b"started on A, "[..])
        .await
        .expect(StatusCode::ACCEPTED);
    a.stop().await;
    let finished = b"started on A, finished on B";
    let digest = sha256(finished);
    let on_b = b.admin();
    let status = on_b.get(&upload).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-13");
    let put = on_b
        .put(format!("{upload}?digest={digest}"))
        .body(&finished[14..])
        .await;
    put.expect(StatusCode::CREATED);
    let got = on_b.get(format!("/v2/mirrors/pushed/blobs/{digest}")).await;
    assert_eq!(&got.expect(StatusCode::OK).body[..], &finished[..]);
    b.stop().await;
}

/// How many `poll_mirror` jobs exist (asked of `server`).
async fn poll_jobs(server: &TestServer) -> usize {
    let jobs = server
        .admin()
        .get("/api/v0/jobs?action=poll_mirror&limit=100")
        .await;
    jobs.expect(StatusCode::OK).json()["jobs"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_fires_once_across_replicas() {
    let mut three = replicas(3).await;
    let (c, b, a) = (
        three.pop().unwrap(),
        three.pop().unwrap(),
        three.pop().unwrap(),
    );
    // Saved through each, so every scheduler wakes for it at once (another
    // replica's change is otherwise seen within a minute).
    let every_second = json!({"action": "poll_mirror", "schedule": "* * * * * *"});
    for server in [&a, &b, &c] {
        let saved = server
            .admin()
            .post("/api/v0/crons")
            .json(&every_second)
            .await;
        saved.expect(StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (start, before) = (Instant::now(), poll_jobs(&a).await);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let fired = poll_jobs(&a).await - before;
    let secs = start.elapsed().as_secs_f64();
    // Once a second in all (a job still pending skips a run, so fewer is
    // fine); a fire per replica would be about three times as many.
    assert!(
        fired >= 3 && fired as f64 <= secs + 1.0,
        "{fired} jobs in {secs:.1} s"
    );
    let deleted = b.admin().delete("/api/v0/crons/poll_mirror").await;
    deleted.expect(StatusCode::NO_CONTENT);
    for server in [a, b, c] {
        server.stop().await;
    }
}
