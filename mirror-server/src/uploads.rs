//! [`UploadSessions`]: blob uploads in progress (`/v2/<name>/blobs/uploads/<id>`),
//! kept between requests.
//!
//! Each session holds an open mirror-core [`BlobWriter`], which hashes what
//! it is given and makes the blob visible only when its commit checks the
//! digest; so no partial blob is ever readable. Sessions live in this
//! process's memory: a restart loses them (clients get
//! `BLOB_UPLOAD_UNKNOWN` and start over) and the start-up recovery deletes
//! their files.
//!
//! Bounds: at most [`UploadLimits::max_sessions`] at once (each writer
//! holds a write buffer), at most [`UploadLimits::max_per_account`] of
//! them opened by one account (so one user cannot take every slot), and a
//! session idle for longer than
//! [`UploadLimits::idle_timeout`] is canceled by [`UploadSessions::run_sweeper`],
//! which also cancels every session on shutdown.
//!
//! This module knows nothing about HTTP; `api/v2/upload.rs` drives it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirror_core::RepositoryName;
use mirror_core::store::BlobWriter;
use tokio_util::sync::CancellationToken;

/// How many sessions may be open and how long one may sit idle.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Sessions open at once; more are refused until some finish or expire.
    pub max_sessions: usize,
    /// Sessions one account may have open at once.
    pub max_per_account: usize,
    /// A session without a request for this long is canceled.
    pub idle_timeout: Duration,
}

impl UploadLimits {
    /// The per-account limit that goes with `max_sessions` when none is
    /// set: a quarter of it, at most 16 (and at least 1).
    pub fn default_per_account(max_sessions: usize) -> usize {
        (max_sessions / 4).clamp(1, 16)
    }
}

impl Default for UploadLimits {
    fn default() -> Self {
        let max_sessions = 128;
        UploadLimits {
            max_sessions,
            max_per_account: UploadLimits::default_per_account(max_sessions),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// One upload in progress.
pub struct Session {
    /// The repository it was started in; other repositories cannot use it.
    pub repo: RepositoryName,
    /// The open write; `None` once it was committed, canceled or expired
    /// (a request that waited for the session's lock then finds it gone).
    pub writer: Option<Box<dyn BlobWriter>>,
    /// When a request last finished with it.
    last_used: Instant,
}

impl Session {
    /// Marks the session as used now (call at the end of each request).
    pub fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

/// A session, locked by the request using it: requests on one session run
/// one after the other.
pub type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

/// Why a session cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum TooManyUploads {
    /// The server holds as many as it allows.
    #[error(
        "{open} blob uploads are open, the most this server allows (max_uploads); finish or cancel some"
    )]
    Server {
        /// How many are open.
        open: usize,
    },
    /// The account holds as many as one account may.
    #[error(
        "this account has {open} blob uploads open, the most one account may (max_uploads_per_account); finish or cancel some"
    )]
    Account {
        /// How many of the account's are open.
        open: usize,
    },
}

/// An open session and the account that opened it (readable without
/// locking the session, which a request may hold for long).
struct Entry {
    /// The account that opened it (counted against its limit).
    owner: String,
    handle: SessionHandle,
}

/// The open upload sessions.
pub struct UploadSessions {
    limits: UploadLimits,
    sessions: Mutex<HashMap<String, Entry>>,
}

