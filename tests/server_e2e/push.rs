//! Push and delete on `/v2`: skopeo copies images into the server (from
//! the upstream registry and from an OCI layout) and pulls them back with
//! the same digests; chunked uploads, mounts, manifest checks and deletes
//! with plain HTTP; who may push; idle uploads expire.

use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, Creds, TestServer, sha256, skopeo, skopeo_output};
use crate::support::Registry;
use crate::support::images::{MixedImages, MixedTags};

const WRITER: Creds<'static> = Some(("writer", "writer-pa55word"));
const READER: Creds<'static> = Some(("reader", "reader-pa55word"));
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `writer` (read-write) and `reader` (read-only) on each of `repos`.
async fn users(server: &TestServer, repos: &[&str]) {
    server.create_user("writer", "writer-pa55word").await;
    server.create_user("reader", "reader-pa55word").await;
    for repo in repos {
        server.grant(repo, "writer", "read-write").await;
        server.grant(repo, "reader", "read-only").await;
    }
}

fn creds_flag(prefix: &str, creds: Creds) -> Vec<String> {
    let (u, p) = creds.unwrap();
    vec![
        format!("--{prefix}creds={u}:{p}"),
        format!("--{prefix}tls-verify=false"),
    ]
}

fn index_digest(dir: &std::path::Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_back() {
    let up = Registry::plain().await;
    let p = up.pusher();
    let MixedImages {
        docker,
        amd64: amd,
        index,
        ..
    } = p
        .push_mixed(
            "team/app",
            MixedTags {
                docker: "v1",
                amd64: "v2",
                arm64: "v2-arm",
                index: "v3",
            },
            2_500_000,
            11,
        )
        .await;

    let server = TestServer::start().await;
    server.create_repo("acme", "pushed", "private").await;
    server.create_repo("acme", "from-layout", "private").await;
    users(&server, &["acme/pushed", "acme/from-layout"]).await;
    let into = |repo: &str, tag: &str| format!("docker://{}/{repo}:{tag}", server.host_port);

    // Upstream registry -> server: a Docker image and a multi-platform index.
    for (tag, all) in [("v1", false), ("v3", true)] {
        // Without --preserve-digests skopeo compresses uncompressed layers.
        let mut args = vec!["copy".to_string(), "--preserve-digests".to_string()];
        if all {
            args.push("--all".into());
        }
        args.extend(up.skopeo_args("src"));
        args.extend(creds_flag("dest-", WRITER));
        args.push(format!("docker://{}", up.reference("team/app", tag)));
        args.push(into("acme/pushed", tag));
        skopeo(args).await;
    }
    // ...and back: byte-identical manifests.
    for (tag, pushed) in [("v1", &docker), ("v3", &index)] {
        let mut args = vec!["inspect".to_string(), "--raw".to_string()];
        args.extend(creds_flag("", READER));
        args.push(into("acme/pushed", tag));
        let raw = skopeo(args).await;
        assert_eq!(sha256(&raw), pushed.digest, "tag {tag}");
    }
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let mut args = vec!["copy".to_string(), "--all".to_string()];
    args.extend(creds_flag("src-", READER));
    args.push(into("acme/pushed", "v3"));
    args.push(format!("oci:{}:v3", layout.display()));
    skopeo(args).await;
    assert_eq!(index_digest(&layout), index.digest);

    // OCI layout -> server, and back.
    let mut args = vec![
        "copy".to_string(),
        "--all".to_string(),
        "--preserve-digests".to_string(),
    ];
    args.extend(creds_flag("dest-", WRITER));
    args.push(format!("oci:{}:v3", layout.display()));
    args.push(into("acme/from-layout", "v3"));
    skopeo(args).await;
    let back = out.path().join("back");
    let mut args = vec!["copy".to_string(), "--all".to_string()];
    args.extend(creds_flag("src-", WRITER));
    args.push(into("acme/from-layout", "v3"));
    args.push(format!("oci:{}:v3", back.display()));
    skopeo(args).await;
    assert_eq!(index_digest(&back), index.digest);
    for blob in amd.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(back.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256(&bytes), blob);
    }

    // Pushed tags are listed, without mirroring details.
    let (s, tags) = server
        .call(
            Method::GET,
            "/api/v0/repositories/acme/pushed/tags",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v1", "v3"]);
    assert!(tags[0].get("mirroring").is_none(), "{tags}");

    // A read-only user cannot push.
    let mut args = vec!["copy".to_string()];
    args.extend(up.skopeo_args("src"));
    args.extend(creds_flag("dest-", READER));
    args.push(format!("docker://{}", up.reference("team/app", "v2")));
    args.push(into("acme/pushed", "v2"));
    let refused = skopeo_output(args).await;
    assert!(!refused.status.success(), "a reader pushed");
    let (s, _) = server
        .call(Method::GET, "/v2/acme/pushed/manifests/v2", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        std::fs::read_dir(server.data_dir().join("uploads"))
            .unwrap()
            .count(),
        0,
        "uploads left behind"
    );
    server.stop().await;
}

/// The `Location` of a response, as a path.
fn location(resp: &reqwest::Response) -> String {
    resp.headers()[LOCATION].to_str().unwrap().to_string()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// `base` joined with `query` (`?` or `&`).
fn with_query(base: &str, query: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

/// A monolithic upload of `bytes` to `repo`; returns the digest.
async fn push_blob(server: &TestServer, repo: &str, creds: Creds<'_>, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let resp = server
        .request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            creds,
        )
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(location(&resp), format!("/v2/{repo}/blobs/{digest}"));
    digest
}

fn image_manifest(config: (&str, usize), layers: &[(&str, usize)], extra: Value) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let Value::Object(extra) = extra {
        m.as_object_mut().unwrap().extend(extra);
    }
    serde_json::to_vec(&m).unwrap()
}

async fn put_manifest(
    server: &TestServer,
    repo: &str,
    reference: &str,
    creds: Creds<'_>,
    media_type: &str,
    bytes: &[u8],
) -> reqwest::Response {
    server
        .request(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            creds,
        )
        .header(CONTENT_TYPE, media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_manifests_mounts_and_deletes() {
    let server = TestServer::start().await;
    for (ns, name) in [("acme", "a"), ("acme", "b"), ("other", "secret")] {
        server.create_repo(ns, name, "private").await;
    }
    server.create_repo("pub", "open", "public").await;
    users(&server, &["acme/a", "acme/b"]).await;
    let data: Vec<u8> = (0..250u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = sha256(&data);

    // A chunked upload: open, two chunks (one out of order is refused),
    // status, then a wrong digest: nothing becomes visible.
    let start = server
        .request(Method::POST, "/v2/acme/a/blobs/uploads/", WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&start, "range"), "0-0");
    let uuid = header(&start, "docker-upload-uuid").to_string();
    let upload = location(&start);
    assert_eq!(upload, format!("/v2/acme/a/blobs/uploads/{uuid}"));
    let patch = |range: Option<&str>, body: &[u8]| {
        let mut rb = server
            .request(Method::PATCH, &upload, WRITER)
            .body(body.to_vec());
        if let Some(r) = range {
            rb = rb.header(CONTENT_RANGE, r);
        }
        rb.send()
    };
    let r = patch(Some("0-99"), &data[..100]).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-99");
    assert_eq!(location(&r), upload);
    let r = patch(Some("200-249"), &data[200..]).await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-99");
    assert_eq!(location(&r), upload);
    let status = server
        .request(Method::GET, &upload, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-99");
    let r = patch(None, &data[100..]).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-249");
    let blob_path = format!("/v2/acme/a/blobs/{digest}");
    let (s, _) = server.call(Method::HEAD, &blob_path, WRITER, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "visible before commit");
    let wrong = sha256(b"something else");
    let r = server
        .request(
            Method::PUT,
            &with_query(&upload, &format!("digest={wrong}")),
            WRITER,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    for d in [&digest, &wrong] {
        let (s, _) = server
            .call(Method::HEAD, &format!("/v2/acme/a/blobs/{d}"), ADMIN, None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{d} stored after a mismatch");
    }
    let r = server
        .request(Method::GET, &upload, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN".into())
    );

    // Again, the last chunk with the PUT: 201 and the blob is served.
    let start = server
        .request(Method::POST, "/v2/acme/a/blobs/uploads/", WRITER)
        .send()
        .await
        .unwrap();
    let upload = location(&start);
    let r = server
        .request(Method::PATCH, &upload, WRITER)
        .header(CONTENT_RANGE, "0-149")
        .body(data[..150].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A session belongs to its repository.
    let elsewhere = upload.replace("/acme/a/", "/acme/b/");
    let r = server
        .request(Method::GET, &elsewhere, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN".into())
    );
    let r = server
        .request(
            Method::PUT,
            &with_query(&upload, &format!("digest={digest}")),
            WRITER,
        )
        .header(CONTENT_RANGE, "150-249")
        .body(data[150..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(location(&r), blob_path);
    let got = server
        .request(Method::GET, &blob_path, READER)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());

    // Cancel a session.
    let start = server
        .request(Method::POST, "/v2/acme/a/blobs/uploads/", WRITER)
        .send()
        .await
        .unwrap();
    let upload = location(&start);
    server
        .request(Method::PATCH, &upload, WRITER)
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    let r = server
        .request(Method::DELETE, &upload, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = server
        .request(Method::PATCH, &upload, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN".into())
    );

    // Mount: from a repository the caller can read, 201; from one they
    // cannot, or of a blob it lacks, a new upload (202).
    let r = server
        .request(
            Method::POST,
            &format!("/v2/acme/b/blobs/uploads/?mount={digest}&from=acme/a"),
            WRITER,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(location(&r), format!("/v2/acme/b/blobs/{digest}"));
    let (s, _) = server
        .call(
            Method::HEAD,
            &format!("/v2/acme/b/blobs/{digest}"),
            READER,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let secret = push_blob(&server, "other/secret", ADMIN, b"secret layer").await;
    for (from, d) in [("other/secret", &secret), ("acme/a", &secret)] {
        let r = server
            .request(
                Method::POST,
                &format!("/v2/acme/b/blobs/uploads/?mount={d}&from={from}"),
                WRITER,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "mount from {from}");
        assert!(header(&r, "docker-upload-uuid").len() > 10);
        server
            .request(Method::DELETE, &location(&r), WRITER)
            .send()
            .await
            .unwrap();
    }
    let (s, _) = server
        .call(
            Method::HEAD,
            &format!("/v2/acme/b/blobs/{secret}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Manifests: a config and a layer, then the image.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push_blob(&server, "acme/a", WRITER, config).await;
    let image = image_manifest(
        (&config_digest, config.len()),
        &[(&digest, data.len())],
        json!({}),
    );
    let image_digest = sha256(&image);
    let r = put_manifest(&server, "acme/a", "v1", WRITER, OCI_MANIFEST, &image).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), image_digest);
    assert_eq!(location(&r), format!("/v2/acme/a/manifests/{image_digest}"));
    assert!(r.headers().get("oci-subject").is_none());
    let got = server
        .request(Method::GET, "/v2/acme/a/manifests/v1", READER)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(header(&got, "content-type"), OCI_MANIFEST);
    assert_eq!(got.bytes().await.unwrap().as_ref(), image.as_slice());

    // Refused manifests: a missing blob, too large, not a manifest, the
    // wrong digest.
    let missing = sha256(b"never pushed");
    let bad = image_manifest((&config_digest, config.len()), &[(&missing, 3)], json!({}));
    let r = put_manifest(&server, "acme/a", "bad", WRITER, OCI_MANIFEST, &bad).await;
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let huge = image_manifest(
        (&config_digest, config.len()),
        &[],
        json!({"annotations": {"pad": "x".repeat(4 * 1024 * 1024)}}),
    );
    let r = put_manifest(&server, "acme/a", "huge", WRITER, OCI_MANIFEST, &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = put_manifest(
        &server,
        "acme/a",
        "junk",
        WRITER,
        OCI_MANIFEST,
        b"{not json",
    )
    .await;
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID".into())
    );
    let r = put_manifest(&server, "acme/a", &missing, WRITER, OCI_MANIFEST, &image).await;
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID".into())
    );
    let r = put_manifest(&server, "acme/a", "bad tag!", WRITER, OCI_MANIFEST, &image).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for tag in ["bad", "huge", "junk"] {
        let (s, _) = server
            .call(
                Method::HEAD,
                &format!("/v2/acme/a/manifests/{tag}"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{tag} was published");
    }

    // An artifact whose subject is the image: OCI-Subject, and the
    // referrers API lists it. Pushed by digest, untagged.
    let empty = push_blob(&server, "acme/a", WRITER, b"{}").await;
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image_digest, "size": image.len()},
    }))
    .unwrap();
    let artifact_digest = sha256(&artifact);
    let r = put_manifest(
        &server,
        "acme/a",
        &artifact_digest,
        WRITER,
        OCI_MANIFEST,
        &artifact,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), image_digest);
    let (s, refs) = server
        .call(
            Method::GET,
            &format!("/v2/acme/a/referrers/{image_digest}"),
            READER,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(refs["manifests"][0]["digest"], artifact_digest.as_str());
    assert_eq!(
        refs["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );

    // An index needs its children in the repository.
    let index = |child: &str, size: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size,
                           "platform": {"os": "linux", "architecture": "amd64"}}],
        }))
        .unwrap()
    };
    let r = put_manifest(
        &server,
        "acme/a",
        "multi",
        WRITER,
        OCI_INDEX,
        &index(&missing, 10),
    )
    .await;
    assert_eq!(
        code(r).await,
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let good_index = index(&image_digest, image.len());
    let r = put_manifest(&server, "acme/a", "multi", WRITER, OCI_INDEX, &good_index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (s, tags) = server
        .call(Method::GET, "/v2/acme/a/tags/list", READER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tags["tags"], json!(["multi", "v1"]));

    // Who may push: readers and strangers are denied, anonymous callers
    // are asked to log in, even on a public repository.
    for (creds, repo, expected) in [
        (READER, "acme/a", StatusCode::FORBIDDEN),
        (WRITER, "other/secret", StatusCode::FORBIDDEN),
        (None, "pub/open", StatusCode::UNAUTHORIZED),
        (None, "acme/a", StatusCode::UNAUTHORIZED),
    ] {
        let r = server
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), creds)
            .send()
            .await
            .unwrap();
        let want = if expected == StatusCode::FORBIDDEN {
            "DENIED"
        } else {
            "UNAUTHORIZED"
        };
        assert_eq!(code(r).await, (expected, want.into()), "{creds:?} {repo}");
    }
    let r = put_manifest(&server, "acme/a", "v9", READER, OCI_MANIFEST, &image).await;
    assert_eq!(code(r).await, (StatusCode::FORBIDDEN, "DENIED".into()));
    for path in [
        "/v2/acme/a/manifests/v1".to_string(),
        format!("/v2/acme/a/blobs/{digest}"),
    ] {
        let r = server
            .request(Method::DELETE, &path, READER)
            .send()
            .await
            .unwrap();
        assert_eq!(code(r).await, (StatusCode::FORBIDDEN, "DENIED".into()));
    }
    // Pushing needs the repository to exist.
    let r = server
        .request(Method::POST, "/v2/acme/nothing/blobs/uploads/", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN".into())
    );

    // Deletes: a tag (the manifest stays), then the manifest by digest
    // (its other tags go too), then a blob link.
    let r = server
        .request(Method::DELETE, "/v2/acme/a/manifests/v1", WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let by_digest = format!("/v2/acme/a/manifests/{image_digest}");
    let (s, _) = server
        .call(Method::HEAD, "/v2/acme/a/manifests/v1", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = server.call(Method::HEAD, &by_digest, ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    put_manifest(&server, "acme/a", "again", WRITER, OCI_MANIFEST, &image).await;
    let r = server
        .request(Method::DELETE, &by_digest, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (s, _) = server.call(Method::HEAD, &by_digest, ADMIN, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, tags) = server
        .call(Method::GET, "/v2/acme/a/tags/list", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        tags["tags"],
        json!(["multi"]),
        "tags of a deleted manifest stay"
    );
    let r = server
        .request(Method::DELETE, &by_digest, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN".into())
    );
    let r = server
        .request(Method::DELETE, &blob_path, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (s, _) = server.call(Method::GET, &blob_path, ADMIN, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = server
        .request(Method::DELETE, &blob_path, WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN".into())
    );
    // The bytes stay for other repositories.
    let (s, _) = server
        .call(
            Method::HEAD,
            &format!("/v2/acme/b/blobs/{digest}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Methods that mean nothing here.
    let r = server
        .request(Method::PATCH, "/v2/acme/a/manifests/multi", WRITER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED".into())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_uploads_expire_and_are_bounded() {
    let server = TestServer::start_with(|c| {
        c.uploads.max_sessions = 2;
        c.uploads.idle_timeout = Duration::from_millis(300);
    })
    .await;
    server.create_repo("acme", "a", "private").await;
    let open = || async {
        server
            .request(Method::POST, "/v2/acme/a/blobs/uploads/", ADMIN)
            .send()
            .await
            .unwrap()
    };
    let first = open().await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = location(&first);
    server
        .request(Method::PATCH, &first, ADMIN)
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(open().await.status(), StatusCode::ACCEPTED);
    assert_eq!(
        code(open().await).await,
        (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS".into())
    );
    let uploads = server.data_dir().join("uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 2);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = server
        .request(Method::GET, &first, ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(r).await,
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN".into())
    );
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        0,
        "expired uploads left files"
    );
    assert_eq!(open().await.status(), StatusCode::ACCEPTED);
    server.stop().await;
}
