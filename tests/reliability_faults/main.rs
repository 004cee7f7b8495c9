//! Faults from the remote (issue 5), injected by `support::fault_proxy`
//! between mirror-core's [`Mirror`] and Debian's `docker-registry`.
//!
//! For every fault the test checks what an operator relies on: the job
//! either retries within a bound and completes, or ends `errored` with a log
//! line naming the tag, the digest and the cause; no partial blob, manifest
//! or tag is visible (the blob store re-hashes clean and `uploads/` is
//! empty); and once the fault clears, the next poll completes. The soak test
//! runs a couple of hundred polls with seeded random faults while tags are
//! pushed and moved upstream.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_core::remote::{HttpConnector, HttpSettings, RetryPolicy};
use mirror_core::store::FsOptions;
use mirror_core::{
    Digest, Job, JobStatus, Mirror, MirrorSettings, PolicyForm, RepositoryName, Secret, Stores,
};
use reqwest::Method;
use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::store_checks::{assert_complete, assert_sound};
use support::{Auth, ImageSpec, LayerSpec, PushedManifest, Registry};

/// Retries after the first attempt, for requests and blob transfers alike.
const RETRIES: u32 = 3;
/// A body silent this long counts as stalled.
const IDLE: Duration = Duration::from_secs(1);
const MIB: u64 = 1024 * 1024;

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: RETRIES,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(200),
    }
}

fn mirror(dir: &Path) -> Mirror {
    // One set of counters for the engine and its HTTP client.
    let metrics = Arc::new(mirror_core::Metrics::default());
    Mirror::new(
        Stores::embedded(dir, FsOptions { durable: false }).unwrap(),
        Arc::new(HttpConnector {
            settings: HttpSettings {
                retry: retry(),
                idle_timeout: IDLE,
                connect_timeout: Duration::from_secs(5),
                metrics: metrics.clone(),
                ..Default::default()
            },
        }),
        MirrorSettings {
            retry: retry(),
            heartbeat_interval: Duration::from_millis(100),
            metrics,
            ..Default::default()
        },
    )
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
}

const REMOTE: &str = "team/app";
const LOCAL: &str = "mirror/app";

/// An upstream registry behind a fault proxy, `team/app:v1` pushed, and an
/// engine with a Save & Apply policy `mirror/app` <- proxy `team/app`.
struct Env {
    reg: Registry,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
    m: Mirror,
    policy: String,
    v1: PushedManifest,
}

/// A small config, one small tar.gz layer and one `big`-byte random layer.
fn image(text: &str, big: u64) -> ImageSpec {
    ImageSpec::small(text).layer(LayerSpec::Random {
        size: big,
        seed: text.len() as u64 + big,
    })
}

async fn env_with(auth: Auth, spec: ImageSpec) -> Env {
    let reg = Registry::builder().auth(auth).start().await;
    let v1 = reg.pusher().push_image(REMOTE, "v1", spec).await;
    let proxy = FaultProxy::start(&reg, 5);
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let policy = m
        .add_policy(&name(LOCAL), &proxied_form(&reg, &proxy), None)
        .await
        .unwrap()
        .id;
    proxy.reset_log();
    Env {
        reg,
        proxy,
        dir,
        m,
        policy,
        v1,
    }
}

/// "Save & Apply" form for `REMOTE` through `proxy`, with `reg`'s
/// credentials.
fn proxied_form(reg: &Registry, proxy: &FaultProxy) -> PolicyForm {
    let (username, password) = reg.credentials().unwrap_or_default();
    PolicyForm {
        username: Some(username),
        password: Some(Secret::new(password)),
        ..PolicyForm::new(proxy.url(), REMOTE)
    }
}

async fn env(big: u64) -> Env {
    env_with(Auth::None, image("v1", big)).await
}

impl Env {
    /// The big layer's digest.
    fn big(&self) -> String {
        self.v1.layers.last().unwrap().digest.clone()
    }

    async fn poll(&self) -> (Job, String) {
        let job = tokio::time::timeout(Duration::from_secs(120), self.m.poll(&self.policy))
            .await
            .expect("a poll ends within 120 s")
            .unwrap();
        let log = log_text(&self.m, &job.id).await;
        (job, log)
    }

    /// Polls and expects `done`.
    async fn poll_done(&self) -> String {
        let (job, log) = self.poll().await;
        assert_eq!(job.status, JobStatus::Done, "{log}");
        log
    }

