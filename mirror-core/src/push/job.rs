//! The `push_mirror_tag` action: one local tag, through one push policy,
//! to the remote.
//!
//! The tag's manifest tree is read from the local stores (an index, its
//! children the repository holds, their blobs); each blob the remote lacks
//! (`HEAD` first) is uploaded, each manifest is `PUT` after its blobs and
//! an index after its children (by digest), and the tag last, under the
//! name the policy's template gives. The remote must answer each manifest
//! with our digest. The policy's `lastStatus` records the outcome, and a
//! success emits `PUSH_MIRRORING`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{PARAM_PUSH_POLICY_ID, PARAM_TAG};
use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::events::EventKind;
use crate::job::{Job, JobFailure};
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::mirror::Mirror;
use crate::policy::MirroringStatus;
use crate::poll::LogSink;
use crate::progress::Progress;
use crate::push_policy::PushMirroringPolicy;
use crate::reference::RepositoryName;
use crate::remote::RemoteWriter;
use crate::store::ManifestRecord;

/// What one push sent.
#[derive(Debug, Default)]
struct PushReport {
    blobs_sent: u64,
    blobs_skipped: u64,
    bytes_sent: u64,
    manifests: u64,
}

/// Manifests in push order: children before their index.
async fn tree(
    mirror: &Mirror,
    repo: &RepositoryName,
    top: &Digest,
    log: &dyn LogSink,
) -> Result<Vec<ManifestRecord>, JobFailure> {
    let repos = &mirror.inner.stores.repos;
    let Some(record) = repos.manifest(repo, top).await? else {
        return Err(JobFailure::new(
            ErrorKind::NotFound,
            format!("manifest {top} is no longer in {repo}"),
        ));
    };
    let mut out = Vec::new();
    for child in &record.children {
        match repos.manifest(repo, child).await? {
            // One level: an index's children are images.
            Some(c) => out.push(c),
            None => log.line(format!(
                "child {child} of index {top} is not held by {repo} (a sparse index): not pushed; the remote may refuse the index"
            )),
        }
    }
    out.push(record);
    Ok(out)
}

impl Mirror {
    /// Runs a `push_mirror_tag` job.
    pub(crate) async fn push_mirror_tag(
        &self,
        job: &Job,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        log: &dyn LogSink,
    ) -> Result<(), JobFailure> {
        let param = |name: &str| {
            job.parameters.get(name).cloned().ok_or_else(|| {
                JobFailure::new(ErrorKind::Invalid, format!("parameter {name} is missing"))
            })
        };
        let (id, tag) = (param(PARAM_PUSH_POLICY_ID)?, param(PARAM_TAG)?);
        let store = &self.inner.stores.push_policies;
        let Some(policy) = store.push_policy(&id).await? else {
            return Err(JobFailure::new(
                ErrorKind::NotFound,
                format!("push mirroring policy {id} no longer exists"),
            ));
        };
        let result = self.push_tag(&policy, &tag, cancel, progress, log).await;
        let now = crate::job::now();
        let status = match &result {
            Ok((remote_tag, _, r)) => MirroringStatus {
                code: "SUCCESS".into(),
                detail: format!(
                    "pushed {tag} as {remote_tag}: {} blobs sent, {} already there",
                    r.blobs_sent, r.blobs_skipped
                ),
                timestamp: now,
            },
            Err(e) if cancel.is_cancelled() => MirroringStatus {
                code: "CANCELED".into(),
                detail: e.message.clone(),
                timestamp: now,
            },
            Err(e) => MirroringStatus {
                code: "FAILED".into(),
                detail: e.message.clone(),
                timestamp: now,
            },
        };
        let mirrored_at = result.is_ok().then_some(now);
        if let Err(e) = store.record_push_status(&id, &status, mirrored_at).await {
            log.line(format!("cannot record the status of push policy {id}: {e}"));
        }
        let (remote_tag, digest, _) = result?;
        self.emit(
            EventKind::PushMirroring {
                policy_id: policy.id.clone(),
                tag,
                digest,
                remote_repository: policy.remote_name(),
                remote_tag,
            },
            &policy.local_repository,
            None,
        );
        Ok(())
    }

