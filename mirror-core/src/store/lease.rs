//! [`LeaseStore`]: which job holds which policy, so two polls of one policy
//! never overlap, across every worker (and replica) on the store. A lease
//! expires unless its holder renews it (with the job's heartbeat).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// Policy leases.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
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

    /// Extends every lease `job_id` holds to `until` (the job's heartbeat:
    /// a lease outlives its holder by at most one lease period).
    async fn renew_leases(&self, job_id: &str, until: DateTime<Utc>) -> Result<(), StoreError>;
}
