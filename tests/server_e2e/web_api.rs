//! What the web page reads without extra requests: repositories with their
//! tag count, whether a mirror feeds them and the caller's access level;
//! tags with platforms and image size; "Save & Apply" starting a job that
//! a repository administrator may follow (with live progress while it
//! copies a big layer); the jobs list filtered by status.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Creds, TestServer, repository_names, sha256};
use crate::support::Registry;
use crate::support::http::{Api, Reply};
use crate::support::images::{MixedImages, MixedTags};
use crate::support::policies::policies;

const BOB: Creds<'static> = Some(("bob", "bob-pa55word"));
const CAROL: Creds<'static> = Some(("carol", "carol-pa55word"));

/// The big layer of the slow registry, and how it is sent.
const LAYER_SIZE: usize = 3 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const CHUNK_DELAY: Duration = Duration::from_millis(60);

/// A registry holding one image, `slow/big:v1`, whose 3 MiB layer is sent
/// in 64 KiB chunks 60 ms apart (about 3 s): a copy long enough to watch.
async fn slow_registry() -> String {
    use axum::body::Body;
    use axum::extract::{Path, State};
    use axum::http::header;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use bytes::Bytes;

    #[derive(Clone)]
    struct Image {
        manifest: Bytes,
        digest: String,
        config: Bytes,
        config_digest: String,
        layer: Bytes,
        layer_digest: String,
    }
    let layer: Bytes = (0..LAYER_SIZE)
        .map(|i| (i * 7919 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let config = Bytes::from(
        serde_json::to_vec(&json!({"os": "linux", "architecture": "arm64", "variant": "v8"}))
            .unwrap(),
    );
    let manifest = Bytes::from(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": config.len(), "digest": sha256(&config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": layer.len(), "digest": sha256(&layer)}],
        }))
        .unwrap(),
    );
    let image = Image {
        digest: sha256(&manifest),
        config_digest: sha256(&config),
        layer_digest: sha256(&layer),
        manifest,
        config,
        layer,
    };
    let manifests = |State(img): State<Image>, Path(_reference): Path<String>| async move {
        (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.docker.distribution.manifest.v2+json".to_string(),
                ),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    img.digest.clone(),
                ),
            ],
            img.manifest.clone(),
        )
    };
    let blobs = |State(img): State<Image>, Path(digest): Path<String>| async move {
        if digest == img.config_digest {
            return img.config.clone().into_response();
        }
        if digest != img.layer_digest {
            return axum::http::StatusCode::NOT_FOUND.into_response();
        }
        let chunks = futures_util::stream::unfold(0usize, move |at| {
            let layer = img.layer.clone();
            async move {
                if at >= layer.len() {
                    return None;
                }
                tokio::time::sleep(CHUNK_DELAY).await;
                let end = (at + CHUNK).min(layer.len());
                Some((Ok::<_, std::io::Error>(layer.slice(at..end)), end))
            }
        });
        let mut resp = Response::new(Body::from_stream(chunks));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, LAYER_SIZE.into());
        resp
    };
    let app = axum::Router::new()
        .route("/v2/", get(|| async { axum::Json(json!({})) }))
        .route(
            "/v2/slow/big/tags/list",
            get(|| async { axum::Json(json!({"name": "slow/big", "tags": ["v1"]})) }),
        )
        .route("/v2/slow/big/manifests/{reference}", get(manifests))
        .route("/v2/slow/big/blobs/{digest}", get(blobs))
        .with_state(image);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `GET /api/v0/repositories` as `api`'s caller, by `namespace/name`.
async fn listed(api: &Api) -> Vec<(String, Value)> {
    let listing = api.get("/api/v0/repositories?pageSize=100").await;
    let listing = listing.expect(StatusCode::OK).json();
    let repos = listing["repositories"].as_array().unwrap().clone();
    repository_names(&listing).into_iter().zip(repos).collect()
}

