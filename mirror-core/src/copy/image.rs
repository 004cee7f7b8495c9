//! Copying a manifest tree: an index's children, each image's blobs, then
//! the manifests themselves (children before parents).

use bytes::Bytes;
use futures_util::StreamExt;

use super::blob::copy_blob;
use super::{CopyContext, CopyError, CopyStats, Progress};
use crate::digest::Digest;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, Manifest, is_manifest_media_type};
use crate::reference::RepositoryName;
use crate::remote::RemoteRegistry;
use crate::selection::{ContentSelection, UPSTREAM_DIGEST_ANNOTATION};
use crate::store::ManifestRecord;

/// How deep an index may nest (an index of indexes of images is 2).
const MAX_DEPTH: usize = 4;
/// Blobs of one image started at once (the transfer semaphore still bounds
/// how many actually stream).
const BLOB_FANOUT: usize = 16;

/// What [`copy_tree`] copied.
#[derive(Debug, Clone)]
pub struct CopiedTree {
    /// The manifest records to publish, children first; the last is the
    /// top manifest.
    pub records: Vec<ManifestRecord>,
    /// The top manifest's local digest: the remote's, unless the index
    /// was rewritten to the policy's platforms.
    pub digest: Digest,
    /// What this copy downloaded and reused.
    pub stats: CopyStats,
}

impl CopiedTree {
    /// The top manifest's record.
    pub fn top(&self) -> &ManifestRecord {
        self.records
            .last()
            .expect("a copied tree has its top manifest")
    }
}

/// Copies the manifest `digest` of `repo` and everything it references
/// that `selection` keeps (an index's named platforms; see
/// [`crate::selection`]).
///
/// The manifest bytes are stored exactly as served, so digests are
/// preserved, except a top index that `selection` rewrites. A manifest the
/// store already holds is read locally instead of fetched when `ctx.reuse`
/// allows linking it.
pub async fn copy_tree(
    ctx: &CopyContext,
    remote: &dyn RemoteRegistry,
    repo: &RepositoryName,
    digest: &Digest,
    selection: &ContentSelection,
) -> Result<CopiedTree, CopyError> {
    let mut records = Vec::new();
    let mut stats = CopyStats::default();
    let top = Node {
        digest,
        media_type_hint: None,
        depth: 0,
    };
    copy_manifest(ctx, remote, repo, top, selection, &mut records, &mut stats).await?;
    let digest = records
        .last()
        .expect("copy_manifest records the top manifest")
        .digest
        .clone();
    Ok(CopiedTree {
        records,
        digest,
        stats,
    })
}

/// A manifest to copy: its digest, the media type its parent gave, how
/// deep it sits.
#[derive(Clone, Copy)]
struct Node<'a> {
    digest: &'a Digest,
    media_type_hint: Option<&'a str>,
    depth: usize,
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
    node: Node<'a>,
    selection: &'a ContentSelection,
    records: &'a mut Vec<ManifestRecord>,
    stats: &'a mut CopyStats,
) -> futures_util::future::BoxFuture<'a, Result<(), CopyError>> {
    Box::pin(async move {
        let Node {
            digest,
            media_type_hint,
            depth,
        } = node;
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
        // Platforms are chosen in the top index only; a nested index (rare)
        // is copied whole.
        let all = manifest.children();
        let kept: Vec<&Descriptor> = if depth == 0 {
            all.iter()
                .filter(|c| selection.keeps_child(c, all))
                .collect()
        } else {
            all.iter().collect()
        };
        if !all.is_empty() && kept.is_empty() {
            return Err(no_platform_matches(digest, all, selection));
        }
        for child in kept.iter().copied() {
            if !is_manifest_media_type(&child.media_type) {
                // Not a manifest (an artifact blob listed in an index): copy opaque.
                stats.blob(copy_blob(ctx, remote, repo, child).await?);
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
            let node = Node {
                digest: &child.digest,
                media_type_hint: Some(&child.media_type),
                depth: depth + 1,
            };
            copy_manifest(ctx, remote, repo, node, selection, records, stats).await?;
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
                Some(r) => stats.blob(r?),
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
            stats.bytes += len;
            ctx.reuse.verified(digest);
        }
        let mut record =
            ManifestRecord::from_manifest(digest.clone(), bytes.len() as u64, &manifest);
        if kept.len() < all.len() {
            // Only the kept children are linked: the repository holds what
            // it serves, and a GET of another child is a 404.
            record.children = kept.iter().map(|c| c.digest.clone()).collect();
            if selection.rewrites_index() {
                record = store_rewritten_index(ctx, digest, &bytes, &kept).await?;
                stats.bytes += record.size;
            }
        }
        records.push(record);
        Ok(())
    })
}

/// The error of an index none of whose children the policy's platforms
/// name: which platforms were asked for, which the index has.
fn no_platform_matches(
    digest: &Digest,
    children: &[Descriptor],
    selection: &ContentSelection,
) -> CopyError {
    let mut offered: Vec<String> = children
        .iter()
        .filter_map(|c| c.platform.as_ref().map(ToString::to_string))
        .collect();
    offered.sort();
    offered.dedup();
    CopyError::Manifest {
        digest: digest.clone(),
        source: crate::manifest::ManifestError::Invalid {
            reason: format!(
                "the index has no child for the policy's platforms {}; it has {}",
                selection.platform_names().join(", "),
                if offered.is_empty() {
                    "none named".to_string()
                } else {
                    offered.join(", ")
                }
            ),
        },
    }
}

/// Stores a new index: `upstream`'s JSON with only the `kept` children
/// and the upstream digest in its annotations ([`UPSTREAM_DIGEST_ANNOTATION`]);
/// every other field as the upstream wrote it.
async fn store_rewritten_index(
    ctx: &CopyContext,
    upstream: &Digest,
    bytes: &[u8],
    kept: &[&Descriptor],
) -> Result<ManifestRecord, CopyError> {
    let invalid = |reason: String| CopyError::Manifest {
        digest: upstream.clone(),
        source: crate::manifest::ManifestError::Invalid { reason },
    };
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let keep: std::collections::HashSet<String> =
        kept.iter().map(|c| c.digest.to_string()).collect();
    if let Some(serde_json::Value::Array(children)) = json.get_mut("manifests") {
        children.retain(|c| {
            c.get("digest")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|d| keep.contains(d))
        });
    }
    let annotations = json
        .entry("annotations")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(a) = annotations {
        a.insert(
            UPSTREAM_DIGEST_ANNOTATION.into(),
            serde_json::Value::String(upstream.to_string()),
        );
    }
    let rewritten = Bytes::from(serde_json::to_vec(&json).map_err(|e| invalid(e.to_string()))?);
    let manifest = Manifest::parse(&rewritten, None).map_err(|source| CopyError::Manifest {
        digest: upstream.clone(),
        source,
    })?;
    let digest = Digest::of(&rewritten);
    let size = rewritten.len() as u64;
    ctx.blobs
        .put(rewritten, &digest)
        .await
        .map_err(|source| CopyError::Store {
            what: format!("index {digest} (rewritten from {upstream})"),
            source,
        })?;
    Progress::add(&ctx.progress.bytes_copied, size);
    ctx.reuse.verified(&digest);
    Ok(ManifestRecord::from_manifest(digest, size, &manifest))
}
