//! The streaming copy: blobs and manifest trees from a remote into the
//! blob store, verified.
//!
//! [`blob::copy_blob`] streams one blob through the store's hashing writer,
//! resuming with `Range` after a dropped connection. [`image::copy_tree`]
//! walks a manifest (and an index's children), copies what the store lacks
//! with bounded concurrency, and returns the manifest records to publish.
//! Nothing here touches tags: publishing is the poll's last step.

pub mod blob;
pub mod image;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::manifest::ManifestError;
use crate::remote::{RemoteError, RetryPolicy};
use crate::store::{BlobStore, StoreError};

/// Errors of a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The remote failed.
    #[error("{context}: {source}")]
    Remote {
        /// What was being copied.
        context: String,
        /// The remote error.
        #[source]
        source: RemoteError,
    },
    /// Bytes received do not match the digest or size in the manifest.
    #[error(
        "{what}: content does not match its descriptor: expected {expected}, got {actual}; nothing was stored"
    )]
    DigestMismatch {
        /// What was copied.
        what: String,
        /// Expected digest (or size).
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// A manifest cannot be mirrored.
    #[error("manifest {digest}: {source}")]
    Manifest {
        /// Its digest.
        digest: Digest,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// Local storage failed.
    #[error("storing {what}: {source}")]
    Store {
        /// What was being stored.
        what: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// The copy was canceled.
    #[error("canceled")]
    Canceled,
}

impl CopyError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CopyError::Remote { source, .. } => source.kind(),
            CopyError::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            CopyError::Manifest { .. } => ErrorKind::Invalid,
            CopyError::Store { .. } => ErrorKind::Internal,
            CopyError::Canceled => ErrorKind::Canceled,
        }
    }
}

/// Counters of a running copy, readable at any time without blocking it.
#[derive(Debug, Default)]
pub struct Progress {
    /// Blob and manifest bytes written to the store.
    pub bytes_copied: AtomicU64,
    /// Blobs copied.
    pub blobs_copied: AtomicU64,
    /// Blobs already in the store (not fetched).
    pub blobs_reused: AtomicU64,
    /// Tags published.
    pub tags_copied: AtomicU64,
    /// Tags the current poll will copy.
    pub tags_planned: AtomicU64,
    /// Transfers resumed or retried after a failure.
    pub retries: AtomicU64,
}

/// A point-in-time copy of [`Progress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressSnapshot {
    /// Bytes written.
    pub bytes_copied: u64,
    /// Blobs copied.
    pub blobs_copied: u64,
    /// Blobs reused.
    pub blobs_reused: u64,
    /// Tags published.
    pub tags_copied: u64,
    /// Tags planned.
    pub tags_planned: u64,
    /// Retries.
    pub retries: u64,
}

impl Progress {
    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProgressSnapshot {
            bytes_copied: g(&self.bytes_copied),
            blobs_copied: g(&self.blobs_copied),
            blobs_reused: g(&self.blobs_reused),
            tags_copied: g(&self.tags_copied),
            tags_planned: g(&self.tags_planned),
            retries: g(&self.retries),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a copy needs besides the remote: the store, limits, cancellation
/// and counters.
#[derive(Clone)]
pub struct CopyContext {
    /// Where blobs and manifests go.
    pub blobs: Arc<dyn BlobStore>,
    /// Bounds concurrent blob transfers (shared by one poll).
    pub transfers: Arc<Semaphore>,
    /// Retries of a blob transfer that failed mid-way.
    pub retry: RetryPolicy,
    /// Stops the copy between blobs and inside a blob.
    pub cancel: CancellationToken,
    /// Counters.
    pub progress: Arc<Progress>,
    /// Which stored digests may be linked without downloading them.
    pub reuse: Arc<crate::access::ReuseGate>,
}
