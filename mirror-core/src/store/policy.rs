//! [`PolicyStore`]: poll mirroring policies, with what belongs to each (its
//! last status and its baseline).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::digest::Digest;
use crate::policy::{MirroringStatus, PollMirroringPolicy};
use crate::reference::RepositoryName;

/// Persistent policies.
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
}
