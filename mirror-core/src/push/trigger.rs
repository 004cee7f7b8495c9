//! What starts a push: a tag pushed to a repository (`TAG_PUSH`) or
//! mirrored into it by a poll (`POLL_MIRRORING`) queues a
//! `push_mirror_tag` job for each enabled push policy of that repository
//! whose rules keep the tag. The rules are applied to the repository's
//! current tags (so `newest` means what it means in a listing), and the
//! job is submitted on a task of its own: an emit never waits.
//!
//! A process that stops between a tag's commit and this submission loses
//! that push (events are at most once); pushing the tag again, or saving
//! the policy with `initialEvaluation`, sends it.

use crate::events::{Event, EventKind};
use crate::mirror::{Mirror, MirrorError};
use crate::reference::RepositoryName;

impl Mirror {
    /// The engine's own reaction to `event` (called by its sink before
    /// anyone else hears of it): submits the pushes it triggers, on a task.
    pub(crate) fn react_to_event(&self, event: &Event) {
        let tag = match &event.kind {
            EventKind::TagPush { tag, .. } | EventKind::PollMirroring { tag, .. } => tag.clone(),
            _ => return,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(repository = %event.repository, tag, "no async runtime: push mirroring not triggered");
            return;
        };
        let mirror = self.clone();
        let repo = event.repository.clone();
        runtime.spawn(async move {
            if let Err(e) = mirror.trigger_pushes(&repo, &tag).await {
                tracing::error!(repository = %repo, tag, "cannot submit push mirroring jobs: {e}");
            }
        });
    }

    /// Submits a `push_mirror_tag` job for each enabled push policy of
    /// `repo` whose rules keep `tag`; how many.
    async fn trigger_pushes(&self, repo: &RepositoryName, tag: &str) -> Result<usize, MirrorError> {
        let stores = &self.inner.stores;
        let policies: Vec<_> = stores
            .push_policies
            .push_policies(Some(repo))
            .await?
            .into_iter()
            .filter(|p| p.enabled)
            .collect();
        if policies.is_empty() {
            return Ok(0);
        }
        let tags: Vec<String> = stores
            .repos
            .tags(repo)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut submitted = 0;
        for policy in policies {
            let keeps = match policy.tag_filter() {
                Ok(filter) => filter.apply(&tags).iter().any(|t| t == tag),
                Err(e) => {
                    tracing::error!(policy = %policy.id, "push policy rules unusable: {e}");
                    false
                }
            };
            if !keeps {
                continue;
            }
            let job = self.submit_push(&policy.id, tag).await?;
            tracing::info!(policy = %policy.id, repository = %repo, tag, job = %job.id, "push mirroring submitted");
            submitted += 1;
        }
        Ok(submitted)
    }
}
