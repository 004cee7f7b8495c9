//! Faults a real registry will not produce on demand, against an in-process
//! fake (429, 5xx, cut and stalled bodies, corrupt bytes, bad credentials),
//! plus crash recovery and cancel. Each test checks what a user would: the
//! job's status and log, the tags served, and that nothing partial is visible.

mod fake_registry;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_registry::{FakeRegistry, digest_of};
use mirror_core::remote::{HttpConnector, HttpSettings, RetryPolicy};
use mirror_core::store::FsOptions;
use mirror_core::{
    Digest, JobStatus, Mirror, MirrorSettings, PolicyForm, RepositoryName, Secret, Stores,
};

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        initial: Duration::from_millis(20),
        max: Duration::from_secs(2),
    }
}

fn mirror(dir: &Path) -> Mirror {
    let stores = Stores::embedded(dir, FsOptions { durable: false }).unwrap();
    let connector = HttpConnector {
        settings: HttpSettings {
            retry: fast_retry(),
            idle_timeout: Duration::from_secs(5),
            ..Default::default()
        },
    };
    Mirror::new(
        stores,
        Arc::new(connector),
        MirrorSettings {
            retry: fast_retry(),
            heartbeat_interval: Duration::from_millis(100),
            stale_after: Duration::from_millis(500),
            ..Default::default()
        },
    )
}

fn form(reg: &FakeRegistry, repo: &str) -> PolicyForm {
    PolicyForm::new(reg.url(), repo)
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
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

fn uploads_left(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("uploads")).unwrap().count()
}

