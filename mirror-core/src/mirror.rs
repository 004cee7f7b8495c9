//! [`Mirror`]: the engine both bindings drive. It owns the stores and the
//! remote connector, validates and saves policies, and runs jobs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::access::{OpenAccess, ReadAccess, ReuseGate};
use crate::copy::{CopyContext, Progress, ProgressSnapshot};
use crate::error::ErrorKind;
use crate::job::{
    Job, JobEvent, JobFilter, JobStatus, JobSubmission, LogLine, PARAM_POLICY_ID, POLL_MIRROR,
    transition,
};
use crate::metrics::{Metrics, MetricsSnapshot, PollResult};
use crate::policy::{
    InvalidPolicy, MirroringStatus, NewPolicy, PolicyUpdate, PollMirroringPolicy, RemoteEndpoint,
};
use crate::poll::{LogSink, PollEnv, PollError, PollReport, poll_policy, resolve_digests};
use crate::reference::{InvalidName, RepositoryName};
use crate::remote::{
    HttpConnector, HttpSettings, Permissions, RemoteConnector, RemoteError, RetryPolicy,
};
use crate::store::{
    BlobStore, FsBlobStore, FsOptions, NewRepository, PolicyStore, Repository, RepositoryStore,
    SqliteStore, StoreError, Visibility,
};

/// Errors of the engine's operations.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A policy field is invalid.
    #[error("invalid policy: {0}")]
    InvalidPolicy(#[from] InvalidPolicy),
    /// A repository name or tag is invalid.
    #[error("{0}")]
    InvalidName(#[from] InvalidName),
    /// A job submission is invalid.
    #[error("invalid job: {field}: {reason}")]
    InvalidJob {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Something does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What.
        what: String,
    },
    /// The operation conflicts with the current state.
    #[error("{reason}")]
    Conflict {
        /// Why.
        reason: String,
    },
    /// The remote registry failed or refused.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job ended in error.
    #[error("job {id} {status}: {detail}")]
    JobFailed {
        /// The job.
        id: String,
        /// Its final status.
        status: JobStatus,
        /// The last log line.
        detail: String,
    },
}

impl MirrorError {
    /// The kind of failure, for HTTP statuses and Python exception classes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MirrorError::InvalidPolicy(_)
            | MirrorError::InvalidName(_)
            | MirrorError::InvalidJob { .. } => ErrorKind::Invalid,
            MirrorError::NotFound { .. } => ErrorKind::NotFound,
            MirrorError::Conflict { .. } => ErrorKind::Conflict,
            MirrorError::Remote(e) => e.kind(),
            MirrorError::Store(StoreError::NotFound { .. }) => ErrorKind::NotFound,
            MirrorError::Store(StoreError::Conflict { .. }) => ErrorKind::Conflict,
            MirrorError::Store(_) => ErrorKind::Internal,
            MirrorError::JobFailed { status, .. } if *status == JobStatus::Canceled => {
                ErrorKind::Canceled
            }
            MirrorError::JobFailed { .. } => ErrorKind::Transient,
        }
    }
}

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct MirrorSettings {
    /// Concurrent blob transfers per poll.
    pub blob_concurrency: usize,
    /// Concurrent manifest HEADs when resolving tag digests.
    pub head_concurrency: usize,
    /// Retries of a blob transfer that failed mid-way.
    pub retry: RetryPolicy,
    /// How often a running job records a heartbeat and checks for cancel.
    pub heartbeat_interval: Duration,
    /// A running job whose heartbeat is older than this is considered lost.
    pub stale_after: Duration,
    /// This process's worker ID (DTR: 12 hex characters).
    pub worker_id: String,
    /// Counters the engine updates (see [`crate::metrics`]). [`Mirror::open`]
    /// shares them with its HTTP connector, which counts 429s; with
    /// [`Mirror::new`], pass the same `Arc` in [`HttpSettings::metrics`].
    pub metrics: Arc<Metrics>,
    /// Who may read which repository: a poll links stored content without
    /// downloading it only where its policy's owner may read it (see
    /// [`crate::access`]). [`OpenAccess`] (the default) is one trust
    /// domain, for an engine without accounts.
    pub read_access: Arc<dyn ReadAccess>,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings {
            blob_concurrency: 4,
            head_concurrency: 16,
            retry: RetryPolicy::default(),
            heartbeat_interval: Duration::from_secs(2),
            stale_after: Duration::from_secs(30),
            worker_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            metrics: Arc::default(),
            read_access: Arc::new(OpenAccess),
        }
    }
}

