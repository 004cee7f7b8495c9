//! Copying a manifest tree: an index's children, each image's blobs, then
//! the manifests themselves (children before parents).

use bytes::Bytes;
use futures_util::StreamExt;

use super::blob::copy_blob;
use super::{CopyContext, CopyError, Progress};
use crate::digest::Digest;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, Manifest, is_manifest_media_type};
use crate::reference::RepositoryName;
use crate::remote::RemoteRegistry;
use crate::store::ManifestRecord;

/// How deep an index may nest (an index of indexes of images is 2).
const MAX_DEPTH: usize = 4;
/// Blobs of one image started at once (the transfer semaphore still bounds
/// how many actually stream).
const BLOB_FANOUT: usize = 16;

/// Copies the manifest `digest` of `repo` and everything it references.
///
/// Returns the manifest records to publish, children first. The manifest
/// bytes are stored exactly as served, so digests are preserved. A manifest
/// the store already holds is read locally instead of fetched when
/// `ctx.reuse` allows linking it.
pub async fn copy_tree(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<ManifestRecord>, CopyError> {
    let mut records = Vec::new();
    copy_manifest(ctx, remote, repo, digest, None, 0, &mut records).await?;
    Ok(records)
}

async fn fetch_manifest(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    digest: &Digest,
    media_type_hint: Option<&str>,
) -> Result<(Bytes, Option<String>, bool), CopyError> {
    // Stored and linkable by this poll: read it locally. Otherwise (absent,
    // unreadable, or held only where the owner may not read) fetch it, so
    // the remote proves it has these bytes.
    let linkable = ctx
        .reuse
        .may_link(digest)
        .await
        .map_err(|source| CopyError::Store {
            what: format!("manifest {digest}"),
            source,
        })?;
    if linkable && let Ok(bytes) = ctx.blobs.read_small(digest, MAX_MANIFEST_SIZE).await {
        return Ok((bytes, media_type_hint.map(str::to_string), false));
    }
    let reference = digest.to_string();
    let fetched = tokio::select! {
        m = remote.get_manifest(repo, &reference) => m,
        _ = ctx.cancel.cancelled() => return Err(CopyError::Canceled),
    };
    let m = fetched.map_err(|source| CopyError::Remote {
        context: format!("manifest {repo}@{digest}"),
        source,
    })?;
    Ok((m.bytes, m.content_type, true))
}

fn copy_manifest<'a>(
    ctx: &'a CopyContext,
    remote: &'a dyn RemoteRegistry,
    repo: &'a RepositoryName,
    digest: &'a Digest,
    media_type_hint: Option<&'a str>,
    depth: usize,
    records: &'a mut Vec<ManifestRecord>,
) -> futures_util::future::BoxFuture<'a, Result<(), CopyError>> {
    Box::pin(async move {
        if ctx.cancel.is_cancelled() {
            return Err(CopyError::Canceled);
        }
        let (bytes, content_type, fetched) =
            fetch_manifest(ctx, remote, repo, digest, media_type_hint).await?;
        let manifest = Manifest::parse(&bytes, content_type.as_deref()).map_err(|source| {
            CopyError::Manifest {
                digest: digest.clone(),
                source,
            }
        })?;
        for child in manifest.children() {
            if !is_manifest_media_type(&child.media_type) {
                // Not a manifest (an artifact blob listed in an index): copy opaque.
                copy_blob(ctx, remote, repo, child).await?;
                continue;
            }
            if depth + 1 > MAX_DEPTH {
                return Err(CopyError::Manifest {
                    digest: digest.clone(),
                    source: crate::manifest::ManifestError::Invalid {
                        reason: format!("indexes nest deeper than {MAX_DEPTH} levels"),
                    },
                });
            }
            if records.iter().any(|r| r.digest == child.digest) {
                continue;
            }
            copy_manifest(
                ctx,
                remote,
                repo,
                &child.digest,
                Some(&child.media_type),
                depth + 1,
                records,
            )
            .await?;
        }
        // Blobs of one image copy concurrently; the semaphore in the context
        // bounds transfers across the whole poll.
        let mut blobs: Vec<Descriptor> = manifest.blobs().into_iter().cloned().collect();
        blobs.dedup_by(|a, b| a.digest == b.digest);
        let mut transfers = futures_util::stream::FuturesUnordered::new();
        let mut pending = blobs.iter();
        loop {
            while transfers.len() < BLOB_FANOUT {
                match pending.next() {
                    Some(d) => transfers.push(copy_blob(ctx, remote, repo, d)),
                    None => break,
                }
            }
            match transfers.next().await {
                Some(r) => {
                    r?;
                }
                None => break,
            }
        }
        if fetched {
            let len = bytes.len() as u64;
            ctx.blobs
                .put(bytes.clone(), digest)
                .await
                .map_err(|source| CopyError::Store {
                    what: format!("manifest {digest}"),
                    source,
                })?;
            Progress::add(&ctx.progress.bytes_copied, len);
            ctx.reuse.verified(digest);
        }
        records.push(ManifestRecord::from_manifest(
            digest.clone(),
            bytes.len() as u64,
            &manifest,
        ));
        Ok(())
    })
}
