//! Pull-through caching: pulls under a proxy cache's namespace
//! ([`crate::proxy_cache`]) are served from the stores and fetched from
//! the cache's remote on a miss.
//!
//! - A **tag** is served as stored while its digest was checked upstream
//!   within the cache's TTL; after that one `HEAD` checks it (one per tag
//!   at a time: concurrent pulls of a tag wait for the first), a moved tag
//!   is fetched by digest, and when the upstream fails or refuses (down,
//!   429) the stored tag is served anyway (*stale-if-error*, counted).
//! - A **manifest by digest** never needs re-checking: stored, or fetched
//!   and verified.
//! - A fetched manifest is stored and recorded in the repository with
//!   [`RepositoryStore::publish_cached`]: before its blobs and children,
//!   which are fetched when a client asks for them. So in a cached
//!   repository (unlike a mirrored or pushed one) a tag may name content
//!   not held yet; what *is* held was fetched from this cache's upstream
//!   for this repository and verified.
//! - A **blob** is linked to the repository only once fetched from the
//!   upstream and verified: stored bytes of another repository are never
//!   linked on the upstream's word, so a hostile upstream naming someone
//!   else's digest gets nothing. Concurrent pulls of a missing blob share
//!   one fetch ([`flight`]).

mod evict;
mod flight;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::watch;

pub use evict::EvictReport;
pub use flight::Tee;

use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::events::{Event, EventKind, EventSink, RepositoryChange};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::proxy_cache::{CacheTarget, ProxyCache, route};
use crate::reference::{RepositoryName, validate_tag};
use crate::remote::{RemoteConnector, RemoteError, RemoteRegistry};
use crate::store::{
    BlobStore, ManifestRecord, NewRepository, ProxyCacheStore, RepositoryStore, StoreError,
    TagRecord, TagSource, Visibility,
};

/// The stores a pull through a cache reads and writes.
#[derive(Clone)]
pub(crate) struct CacheStores {
    pub blobs: Arc<dyn BlobStore>,
    pub repos: Arc<dyn RepositoryStore>,
    pub proxy_caches: Arc<dyn ProxyCacheStore>,
}

/// How long the list of proxy caches read from the store is used before
/// it is read again (so a change made through another replica applies
/// within this).
const CACHE_LIST_TTL: Duration = Duration::from_secs(5);

/// Entries kept in the per-process maps (checked tags, remote clients)
/// before they are cleared, so they cannot grow without bound.
const MAP_LIMIT: usize = 100_000;

/// Why a pull through a cache failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The upstream does not have it (and nothing stale may stand in).
    #[error("{what} not found upstream in {remote}")]
    NotFound {
        /// `manifest alpine:3.20`, `blob sha256:…`.
        what: String,
        /// `host/repository`.
        remote: String,
    },
    /// The upstream failed, and nothing is cached.
    #[error("the upstream failed and nothing is cached: {0}")]
    Upstream(#[source] RemoteError),
    /// The upstream served a manifest this server does not accept.
    #[error("manifest {what} from {remote} is not valid: {reason}")]
    Invalid {
        /// Which manifest.
        what: String,
        /// `host/repository`.
        remote: String,
        /// Why.
        reason: String,
    },
    /// A shared fetch of a blob failed.
    #[error("fetching blob {digest} from the upstream failed: {reason}")]
    Fetch {
        /// The blob.
        digest: Digest,
        /// Why.
        reason: String,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CacheError {
    /// The kind of failure, for the HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::NotFound { .. } => ErrorKind::NotFound,
            CacheError::Upstream(e) => match e.kind() {
                // The caller is authorized here; what the upstream refused
                // is this server's problem, not the caller's.
                ErrorKind::Unauthorized | ErrorKind::Denied => ErrorKind::Transient,
                k => k,
            },
            CacheError::Invalid { .. } => ErrorKind::Invalid,
            CacheError::Fetch { .. } => ErrorKind::Transient,
            CacheError::Store(_) => ErrorKind::Internal,
        }
    }
}

/// Where a pull goes ([`PullThrough::target`]).
#[derive(Debug, Clone)]
pub struct Routed {
    /// The cache.
    pub cache: ProxyCache,
    /// Its local and remote repositories, and whether the name went to the
    /// default cache ([`CacheTarget::fallback`]).
    pub target: CacheTarget,
}