/// The stores a [`Mirror`] works on.
#[derive(Clone)]
pub struct Stores {
    /// Blobs and manifests.
    pub blobs: Arc<dyn BlobStore>,
    /// Repositories and tags.
    pub repos: Arc<dyn RepositoryStore>,
    /// Policies and jobs.
    pub policies: Arc<dyn PolicyStore>,
}

impl Stores {
    /// The embedded stores in `data_dir`: [`FsBlobStore`] and [`SqliteStore`].
    pub fn embedded(data_dir: &Path, fs: FsOptions) -> Result<Self, StoreError> {
        let blobs = Arc::new(FsBlobStore::open(data_dir, fs)?);
        let db = Arc::new(SqliteStore::open(data_dir)?);
        Ok(Stores {
            blobs,
            repos: db.clone(),
            policies: db,
        })
    }
}

/// The mirroring engine.
///
/// ```no_run
/// # async fn f() -> Result<(), mirror_core::MirrorError> {
/// use mirror_core::{Mirror, NewPolicy, RepositoryName};
/// let mirror = Mirror::open("/var/lib/regmirror".as_ref())?;
/// let policy = mirror
///     .add_policy(
///         &RepositoryName::parse("acme/nginx")?,
///         NewPolicy {
///             remote_host: "https://index.docker.io".into(),
///             remote_repository: "library/nginx".into(),
///             enabled: true,
///             ..Default::default()
///         },
///         true,
///     )
///     .await?;
/// let job = mirror.poll(&policy.id).await?;
/// println!("{}", job.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Stores,
    connector: Arc<dyn RemoteConnector>,
    settings: MirrorSettings,
    /// Jobs running in this process: their counters, and what the
    /// counters read when the job started (a caller may pass a `Progress`
    /// that already counted something).
    running: Mutex<HashMap<String, (Arc<Progress>, ProgressSnapshot)>>,
}

impl Mirror {
    /// The engine on the embedded stores in `data_dir`, with default settings.
    pub fn open(data_dir: &Path) -> Result<Self, MirrorError> {
        Mirror::open_with(data_dir, HttpSettings::default())
    }

    /// The engine on the embedded stores in `data_dir`, reaching remotes
    /// with `http` (e.g. a [`crate::remote::RemoteGuard`]); the engine
    /// shares `http.metrics`.
    pub fn open_with(data_dir: &Path, http: HttpSettings) -> Result<Self, MirrorError> {
        Mirror::open_with_access(data_dir, http, Arc::new(OpenAccess))
    }

    /// [`Mirror::open_with`] for an engine shared by accounts that may not
    /// read each other's repositories: `read_access` decides what a poll
    /// may link without downloading it (see [`crate::access`]).
    pub fn open_with_access(
        data_dir: &Path,
        http: HttpSettings,
        read_access: Arc<dyn ReadAccess>,
    ) -> Result<Self, MirrorError> {
        let stores = Stores::embedded(data_dir, FsOptions::default())?;
        let settings = MirrorSettings {
            read_access,
            metrics: http.metrics.clone(),
            // Stable across restarts, so `recover` knows this directory's
            // jobs left running by a crash without waiting for them to go stale.
            worker_id: crate::store::data_dir_worker_id(data_dir)?,
            ..Default::default()
        };
        let connector = HttpConnector { settings: http };
        Ok(Mirror::new(stores, Arc::new(connector), settings))
    }

