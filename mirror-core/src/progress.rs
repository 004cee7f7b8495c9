//! [`Progress`]: the counters of a running copy or poll, which the job
//! log, `/metrics` and Python's progress callback read while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Milliseconds transfers waited for a bandwidth limit
    /// ([`crate::bandwidth`]).
    pub bandwidth_wait_ms: AtomicU64,
}

/// A point-in-time copy of [`Progress`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JobProgress))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressSnapshot {
    /// Blob and manifest bytes written to the store so far.
    pub bytes_copied: u64,
    /// Blobs fetched from the remote and stored.
    pub blobs_copied: u64,
    /// Blobs already in the store, linked without fetching.
    pub blobs_reused: u64,
    /// Tags published.
    pub tags_copied: u64,
    /// Tags this poll set out to copy.
    pub tags_planned: u64,
    /// Transfers resumed or retried after a failure.
    pub retries: u64,
    /// Milliseconds transfers waited for a bandwidth limit (the server's
    /// or the policy's), summed over concurrent transfers.
    pub bandwidth_wait_ms: u64,
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
            bandwidth_wait_ms: g(&self.bandwidth_wait_ms),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
