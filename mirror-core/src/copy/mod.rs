//! The streaming copy: blobs and manifest trees from a remote into the
//! blob store, verified.
//!
//! [`blob::copy_blob`] streams one blob through the store's hashing writer,
//! resuming with `Range` after a dropped connection. [`image::copy_tree`]
//! walks a manifest (and an index's children), copies what the store lacks
//! with bounded concurrency, and returns the manifest records to publish.
//! [`referrers::copy_referrers`] adds what refers to them (signatures,
//! attestations, SBOMs).
//! Nothing here touches tags: publishing is the poll's last step.

pub mod blob;
pub mod image;
pub mod referrers;

use crate::progress::Progress;
use std::sync::Arc;

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

/// What one copy did, counted for it alone (the poll's [`Progress`] adds
/// up every copy running at once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Blobs downloaded.
    pub blobs_copied: u64,
    /// Blobs found stored and linked.
    pub blobs_reused: u64,
    /// Bytes written: blobs and manifests.
    pub bytes: u64,
}

impl CopyStats {
    /// Counts a blob's outcome.
    pub fn blob(&mut self, outcome: blob::BlobOutcome) {
        match outcome {
            blob::BlobOutcome::Reused => self.blobs_reused += 1,
            blob::BlobOutcome::Copied(bytes) => {
                self.blobs_copied += 1;
                self.bytes += bytes;
            }
        }
    }

    /// Adds another copy's counts.
    pub fn add(&mut self, other: CopyStats) {
        self.blobs_copied += other.blobs_copied;
        self.blobs_reused += other.blobs_reused;
        self.bytes += other.bytes;
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
    /// Where a copy holds what it is about to link (garbage collection:
    /// [`crate::gc::hold`]).
    pub repos: Arc<dyn crate::store::RepositoryStore>,
    /// The bandwidth limits blob transfers keep to (none: as fast as the
    /// remote and the store go).
    pub bandwidth: crate::bandwidth::Limits,
}