fn find<'a>(list: &'a [(String, Value)], name: &str) -> &'a Value {
    &list
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not listed: {list:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_and_tags_carry_what_the_page_shows() {
    let up = Registry::plain().await;
    let p = up.pusher();
    let MixedImages {
        docker,
        amd64: amd,
        arm64: arm,
        index,
    } = p
        .push_mixed(
            "team/app",
            MixedTags {
                docker: "v1",
                amd64: "v2-amd64",
                arm64: "v2-arm64",
                index: "v2",
            },
            100_000,
            9,
        )
        .await;

    let server = TestServer::start().await;
    let (admin, bob) = (server.admin(), server.api().creds(BOB));
    server.create_user("bob", "bob-pa55word").await;
    server.create_repo("mirrors", "app", "private").await;
    server.create_repo("mirrors", "public", "public").await;
    server.create_repo("mirrors", "hidden", "private").await;
    server.create_repo("bob", "own", "private").await;
    server.grant("mirrors/app", "bob", "read-only").await;

    let all = listed(&admin).await;
    let app = find(&all, "mirrors/app");
    assert_eq!(app["tagCount"], 0, "{app}");
    assert_eq!(app["mirrored"], false, "{app}");
    assert_eq!(app["accessLevel"], "admin", "{app}");

    // Save & Apply as a server admin: the job is in X-Job-ID.
    let save_and_apply = admin
        .post(policies("mirrors/app"))
        .query("initialEvaluation=true");
    let created = save_and_apply
        .json(&json!({"remoteHost": up.url(), "remoteRepository": "team/app"}))
        .await
        .expect(StatusCode::CREATED);
    let policy = created.json();
    let job = server.wait_done(created.header("x-job-id")).await;
    assert_eq!(job["action"], "poll_mirror");
    assert_eq!(job["parameters"], json!({"policyID": policy["id"]}));
    assert!(
        job.get("progress").is_none(),
        "no progress once done: {job}"
    );

    // Counts and levels, as each caller sees them.
    let all = listed(&admin).await;
    let app = find(&all, "mirrors/app");
    assert_eq!(app["tagCount"], 4, "{app}");
    assert_eq!(app["mirrored"], true, "{app}");
    assert_eq!(find(&all, "mirrors/public")["mirrored"], false);
    let bobs = listed(&bob).await;
    let names: Vec<&str> = bobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bob/own", "mirrors/app", "mirrors/public"]);
    assert_eq!(find(&bobs, "mirrors/app")["accessLevel"], "read-only");
    assert_eq!(find(&bobs, "mirrors/app")["tagCount"], 4);
    assert_eq!(find(&bobs, "mirrors/public")["accessLevel"], "read-only");
    assert_eq!(find(&bobs, "bob/own")["accessLevel"], "admin");
    server.grant("mirrors/public", "bob", "read-write").await;
    let one = bob.get("/api/v0/repositories/mirrors/public").await;
    let one = one.expect(StatusCode::OK).json();
    assert_eq!(one["accessLevel"], "read-write");
    assert_eq!(one["tagCount"], 0);
    let one = bob.get("/api/v0/repositories/mirrors/app").await.json();
    assert_eq!(
        (&one["accessLevel"], &one["tagCount"], &one["mirrored"]),
        (&json!("read-only"), &json!(4), &json!(true)),
        "{one}"
    );
    let listed_ns = bob.get("/api/v0/repositories/mirrors").await.json();
    assert_eq!(listed_ns["repositories"][0]["accessLevel"], "read-only");

    // A disabled policy does not feed the repository.
    let one_policy = format!(
        "{}/{}",
        policies("mirrors/app"),
        policy["id"].as_str().unwrap()
    );
    let disable = admin.put(one_policy).json(&json!({"enabled": false})).await;
    disable.expect(StatusCode::OK);
    let one = admin.get("/api/v0/repositories/mirrors/app").await.json();
    assert_eq!(one["mirrored"], false, "{one}");

    // Tags: the manifest size, the platforms and the image size.
    let tags = bob.get("/api/v0/repositories/mirrors/app/tags").await;
    let tags = tags.expect(StatusCode::OK).json();
    let tag = |name: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tag {name}: {tags}"))
            .clone()
    };
    let image_size = |m: &crate::support::images::PushedManifest| {
        m.config.as_ref().unwrap().size + m.layers.iter().map(|l| l.size).sum::<u64>()
    };
    let v1 = tag("v1");
    assert_eq!(v1["size"], docker.size);
    assert_eq!(v1["platforms"], json!(["linux/amd64"]));
    assert_eq!(v1["imageSize"], image_size(&docker));
    assert!(image_size(&docker) > 100_000);
    let v2 = tag("v2");
    assert_eq!(v2["digest"], index.digest.as_str());
    assert_eq!(v2["size"], index.size);
    assert_eq!(v2["platforms"], json!(["linux/amd64", "linux/arm64/v8"]));
    assert_eq!(v2["imageSize"], image_size(&amd) + image_size(&arm));
    assert_eq!(tag("v2-arm64")["platforms"], json!(["linux/arm64/v8"]));
    server.stop().await;
}