    /// The engine on the given stores and connector.
    pub fn new(
        stores: Stores,
        connector: Arc<dyn RemoteConnector>,
        settings: MirrorSettings,
    ) -> Self {
        Mirror {
            inner: Arc::new(Inner {
                stores,
                connector,
                settings,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The settings.
    pub fn settings(&self) -> &MirrorSettings {
        &self.inner.settings
    }

    // ---- repositories ----

    /// Creates a local repository.
    pub async fn create_repository(&self, repo: NewRepository) -> Result<Repository, MirrorError> {
        Ok(self.inner.stores.repos.create_repository(&repo).await?)
    }

    /// The repository, created private if it does not exist yet.
    pub async fn ensure_repository(
        &self,
        name: &RepositoryName,
    ) -> Result<Repository, MirrorError> {
        if let Some(r) = self.inner.stores.repos.repository(name).await? {
            return Ok(r);
        }
        match self
            .create_repository(NewRepository {
                name: name.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await
        {
            Err(MirrorError::Store(StoreError::Conflict { .. })) => self
                .inner
                .stores
                .repos
                .repository(name)
                .await?
                .ok_or_else(|| MirrorError::NotFound {
                    what: format!("repository {name}"),
                }),
            other => other,
        }
    }

    // ---- policies ----

    /// Checks that `endpoint` can be reached and read.
    pub async fn check_connection(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<Permissions, MirrorError> {
        let remote = self.inner.connector.connect_interactive(endpoint)?;
        Ok(remote.check_access(&endpoint.repository).await?)
    }

    /// Validates `form`, checks that its credentials can read the remote
    /// repository, and saves the policy for `local` (created private if
    /// missing). Without `initial_evaluation`, the current remote tags are
    /// recorded as the baseline that later polls leave alone.
    pub async fn add_policy(
        &self,
        local: &RepositoryName,
        form: NewPolicy,
        initial_evaluation: bool,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        let endpoint = form.endpoint()?;
        self.check_connection(&endpoint).await?;
        let remote = self.inner.connector.connect(&endpoint)?;
        self.ensure_repository(local).await?;
        let now = crate::job::now();
        let policy = PollMirroringPolicy {
            id: uuid::Uuid::new_v4().to_string(),
            local_repository: local.clone(),
            remote: endpoint,
            enabled: form.enabled,
            initial_evaluation,
            last_mirrored_at: None,
            last_status: MirroringStatus {
                code: "NEVER_RUN".into(),
                detail: String::new(),
                timestamp: now,
            },
            created_at: now,
            owner: form.owner.clone(),
        };
        if !initial_evaluation {
            let tags = remote.list_tags(&policy.remote.repository).await?;
            let digests = resolve_digests(
                remote.as_ref(),
                &policy.remote.repository,
                &tags,
                self.inner.settings.head_concurrency,
            )
            .await?;
            self.inner
                .stores
                .policies
                .set_baseline(&policy.id, &digests)
                .await?;
        }
        self.inner.stores.policies.insert_policy(&policy).await?;
        Ok(policy)
    }

    /// One policy.
    pub async fn policy(&self, id: &str) -> Result<PollMirroringPolicy, MirrorError> {
        self.inner
            .stores
            .policies
            .policy(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("poll mirroring policy {id}"),
            })
    }

    /// Policies of one local repository, or all.
    pub async fn policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PollMirroringPolicy>, MirrorError> {
        Ok(self.inner.stores.policies.policies(local).await?)
    }

    /// Applies a partial update; when it changes how the remote is reached,
    /// the connection is checked before saving.
    pub async fn update_policy(
        &self,
        id: &str,
        update: PolicyUpdate,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        let current = self.policy(id).await?;
        let next = update.apply(&current)?;
        if update.changes_remote() {
            self.check_connection(&next.remote).await?;
        }
        self.inner.stores.policies.update_policy(&next).await?;
        Ok(next)
    }

    /// Deletes a policy; mirrored tags stay. Returns whether it existed.
    pub async fn delete_policy(&self, id: &str) -> Result<bool, MirrorError> {
        Ok(self.inner.stores.policies.delete_policy(id).await?)
    }

    // ---- jobs ----

    /// Validates and queues a job.
    pub async fn submit_job(&self, submission: JobSubmission) -> Result<Job, MirrorError> {
        self.validate_job(&submission).await?;
        let job = Job::new(&submission);
        self.inner.stores.policies.insert_job(&job).await?;
        Ok(job)
    }

    /// Checks a submission as [`Mirror::submit_job`] would, without queueing
    /// it: the action is known, the parameters are supported and name an
    /// existing policy, the retries are in range. Schedulers use it to refuse
    /// a bad cron when it is saved rather than when it fires.
    pub async fn validate_job(&self, submission: &JobSubmission) -> Result<(), MirrorError> {
        if submission.action != POLL_MIRROR {
            return Err(MirrorError::InvalidJob {
                field: "action",
                reason: format!(
                    "unknown action {:?}; supported: {POLL_MIRROR}",
                    submission.action
                ),
            });
        }
        for key in submission.parameters.keys() {
            if key != PARAM_POLICY_ID {
                return Err(MirrorError::InvalidJob {
                    field: "parameters",
                    reason: format!("unknown parameter {key:?}; supported: {PARAM_POLICY_ID}"),
                });
            }
        }
        if let Some(id) = submission.parameters.get(PARAM_POLICY_ID) {
            self.policy(id).await.map_err(|_| MirrorError::InvalidJob {
                field: "parameters",
                reason: format!("no poll mirroring policy with id {id:?}"),
            })?;
        }
        if submission.retries < 0 || submission.retries > 100 {
            return Err(MirrorError::InvalidJob {
                field: "retries",
                reason: "must be between 0 and 100".into(),
            });
        }
        Ok(())
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Job, MirrorError> {
        self.inner
            .stores
            .policies
            .job(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("job {id}"),
            })
    }

    /// Jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, MirrorError> {
        Ok(self.inner.stores.policies.jobs(filter).await?)
    }

    /// A job's log lines.
    pub async fn job_logs(
        &self,
        id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, MirrorError> {
        self.job(id).await?;
        Ok(self.inner.stores.policies.logs(id, offset, limit).await?)
    }

    /// Requests a cancel: a waiting job is canceled at once, a running one
    /// stops at its next check (between blobs or inside a transfer).
    pub async fn cancel_job(&self, id: &str) -> Result<Job, MirrorError> {
        self.inner
            .stores
            .policies
            .request_cancel(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("job {id}"),
            })
    }

    /// Cancels (if running) and deletes a job with its log.
    pub async fn delete_job(&self, id: &str) -> Result<bool, MirrorError> {
        let _ = self.inner.stores.policies.request_cancel(id).await?;
        Ok(self.inner.stores.policies.delete_job(id).await?)
    }

    /// Live counters of a job running in this process.
    pub fn progress(&self, job_id: &str) -> Option<ProgressSnapshot> {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(job_id).map(|(p, _)| p.snapshot())
    }

    /// The engine's counters now (see [`crate::metrics`]): totals of
    /// finished jobs plus the progress of running ones, and the last
    /// success of every stored policy.
    pub async fn metrics(&self) -> Result<MetricsSnapshot, MirrorError> {
        let policies = self.inner.stores.policies.policies(None).await?;
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        let live: Vec<ProgressSnapshot> = running
            .values()
            .map(|(p, start)| crate::metrics::delta(p.snapshot(), *start))
            .collect();
        Ok(self.inner.settings.metrics.snapshot(&live, &policies))
    }

    /// Submits a `poll_mirror` job for one policy and runs it now, in this
    /// task. Returns the finished job (`done`, `errored` or `canceled`).
    pub async fn poll(&self, policy_id: &str) -> Result<Job, MirrorError> {
        self.poll_with(policy_id, CancellationToken::new(), None)
            .await
    }

    /// [`Mirror::poll`] with a cancel token and a progress handle the
    /// caller can read while it runs.
    pub async fn poll_with(
        &self,
        policy_id: &str,
        cancel: CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> Result<Job, MirrorError> {
        let job = self
            .submit_job(JobSubmission {
                action: POLL_MIRROR.into(),
                parameters: [(PARAM_POLICY_ID.to_string(), policy_id.to_string())].into(),
                ..Default::default()
            })
            .await?;
        self.run_job(&job.id, cancel, progress).await
    }

    /// Claims the waiting job `id` and runs it to the end.
    pub async fn run_job(
        &self,
        id: &str,
        cancel: CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> Result<Job, MirrorError> {
        let job = self
            .inner
            .stores
            .policies
            .claim_job(&self.inner.settings.worker_id, Some(id), Utc::now(), None)
            .await?
            .ok_or_else(|| MirrorError::Conflict {
                reason: format!("job {id} is not waiting (already claimed, finished or deleted)"),
            })?;
        Ok(self.execute(job, cancel, progress).await)
    }

    /// Claims the oldest due waiting job, if any, and runs it.
    pub async fn run_next_job(
        &self,
        cancel: CancellationToken,
    ) -> Result<Option<Job>, MirrorError> {
        let Some(job) = self
            .inner
            .stores
            .policies
            .claim_job(&self.inner.settings.worker_id, None, Utc::now(), None)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.execute(job, cancel, None).await))
    }

    /// Runs a job this worker already claimed (see [`crate::worker::Worker`]).
    pub async fn resume_claimed(&self, job: Job, cancel: CancellationToken) -> Job {
        self.execute(job, cancel, None).await
    }

    /// Finds running jobs whose worker stopped heart-beating (a crash):
    /// requeues those with retries left, errors the rest. Jobs still marked
    /// running under this engine's own worker ID count as lost at once,
    /// however recent their heartbeat: on start this worker runs nothing, so
    /// they were left by its previous process ([`Mirror::open`] keeps the
    /// worker ID in the data directory). Also removes abandoned blob
    /// uploads. Call on start, before running jobs or opening blob writers:
    /// every unfinished upload is deleted, including one a writer of this
    /// process still holds (its commit would fail).
    pub async fn recover(&self) -> Result<Vec<Job>, MirrorError> {
        let jobs = self.recover_jobs(true).await?;
        let purged = self.inner.stores.blobs.purge_uploads().await?;
        if purged > 0 {
            tracing::info!(purged, "removed unfinished blob uploads");
        }
        Ok(jobs)
    }

    /// The job half of [`Mirror::recover`], safe to call at any time while
    /// jobs run and blobs are written (a [`crate::worker::Worker`] calls it
    /// periodically): requeues or errors jobs whose heartbeat stopped and
    /// releases their policy leases; leaves uploads alone.
    pub async fn recover_lost_jobs(&self) -> Result<Vec<Job>, MirrorError> {
        self.recover_jobs(false).await
    }

    async fn recover_jobs(&self, at_start: bool) -> Result<Vec<Job>, MirrorError> {
        let stale_before = Utc::now()
            - chrono::Duration::from_std(self.inner.settings.stale_after)
                .unwrap_or(chrono::Duration::seconds(30));
        let mut out = Vec::new();
        let policies = &self.inner.stores.policies;
        let own = &self.inner.settings.worker_id;
        // At start, jobs still claimed by this worker are lost whatever their
        // heartbeat says, so ask for every running job (a cutoff in the
        // future) and keep the stale ones plus our own.
        let cutoff = if at_start {
            Utc::now() + chrono::Duration::days(1)
        } else {
            stale_before
        };
        let lost: Vec<Job> = policies
            .stale_jobs(cutoff)
            .await?
            .into_iter()
            .filter(|j| {
                (at_start && &j.worker_id == own) || j.heartbeat_at.is_none_or(|h| h < stale_before)
            })
            .collect();
        for mut job in lost {
            let why = if at_start && &job.worker_id == own {
                "worker lost (this worker restarted while running it)"
            } else {
                "worker lost (no heartbeat)"
            };
            let retry = job.retries_left > 0;
            job.status = transition(job.status, JobEvent::WorkerLost { retry })
                .unwrap_or(JobStatus::Errored);
            if retry {
                job.retries_left -= 1;
                job.worker_id.clear();
            }
            job.last_updated = crate::job::now();
            policies.update_job(&job).await?;
            policies.release_job_leases(&job.id).await?;
            policies
                .append_log(
                    &job.id,
                    &[if retry {
                        format!("{why}: job requeued")
                    } else {
                        format!(
                            "{why}: job marked errored; nothing it had not finished was published"
                        )
                    }],
                )
                .await?;
            out.push(job);
        }
        Ok(out)
    }

    /// Runs a claimed job: heartbeat and cancel watch, the action, the final
    /// transition and log.
    async fn execute(
        &self,
        mut job: Job,
        cancel: CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> Job {
        let policies = self.inner.stores.policies.clone();
        let progress = progress.unwrap_or_default();
        let started = std::time::Instant::now();
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id.clone(), (progress.clone(), progress.snapshot()));
        let log = Arc::new(JobLog::default());
        let job_cancel = cancel.child_token();
        // Aborted on drop too: if this future is dropped (its task aborted),
        // the heartbeat stops, so the job shows up as lost and is recovered.
        let beat = AbortOnDrop(tokio::spawn(heartbeat_loop(
            policies.clone(),
            job.id.clone(),
            self.inner.settings.heartbeat_interval,
            job_cancel.clone(),
            log.clone(),
            deadline_of(&job),
        )));
        log.line(format!(
            "job {} ({}) started on worker {}",
            job.id, job.action, self.inner.settings.worker_id
        ));
        let outcome = self
            .poll_mirror(&job, &job_cancel, &progress, log.as_ref())
            .await;
        drop(beat);
        let event = match &outcome {
            Ok(()) => JobEvent::Succeed,
            Err(_) if job_cancel.is_cancelled() => JobEvent::Cancel,
            Err(_) => JobEvent::Fail,
        };
        match &outcome {
            Ok(()) => log.line("job done".into()),
            Err(e) if event == JobEvent::Cancel => log.line(format!("job canceled: {e}")),
            Err(e) => log.line(format!("job errored: {e}")),
        }
        job.status = transition(job.status, event).unwrap_or(JobStatus::Errored);
        job.last_updated = crate::job::now();
        job.cancel_requested = false;
        if let Err(e) = log.flush(policies.as_ref(), &job.id).await {
            tracing::error!(job = %job.id, "cannot write job log: {e}");
        }
        if let Err(e) = policies.update_job(&job).await {
            tracing::error!(job = %job.id, "cannot record job status: {e}");
        }
        {
            // Under the lock, so a reading counts the job's progress once:
            // either as running or as finished.
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((p, start)) = running.remove(&job.id) {
                self.inner.settings.metrics.record_job(
                    job.status,
                    started.elapsed(),
                    crate::metrics::delta(p.snapshot(), start),
                );
            }
        }
        job
    }

    /// The `poll_mirror` action: every enabled policy, or the one named.
    async fn poll_mirror(
        &self,
        job: &Job,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        log: &JobLog,
    ) -> Result<(), String> {
        let store = &self.inner.stores.policies;
        let targets = match job.parameters.get(PARAM_POLICY_ID) {
            Some(id) => match store.policy(id).await {
                Ok(Some(p)) => vec![p],
                Ok(None) => return Err(format!("poll mirroring policy {id} no longer exists")),
                Err(e) => return Err(e.to_string()),
            },
            None => store
                .policies(None)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|p| p.enabled)
                .collect(),
        };
        log.line(format!(
            "evaluating {} poll mirroring policies",
            targets.len()
        ));
        let transfers = Arc::new(tokio::sync::Semaphore::new(
            self.inner.settings.blob_concurrency.max(1),
        ));
        let mut failed = Vec::new();
        for policy in targets {
            if cancel.is_cancelled() {
                return Err("canceled".into());
            }
            self.lease_or_wait(&policy.id, &job.id, cancel, log).await?;
            let result = self
                .poll_one(&policy, cancel, progress, &transfers, log)
                .await;
            let _ = store.release_policy(&policy.id, &job.id).await;
            let now = crate::job::now();
            let (outcome, detail, mirrored_at) = match &result {
                Ok(r) if r.tags_failed == 0 => (
                    PollResult::Success,
                    format!(
                        "{} tags copied, {} unchanged",
                        r.tags_copied, r.tags_unchanged
                    ),
                    (r.tags_copied > 0).then_some(now),
                ),
                Ok(r) => (
                    if r.tags_copied > 0 {
                        PollResult::Partial
                    } else {
                        PollResult::Failed
                    },
                    r.errors.join("; "),
                    (r.tags_copied > 0).then_some(now),
                ),
                Err(PollError::Canceled) => {
                    (PollResult::Canceled, "the poll was canceled".into(), None)
                }
                Err(e) => (PollResult::Failed, e.to_string(), None),
            };
            let status = MirroringStatus {
                code: outcome.code().into(),
                detail,
                timestamp: now,
            };
            let metrics = &self.inner.settings.metrics;
            metrics.record_poll(&policy.id, outcome, now);
            if let Ok(r) = &result {
                metrics.record_tags(
                    r.tags_unchanged as u64,
                    r.tags_preexisting as u64,
                    r.tags_failed as u64,
                );
            }
            if let Err(e) = store.record_status(&policy.id, &status, mirrored_at).await {
                log.line(format!(
                    "cannot record the status of policy {}: {e}",
                    policy.id
                ));
            }
            match result {
                Err(PollError::Canceled) => return Err("canceled".into()),
                Err(e) => {
                    log.line(format!("policy {} failed: {e}", policy.id));
                    failed.push(format!("policy {}: {e}", policy.id));
                }
                Ok(r) if r.tags_failed > 0 => {
                    failed.push(format!(
                        "policy {}: {} tags failed",
                        policy.id, r.tags_failed
                    ));
                }
                Ok(_) => {}
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// Takes the policy's lease for `job_id`. While another job polls the
    /// policy, waits for it to finish (then this job polls too, so its
    /// `done` means "up to date as of when it was submitted"), logging
    /// which job it waits for; a cancel ends the wait.
    async fn lease_or_wait(
        &self,
        policy_id: &str,
        job_id: &str,
        cancel: &CancellationToken,
        log: &JobLog,
    ) -> Result<(), String> {
        let store = &self.inner.stores.policies;
        let mut waiting_for: Option<String> = None;
        loop {
            let until = Utc::now() + POLICY_LEASE;
            if store
                .lease_policy(policy_id, job_id, until)
                .await
                .map_err(|e| e.to_string())?
            {
                if let Some(other) = waiting_for {
                    log.line(format!(
                        "job {other} finished with policy {policy_id}; polling it now"
                    ));
                }
                return Ok(());
            }
            let holder = store
                .policy_lease_holder(policy_id)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_else(|| "another job".into());
            if waiting_for.as_deref() != Some(holder.as_str()) {
                log.line(format!(
                    "policy {policy_id} is being polled by job {holder}: waiting for it to finish, then polling it again"
                ));
                waiting_for = Some(holder);
            }
            tokio::select! {
                _ = tokio::time::sleep(LEASE_RETRY) => {}
                _ = cancel.cancelled() => return Err("canceled".into()),
            }
        }
    }

    async fn poll_one(
        &self,
        policy: &PollMirroringPolicy,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        transfers: &Arc<tokio::sync::Semaphore>,
        log: &JobLog,
    ) -> Result<PollReport, PollError> {
        let stores = &self.inner.stores;
        let remote = self
            .inner
            .connector
            .connect(&policy.remote)
            .map_err(|source| PollError::Remote {
                context: format!("connecting to {}", policy.remote.host),
                source,
            })?;
        let baseline = if policy.initial_evaluation {
            None
        } else {
            Some(
                stores
                    .policies
                    .baseline(&policy.id)
                    .await
                    .map_err(|source| PollError::Store {
                        context: "reading the policy baseline".into(),
                        source,
                    })?,
            )
        };
        let env = PollEnv {
            remote,
            repos: stores.repos.as_ref(),
            copy: CopyContext {
                blobs: stores.blobs.clone(),
                transfers: transfers.clone(),
                retry: self.inner.settings.retry.clone(),
                cancel: cancel.clone(),
                progress: progress.clone(),
                reuse: Arc::new(ReuseGate::new(
                    stores.repos.clone(),
                    self.inner.settings.read_access.clone(),
                    policy.owner.clone(),
                    policy.local_repository.clone(),
                )),
            },
            head_concurrency: self.inner.settings.head_concurrency,
            baseline,
            log,
        };
        log.line(format!(
            "policy {}: {}/{} -> {}",
            policy.id, policy.remote.host, policy.remote.repository, policy.local_repository
        ));
        poll_policy(&env, policy).await
    }
}

/// How long a poll's lease on its policy lasts (a crashed poll's lease
/// lapses after this, or sooner through crash recovery).
const POLICY_LEASE: chrono::Duration = chrono::Duration::hours(6);
/// How often a job waiting for another job's lease on a policy looks again.
const LEASE_RETRY: Duration = Duration::from_millis(500);

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn deadline_of(job: &Job) -> Option<chrono::DateTime<Utc>> {
    chrono::DateTime::parse_from_rfc3339(&job.deadline)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Records heartbeats, flushes log lines, and turns a stored cancel request
/// or a passed deadline into a cancel of the running job.
async fn heartbeat_loop(
    store: Arc<dyn PolicyStore>,
    job_id: String,
    every: Duration,
    cancel: CancellationToken,
    log: Arc<JobLog>,
    deadline: Option<chrono::DateTime<Utc>>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let _ = log.flush(store.as_ref(), &job_id).await;
        match store.heartbeat(&job_id, Utc::now()).await {
            Ok(Some(job)) if job.cancel_requested => {
                log.line("cancel requested".into());
                cancel.cancel();
            }
            Ok(None) => {
                // Deleted while running.
                cancel.cancel();
            }
            _ => {}
        }
        if deadline.is_some_and(|d| Utc::now() > d) {
            log.line("deadline passed".into());
            cancel.cancel();
        }
    }
}

/// Log lines buffered in memory and flushed to the store by the heartbeat
/// (and at the end), so logging never waits on the database.
#[derive(Default)]
struct JobLog {
    pending: Mutex<Vec<String>>,
    flush_lock: tokio::sync::Mutex<()>,
}

impl JobLog {
    async fn flush(&self, store: &dyn PolicyStore, job_id: &str) -> Result<(), StoreError> {
        let _guard = self.flush_lock.lock().await;
        let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if lines.is_empty() {
            return Ok(());
        }
        store.append_log(job_id, &lines).await
    }
}

impl LogSink for JobLog {
    fn line(&self, text: String) {
        tracing::info!(target: "regmirror::job", "{text}");
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text);
    }
}
