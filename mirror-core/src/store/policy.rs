//! [`PolicyStore`]: poll mirroring policies, their baselines, jobs and logs.
//!
//! The job methods are shaped as a lease-based queue (claim, heartbeat,
//! finish, recover stale) so that a shared database backend can let several
//! server replicas take jobs from one queue.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::digest::Digest;
use crate::job::{Job, JobFilter, LogLine};
use crate::policy::{MirroringStatus, PollMirroringPolicy};
use crate::reference::RepositoryName;

/// Persistent policies and jobs.
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    /// Stores a new policy (with its secrets).
    async fn insert_policy(&self, policy: &PollMirroringPolicy) -> Result<(), StoreError>;

    /// One policy with its secrets, or `None`.
    async fn policy(&self, id: &str) -> Result<Option<PollMirroringPolicy>, StoreError>;

    /// Policies, of one local repository or all, oldest first.
    async fn policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PollMirroringPolicy>, StoreError>;

    /// Replaces a policy's fields. Returns whether it existed.
    async fn update_policy(&self, policy: &PollMirroringPolicy) -> Result<bool, StoreError>;

    /// Deletes a policy and its baseline. Returns whether it existed.
    async fn delete_policy(&self, id: &str) -> Result<bool, StoreError>;

    /// Records the outcome of an evaluation; `mirrored_at` is set when
    /// something was copied.
    async fn record_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Replaces the baseline: the remote tags and digests that existed when
    /// a policy was saved without initial evaluation.
    async fn set_baseline(
        &self,
        id: &str,
        tags: &HashMap<String, Digest>,
    ) -> Result<(), StoreError>;

    /// The baseline of a policy (empty if none).
    async fn baseline(&self, id: &str) -> Result<HashMap<String, Digest>, StoreError>;

    /// Takes the lease on a policy for a job until `until`; false if another
    /// job holds an unexpired lease. Two polls of one policy never overlap.
    async fn lease_policy(
        &self,
        policy_id: &str,
        job_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The job holding an unexpired lease on the policy, if any.
    async fn policy_lease_holder(&self, policy_id: &str) -> Result<Option<String>, StoreError>;

    /// Gives up a lease held by `job_id`.
    async fn release_policy(&self, policy_id: &str, job_id: &str) -> Result<(), StoreError>;

    /// Gives up every lease held by `job_id` (its worker was lost).
    async fn release_job_leases(&self, job_id: &str) -> Result<(), StoreError>;

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

    /// Refreshes the heartbeat of a running job; returns the stored job so the
    /// worker sees cancel requests.
    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>, StoreError>;

    /// Marks a cancel request; a waiting job is canceled at once. Returns the job.
    async fn request_cancel(&self, id: &str) -> Result<Option<Job>, StoreError>;

    /// Deletes a job and its log. Returns whether it existed.
    async fn delete_job(&self, id: &str) -> Result<bool, StoreError>;

    /// Running jobs whose last heartbeat is older than `before`.
    async fn stale_jobs(&self, before: DateTime<Utc>) -> Result<Vec<Job>, StoreError>;

    /// Appends lines to a job's log.
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError>;

    /// A job's log lines from `offset`, at most `limit` (0 = all).
    async fn logs(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<LogLine>, StoreError>;
}
