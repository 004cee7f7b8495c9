//! `PgStore` (mirror-core's feature `postgres`) against a real PostgreSQL
//! (`support::postgres`: one server for this test binary, a database per
//! test): the conformance checks; claims racing from several stores on one
//! database; secrets sealed at rest and the URL's password never shown;
//! migrations (once, concurrently, a newer schema refused); an engine on
//! it mirroring a real image; and two replicas sharing one queue, one of
//! which dies mid-job.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mirror_core::job::{PARAM_POLICY_ID, POLL_MIRROR};
use mirror_core::remote::{BlobBody, HttpConnector, ManifestHead, RemoteManifest, RetryPolicy};
use mirror_core::store::{
    FsBlobStore, FsOptions, JobStore, PgOptions, PgStore, PolicyStore, SecretKeys, StoreError,
    conformance,
};
use mirror_core::worker::Worker;
use mirror_core::{
    Digest, Job, JobFilter, JobStatus, JobSubmission, Mirror, MirrorSettings, Permissions,
    PolicyForm, RemoteConnector, RemoteEndpoint, RemoteError, RemoteRegistry, RepositoryName,
    Stores,
};
use tokio_util::sync::CancellationToken;

use crate::support::postgres::PgServer;
use crate::support::store_checks::{assert_complete, local_tags, log_text, upstream_tags};
use crate::support::{ImageSpec, Registry};

fn keys() -> SecretKeys {
    SecretKeys::from_key([5; 32])
}

async fn connect(url: &str) -> Result<PgStore, StoreError> {
    PgStore::connect(url, PgOptions::default(), keys()).await
}

/// A store on a new database, and the database's URL.
async fn store() -> (PgStore, String) {
    let url = PgServer::shared().database().await;
    (connect(&url).await.unwrap(), url)
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).unwrap()
}

#[tokio::test]
async fn pg_repository_store() {
    let (store, _) = store().await;
    conformance::repository_store(&store).await;
    conformance::publish_is_atomic(&store).await;
    conformance::publish_cached(&store).await;
}

#[tokio::test]
async fn pg_job_queue_leases_and_baselines() {
    let (store, _) = store().await;
    conformance::job_queue(&store, &store).await;
    conformance::lost_job_recovery(&store).await;
    conformance::leases(&store).await;
    conformance::policy_baselines(&store).await;
}

#[tokio::test]
async fn pg_policies_and_namespace_share() {
    let (store, _) = store().await;
    conformance::policies(&store).await;
    conformance::namespace_share(&store, &store, &store).await;
}

#[tokio::test]
async fn pg_proxy_caches() {
    let (store, _) = store().await;
    conformance::proxy_caches(&store).await;
    conformance::cache_pulls(&store, &store).await;
}

