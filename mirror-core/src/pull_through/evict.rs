//! Bounded disk for proxy caches: when a cache's namespace holds more than
//! its `max_bytes`, the images pulled least recently are removed from its
//! repositories (tags and manifests) until it fits; the garbage
//! collection that follows in the same `onlinegc` job removes their blob
//! links and the bytes nothing else needs.
//!
//! Pull times are noted in memory on each manifest a cache serves and
//! written in batches ([`PullThrough::flush_pulls`], every few seconds and
//! before an eviction), so a pull costs no database write. A manifest
//! never recorded as pulled counts as the oldest.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{PullThrough, lock};
use crate::digest::Digest;
use crate::reference::RepositoryName;
use crate::store::{CachePull, StoreError};

/// What an eviction pass did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictReport {
    /// Caches over their limit.
    pub caches_over: usize,
    /// Images (top-level manifests) removed.
    pub images: u64,
    /// Tags removed with them.
    pub tags: u64,
    /// Bytes the caches' namespaces held before.
    pub bytes_before: u64,
    /// Bytes they hold after (the evicted images' content not shared with
    /// a remaining one of the same namespace, taken off).
    pub bytes_after: u64,
}

/// One image of a cached repository: a manifest no other manifest there
/// has as a child, with what it reaches.
struct Image {
    repo: RepositoryName,
    digest: Digest,
    tags: Vec<String>,
    /// Manifests (its own digest, its children) and blobs it reaches.
    content: HashSet<Digest>,
    /// Child manifests it reaches (removed with it when no other image of
    /// the repository reaches them).
    children: HashSet<Digest>,
    pulled_at: DateTime<Utc>,
}

impl PullThrough {
    /// Notes a pull of `repo`'s manifest `digest` (written by the next
    /// [`PullThrough::flush_pulls`]).
    pub(super) fn note_pull(&self, repo: &RepositoryName, digest: &Digest) {
        let mut pulled = lock(&self.pulled);
        if pulled.len() > super::MAP_LIMIT {
            // Unflushed for too long (the store failing): keep memory bounded.
            pulled.clear();
        }
        pulled.insert((repo.clone(), digest.clone()), Utc::now());
    }

