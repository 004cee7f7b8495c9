//! mirror-core against Debian's `docker-registry` on loopback, seeded with
//! real images: every auth mode, TLS, initial evaluation on and off, moved
//! tags, no-change polls, and digests checked against upstream.

#[path = "../support/mod.rs"]
mod support;

mod hub_tags;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mirror_core::remote::{HttpConnector, HttpSettings, RetryPolicy};
use mirror_core::store::FsOptions;
use mirror_core::{
    Digest, ErrorKind, JobStatus, Mirror, MirrorSettings, PolicyForm, RepositoryName, Secret,
    Stores,
};
use support::store_checks::{assert_complete, local_tags, log_text, upstream_tags};
use support::{Auth, ImageSpec, LayerSpec, ManifestKind, Registry};

fn mirror(dir: &Path) -> Mirror {
    let retry = RetryPolicy {
        max_retries: 3,
        initial: Duration::from_millis(50),
        max: Duration::from_secs(2),
    };
    Mirror::new(
        Stores::embedded(dir, FsOptions { durable: false }).unwrap(),
        Arc::new(HttpConnector {
            settings: HttpSettings {
                retry: retry.clone(),
                ..Default::default()
            },
        }),
        MirrorSettings {
            retry,
            heartbeat_interval: Duration::from_millis(200),
            ..Default::default()
        },
    )
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
}

/// A policy form for `repo` on `reg`, with the registry's credentials.
fn form(reg: &Registry, repo: &str) -> PolicyForm {
    let (username, password) = reg.credentials().unwrap_or_default();
    PolicyForm {
        username: Some(username),
        password: Some(Secret::new(password)),
        remote_ca: reg.is_tls().then(|| reg.ca_pem()),
        ..PolicyForm::new(reg.url(), repo)
    }
}

async fn seed(reg: &Registry, repo: &str) {
    let p = reg.pusher();
    p.push_image(repo, "v1", ImageSpec::small("one")).await;
    p.push_image(repo, "v2", ImageSpec::small("two").oci())
        .await;
    let amd = p
        .push_image(repo, "amd64-only", ImageSpec::small("multi amd64").oci())
        .await;
    let arm = p
        .push_image(
            repo,
            "arm64-only",
            ImageSpec::small("multi arm64")
                .oci()
                .platform("linux", "arm64"),
        )
        .await;
    p.push_index(
        repo,
        "multi",
        &[(amd, "linux", "amd64"), (arm, "linux", "arm64")],
        ManifestKind::Oci,
    )
    .await;
}

#[tokio::test]
async fn initial_evaluation_mirrors_every_tag_including_a_large_layer_and_an_index() {
    let reg = Registry::builder().log_level("info").start().await;
    seed(&reg, "team/app").await;
    let big = ImageSpec::small("big").layer(LayerSpec::Random {
        size: 64 * 1024 * 1024 + 123,
        seed: 42,
    });
    reg.pusher().push_image("team/app", "big", big).await;

    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let p = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    let log = log_text(&m, &job.id).await;
    assert_eq!(job.status, JobStatus::Done, "{log}");
    assert_eq!(
        local_tags(&m, "mirror/app").await,
        upstream_tags(&reg, "team/app").await
    );
    assert_complete(&m, "mirror/app").await;
    // The index's children came along.
    let multi = m
        .stores()
        .repos
        .tag(&name("mirror/app"), "multi")
        .await
        .unwrap()
        .unwrap();
    let rec = m
        .stores()
        .repos
        .manifest(&name("mirror/app"), &multi.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.children.len(), 2);
    assert!(log.contains("listed 6 tags"), "{log}");
    // The tags as the API shows them: one shape for the server and Python,
    // with the image behind each tag.
    let views = m.tag_views(&name("mirror/app")).await.unwrap();
    let names: Vec<&str> = views.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["amd64-only", "arm64-only", "big", "multi", "v1", "v2"]
    );
    let multi_view = views.iter().find(|t| t.name == "multi").unwrap();
    assert_eq!(multi_view.platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(multi_view.digest, multi.digest.to_string());
    assert_eq!(
        multi_view.manifest.architecture, "",
        "an index has no platform of its own"
    );
    let mirroring = multi_view
        .mirroring
        .as_ref()
        .expect("mirrored by the policy");
    assert_eq!(mirroring.mirroring_policy_id, p.id);
    assert_eq!(mirroring.remote_tag, "multi");
    let arm = views.iter().find(|t| t.name == "arm64-only").unwrap();
    assert_eq!(
        (arm.manifest.os.as_str(), arm.manifest.architecture.as_str()),
        ("linux", "arm64")
    );
    assert!(views.iter().find(|t| t.name == "big").unwrap().image_size > Some(64 << 20));

    // A poll with no change copies nothing and GETs no manifest.
    let gets_before = manifest_gets(&reg);
    assert!(
        gets_before >= 6,
        "the registry log shows {gets_before} manifest GETs"
    );
    let job = m.poll(&p.id).await.unwrap();
    let log = log_text(&m, &job.id).await;
    assert_eq!(job.status, JobStatus::Done, "{log}");
    assert!(log.contains("0 tags to copy, 6 unchanged"), "{log}");
    assert_eq!(
        manifest_gets(&reg),
        gets_before,
        "a no-change poll sent manifest GETs"
    );
    let policy = m.policy(&p.id).await.unwrap();
    assert_eq!(policy.last_status.code, "SUCCESS");
    assert!(policy.last_mirrored_at.is_some());
}

