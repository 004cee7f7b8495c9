//! [`ProxyCacheStore`]: proxy caches (pull-through), one per local
//! namespace, and when their cached manifests were last pulled
//! ([`CachePull`]). A store of its own (not more methods on
//! [`super::PolicyStore`]): one store, one thing held.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::digest::Digest;
use crate::proxy_cache::ProxyCache;
use crate::reference::RepositoryName;

/// When a cached manifest was pulled: what least-recently-pulled eviction
/// orders a namespace's manifests by ([`ProxyCacheStore::record_pulls`],
/// [`ProxyCacheStore::pulls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePull {
    /// The repository pulled from (under a proxy cache's namespace).
    pub repository: RepositoryName,
    /// The manifest pulled.
    pub digest: Digest,
    /// When it was pulled (the latest pull, once stored; stores keep
    /// microseconds).
    pub pulled_at: DateTime<Utc>,
}

/// Persistent proxy caches. Their password is sealed at rest, as poll
/// policies' secrets are ([`super::SecretKeys`]).
#[async_trait]
pub trait ProxyCacheStore: Send + Sync + 'static {
    /// Stores a new proxy cache (with its password). `StoreError::Conflict`
    /// when the namespace has one.
    async fn insert_proxy_cache(&self, cache: &ProxyCache) -> Result<(), StoreError>;

    /// One cache with its password, or `None`.
    async fn proxy_cache(&self, namespace: &str) -> Result<Option<ProxyCache>, StoreError>;

    /// Every cache, by namespace.
    async fn proxy_caches(&self) -> Result<Vec<ProxyCache>, StoreError>;

    /// Replaces a cache's fields (all but namespace and `created_at`).
    /// Returns whether it existed.
    async fn update_proxy_cache(&self, cache: &ProxyCache) -> Result<bool, StoreError>;

    /// Deletes a cache (its repositories stay). Returns whether it existed.
    async fn delete_proxy_cache(&self, namespace: &str) -> Result<bool, StoreError>;

    /// Records that `pulls` were pulled: each a repository, a manifest
    /// digest and when. A later time replaces an earlier one (never the
    /// reverse; within the batch too). One transaction (or one multi-row
    /// statement) for the whole batch: callers flush every few seconds,
    /// never per request. A pull of a repository that does not exist (any
    /// more: deleted since the pull) is ignored, so a late flush cannot
    /// bring back the rows [`super::RepositoryStore::delete_repository`]
    /// removed.
    async fn record_pulls(&self, pulls: &[CachePull]) -> Result<(), StoreError>;

    /// When each manifest of the repositories under `namespace` (the
    /// repository name's first path component equals it) was last pulled:
    /// least recently pulled first (then by repository and digest). Empty
    /// for a namespace that is not one path component.
    async fn pulls(&self, namespace: &str) -> Result<Vec<CachePull>, StoreError>;

    /// Forgets the pull times of `repo`'s manifest `digest` (it was
    /// evicted). Forgetting one never recorded is not an error.
    async fn forget_pull(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError>;
}

/// `pulls` as stored: one per repository and digest, with its latest
/// time, sorted by repository and digest (so that two batches written at
/// once lock their rows in one order).
pub(crate) fn latest_pulls(pulls: &[CachePull]) -> Vec<(String, String, DateTime<Utc>)> {
    let mut latest: BTreeMap<(&str, String), DateTime<Utc>> = BTreeMap::new();
    for p in pulls {
        latest
            .entry((p.repository.as_str(), p.digest.to_string()))
            .and_modify(|at| *at = (*at).max(p.pulled_at))
            .or_insert(p.pulled_at);
    }
    latest
        .into_iter()
        .map(|((repo, digest), at)| (repo.to_string(), digest, at))
        .collect()
}

/// The bounds of the repository names `namespace/…`: from `namespace/`
/// (included) to `namespace0` (excluded; `0` follows `/` in byte order,
/// which names compare in). With the name `namespace` itself, these are
/// the names whose first path component is `namespace`. `None` when
/// `namespace` is not one path component.
pub(crate) fn namespace_range(namespace: &str) -> Option<(String, String)> {
    (!namespace.is_empty() && !namespace.contains('/'))
        .then(|| (format!("{namespace}/"), format!("{namespace}0")))
}

/// The associated data of a proxy cache's sealed password (never the same
/// as a poll or push policy's, so a sealed value cannot be moved between
/// them).
pub(crate) fn proxy_cache_secret_context(namespace: &str) -> String {
    format!("proxy cache {namespace} password")
}

/// A `u64` setting as a database integer (a value past `i64::MAX`, which
/// no limit reaches, is kept as `i64::MAX`).
pub(crate) fn to_db_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A database integer read back as a `u64` setting (`what` names it).
pub(crate) fn from_db_int(v: i64, namespace: &str, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        reason: format!("proxy cache {namespace}: negative {what} {v}"),
    })
}