impl UploadSessions {
    /// No sessions yet.
    pub fn new(limits: UploadLimits) -> Self {
        UploadSessions {
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `owner` cannot open one more session in `map`, if so.
    fn refusal(&self, map: &HashMap<String, Entry>, owner: &str) -> Option<TooManyUploads> {
        if map.len() >= self.limits.max_sessions {
            return Some(TooManyUploads::Server { open: map.len() });
        }
        let mine = map.values().filter(|e| e.owner == owner).count();
        (mine >= self.limits.max_per_account).then_some(TooManyUploads::Account { open: mine })
    }

    /// Opens a session for `repo` around `writer`, for the account
    /// `owner`; returns its ID. When a limit is reached, idle sessions are
    /// expired first.
    pub async fn open(
        &self,
        repo: RepositoryName,
        owner: &str,
        writer: Box<dyn BlobWriter>,
    ) -> Result<String, TooManyUploads> {
        if self.refusal(&self.map(), owner).is_some() {
            self.expire_idle().await;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let session = Session {
            repo,
            writer: Some(writer),
            last_used: Instant::now(),
        };
        let mut map = self.map();
        if let Some(refused) = self.refusal(&map, owner) {
            // `session` (and its writer) drops here, which removes its file.
            return Err(refused);
        }
        let handle = Arc::new(tokio::sync::Mutex::new(session));
        map.insert(
            id.clone(),
            Entry {
                owner: owner.to_string(),
                handle,
            },
        );
        Ok(id)
    }

    /// The session `id`, if open.
    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.map().get(id).map(|e| e.handle.clone())
    }

    /// Forgets the session `id` (after a commit or cancel took its writer).
    pub fn remove(&self, id: &str) -> Option<SessionHandle> {
        self.map().remove(id).map(|e| e.handle)
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels sessions idle for longer than the limit; a session whose
    /// lock is held is in use and stays. Returns how many were canceled.
    pub async fn expire_idle(&self) -> usize {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut map = self.map();
            map.retain(|_, entry| {
                let Ok(mut session) = entry.handle.try_lock() else {
                    return true;
                };
                if now.duration_since(session.last_used) < self.limits.idle_timeout {
                    return true;
                }
                expired.extend(session.writer.take());
                false
            });
        }
        let n = expired.len();
        for writer in expired {
            if let Err(e) = writer.cancel().await {
                tracing::warn!("discarding an expired blob upload failed: {e}");
            }
        }
        if n > 0 {
            tracing::info!(expired = n, "canceled idle blob uploads");
        }
        n
    }

    /// Cancels every session (on shutdown); waits for sessions in use.
    pub async fn cancel_all(&self) {
        let handles: Vec<SessionHandle> = self.map().drain().map(|(_, e)| e.handle).collect();
        for handle in handles {
            if let Some(writer) = handle.lock().await.writer.take() {
                let _ = writer.cancel().await;
            }
        }
    }

    /// Expires idle sessions every few seconds until `stop`, then cancels
    /// them all.
    pub async fn run_sweeper(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.expire_idle().await;
                }
                _ = stop.cancelled() => break,
            }
        }
        self.cancel_all().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_core::BlobStore;
    use mirror_core::store::{FsBlobStore, FsOptions};

    fn repo() -> RepositoryName {
        RepositoryName::parse("a/b").unwrap()
    }

    #[tokio::test]
    async fn bounded_and_idle_sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap();
        let uploads_dir = dir.path().join("uploads");
        let files = || std::fs::read_dir(&uploads_dir).unwrap().count();
        let sessions = UploadSessions::new(UploadLimits {
            max_sessions: 2,
            max_per_account: 2,
            idle_timeout: Duration::from_millis(100),
        });
        let a = sessions
            .open(repo(), "alice", blobs.writer().await.unwrap())
            .await
            .unwrap();
        sessions
            .open(repo(), "alice", blobs.writer().await.unwrap())
            .await
            .unwrap();
        assert!(
            sessions
                .open(repo(), "alice", blobs.writer().await.unwrap())
                .await
                .is_err()
        );
        assert_eq!(files(), 2, "a refused writer leaves no file");

        // A session in use does not expire, however idle it was.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let handle = sessions.get(&a).unwrap();
        let guard = handle.lock().await;
        assert_eq!(sessions.expire_idle().await, 1);
        assert_eq!(sessions.len(), 1);
        drop(guard);
        // Full again: opening expires the idle one first.
        tokio::time::sleep(Duration::from_millis(150)).await;
        sessions
            .open(repo(), "alice", blobs.writer().await.unwrap())
            .await
            .unwrap();
        sessions
            .open(repo(), "alice", blobs.writer().await.unwrap())
            .await
            .unwrap();
        assert!(handle.lock().await.writer.is_none(), "expired writer kept");
        sessions.cancel_all().await;
        assert!(sessions.is_empty());
        assert_eq!(files(), 0, "canceled uploads left files");
    }

    #[tokio::test]
    async fn one_account_cannot_take_every_session() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap();
        let sessions = UploadSessions::new(UploadLimits {
            max_sessions: 4,
            max_per_account: 2,
            idle_timeout: Duration::from_secs(600),
        });
        let open = |owner: &'static str| {
            let (sessions, blobs) = (&sessions, &blobs);
            async move {
                sessions
                    .open(repo(), owner, blobs.writer().await.unwrap())
                    .await
            }
        };
        let a = open("alice").await.unwrap();
        open("alice").await.unwrap();
        let e = open("alice").await.unwrap_err();
        assert!(matches!(e, TooManyUploads::Account { open: 2 }), "{e}");
        assert!(e.to_string().contains("max_uploads_per_account"), "{e}");
        open("bob").await.unwrap();
        open("bob").await.unwrap();
        let e = open("carol").await.unwrap_err();
        assert!(matches!(e, TooManyUploads::Server { open: 4 }), "{e}");
        // A finished session frees the account's slot.
        sessions.remove(&a);
        open("alice").await.unwrap();
        sessions.cancel_all().await;
    }
}
