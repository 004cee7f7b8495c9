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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

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
    /// Downloaded from this poll's remote and verified against their digest.
    verified: Mutex<HashSet<Digest>>,
}

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
        }
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
            return Ok(true);
        }
        for holder in self.repos.holders(digest).await? {
            if let Some(repo) = self.repos.repository(&holder).await?
                && self.access.can_read(self.owner.as_deref(), &repo).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
