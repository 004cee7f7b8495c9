//! Pull-through caches (`[[proxy_cache]]`, `/api/v0/proxyCaches`) in front
//! of Debian's `docker-registry`, through the fault proxy (which counts
//! what reaches the upstream): skopeo pulls an image through the cache
//! with digests equal upstream's; a second pull sends nothing upstream;
//! with the upstream stopped, cached tags (stale-if-error) and digests are
//! still served and an uncached one fails with a clear 503; Docker's
//! `registry-mirrors` form and containerd's `?ns=` (and `ctr` pulling
//! through the cache as its `docker.io` mirror, and `docker` pulling
//! through it as its `registry-mirrors` entry); concurrent pulls of a
//! missing blob fetch it once; a corrupt upstream blob is never stored or
//! served whole; a poll policy pre-warms a cached repository; who may
//! create caches, pull and push.

use std::time::Duration;

use mirror_core::proxy_cache::ProxyCacheForm;
use reqwest::StatusCode;
use serde_json::json;

use crate::server::{ADMIN_PASSWORD, TestServer, sha256, skopeo, skopeo_output};
use crate::support::containerd::{Containerd, mirror_hosts};
use crate::support::dockerd::Dockerd;
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::{Auth, ImageSpec, LayerSpec, Registry};

const UP_USER: &str = "cache-bot";
const UP_PASSWORD: &str = "cache-s3cret";

fn form(namespace: &str, remote: &str) -> ProxyCacheForm {
    ProxyCacheForm {
        namespace: Some(namespace.into()),
        remote_host: Some(remote.into()),
        ..Default::default()
    }
}

/// Pulls `reference` from the server with skopeo (as admin, or anonymous)
/// into a `dir:`; checks the manifest hashes to `digest` and every blob
/// re-hashes to its name.
async fn pull(server: &TestServer, reference: &str, digest: &str, admin: bool) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("image");
    let mut args = vec!["copy".to_string(), "--src-tls-verify=false".into()];
    if admin {
        args.push(format!("--src-creds=admin:{ADMIN_PASSWORD}"));
    }
    args.push(format!("docker://{}/{reference}", server.host_port));
    args.push(format!("dir:{}", dir.display()));
    skopeo(args).await;
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(sha256(&manifest), digest, "{reference}");
    let mut blobs = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_str().unwrap().to_string();
        if name.len() == 64 {
            let bytes = std::fs::read(f.path()).unwrap();
            assert_eq!(sha256(&bytes), format!("sha256:{name}"), "{reference}");
            blobs += 1;
        }
    }
    assert!(blobs >= 2, "{reference}: config and layers pulled");
}

