//! One poll of one policy: list, resolve digests, diff, copy, publish.
//!
//! This is where a poll decides what to copy:
//! 1. list the remote tags (all pages);
//! 2. HEAD each tag's manifest for its digest, many at once over kept-alive
//!    connections (a GET only when `Docker-Content-Digest` is missing);
//!    where the remote has a tag API that lists digests (DTR, regmirror,
//!    Docker Hub: [`RemoteRegistry::tag_digests`], read beside the
//!    listing), its digests instead, and a HEAD only for a tag it lacks
//!    and, after step 3, for each tag about to be copied (the HEAD wins);
//! 3. [`crate::diff::plan`] against the local tags (and the baseline of a
//!    policy saved without initial evaluation);
//! 4. for each tag to copy: [`crate::copy::image::copy_tree`] (the
//!    policy's platforms) and [`crate::copy::referrers::copy_referrers`],
//!    several tags at once, each published as soon as it and the tags
//!    planned before it are copied, in batches ([`pipeline`]), so a later
//!    failure leaves earlier tags complete.
//!
//! The tags of step 2 are those the policy's rules match, plus the cosign
//! tag-scheme tags (`sha256-<hex>.sig`, ...) of the digests they resolve
//! to, when the policy copies referrers.

mod pipeline;

pub use pipeline::{PUBLISH_BATCH, TAGS_IN_FLIGHT};

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::copy::CopyContext;
use crate::copy::referrers::tag_scheme_names;
use crate::diff::plan;
use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::events::{Event, EventKind, EventSink};
use crate::policy::PollMirroringPolicy;
use crate::progress::Progress;
use crate::reference::RepositoryName;
use crate::remote::{BulkDigests, RemoteError, RemoteRegistry};
use crate::rules::TagFilter;
use crate::store::{RepositoryStore, StoreError, TagRecord};

/// Where a poll writes its log lines.
pub trait LogSink: Send + Sync {
    /// Records one line.
    fn line(&self, text: String);
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Remote tags listed.
    pub tags_listed: usize,
    /// Tags copied and published.
    pub tags_copied: usize,
    /// Tags already up to date.
    pub tags_unchanged: usize,
    /// Tags left alone because they predate a "Save"-only policy.
    pub tags_preexisting: usize,
    /// Tags that failed (each also in `errors`).
    pub tags_failed: usize,
    /// Local tags deleted because the remote no longer lists them.
    pub tags_deleted: usize,
    /// Bytes written to the store.
    pub bytes_copied: u64,
    /// One line per failed tag: tag, digest and cause.
    pub errors: Vec<String>,
    /// The kind of the first tag failure, if any.
    pub failure_kind: Option<ErrorKind>,
}

impl PollReport {
    /// Records a failed tag: one line in the log and in `errors`.
    fn failed(&mut self, log: &dyn LogSink, kind: ErrorKind, line: String) {
        log.line(line.clone());
        self.errors.push(line);
        self.tags_failed += 1;
        self.failure_kind.get_or_insert(kind);
    }
}

/// Errors that stop a poll before it copies anything.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// Listing or resolving remote tags failed.
    #[error("{context}: {source}")]
    Remote {
        /// What was being done.
        context: String,
        /// The remote error.
        #[source]
        source: RemoteError,
    },
    /// The local store failed.
    #[error("{context}: {source}")]
    Store {
        /// What was being done.
        context: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// The policy's tag rules cannot be used (a stored policy written by
    /// something that did not check them).
    #[error("the policy's tag rules: {0}")]
    Rules(#[from] crate::rules::InvalidRule),
    /// The poll was canceled.
    #[error("canceled")]
    Canceled,
}

impl PollError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PollError::Remote { source, .. } => source.kind(),
            PollError::Store { .. } => ErrorKind::Internal,
            PollError::Rules(_) => ErrorKind::Invalid,
            PollError::Canceled => ErrorKind::Canceled,
        }
    }
}

/// Resolves every tag's digest: HEAD first, GET only without the header.
/// `concurrency` requests are in flight at once. Fails on the first tag
/// that cannot be resolved (used where a complete answer is needed, such as
/// a policy's baseline).
pub async fn resolve_digests(
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    tags: &[String],
    concurrency: usize,
) -> Result<HashMap<String, Digest>, RemoteError> {
    let (digests, mut failed) = resolve_each(remote, repo, tags, concurrency).await;
    match failed.pop() {
        Some((_, e)) => Err(e),
        None => Ok(digests),
    }
}