/// A manifest served through a cache.
#[derive(Debug, Clone)]
pub struct CachedManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// The bytes, when just fetched (else read them from the blob store).
    pub bytes: Option<Bytes>,
}

/// A blob served through a cache.
pub enum CachedBlob {
    /// Held by the repository: serve it from the blob store.
    Stored,
    /// Being fetched for this request: its bytes as they arrive.
    Streaming(Tee),
}

/// The engine's pull-through cache ([`crate::Mirror::pull_through`]).
pub struct PullThrough {
    stores: CacheStores,
    connector: Arc<dyn RemoteConnector>,
    metrics: Arc<Metrics>,
    events: Arc<dyn EventSink>,
    /// The server's bandwidth limit, which fetches keep to as polls do.
    bandwidth: Option<Arc<crate::bandwidth::Bandwidth>>,
    caches: Mutex<Option<(Instant, Arc<Vec<ProxyCache>>)>>,
    remotes: Mutex<HashMap<RemoteKey, Arc<dyn RemoteRegistry>>>,
    checked: Mutex<HashMap<TagKey, Instant>>,
    tag_locks: Mutex<HashMap<TagKey, Arc<tokio::sync::Mutex<()>>>>,
    flights: Arc<Mutex<HashMap<(RepositoryName, Digest), flight::Landing>>>,
    /// Manifests served since the last [`PullThrough::flush_pulls`].
    pulled: Mutex<HashMap<(RepositoryName, Digest), chrono::DateTime<Utc>>>,
}

/// A tag of a cached repository.
type TagKey = (RepositoryName, String);

/// A remote client is reused while its cache is unchanged.
type RemoteKey = (String, RepositoryName, chrono::DateTime<Utc>);

impl PullThrough {
    pub(crate) fn new(
        stores: CacheStores,
        connector: Arc<dyn RemoteConnector>,
        metrics: Arc<Metrics>,
        events: Arc<dyn EventSink>,
        bandwidth: Option<Arc<crate::bandwidth::Bandwidth>>,
    ) -> Self {
        PullThrough {
            stores,
            connector,
            metrics,
            events,
            bandwidth,
            caches: Mutex::new(None),
            remotes: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
            tag_locks: Mutex::new(HashMap::new()),
            flights: Arc::new(Mutex::new(HashMap::new())),
            pulled: Mutex::new(HashMap::new()),
        }
    }

