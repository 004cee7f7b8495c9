//! [`PushPolicyStore`]: push mirroring policies, with their last status.
//! A store of its own (not more methods on [`super::PolicyStore`]): one
//! store, one thing held.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::policy::MirroringStatus;
use crate::push_policy::PushMirroringPolicy;
use crate::reference::RepositoryName;

/// Persistent push mirroring policies. Their password and token are
/// sealed at rest, as poll policies' are ([`super::SecretKeys`]).
#[async_trait]
pub trait PushPolicyStore: Send + Sync + 'static {
    /// Stores a new policy (with its secrets).
    async fn insert_push_policy(&self, policy: &PushMirroringPolicy) -> Result<(), StoreError>;

    /// One policy with its secrets, or `None`.
    async fn push_policy(&self, id: &str) -> Result<Option<PushMirroringPolicy>, StoreError>;

    /// Policies, of one local repository or all, oldest first.
    async fn push_policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PushMirroringPolicy>, StoreError>;

    /// Replaces a policy's changeable fields (remote, secrets, enabled,
    /// rules, template, owner). Returns whether it existed.
    async fn update_push_policy(&self, policy: &PushMirroringPolicy) -> Result<bool, StoreError>;

    /// Deletes a policy. Returns whether it existed.
    async fn delete_push_policy(&self, id: &str) -> Result<bool, StoreError>;

    /// Records the outcome of a push; `mirrored_at` is set when it
    /// succeeded.
    async fn record_push_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
}

/// The associated data of a push policy's sealed `field` (never the same
/// as a poll policy's, so a sealed value cannot be moved between them).
pub(crate) fn push_secret_context(policy_id: &str, field: &str) -> String {
    format!("push policy {policy_id} {field}")
}