    /// Polls and expects `errored` with one line naming `tag`, `digest` and
    /// every `cause` fragment; returns the log.
    async fn poll_errored(&self, tag: &str, digest: &str, cause: &[&str]) -> String {
        let (job, log) = self.poll().await;
        assert_eq!(job.status, JobStatus::Errored, "{log}");
        let wanted = format!("{REMOTE}:{tag}");
        let line = log
            .lines()
            .find(|l| l.contains(&wanted) && l.contains(digest))
            .unwrap_or_else(|| panic!("no line names {wanted} and {digest}:\n{log}"));
        eprintln!("errored as expected: {line}");
        for c in cause {
            assert!(
                line.to_lowercase().contains(&c.to_lowercase()),
                "the line does not give the cause {c:?}: {line}"
            );
        }
        log
    }

    async fn tag(&self, tag: &str) -> Option<String> {
        self.m
            .stores()
            .repos
            .tag(&name(LOCAL), tag)
            .await
            .unwrap()
            .map(|t| t.digest.to_string())
    }

    /// The fault cleared: the next poll completes and mirrors v1 exactly.
    async fn recovers(&self) {
        self.proxy.clear();
        self.poll_done().await;
        assert_eq!(
            self.tag("v1").await.as_deref(),
            Some(self.v1.digest.as_str())
        );
        assert_sound(&self.m, self.dir.path()).await;
        assert_complete(&self.m, LOCAL).await;
    }

    /// GETs of the big layer seen by the proxy.
    fn big_gets(&self) -> usize {
        let big = self.big();
        self.proxy
            .count(|l| l.method == Method::GET && l.path.contains(&big))
    }
}

