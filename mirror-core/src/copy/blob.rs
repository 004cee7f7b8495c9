//! Copying one blob: remote stream -> hashing store writer -> commit.

use futures_util::StreamExt;

use super::{CopyContext, CopyError, Progress};
use crate::error::ErrorKind;
use crate::manifest::Descriptor;
use crate::reference::RepositoryName;
use crate::remote::{RemoteError, RemoteRegistry};
use crate::store::StoreError;

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The store already had it.
    Reused,
    /// It was copied: this many bytes.
    Copied(u64),
}

/// Copies the blob `desc` of `repo` into the store unless it is there and
/// [`crate::access::ReuseGate::may_link`] allows linking it as is.
///
/// Memory is bounded by the store writer's batch: each chunk is handed to
/// the writer before the next is read. A failed or truncated transfer
/// resumes from the bytes already written with a `Range` request (or
/// restarts when the remote ignores ranges), up to `ctx.retry.max_retries`
/// times without progress; answers that stay 429/5xx through the request's
/// own retries end the copy (so the two retry levels do not multiply). The
/// blob is committed only if its SHA-256 and size match `desc`; when they do
/// not, it is downloaded once more from the start (bytes damaged in transit,
/// or a resumed range that did not fit, are not repeated by a fresh
/// download) before the copy fails.
pub async fn copy_blob(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    desc: &Descriptor,
) -> Result<BlobOutcome, CopyError> {
    let what = format!("blob {}", desc.digest);
    let store_err = |source: StoreError| CopyError::Store {
        what: what.clone(),
        source,
    };
    // Held first, so a collector does not delete what this copy finds
    // stored and is about to link (see `crate::gc`; a poll holds each
    // digest once in a while, not once per tag that shares it).
    if ctx.reuse.hold_due(&desc.digest) {
        crate::gc::hold(ctx.repos.as_ref(), std::slice::from_ref(&desc.digest))
            .await
            .map_err(store_err)?;
        ctx.reuse.held(&desc.digest);
    }
    // Stored bytes are reused only where the policy's owner may already
    // read them; otherwise the remote must prove it has them.
    if let Some(size) = ctx.blobs.stat(&desc.digest).await.map_err(store_err)?
        && size == desc.size
        && ctx.reuse.may_link(&desc.digest).await.map_err(store_err)?
    {
        Progress::add(&ctx.progress.blobs_reused, 1);
        return Ok(BlobOutcome::Reused);
    }
    let _permit = tokio::select! {
        p = ctx.transfers.clone().acquire_owned() => p.expect("semaphore never closed"),
        _ = ctx.cancel.cancelled() => return Err(CopyError::Canceled),
    };
    let mut downloads = 0;
    loop {
        downloads += 1;
        let writer = transfer(ctx, remote, repo, desc, &what).await?;
        let written = writer.written();
        let mismatch = match writer.commit(&desc.digest, Some(desc.size)).await {
            Ok(()) => {
                ctx.reuse.verified(&desc.digest);
                Progress::add(&ctx.progress.blobs_copied, 1);
                return Ok(BlobOutcome::Copied(written));
            }
            Err(StoreError::DigestMismatch { expected, actual }) => CopyError::DigestMismatch {
                what: format!("{what} in {repo}"),
                expected: expected.to_string(),
                actual: actual.to_string(),
            },
            Err(StoreError::SizeMismatch {
                expected, actual, ..
            }) => CopyError::DigestMismatch {
                what: format!("{what} in {repo}"),
                expected: format!("{expected} bytes"),
                actual: format!("{actual} bytes"),
            },
            Err(e) => return Err(store_err(e)),
        };
        if downloads >= 2 {
            return Err(mismatch);
        }
        Progress::add(&ctx.progress.retries, 1);
        tracing::warn!(blob = %desc.digest, "downloading again from the start: {mismatch}");
    }
}

