//! What the web page reads without extra requests: repositories with their
//! tag count, whether a mirror feeds them and the caller's access level;
//! tags with platforms and image size; "Save & Apply" starting a job that
//! a repository administrator may follow (with live progress while it
//! copies a big layer); the jobs list filtered by status.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, Creds, TestServer, assert_error, sha256};
use crate::support::Registry;
use crate::support::images::{MixedImages, MixedTags};

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

/// `GET /api/v0/repositories` as `creds`, by `namespace/name`.
async fn listed(server: &TestServer, creds: Creds<'_>) -> Vec<(String, Value)> {
    let (s, b) = server
        .call(
            Method::GET,
            "/api/v0/repositories?pageSize=100",
            creds,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            );
            (name, r.clone())
        })
        .collect()
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
    server.create_user("bob", "bob-pa55word").await;
    server.create_repo("mirrors", "app", "private").await;
    server.create_repo("mirrors", "public", "public").await;
    server.create_repo("mirrors", "hidden", "private").await;
    server.create_repo("bob", "own", "private").await;
    server.grant("mirrors/app", "bob", "read-only").await;

    let all = listed(&server, ADMIN).await;
    let app = find(&all, "mirrors/app");
    assert_eq!(app["tagCount"], 0, "{app}");
    assert_eq!(app["mirrored"], false, "{app}");
    assert_eq!(app["accessLevel"], "admin", "{app}");

    // Save & Apply as a server admin: the job is in X-Job-ID.
    let (s, policy, job) = server
        .post_policy(
            "mirrors/app",
            ADMIN,
            "?initialEvaluation=true",
            json!({"remoteHost": up.url(), "remoteRepository": "team/app"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{policy}");
    let job = server
        .wait_done(&job.expect("Save & Apply returns the job in X-Job-ID"))
        .await;
    assert_eq!(job["action"], "poll_mirror");
    assert_eq!(job["parameters"], json!({"policyID": policy["id"]}));
    assert!(
        job.get("progress").is_none(),
        "no progress once done: {job}"
    );

    // Counts and levels, as each caller sees them.
    let all = listed(&server, ADMIN).await;
    let app = find(&all, "mirrors/app");
    assert_eq!(app["tagCount"], 4, "{app}");
    assert_eq!(app["mirrored"], true, "{app}");
    assert_eq!(find(&all, "mirrors/public")["mirrored"], false);
    let bobs = listed(&server, BOB).await;
    let names: Vec<&str> = bobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bob/own", "mirrors/app", "mirrors/public"]);
    assert_eq!(find(&bobs, "mirrors/app")["accessLevel"], "read-only");
    assert_eq!(find(&bobs, "mirrors/app")["tagCount"], 4);
    assert_eq!(find(&bobs, "mirrors/public")["accessLevel"], "read-only");
    assert_eq!(find(&bobs, "bob/own")["accessLevel"], "admin");
    server.grant("mirrors/public", "bob", "read-write").await;
    let (s, one) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/public",
            BOB,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["accessLevel"], "read-write");
    assert_eq!(one["tagCount"], 0);
    let (_, one) = server
        .call(Method::GET, "/api/v0/repositories/mirrors/app", BOB, None)
        .await;
    assert_eq!(
        (&one["accessLevel"], &one["tagCount"], &one["mirrored"]),
        (&json!("read-only"), &json!(4), &json!(true)),
        "{one}"
    );
    let (_, listed_ns) = server
        .call(Method::GET, "/api/v0/repositories/mirrors", BOB, None)
        .await;
    assert_eq!(listed_ns["repositories"][0]["accessLevel"], "read-only");

    // A disabled policy does not feed the repository.
    let (s, _) = server
        .call(
            Method::PUT,
            &format!(
                "/api/v0/repositories/mirrors/app/pollMirroringPolicies/{}",
                policy["id"].as_str().unwrap()
            ),
            ADMIN,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, one) = server
        .call(Method::GET, "/api/v0/repositories/mirrors/app", ADMIN, None)
        .await;
    assert_eq!(one["mirrored"], false, "{one}");

    // Tags: the manifest size, the platforms and the image size.
    let (s, tags) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/app/tags",
            BOB,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tags}");
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

/// Waits for `job` as `creds` until `done` returns a value; the job JSON
/// it was found in.
async fn watch_job(
    server: &TestServer,
    id: &str,
    creds: Creds<'_>,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, job) = server
            .call(Method::GET, &format!("/api/v0/jobs/{id}"), creds, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{job}");
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "gave up waiting on {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_apply_starts_a_job_its_repository_admin_follows() {
    let slow = slow_registry().await;
    let server = TestServer::start().await;
    server.create_user("bob", "bob-pa55word").await;
    server.create_user("carol", "carol-pa55word").await;
    server.create_repo("mirrors", "big", "private").await;
    server.create_repo("mirrors", "other", "private").await;
    server.grant("mirrors/big", "carol", "admin").await;
    server.grant("mirrors/big", "bob", "read-only").await;
    let remote = json!({"remoteHost": slow, "remoteRepository": "slow/big"});

    // Without an explicit initialEvaluation=true, or for a disabled
    // policy, nothing starts.
    let (s, b, job) = server
        .post_policy("mirrors/big", CAROL, "", remote.clone())
        .await;
    assert_eq!((s, job), (StatusCode::CREATED, None), "{b}");
    assert_eq!(b["initialEvaluation"], true, "{b}");
    let (s, b, job) = server
        .post_policy(
            "mirrors/big",
            CAROL,
            "?initialEvaluation=false",
            remote.clone(),
        )
        .await;
    assert_eq!((s, job), (StatusCode::CREATED, None), "{b}");
    let mut disabled = remote.clone();
    disabled["enabled"] = json!(false);
    let (s, b, job) = server
        .post_policy("mirrors/big", CAROL, "?initialEvaluation=true", disabled)
        .await;
    assert_eq!((s, job), (StatusCode::CREATED, None), "{b}");
    for p in server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/big/pollMirroringPolicies",
            ADMIN,
            None,
        )
        .await
        .1
        .as_array()
        .unwrap()
    {
        let path = format!(
            "/api/v0/repositories/mirrors/big/pollMirroringPolicies/{}",
            p["id"].as_str().unwrap()
        );
        let (s, _) = server.call(Method::DELETE, &path, CAROL, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    // Save & Apply by a repository admin who is no server admin, with
    // `initialEvaluation` in the body.
    let mut body = remote.clone();
    body["initialEvaluation"] = json!(true);
    let (s, policy, job) = server.post_policy("mirrors/big", CAROL, "", body).await;
    assert_eq!(s, StatusCode::CREATED, "{policy}");
    let id = job.expect("X-Job-ID");

    // Carol follows it: the bytes of the big layer move while it runs.
    let first = watch_job(&server, &id, CAROL, |j| {
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
    let later = watch_job(&server, &id, CAROL, |j| {
        j["progress"]["bytesCopied"].as_u64().unwrap_or(0) > before
    })
    .await;
    assert_eq!(later["status"], "running", "{later}");
    assert!(later["progress"]["bytesCopied"].as_u64().unwrap() < LAYER_SIZE as u64);

    // Only she and server admins see it; listing jobs stays admin-only.
    let (s, logs) = server
        .call(Method::GET, &format!("/api/v0/jobs/{id}/logs"), CAROL, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{logs}");
    assert!(!logs.as_array().unwrap().is_empty(), "{logs}");
    for path in [
        format!("/api/v0/jobs/{id}"),
        format!("/api/v0/jobs/{id}/logs"),
    ] {
        let got = server.call(Method::GET, &path, BOB, None).await;
        assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    }
    let got = server
        .call(
            Method::POST,
            &format!("/api/v0/jobs/{id}/cancel"),
            BOB,
            None,
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    for path in ["/api/v0/jobs", "/api/v0/crons"] {
        let got = server.call(Method::GET, path, CAROL, None).await;
        assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    }
    let got = server
        .call(Method::DELETE, &format!("/api/v0/jobs/{id}"), CAROL, None)
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    // A job that does not exist: 403 for her, 404 for an admin.
    let got = server
        .call(Method::GET, "/api/v0/jobs/no-such-job", CAROL, None)
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    let got = server
        .call(Method::GET, "/api/v0/jobs/no-such-job", ADMIN, None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NO_SUCH_JOB", None);

    let done = watch_job(&server, &id, CAROL, |j| j["status"] != "running").await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(done.get("progress").is_none(), "{done}");
    let (_, tags) = server
        .call(
            Method::GET,
            "/api/v0/repositories/mirrors/big/tags",
            CAROL,
            None,
        )
        .await;
    assert_eq!(tags[0]["platforms"], json!(["linux/arm64/v8"]), "{tags}");
    assert!(
        tags[0]["imageSize"].as_u64().unwrap() > LAYER_SIZE as u64,
        "{tags}"
    );

    // A job of another repository's policy, or of every policy, stays
    // hidden from her; she may cancel her repository's.
    let (_, other, _) = server
        .post_policy(
            "mirrors/other",
            ADMIN,
            "?initialEvaluation=false",
            remote.clone(),
        )
        .await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let submit = |parameters: Value| {
        server.call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(json!({"action": "poll_mirror", "scheduledAt": later, "parameters": parameters})),
        )
    };
    let (_, theirs) = submit(json!({"policyID": other["id"]})).await;
    let (_, everyone) = submit(json!({})).await;
    let (_, hers) = submit(json!({"policyID": policy["id"]})).await;
    for job in [&theirs, &everyone] {
        let got = server
            .call(
                Method::GET,
                &format!("/api/v0/jobs/{}", job["id"].as_str().unwrap()),
                CAROL,
                None,
            )
            .await;
        assert_error(&got, StatusCode::FORBIDDEN, "NOT_AUTHORIZED", None);
    }
    let hers = hers["id"].as_str().unwrap();
    let (s, _) = server
        .call(
            Method::POST,
            &format!("/api/v0/jobs/{hers}/cancel"),
            CAROL,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let job = watch_job(&server, hers, CAROL, |_| true).await;
    assert_eq!(job["status"], "canceled");

    // The jobs list filtered by status (what the page's filter sends).
    let server = &server;
    let statuses = |query: &str| {
        let path = format!("/api/v0/jobs?{query}");
        async move {
            let (s, b) = server.call(Method::GET, &path, ADMIN, None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b["jobs"]
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
    let got = server
        .call(Method::GET, "/api/v0/jobs?status=finished", ADMIN, None)
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER",
        Some("status"),
    );
}