    /// Every proxy cache (read from the store at most every few seconds).
    pub async fn caches(&self) -> Result<Arc<Vec<ProxyCache>>, StoreError> {
        if let Some((at, list)) = &*lock(&self.caches)
            && at.elapsed() < CACHE_LIST_TTL
        {
            return Ok(list.clone());
        }
        let list = Arc::new(self.stores.proxy_caches.proxy_caches().await?);
        *lock(&self.caches) = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// Forgets the cached list of proxy caches and their clients (after a
    /// change through this process).
    pub fn invalidate(&self) {
        *lock(&self.caches) = None;
        lock(&self.remotes).clear();
    }

    /// The cache a pull of `name` goes through, if any (see
    /// [`crate::proxy_cache::route`]; `ns` is containerd's `?ns=`). A
    /// [`CacheTarget::fallback`] answer stands only when no local
    /// repository of that name is readable by the caller, which the caller
    /// decides.
    pub async fn target(
        &self,
        name: &RepositoryName,
        ns: Option<&str>,
    ) -> Result<Option<Routed>, StoreError> {
        let caches = self.caches().await?;
        if caches.is_empty() {
            return Ok(None);
        }
        Ok(route(&caches, name, ns).and_then(|target| {
            let cache = caches.iter().find(|c| c.namespace == target.namespace)?;
            Some(Routed {
                cache: cache.clone(),
                target,
            })
        }))
    }

    /// The proxy cache whose namespace holds `name`, if any.
    pub async fn cache_of(&self, name: &RepositoryName) -> Result<Option<ProxyCache>, StoreError> {
        let caches = self.caches().await?;
        Ok(caches
            .iter()
            .find(|c| c.namespace == name.owner_namespace())
            .cloned())
    }

    /// The cached repository of `target`, created (private) on its first
    /// pull.
    pub async fn repository(
        &self,
        target: &CacheTarget,
    ) -> Result<crate::store::Repository, StoreError> {
        ensure_repository(
            self.stores.repos.as_ref(),
            self.events.as_ref(),
            &target.local,
        )
        .await
    }

    /// A manifest by tag or digest, from the stores or the upstream.
    pub async fn manifest(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
        reference: &str,
    ) -> Result<CachedManifest, CacheError> {
        let served = if reference.contains(':') {
            let digest = Digest::parse(reference).map_err(|e| CacheError::Invalid {
                what: reference.to_string(),
                remote: remote_name(cache, target),
                reason: e.to_string(),
            })?;
            self.manifest_by_digest(cache, target, &digest).await?
        } else {
            validate_tag(reference).map_err(|_| CacheError::NotFound {
                what: format!("manifest {reference}"),
                remote: remote_name(cache, target),
            })?;
            self.manifest_by_tag(cache, target, reference).await?
        };
        self.note_pull(&target.local, &served.digest);
        Ok(served)
    }

    async fn manifest_by_digest(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
        digest: &Digest,
    ) -> Result<CachedManifest, CacheError> {
        if let Some(m) = self.stores.repos.manifest(&target.local, digest).await? {
            self.metrics.record_cache(|c| c.hits += 1);
            return Ok(CachedManifest {
                digest: m.digest,
                media_type: m.media_type,
                size: m.size,
                bytes: None,
            });
        }
        let remote = self.remote(cache, target)?;
        let fetched = remote
            .get_manifest(&target.remote, &digest.to_string())
            .await
            .map_err(|e| upstream_error(e, cache, target, &format!("manifest {digest}")))?;
        self.metrics.record_cache(|c| c.misses += 1);
        self.store_manifest(cache, target, fetched, None).await
    }

    async fn manifest_by_tag(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
        tag: &str,
    ) -> Result<CachedManifest, CacheError> {
        let key = (target.local.clone(), tag.to_string());
        let tag_lock = {
            let mut locks = lock(&self.tag_locks);
            if locks.len() > MAP_LIMIT {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(key.clone()).or_default().clone()
        };
        let _one_check_at_a_time = tag_lock.lock().await;
        let stored = self.stores.repos.tag(&target.local, tag).await?;
        let served = |t: &TagRecord| CachedManifest {
            digest: t.digest.clone(),
            media_type: t.media_type.clone(),
            size: t.size,
            bytes: None,
        };
        if let Some(t) = &stored
            && self.fresh(&key, cache.tag_ttl_secs)
        {
            self.metrics.record_cache(|c| c.hits += 1);
            return Ok(served(t));
        }
        let what = format!("manifest {}:{tag}", target.remote);
        let remote = self.remote(cache, target)?;
        let upstream = async {
            let head = remote.head_manifest(&target.remote, tag).await?;
            if let (Some(t), Some(d)) = (&stored, &head.digest)
                && &t.digest == d
            {
                return Ok(None);
            }
            let reference = head
                .digest
                .map_or_else(|| tag.to_string(), |d| d.to_string());
            remote
                .get_manifest(&target.remote, &reference)
                .await
                .map(Some)
        };
        match upstream.await {
            Ok(None) => {
                self.mark_checked(key);
                self.metrics.record_cache(|c| c.hits += 1);
                Ok(served(
                    stored.as_ref().expect("compared with the stored tag"),
                ))
            }
            Ok(Some(fetched)) => {
                self.metrics.record_cache(|c| c.misses += 1);
                let m = self
                    .store_manifest(cache, target, fetched, Some(tag))
                    .await?;
                self.mark_checked(key);
                Ok(m)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(CacheError::NotFound {
                what: format!("manifest {tag}"),
                remote: remote_name(cache, target),
            }),
            Err(e) => match &stored {
                Some(t) => {
                    tracing::warn!(repository = %target.local, tag, "upstream failed; serving the cached tag: {e}");
                    self.metrics.record_cache(|c| c.stale_served += 1);
                    Ok(served(t))
                }
                None => Err(upstream_error(e, cache, target, &what)),
            },
        }
    }

    /// Stores a fetched (and, by digest, verified) manifest and records it
    /// in the repository, under `tag` if given.
    async fn store_manifest(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
        fetched: crate::remote::RemoteManifest,
        tag: Option<&str>,
    ) -> Result<CachedManifest, CacheError> {
        let manifest =
            Manifest::parse(&fetched.bytes, fetched.content_type.as_deref()).map_err(|e| {
                CacheError::Invalid {
                    what: tag.map_or_else(|| fetched.digest.to_string(), str::to_string),
                    remote: remote_name(cache, target),
                    reason: e.to_string(),
                }
            })?;
        let size = fetched.bytes.len() as u64;
        let digest = fetched.digest.clone();
        // Created with the first thing the upstream had, not on any name
        // asked for.
        self.repository(target).await?;
        self.stores
            .blobs
            .put(fetched.bytes.clone(), &digest)
            .await?;
        let record = ManifestRecord::from_manifest(digest.clone(), size, &manifest);
        let tags: Vec<TagRecord> = tag
            .map(|t| TagRecord {
                name: t.to_string(),
                digest: digest.clone(),
                media_type: manifest.media_type.clone(),
                size,
                mirrored: Some(TagSource {
                    policy_id: String::new(),
                    remote_repository: remote_name(cache, target),
                    remote_tag: t.to_string(),
                    remote_digest: None,
                }),
                updated_at: Utc::now(),
            })
            .into_iter()
            .collect();
        self.stores
            .repos
            .publish_cached(&target.local, &[record], &tags)
            .await?;
        // As a push would: the manifest, then the tag.
        let stored = EventKind::ManifestPush {
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
        };
        self.events.emit(Event::now(stored, &target.local, None));
        if let Some(t) = tag {
            let pushed = EventKind::TagPush {
                tag: t.to_string(),
                digest: digest.clone(),
                media_type: manifest.media_type.clone(),
            };
            self.events.emit(Event::now(pushed, &target.local, None));
        }
        Ok(CachedManifest {
            digest,
            media_type: manifest.media_type,
            size,
            bytes: Some(fetched.bytes),
        })
    }

    /// Whether the cached repository holds `digest` (a blob it links, or
    /// one of its manifests) and the store has its bytes.
    async fn holds(&self, target: &CacheTarget, digest: &Digest) -> Result<bool, StoreError> {
        let repos = &self.stores.repos;
        let linked = repos.has_blob(&target.local, digest).await?
            || repos.manifest(&target.local, digest).await?.is_some();
        Ok(linked && self.stores.blobs.stat(digest).await?.is_some())
    }

    /// A blob: held by the repository, or fetched now. With `stream`, the
    /// first pull of a missing blob gets its bytes as they arrive;
    /// otherwise (and for pulls that join a fetch under way) the answer
    /// waits until the blob is stored.
    pub async fn blob(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
        digest: &Digest,
        stream: bool,
    ) -> Result<CachedBlob, CacheError> {
        if self.holds(target, digest).await? {
            self.metrics.record_cache(|c| c.hits += 1);
            return Ok(CachedBlob::Stored);
        }
        let remote = self.remote(cache, target)?;
        let key = (target.local.clone(), digest.clone());
        let (landing, leader) = {
            let mut flights = lock(&self.flights);
            match flights.get(&key) {
                Some(l) => (l.clone(), None),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(key.clone(), rx.clone());
                    (rx, Some(tx))
                }
            }
        };
        let Some(done) = leader else {
            self.metrics.record_cache(|c| c.joined += 1);
            return self.landed(landing, digest).await;
        };
        let flights = self.flights.clone();
        let mut watch_end = landing.clone();
        let key_end = key.clone();
        tokio::spawn(async move {
            let _ = watch_end.wait_for(Option::is_some).await;
            lock(&flights).remove(&key_end);
        });
        // A fetch that ended between the check above and taking the lead
        // has landed the blob: nothing to fetch (its joiners are ours now).
        match self.holds(target, digest).await {
            Ok(true) => {
                let _ = done.send(Some(Ok(())));
                self.metrics.record_cache(|c| c.hits += 1);
                return Ok(CachedBlob::Stored);
            }
            Ok(false) => {}
            Err(e) => {
                let _ = done.send(Some(Err(e.to_string())));
                return Err(e.into());
            }
        }
        self.metrics.record_cache(|c| c.misses += 1);
        let plan = flight::FlightPlan {
            remote,
            remote_repository: target.remote.clone(),
            local: target.local.clone(),
            digest: digest.clone(),
            blobs: self.stores.blobs.clone(),
            repos: self.stores.repos.clone(),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            bandwidth: crate::bandwidth::Limits::none().and(self.bandwidth.clone(), "server"),
        };
        let tee = flight::start(plan, done)
            .await
            .map_err(|e| upstream_error(e, cache, target, &format!("blob {digest}")))?;
        if stream {
            Ok(CachedBlob::Streaming(tee))
        } else {
            drop(tee);
            self.landed(landing, digest).await
        }
    }

    async fn landed(
        &self,
        mut landing: flight::Landing,
        digest: &Digest,
    ) -> Result<CachedBlob, CacheError> {
        let outcome = match landing.wait_for(Option::is_some).await {
            Ok(o) => o.clone().expect("waited for Some"),
            Err(_) => Err("the fetch ended without a word".to_string()),
        };
        outcome
            .map(|()| CachedBlob::Stored)
            .map_err(|reason| CacheError::Fetch {
                digest: digest.clone(),
                reason,
            })
    }

    fn fresh(&self, key: &TagKey, ttl_secs: u64) -> bool {
        lock(&self.checked)
            .get(key)
            .is_some_and(|at| at.elapsed() < Duration::from_secs(ttl_secs))
    }

    fn mark_checked(&self, key: TagKey) {
        let mut checked = lock(&self.checked);
        if checked.len() > MAP_LIMIT {
            checked.clear();
        }
        checked.insert(key, Instant::now());
    }

    fn remote(
        &self,
        cache: &ProxyCache,
        target: &CacheTarget,
    ) -> Result<Arc<dyn RemoteRegistry>, CacheError> {
        let key = (
            cache.namespace.clone(),
            target.remote.clone(),
            cache.updated_at,
        );
        if let Some(r) = lock(&self.remotes).get(&key) {
            return Ok(r.clone());
        }
        let remote = self
            .connector
            .connect(&cache.endpoint(target.remote.clone()))
            .map_err(CacheError::Upstream)?;
        let mut remotes = lock(&self.remotes);
        if remotes.len() > MAP_LIMIT / 100 {
            remotes.clear();
        }
        remotes.insert(key, remote.clone());
        Ok(remote)
    }
}

/// The cached repository `name`, created (private) with the first content
/// fetched for it; reports its creation.
pub(crate) async fn ensure_repository(
    repos: &dyn RepositoryStore,
    events: &dyn EventSink,
    name: &RepositoryName,
) -> Result<crate::store::Repository, StoreError> {
    if let Some(r) = repos.repository(name).await? {
        return Ok(r);
    }
    let new = NewRepository {
        name: name.clone(),
        visibility: Visibility::Private,
        short_description: String::new(),
    };
    match repos.create_repository(&new).await {
        Ok(r) => {
            tracing::info!(repository = %name, "cached repository created on its first pull");
            let created = EventKind::Repository(RepositoryChange::Created);
            events.emit(Event::now(created, name, None));
            Ok(r)
        }
        Err(StoreError::Conflict { .. }) => {
            repos
                .repository(name)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: format!("repository {name}"),
                })
        }
        Err(e) => Err(e),
    }
}

/// `host/repository` of a target's upstream, for messages.
fn remote_name(cache: &ProxyCache, target: &CacheTarget) -> String {
    let host = cache.host.split("://").last().unwrap_or_default();
    format!("{host}/{}", target.remote)
}

fn upstream_error(
    e: RemoteError,
    cache: &ProxyCache,
    target: &CacheTarget,
    what: &str,
) -> CacheError {
    if e.kind() == ErrorKind::NotFound {
        CacheError::NotFound {
            what: what.to_string(),
            remote: remote_name(cache, target),
        }
    } else {
        CacheError::Upstream(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