/// Manifest GETs the registry has logged so far.
fn manifest_gets(reg: &Registry) -> usize {
    reg.logs()
        .lines()
        .filter(|l| l.contains("http.request.method=GET") && l.contains("/manifests/"))
        .count()
}

#[tokio::test]
async fn save_without_initial_evaluation_mirrors_only_later_tags_and_follows_moves() {
    let reg = Registry::plain().await;
    seed(&reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let p = m
        .add_policy(
            &name("mirror/app"),
            &PolicyForm {
                initial_evaluation: Some(false),
                ..form(&reg, "team/app")
            },
            None,
        )
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert!(
        local_tags(&m, "mirror/app").await.is_empty(),
        "pre-existing tags were copied"
    );

    // A new tag, and a pre-existing tag that moves.
    let pusher = reg.pusher();
    let v3 = pusher
        .push_image("team/app", "v3", ImageSpec::small("three"))
        .await;
    let v1b = pusher
        .push_image("team/app", "v1", ImageSpec::small("one, rebuilt"))
        .await;
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    let local = local_tags(&m, "mirror/app").await;
    assert_eq!(
        local,
        BTreeMap::from([
            ("v1".to_string(), v1b.digest.clone()),
            ("v3".to_string(), v3.digest)
        ])
    );

    // v1 moves again: the mirrored tag follows.
    let v1c = pusher
        .push_image("team/app", "v1", ImageSpec::small("one, third build"))
        .await;
    let job = m.poll(&p.id).await.unwrap();
    assert!(
        log_text(&m, &job.id)
            .await
            .contains("copied moved tag team/app:v1")
    );
    assert_eq!(local_tags(&m, "mirror/app").await["v1"], v1c.digest);
    assert_complete(&m, "mirror/app").await;
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let reg = Registry::builder()
        .auth(Auth::htpasswd("bot", "s3cret-basic"))
        .start()
        .await;
    seed(&reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());

    let mut bad = form(&reg, "team/app");
    bad.password = Some(Secret::new("wrong-password"));
    let err = m
        .add_policy(&name("mirror/app"), &bad, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(
        err.to_string()
            .contains("authentication failed for team/app"),
        "{err}"
    );

    let mut anon = form(&reg, "team/app");
    anon.username = None;
    anon.password = None;
    let err = m
        .add_policy(&name("mirror/app"), &anon, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("requires credentials"), "{err}");

    let p = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(
        local_tags(&m, "mirror/app").await,
        upstream_tags(&reg, "team/app").await
    );
    let access = m
        .check_connection(&form(&reg, "team/app").endpoint().unwrap())
        .await
        .unwrap();
    assert!(access.read && access.write);
}

#[tokio::test]
async fn bearer_token_auth_with_cached_tokens() {
    let reg = Registry::builder()
        .auth(Auth::token("bot", "s3cret-token"))
        .start()
        .await;
    seed(&reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());

    let mut bad = form(&reg, "team/app");
    bad.password = Some(Secret::new("wrong-password"));
    let err = m
        .add_policy(&name("mirror/app"), &bad, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(
        err.to_string()
            .contains("token server refused user \"bot\""),
        "{err}"
    );

    let p = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    reg.reset_token_requests();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(
        local_tags(&m, "mirror/app").await,
        upstream_tags(&reg, "team/app").await
    );
    // One token for the pull scope serves the whole poll.
    assert!(
        reg.token_requests() <= 2,
        "{} token requests",
        reg.token_requests()
    );
    assert_complete(&m, "mirror/app").await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_mid_poll() {
    let reg = Registry::builder()
        .auth(Auth::token("bot", "pw"))
        .token_ttl(Duration::from_secs(2))
        .start()
        .await;
    seed(&reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let p = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Done);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    reg.pusher()
        .push_image("team/app", "late", ImageSpec::small("late"))
        .await;
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert!(local_tags(&m, "mirror/app").await.contains_key("late"));
}

/// Requests answered 401 together (a token expiring under 16 HEADs in
/// flight) fetch one new token between them, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_token_refresh() {
    use mirror_core::remote::RemoteConnector;
    let reg = Registry::builder()
        .auth(Auth::token("bot", "pw"))
        .token_ttl(Duration::from_secs(2))
        .start()
        .await;
    seed(&reg, "team/app").await;
    let remote = HttpConnector::default()
        .connect(&form(&reg, "team/app").endpoint().unwrap())
        .unwrap();
    let repo = name("team/app");
    remote.head_manifest(&repo, "v1").await.unwrap();
    // Past the token's lifetime: every request below needs a new one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    reg.reset_token_requests();
    let heads = (0..16).map(|_| remote.head_manifest(&repo, "v1"));
    for head in futures_util::future::join_all(heads).await {
        head.unwrap();
    }
    assert_eq!(reg.token_requests(), 1, "{:?}", reg.token_log());
}

#[tokio::test]
async fn tls_with_remote_ca_without_it_and_with_verification_skipped() {
    let reg = Registry::builder().tls(true).start().await;
    seed(&reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());

    let mut no_ca = form(&reg, "team/app");
    no_ca.remote_ca = None;
    let err = m
        .add_policy(&name("mirror/nope"), &no_ca, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("TLS error talking to"), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let p = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(
        local_tags(&m, "mirror/app").await,
        upstream_tags(&reg, "team/app").await
    );

    let mut skip = no_ca;
    skip.skip_tls_verification = Some(true);
    let p = m
        .add_policy(&name("mirror/skip"), &skip, None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    // Blobs already stored for mirror/app are reused, not fetched again.
    assert!(log_text(&m, &job.id).await.contains("0 blobs copied"));
    assert_eq!(
        local_tags(&m, "mirror/skip").await,
        upstream_tags(&reg, "team/app").await
    );
}

#[tokio::test]
async fn unknown_repository_and_unreachable_host_say_so() {
    let reg = Registry::plain().await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let err = m
        .add_policy(&name("mirror/x"), &form(&reg, "no/such"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains("repository no/such not found"),
        "{err}"
    );

    let mut gone = form(&reg, "team/app");
    gone.remote_host = Some(format!(
        "http://127.0.0.1:{}",
        support::registry::free_port()
    ));
    let err = m
        .add_policy(&name("mirror/x"), &gone, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

/// An OCI artifact with unknown config and layer media types is copied as
/// opaque blobs, digest preserved.
#[tokio::test]
async fn oci_artifacts_are_copied_as_opaque_blobs() {
    let reg = Registry::plain().await;
    let p = reg.pusher();
    let payload = b"{\"sbom\": true}".to_vec();
    let config = b"{}".to_vec();
    let payload_digest = p.push_blob("team/app", payload.clone()).await;
    let config_digest = p.push_blob("team/app", config.clone()).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.example.sbom.layer.v1+json", "digest": payload_digest, "size": payload.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = p
        .push_manifest_raw(
            "team/app",
            "sbom",
            "application/vnd.oci.image.manifest.v1+json",
            bytes,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let pol = m
        .add_policy(&name("mirror/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&pol.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(local_tags(&m, "mirror/app").await["sbom"], digest);
    let rec = m
        .stores()
        .repos
        .manifest(&name("mirror/app"), &Digest::parse(&digest).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.artifact_type.as_deref(),
        Some("application/vnd.example.sbom.v1")
    );
    assert_complete(&m, "mirror/app").await;
}
