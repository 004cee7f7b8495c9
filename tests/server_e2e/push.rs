//! Push and delete on `/v2`: skopeo copies images into the server (from
//! the upstream registry and from an OCI layout) and pulls them back with
//! the same digests; then, with plain HTTP through the request DSL
//! (`support::http`), one test per guarantee: chunked uploads, mounts,
//! manifest checks, deletes, who may push; idle uploads expire.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::server::{ADMIN, Creds, TestServer, sha256, skopeo, skopeo_output};
use crate::support::Registry;
use crate::support::http::{Api, Call, Reply};
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
    let admin = Api::new(&server.client, &server.url).creds(ADMIN);
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
    let listing = admin.get("/api/v0/repositories/acme/pushed/tags").await;
    let tags = listing.expect(StatusCode::OK).json();
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
    let manifest = admin.get("/v2/acme/pushed/manifests/v2").await;
    manifest.expect(StatusCode::NOT_FOUND);
    assert_eq!(
        std::fs::read_dir(server.data_dir().join("uploads"))
            .unwrap()
            .count(),
        0,
        "uploads left behind"
    );
    server.stop().await;
}

// ------------------------------------------------------------ fixtures ----

/// A server with `acme/a` and `acme/b` (where `writer` may push and
/// `reader` may pull), `other/secret` (private, no grants) and `pub/open`
/// (public), and calls to it as each of its users.
struct Repos {
    server: TestServer,
    anonymous: Api,
    writer: Api,
    reader: Api,
    admin: Api,
}

async fn repos() -> Repos {
    let server = TestServer::start().await;
    for (ns, name) in [("acme", "a"), ("acme", "b"), ("other", "secret")] {
        server.create_repo(ns, name, "private").await;
    }
    server.create_repo("pub", "open", "public").await;
    users(&server, &["acme/a", "acme/b"]).await;
    let anonymous = Api::new(&server.client, &server.url);
    Repos {
        writer: anonymous.creds(WRITER),
        reader: anonymous.creds(READER),
        admin: anonymous.creds(ADMIN),
        anonymous,
        server,
    }
}