    /// Pushes `tag` through `policy`: the remote tag, the manifest pushed,
    /// and what was sent.
    async fn push_tag(
        &self,
        policy: &PushMirroringPolicy,
        tag: &str,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        log: &dyn LogSink,
    ) -> Result<(String, Digest, PushReport), JobFailure> {
        let stores = &self.inner.stores;
        let local = &policy.local_repository;
        let remote_repo = &policy.remote.repository;
        let target = policy.remote_name();
        let Some(record) = stores.repos.tag(local, tag).await? else {
            return Err(JobFailure::new(
                ErrorKind::NotFound,
                format!("{local} has no tag {tag:?} (deleted since the push was queued?)"),
            ));
        };
        let remote_tag = policy
            .tag_template
            .tag_for(tag, &record.digest, crate::job::now())
            .map_err(|e| {
                JobFailure::new(
                    ErrorKind::Invalid,
                    format!(
                        "tagTemplate {:?} for tag {tag:?}: {e}",
                        policy.tag_template.as_str()
                    ),
                )
            })?;
        log.line(format!(
            "push policy {}: {local}:{tag} ({}) -> {target}:{remote_tag}",
            policy.id, record.digest
        ));
        let writer: Arc<dyn RemoteWriter> = self
            .inner
            .connector
            .connect_writer(&policy.remote, false)
            .map_err(|e| JobFailure::new(e.kind(), format!("connecting to {target}: {e}")))?;
        let manifests = tree(self, local, &record.digest, log).await?;
        let mut report = PushReport::default();
        let mut seen: HashSet<Digest> = HashSet::new();
        for m in &manifests {
            for blob in &m.blobs {
                if !seen.insert(blob.clone()) {
                    continue;
                }
                if cancel.is_cancelled() {
                    return Err(JobFailure::canceled());
                }
                let failed = |e: crate::remote::RemoteError| {
                    JobFailure::new(
                        e.kind(),
                        format!(
                            "pushing blob {blob} (of manifest {}) to {target}: {e}",
                            m.digest
                        ),
                    )
                };
                if writer
                    .blob_exists(remote_repo, blob)
                    .await
                    .map_err(failed)?
                {
                    report.blobs_skipped += 1;
                    progress.blobs_reused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let size = stores.blobs.stat(blob).await?.ok_or_else(|| {
                    JobFailure::new(
                        ErrorKind::NotFound,
                        format!(
                            "blob {blob} of manifest {} is missing from the local store",
                            m.digest
                        ),
                    )
                })?;
                let upload = tokio::select! {
                    r = writer.push_blob(remote_repo, blob, size, stores.blobs.as_ref()) => r.map_err(failed)?,
                    _ = cancel.cancelled() => return Err(JobFailure::canceled()),
                };
                report.blobs_sent += 1;
                report.bytes_sent += upload.bytes_sent;
                progress.blobs_copied.fetch_add(1, Ordering::Relaxed);
                progress
                    .bytes_copied
                    .fetch_add(upload.bytes_sent, Ordering::Relaxed);
            }
            let is_top = m.digest == record.digest;
            let reference = if is_top {
                remote_tag.clone()
            } else {
                m.digest.to_string()
            };
            let bytes = stores
                .blobs
                .read_small(&m.digest, MAX_MANIFEST_SIZE)
                .await?;
            let pushed = writer
                .put_manifest(remote_repo, &reference, bytes, &m.media_type)
                .await
                .map_err(|e| {
                    JobFailure::new(
                        e.kind(),
                        format!("pushing manifest {} as {target}:{reference}: {e}", m.digest),
                    )
                })?;
            report.manifests += 1;
            if pushed != m.digest {
                return Err(JobFailure::new(
                    ErrorKind::DigestMismatch,
                    format!("{target}:{reference} is {pushed}, not {}", m.digest),
                ));
            }
        }
        progress.tags_copied.fetch_add(1, Ordering::Relaxed);
        log.line(format!(
            "pushed tag {local}:{tag} to {target}:{remote_tag}: {} blobs sent, {} skipped (already there), {} bytes, {} manifests",
            report.blobs_sent, report.blobs_skipped, report.bytes_sent, report.manifests
        ));
        Ok((remote_tag, record.digest, report))
    }
}