/// Sets the `hub` cache's tag TTL to 0: every pull of a tag checks it.
async fn check_tags_on_every_pull(server: &TestServer) {
    server
        .admin()
        .put("/api/v0/proxyCaches/hub")
        .json(&json!({"tagTTLSecs": 0}))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_fill_the_cache_once_and_survive_the_upstream_going_down() {
    let mut up = Registry::builder()
        .auth(Auth::htpasswd(UP_USER, UP_PASSWORD))
        .start()
        .await;
    let pusher = up.pusher();
    let image = ImageSpec::small("cached")
        .layer(LayerSpec::Random {
            size: 3 << 20,
            seed: 7,
        })
        .oci();
    let alpine = pusher.push_image("library/alpine", "3", image).await;
    let other = pusher
        .push_image("library/alpine", "edge", ImageSpec::small("edge"))
        .await;
    let proxy = FaultProxy::start(&up, 3);
    let remote = proxy.url();
    let server = TestServer::start_with(|c| {
        c.proxy_caches = vec![ProxyCacheForm {
            username: Some(UP_USER.into()),
            password: Some(UP_PASSWORD.into()),
            ..form("hub", &remote)
        }];
    })
    .await;

    pull(&server, "hub/library/alpine:3", &alpine.digest, true).await;
    let upstream_requests = proxy.requests().len();
    assert!(upstream_requests >= 3, "{:?}", proxy.requests());
    // The cached repository is listed like any other.
    let catalog = server
        .admin()
        .get("/v2/_catalog")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        catalog["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "hub/library/alpine"),
        "{catalog}"
    );

    // A second pull within the TTL: nothing reaches the upstream.
    pull(&server, "hub/library/alpine:3", &alpine.digest, true).await;
    assert_eq!(
        proxy.requests().len(),
        upstream_requests,
        "{:?}",
        proxy.requests()
    );
    assert!(server.metric("regmirror_cache_hits_total").await >= 3.0);

    // Tags are checked on every pull from now on; with the upstream
    // stopped, the cached tag and digest are still served.
    check_tags_on_every_pull(&server).await;
    up.stop();
    pull(&server, "hub/library/alpine:3", &alpine.digest, true).await;
    pull(
        &server,
        &format!("hub/library/alpine@{}", alpine.digest),
        &alpine.digest,
        true,
    )
    .await;
    assert!(server.metric("regmirror_cache_stale_served_total").await >= 1.0);
    // What was never cached cannot be served: a 503 that says why.
    let resp = server
        .admin()
        .get("/v2/hub/library/alpine/manifests/edge")
        .await;
    let body = resp.expect(StatusCode::SERVICE_UNAVAILABLE).json();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nothing is cached"),
        "{body}"
    );
    assert_ne!(other.digest, alpine.digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_registry_mirrors_and_containerd_ns_reach_the_default_cache() {
    let up = Registry::plain().await;
    let alpine = up
        .pusher()
        .push_image("library/alpine", "3", ImageSpec::small("mirror form"))
        .await;
    let remote = up.url();
    let server = TestServer::start_with(|c| {
        c.proxy_caches = vec![ProxyCacheForm {
            anonymous_pull: Some(true),
            is_default: Some(true),
            ..form("docker.io", &remote)
        }];
    })
    .await;
    // Docker's registry-mirrors: the Docker Hub name, no namespace;
    // anonymous, as the daemon pulls.
    let resp = server.api().get("/v2/library/alpine/manifests/3").await;
    let resp = resp.expect(StatusCode::OK);
    assert_eq!(resp.header("docker-content-digest"), alpine.digest);
    // containerd's hosts.toml mirror adds ?ns=<registry>.
    let resp = server
        .api()
        .get("/v2/library/alpine/manifests/3?ns=docker.io")
        .await;
    assert_eq!(
        resp.expect(StatusCode::OK).header("docker-content-digest"),
        alpine.digest
    );
    // skopeo with a registries.conf mirror, as podman and CRI-O use it.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            server.host_port
        ),
    )
    .unwrap();
    let out = dir.path().join("image");
    skopeo(vec![
        "--registries-conf".into(),
        conf.display().to_string(),
        "copy".into(),
        "docker://docker.io/library/alpine:3".into(),
        format!("dir:{}", out.display()),
    ])
    .await;
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(sha256(&manifest), alpine.digest);
    // It is stored under the cache's namespace.
    server
        .admin()
        .get("/v2/docker.io/library/alpine/tags/list")
        .await
        .expect(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctr_pulls_through_the_cache_as_its_docker_io_mirror() {
    let up = Registry::plain().await;
    let pushed = up
        .pusher()
        .push_image("library/busybox", "1", ImageSpec::small("for containerd"))
        .await;
    let proxy = FaultProxy::start(&up, 4);
    let remote = proxy.url();
    let server = TestServer::start_with(|c| {
        c.proxy_caches = vec![ProxyCacheForm {
            anonymous_pull: Some(true),
            // Not named docker.io: marked default, it takes containerd's
            // `?ns=docker.io`.
            is_default: Some(true),
            ..form("hub", &remote)
        }];
    })
    .await;
    let hosts = tempfile::tempdir().unwrap();
    mirror_hosts(hosts.path(), "docker.io", &server.url);
    let containerd = Containerd::shared();
    let pull = containerd
        .ctr(
            "proxy-cache",
            vec![
                "images".into(),
                "pull".into(),
                "--hosts-dir".into(),
                hosts.path().display().to_string(),
                "--snapshotter".into(),
                "native".into(),
                "docker.io/library/busybox:1".into(),
            ],
        )
        .await;
    assert!(
        pull.status.success(),
        "ctr pull: {}\n{}\ncontainerd: {}",
        String::from_utf8_lossy(&pull.stdout),
        String::from_utf8_lossy(&pull.stderr),
        containerd
            .logs()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let listed = containerd
        .ctr("proxy-cache", vec!["images".into(), "ls".into()])
        .await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&pushed.digest), "{listed}");
    // containerd asked the mirror with `?ns=docker.io`; the image came from
    // the upstream once and is held under the cache's namespace.
    assert!(
        proxy.count(|r| r.path.contains("/blobs/")) >= 2,
        "{:?}",
        proxy.requests()
    );
    let tags = server
        .admin()
        .get("/v2/hub/library/busybox/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["tags"], json!(["1"]), "{tags}");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_pulls_through_the_cache_as_its_registry_mirror() {
    let mut up = Registry::plain().await;
    let pushed = up
        .pusher()
        .push_image(
            "library/dockertest",
            "1",
            // Docker unpacks layers: real tar+gzip ones.
            ImageSpec::small("for dockerd").layer(LayerSpec::file(
                "data.bin",
                (0..2u32 << 20)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect::<Vec<u8>>(),
            )),
        )
        .await;
    let proxy = FaultProxy::start(&up, 4);
    let server = TestServer::start_with(|c| {
        c.proxy_caches = vec![ProxyCacheForm {
            anonymous_pull: Some(true),
            is_default: Some(true),
            ..form("hub", &proxy.url())
        }];
    })
    .await;
    // A node configured with `registry-mirrors`: `docker pull dockertest:1`
    // means Docker Hub's `library/dockertest`, asked of the mirror first
    // (and of Docker Hub itself, which this sandbox cannot reach, when the
    // mirror fails, so a pull that works came through the cache).
    let docker = Dockerd::start_with_mirror(&server.url);
    // Pulls `dockertest:1` (removing it first if `again`) and checks the
    // digest docker recorded is upstream's.
    let (docker, pushed) = (&docker, &pushed);
    let pull = |again: bool| async move {
        if again {
            docker.docker_ok(&["rmi", "dockertest:1"]).await;
        }
        docker.docker_ok(&["pull", "dockertest:1"]).await;
        let format = ["image", "inspect", "--format", "{{json .RepoDigests}}"];
        let digests = docker
            .docker_ok(&[&format[..], &["dockertest:1"]].concat())
            .await;
        assert!(
            digests.contains(&format!("dockertest@{}", pushed.digest)),
            "{digests} vs {}",
            pushed.digest
        );
    };
    pull(false).await;
    let upstream = proxy.requests().len();
    assert!(
        proxy.count(|r| r.path.contains("/blobs/")) >= 3,
        "{:?}",
        proxy.requests()
    );

    // Removed and pulled again within the TTL: nothing reaches the upstream.
    pull(true).await;
    assert_eq!(proxy.requests().len(), upstream, "{:?}", proxy.requests());

    // The upstream stopped and the tag due for a check: still pulled, from
    // the cache (stale-if-error).
    check_tags_on_every_pull(&server).await;
    up.stop();
    pull(true).await;
    assert!(server.metric("regmirror_cache_stale_served_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_policy_prewarms_a_cached_repository() {
    let mut up = Registry::plain().await;
    let pushed = up
        .pusher()
        .push_image("library/warm", "1", ImageSpec::small("pre-warmed"))
        .await;
    let server = TestServer::start_with(|c| c.proxy_caches = vec![form("hub", &up.url())]).await;
    // The cached repository is made ahead of any pull, in the cache's
    // namespace (its name's slash percent-encoded in /api/v0 paths), and a
    // poll policy fills it.
    server.create_repo("hub", "library/warm", "private").await;
    let form = json!({"remoteHost": up.url(), "remoteRepository": "library/warm"});
    let job = server
        .apply_policy(Some(("admin", ADMIN_PASSWORD)), "hub/library%2Fwarm", form)
        .await;
    server.wait_done(&job).await;
    let repo = server
        .admin()
        .get("/api/v0/repositories/hub/library%2Fwarm")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(repo["name"], "library/warm", "{repo}");
    assert_eq!(repo["cachedFrom"], json!(up.url()), "{repo}");
    let tags = server
        .admin()
        .get("/api/v0/repositories/hub/library%2Fwarm/tags")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags[0]["name"], "1", "{tags}");

    // Never pulled through the cache, the upstream gone: served as stored.
    up.stop();
    pull(&server, "hub/library/warm:1", &pushed.digest, true).await;
    // A name that is not valid component by component is still refused.
    let bad = server
        .admin()
        .get("/api/v0/repositories/hub/library%2F..%2Fwarm")
        .await;
    bad.expect(StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_of_a_missing_blob_share_one_upstream_fetch() {
    let up = Registry::plain().await;
    let image = ImageSpec::new(vec![LayerSpec::Random {
        size: 24 << 20,
        seed: 11,
    }]);
    let pushed = up.pusher().push_image("team/big", "v1", image).await;
    let layer = pushed.layers[0].digest.clone();
    let proxy = FaultProxy::start(&up, 5);
    // Slow enough that every client asks while the fetch is under way.
    proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 12 << 20,
        })
        .get()
        .blobs(),
    );
    let remote = proxy.url();
    let server = TestServer::start_with(|c| c.proxy_caches = vec![form("up", &remote)]).await;
    server
        .admin()
        .get("/v2/up/team/big/manifests/v1")
        .await
        .expect(StatusCode::OK);
    let pulls = (0..20).map(|_| {
        let req = server.request(
            reqwest::Method::GET,
            &format!("/v2/up/team/big/blobs/{layer}"),
            Some(("admin", ADMIN_PASSWORD)),
        );
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            sha256(&resp.bytes().await.unwrap())
        }
    });
    let digests = futures_util::future::join_all(pulls).await;
    assert!(digests.iter().all(|d| *d == layer), "{digests:?}");
    let fetches = proxy.count(|r| r.method == reqwest::Method::GET && r.path.contains(&layer[7..]));
    assert_eq!(fetches, 1, "{:?}", proxy.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_upstream_blob_is_neither_stored_nor_served_whole() {
    let up = Registry::plain().await;
    let image = ImageSpec::new(vec![LayerSpec::Random {
        size: 2 << 20,
        seed: 3,
    }]);
    let pushed = up.pusher().push_image("team/app", "v1", image).await;
    let layer = pushed.layers[0].digest.clone();
    let proxy = FaultProxy::start(&up, 8);
    let flipped = proxy.add(
        Rule::new(Fault::FlipByte { at: 1_000_000 })
            .get()
            .blobs()
            .once(),
    );
    let remote = proxy.url();
    let server = TestServer::start_with(|c| c.proxy_caches = vec![form("up", &remote)]).await;
    let path = format!("/v2/up/team/app/blobs/{layer}");
    let first = server
        .request(reqwest::Method::GET, &path, Some(("admin", ADMIN_PASSWORD)))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(
        first.bytes().await.is_err(),
        "a corrupt body must not end cleanly"
    );
    assert_eq!(flipped.hits(), 1);
    // Not stored: the next pull fetches again, and gets the real bytes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = server.admin().get(&path).await.expect(StatusCode::OK);
    assert_eq!(sha256(&second.body), layer);
    let fetches = proxy.count(|r| r.method == reqwest::Method::GET && r.path.contains(&layer[7..]));
    assert_eq!(fetches, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_over_its_size_limit_evicts_the_least_recently_pulled_images() {
    let up = Registry::plain().await;
    let pusher = up.pusher();
    let big = |seed| {
        ImageSpec::small("evict").layer(LayerSpec::Random {
            size: 3 << 20,
            seed,
        })
    };
    let old = pusher.push_image("team/old", "v1", big(1)).await;
    let new = pusher.push_image("team/new", "v1", big(2)).await;
    let remote = up.url();
    let server = TestServer::start_with(|c| {
        c.proxy_caches = vec![ProxyCacheForm {
            max_bytes: Some(5 << 20),
            ..form("up", &remote)
        }];
    })
    .await;
    pull(&server, "up/team/old:v1", &old.digest, true).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    pull(&server, "up/team/new:v1", &new.digest, true).await;
    // Past the grace period, so the collection may free what is evicted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = json!({"action": "onlinegc", "parameters": {"gracePeriod": "1s"}});
    let job = server.admin().post("/api/v0/jobs").json(&body).await;
    let id = job.expect(StatusCode::ACCEPTED).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, log) = server.job_outcome(&id, Duration::from_secs(120)).await;
    assert_eq!(status, "done", "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains("proxy cache up:") && l.contains("removed 1 least recently pulled")),
        "{log:#?}"
    );
    // The older image's tag and layer are gone; the newer one stays.
    let tags = server
        .admin()
        .get("/v2/up/team/old/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        tags["tags"].as_array().is_none_or(|t| t.is_empty()),
        "{tags}"
    );
    let layer = &old.layers.last().unwrap().digest;
    let path = server
        .data_dir()
        .join("blobs/sha256")
        .join(&layer[7..9])
        .join(&layer[7..]);
    assert!(!path.exists(), "{} still stored", path.display());
    pull(&server, "up/team/new:v1", &new.digest, true).await;
    // Pulled again, the evicted image is fetched again.
    pull(&server, "up/team/old:v1", &old.digest, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn who_may_manage_pull_and_push() {
    let up = Registry::plain().await;
    let app = up
        .pusher()
        .push_image("team/app", "v1", ImageSpec::small("authz"))
        .await;
    let server = TestServer::start().await;
    server.create_user("alice", "alice-pw-123").await;
    let alice = Some(("alice", "alice-pw-123"));
    let body = json!({"namespace": "up", "remoteHost": up.url(), "password": "s3cret-pw", "username": "u", "isDefault": true});
    // Only administrators manage caches.
    server
        .api()
        .creds(alice)
        .post("/api/v0/proxyCaches")
        .json(&body)
        .await
        .expect(StatusCode::FORBIDDEN);
    let created = server
        .admin()
        .post("/api/v0/proxyCaches")
        .json(&body)
        .await
        .expect(StatusCode::CREATED)
        .json();
    // Secrets are write-only.
    assert_eq!(created["hasPassword"], true, "{created}");
    assert!(created.get("password").is_none(), "{created}");
    let listed = server
        .admin()
        .get("/api/v0/proxyCaches")
        .await
        .expect(StatusCode::OK);
    assert!(!listed.text().contains("s3cret-pw"), "{}", listed.text());
    // Clear errors naming the field; an account's namespace is refused, as
    // is a second cache on one namespace.
    server
        .admin()
        .post("/api/v0/proxyCaches")
        .json(&json!({"namespace": "ok", "remoteHost": "nope"}))
        .await
        .expect(StatusCode::BAD_REQUEST)
        .expect_field("remoteHost");
    server
        .admin()
        .post("/api/v0/proxyCaches")
        .json(&json!({"namespace": "alice", "remoteHost": up.url()}))
        .await
        .expect(StatusCode::BAD_REQUEST)
        .expect_field("namespace");
    server
        .admin()
        .post("/api/v0/proxyCaches")
        .json(&json!({"namespace": "up", "remoteHost": up.url()}))
        .await
        .expect(StatusCode::CONFLICT);
    // The plain upstream wants no credentials.
    server
        .admin()
        .put("/api/v0/proxyCaches/up")
        .json(&json!({"username": "", "password": ""}))
        .await
        .expect(StatusCode::OK);
    // Anonymous callers need anonymousPull; signed-in accounts may pull.
    server
        .api()
        .get("/v2/up/team/app/manifests/v1")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let resp = server
        .api()
        .creds(alice)
        .get("/v2/up/team/app/manifests/v1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(resp.header("docker-content-digest"), app.digest);
    // Nobody pushes into a cache's namespace, administrators included.
    let out = skopeo_output(vec![
        "copy".into(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
        format!("--src-creds=admin:{ADMIN_PASSWORD}"),
        format!("--dest-creds=admin:{ADMIN_PASSWORD}"),
        format!("docker://{}/up/team/app:v1", server.host_port),
        format!("docker://{}/up/team/app:pushed", server.host_port),
    ])
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied") || err.contains("proxy cache"),
        "{err}"
    );
    // A digest stored for someone else's private repository is not served
    // through a cache on the upstream's word: the upstream must have it.
    server.create_repo("admin", "private", "private").await;
    let private = crate::support::Pusher::from_parts(
        &server.url,
        Some(("admin".into(), ADMIN_PASSWORD.into())),
        None,
    )
    .push_blob("admin/private", b"a private layer".to_vec())
    .await;
    let leak = server
        .api()
        .creds(alice)
        .get(format!("/v2/up/team/app/blobs/{private}"))
        .await;
    assert_eq!(leak.status, StatusCode::NOT_FOUND, "{}", leak.text());
    assert!(!leak.text().contains("a private layer"));
    // The default cache takes names under no cache's namespace (Docker's
    // registry-mirrors form) that the caller cannot read locally: an
    // existing private repository answers as a missing one does.
    let hidden = server
        .api()
        .creds(alice)
        .get("/v2/admin/private/manifests/v1")
        .await;
    let missing = server
        .api()
        .creds(alice)
        .get("/v2/admin/nothere/manifests/v1")
        .await;
    assert_eq!(
        hidden.status,
        missing.status,
        "{} / {}",
        hidden.text(),
        missing.text()
    );
    assert_eq!(hidden.error_code(), missing.error_code());
    // Names the upstream does not have create no cached repository.
    let catalog = server
        .admin()
        .get("/v2/_catalog")
        .await
        .expect(StatusCode::OK)
        .json();
    let names = catalog["repositories"].to_string();
    assert!(
        !names.contains("nothere") && !names.contains("up/admin"),
        "{names}"
    );
    // Its owner still reads it locally.
    server
        .admin()
        .get(format!("/v2/admin/private/blobs/{private}"))
        .await
        .expect(StatusCode::OK);
    // Deleting the cache leaves its repository, no longer filled.
    server
        .admin()
        .delete("/api/v0/proxyCaches/up")
        .await
        .expect(StatusCode::NO_CONTENT);
    server
        .admin()
        .get("/v2/up/team/app/manifests/v1")
        .await
        .expect(StatusCode::OK);
    server
        .admin()
        .get("/api/v0/proxyCaches/up")
        .await
        .expect(StatusCode::NOT_FOUND);
}
