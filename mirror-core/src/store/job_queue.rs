//! [`JobStore`]: the job queue. Shaped as a lease-based queue (claim,
//! heartbeat, finish, recover stale) so that a shared database lets several
//! server replicas take jobs from one queue: one claim has one winner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::job::{Job, JobFilter};

/// Persistent jobs.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job.
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError>;

    /// One job, or `None`.
    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;

    /// Jobs matching `filter`, most recently scheduled first.
    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    /// Atomically moves the oldest due waiting job (or the one named by
    /// `job_id`) to `running` under `worker_id`. `None` if there is none.
    ///
    /// With `per_namespace`, a job that polls one policy is skipped while
    /// that many jobs polling policies of the same local namespace are
    /// running (across every worker on the store), so one namespace cannot
    /// hold every worker slot; jobs for every policy are not limited.
    async fn claim_job(
        &self,
        worker_id: &str,
        job_id: Option<&str>,
        now: DateTime<Utc>,
        per_namespace: Option<usize>,
    ) -> Result<Option<Job>, StoreError>;

    /// Saves a job's status and fields (the caller applied `job::transition`).
    async fn update_job(&self, job: &Job) -> Result<(), StoreError>;

    /// Writes the end of `job` (its final status, failure, times) only if
    /// the stored job is still `running` under `worker_id`: a worker that
    /// was only slow, whose job was meanwhile recovered (requeued, or run
    /// again elsewhere), cannot overwrite what happened since. Returns
    /// whether it was written.
    async fn finish_job(&self, job: &Job, worker_id: &str) -> Result<bool, StoreError>;

    /// Writes `job`, the recovery of a lost job (requeued or errored by the
    /// caller), only if the stored job is still `running` under
    /// `found_worker` with the heartbeat `found_heartbeat`, as
    /// [`JobStore::stale_jobs`] returned it: one compare-and-set, so of
    /// engines recovering one job at once exactly one wins, and a job
    /// claimed or heart-beated since it was found stale is left alone.
    /// Returns whether it was written.
    async fn replace_lost_job(
        &self,
        job: &Job,
        found_worker: &str,
        found_heartbeat: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Refreshes the heartbeat of a running job; returns the stored job so the
    /// worker sees cancel requests.
    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>, StoreError>;

    /// Marks a cancel request; a waiting job is canceled at once. Returns the job.
    async fn request_cancel(&self, id: &str) -> Result<Option<Job>, StoreError>;

    /// Deletes a job and its log. Returns whether it existed.
    async fn delete_job(&self, id: &str) -> Result<bool, StoreError>;

    /// Running jobs whose last heartbeat is older than `before`.
    async fn stale_jobs(&self, before: DateTime<Utc>) -> Result<Vec<Job>, StoreError>;
}