/// Downloads the blob into a new store writer, resuming after transient
/// failures; returns the writer holding exactly `desc.size` bytes, not yet
/// committed.
async fn transfer(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    desc: &Descriptor,
    what: &str,
) -> Result<Box<dyn crate::store::BlobWriter>, CopyError> {
    let store_err = |source: StoreError| CopyError::Store {
        what: what.to_string(),
        source,
    };
    let mut writer = ctx.blobs.writer().await.map_err(store_err)?;
    let mut failures = 0u32;
    let mut offset_at_last_failure = 0u64;
    loop {
        if ctx.cancel.is_cancelled() {
            let _ = writer.cancel().await;
            return Err(CopyError::Canceled);
        }
        let offset = writer.written();
        let failure: RemoteError = match remote.get_blob(repo, &desc.digest, offset).await {
            Err(e) => e,
            Ok(body) => {
                if body.offset != offset {
                    // The remote ignored the Range: start over.
                    let _ = writer.cancel().await;
                    writer = ctx.blobs.writer().await.map_err(store_err)?;
                }
                if let Some(total) = body.total
                    && total != desc.size
                {
                    let _ = writer.cancel().await;
                    return Err(CopyError::DigestMismatch {
                        what: format!("{what} in {repo}"),
                        expected: format!("{} bytes", desc.size),
                        actual: format!("{total} bytes announced by the registry"),
                    });
                }
                let mut stream = body.stream;
                let mut error = None;
                loop {
                    let next = tokio::select! {
                        n = stream.next() => n,
                        _ = ctx.cancel.cancelled() => {
                            let _ = writer.cancel().await;
                            return Err(CopyError::Canceled);
                        }
                    };
                    match next {
                        None => break,
                        Some(Ok(chunk)) => {
                            let len = chunk.len() as u64;
                            if writer.written() + len > desc.size {
                                let _ = writer.cancel().await;
                                return Err(CopyError::DigestMismatch {
                                    what: format!("{what} in {repo}"),
                                    expected: format!("{} bytes", desc.size),
                                    actual: "more bytes".into(),
                                });
                            }
                            writer.write(chunk).await.map_err(store_err)?;
                            Progress::add(&ctx.progress.bytes_copied, len);
                            let waited = ctx.bandwidth.spend(len, &ctx.cancel).await;
                            let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                            Progress::add(&ctx.progress.bandwidth_wait_ms, ms);
                        }
                        Some(Err(e)) => {
                            // Stop at the first error: the stream is not fused.
                            error = Some(e);
                            break;
                        }
                    }
                }
                match error {
                    Some(e) => e,
                    None if writer.written() < desc.size => RemoteError::Transfer {
                        url: format!("{what} in {repo}"),
                        reason: format!(
                            "the body ended after {} of {} bytes",
                            writer.written(),
                            desc.size
                        ),
                    },
                    None => break,
                }
            }
        };
        // `Unavailable` means the request already used its own retries
        // (429/5xx with backoff): retrying it here too would multiply them.
        if failure.kind() != ErrorKind::Transient
            || matches!(failure, RemoteError::Unavailable { .. })
        {
            let _ = writer.cancel().await;
            return Err(CopyError::Remote {
                context: format!("{what} in {repo}"),
                source: failure,
            });
        }
        // Progress since the last failure earns a fresh set of retries.
        if writer.written() > offset_at_last_failure {
            failures = 0;
        }
        offset_at_last_failure = writer.written();
        failures += 1;
        if failures > ctx.retry.max_retries {
            let at = writer.written();
            let _ = writer.cancel().await;
            return Err(CopyError::Remote {
                context: format!(
                    "{what} in {repo} (gave up after {failures} attempts at byte {at})"
                ),
                source: failure,
            });
        }
        Progress::add(&ctx.progress.retries, 1);
        tracing::info!(blob = %desc.digest, at = writer.written(), "resuming blob transfer after: {failure}");
        tokio::select! {
            _ = tokio::time::sleep(ctx.retry.delay(failures, None)) => {}
            _ = ctx.cancel.cancelled() => {
                let _ = writer.cancel().await;
                return Err(CopyError::Canceled);
            }
        }
    }
    Ok(writer)
}
