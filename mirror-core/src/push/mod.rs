//! Push mirroring: the engine's half that sends a local repository's tags
//! to another registry (DTR's push mirroring policies).
//!
//! - This file: [`Mirror`]'s push policy calls (create with a check of
//!   *write* access, read, update, delete) and the submission of
//!   `push_mirror_tag` jobs.
//! - `job.rs`: the `push_mirror_tag` action: one tag's manifest tree, read
//!   from the local stores, pushed with its blobs (those the remote lacks)
//!   through a [`crate::remote::RemoteWriter`], children before the index,
//!   the tag last, named by the policy's template.
//! - `trigger.rs`: which events submit jobs: a tag pushed to the repository
//!   (`TAG_PUSH`) or mirrored into it by a poll (`POLL_MIRRORING`), for
//!   every enabled push policy of the repository whose rules keep the tag.
//!
//! The policy type and its form are [`crate::push_policy`]'s; storage is
//! [`crate::store::PushPolicyStore`].

mod job;
mod trigger;

use std::collections::BTreeMap;

use crate::job::{Job, JobSubmission};
use crate::mirror::{Mirror, MirrorError};
use crate::push_policy::{PushMirroringPolicy, PushPolicyForm};
use crate::reference::RepositoryName;
use crate::remote::RemoteError;

pub use crate::push_policy::{PARAM_PUSH_POLICY_ID, PARAM_TAG, PUSH_MIRROR_TAG};

impl Mirror {
    /// Checks that `endpoint`'s credentials may push to its repository
    /// (which need not exist yet): an upload is opened and canceled.
    pub async fn check_push_access(
        &self,
        endpoint: &crate::policy::RemoteEndpoint,
    ) -> Result<(), MirrorError> {
        let writer = self.inner.connector.connect_writer(endpoint, true)?;
        writer
            .check_push(&endpoint.repository)
            .await
            .map_err(|e| match e {
                RemoteError::NotFound { host, what } => RemoteError::Denied {
                    host,
                    repository: endpoint.repository.to_string(),
                    reason: format!("{what} not found: the registry would not open an upload"),
                },
                other => other,
            })?;
        Ok(())
    }

    /// Validates `form`, checks that its credentials may push to the
    /// remote repository, and saves a push policy for `local` (created
    /// private if missing), owned by `owner`.
    pub async fn add_push_policy(
        &self,
        local: &RepositoryName,
        form: &PushPolicyForm,
        owner: Option<&str>,
    ) -> Result<PushMirroringPolicy, MirrorError> {
        let policy = form.create(local.clone(), owner)?;
        self.check_push_access(&policy.remote).await?;
        self.ensure_repository(local).await?;
        self.inner
            .stores
            .push_policies
            .insert_push_policy(&policy)
            .await?;
        Ok(policy)
    }

    /// One push policy.
    pub async fn push_policy(&self, id: &str) -> Result<PushMirroringPolicy, MirrorError> {
        self.inner
            .stores
            .push_policies
            .push_policy(id)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("push mirroring policy {id}"),
            })
    }

    /// Push policies of one local repository, or all.
    pub async fn push_policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PushMirroringPolicy>, MirrorError> {
        Ok(self.inner.stores.push_policies.push_policies(local).await?)
    }

    /// Applies the fields `update` gives, by `by`
    /// ([`PushPolicyForm::apply`]); a change of how the remote is reached
    /// is checked for write access before it is saved.
    pub async fn update_push_policy(
        &self,
        id: &str,
        update: &PushPolicyForm,
        by: Option<&str>,
    ) -> Result<PushMirroringPolicy, MirrorError> {
        let current = self.push_policy(id).await?;
        let next = update.apply(&current, by)?;
        if update.changes_remote() {
            self.check_push_access(&next.remote).await?;
        }
        self.inner
            .stores
            .push_policies
            .update_push_policy(&next)
            .await?;
        Ok(next)
    }

    /// Deletes a push policy; what it pushed stays on the remote. Returns
    /// whether it existed.
    pub async fn delete_push_policy(&self, id: &str) -> Result<bool, MirrorError> {
        Ok(self
            .inner
            .stores
            .push_policies
            .delete_push_policy(id)
            .await?)
    }

    /// Queues a `push_mirror_tag` job pushing `tag` through the push
    /// policy `policy_id`.
    pub async fn submit_push(&self, policy_id: &str, tag: &str) -> Result<Job, MirrorError> {
        let submission = JobSubmission {
            action: PUSH_MIRROR_TAG.into(),
            parameters: BTreeMap::from([
                (PARAM_PUSH_POLICY_ID.to_string(), policy_id.to_string()),
                (PARAM_TAG.to_string(), tag.to_string()),
            ]),
            ..JobSubmission::default()
        };
        self.submit_job(submission).await
    }

    /// Queues a push of every current tag of the policy's repository that
    /// its rules keep ("initial evaluation"); the jobs, in tag order.
    pub async fn push_existing_tags(
        &self,
        policy: &PushMirroringPolicy,
    ) -> Result<Vec<Job>, MirrorError> {
        let filter = policy.tag_filter()?;
        let tags: Vec<String> = self
            .inner
            .stores
            .repos
            .tags(&policy.local_repository)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut jobs = Vec::new();
        for tag in filter.apply(&tags) {
            jobs.push(self.submit_push(&policy.id, &tag).await?);
        }
        Ok(jobs)
    }

    /// Checks a `push_mirror_tag` submission: both parameters, nothing
    /// else, and an existing policy.
    pub(crate) async fn validate_push_job(
        &self,
        submission: &JobSubmission,
    ) -> Result<(), MirrorError> {
        let invalid = |reason: String| MirrorError::InvalidJob {
            field: "parameters",
            reason,
        };
        for key in submission.parameters.keys() {
            if key != PARAM_PUSH_POLICY_ID && key != PARAM_TAG {
                return Err(invalid(format!(
                    "unknown parameter {key:?}; {PUSH_MIRROR_TAG} takes {PARAM_PUSH_POLICY_ID} and {PARAM_TAG}"
                )));
            }
        }
        let (Some(id), Some(tag)) = (
            submission.parameters.get(PARAM_PUSH_POLICY_ID),
            submission.parameters.get(PARAM_TAG),
        ) else {
            return Err(invalid(format!(
                "{PUSH_MIRROR_TAG} needs {PARAM_PUSH_POLICY_ID} and {PARAM_TAG}"
            )));
        };
        crate::reference::validate_tag(tag)?;
        self.push_policy(id)
            .await
            .map_err(|_| invalid(format!("no push mirroring policy with id {id:?}")))?;
        Ok(())
    }
}