/// The bytes of the layer the tests upload (250 of them).
fn layer() -> Vec<u8> {
    (0..250u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// Opens an upload session in `repo`; its `Location`.
async fn open_upload(api: &Api, repo: &str) -> String {
    let started = api.post(format!("/v2/{repo}/blobs/uploads/")).await;
    started.expect(StatusCode::ACCEPTED).location()
}

/// A chunk of an upload, with `Content-Range` when given.
fn chunk(api: &Api, upload: &str, range: Option<&str>, bytes: &[u8]) -> Call {
    let call = api.patch(upload).body(bytes);
    match range {
        Some(r) => call.header(CONTENT_RANGE.as_str(), r),
        None => call,
    }
}

/// An upload session of `writer` in `acme/a` holding the whole layer,
/// not committed; its `Location`.
async fn layer_uploaded(t: &Repos) -> String {
    let upload = open_upload(&t.writer, "acme/a").await;
    let sent = chunk(&t.writer, &upload, None, &layer()).await;
    sent.expect(StatusCode::ACCEPTED);
    upload
}

/// A monolithic upload of `bytes` to `repo`; returns the digest.
async fn push_blob(api: &Api, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let r = api
        .post(format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(bytes)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(r.location(), format!("/v2/{repo}/blobs/{digest}"));
    digest
}

/// Asks `writer` to mount `digest` from `from` into `acme/b`.
async fn mount(t: &Repos, digest: &str, from: &str) -> Reply {
    let path = format!("/v2/acme/b/blobs/uploads/?mount={digest}&from={from}");
    t.writer.post(path).await
}

/// The tags of `acme/a` as `api` sees them.
async fn tags_of_a(api: &Api) -> Value {
    let tags = api.get("/v2/acme/a/tags/list").await;
    tags.expect(StatusCode::OK).json()["tags"].clone()
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

/// An index of one amd64 child.
fn index_of(child: &str, size: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size,
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    }))
    .unwrap()
}

/// `PUT /v2/acme/a/manifests/{reference}` of `bytes` as `media_type`.
fn put_manifest(api: &Api, reference: &str, media_type: &str, bytes: &[u8]) -> Call {
    api.put(format!("/v2/acme/a/manifests/{reference}"))
        .header(CONTENT_TYPE.as_str(), media_type)
        .body(bytes)
}

/// An image of `acme/a` whose config and layer blobs are pushed; its
/// manifest is not.
struct Image {
    config: String,
    config_len: usize,
    layer: String,
    manifest: Vec<u8>,
    digest: String,
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

/// Pushes the config and the layer of an image into `acme/a`.
async fn image_blobs(t: &Repos) -> Image {
    let data = layer();
    let layer = push_blob(&t.writer, "acme/a", &data).await;
    let config = push_blob(&t.writer, "acme/a", CONFIG).await;
    let manifest = image_manifest((&config, CONFIG.len()), &[(&layer, data.len())], json!({}));
    Image {
        digest: sha256(&manifest),
        config,
        config_len: CONFIG.len(),
        layer,
        manifest,
    }
}

/// An image published in `acme/a` as `tag`.
async fn published_image(t: &Repos, tag: &str) -> Image {
    let image = image_blobs(t).await;
    let put = put_manifest(&t.writer, tag, OCI_MANIFEST, &image.manifest).await;
    put.expect(StatusCode::CREATED);
    image
}

// ------------------------------------------------------------- uploads ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_takes_chunks_in_order_and_refuses_a_gap() {
    let t = repos().await;
    let data = layer();
    let start = t.writer.post("/v2/acme/a/blobs/uploads/").await;
    let start = start.expect(StatusCode::ACCEPTED);
    assert_eq!(start.header("range"), "0-0");
    let uuid = start.header("docker-upload-uuid");
    let upload = start.location();
    assert_eq!(upload, format!("/v2/acme/a/blobs/uploads/{uuid}"));

    let r = chunk(&t.writer, &upload, Some("0-99"), &data[..100]).await;
    let r = r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-99");
    assert_eq!(r.location(), upload);
    let r = chunk(&t.writer, &upload, Some("200-249"), &data[200..]).await;
    let r = r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("range"), "0-99");
    assert_eq!(r.location(), upload);
    let status = t.writer.get(&upload).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-99");
    let r = chunk(&t.writer, &upload, None, &data[100..]).await;
    assert_eq!(r.expect(StatusCode::ACCEPTED).header("range"), "0-249");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_invisible_until_committed() {
    let t = repos().await;
    layer_uploaded(&t).await;
    let blob = format!("/v2/acme/a/blobs/{}", sha256(&layer()));
    assert_eq!(
        t.writer.head(&blob).await.status,
        StatusCode::NOT_FOUND,
        "visible before commit"
    );
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_under_the_wrong_digest_stores_nothing_and_ends() {
    let t = repos().await;
    let upload = layer_uploaded(&t).await;
    let wrong = sha256(b"something else");
    let commit = t.writer.put(&upload).query(&format!("digest={wrong}"));
    commit
        .await
        .expect_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    for d in [&sha256(&layer()), &wrong] {
        assert_eq!(
            t.admin.head(format!("/v2/acme/a/blobs/{d}")).await.status,
            StatusCode::NOT_FOUND,
            "{d} stored after a mismatch"
        );
    }
    let session = t.writer.get(&upload).await;
    session.expect_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_chunk_may_come_with_the_put() {
    let t = repos().await;
    let data = layer();
    let digest = sha256(&data);
    let upload = open_upload(&t.writer, "acme/a").await;
    let first = chunk(&t.writer, &upload, Some("0-149"), &data[..150]).await;
    first.expect(StatusCode::ACCEPTED);
    let r = t
        .writer
        .put(&upload)
        .query(&format!("digest={digest}"))
        .header(CONTENT_RANGE.as_str(), "150-249")
        .body(&data[150..])
        .await
        .expect(StatusCode::CREATED);
    let blob = format!("/v2/acme/a/blobs/{digest}");
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(r.location(), blob);
    let got = t.reader.get(&blob).await.expect(StatusCode::OK);
    assert_eq!(got.body.as_ref(), data.as_slice());
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_session_belongs_to_its_repository() {
    let t = repos().await;
    let upload = open_upload(&t.writer, "acme/a").await;
    let first = chunk(&t.writer, &upload, Some("0-149"), &layer()[..150]).await;
    first.expect(StatusCode::ACCEPTED);
    let elsewhere = upload.replace("/acme/a/", "/acme/b/");
    let session = t.writer.get(elsewhere).await;
    session.expect_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_is_gone() {
    let t = repos().await;
    let upload = open_upload(&t.writer, "acme/a").await;
    chunk(&t.writer, &upload, None, &[1u8; 10]).await;
    let cancel = t.writer.delete(&upload).await;
    cancel.expect(StatusCode::NO_CONTENT);
    let after = t.writer.patch(&upload).await;
    after.expect_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    t.server.stop().await;
}

// -------------------------------------------------------------- mounts ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_from_a_readable_repository_links_the_blob() {
    let t = repos().await;
    let digest = push_blob(&t.writer, "acme/a", &layer()).await;
    let r = mount(&t, &digest, "acme/a")
        .await
        .expect(StatusCode::CREATED);
    let blob = format!("/v2/acme/b/blobs/{digest}");
    assert_eq!(r.location(), blob);
    assert_eq!(t.reader.head(&blob).await.status, StatusCode::OK);
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_from_an_unreadable_repository_or_of_a_missing_blob_opens_an_upload() {
    let t = repos().await;
    let secret = push_blob(&t.admin, "other/secret", b"secret layer").await;
    for from in ["other/secret", "acme/a"] {
        let r = mount(&t, &secret, from).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "mount from {from}");
        assert!(r.header("docker-upload-uuid").len() > 10);
        t.writer.delete(r.location()).await;
    }
    let blob = format!("/v2/acme/b/blobs/{secret}");
    assert_eq!(t.admin.head(&blob).await.status, StatusCode::NOT_FOUND);
    t.server.stop().await;
}

// ----------------------------------------------------------- manifests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_manifest_is_served_as_pushed() {
    let t = repos().await;
    let image = image_blobs(&t).await;
    let r = put_manifest(&t.writer, "v1", OCI_MANIFEST, &image.manifest).await;
    let r = r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), image.digest);
    let by_digest = format!("/v2/acme/a/manifests/{}", image.digest);
    assert_eq!(r.location(), by_digest);
    assert_eq!(r.header_opt("oci-subject"), None);
    let got = t.reader.get("/v2/acme/a/manifests/v1").await;
    let got = got.expect(StatusCode::OK);
    assert_eq!(got.header("content-type"), OCI_MANIFEST);
    assert_eq!(got.body.as_ref(), image.manifest.as_slice());
    t.server.stop().await;
}

/// Checks that `acme/a` has no manifest `tag`.
async fn not_published(t: &Repos, tag: &str) {
    let head = t.admin.head(format!("/v2/acme/a/manifests/{tag}")).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND, "{tag} was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_of_a_missing_blob_is_refused() {
    let t = repos().await;
    let image = image_blobs(&t).await;
    let missing = sha256(b"never pushed");
    let config = (image.config.as_str(), image.config_len);
    let bad = image_manifest(config, &[(&missing, 3)], json!({}));
    let put = put_manifest(&t.writer, "bad", OCI_MANIFEST, &bad).await;
    put.expect_error(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
    not_published(&t, "bad").await;
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_too_large_is_refused() {
    let t = repos().await;
    let image = image_blobs(&t).await;
    let pad = json!({"annotations": {"pad": "x".repeat(4 * 1024 * 1024)}});
    let huge = image_manifest((&image.config, image.config_len), &[], pad);
    let put = put_manifest(&t.writer, "huge", OCI_MANIFEST, &huge).await;
    put.expect(StatusCode::PAYLOAD_TOO_LARGE);
    not_published(&t, "huge").await;
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_a_manifest_is_refused() {
    let t = repos().await;
    let put = put_manifest(&t.writer, "junk", OCI_MANIFEST, b"{not json").await;
    put.expect_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
    not_published(&t, "junk").await;
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_put_under_another_digest_is_refused() {
    let t = repos().await;
    let image = image_blobs(&t).await;
    let other = sha256(b"never pushed");
    let put = put_manifest(&t.writer, &other, OCI_MANIFEST, &image.manifest).await;
    put.expect_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_put_under_a_malformed_tag_is_refused() {
    let t = repos().await;
    let image = image_blobs(&t).await;
    let put = put_manifest(&t.writer, "bad tag!", OCI_MANIFEST, &image.manifest).await;
    put.expect(StatusCode::BAD_REQUEST);
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_names_its_subject_and_is_listed_as_a_referrer() {
    let t = repos().await;
    let image = published_image(&t, "v1").await;
    // Pushed by digest, untagged.
    let empty = push_blob(&t.writer, "acme/a", b"{}").await;
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.manifest.len()},
    }))
    .unwrap();
    let artifact_digest = sha256(&artifact);
    let put = put_manifest(&t.writer, &artifact_digest, OCI_MANIFEST, &artifact).await;
    let put = put.expect(StatusCode::CREATED);
    assert_eq!(put.header("oci-subject"), image.digest);
    let referrers = format!("/v2/acme/a/referrers/{}", image.digest);
    let refs = t.reader.get(referrers).await.expect(StatusCode::OK).json();
    assert_eq!(refs["manifests"][0]["digest"], artifact_digest.as_str());
    assert_eq!(
        refs["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_needs_its_children_in_the_repository() {
    let t = repos().await;
    let image = published_image(&t, "v1").await;
    let missing = index_of(&sha256(b"never pushed"), 10);
    let put = put_manifest(&t.writer, "multi", OCI_INDEX, &missing).await;
    put.expect_error(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
    let good_index = index_of(&image.digest, image.manifest.len());
    let put = put_manifest(&t.writer, "multi", OCI_INDEX, &good_index).await;
    put.expect(StatusCode::CREATED);
    assert_eq!(tags_of_a(&t.reader).await, json!(["multi", "v1"]));
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patching_a_manifest_is_unsupported() {
    let t = repos().await;
    published_image(&t, "multi").await;
    let patch = t.writer.patch("/v2/acme/a/manifests/multi").await;
    patch.expect_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
    t.server.stop().await;
}

// --------------------------------------------------------- who may push ----

/// Readers and strangers are denied, anonymous callers are asked to log
/// in, even on a public repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writers_may_push() {
    let t = repos().await;
    for (api, repo, expected) in [
        (&t.reader, "acme/a", StatusCode::FORBIDDEN),
        (&t.writer, "other/secret", StatusCode::FORBIDDEN),
        (&t.anonymous, "pub/open", StatusCode::UNAUTHORIZED),
        (&t.anonymous, "acme/a", StatusCode::UNAUTHORIZED),
    ] {
        let want = if expected == StatusCode::FORBIDDEN {
            "DENIED"
        } else {
            "UNAUTHORIZED"
        };
        let upload = api.post(format!("/v2/{repo}/blobs/uploads/")).await;
        upload.expect_error(expected, want);
    }
    let image = image_blobs(&t).await;
    let put = put_manifest(&t.reader, "v9", OCI_MANIFEST, &image.manifest).await;
    put.expect_error(StatusCode::FORBIDDEN, "DENIED");
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_may_not_delete() {
    let t = repos().await;
    let image = published_image(&t, "v1").await;
    for path in [
        "/v2/acme/a/manifests/v1".to_string(),
        format!("/v2/acme/a/blobs/{}", image.layer),
    ] {
        let delete = t.reader.delete(path).await;
        delete.expect_error(StatusCode::FORBIDDEN, "DENIED");
    }
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_needs_the_repository_to_exist() {
    let t = repos().await;
    let upload = t.admin.post("/v2/acme/nothing/blobs/uploads/").await;
    upload.expect_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    t.server.stop().await;
}

// ------------------------------------------------------------- deletes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_tag_keeps_its_manifest() {
    let t = repos().await;
    let image = published_image(&t, "v1").await;
    let v1 = "/v2/acme/a/manifests/v1";
    t.writer.delete(v1).await.expect(StatusCode::ACCEPTED);
    let by_digest = format!("/v2/acme/a/manifests/{}", image.digest);
    assert_eq!(t.admin.head(v1).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.admin.head(&by_digest).await.status, StatusCode::OK);
    t.server.stop().await;
}

/// The manifest goes with all its tags; an index of it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_manifest_by_digest_deletes_its_tags() {
    let t = repos().await;
    let image = published_image(&t, "v1").await;
    put_manifest(&t.writer, "again", OCI_MANIFEST, &image.manifest).await;
    let index = index_of(&image.digest, image.manifest.len());
    let put = put_manifest(&t.writer, "multi", OCI_INDEX, &index).await;
    put.expect(StatusCode::CREATED);
    let by_digest = format!("/v2/acme/a/manifests/{}", image.digest);
    let delete = t.writer.delete(&by_digest).await;
    delete.expect(StatusCode::ACCEPTED);
    assert_eq!(t.admin.head(&by_digest).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        tags_of_a(&t.admin).await,
        json!(["multi"]),
        "tags of a deleted manifest stay"
    );
    let again = t.writer.delete(&by_digest).await;
    again.expect_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    t.server.stop().await;
}

/// A blob's link goes from one repository; the bytes stay for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_blob_unlinks_it_from_one_repository() {
    let t = repos().await;
    let digest = push_blob(&t.writer, "acme/a", &layer()).await;
    mount(&t, &digest, "acme/a")
        .await
        .expect(StatusCode::CREATED);
    let blob = format!("/v2/acme/a/blobs/{digest}");
    t.writer.delete(&blob).await.expect(StatusCode::ACCEPTED);
    t.admin.get(&blob).await.expect(StatusCode::NOT_FOUND);
    let again = t.writer.delete(&blob).await;
    again.expect_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    let in_b = format!("/v2/acme/b/blobs/{digest}");
    assert_eq!(t.admin.head(&in_b).await.status, StatusCode::OK);
    t.server.stop().await;
}

// -------------------------------------------------------------- expiry ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_uploads_expire_and_are_bounded() {
    let server = TestServer::start_with(|c| {
        c.uploads.max_sessions = 2;
        c.uploads.idle_timeout = Duration::from_millis(300);
    })
    .await;
    server.create_repo("acme", "a", "private").await;
    let admin = Api::new(&server.client, &server.url).creds(ADMIN);
    let open = || admin.post("/v2/acme/a/blobs/uploads/");
    let first = open().await.expect(StatusCode::ACCEPTED).location();
    admin.patch(&first).body(vec![7u8; 1000]).await;
    open().await.expect(StatusCode::ACCEPTED);
    let refused = open().await;
    refused.expect_error(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS");
    // The first one's chunk is a part; the second has none yet.
    let parts = server.data_dir().join("upload-parts");
    assert_eq!(std::fs::read_dir(&parts).unwrap().count(), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let expired = admin.get(&first).await;
    expired.expect_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        std::fs::read_dir(&parts).unwrap().count(),
        0,
        "expired uploads left files"
    );
    open().await.expect(StatusCode::ACCEPTED);
    server.stop().await;
}