/// Six claimers, each on a store of its own (as replicas are), claim jobs
/// from the database at `url` with a namespace `share` until none is left
/// for them; returns the IDs claimed.
async fn claim_all(url: &str, share: Option<usize>) -> Vec<String> {
    let tasks: Vec<_> = (0..6)
        .map(|c| {
            let url = url.to_string();
            tokio::spawn(async move {
                let replica = connect(&url).await.unwrap();
                let mut got = Vec::new();
                while let Some(job) = replica
                    .claim_job(&format!("w{c}"), None, chrono::Utc::now(), share)
                    .await
                    .unwrap()
                {
                    assert_eq!(
                        (job.status, job.worker_id),
                        (JobStatus::Running, format!("w{c}"))
                    );
                    got.push(job.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed
}

/// Claimers on separate stores (each its own pool, as replicas are) race
/// for one queue: every job is claimed once, and a namespace's share holds
/// across all of them.
#[tokio::test]
async fn pg_racing_claims_take_each_job_once_and_keep_the_namespace_share() {
    let (store, url) = store().await;
    let policies = [
        conformance::sample_policy("red/a", 0),
        conformance::sample_policy("red/b", 0),
        conformance::sample_policy("blue/a", 0),
    ];
    for p in &policies {
        store.insert_policy(p).await.unwrap();
    }
    const JOBS: usize = 60;
    let mut namespace_of = HashMap::new();
    for i in 0..JOBS {
        let policy = &policies[i % policies.len()];
        let job = Job::new(&JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: [(PARAM_POLICY_ID.to_string(), policy.id.clone())].into(),
            ..Default::default()
        });
        namespace_of.insert(
            job.id.clone(),
            policy.local_repository.namespace().to_string(),
        );
        store.insert_job(&job).await.unwrap();
    }
    // A share of 3: at most 3 jobs of red/ and 3 of blue/ are claimed.
    let mut claimed = claim_all(&url, Some(3)).await;
    let mut per_namespace: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &claimed {
        *per_namespace.entry(&namespace_of[id]).or_default() += 1;
    }
    assert_eq!(
        per_namespace,
        BTreeMap::from([("blue", 3), ("red", 3)]),
        "{claimed:?}"
    );
    // Without a share, everything left is claimed, each job once.
    claimed.extend(claim_all(&url, None).await);
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), JOBS, "claimed: {}", claimed.len());
    assert_eq!(unique.len(), JOBS, "a job was claimed twice");
}

#[tokio::test]
async fn pg_secrets_are_sealed_at_rest_and_the_url_password_is_never_shown() {
    let pg = PgServer::shared();
    let (store, url) = store().await;
    let policy = conformance::sample_policy("team/app", 0);
    store.insert_policy(&policy).await.unwrap();
    // In the table: the sealed binary form, never the secret.
    let raw = pg
        .psql(
            &url,
            "SELECT get_byte(password, 0), position(convert_to('pw of', 'UTF8') in password),
                    position(convert_to('token of', 'UTF8') in auth_token), length(auth_token)
             FROM policies",
        )
        .await;
    let fields: Vec<i64> = raw.split('|').map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields[..3], [1, 0, 0], "{raw}");
    assert!(fields[3] > 40, "{raw}");
    // Another key opens nothing: connecting with it fails, as opening
    // SQLite's file does, naming the key the values were sealed with.
    let e = PgStore::connect(&url, PgOptions::default(), SecretKeys::from_key([6; 32]))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("which is neither MIRROR_SECRET_KEY"), "{e}");
    // Rotation: a store opened with a new key, and the old one as
    // previous, seals every value again; the old key is then not needed.
    let key_id = "SELECT encode(substring(password from 2 for 4), 'hex') FROM policies";
    let old_id = pg.psql(&url, key_id).await;
    let rotated = SecretKeys::from_key([6; 32]).with_previous([5; 32]);
    PgStore::connect(&url, PgOptions::default(), rotated)
        .await
        .unwrap();
    assert_ne!(pg.psql(&url, key_id).await, old_id);
    let new_only = PgStore::connect(&url, PgOptions::default(), SecretKeys::from_key([6; 32]))
        .await
        .unwrap();
    assert_eq!(
        new_only.policy(&policy.id).await.unwrap(),
        Some(policy.clone())
    );
    let e = connect(&url).await.unwrap_err().to_string();
    assert!(e.contains("which is neither MIRROR_SECRET_KEY"), "{e}");
    let store = new_only;

    // Moving a sealed value to another policy does not open it either.
    let copy = conformance::sample_policy("team/copy", 0);
    store.insert_policy(&copy).await.unwrap();
    pg.psql(
        &url,
        &format!(
            "UPDATE policies SET password = (SELECT password FROM policies WHERE id = '{}')
             WHERE id = '{}'",
            policy.id, copy.id
        ),
    )
    .await;
    assert!(store.policy(&copy.id).await.is_err());

    // The URL's password shows nowhere: Debug, a failed login, a bad URL.
    let debug = format!("{store:?}");
    assert!(!debug.contains(pg.password()), "{debug}");
    assert!(debug.contains("postgres@127.0.0.1:"), "{debug}");
    let wrong = url.replace(pg.password(), "Wrong-PG-Secret-7");
    let e = connect(&wrong).await.unwrap_err().to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(
        !e.contains("Wrong-PG-Secret-7") && !e.contains(pg.password()),
        "{e}"
    );
    let e = connect("postgres://u:Bad-URL-Secret-9@127.0.0.1:notaport/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("Bad-URL-Secret-9"), "{e}");
}

#[tokio::test]
async fn pg_migrations_run_once_even_from_replicas_starting_together() {
    let pg = PgServer::shared();
    let url = pg.database().await;
    let (a, b, c) = tokio::join!(connect(&url), connect(&url), connect(&url));
    for s in [a, b, c] {
        s.unwrap();
    }
    assert_eq!(
        pg.psql(
            &url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM regmirror_schema_migrations"
        )
        .await,
        "1,2,3,4,5,6,7,8,9,10"
    );
    // Again: nothing to do.
    connect(&url).await.unwrap();
    // A database a newer build migrated is left alone.
    pg.psql(
        &url,
        "INSERT INTO regmirror_schema_migrations (version, what) VALUES (99, 'from the future')",
    )
    .await;
    let e = connect(&url).await.unwrap_err().to_string();
    assert!(
        e.contains("has schema version 99, newer than this build knows (10)")
            && e.contains("run the newer regmirror"),
        "{e}"
    );
}

/// Counts polls per remote repository across engines (a poll connects once
/// per policy and drops the client when it ends), notes any two at once,
/// and can hold the polls of one repository in `list_tags` forever.
#[derive(Default)]
struct Watch {
    active: Mutex<HashMap<String, usize>>,
    polls: Mutex<HashMap<String, usize>>,
    overlaps: AtomicUsize,
    /// Polls of this repository never get their tag list.
    hold: Option<String>,
    held: tokio::sync::Notify,
}

struct Watched {
    inner: HttpConnector,
    watch: Arc<Watch>,
}

impl RemoteConnector for Watched {
    fn connect(&self, endpoint: &RemoteEndpoint) -> Result<Arc<dyn RemoteRegistry>, RemoteError> {
        let inner = self.inner.connect(endpoint)?;
        let repo = endpoint.repository.to_string();
        *self
            .watch
            .polls
            .lock()
            .unwrap()
            .entry(repo.clone())
            .or_default() += 1;
        let mut active = self.watch.active.lock().unwrap();
        let n = active.entry(repo.clone()).or_default();
        *n += 1;
        if *n > 1 {
            self.watch.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Arc::new(WatchedRemote {
            inner,
            repo,
            watch: self.watch.clone(),
        }))
    }

    fn connect_interactive(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<Arc<dyn RemoteRegistry>, RemoteError> {
        self.inner.connect_interactive(endpoint)
    }
}

struct WatchedRemote {
    inner: Arc<dyn RemoteRegistry>,
    repo: String,
    watch: Arc<Watch>,
}

impl Drop for WatchedRemote {
    fn drop(&mut self) {
        *self
            .watch
            .active
            .lock()
            .unwrap()
            .get_mut(&self.repo)
            .unwrap() -= 1;
    }
}

#[async_trait]
impl RemoteRegistry for WatchedRemote {
    async fn list_tags(&self, repo: &RepositoryName) -> Result<Vec<String>, RemoteError> {
        if self.watch.hold.as_deref() == Some(repo.as_str()) {
            self.watch.held.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.list_tags(repo).await
    }

    async fn head_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<ManifestHead, RemoteError> {
        self.inner.head_manifest(repo, reference).await
    }

    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<RemoteManifest, RemoteError> {
        self.inner.get_manifest(repo, reference).await
    }

    async fn get_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobBody, RemoteError> {
        self.inner.get_blob(repo, digest, offset).await
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Vec<mirror_core::manifest::Descriptor>>, RemoteError> {
        self.inner.referrers(repo, digest).await
    }

    async fn check_access(&self, repo: &RepositoryName) -> Result<Permissions, RemoteError> {
        self.inner.check_access(repo).await
    }
}

/// An engine (a replica) on the database at `url`, with blobs in `blobs`.
async fn replica(url: &str, blobs: &std::path::Path, worker: &str, watch: &Arc<Watch>) -> Mirror {
    let retry = RetryPolicy {
        max_retries: 3,
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
    };
    let blob_store = Arc::new(FsBlobStore::open(blobs, FsOptions { durable: false }).unwrap());
    let options = PgOptions {
        pool_size: 4,
        ..Default::default()
    };
    Mirror::new(
        Stores::postgres(url, options, keys(), blob_store)
            .await
            .unwrap(),
        Arc::new(Watched {
            inner: HttpConnector::default(),
            watch: watch.clone(),
        }),
        MirrorSettings {
            retry,
            worker_id: worker.into(),
            heartbeat_interval: Duration::from_millis(200),
            stale_after: Duration::from_secs(1),
            ..Default::default()
        },
    )
}

/// `local` in `m` holds every tag of `remote` on `reg`, complete.
async fn assert_mirrored(m: &Mirror, local: &str, reg: &Registry, remote: &str) {
    assert_eq!(local_tags(m, local).await, upstream_tags(reg, remote).await);
    assert_complete(m, local).await;
}

/// Waits (bounded) until every job in `ids` has finished.
async fn finished(m: &Mirror, ids: &[String], within: Duration) -> Vec<Job> {
    let deadline = Instant::now() + within;
    loop {
        let jobs: Vec<Job> = m
            .jobs(&JobFilter::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|j| ids.contains(&j.id))
            .collect();
        if jobs.len() == ids.len() && jobs.iter().all(|j| j.status.is_final()) {
            return jobs;
        }
        assert!(
            Instant::now() < deadline,
            "jobs not finished in {within:?}: {:?}",
            jobs.iter().map(|j| (&j.id, j.status)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pg_engine_mirrors_an_image_with_blobs_on_the_filesystem() {
    let reg = Registry::plain().await;
    let p = reg.pusher();
    p.push_image("team/app", "v1", ImageSpec::small("one"))
        .await;
    p.push_image("team/app", "v2", ImageSpec::small("two").oci())
        .await;
    let url = PgServer::shared().database().await;
    let blobs = tempfile::tempdir().unwrap();
    let m = replica(&url, blobs.path(), "solo", &Arc::default()).await;
    let policy = m
        .add_policy(
            &name("mirror/app"),
            &PolicyForm::new(reg.url(), "team/app"),
            None,
        )
        .await
        .unwrap();
    let job = m.poll(&policy.id).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Done,
        "{}",
        log_text(&m, &job.id).await
    );
    assert_mirrored(&m, "mirror/app", &reg, "team/app").await;
    let again = m.poll(&policy.id).await.unwrap();
    assert_eq!(again.status, JobStatus::Done);
    let read = m.policy(&policy.id).await.unwrap();
    assert_eq!(read.last_status.code, "SUCCESS");
    assert!(read.last_mirrored_at.is_some());
}

/// Two replicas, each with a worker, on one database and one blob
/// directory: every submitted job runs exactly once, on one of them, and
/// no two polls of one policy ever overlap.
#[tokio::test]
async fn pg_replicas_run_each_job_once_and_never_poll_one_policy_twice_at_once() {
    let reg = Registry::plain().await;
    const POLICIES: usize = 4;
    const JOBS_PER_POLICY: usize = 5;
    for i in 0..POLICIES {
        reg.pusher()
            .push_image(
                &format!("team/app{i}"),
                "v1",
                ImageSpec::small(&format!("app {i}")),
            )
            .await;
    }
    let url = PgServer::shared().database().await;
    let blobs = tempfile::tempdir().unwrap();
    let watch = Arc::new(Watch::default());
    let a = replica(&url, blobs.path(), "replica-a", &watch).await;
    let b = replica(&url, blobs.path(), "replica-b", &watch).await;
    let mut policies = Vec::new();
    for i in 0..POLICIES {
        let form = PolicyForm::new(reg.url(), format!("team/app{i}"));
        let local = name(&format!("ns{}/app{i}", i % 2));
        policies.push(a.add_policy(&local, &form, None).await.unwrap());
    }
    watch.polls.lock().unwrap().clear();
    let stop = CancellationToken::new();
    let workers: Vec<_> = [&a, &b]
        .into_iter()
        .map(|m| {
            // No namespace share: every slot may wait on a policy's lease.
            let w = Worker::new(m.clone(), 4).with_namespace_share(None);
            tokio::spawn(w.run(stop.clone()))
        })
        .collect();
    let mut ids = Vec::new();
    for round in 0..JOBS_PER_POLICY {
        for (i, p) in policies.iter().enumerate() {
            let submitter = if (round + i) % 2 == 0 { &a } else { &b };
            let job = submitter
                .submit_job(JobSubmission {
                    action: POLL_MIRROR.into(),
                    parameters: [(PARAM_POLICY_ID.to_string(), p.id.clone())].into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            ids.push(job.id);
        }
    }
    let jobs = finished(&b, &ids, Duration::from_secs(60)).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let mut ran_on: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        let log = log_text(&a, &job.id).await;
        assert_eq!(job.status, JobStatus::Done, "{log}");
        assert_eq!(
            log.matches(" started on worker ").count(),
            1,
            "job {} ran more than once:\n{log}",
            job.id
        );
        *ran_on.entry(job.worker_id.clone()).or_default() += 1;
    }
    assert_eq!(
        ran_on.keys().collect::<Vec<_>>(),
        ["replica-a", "replica-b"],
        "both replicas take jobs: {ran_on:?}"
    );
    assert_eq!(
        watch.overlaps.load(Ordering::SeqCst),
        0,
        "two polls of one policy at once"
    );
    let polls = watch.polls.lock().unwrap().clone();
    for i in 0..POLICIES {
        assert_eq!(
            polls.get(&format!("team/app{i}")),
            Some(&JOBS_PER_POLICY),
            "{polls:?}"
        );
    }
    for (i, p) in policies.iter().enumerate() {
        assert_eq!(
            a.stores().leases.policy_lease_holder(&p.id).await.unwrap(),
            None
        );
        let local = format!("ns{}/app{i}", i % 2);
        assert_mirrored(&b, &local, &reg, &format!("team/app{i}")).await;
    }
}

/// A replica dies mid-job (its runtime is shut down, so its heartbeats
/// stop): the other replica finds the job stale, requeues it (it has a
/// retry), frees its policy lease, and runs it to the end.
#[tokio::test]
async fn pg_a_dead_replicas_job_is_taken_over_by_another() {
    let reg = Registry::plain().await;
    reg.pusher()
        .push_image("team/app", "v1", ImageSpec::small("one"))
        .await;
    let url = PgServer::shared().database().await;
    let blobs = tempfile::tempdir().unwrap();
    let b = replica(&url, blobs.path(), "replica-b", &Arc::default()).await;
    let policy = b
        .add_policy(
            &name("mirror/app"),
            &PolicyForm::new(reg.url(), "team/app"),
            None,
        )
        .await
        .unwrap();
    let job = b
        .submit_job(JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: [(PARAM_POLICY_ID.to_string(), policy.id.clone())].into(),
            retries: 1,
            ..Default::default()
        })
        .await
        .unwrap();

    // Replica A, in a runtime of its own, claims the job and hangs in it.
    let hold = Arc::new(Watch {
        hold: Some("team/app".into()),
        ..Default::default()
    });
    let a_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (a_url, a_blobs, a_hold) = (url.clone(), blobs.path().to_path_buf(), hold.clone());
    a_runtime.spawn(async move {
        let a = replica(&a_url, &a_blobs, "replica-a", &a_hold).await;
        Worker::new(a, 2).run(CancellationToken::new()).await;
    });
    tokio::time::timeout(Duration::from_secs(20), hold.held.notified())
        .await
        .expect("replica A started the job");
    let running = b.job(&job.id).await.unwrap();
    assert_eq!(
        (running.status, running.worker_id.as_str()),
        (JobStatus::Running, "replica-a")
    );
    assert_eq!(
        b.stores()
            .leases
            .policy_lease_holder(&policy.id)
            .await
            .unwrap(),
        Some(job.id.clone())
    );
    // Once its heartbeat wrote the first log lines, A dies: every task of
    // it stops, heartbeats included.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_text(&b, &job.id)
        .await
        .contains("started on worker replica-a")
    {
        assert!(Instant::now() < deadline, "replica A's log never flushed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a_runtime.shutdown_background();

    let stop = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(b.clone(), 2).run(stop.clone()));
    let done = finished(&b, std::slice::from_ref(&job.id), Duration::from_secs(30)).await;
    stop.cancel();
    worker.await.unwrap();
    let log = log_text(&b, &job.id).await;
    assert_eq!(done[0].status, JobStatus::Done, "{log}");
    assert_eq!(done[0].worker_id, "replica-b", "{log}");
    assert_eq!(done[0].retries_left, 0, "{log}");
    for line in [
        "started on worker replica-a",
        "worker lost (no heartbeat): job requeued",
        "started on worker replica-b",
        "job done",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }
    assert_eq!(
        b.stores()
            .leases
            .policy_lease_holder(&policy.id)
            .await
            .unwrap(),
        None
    );
    assert_mirrored(&b, "mirror/app", &reg, "team/app").await;
}

/// `sslmode=verify-full` with `sslrootcert`: the store connects over TLS,
/// verifying the server's certificate (the database sees an SSL session of
/// `regmirror`), and works; without the CA, or with `disable`, it does not
/// use TLS by mistake: the first is refused naming the certificate, the
/// second is a plain session.
#[tokio::test]
async fn pg_tls_verifies_the_server_with_sslrootcert() {
    let pg = PgServer::shared();
    let url = pg.database().await;
    let db = url.rsplit('/').next().unwrap().to_string();
    let ca = pg.ca_file();
    let tls_url = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let store = connect(&tls_url).await.unwrap();
    conformance::repository_store(&store).await;
    let sessions = |ssl: bool| {
        format!(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE datname = '{db}' AND application_name = 'regmirror' AND ssl = {ssl}"
        )
    };
    let tls_sessions: u32 = pg.psql(&url, &sessions(true)).await.parse().unwrap();
    assert!(tls_sessions >= 1, "no TLS session of the store");
    drop(store);

    let e = connect(&format!("{url}?sslmode=verify-full"))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    let plain_db = pg.database().await;
    let plain_name = plain_db.rsplit('/').next().unwrap().to_string();
    let store = connect(&format!("{plain_db}?sslmode=disable"))
        .await
        .unwrap();
    conformance::policy_baselines(&store).await;
    let plain = sessions(false).replace(&db, &plain_name);
    let plain_sessions: u32 = pg.psql(&plain_db, &plain).await.parse().unwrap();
    assert!(plain_sessions >= 1, "no plain session of the store");
}