    /// Writes the pull times noted since the last flush, in one batch.
    pub async fn flush_pulls(&self) -> Result<usize, StoreError> {
        let batch: Vec<CachePull> = std::mem::take(&mut *lock(&self.pulled))
            .into_iter()
            .map(|((repository, digest), pulled_at)| CachePull {
                repository,
                digest,
                pulled_at,
            })
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.stores.proxy_caches.record_pulls(&batch).await {
            // Put them back (unless newer ones arrived) for the next flush.
            let mut pulled = lock(&self.pulled);
            for p in batch {
                pulled
                    .entry((p.repository, p.digest))
                    .or_insert(p.pulled_at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    /// Removes the least recently pulled images of every cache over its
    /// `max_bytes` until it fits (`dry_run`: only counts). `log` hears one
    /// line per cache over its limit.
    pub async fn evict(
        &self,
        dry_run: bool,
        log: &(dyn Fn(String) + Send + Sync),
    ) -> Result<EvictReport, StoreError> {
        self.flush_pulls().await?;
        let mut report = EvictReport::default();
        let caches = self.stores.proxy_caches.proxy_caches().await?;
        for cache in caches.iter().filter(|c| c.max_bytes > 0) {
            let mut images = self.images(&cache.namespace).await?;
            // Sizes of everything the namespace's images reach, counted once.
            let mut users: HashMap<Digest, usize> = HashMap::new();
            for image in &images {
                for d in &image.content {
                    *users.entry(d.clone()).or_default() += 1;
                }
            }
            let mut sizes: HashMap<Digest, u64> = HashMap::with_capacity(users.len());
            for d in users.keys() {
                let size = self.stores.blobs.stat(d).await?.unwrap_or(0);
                sizes.insert(d.clone(), size);
            }
            let mut held: u64 = sizes.values().sum();
            if held <= cache.max_bytes {
                continue;
            }
            report.caches_over += 1;
            report.bytes_before += held;
            let before = held;
            let (mut images_out, mut tags_out) = (0u64, 0u64);
            images.sort_by_key(|i| i.pulled_at);
            for image in &images {
                if held <= cache.max_bytes {
                    break;
                }
                for d in &image.content {
                    let n = users.get_mut(d).expect("counted above");
                    *n -= 1;
                    if *n == 0 {
                        held = held.saturating_sub(sizes[d]);
                    }
                }
                images_out += 1;
                tags_out += image.tags.len() as u64;
                if !dry_run {
                    self.remove_image(image, &images).await?;
                }
            }
            report.images += images_out;
            report.tags += tags_out;
            report.bytes_after += held;
            log(format!(
                "proxy cache {}: {before} bytes over its limit of {}: {} {images_out} least recently pulled images ({tags_out} tags), {held} bytes left",
                cache.namespace,
                cache.max_bytes,
                if dry_run { "would remove" } else { "removed" },
            ));
        }
        Ok(report)
    }

    /// The images of every repository under `namespace`, with their last
    /// pull.
    async fn images(&self, namespace: &str) -> Result<Vec<Image>, StoreError> {
        let pulls: HashMap<(RepositoryName, Digest), DateTime<Utc>> = self
            .stores
            .proxy_caches
            .pulls(namespace)
            .await?
            .into_iter()
            .map(|p| ((p.repository, p.digest), p.pulled_at))
            .collect();
        let mut images = Vec::new();
        for repo in self.stores.repos.repositories().await? {
            if repo.name.owner_namespace() != namespace {
                continue;
            }
            let content = self.stores.repos.content(&repo.name).await?;
            let by_digest: HashMap<&Digest, &crate::store::ManifestRecord> =
                content.manifests.iter().map(|m| (&m.digest, m)).collect();
            let children: HashSet<&Digest> =
                content.manifests.iter().flat_map(|m| &m.children).collect();
            for root in content
                .manifests
                .iter()
                .filter(|m| !children.contains(&m.digest))
            {
                let mut reach = HashSet::new();
                let mut kids = HashSet::new();
                let mut stack = vec![&root.digest];
                while let Some(d) = stack.pop() {
                    if !reach.insert(d.clone()) {
                        continue;
                    }
                    if let Some(m) = by_digest.get(d) {
                        reach.extend(m.blobs.iter().cloned());
                        for c in &m.children {
                            kids.insert(c.clone());
                            stack.push(c);
                        }
                    }
                }
                images.push(Image {
                    repo: repo.name.clone(),
                    digest: root.digest.clone(),
                    tags: content
                        .tags
                        .iter()
                        .filter(|(_, d)| d == &root.digest)
                        .map(|(t, _)| t.clone())
                        .collect(),
                    content: reach,
                    children: kids,
                    pulled_at: pulls
                        .get(&(repo.name.clone(), root.digest.clone()))
                        .copied()
                        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                });
            }
        }
        Ok(images)
    }

    /// Removes `image` (its tags with its manifest, then the children no
    /// other image of its repository reaches) and forgets its pull time.
    async fn remove_image(&self, image: &Image, all: &[Image]) -> Result<(), StoreError> {
        let repos = &self.stores.repos;
        repos.delete_manifest(&image.repo, &image.digest).await?;
        for child in &image.children {
            let shared = all.iter().any(|o| {
                o.repo == image.repo && o.digest != image.digest && o.children.contains(child)
            });
            if !shared {
                repos.delete_manifest(&image.repo, child).await?;
            }
        }
        self.stores
            .proxy_caches
            .forget_pull(&image.repo, &image.digest)
            .await?;
        lock(&self.checked).retain(|(repo, _), _| repo != &image.repo);
        tracing::info!(repository = %image.repo, digest = %image.digest, tags = ?image.tags, "evicted from its proxy cache (least recently pulled)");
        Ok(())
    }
}