async fn log_text(m: &Mirror, job: &str) -> String {
    m.job_logs(job, 0, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.data)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the store holds `digest`.
async fn stored(m: &Mirror, digest: &str) -> bool {
    let d = Digest::parse(digest).unwrap();
    m.stores().blobs.stat(&d).await.unwrap().is_some()
}

fn random_digest() -> String {
    support::data::sha256_digest(&rand::random::<[u8; 16]>())
}

// ---- broken bodies ----

#[tokio::test]
async fn a_blob_reset_mid_body_resumes_with_a_range_request() {
    let e = env(3 * MIB).await;
    let big = e.big();
    let rule = e.proxy.add(
        Rule::new(Fault::Reset { after: MIB })
            .get()
            .path_contains(&big)
            .times(2),
    );
    e.poll_done().await;
    assert_eq!(rule.hits(), 2);
    let ranged = e
        .proxy
        .count(|l| l.path.contains(&big) && l.range.is_some());
    assert!(ranged >= 1, "no Range resume: {:?}", e.proxy.requests());
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn a_truncated_or_short_blob_body_resumes() {
    let e = env(3 * MIB).await;
    let big = e.big();
    // The connection closes with a `Content-Length` promising more...
    e.proxy.add(
        Rule::new(Fault::Truncate { after: 700_000 })
            .get()
            .path_contains(&big)
            .once(),
    );
    // ... then a chunked body that ends cleanly, short.
    e.proxy.add(
        Rule::new(Fault::EndEarly { after: 900_000 })
            .get()
            .path_contains(&big)
            .once(),
    );
    e.poll_done().await;
    assert!(e.big_gets() >= 3, "{:?}", e.proxy.requests());
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn a_blob_that_keeps_resetting_fails_the_tag_within_the_retry_bound() {
    let e = env(2 * MIB).await;
    let big = e.big();
    e.proxy.add(
        Rule::new(Fault::Reset { after: 0 })
            .get()
            .path_contains(&big),
    );
    e.poll_errored("v1", &e.v1.digest, &[&big, "gave up after"])
        .await;
    // A reset before the first byte may hit the request (retried by the
    // client) or the body (resumed by the copy): at most (1 + RETRIES)².
    let gets = e.big_gets();
    let bound = (1 + RETRIES as usize).pow(2);
    assert!(gets > RETRIES as usize && gets <= bound, "{gets} GETs");
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &big).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

#[tokio::test]
async fn a_stalled_body_times_out_and_resumes() {
    let e = env(2 * MIB).await;
    let big = e.big();
    // Silence for 60 idle timeouts: the client must give up long before.
    e.proxy.add(
        Rule::new(Fault::Stall {
            after: 300_000,
            pause: IDLE * 60,
        })
        .get()
        .path_contains(&big)
        .once(),
    );
    // And a manifest GET whose headers never come.
    e.proxy
        .add(Rule::new(Fault::Delay(IDLE * 60)).get().manifests().once());
    let started = Instant::now();
    e.poll_done().await;
    assert!(started.elapsed() < IDLE * 50, "waited out a stall");
    assert!(
        e.proxy
            .count(|l| l.path.contains(&big) && l.range.is_some())
            >= 1,
        "no Range resume after the stall"
    );
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn a_blob_that_always_stalls_fails_the_tag_naming_the_timeout() {
    let e = env(MIB).await;
    let big = e.big();
    e.proxy.add(
        Rule::new(Fault::Stall {
            after: 0,
            pause: IDLE * 20,
        })
        .get()
        .path_contains(&big),
    );
    e.poll_errored("v1", &e.v1.digest, &[&big, "timed out"])
        .await;
    let gets = e.big_gets();
    assert!(
        gets > RETRIES as usize && gets <= (1 + RETRIES as usize).pow(2),
        "{gets} GETs"
    );
    assert_eq!(e.tag("v1").await, None);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

// ---- error statuses and rate limits ----

#[tokio::test]
async fn server_errors_are_retried_within_bounds() {
    let e = env(MIB).await;
    let big = e.big();
    for status in [500, 502, 503] {
        // Each kind of request gets each status once: three failures in a
        // row, exactly what a request's retries (RETRIES) absorb.
        e.proxy
            .add(Rule::new(Fault::status(status)).tag_list().times(1));
        e.proxy
            .add(Rule::new(Fault::status(status)).head().manifests().times(1));
        e.proxy
            .add(Rule::new(Fault::status(status)).get().manifests().times(1));
        e.proxy.add(
            Rule::new(Fault::status(status))
                .get()
                .path_contains(&big)
                .times(1),
        );
    }
    e.poll_done().await;
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn persistent_server_errors_fail_the_tag_within_the_retry_bound() {
    let e = env(MIB).await;
    let big = e.big();
    e.proxy
        .add(Rule::new(Fault::status(503)).get().path_contains(&big));
    e.poll_errored("v1", &e.v1.digest, &[&big, "HTTP 503"])
        .await;
    // The request's own retries, and no transfer-level retries around
    // them (the two levels do not multiply).
    assert_eq!(e.big_gets(), 1 + RETRIES as usize);
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &big).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;

    // The same on the manifest.
    let e = env(MIB).await;
    e.proxy.add(Rule::new(Fault::status(500)).get().manifests());
    e.poll_errored("v1", &e.v1.digest, &["HTTP 500"]).await;
    assert_eq!(e.tag("v1").await, None);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

#[tokio::test]
async fn rate_limits_are_honoured_with_and_without_retry_after() {
    let e = env(MIB).await;
    let big = e.big();
    // `Retry-After: 1` on the tag list, twice: the retries wait for it.
    e.proxy.add(
        Rule::new(Fault::too_many_requests(Some(1)))
            .tag_list()
            .times(2),
    );
    // Bare 429s (no header, no body) on a HEAD and a blob: backoff.
    e.proxy
        .add(Rule::new(Fault::bare_429()).head().manifests().times(2));
    e.proxy.add(
        Rule::new(Fault::bare_429())
            .get()
            .path_contains(&big)
            .times(2),
    );
    e.poll_done().await;
    let lists: Vec<_> = e
        .proxy
        .requests()
        .into_iter()
        .filter(|l| l.path.contains("/tags/list"))
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    // `Retry-After` (capped at the policy's `max`, 200 ms here) is waited
    // for exactly, with no jitter below it.
    let times: Vec<Instant> = lists.iter().map(|l| l.at).collect();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(190), "retried after {gap:?}");
    }
    assert_eq!(
        e.proxy.count(|l| l.status == 429),
        6,
        "{:?}",
        e.proxy.requests()
    );
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn toomanyrequests_on_any_request_is_retried_and_then_reported() {
    let e = env_with(Auth::token("bot", "s3cret-pw"), image("v1", MIB)).await;
    let big = e.big();
    // Docker Hub's rate-limit answer, on a third of all requests, the token
    // server included (seeded, so the run is repeatable).
    e.proxy.add(
        Rule::new(Fault::too_many_requests(Some(0)))
            .probability(0.33)
            .times(12),
    );
    e.proxy
        .add(Rule::new(Fault::too_many_requests(None)).token().once());
    e.poll_done().await;
    assert!(e.proxy.count(|l| l.status == 429) >= 1);
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;

    // When it never stops, the tag fails and the log says 429 with the
    // registry's own code and message.
    let e = env_with(Auth::token("bot", "s3cret-pw"), image("v1", MIB)).await;
    e.proxy.add(
        Rule::new(Fault::too_many_requests(Some(0)))
            .get()
            .path_contains(&big),
    );
    e.poll_errored(
        "v1",
        &e.v1.digest,
        &[
            &big,
            "HTTP 429: TOOMANYREQUESTS You have reached your pull rate limit.",
        ],
    )
    .await;
    assert_eq!(e.tag("v1").await, None);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

// ---- lying or broken content ----

#[tokio::test]
async fn a_wrong_docker_content_digest_publishes_nothing_wrong() {
    let e = env(MIB).await;
    let wrong = random_digest();
    // The HEAD announces a digest the registry does not have.
    e.proxy.add(
        Rule::new(Fault::SetResponseHeader {
            name: "docker-content-digest".into(),
            value: wrong.clone(),
        })
        .head()
        .manifests(),
    );
    e.poll_errored("v1", &wrong, &["not found"]).await;
    assert_eq!(e.tag("v1").await, None);
    assert_sound(&e.m, e.dir.path()).await;
    e.proxy.clear();

    // On a GET by digest the header is not trusted: the bytes are hashed.
    e.proxy.add(
        Rule::new(Fault::SetResponseHeader {
            name: "docker-content-digest".into(),
            value: wrong.clone(),
        })
        .get()
        .manifests(),
    );
    e.poll_done().await;
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;

    // On a blob, a wrong header changes nothing either.
    let e = env(MIB).await;
    e.proxy.add(
        Rule::new(Fault::SetResponseHeader {
            name: "docker-content-digest".into(),
            value: wrong,
        })
        .get()
        .blobs(),
    );
    e.poll_done().await;
    assert_sound(&e.m, e.dir.path()).await;
}

/// A registry announcing that little of its pull budget is left (Docker
/// Hub's `ratelimit-*` headers) gets no more pulls: the tags wait for a
/// later poll, and the reason is in the log and in `/metrics`.
#[tokio::test]
async fn pulls_stop_at_the_reserve_of_an_announced_rate_limit() {
    let e = env(MIB).await;
    for tag in ["v2", "v3"] {
        e.reg
            .pusher()
            .push_image(REMOTE, tag, ImageSpec::small(tag))
            .await;
    }
    let header = |name: &str, value: &str| Fault::SetResponseHeader {
        name: name.into(),
        value: value.into(),
    };
    e.proxy.add(
        Rule::new(header("ratelimit-limit", "100;w=21600"))
            .head()
            .manifests(),
    );
    e.proxy.add(
        Rule::new(header("ratelimit-remaining", "5;w=21600"))
            .get()
            .manifests(),
    );
    let (job, log) = e.poll().await;
    assert_eq!(job.status, JobStatus::Errored, "{log}");
    let gets = e
        .proxy
        .count(|r| r.method == Method::GET && r.path.contains("/manifests/"));
    assert_eq!(gets, 1, "one pull, then none below the reserve: {log}");
    assert_eq!(local_tags(&e.m).await.len(), 1, "{log}");
    assert!(
        log.contains("5 of 100 pulls left") && log.contains("remote_limits.min_pulls_left_percent"),
        "{log}"
    );
    let metrics = e.m.metrics().await.unwrap();
    let (_, budget) = &metrics.pull_budgets[0];
    assert_eq!((budget.remaining, budget.limit), (Some(5), Some(100)));
    assert_sound(&e.m, e.dir.path()).await;

    // Once the registry says there is room again, the rest follows.
    e.proxy.clear();
    e.proxy.add(
        Rule::new(header("ratelimit-remaining", "90;w=21600"))
            .head()
            .manifests(),
    );
    e.poll_done().await;
    assert_eq!(local_tags(&e.m).await, upstream_tags(&e.reg).await);
}

#[tokio::test]
async fn a_flipped_byte_is_caught_and_nothing_is_stored() {
    // Once (damage in transit): the blob is downloaded again from the start
    // and the poll completes with upstream's bytes.
    let e = env(2 * MIB).await;
    let big = e.big();
    e.proxy.add(
        Rule::new(Fault::FlipByte { at: 1_234_567 })
            .get()
            .path_contains(&big)
            .once(),
    );
    e.poll_done().await;
    assert_eq!(e.big_gets(), 2, "{:?}", e.proxy.requests());
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;

    // Every time (the registry's bytes are bad): the tag fails after that
    // second download, and nothing is stored.
    let e = env(2 * MIB).await;
    let big = e.big();
    e.proxy.add(
        Rule::new(Fault::FlipByte { at: 1_234_567 })
            .get()
            .path_contains(&big),
    );
    e.poll_errored("v1", &e.v1.digest, &[&big, "does not match"])
        .await;
    assert_eq!(e.big_gets(), 2, "{:?}", e.proxy.requests());
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &big).await, "a corrupt blob was stored");
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;

    // A flipped byte in the manifest.
    let e = env(MIB).await;
    e.proxy
        .add(Rule::new(Fault::FlipByte { at: 20 }).get().manifests());
    e.poll_errored("v1", &e.v1.digest, &["digest mismatch"])
        .await;
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &e.v1.digest).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

/// Serves `body` as `team/app:v1` (HEAD and GET by tag) and by its own
/// digest, as if the registry held that manifest. Returns its digest.
fn fake_manifest(proxy: &FaultProxy, media_type: &str, body: Vec<u8>, chunked: bool) -> String {
    let digest = support::data::sha256_digest(&body);
    let fault = match Fault::manifest(media_type, body) {
        Fault::Respond(mut c) => {
            c.chunked = chunked;
            Fault::Respond(c)
        }
        _ => unreachable!(),
    };
    proxy.add(Rule::new(fault.clone()).path_contains(&format!("/{REMOTE}/manifests/v1")));
    proxy.add(Rule::new(fault).path_contains(&format!("/{REMOTE}/manifests/{digest}")));
    digest
}

#[tokio::test]
async fn a_manifest_that_references_a_missing_blob_fails_the_tag() {
    let e = env(MIB).await;
    let missing = random_digest();
    let mut manifest: serde_json::Value = serde_json::from_slice(&e.v1.bytes).unwrap();
    manifest["layers"][0]["digest"] = serde_json::json!(missing);
    let body = serde_json::to_vec_pretty(&manifest).unwrap();
    let digest = fake_manifest(&e.proxy, &e.v1.media_type, body, false);
    e.poll_errored("v1", &digest, &[&missing, "not found"])
        .await;
    assert_eq!(e.tag("v1").await, None);
    // The manifest itself was not stored either: it is stored after its blobs.
    assert!(!stored(&e.m, &digest).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

#[tokio::test]
async fn an_oversized_manifest_is_refused() {
    let mt = "application/vnd.oci.image.manifest.v1+json";
    for chunked in [false, true] {
        let e = env(1000).await;
        let mut body = br#"{"schemaVersion":2,"padding":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', 5 * MIB as usize));
        body.extend(br#""}"#);
        let digest = fake_manifest(&e.proxy, mt, body, chunked);
        e.poll_errored("v1", &digest, &["4 MiB limit"]).await;
        assert_eq!(e.tag("v1").await, None);
        assert!(!stored(&e.m, &digest).await);
        assert_sound(&e.m, e.dir.path()).await;
        e.recovers().await;
    }
}

#[tokio::test]
async fn invalid_json_is_refused() {
    // A manifest that is not JSON.
    let e = env(1000).await;
    let digest = fake_manifest(
        &e.proxy,
        "application/vnd.oci.image.manifest.v1+json",
        b"{\"schemaVersion\": 2, \"layers\": [".to_vec(),
        false,
    );
    e.poll_errored("v1", &digest, &["manifest is not valid", "EOF"])
        .await;
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &digest).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;

    // A tag list that is not JSON: the poll stops before copying.
    let e = env(1000).await;
    e.proxy.add(
        Rule::new(Fault::Respond(support::fault_proxy::Canned {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"name\": \"team/app\", \"tags\": [\"v1\"".to_vec(),
            chunked: false,
        }))
        .tag_list(),
    );
    let (job, log) = e.poll().await;
    assert_eq!(job.status, JobStatus::Errored, "{log}");
    assert!(log.contains("tag list is not valid JSON"), "{log}");
    assert!(log.contains(REMOTE), "{log}");
    assert_eq!(e.tag("v1").await, None);
    e.recovers().await;
}

#[tokio::test]
async fn a_redirect_is_followed_and_a_redirect_loop_is_not_retried_forever() {
    let e = env(MIB).await;
    let big = e.big();
    let self_url = format!("{}/v2/{REMOTE}/blobs/{big}", e.proxy.url());
    // One redirect (to the same URL, which then answers): followed.
    e.proxy.add(
        Rule::new(Fault::redirect(&self_url))
            .get()
            .path_contains(&big)
            .once(),
    );
    e.poll_done().await;
    assert_sound(&e.m, e.dir.path()).await;

    let e = env(MIB).await;
    let big = e.big();
    let self_url = format!("{}/v2/{REMOTE}/blobs/{big}", e.proxy.url());
    e.proxy.add(
        Rule::new(Fault::redirect(&self_url))
            .get()
            .path_contains(&big),
    );
    e.poll_errored("v1", &e.v1.digest, &[&big, "redirect"])
        .await;
    // reqwest follows 10 redirects per request; a loop is not a transient
    // failure, so it is not retried.
    let gets = e.big_gets();
    assert!(gets <= 11, "{gets} GETs for a redirect loop");
    assert_eq!(e.tag("v1").await, None);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

// ---- authentication mid-poll ----

fn token_env_image() -> ImageSpec {
    image("v1", MIB).layer(LayerSpec::Random {
        size: 300_000,
        seed: 99,
    })
}

#[tokio::test]
async fn an_invalid_or_missing_bearer_token_mid_poll_is_renewed() {
    let e = env_with(Auth::token("bot", "s3cret-pw"), token_env_image()).await;
    let big = e.big();
    e.reg.reset_token_requests();
    // A forged token on one blob GET, a request without one on another:
    // the registry answers 401 with its challenge, the client renews.
    e.proxy.add(
        Rule::new(Fault::SetAuthorization(Some(
            "Bearer expired.or.forged".into(),
        )))
        .get()
        .path_contains(&big)
        .once(),
    );
    e.proxy.add(
        Rule::new(Fault::SetAuthorization(None))
            .get()
            .blobs()
            .skip(1)
            .once(),
    );
    e.poll_done().await;
    assert!(
        e.proxy.count(|l| l.status == 401) >= 2,
        "{:?}",
        e.proxy.requests()
    );
    assert!(e.reg.token_requests() >= 2, "no new token was fetched");
    assert_eq!(e.tag("v1").await.as_deref(), Some(e.v1.digest.as_str()));
    assert_sound(&e.m, e.dir.path()).await;
}

#[tokio::test]
async fn a_token_that_expires_mid_poll_is_renewed() {
    let reg = Registry::builder()
        .auth(Auth::token("bot", "s3cret-pw"))
        .token_ttl(Duration::from_secs(2))
        .start()
        .await;
    let p = reg.pusher();
    let v1 = p.push_image(REMOTE, "v1", image("v1", 600_000)).await;
    // Tags copy several at once, in plan (name) order, a new one starting
    // when the oldest under way is done: the tag after the first
    // TAGS_IN_FLIGHT (v1 and w002...) starts once v1 is.
    let mut later = Vec::new();
    for i in 2..=mirror_core::poll::TAGS_IN_FLIGHT + 1 {
        let tag = format!("w{i:03}");
        later.push((
            tag.clone(),
            p.push_image(REMOTE, &tag, image(&tag, 1000)).await,
        ));
    }
    let v2 = later.last().unwrap().1.clone();
    let last = later.last().unwrap().0.clone();
    let proxy = FaultProxy::start(&reg, 1);
    // v1's big layer takes about 3 s: the last tag is fetched with an
    // expired token.
    proxy.add(
        Rule::new(Fault::Throttle {
            bytes_per_sec: 200_000,
        })
        .get()
        .path_contains(&v1.layers.last().unwrap().digest),
    );
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let policy = m
        .add_policy(&name(LOCAL), &proxied_form(&reg, &proxy), None)
        .await
        .unwrap();
    proxy.reset_log();
    let job = m.poll(&policy.id).await.unwrap();
    let log = log_text(&m, &job.id).await;
    assert_eq!(job.status, JobStatus::Done, "{log}");
    // The client knows the token's `expires_in` and fetched a new one for
    // the last tag (a token the registry refuses early is the test above).
    assert!(
        proxy.count(|l| l.path.starts_with(support::fault_proxy::TOKEN_PREFIX)) >= 2,
        "the token was never renewed: {:?}",
        proxy.requests()
    );
    let tags: BTreeMap<_, _> = m
        .stores()
        .repos
        .tags(&name(LOCAL))
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.digest.to_string()))
        .collect();
    assert_eq!(tags.get("v1"), Some(&v1.digest));
    assert_eq!(tags.get(&last), Some(&v2.digest));
    assert_eq!(tags.len(), mirror_core::poll::TAGS_IN_FLIGHT + 1);
    assert_sound(&m, dir.path()).await;
}

#[tokio::test]
async fn a_token_the_registry_keeps_refusing_fails_the_tag_without_looping() {
    let e = env_with(Auth::token("bot", "s3cret-pw"), token_env_image()).await;
    let big = e.big();
    e.proxy.add(
        Rule::new(Fault::SetAuthorization(Some("Bearer forged".into())))
            .get()
            .path_contains(&big),
    );
    e.poll_errored("v1", &e.v1.digest, &[&big, "authentication failed"])
        .await;
    // One re-authentication per request, and no retries of a refusal.
    assert!(e.big_gets() <= 2, "{:?}", e.proxy.requests());
    assert_eq!(e.tag("v1").await, None);
    assert!(!stored(&e.m, &big).await);
    assert_sound(&e.m, e.dir.path()).await;
    e.recovers().await;
}

// ---- soak ----

/// Upstream tag -> digest.
async fn upstream_tags(reg: &Registry) -> BTreeMap<String, String> {
    let p = reg.pusher();
    let mut out = BTreeMap::new();
    for t in p.tags(REMOTE).await {
        out.insert(t.clone(), p.manifest_digest(REMOTE, &t).await.unwrap());
    }
    out
}

async fn local_tags(m: &Mirror) -> BTreeMap<String, String> {
    m.stores()
        .repos
        .tags(&name(LOCAL))
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.digest.to_string()))
        .collect()
}

/// A few hundred polls of a token-auth registry (three images and an
/// index) with seeded random faults on every kind of request, the token
/// server's included, while tags are pushed and moved upstream between
/// polls. After each poll
/// every mirrored tag is complete and points at a digest upstream gave that
/// tag at some point; at the end (faults cleared, one last poll) the mirror
/// serves exactly upstream's tags and every stored blob re-hashes to its
/// name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_faults_over_hundreds_of_polls() {
    use rand::{Rng, SeedableRng};
    const POLLS: usize = 200;
    const BUDGET: Duration = Duration::from_secs(90);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20260514);
    eprintln!("soak seed {seed} (set SOAK_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // Token auth, with the token server behind the proxy too.
    let reg = Registry::builder()
        .auth(Auth::token("bot", "s3cret-pw"))
        .start()
        .await;
    let pusher = reg.pusher();
    let proxy = FaultProxy::start(&reg, seed);
    // Every digest each tag had upstream.
    let mut history: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let push = |tag: String, generation: u64| {
        let p = &pusher;
        async move {
            let spec = ImageSpec::small(&format!("{tag} generation {generation}")).layer(
                LayerSpec::Random {
                    size: 40_000 + generation % 7 * 9_000,
                    seed: generation,
                },
            );
            p.push_image(REMOTE, &tag, spec).await
        }
    };
    let mut first = Vec::new();
    for (i, t) in ["a", "b", "c"].into_iter().enumerate() {
        let img = push(t.to_string(), i as u64).await;
        history
            .entry(t.to_string())
            .or_default()
            .push(img.digest.clone());
        first.push(img);
    }
    // And an index over the first two (it keeps them when a and b move).
    let index = pusher
        .push_index(
            REMOTE,
            "multi",
            &[
                (first[0].clone(), "linux", "amd64"),
                (first[1].clone(), "linux", "arm64"),
            ],
            support::ManifestKind::Oci,
        )
        .await;
    history.insert("multi".into(), vec![index.digest]);
    let dir = tempfile::tempdir().unwrap();
    // Short idle timeout: stalls cost little.
    let retry = RetryPolicy {
        max_retries: 2,
        initial: Duration::from_millis(2),
        max: Duration::from_millis(20),
    };
    let m = Mirror::new(
        Stores::embedded(dir.path(), FsOptions { durable: false }).unwrap(),
        Arc::new(HttpConnector {
            settings: HttpSettings {
                retry: retry.clone(),
                idle_timeout: Duration::from_millis(300),
                ..Default::default()
            },
        }),
        MirrorSettings {
            retry,
            heartbeat_interval: Duration::from_millis(100),
            ..Default::default()
        },
    );
    let policy = m
        .add_policy(&name(LOCAL), &proxied_form(&reg, &proxy), None)
        .await
        .unwrap();
    let p = 0.03;
    let faults = [
        Rule::new(Fault::Reset { after: 10_000 }).get().blobs(),
        Rule::new(Fault::Truncate { after: 5_000 }).get(),
        Rule::new(Fault::EndEarly { after: 20_000 }).get().blobs(),
        Rule::new(Fault::Stall {
            after: 1_000,
            pause: Duration::from_secs(2),
        })
        .get(),
        Rule::new(Fault::FlipByte { at: 7 }).get(),
        Rule::new(Fault::status(500)),
        Rule::new(Fault::status(503)),
        Rule::new(Fault::too_many_requests(Some(0))),
        Rule::new(Fault::bare_429()),
        Rule::new(Fault::SetResponseHeader {
            name: "docker-content-digest".into(),
            value: support::data::sha256_digest(b"not the manifest"),
        })
        .head(),
        Rule::new(Fault::Respond(support::fault_proxy::Canned {
            status: 200,
            headers: vec![],
            body: b"{not json".to_vec(),
            chunked: false,
        }))
        .tag_list(),
    ];
    for f in faults {
        proxy.add(f.probability(p));
    }
    let started = Instant::now();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut generation = 10u64;
    let mut polls = 0;
    while polls < POLLS && started.elapsed() < BUDGET {
        polls += 1;
        // Upstream changes between some polls: a moved tag or a new one.
        if rng.random_bool(0.15) {
            generation += 1;
            let tag = if rng.random_bool(0.7) {
                let tags: Vec<_> = history.keys().cloned().collect();
                tags[rng.random_range(0..tags.len())].clone()
            } else {
                format!("t{generation}")
            };
            let d = push(tag.clone(), generation).await.digest;
            history.entry(tag).or_default().push(d);
        }
        let job = tokio::time::timeout(Duration::from_secs(60), m.poll(&policy.id))
            .await
            .expect("a poll ends")
            .unwrap();
        *statuses.entry(job.status.to_string()).or_default() += 1;
        assert_ne!(job.status, JobStatus::Canceled);
        // Nothing partial, nothing made up.
        for (tag, digest) in local_tags(&m).await {
            assert!(
                history.get(&tag).is_some_and(|h| h.contains(&digest)),
                "poll {polls}: {tag} -> {digest} was never upstream's"
            );
        }
        assert_complete(&m, LOCAL).await;
    }
    eprintln!(
        "soak: {polls} polls in {:?}: {statuses:?}; {} requests, {} faults",
        started.elapsed(),
        proxy.requests().len(),
        proxy.count(|l| l.fault.is_some())
    );
    assert!(polls >= 50, "only {polls} polls within {BUDGET:?}");
    assert!(statuses.get("done").copied().unwrap_or(0) > 0);
    assert!(
        statuses.get("errored").copied().unwrap_or(0) > 0,
        "no fault ever failed a poll"
    );
    proxy.clear();
    let job = m.poll(&policy.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(local_tags(&m).await, upstream_tags(&reg).await);
    assert_sound(&m, dir.path()).await;
}

// ---- restart ----

/// The engine keeps its worker ID in the data directory, so on restart it
/// knows the jobs its killed process left `running` and recovers them at
/// once instead of after `stale_after` (30 s by default); a job another
/// worker runs, with a fresh heartbeat, is left alone.
#[tokio::test]
async fn a_restarted_engine_recovers_its_own_jobs_at_once_and_leaves_others_alone() {
    use mirror_core::JobSubmission;
    let dir = tempfile::tempdir().unwrap();
    let m = Mirror::open(dir.path()).unwrap();
    let own_id = m.settings().worker_id.clone();
    let submit = || JobSubmission {
        action: "poll_mirror".into(),
        ..Default::default()
    };
    let mine = m.submit_job(submit()).await.unwrap();
    let theirs = m.submit_job(submit()).await.unwrap();
    let now = chrono::Utc::now();
    let jobs = &m.stores().jobs;
    jobs.claim_job(&own_id, Some(&mine.id), now, None)
        .await
        .unwrap()
        .unwrap();
    jobs.claim_job("0123456789ab", Some(&theirs.id), now, None)
        .await
        .unwrap()
        .unwrap();
    drop(m);

    let m = Mirror::open(dir.path()).unwrap();
    assert_eq!(m.settings().worker_id, own_id, "the worker ID changed");
    let recovered = m.recover().await.unwrap();
    assert_eq!(
        recovered.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [mine.id.as_str()]
    );
    assert_eq!(m.job(&mine.id).await.unwrap().status, JobStatus::Errored);
    assert_eq!(m.job(&theirs.id).await.unwrap().status, JobStatus::Running);
    assert!(log_text(&m, &mine.id).await.contains("worker lost"));
    // Only at start: the periodic check leaves fresh jobs alone.
    assert!(m.recover_lost_jobs().await.unwrap().is_empty());
}

/// A worker that was only slow, whose job was recovered (its heartbeats
/// thought lost) and claimed by another worker, stops its own run at its
/// next heartbeat and writes nothing over the new run.
#[tokio::test]
async fn a_job_taken_over_from_a_slow_worker_stops_there_and_keeps_the_new_run() {
    let e = env(2 * MIB).await;
    let big = e.big();
    // The big layer never arrives: the poll is still copying when its job
    // is taken over.
    e.proxy
        .add(Rule::new(Fault::Delay(IDLE * 60)).get().path_contains(&big));
    let poll = {
        let (m, policy) = (e.m.clone(), e.policy.clone());
        tokio::spawn(async move { m.poll(&policy).await })
    };
    let running = mirror_core::JobFilter {
        status: Some(JobStatus::Running),
        limit: 1,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        if let Some(j) = e.m.jobs(&running).await.unwrap().pop() {
            break j;
        }
        assert!(Instant::now() < deadline, "the poll never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Another engine's recovery requeued it, and another worker claimed it.
    let jobs = &e.m.stores().jobs;
    let mut requeued = job.clone();
    requeued.status = JobStatus::Waiting;
    requeued.worker_id.clear();
    jobs.update_job(&requeued).await.unwrap();
    let now = chrono::Utc::now();
    let claimed = jobs.claim_job("other-worker", Some(&job.id), now, None);
    assert!(claimed.await.unwrap().is_some());

    let ended = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the slow worker kept running a job it no longer holds")
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, JobStatus::Canceled, "{ended:?}");
    let stored = e.m.job(&job.id).await.unwrap();
    assert_eq!(
        (stored.status, stored.worker_id.as_str()),
        (JobStatus::Running, "other-worker"),
        "the new run was overwritten"
    );
    assert!(
        log_text(&e.m, &job.id).await.contains("job taken over"),
        "{}",
        log_text(&e.m, &job.id).await
    );
}