// ----------------------------------------------------- Save & Apply ----

/// A server with `mirrors/big`, whose administrator is `carol` (no server
/// admin), and `mirrors/other`; a form for a policy on
/// [`slow_registry`]'s `slow/big`, and calls as admin and as carol.
struct Big {
    server: TestServer,
    admin: Api,
    carol: Api,
    remote: Value,
}

async fn big() -> Big {
    let slow = slow_registry().await;
    let server = TestServer::start().await;
    let carol = carol_administers_big(&server).await;
    server.create_repo("mirrors", "other", "private").await;
    Big {
        admin: server.admin(),
        carol,
        remote: json!({"remoteHost": slow, "remoteRepository": "slow/big"}),
        server,
    }
}

/// `mirrors/big`, administered by `carol`, who is no server admin; calls
/// as her.
async fn carol_administers_big(server: &TestServer) -> Api {
    server.create_user("carol", "carol-pa55word").await;
    server.create_repo("mirrors", "big", "private").await;
    server.grant("mirrors/big", "carol", "admin").await;
    server.api().creds(CAROL)
}

/// Waits for `job` as `api`'s caller until `done` returns a value; the
/// job JSON it was found in.
async fn watch_job(api: &Api, id: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = api.get(format!("/api/v0/jobs/{id}")).await;
        let job = job.expect(StatusCode::OK).json();
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "gave up waiting on {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts that a policy was created and started no job.
#[track_caller]
fn created_without_a_job(created: Reply) {
    let created = created.expect(StatusCode::CREATED);
    let job = created.header_opt("x-job-id");
    assert_eq!(job, None, "{}", created.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_starts_a_job_only_when_saved_and_applied_enabled() {
    let t = big().await;
    let big = policies("mirrors/big");
    // Without an explicit initialEvaluation=true, or for a disabled
    // policy, nothing starts.
    let saved = t.carol.post(&big).json(&t.remote).await;
    assert_eq!(saved.json()["initialEvaluation"], true, "{}", saved.text());
    created_without_a_job(saved);
    let saved = t.carol.post(&big).query("initialEvaluation=false");
    created_without_a_job(saved.json(&t.remote).await);
    let mut disabled = t.remote.clone();
    disabled["enabled"] = json!(false);
    let saved = t.carol.post(&big).query("initialEvaluation=true");
    created_without_a_job(saved.json(&disabled).await);
    // The repository's administrator deletes them.
    let listed = t.admin.get(&big).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    for p in listed.as_array().unwrap() {
        let one = format!("{big}/{}", p["id"].as_str().unwrap());
        t.carol.delete(one).await.expect(StatusCode::NO_CONTENT);
    }
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_list_jobs_and_crons_or_learn_that_a_job_is_missing() {
    let server = TestServer::start().await;
    let carol = carol_administers_big(&server).await;
    for path in ["/api/v0/jobs", "/api/v0/crons"] {
        let got = carol.get(path).await;
        got.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    }
    // A job that does not exist: 403 for her, 404 for an admin.
    let got = carol.get("/api/v0/jobs/no-such-job").await;
    got.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    let got = server.admin().get("/api/v0/jobs/no-such-job").await;
    got.expect_error(StatusCode::NOT_FOUND, "NO_SUCH_JOB");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_admin_follows_the_job_save_and_apply_starts() {
    let t = big().await;
    let (admin, carol) = (&t.admin, &t.carol);
    t.server.create_user("bob", "bob-pa55word").await;
    t.server.grant("mirrors/big", "bob", "read-only").await;
    let bob = &t.server.api().creds(BOB);

    // Save & Apply by a repository admin who is no server admin, with
    // `initialEvaluation` in the body.
    let mut body = t.remote.clone();
    body["initialEvaluation"] = json!(true);
    let created = carol.post(policies("mirrors/big")).json(&body).await;
    let created = created.expect(StatusCode::CREATED);
    let policy = created.json();
    let id = created.header("x-job-id").to_string();

    // Carol follows it: the bytes of the big layer move while it runs.
    let first = watch_job(carol, &id, |j| {
        j["progress"]["bytesCopied"].as_u64().unwrap_or(0) >= CHUNK as u64
    })
    .await;
    assert_eq!(first["status"], "running", "{first}");
    assert_eq!(first["parameters"]["policyID"], policy["id"]);
    let progress = &first["progress"];
    for key in [
        "bytesCopied",
        "blobsCopied",
        "blobsReused",
        "tagsCopied",
        "tagsPlanned",
        "retries",
    ] {
        assert!(progress[key].is_u64(), "{key} in {progress}");
    }
    assert_eq!(progress["tagsPlanned"], 1, "{progress}");
    assert_eq!(progress["tagsCopied"], 0, "{progress}");
    let before = progress["bytesCopied"].as_u64().unwrap();
    assert!(before < LAYER_SIZE as u64, "{progress}");
    let later = watch_job(carol, &id, |j| {
        j["progress"]["bytesCopied"].as_u64().unwrap_or(0) > before
    })
    .await;
    assert_eq!(later["status"], "running", "{later}");
    assert!(later["progress"]["bytesCopied"].as_u64().unwrap() < LAYER_SIZE as u64);

    // Only she and server admins see it.
    let logs = carol.get(format!("/api/v0/jobs/{id}/logs")).await;
    let logs = logs.expect(StatusCode::OK).json();
    assert!(!logs.as_array().unwrap().is_empty(), "{logs}");
    let forbidden = |reply: Reply| reply.expect_error(StatusCode::FORBIDDEN, "NOT_AUTHORIZED");
    forbidden(bob.get(format!("/api/v0/jobs/{id}")).await);
    forbidden(bob.get(format!("/api/v0/jobs/{id}/logs")).await);
    forbidden(bob.post(format!("/api/v0/jobs/{id}/cancel")).await);
    forbidden(carol.delete(format!("/api/v0/jobs/{id}")).await);

    let done = watch_job(carol, &id, |j| j["status"] != "running").await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(done.get("progress").is_none(), "{done}");
    let tags = carol.get("/api/v0/repositories/mirrors/big/tags").await;
    let tags = tags.json();
    assert_eq!(tags[0]["platforms"], json!(["linux/arm64/v8"]), "{tags}");
    assert!(
        tags[0]["imageSize"].as_u64().unwrap() > LAYER_SIZE as u64,
        "{tags}"
    );

    // A job of another repository's policy, or of every policy, stays
    // hidden from her; she may cancel her repository's.
    let saved = admin.post(policies("mirrors/other"));
    let saved = saved.query("initialEvaluation=false").json(&t.remote).await;
    let other = saved.json();
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let submit = |parameters: Value| {
        let form = json!({"action": "poll_mirror", "scheduledAt": later, "parameters": parameters});
        async move { admin.post("/api/v0/jobs").json(&form).await.json() }
    };
    let theirs = submit(json!({"policyID": other["id"]})).await;
    let everyone = submit(json!({})).await;
    let hers = submit(json!({"policyID": policy["id"]})).await;
    for job in [&theirs, &everyone] {
        let job = format!("/api/v0/jobs/{}", job["id"].as_str().unwrap());
        forbidden(carol.get(job).await);
    }
    let hers = hers["id"].as_str().unwrap();
    let cancel = carol.post(format!("/api/v0/jobs/{hers}/cancel")).await;
    cancel.expect(StatusCode::NO_CONTENT);
    let job = watch_job(carol, hers, |_| true).await;
    assert_eq!(job["status"], "canceled");

    // The jobs list filtered by status (what the page's filter sends).
    let statuses = |query: &str| {
        let list = admin.get("/api/v0/jobs").query(query);
        async move {
            let list = list.await.expect(StatusCode::OK).json();
            list["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["status"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(statuses("status=done").await, ["done"]);
    assert_eq!(statuses("status=canceled").await, ["canceled"]);
    assert_eq!(
        statuses("status=cancel").await,
        ["canceled"],
        "DTR's spelling"
    );
    assert_eq!(statuses("status=waiting").await, ["waiting", "waiting"]);
    assert_eq!(
        statuses("status=waiting&running=false").await,
        Vec::<String>::new()
    );
    assert_eq!(statuses("status=errored").await, Vec::<String>::new());
    assert_eq!(statuses("status=any&limit=100").await.len(), 4);
    let finished = admin.get("/api/v0/jobs?status=finished").await;
    finished
        .expect_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER")
        .expect_field("status");
}
