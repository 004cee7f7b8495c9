//! [`Mirror`]: the engine both bindings drive. It owns the stores and the
//! remote connector, validates and saves policies, and runs jobs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::access::{OpenAccess, ReadAccess};
use crate::api::TagPreview;
use crate::error::ErrorKind;
use crate::job::{Job, JobFilter, JobStatus, JobSubmission, LogLine, PARAM_POLICY_ID, POLL_MIRROR};
use crate::metrics::{Metrics, MetricsSnapshot};

use crate::policy::{InvalidPolicy, PolicyForm, PollMirroringPolicy, RemoteEndpoint};
use crate::poll::resolve_digests;
use crate::progress::{Progress, ProgressSnapshot};
use crate::reference::{InvalidName, RepositoryName};
use crate::remote::{
    HttpConnector, HttpSettings, Permissions, RemoteConnector, RemoteError, RetryPolicy,
};
use crate::store::{
    BlobStore, FsBlobStore, FsOptions, JobLogStore, JobStore, LeaseStore, NewRepository,
    PolicyStore, Repository, RepositoryStore, SqliteStore, StoreError, Visibility,
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
    /// A `mirror-server` answered with an error, or could not be reached
    /// (`client::ApiClient`): the kind it gave, its message, and the
    /// input field at fault when it named one.
    #[error("{message}")]
    Api {
        /// What sort of failure.
        kind: ErrorKind,
        /// The server's message (or why it could not be reached).
        message: String,
        /// The request field at fault (camelCase, as on the wire).
        field: Option<String>,
    },
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
            MirrorError::Api { kind, .. } => *kind,
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
    /// How an `onlinegc` job collects unless its parameters say otherwise.
    pub gc: crate::gc::GcSettings,
    /// Where the engine reports what it wrote ([`crate::events`]):
    /// nowhere by default.
    pub events: Arc<dyn crate::events::EventSink>,
    /// The most every copy from remotes together may read, shared by all
    /// policies (each may set a lower limit of its own) and the
    /// pull-through caches ([`crate::bandwidth`]); none by default.
    pub bandwidth: Option<Arc<crate::bandwidth::Bandwidth>>,
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
            gc: crate::gc::GcSettings::default(),
            events: Arc::new(crate::events::NoEvents),
            bandwidth: None,
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
    /// Policies.
    pub policies: Arc<dyn PolicyStore>,
    /// Which job holds which policy.
    pub leases: Arc<dyn LeaseStore>,
    /// The job queue.
    pub jobs: Arc<dyn JobStore>,
    /// Job logs.
    pub logs: Arc<dyn JobLogStore>,
    /// Push mirroring policies.
    pub push_policies: Arc<dyn crate::store::PushPolicyStore>,
    /// Proxy caches (pull-through), one per local namespace.
    pub proxy_caches: Arc<dyn crate::store::ProxyCacheStore>,
}

impl Stores {
    /// The embedded stores in `data_dir`: [`FsBlobStore`] and [`SqliteStore`].
    pub fn embedded(data_dir: &Path, fs: FsOptions) -> Result<Self, StoreError> {
        let blobs = Arc::new(FsBlobStore::open(data_dir, fs)?);
        Stores::sqlite_with(data_dir, blobs)
    }

    /// The metadata in SQLite in `data_dir` ([`SqliteStore`]), the blobs in
    /// `blobs` (an S3 bucket, say).
    pub fn sqlite_with(data_dir: &Path, blobs: Arc<dyn BlobStore>) -> Result<Self, StoreError> {
        Ok(Stores::sharing(
            blobs,
            Arc::new(SqliteStore::open(data_dir)?),
        ))
    }

    /// Every metadata store in PostgreSQL at `url` (a
    /// [`crate::store::PgStore`], which migrates the schema and seals
    /// remote secrets with `keys`), blobs in `blobs` (an
    /// [`FsBlobStore`] on storage every replica mounts, or an S3 bucket).
    /// Engines on the same database share one job queue and its policy
    /// leases: each job runs on one of them, and one policy is never polled
    /// by two at once.
    #[cfg(feature = "postgres")]
    pub async fn postgres(
        url: &str,
        options: crate::store::PgOptions,
        keys: crate::store::SecretKeys,
        blobs: Arc<dyn BlobStore>,
    ) -> Result<Self, StoreError> {
        let db = crate::store::PgStore::connect(url, options, keys).await?;
        Ok(Stores::sharing(blobs, Arc::new(db)))
    }