/// Like [`resolve_digests`], but a tag that cannot be resolved does not stop
/// the others: it is returned with its error.
pub async fn resolve_each(
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    tags: &[String],
    concurrency: usize,
) -> (HashMap<String, Digest>, Vec<(String, RemoteError)>) {
    let results: Vec<(String, Result<Option<Digest>, RemoteError>)> =
        futures_util::stream::iter(tags.iter().cloned())
            .map(|tag| async move {
                let result = async {
                    let head = match remote.head_manifest(repo, &tag).await {
                        Ok(h) => h,
                        // A tag deleted between the list and the HEAD: not an error.
                        Err(RemoteError::NotFound { .. }) => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    Ok(Some(match head.digest {
                        Some(d) => d,
                        None => remote.get_manifest(repo, &tag).await?.digest,
                    }))
                }
                .await;
                (tag, result)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut digests = HashMap::with_capacity(results.len());
    let mut failed = Vec::new();
    for (tag, r) in results {
        match r {
            Ok(Some(d)) => {
                digests.insert(tag, d);
            }
            Ok(None) => {}
            Err(e) => failed.push((tag, e)),
        }
    }
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    (digests, failed)
}

/// [`resolve_each`], but a tag `bulk` (the remote's tag API) lists with a
/// digest takes it from there, without a request.
async fn resolve_with(
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    tags: &[String],
    bulk: Option<&BulkDigests>,
    concurrency: usize,
) -> (HashMap<String, Digest>, Vec<(String, RemoteError)>) {
    let Some(bulk) = bulk else {
        return resolve_each(remote, repo, tags, concurrency).await;
    };
    let mut digests = HashMap::with_capacity(tags.len());
    let mut missing = Vec::new();
    for tag in tags {
        match bulk.digests.get(tag) {
            Some(d) => {
                digests.insert(tag.clone(), d.clone());
            }
            None => missing.push(tag.clone()),
        }
    }
    let (more, failed) = resolve_each(remote, repo, &missing, concurrency).await;
    digests.extend(more);
    (digests, failed)
}

/// The inputs of a poll besides the policy.
pub struct PollEnv<'a> {
    /// The remote, bound to the policy's endpoint.
    pub remote: Arc<dyn RemoteRegistry>,
    /// Local repositories and tags.
    pub repos: &'a dyn RepositoryStore,
    /// Store, limits, cancellation, counters.
    pub copy: CopyContext,
    /// Concurrent HEAD requests.
    pub head_concurrency: usize,
    /// `None` for initial evaluation, else the policy's baseline.
    pub baseline: Option<HashMap<String, Digest>>,
    /// Log lines go here.
    pub log: &'a dyn LogSink,
    /// Each published tag is reported here (`POLL_MIRRORING`) and each
    /// deleted one (`TAG_DELETE`).
    pub events: &'a dyn EventSink,
}

/// Polls one policy. Tag failures are reported in the [`PollReport`];
/// only failures before copying (listing, store) return `Err`.
pub async fn poll_policy(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
) -> Result<PollReport, PollError> {
    let remote_repo = &policy.remote.repository;
    let local_repo = &policy.local_repository;
    let source = format!("{}/{}", policy.remote.host, remote_repo);
    let remote = env.remote.as_ref();
    let mut report = PollReport::default();

    let listed = tokio::select! {
        t = remote.list_tags(remote_repo) => t,
        _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
    };
    let listed = listed.map_err(|source| PollError::Remote {
        context: format!("listing tags of {source}"),
        source,
    })?;
    // The listing decides which tags exist; the tag API (where the remote
    // has one) only saves the HEADs. After the listing, so the client
    // knows how the registry authenticates.
    let bulk = tokio::select! {
        b = remote.tag_digests(remote_repo) => b,
        _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
    };
    let bulk = bulk.unwrap_or_else(|e| {
        env.log.line(format!(
            "the registry's tag API failed ({e}): reading each tag's digest with a HEAD"
        ));
        None
    });
    let filter = TagFilter::new(&policy.rules)?;
    let tags = filter.apply(&listed);
    report.tags_listed = listed.len();
    if filter.is_empty() {
        env.log
            .line(format!("listed {} tags in {source}", listed.len()));
    } else {
        env.log.line(format!(
            "listed {} tags in {source}; {} match the policy's tag rules",
            listed.len(),
            tags.len()
        ));
    }
    if env.copy.cancel.is_cancelled() {
        return Err(PollError::Canceled);
    }

    match &bulk {
        Some(b) => {
            let missing = tags.iter().filter(|t| !b.digests.contains_key(*t)).count();
            env.log.line(format!(
                "read {} tag digests from the registry's tag API ({}) in {} requests; {missing} tags it did not list with a digest get a HEAD",
                b.digests.len(),
                b.api,
                b.requests
            ));
        }
        None => env.log.line(format!(
            "no tag API at the registry: reading {} tag digests with a HEAD each",
            tags.len()
        )),
    }
    let (mut remote_digests, mut unresolved) = tokio::select! {
        r = resolve_with(remote, remote_repo, &tags, bulk.as_ref(), env.head_concurrency) => r,
        _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
    };
    let tags = match filter.newest_by_created() {
        Some(n) => {
            let kept = newest_created(env, remote_repo, &filter, &tags, &remote_digests).await?;
            remote_digests.retain(|t, _| kept.contains(t));
            unresolved.retain(|(t, _)| kept.contains(t));
            env.log.line(format!(
                "newest {n} by image creation time: {}",
                kept.join(", ")
            ));
            kept
        }
        None => tags,
    };
    let signatures = tag_scheme_tags(policy, &listed, &tags, &remote_digests);
    if !signatures.is_empty() {
        env.log.line(format!(
            "{} signature, attestation or SBOM tags of those tags are mirrored too",
            signatures.len()
        ));
        let (more, failed) = tokio::select! {
            r = resolve_with(remote, remote_repo, &signatures, bulk.as_ref(), env.head_concurrency) => r,
            _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
        };
        remote_digests.extend(more);
        unresolved.extend(failed);
    }
    // When no tag resolves, the cause is the registry (credentials, network),
    // not a tag: fail the poll with it. Otherwise the others go on.
    if remote_digests.is_empty() && !unresolved.is_empty() {
        let (_, e) = unresolved.swap_remove(0);
        return Err(PollError::Remote {
            context: format!("reading tag digests of {source}"),
            source: e,
        });
    }
    for (tag, e) in unresolved {
        let line = format!("failed {remote_repo}:{tag}: cannot read its digest: {e}");
        report.failed(env.log, e.kind(), line);
    }
    let local = env
        .repos
        .tag_digests(local_repo)
        .await
        .map_err(|source| PollError::Store {
            context: format!("reading tags of {local_repo}"),
            source,
        })?;
    let mut sync = plan(&remote_digests, &local, env.baseline.as_ref());
    if let Some(b) = &bulk {
        // What the tag API said is a hint: each tag about to be copied is
        // confirmed with a HEAD, and the HEAD wins.
        let confirm: Vec<String> = sync
            .copy
            .iter()
            .filter(|i| b.digests.get(&i.tag) == Some(&i.digest))
            .map(|i| i.tag.clone())
            .collect();
        if !confirm.is_empty() {
            let (heads, failed) = tokio::select! {
                r = resolve_each(remote, remote_repo, &confirm, env.head_concurrency) => r,
                _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
            };
            let failed_tags: std::collections::HashSet<&str> =
                failed.iter().map(|(t, _)| t.as_str()).collect();
            for tag in &confirm {
                match heads.get(tag) {
                    Some(d) if remote_digests.get(tag) == Some(d) => {}
                    Some(d) => {
                        env.log.line(format!(
                            "{remote_repo}:{tag}: the tag API says {}, a HEAD says {d}: using {d}",
                            b.digests[tag]
                        ));
                        remote_digests.insert(tag.clone(), d.clone());
                    }
                    None => {
                        remote_digests.remove(tag);
                        if !failed_tags.contains(tag.as_str()) {
                            env.log.line(format!(
                                "{remote_repo}:{tag}: gone from the registry since its tag API listed it"
                            ));
                        }
                    }
                }
            }
            for (tag, e) in failed {
                let line = format!("failed {remote_repo}:{tag}: cannot read its digest: {e}");
                report.failed(env.log, e.kind(), line);
            }
            sync = plan(&remote_digests, &local, env.baseline.as_ref());
        }
    }
    report.tags_unchanged = sync.unchanged;
    report.tags_preexisting = sync.preexisting;
    env.log.line(format!(
        "{} tags to copy, {} unchanged, {} skipped as older than the policy",
        sync.copy.len(),
        sync.unchanged,
        sync.preexisting
    ));
    Progress::add(&env.copy.progress.tags_planned, sync.copy.len() as u64);

    pipeline::copy_and_publish(env, policy, &source, &sync.copy, &mut report).await?;
    if policy.delete_removed.enabled {
        propagate_deletions(env, policy, &listed, &source, &mut report).await?;
    }
    env.log.line(format!(
        "poll of {source} done: {} copied, {} unchanged, {} failed, {} deleted, {} bytes",
        report.tags_copied,
        report.tags_unchanged,
        report.tags_failed,
        report.tags_deleted,
        report.bytes_copied
    ));
    Ok(report)
}

/// Of `tags` (resolved to `digests`), those `filter`'s `newest` rule
/// keeps by image creation time ([`crate::created`]); a tag whose time
/// cannot be read counts as oldest (and is said in the log).
async fn newest_created(
    env: &PollEnv<'_>,
    repo: &RepositoryName,
    filter: &TagFilter,
    tags: &[String],
    digests: &HashMap<String, Digest>,
) -> Result<Vec<String>, PollError> {
    let remote = env.remote.as_ref();
    let blobs = env.copy.blobs.as_ref();
    let pairs: Vec<(String, Digest)> = digests
        .iter()
        .map(|(t, d)| (t.clone(), d.clone()))
        .collect();
    let read = futures_util::stream::iter(pairs)
        .map(|(tag, digest)| async move {
            let time = crate::created::created(remote, blobs, repo, &digest).await;
            (tag, time)
        })
        .buffer_unordered(env.head_concurrency.max(1))
        .collect::<Vec<_>>();
    let read = tokio::select! {
        r = read => r,
        _ = env.copy.cancel.cancelled() => return Err(PollError::Canceled),
    };
    let mut times = HashMap::new();
    for (tag, time) in read {
        match time {
            Ok(Some(t)) => {
                times.insert(tag, t);
            }
            Ok(None) => env.log.line(format!(
                "{repo}:{tag}: its image config names no creation time; counted as oldest"
            )),
            Err(e) => env.log.line(format!(
                "{repo}:{tag}: cannot read its creation time ({e}); counted as oldest"
            )),
        }
    }
    let resolved: Vec<String> = tags
        .iter()
        .filter(|t| digests.contains_key(*t))
        .cloned()
        .collect();
    Ok(filter.newest_created(&resolved, &times))
}

/// The cosign tag-scheme tags (`sha256-<hex>.sig`, ...) the remote lists
/// for the digests `tags` resolved to, that the policy's rules left out:
/// with referrers on, a mirrored image keeps its signatures.
fn tag_scheme_tags(
    policy: &PollMirroringPolicy,
    listed: &[String],
    tags: &[String],
    digests: &HashMap<String, Digest>,
) -> Vec<String> {
    if !policy.content.referrers || listed.len() == tags.len() {
        return Vec::new();
    }
    let listed: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
    let chosen: std::collections::HashSet<&str> = tags.iter().map(String::as_str).collect();
    let mut found: Vec<String> = digests
        .values()
        .flat_map(|d| tag_scheme_names(d, &policy.content))
        .filter(|t| listed.contains(t.as_str()) && !chosen.contains(t.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Deletes the local tags `policy` mirrored from `source` that the remote
/// no longer lists in `listed` (see [`crate::policy::DeleteRemoved`]):
/// never when the remote lists no tag (an outage or a wiped repository
/// looks the same), only tags this policy wrote from this remote, at most
/// `max_percent` of them per poll (rounded up), and with `dry_run` only
/// in the log.
async fn propagate_deletions(
    env: &PollEnv<'_>,
    policy: &PollMirroringPolicy,
    listed: &[String],
    source: &str,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let settings = policy.delete_removed;
    let local_repo = &policy.local_repository;
    if listed.is_empty() {
        env.log.line(format!(
            "deletion skipped: {source} lists no tags (an outage and a wiped repository look the same)"
        ));
        return Ok(());
    }
    let remote: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
    let tags = env
        .repos
        .tags(local_repo)
        .await
        .map_err(|source| PollError::Store {
            context: format!("reading tags of {local_repo}"),
            source,
        })?;
    let mine: Vec<&TagRecord> = tags
        .iter()
        .filter(|t| {
            t.mirrored
                .as_ref()
                .is_some_and(|m| m.policy_id == policy.id && m.remote_repository == source)
        })
        .collect();
    let mut gone: Vec<&TagRecord> = mine
        .iter()
        .copied()
        .filter(|t| {
            t.mirrored
                .as_ref()
                .is_some_and(|m| !remote.contains(m.remote_tag.as_str()))
        })
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    let limit = (mine.len() * usize::from(settings.max_percent)).div_ceil(100);
    if gone.len() > limit {
        env.log.line(format!(
            "{} tags of {local_repo} are gone from {source}; at most {limit} ({}% of the {} this policy mirrored) go per poll, the rest wait for the next",
            gone.len(),
            settings.max_percent,
            mine.len()
        ));
        gone.truncate(limit);
    }
    for tag in gone {
        if settings.dry_run {
            env.log.line(format!(
                "would delete {local_repo}:{} ({}): {source} no longer lists it (dry run)",
                tag.name, tag.digest
            ));
            continue;
        }
        let deleted = env
            .repos
            .delete_tag(local_repo, &tag.name)
            .await
            .map_err(|source| PollError::Store {
                context: format!("deleting {local_repo}:{}", tag.name),
                source,
            })?;
        if deleted {
            let kind = EventKind::TagDelete {
                tag: tag.name.clone(),
                digest: tag.digest.clone(),
            };
            env.events.emit(Event::now(kind, local_repo, None));
            report.tags_deleted += 1;
            env.log.line(format!(
                "deleted {local_repo}:{} ({}): {source} no longer lists it",
                tag.name, tag.digest
            ));
        }
    }
    Ok(())
}