fn layer(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A fake upstream with `team/app:v1` made of `layers`, and an engine in a
/// temporary directory with a Save & Apply policy `local/app` <- `team/app`.
struct Setup {
    reg: FakeRegistry,
    dir: tempfile::TempDir,
    m: Mirror,
    policy_id: String,
    digest: String,
    layers: Vec<String>,
}

async fn setup(layers: &[Vec<u8>]) -> Setup {
    let reg = FakeRegistry::start().await;
    let (digest, layers) = reg.add_image("team/app", "v1", layers);
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let p = m
        .add_policy(&name("local/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    Setup {
        reg,
        dir,
        m,
        policy_id: p.id,
        digest,
        layers,
    }
}

impl Setup {
    async fn tag_digest(&self) -> Option<String> {
        self.m
            .stores()
            .repos
            .tag(&name("local/app"), "v1")
            .await
            .unwrap()
            .map(|t| t.digest.to_string())
    }
}

#[tokio::test]
async fn retries_429_and_waits_for_retry_after() {
    let s = setup(&[layer(1000, 1)]).await;
    s.reg.faults().tags_429.store(2, Ordering::SeqCst);
    s.reg.counters().tag_list_times.lock().unwrap().clear();
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
    let times = s.reg.counters().tag_list_times.lock().unwrap().clone();
    assert_eq!(times.len(), 3, "two 429s then a success");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(950),
            "retried before Retry-After: {:?}",
            pair[1] - pair[0]
        );
    }
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

#[tokio::test]
async fn retries_server_errors_on_manifests() {
    let s = setup(&[layer(1000, 1)]).await;
    s.reg.faults().manifest_500.store(3, Ordering::SeqCst);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

#[tokio::test]
async fn persistent_server_errors_fail_the_tag_with_a_clear_log() {
    let s = setup(&[layer(1000, 1)]).await;
    s.reg.faults().manifest_500.store(100, Ordering::SeqCst);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Errored);
    let log = log_text(&s.m, &job.id).await;
    assert!(
        log.contains("team/app:v1") && log.contains(&s.digest),
        "{log}"
    );
    assert!(log.contains("HTTP 500"), "{log}");
    assert_eq!(s.tag_digest().await, None);
    let policy = s.m.policy(&s.policy_id).await.unwrap();
    assert_eq!(policy.last_status.code, "FAILED");
}

#[tokio::test]
async fn resumes_a_blob_cut_mid_body_with_a_range_request() {
    let s = setup(&[layer(3 * 1024 * 1024 + 17, 7)]).await;
    s.reg.faults().blob_truncate.store(2, Ordering::SeqCst);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
    assert!(
        s.reg.counters().range_gets.load(Ordering::SeqCst) >= 1,
        "no Range resume"
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
    let d = Digest::parse(&s.layers[0]).unwrap();
    let stored = s.m.stores().blobs.read_small(&d, u64::MAX).await.unwrap();
    assert_eq!(digest_of(&stored), s.layers[0]);
    assert_eq!(uploads_left(s.dir.path()), 0);
}

#[tokio::test]
async fn rejects_a_blob_whose_bytes_do_not_match_its_digest() {
    let s = setup(&[layer(5000, 3)]).await;
    s.reg.faults().corrupt_blobs.store(true, Ordering::SeqCst);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Errored);
    let log = log_text(&s.m, &job.id).await;
    assert!(log.contains("does not match"), "{log}");
    assert!(log.contains("expected sha256:"), "{log}");
    assert_eq!(s.tag_digest().await, None);
    for l in &s.layers {
        let d = Digest::parse(l).unwrap();
        assert_eq!(
            s.m.stores().blobs.stat(&d).await.unwrap(),
            None,
            "corrupt blob stored"
        );
    }
    assert_eq!(uploads_left(s.dir.path()), 0);
    // Once the fault clears, the next poll completes.
    s.reg.faults().corrupt_blobs.store(false, Ordering::SeqCst);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
}

/// Starts a poll in a task while blob bodies stall; returns once the job
/// is inside the blob, with its ID and the task.
async fn poll_into_stalled_blob(
    s: &Setup,
) -> (String, tokio::task::JoinHandle<Option<mirror_core::Job>>) {
    s.reg.faults().stall_blobs.store(true, Ordering::SeqCst);
    let m = s.m.clone();
    let pid = s.policy_id.clone();
    let run = tokio::spawn(async move { m.poll(&pid).await.ok() });
    loop {
        let jobs = s.m.jobs(&Default::default()).await.unwrap();
        if let Some(j) = jobs.first()
            && s.m.progress(&j.id).is_some_and(|p| p.bytes_copied > 0)
        {
            return (j.id.clone(), run);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_running_job_can_be_canceled_inside_a_blob() {
    let s = setup(&[layer(2 * 1024 * 1024, 9)]).await;
    let (job_id, run) = poll_into_stalled_blob(&s).await;
    s.m.cancel_job(&job_id).await.unwrap();
    let job = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Canceled);
    assert_eq!(s.tag_digest().await, None);
    assert_eq!(uploads_left(s.dir.path()), 0);
}

#[tokio::test]
async fn a_crash_mid_blob_leaves_nothing_visible_and_the_next_poll_completes() {
    let s = setup(&[layer(2 * 1024 * 1024, 5)]).await;
    let (job_id, run) = poll_into_stalled_blob(&s).await;
    // A crash: the task vanishes mid-blob, with its heartbeat.
    run.abort();
    let _ = run.await;
    // What a killed process leaves behind: an upload file nobody owns.
    std::fs::write(
        s.dir.path().join("uploads").join("left-by-crash"),
        b"partial",
    )
    .unwrap();
    s.reg.faults().stall_blobs.store(false, Ordering::SeqCst);

    // Nothing partial is visible.
    assert_eq!(s.tag_digest().await, None);
    let d = Digest::parse(&s.layers[0]).unwrap();
    assert_eq!(s.m.stores().blobs.stat(&d).await.unwrap(), None);

    // A restarted engine on the same data directory finds the lost job.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = mirror(s.dir.path());
    let recovered = m.recover().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, job_id);
    assert_eq!(m.job(&job_id).await.unwrap().status, JobStatus::Errored);
    assert!(log_text(&m, &job_id).await.contains("worker lost"));
    assert_eq!(uploads_left(s.dir.path()), 0);

    let job = m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

#[tokio::test]
async fn bad_credentials_give_a_clear_error() {
    let reg = FakeRegistry::start().await;
    reg.add_image("team/app", "v1", &[layer(100, 1)]);
    *reg.faults().basic.lock().unwrap() = Some(("bot".into(), "right".into()));
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let mut f = form(&reg, "team/app");
    f.username = Some("bot".into());
    f.password = Some(Secret::new("wrong-pass-123"));
    let err = m
        .add_policy(&name("local/app"), &f, None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), mirror_core::ErrorKind::Unauthorized, "{msg}");
    assert!(
        msg.contains("authentication failed") && msg.contains("team/app"),
        "{msg}"
    );
    assert!(!msg.contains("wrong-pass-123"), "secret leaked: {msg}");
    // Nothing was saved.
    assert!(m.policies(None).await.unwrap().is_empty());
    f.password = Some(Secret::new("right"));
    m.add_policy(&name("local/app"), &f, None).await.unwrap();
}

#[tokio::test]
async fn a_no_change_poll_makes_only_head_requests() {
    let reg = FakeRegistry::start().await;
    for t in ["a", "b", "c"] {
        reg.add_image("team/app", t, &[layer(2000, t.as_bytes()[0])]);
    }
    let dir = tempfile::tempdir().unwrap();
    let m = mirror(dir.path());
    let p = m
        .add_policy(&name("local/app"), &form(&reg, "team/app"), None)
        .await
        .unwrap();
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Done);
    let c = reg.counters();
    let (gets, blobs, heads) = (
        c.manifest_gets.load(Ordering::SeqCst),
        c.blob_gets.load(Ordering::SeqCst),
        c.manifest_heads.load(Ordering::SeqCst),
    );
    let job = m.poll(&p.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(
        c.manifest_gets.load(Ordering::SeqCst),
        gets,
        "manifest GET on no change"
    );
    assert_eq!(
        c.blob_gets.load(Ordering::SeqCst),
        blobs,
        "blob GET on no change"
    );
    assert_eq!(c.manifest_heads.load(Ordering::SeqCst), heads + 3);
    assert!(
        log_text(&m, &job.id)
            .await
            .contains("0 tags to copy, 3 unchanged")
    );
}

/// Tag pages linked with `Link: <...>; rel="next"` are all followed.
#[tokio::test]
async fn follows_link_pagination_of_tag_lists() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .and(query_param("last", "b"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "team/app", "tags": ["c"]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .and(query_param("n", "1000"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", "</v2/team/app/tags/list?n=2&last=b>; rel=\"next\"")
                .set_body_json(serde_json::json!({"name": "team/app", "tags": ["a", "b"]})),
        )
        .mount(&server)
        .await;
    let endpoint = mirror_core::RemoteEndpoint::anonymous(&server.uri(), "team/app").unwrap();
    let remote = mirror_core::remote::HttpRemote::new(&endpoint, &Default::default()).unwrap();
    use mirror_core::RemoteRegistry;
    let tags = remote.list_tags(&name("team/app")).await.unwrap();
    assert_eq!(tags, ["a", "b", "c"]);
}

/// A 429 from wiremock with `Retry-After` and no body is retried.
#[tokio::test]
async fn wiremock_429_then_success() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "team/app", "tags": ["x"]})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let endpoint = mirror_core::RemoteEndpoint::anonymous(&server.uri(), "team/app").unwrap();
    let settings = HttpSettings {
        retry: fast_retry(),
        ..Default::default()
    };
    let remote = mirror_core::remote::HttpRemote::new(&endpoint, &settings).unwrap();
    use mirror_core::RemoteRegistry;
    assert_eq!(remote.list_tags(&name("team/app")).await.unwrap(), ["x"]);
    // And one that never stops says so.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .mount(&server)
        .await;
    let endpoint = mirror_core::RemoteEndpoint::anonymous(&server.uri(), "team/app").unwrap();
    let remote = mirror_core::remote::HttpRemote::new(&endpoint, &settings).unwrap();
    let err = remote.list_tags(&name("team/app")).await.unwrap_err();
    assert!(
        err.to_string().contains("HTTP 429 after 5 attempts"),
        "{err}"
    );
}

