//! Online garbage collection: [`collect`] marks from every tag of every
//! repository and sweeps unreferenced manifests, blob links and blobs while
//! pushes, pulls and polls go on. It works through the [`BlobStore`] and
//! [`RepositoryStore`] traits only, so every backend runs it.
//!
//! 1. **Mark** (`mark.rs`, per repository): tags, index children, referrers
//!    of kept manifests, digests held within the grace period, and every
//!    manifest unless untagged ones are to go.
//! 2. **Remove records**: the manifests and blob links the mark left out,
//!    each only if it is still unreferenced and unheld, in one transaction
//!    per repository ([`RepositoryStore::remove_unreferenced`]).
//! 3. **Sweep bytes**: every stored blob ([`BlobStore::list`]) that no
//!    repository needs, is not held, and was written before the grace
//!    period is *claimed* ([`RepositoryStore::claim_unreferenced`], which
//!    checks again), deleted, and released.
//!
//! The writers' side is `hold.rs`. A dry run does steps 1 and the counting
//! of 2 and 3, and changes nothing.

mod hold;
mod mark;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::store::{BlobStore, CLAIM_TTL, RepositoryStore, StoreError};

pub use hold::{HoldingBlobStore, hold};

/// The job action that runs garbage collection (DTR's name).
pub const ONLINE_GC: &str = "onlinegc";
/// Job parameter: `true` reports what would go and changes nothing.
pub const PARAM_DRY_RUN: &str = "dryRun";
/// Job parameter: the grace period, a duration such as `30m` or `2h`.
pub const PARAM_GRACE_PERIOD: &str = "gracePeriod";
/// Job parameter: `true` removes manifests no tag reaches.
pub const PARAM_DELETE_UNTAGGED: &str = "deleteUntagged";
/// Every parameter an `onlinegc` job takes.
pub const PARAMS: [&str; 3] = [PARAM_DRY_RUN, PARAM_GRACE_PERIOD, PARAM_DELETE_UNTAGGED];

/// The default grace period: content written, linked or held within it
/// is never collected.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// The shortest grace period accepted. A writer must link what it held
/// within the grace period (seconds in practice; see `ARCHITECTURE.md`).
pub const MIN_GRACE: Duration = Duration::from_secs(1);

/// Claimed and deleted this many blobs at a time.
const SWEEP_BATCH: usize = 256;

/// How a collection runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcSettings {
    /// Content written, linked or held more recently than this stays.
    pub grace: Duration,
    /// Remove manifests that no tag reaches (off: only deleted tags'
    /// blob links and unreferenced blobs go).
    pub delete_untagged: bool,
    /// Report only.
    pub dry_run: bool,
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings {
            grace: DEFAULT_GRACE,
            delete_untagged: false,
            dry_run: false,
        }
    }
}

/// A job parameter or setting of garbage collection that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct GcSettingError {
    /// The parameter's name.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn parse_bool(field: &'static str, value: &str) -> Result<bool, GcSettingError> {
    match value.trim() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        other => Err(GcSettingError {
            field,
            reason: format!("{other:?} is not true or false"),
        }),
    }
}

/// A grace period as written in a job parameter or the config (`30m`,
/// `2h`, `1h30m`, `90s`), at least [`MIN_GRACE`].
pub fn parse_grace(field: &'static str, value: &str) -> Result<Duration, GcSettingError> {
    let grace = crate::job::parse_duration(value).ok_or_else(|| GcSettingError {
        field,
        reason: format!(
            "{:?} is not a duration such as \"90s\", \"30m\" or \"2h\"",
            value.chars().take(40).collect::<String>()
        ),
    })?;
    if grace < MIN_GRACE {
        return Err(GcSettingError {
            field,
            reason: format!("must be at least {}s", MIN_GRACE.as_secs()),
        });
    }
    Ok(grace)
}