    /// `blobs`, and `db` for every metadata trait.
    fn sharing<M>(blobs: Arc<dyn BlobStore>, db: Arc<M>) -> Self
    where
        M: RepositoryStore
            + PolicyStore
            + LeaseStore
            + JobStore
            + JobLogStore
            + crate::store::PushPolicyStore
            + crate::store::ProxyCacheStore,
    {
        Stores {
            blobs,
            repos: db.clone(),
            policies: db.clone(),
            leases: db.clone(),
            jobs: db.clone(),
            push_policies: db.clone(),
            proxy_caches: db.clone(),
            logs: db,
        }
    }
}

/// The mirroring engine.
///
/// ```no_run
/// # async fn f() -> Result<(), mirror_core::MirrorError> {
/// use mirror_core::{Mirror, PolicyForm, RepositoryName};
/// let mirror = Mirror::open("/var/lib/regmirror".as_ref())?;
/// let nginx = PolicyForm::new("https://index.docker.io", "library/nginx");
/// let policy = mirror
///     .add_policy(&RepositoryName::parse("acme/nginx")?, &nginx, None)
///     .await?;
/// let job = mirror.poll(&policy.id).await?;
/// println!("{}", job.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mirror {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) stores: Stores,
    pub(crate) connector: Arc<dyn RemoteConnector>,
    pub(crate) settings: MirrorSettings,
    /// Jobs running in this process: their counters, and what the
    /// counters read when the job started (a caller may pass a `Progress`
    /// that already counted something).
    pub(crate) running: Mutex<HashMap<String, (Arc<Progress>, ProgressSnapshot)>>,
    /// Pulls through proxy caches.
    pub(crate) pull_through: crate::pull_through::PullThrough,
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
        Mirror::open_on(
            stores,
            Some(data_dir),
            http,
            read_access,
            crate::gc::GcSettings::default(),
        )
    }

    /// [`Mirror::open_with_access`] on `stores` instead of the embedded
    /// ones. With `worker_dir`, the worker ID is kept there, stable across
    /// restarts, so `recover` knows this directory's jobs left running by a
    /// crash without waiting for them to go stale; without it (engines
    /// sharing a database, which may share a directory too), it is this
    /// process's own. `gc`: how `onlinegc` jobs collect by default.
    pub fn open_on(
        stores: Stores,
        worker_dir: Option<&Path>,
        http: HttpSettings,
        read_access: Arc<dyn ReadAccess>,
        gc: crate::gc::GcSettings,
    ) -> Result<Self, MirrorError> {
        let events: Arc<dyn crate::events::EventSink> = Arc::new(crate::events::NoEvents);
        Mirror::open_on_with_events(stores, worker_dir, http, read_access, gc, events)
    }

    /// [`Mirror::open_on`], reporting what the engine writes to `events`
    /// ([`MirrorSettings::events`]).
    pub fn open_on_with_events(
        stores: Stores,
        worker_dir: Option<&Path>,
        http: HttpSettings,
        read_access: Arc<dyn ReadAccess>,
        gc: crate::gc::GcSettings,
        events: Arc<dyn crate::events::EventSink>,
    ) -> Result<Self, MirrorError> {
        let defaults = MirrorSettings::default();
        let worker_id = match worker_dir {
            Some(dir) => crate::store::data_dir_worker_id(dir)?,
            None => defaults.worker_id.clone(),
        };
        let rate = http.limits.max_bytes_per_sec;
        let settings = MirrorSettings {
            read_access,
            gc,
            metrics: http.metrics.clone(),
            worker_id,
            events,
            bandwidth: (rate > 0).then(|| Arc::new(crate::bandwidth::Bandwidth::new(rate))),
            ..defaults
        };
        let connector = HttpConnector { settings: http };
        Ok(Mirror::new(stores, Arc::new(connector), settings))
    }

    /// The engine on the given stores and connector.
    /// Its blob store is wrapped in a [`crate::gc::HoldingBlobStore`], so
    /// every commit, whoever makes it through [`Mirror::stores`], is safe
    /// from a garbage collection running meanwhile.
    pub fn new(
        mut stores: Stores,
        connector: Arc<dyn RemoteConnector>,
        settings: MirrorSettings,
    ) -> Self {
        stores.blobs = Arc::new(crate::gc::HoldingBlobStore::new(
            stores.blobs,
            stores.repos.clone(),
        ));
        // The engine hears its own events first (push mirroring's
        // triggers), then the settings' sink does.
        let inner = Arc::new_cyclic(|engine| {
            let mut settings = settings;
            settings.events = Arc::new(EngineEvents {
                listeners: settings.events.clone(),
                engine: engine.clone(),
            });
            let cache_stores = crate::pull_through::CacheStores {
                blobs: stores.blobs.clone(),
                repos: stores.repos.clone(),
                proxy_caches: stores.proxy_caches.clone(),
            };
            let pull_through = crate::pull_through::PullThrough::new(
                cache_stores,
                connector.clone(),
                settings.metrics.clone(),
                settings.events.clone(),
                settings.bandwidth.clone(),
            );
            Inner {
                stores,
                connector,
                settings,
                running: Mutex::new(HashMap::new()),
                pull_through,
            }
        });
        Mirror { inner }
    }

    /// Pulls through proxy caches ([`crate::pull_through`]).
    pub fn pull_through(&self) -> &crate::pull_through::PullThrough {
        &self.inner.pull_through
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The settings.
    pub fn settings(&self) -> &MirrorSettings {
        &self.inner.settings
    }

    /// Reports `kind` happening to `repository`, done by `actor`, to the
    /// engine's event sink ([`crate::events`]). For writes made outside
    /// the engine's own methods (a server's repository settings).
    pub fn emit(
        &self,
        kind: crate::events::EventKind,
        repository: &RepositoryName,
        actor: Option<&str>,
    ) {
        let event = crate::events::Event::now(kind, repository, actor);
        self.inner.settings.events.emit(event);
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

    /// Deletes `repo`'s tag `tag`; whether it existed. Then emits
    /// `TAG_DELETE` as done by `actor`.
    pub async fn delete_tag(
        &self,
        repo: &RepositoryName,
        tag: &str,
        actor: Option<&str>,
    ) -> Result<bool, MirrorError> {
        let repos = &self.inner.stores.repos;
        let before = repos.tag(repo, tag).await?;
        if !repos.delete_tag(repo, tag).await? {
            return Ok(false);
        }
        if let Some(t) = before {
            let kind = crate::events::EventKind::TagDelete {
                tag: t.name,
                digest: t.digest,
            };
            self.emit(kind, repo, actor);
        }
        Ok(true)
    }

    /// Deletes the manifest `digest` from `repo` with every tag on it;
    /// whether the repository held it. Then emits `TAG_DELETE` for each
    /// tag that named it (as read just before) and `MANIFEST_DELETE`, as
    /// done by `actor`.
    pub async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &crate::Digest,
        actor: Option<&str>,
    ) -> Result<bool, MirrorError> {
        use crate::events::EventKind;
        let repos = &self.inner.stores.repos;
        let tags: Vec<String> = repos
            .tags(repo)
            .await?
            .into_iter()
            .filter(|t| &t.digest == digest)
            .map(|t| t.name)
            .collect();
        if !repos.delete_manifest(repo, digest).await? {
            return Ok(false);
        }
        for tag in tags {
            let digest = digest.clone();
            self.emit(EventKind::TagDelete { tag, digest }, repo, actor);
        }
        let kind = EventKind::ManifestDelete {
            digest: digest.clone(),
        };
        self.emit(kind, repo, actor);
        Ok(true)
    }

    /// The tags of `repo` as the API shows them (DTR's tag objects, with
    /// the image behind each: platforms, size, config), sorted by name.
    pub async fn tag_views(
        &self,
        repo: &RepositoryName,
    ) -> Result<Vec<crate::api::Tag>, MirrorError> {
        let mut records = self.inner.stores.repos.tags(repo).await?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let blobs = self.inner.stores.blobs.as_ref();
        let mut tags = Vec::with_capacity(records.len());
        for t in &records {
            let info = crate::image_info::image_info(blobs, &t.digest).await;
            tags.push(crate::api::Tag::new(
                t,
                &info,
                crate::api::TagManifest::of_tag(t, &info),
            ));
        }
        Ok(tags)
    }

    /// The earlier values of `repo`'s tag `tag`, newest first (see
    /// [`crate::store::TagHistoryEntry`]: each says whether the repository
    /// still holds that manifest). `NotFound` when the repository does not
    /// exist, or the tag has neither a current value nor a history.
    pub async fn tag_history(
        &self,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Vec<crate::store::TagHistoryEntry>, MirrorError> {
        let repos = &self.inner.stores.repos;
        if repos.repository(repo).await?.is_none() {
            return Err(MirrorError::NotFound {
                what: format!("repository {repo}"),
            });
        }
        let history = repos.tag_history(repo, tag).await?;
        if history.is_empty() && repos.tag(repo, tag).await?.is_none() {
            return Err(MirrorError::NotFound {
                what: format!("tag {tag} of repository {repo}"),
            });
        }
        Ok(history)
    }

    // ---- policies ----

    /// Which of the remote's tags `form`'s rules would mirror: the remote
    /// is listed now (as the Connect check reaches it), nothing is saved.
    /// A filter that keeps nothing is seen before a poll runs it.
    pub async fn preview_tags(&self, form: &PolicyForm) -> Result<TagPreview, MirrorError> {
        let filter = form.check_options()?;
        let endpoint = form.endpoint()?;
        let remote = self.inner.connector.connect_interactive(&endpoint)?;
        let tags = remote.list_tags(&endpoint.repository).await?;
        Ok(TagPreview {
            tags_listed: tags.len(),
            matching_tags: filter.apply(&tags),
        })
    }

    /// Checks that `endpoint` can be reached and read.
    pub async fn check_connection(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<Permissions, MirrorError> {
        let remote = self.inner.connector.connect_interactive(endpoint)?;
        Ok(remote.check_access(&endpoint.repository).await?)
    }

    /// Stores a pushed manifest in `repo` under `reference` (a tag or a
    /// digest) and moves the tag: [`crate::write::push_manifest`] on this
    /// engine's stores. Then emits `MANIFEST_PUSH` (and `TAG_PUSH` for a
    /// tag) as done by `actor`.
    pub async fn push_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        bytes: bytes::Bytes,
        content_type: Option<&str>,
        actor: Option<&str>,
    ) -> Result<crate::write::PushedManifest, crate::write::WriteError> {
        use crate::events::EventKind;
        let s = &self.inner.stores;
        let pushed = crate::write::push_manifest(
            s.blobs.as_ref(),
            s.repos.as_ref(),
            repo,
            reference,
            bytes,
            content_type,
        )
        .await?;
        let manifest = EventKind::ManifestPush {
            digest: pushed.digest.clone(),
            media_type: pushed.media_type.clone(),
        };
        self.emit(manifest, repo, actor);
        if !reference.contains(':') {
            let tag = EventKind::TagPush {
                tag: reference.to_string(),
                digest: pushed.digest.clone(),
                media_type: pushed.media_type.clone(),
            };
            self.emit(tag, repo, actor);
        }
        Ok(pushed)
    }

    /// Validates `form`, checks that its credentials can read the remote
    /// repository, and saves the policy for `local` (created private if
    /// missing), owned by `owner`. With `initialEvaluation: false`, the
    /// current remote tags are recorded as the baseline that later polls
    /// leave alone.
    pub async fn add_policy(
        &self,
        local: &RepositoryName,
        form: &PolicyForm,
        owner: Option<&str>,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        let endpoint = form.endpoint()?;
        form.check_options()?;
        self.check_connection(&endpoint).await?;
        let remote = self.inner.connector.connect(&endpoint)?;
        self.ensure_repository(local).await?;
        let policy = PollMirroringPolicy::new(local.clone(), endpoint, form, owner)?;
        if !policy.initial_evaluation {
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

    /// Applies the fields `update` gives, by `by` (see
    /// [`PolicyForm::apply`]); when they change how the remote is reached,
    /// the connection is checked before saving.
    pub async fn update_policy(
        &self,
        id: &str,
        update: &PolicyForm,
        by: Option<&str>,
    ) -> Result<PollMirroringPolicy, MirrorError> {
        let current = self.policy(id).await?;
        update.check_options()?;
        let next = update.apply(&current, by)?;
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
        self.inner.stores.jobs.insert_job(&job).await?;
        Ok(job)
    }

    /// Checks a submission as [`Mirror::submit_job`] would, without queueing
    /// it: the action is known, the parameters are supported and name an
    /// existing policy, the retries are in range. Schedulers use it to refuse
    /// a bad cron when it is saved rather than when it fires.
    pub async fn validate_job(&self, submission: &JobSubmission) -> Result<(), MirrorError> {
        if submission.retries < 0 || submission.retries > 100 {
            return Err(MirrorError::InvalidJob {
                field: "retries",
                reason: "must be between 0 and 100".into(),
            });
        }
        if submission.action == crate::gc::ONLINE_GC {
            return self
                .inner
                .settings
                .gc
                .with_parameters(&submission.parameters)
                .map(drop)
                .map_err(|e| MirrorError::InvalidJob {
                    field: e.field,
                    reason: e.reason,
                });
        }
        if submission.action == crate::push_policy::PUSH_MIRROR_TAG {
            return self.validate_push_job(submission).await;
        }
        if submission.action != POLL_MIRROR {
            return Err(MirrorError::InvalidJob {
                field: "action",
                reason: format!(
                    "unknown action {:?}; supported: {POLL_MIRROR}, {}, {}",
                    submission.action.chars().take(40).collect::<String>(),
                    crate::gc::ONLINE_GC,
                    crate::push_policy::PUSH_MIRROR_TAG
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
            .jobs
            .job(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("job {id}"),
            })
    }

    /// Jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, MirrorError> {
        Ok(self.inner.stores.jobs.jobs(filter).await?)
    }

    /// A job's log lines.
    pub async fn job_logs(
        &self,
        id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, MirrorError> {
        self.job(id).await?;
        Ok(self.inner.stores.logs.logs(id, offset, limit).await?)
    }

    /// Requests a cancel: a waiting job is canceled at once, a running one
    /// stops at its next check (between blobs or inside a transfer).
    pub async fn cancel_job(&self, id: &str) -> Result<Job, MirrorError> {
        self.inner
            .stores
            .jobs
            .request_cancel(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("job {id}"),
            })
    }

    /// Cancels (if running) and deletes a job with its log.
    pub async fn delete_job(&self, id: &str) -> Result<bool, MirrorError> {
        let _ = self.inner.stores.jobs.request_cancel(id).await?;
        Ok(self.inner.stores.jobs.delete_job(id).await?)
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
        let mut snapshot = self.inner.settings.metrics.snapshot(&live, &policies);
        snapshot.bandwidth_limit =
            (self.inner.settings.bandwidth.as_ref()).map_or(0, |b| b.bytes_per_sec());
        Ok(snapshot)
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
        let job = self.submit_poll(policy_id).await?;
        self.run_job(&job.id, cancel, progress).await
    }

    /// Queues a `poll_mirror` job for one policy, for whichever worker
    /// claims it first: how a policy saved with "Save & Apply" (the API's
    /// `initialEvaluation=true`, or a policies file's) is evaluated at once.
    pub async fn submit_poll(&self, policy_id: &str) -> Result<Job, MirrorError> {
        self.submit_job(JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: [(PARAM_POLICY_ID.to_string(), policy_id.to_string())].into(),
            ..Default::default()
        })
        .await
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
            .jobs
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
        match self.claim_next_job(None).await? {
            Some(job) => Ok(Some(self.execute(job, cancel, None).await)),
            None => Ok(None),
        }
    }

    /// Claims the oldest due waiting job for this worker, skipping jobs of
    /// a namespace that already runs `per_namespace` jobs; run it with
    /// [`Mirror::resume_claimed`].
    pub async fn claim_next_job(
        &self,
        per_namespace: Option<usize>,
    ) -> Result<Option<Job>, MirrorError> {
        Ok(self
            .inner
            .stores
            .jobs
            .claim_job(
                &self.inner.settings.worker_id,
                None,
                Utc::now(),
                per_namespace,
            )
            .await?)
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
    /// uploads (those no live writer holds, for [`crate::store::FsBlobStore`];
    /// those older than a grace, for S3), never another replica's live
    /// one. Call on start, before running jobs: every job of this worker
    /// still marked running is taken as lost.
    ///
    /// Each lost job is recovered at most once, and only if it is unchanged
    /// since it was found stale ([`crate::store::JobStore::replace_lost_job`]):
    /// engines recovering at once on one database never requeue a job
    /// twice, nor one that a worker claimed meanwhile.
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
}

/// The sink a [`Mirror`] emits through: the engine reacts to each event
/// first ([`Mirror::react_to_event`], push mirroring's triggers, which
/// only queue), then the sink of [`MirrorSettings::events`] gets it.
/// Holds the engine weakly: the engine holds it.
struct EngineEvents {
    listeners: Arc<dyn crate::events::EventSink>,
    engine: std::sync::Weak<Inner>,
}

impl std::fmt::Debug for EngineEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineEvents")
            .field("listeners", &self.listeners)
            .finish()
    }
}

impl crate::events::EventSink for EngineEvents {
    fn emit(&self, event: crate::events::Event) {
        if let Some(inner) = self.engine.upgrade() {
            Mirror { inner }.react_to_event(&event);
        }
        self.listeners.emit(event);
    }
}