/// Two polls of one policy never overlap, and the second does not claim
/// `done` before the policy is up to date: it waits for the first, then
/// polls itself.
#[tokio::test]
async fn a_poll_of_a_busy_policy_waits_for_it_then_polls_itself() {
    let s = setup(&[layer(2 * 1024 * 1024, 4)]).await;
    let (first_id, run) = poll_into_stalled_blob(&s).await;
    let m = s.m.clone();
    let pid = s.policy_id.clone();
    let second = tokio::spawn(async move { m.poll(&pid).await.unwrap() });
    let second_id = loop {
        let jobs = s.m.jobs(&Default::default()).await.unwrap();
        if let Some(j) = jobs.iter().find(|j| j.id != first_id) {
            break j.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        s.m.job(&second_id).await.unwrap().status,
        JobStatus::Running
    );
    assert!(
        !second.is_finished(),
        "the second poll must wait, not finish"
    );
    s.reg.faults().stall_blobs.store(false, Ordering::SeqCst);
    let first = run.await.unwrap().unwrap();
    assert_eq!(first.status, JobStatus::Done);
    let second = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.status, JobStatus::Done);
    let log = log_text(&s.m, &second.id).await;
    assert!(
        log.contains(&format!(
            "is being polled by job {first_id}: waiting for it to finish"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("job {first_id} finished")), "{log}");
    assert!(
        log.contains("1 unchanged"),
        "the second poll ran after the first: {log}"
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

#[tokio::test]
async fn a_lost_job_with_retries_left_is_requeued_and_rerun() {
    let s = setup(&[layer(2 * 1024 * 1024, 6)]).await;
    s.reg.faults().stall_blobs.store(true, Ordering::SeqCst);
    let job =
        s.m.submit_job(mirror_core::JobSubmission {
            action: "poll_mirror".into(),
            retries: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let m = s.m.clone();
    let id = job.id.clone();
    let run = tokio::spawn(async move {
        m.run_job(&id, Default::default(), None).await.ok();
    });
    while s.m.progress(&job.id).is_none_or(|p| p.bytes_copied == 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    s.reg.faults().stall_blobs.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = mirror(s.dir.path());
    m.recover().await.unwrap();
    let requeued = m.job(&job.id).await.unwrap();
    assert_eq!(requeued.status, JobStatus::Waiting);
    assert_eq!(requeued.retries_left, 0);
    let rerun = m.run_next_job(Default::default()).await.unwrap().unwrap();
    assert_eq!(rerun.id, job.id);
    assert_eq!(
        rerun.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

/// A tag whose digest cannot be read fails alone; the other tags are copied.
#[tokio::test]
async fn one_unreadable_tag_does_not_stop_the_others() {
    let s = setup(&[layer(1000, 1)]).await;
    let (good, _) = s.reg.add_image("team/app", "v2", &[layer(1000, 2)]);
    *s.reg.faults().broken_tag.lock().unwrap() = Some("v1".into());
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Errored);
    let log = log_text(&s.m, &job.id).await;
    assert!(
        log.contains("failed team/app:v1: cannot read its digest"),
        "{log}"
    );
    assert!(log.contains("HTTP 500"), "{log}");
    let v2 =
        s.m.stores()
            .repos
            .tag(&name("local/app"), "v2")
            .await
            .unwrap();
    assert_eq!(v2.map(|t| t.digest.to_string()), Some(good));
    assert_eq!(s.tag_digest().await, None);
    assert_eq!(
        s.m.policy(&s.policy_id).await.unwrap().last_status.code,
        "PARTIAL"
    );
    *s.reg.faults().broken_tag.lock().unwrap() = None;
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
    assert_eq!(s.tag_digest().await.as_ref(), Some(&s.digest));
}

/// Many tags copy at once and are published in batches: a tag whose blob
/// arrives corrupt fails alone, every other tag is published with its own
/// counts in its log line, and the next poll copies the one that failed.
#[tokio::test]
async fn a_failed_tag_among_many_copied_at_once_fails_alone() {
    let s = setup(&[layer(1000, 1)]).await;
    let mut bad_layer = String::new();
    for i in 0..40u8 {
        let (_, layers) = s.reg.add_image(
            "team/app",
            &format!("t{i:02}"),
            &[layer(700 + i as usize, i)],
        );
        if i == 17 {
            bad_layer = layers[0].clone();
        }
    }
    *s.reg.faults().corrupt_blob.lock().unwrap() = Some(bad_layer);
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Errored);
    let log = log_text(&s.m, &job.id).await;
    assert!(log.contains("failed team/app:t17 ("), "{log}");
    let copied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("copied new tag"))
        .collect();
    assert_eq!(copied.len(), 40, "{log}");
    for line in &copied {
        // Each tag's own counts, although 8 copy at once: a config and a
        // layer of its own.
        assert!(line.contains(", 2 blobs copied, 0 reused, "), "{line}");
    }
    let tags = s.m.stores().repos.tags(&name("local/app")).await.unwrap();
    let mut names: Vec<String> = tags.into_iter().map(|t| t.name).collect();
    names.sort();
    assert_eq!(names.len(), 40, "{names:?}");
    assert!(!names.contains(&"t17".to_string()), "{names:?}");

    *s.reg.faults().corrupt_blob.lock().unwrap() = None;
    let job = s.m.poll(&s.policy_id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&s.m, &job.id).await
    );
    let log = log_text(&s.m, &job.id).await;
    assert!(log.contains("1 tags to copy, 40 unchanged"), "{log}");
    let t17 =
        s.m.stores()
            .repos
            .tag(&name("local/app"), "t17")
            .await
            .unwrap();
    assert!(t17.is_some());
}