impl GcSettings {
    /// These settings overridden by an `onlinegc` job's `parameters`
    /// (unknown names are refused, naming the parameter).
    pub fn with_parameters(
        &self,
        parameters: &std::collections::BTreeMap<String, String>,
    ) -> Result<GcSettings, GcSettingError> {
        let mut out = self.clone();
        for (key, value) in parameters {
            match key.as_str() {
                PARAM_DRY_RUN => out.dry_run = parse_bool(PARAM_DRY_RUN, value)?,
                PARAM_DELETE_UNTAGGED => {
                    out.delete_untagged = parse_bool(PARAM_DELETE_UNTAGGED, value)?
                }
                PARAM_GRACE_PERIOD => out.grace = parse_grace(PARAM_GRACE_PERIOD, value)?,
                _ => {
                    return Err(GcSettingError {
                        field: "parameters",
                        reason: format!(
                            "unknown parameter {:?} for onlinegc; supported: {}",
                            key.chars().take(40).collect::<String>(),
                            PARAMS.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Manifests removed from repositories.
    pub manifests_removed: u64,
    /// Blob links removed from repositories.
    pub links_removed: u64,
    /// Blobs (layers, configs, manifests' bytes) deleted from the store.
    pub blobs_removed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Blobs left in the store.
    pub blobs_kept: u64,
    /// Their bytes.
    pub bytes_kept: u64,
    /// Blobs found unreferenced but linked or held again before they could
    /// be claimed (kept).
    pub blobs_rescued: u64,
}

/// Why a collection stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Canceled (what was removed so far stays removed).
    #[error("garbage collection was canceled")]
    Canceled,
}

impl GcError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GcError::Store(_) => ErrorKind::Internal,
            GcError::Canceled => ErrorKind::Canceled,
        }
    }
}

/// Runs one collection over `repos` and `blobs` (see the module docs);
/// `log` receives its progress lines.
pub async fn collect(
    blobs: &dyn BlobStore,
    repos: &dyn RepositoryStore,
    settings: &GcSettings,
    cancel: &CancellationToken,
    log: &(dyn Fn(String) + Send + Sync),
) -> Result<GcReport, GcError> {
    let started = crate::job::now();
    let grace = chrono::Duration::from_std(settings.grace).unwrap_or(chrono::Duration::MAX);
    let cutoff = started
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut report = GcReport {
        dry_run: settings.dry_run,
        ..GcReport::default()
    };
    let verb = if settings.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let held: HashSet<Digest> = repos.held_since(cutoff).await?.into_iter().collect();
    let mut live: HashSet<Digest> = HashSet::new();
    let repositories = repos.repositories().await?;
    log(format!(
        "marking {} repositories (grace period {}s, untagged manifests {}{})",
        repositories.len(),
        settings.grace.as_secs(),
        if settings.delete_untagged {
            "removed"
        } else {
            "kept"
        },
        if settings.dry_run { ", dry run" } else { "" },
    ));
    for repo in &repositories {
        if cancel.is_cancelled() {
            return Err(GcError::Canceled);
        }
        let content = repos.content(&repo.name).await?;
        let marked = mark::mark(&content, &held, settings.delete_untagged);
        live.extend(marked.live);
        if marked.manifests.is_empty() && marked.links.is_empty() {
            continue;
        }
        let (gone_manifests, gone_links) = if settings.dry_run {
            (marked.manifests.clone(), marked.links.clone())
        } else {
            repos
                .remove_unreferenced(&repo.name, &marked.manifests, &marked.links, cutoff)
                .await?
        };
        // What the store refused to remove (referenced or held again
        // since the mark) stays, with what it references.
        let gone_m: HashSet<&Digest> = gone_manifests.iter().collect();
        let planned: HashSet<&Digest> = marked.manifests.iter().collect();
        for m in content
            .manifests
            .iter()
            .filter(|m| planned.contains(&m.digest) && !gone_m.contains(&m.digest))
        {
            live.insert(m.digest.clone());
            live.extend(m.blobs.iter().cloned());
            live.extend(m.children.iter().cloned());
        }
        let gone_l: HashSet<&Digest> = gone_links.iter().collect();
        live.extend(marked.links.iter().filter(|d| !gone_l.contains(d)).cloned());
        if !gone_manifests.is_empty() || !gone_links.is_empty() {
            log(format!(
                "{}: {verb} {} untagged manifests and {} unreferenced blob links",
                repo.name,
                gone_manifests.len(),
                gone_links.len()
            ));
        }
        report.manifests_removed += gone_manifests.len() as u64;
        report.links_removed += gone_links.len() as u64;
    }

    let mut listing = blobs.list();
    let mut batch: Vec<(Digest, u64)> = Vec::new();
    while let Some(entry) = listing.next().await {
        let entry = entry?;
        if live.contains(&entry.digest) || held.contains(&entry.digest) || entry.modified >= cutoff
        {
            report.blobs_kept += 1;
            report.bytes_kept += entry.size;
            continue;
        }
        batch.push((entry.digest, entry.size));
        if batch.len() >= SWEEP_BATCH {
            sweep(
                blobs,
                repos,
                settings,
                cutoff,
                &mut batch,
                &mut report,
                cancel,
            )
            .await?;
        }
    }
    sweep(
        blobs,
        repos,
        settings,
        cutoff,
        &mut batch,
        &mut report,
        cancel,
    )
    .await?;
    if !settings.dry_run {
        // Holds older than the grace period (and a day) guard nothing.
        let _ = repos
            .prune_holds(cutoff - chrono::Duration::days(1))
            .await?;
    }
    log(format!(
        "{verb} {} blobs ({} bytes); kept {} blobs ({} bytes){}",
        report.blobs_removed,
        report.bytes_freed,
        report.blobs_kept,
        report.bytes_kept,
        if report.blobs_rescued > 0 {
            format!(
                "; {} linked again while collecting, kept",
                report.blobs_rescued
            )
        } else {
            String::new()
        }
    ));
    Ok(report)
}

/// Claims, deletes and releases `batch` (a dry run only counts it).
async fn sweep(
    blobs: &dyn BlobStore,
    repos: &dyn RepositoryStore,
    settings: &GcSettings,
    cutoff: chrono::DateTime<chrono::Utc>,
    batch: &mut Vec<(Digest, u64)>,
    report: &mut GcReport,
    cancel: &CancellationToken,
) -> Result<(), GcError> {
    if batch.is_empty() {
        return Ok(());
    }
    if cancel.is_cancelled() {
        return Err(GcError::Canceled);
    }
    let candidates = std::mem::take(batch);
    if settings.dry_run {
        for (_, size) in &candidates {
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        return Ok(());
    }
    let sizes: HashMap<Digest, u64> = candidates.iter().cloned().collect();
    let digests: Vec<Digest> = candidates.into_iter().map(|(d, _)| d).collect();
    let claimed_at = Instant::now();
    let claimed = repos
        .claim_unreferenced(&digests, cutoff, crate::job::now())
        .await?;
    let claimed_set: HashSet<&Digest> = claimed.iter().collect();
    for d in digests.iter().filter(|d| !claimed_set.contains(d)) {
        report.blobs_rescued += 1;
        report.blobs_kept += 1;
        report.bytes_kept += sizes[d];
    }
    let mut result = Ok(());
    for d in &claimed {
        // A writer ignores a claim older than CLAIM_TTL: never delete
        // under one that old.
        if claimed_at.elapsed() > CLAIM_TTL / 2 {
            report.blobs_kept += 1;
            report.bytes_kept += sizes[d];
            continue;
        }
        if let Err(e) = blobs.delete(d).await {
            result = Err(e.into());
            break;
        }
        report.blobs_removed += 1;
        report.bytes_freed += sizes[d];
    }
    repos.release_claims(&claimed).await?;
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::reference::RepositoryName;
    use crate::store::{
        FsBlobStore, FsOptions, ManifestRecord, NewRepository, SqliteStore, TagRecord, Visibility,
    };

    struct Fixture {
        _dir: tempfile::TempDir,
        blobs: Arc<dyn BlobStore>,
        repos: Arc<SqliteStore>,
        repo: RepositoryName,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repos = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let blobs: Arc<dyn BlobStore> = Arc::new(HoldingBlobStore::new(
            Arc::new(FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap()),
            repos.clone(),
        ));
        let repo = RepositoryName::parse("team/app").unwrap();
        repos
            .create_repository(&NewRepository {
                name: repo.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            blobs,
            repos,
            repo,
        }
    }

    /// Stores an image of `layers` (each its own bytes) tagged `tag`;
    /// returns the manifest digest and every digest stored.
    async fn image(f: &Fixture, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<Digest>) {
        let mut stored = Vec::new();
        for l in layers {
            let d = Digest::of(l);
            f.blobs.put(Bytes::copy_from_slice(l), &d).await.unwrap();
            stored.push(d);
        }
        let names: Vec<String> = stored.iter().map(|d| format!("\"{d}\"")).collect();
        let bytes = format!("{{\"tag\":\"{tag}\",\"layers\":[{}]}}", names.join(","));
        let digest = Digest::of(bytes.as_bytes());
        f.blobs
            .put(Bytes::from(bytes.clone()), &digest)
            .await
            .unwrap();
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: bytes.len() as u64,
            blobs: stored.clone(),
            children: vec![],
            subject: None,
            artifact_type: None,
        };
        let tags = [TagRecord {
            name: tag.into(),
            digest: digest.clone(),
            media_type: record.media_type.clone(),
            size: record.size,
            mirrored: None,
            updated_at: crate::job::now(),
        }];
        f.repos.publish(&f.repo, &[record], &tags).await.unwrap();
        stored.push(digest.clone());
        (digest, stored)
    }

    async fn run(f: &Fixture, settings: GcSettings) -> GcReport {
        collect(
            f.blobs.as_ref(),
            f.repos.as_ref(),
            &settings,
            &CancellationToken::new(),
            &|_| {},
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_moved_tag_frees_its_old_layers_after_the_grace_period_only() {
        let f = fixture().await;
        let (_, shared_and_old) = image(&f, "v1", &[b"shared", b"old layer"]).await;
        let (_, _) = image(&f, "v1", &[b"shared", b"new layer"]).await;
        let old_layer = &shared_and_old[1];
        let old_manifest = &shared_and_old[2];
        let short = GcSettings {
            grace: MIN_GRACE,
            ..GcSettings::default()
        };
        // Within the grace period nothing goes.
        let r = run(&f, short.clone()).await;
        assert_eq!((r.blobs_removed, r.manifests_removed), (0, 0), "{r:?}");
        tokio::time::sleep(MIN_GRACE + Duration::from_millis(200)).await;

        // Untagged manifests are kept by default: the old image stays whole.
        let r = run(&f, short.clone()).await;
        assert_eq!(r.blobs_removed, 0, "{r:?}");
        assert!(f.blobs.stat(old_layer).await.unwrap().is_some());

        let deleting = GcSettings {
            delete_untagged: true,
            ..short.clone()
        };
        let dry = run(
            &f,
            GcSettings {
                dry_run: true,
                ..deleting.clone()
            },
        )
        .await;
        let old_bytes =
            b"old layer".len() as u64 + f.blobs.stat(old_manifest).await.unwrap().unwrap();
        assert_eq!(
            (dry.manifests_removed, dry.blobs_removed, dry.bytes_freed),
            (1, 2, old_bytes),
            "{dry:?}"
        );
        assert!(
            f.blobs.stat(old_layer).await.unwrap().is_some(),
            "a dry run deleted"
        );

        let real = run(&f, deleting.clone()).await;
        assert_eq!(
            (real.manifests_removed, real.blobs_removed, real.bytes_freed),
            (1, 2, old_bytes),
            "{real:?}"
        );
        assert!(f.blobs.stat(old_layer).await.unwrap().is_none());
        assert!(f.blobs.stat(old_manifest).await.unwrap().is_none());
        assert!(
            f.blobs
                .stat(&Digest::of(b"shared"))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(real.blobs_kept, 3, "shared, new layer, new manifest");
        let again = run(&f, deleting).await;
        assert_eq!((again.blobs_removed, again.manifests_removed), (0, 0));
    }

    #[tokio::test]
    async fn a_deleted_repository_goes_at_the_next_collection() {
        let f = fixture().await;
        let (_, stored) = image(&f, "v1", &[b"only here"]).await;
        assert!(f.repos.delete_repository(&f.repo).await.unwrap());
        tokio::time::sleep(MIN_GRACE + Duration::from_millis(200)).await;
        let r = run(
            &f,
            GcSettings {
                grace: MIN_GRACE,
                ..GcSettings::default()
            },
        )
        .await;
        assert_eq!(r.blobs_removed, 2, "{r:?}");
        for d in &stored {
            assert!(f.blobs.stat(d).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_hold_waits_for_a_claim_to_be_released() {
        let f = fixture().await;
        let d = Digest::of(b"being deleted");
        let later = crate::job::now() + chrono::Duration::hours(1);
        let claimed = f
            .repos
            .claim_unreferenced(std::slice::from_ref(&d), later, crate::job::now())
            .await
            .unwrap();
        assert_eq!(claimed, vec![d.clone()]);
        let repos = f.repos.clone();
        let d2 = d.clone();
        let waiting = tokio::spawn(async move { hold(repos.as_ref(), &[d2]).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a hold went past a live claim");
        f.repos
            .release_claims(std::slice::from_ref(&d))
            .await
            .unwrap();
        waiting.await.unwrap().unwrap();
        // And now held: a collector's claim is refused.
        let claimed = f
            .repos
            .claim_unreferenced(
                &[d],
                crate::job::now() - chrono::Duration::hours(1),
                crate::job::now(),
            )
            .await
            .unwrap();
        assert!(claimed.is_empty());
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let base = GcSettings::default();
        let p = |k: &str, v: &str| [(k.to_string(), v.to_string())].into();
        let s = base
            .with_parameters(
                &[
                    (PARAM_DRY_RUN.to_string(), "true".to_string()),
                    (PARAM_GRACE_PERIOD.to_string(), "90s".to_string()),
                    (PARAM_DELETE_UNTAGGED.to_string(), "true".to_string()),
                ]
                .into(),
            )
            .unwrap();
        assert_eq!(
            s,
            GcSettings {
                grace: Duration::from_secs(90),
                delete_untagged: true,
                dry_run: true
            }
        );
        assert_eq!(
            base.with_parameters(&p(PARAM_DRY_RUN, "yes"))
                .unwrap_err()
                .field,
            PARAM_DRY_RUN
        );
        assert_eq!(
            base.with_parameters(&p(PARAM_GRACE_PERIOD, "soon"))
                .unwrap_err()
                .field,
            PARAM_GRACE_PERIOD
        );
        assert_eq!(
            base.with_parameters(&p("policyID", "x")).unwrap_err().field,
            "parameters"
        );
    }
}
