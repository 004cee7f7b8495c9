//! The server with its blobs in an S3-compatible bucket (`--blob-store
//! s3://…`, against moto): a poll mirrors into the bucket, a push streams
//! into it, and skopeo pulls both back byte for byte.

use mirror_server::config::BlobStoreConfig;
use reqwest::StatusCode;

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo};
use crate::support::images::ImageSpec;
use crate::support::registry::Registry;
use crate::support::s3::S3Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_in_a_bucket_are_mirrored_pushed_and_pulled() {
    let up = Registry::plain().await;
    let image = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("in a bucket"))
        .await;
    let bucket = S3Server::shared().bucket().await;
    let options = bucket.options("regmirror");
    let server =
        TestServer::start_with(|c| c.blob_store = BlobStoreConfig::S3(Box::new(options))).await;
    server.create_repo("mirrors", "copy", "private").await;

    // A poll copies every blob into the bucket.
    let id = server
        .add_policy("mirrors/app", &up.url(), "team/app")
        .await;
    server.wait_done(&server.submit_poll(Some(&id)).await).await;
    let keys = bucket.keys("regmirror/").await;
    for blob in image.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let key = format!("regmirror/blobs/sha256/{hex}");
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }
    assert!(
        keys.iter().all(|k| k.starts_with("regmirror/blobs/")),
        "an upload left behind: {keys:?}"
    );

    // Pulled back: manifests and blobs read from the bucket.
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let at = |repo: &str| format!("docker://{}/{repo}:v1", server.host_port);
    let raw = skopeo(vec![
        "inspect".into(),
        "--raw".into(),
        format!("--creds={creds}"),
        "--tls-verify=false".into(),
        at("mirrors/app"),
    ])
    .await;
    assert_eq!(sha256(&raw), image.digest);
    let out = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:v1", out.path().join("layout").display());
    // Every blob read back from the bucket re-hashes to its digest.
    skopeo(vec![
        "copy".into(),
        "--preserve-digests".into(),
        format!("--src-creds={creds}"),
        "--src-tls-verify=false".into(),
        at("mirrors/app"),
        layout,
    ])
    .await;
    for blob in image.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(out.path().join("layout/blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256(&bytes), blob, "pulled from the bucket");
    }
    // A push of an image the bucket does not hold yet: every blob goes
    // through an upload session into the bucket.
    let other = up
        .pusher()
        .push_image("team/other", "v1", ImageSpec::small("pushed into a bucket"))
        .await;
    let mut args = vec!["copy".to_string(), "--preserve-digests".to_string()];
    args.extend(up.skopeo_args("src"));
    args.push(format!("--dest-creds={creds}"));
    args.push("--dest-tls-verify=false".into());
    args.push(format!("docker://{}", up.reference("team/other", "v1")));
    args.push(at("mirrors/copy"));
    skopeo(args).await;
    let raw = skopeo(vec![
        "inspect".into(),
        "--raw".into(),
        format!("--creds={creds}"),
        "--tls-verify=false".into(),
        at("mirrors/copy"),
    ])
    .await;
    assert_eq!(sha256(&raw), other.digest);
    let keys_after = bucket.keys("regmirror/").await;
    for blob in other.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let key = format!("regmirror/blobs/sha256/{hex}");
        assert!(keys_after.contains(&key), "{key} not in {keys_after:?}");
    }
    let keys = bucket.keys("regmirror/").await;
    assert!(
        keys.iter().all(|k| k.starts_with("regmirror/blobs/")),
        "an upload left behind after the push: {keys:?}"
    );
}

/// With `[s3] redirect_secs`, an authorized blob `GET` is a `307` to a
/// presigned URL of the bucket (the bytes hash to the digest; a `Range`
/// goes along), `HEAD` is answered by the server, a caller without access
/// gets no URL, and skopeo pulls through the redirects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_gets_redirect_to_presigned_urls_of_the_bucket() {
    let up = Registry::plain().await;
    let image = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("redirected"))
        .await;
    let bucket = S3Server::shared().bucket().await;
    let options = bucket.options("r");
    let server = TestServer::start_with(|c| {
        c.blob_store = BlobStoreConfig::S3(Box::new(options));
        c.blob_redirect = Some(std::time::Duration::from_secs(300));
    })
    .await;
    let id = server
        .add_policy("mirrors/app", &up.url(), "team/app")
        .await;
    server.wait_done(&server.submit_poll(Some(&id)).await).await;

    let plain = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for blob in image.blob_digests() {
        let url = format!("{}/v2/mirrors/app/blobs/{blob}", server.url);
        let got = plain
            .get(&url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::TEMPORARY_REDIRECT, "{blob}");
        assert_eq!(got.headers()["docker-content-digest"], blob.as_str());
        let location = got.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with(&S3Server::shared().endpoint()),
            "{location}"
        );
        let bytes = plain.get(&location).send().await.unwrap();
        assert_eq!(bytes.status(), StatusCode::OK);
        assert_eq!(sha256(&bytes.bytes().await.unwrap()), blob);
        let ranged = plain
            .get(&location)
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(ranged.bytes().await.unwrap().len(), 10);
        // HEAD stays on the server; the anonymous get no URL.
        let head = plain
            .head(&url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        let anonymous = plain.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert!(anonymous.headers().get("location").is_none());
    }

    // skopeo follows the redirects.
    let out = tempfile::tempdir().unwrap();
    skopeo(vec![
        "copy".into(),
        format!("--src-creds=admin:{ADMIN_PASSWORD}"),
        "--src-tls-verify=false".into(),
        format!("docker://{}/mirrors/app:v1", server.host_port),
        format!("dir:{}", out.path().display()),
    ])
    .await;
    for blob in image.blob_digests() {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(out.path().join(hex)).unwrap();
        assert_eq!(sha256(&bytes), blob);
    }
}
