//! Who may read which local repository, as far as the engine must know: a
//! poll may link content it did not download only where the policy's owner
//! could already read it.
//!
//! The blob store deduplicates bytes, never trust. A manifest or blob that
//! is already stored (pushed or mirrored into *some* repository) is linked
//! into a poll's repository without fetching it again only when
//! [`ReuseGate::may_link`] says so: it was downloaded and verified from this
//! poll's remote, it is already in the target repository, or it is linked
//! in a repository the policy's owner may read ([`ReadAccess`]). Otherwise
//! it is fetched from the remote and verified like any new blob, so a
//! remote that merely *names* another team's digest gets nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::digest::Digest;
use crate::reference::RepositoryName;
use crate::store::{Repository, RepositoryStore, StoreError};

/// Decides whether an account may read a local repository.
#[async_trait]
pub trait ReadAccess: std::fmt::Debug + Send + Sync + 'static {
    /// Whether `owner` (a policy's owner; `None` when unknown) may read
    /// `repo`.
    async fn can_read(&self, owner: Option<&str>, repo: &Repository) -> Result<bool, StoreError>;
}

/// One trust domain: every caller may read every repository. The default
/// of an embedded engine (a library or script with no accounts); a server
/// with accounts passes its own [`ReadAccess`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAccess;

#[async_trait]
impl ReadAccess for OpenAccess {
    async fn can_read(&self, _: Option<&str>, _: &Repository) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// The reuse rule of one poll: which stored digests it may link into its
/// repository without downloading them.
pub struct ReuseGate {
    repos: Arc<dyn RepositoryStore>,
    access: Arc<dyn ReadAccess>,
    owner: Option<String>,
    target: RepositoryName,
    /// Downloaded from this poll's remote and verified against their
    /// digest, or found linkable once (the answer holds for the poll).
    verified: Mutex<HashSet<Digest>>,
    /// When this poll last held each digest ([`ReuseGate::hold_due`]).
    held: Mutex<HashMap<Digest, Instant>>,
}

/// How long a poll counts on its own hold of a stored blob before holding
/// it again: a poll of many tags sharing layers holds each once in this
/// time, not once per tag. Safe whatever the collector's grace period:
/// publishing holds every digest again and checks it is still stored, so
/// a blob collected meanwhile fails its tag (copied again by the next
/// poll) and is never linked missing.
pub const HOLD_REUSED_FOR: Duration = Duration::from_secs(10);

impl std::fmt::Debug for ReuseGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReuseGate")
            .field("owner", &self.owner)
            .field("target", &self.target)
            .finish()
    }
}

impl ReuseGate {
    /// The gate of a poll into `target` on behalf of `owner`.
    pub fn new(
        repos: Arc<dyn RepositoryStore>,
        access: Arc<dyn ReadAccess>,
        owner: Option<String>,
        target: RepositoryName,
    ) -> Self {
        ReuseGate {
            repos,
            access,
            owner,
            target,
            verified: Mutex::new(HashSet::new()),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `digest` needs a hold before it is looked at: true unless
    /// this poll held it within [`HOLD_REUSED_FOR`]. The caller holds it
    /// and then calls [`ReuseGate::held`].
    pub fn hold_due(&self, digest: &Digest) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(digest)
            .is_none_or(|at| at.elapsed() >= HOLD_REUSED_FOR)
    }

    /// Records that this poll held `digest` now.
    pub fn held(&self, digest: &Digest) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), Instant::now());
    }

    /// Records that `digest` was fetched from the remote and verified.
    pub fn verified(&self, digest: &Digest) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone());
    }

    /// Whether a stored `digest` may be linked without downloading it.
    pub async fn may_link(&self, digest: &Digest) -> Result<bool, StoreError> {
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(digest)
        {
            return Ok(true);
        }
        if self.repos.has_blob(&self.target, digest).await? {
            self.verified(digest);
            return Ok(true);
        }
        for holder in self.repos.holders(digest).await? {
            if let Some(repo) = self.repos.repository(&holder).await?
                && self.access.can_read(self.owner.as_deref(), &repo).await?
            {
                self.verified(digest);
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn a_poll_holds_each_digest_once_in_a_while_and_remembers_what_it_may_link() {
        let dir = tempfile::tempdir().unwrap();
        let repos: Arc<dyn RepositoryStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let target = RepositoryName::parse("team/app").unwrap();
        let gate = ReuseGate::new(repos, Arc::new(OpenAccess), None, target);
        let d = Digest::of(b"layer");
        assert!(gate.hold_due(&d), "never held");
        gate.held(&d);
        assert!(!gate.hold_due(&d), "held just now");
        assert!(gate.hold_due(&Digest::of(b"other")));
        // Stored nowhere: not linkable, and not remembered as linkable.
        assert!(!gate.may_link(&d).await.unwrap());
        gate.verified(&d);
        assert!(gate.may_link(&d).await.unwrap());
    }
}
