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
//! holds a write buffer), and a session idle for longer than
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
    /// A session without a request for this long is canceled.
    pub idle_timeout: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_sessions: 128,
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
#[error("{open} blob uploads are open, the most this server allows; finish or cancel some")]
pub struct TooManyUploads {
    /// How many are open.
    pub open: usize,
}

/// The open upload sessions.
pub struct UploadSessions {
    limits: UploadLimits,
    sessions: Mutex<HashMap<String, SessionHandle>>,
}

impl UploadSessions {
    /// No sessions yet.
    pub fn new(limits: UploadLimits) -> Self {
        UploadSessions {
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `repo` around `writer`; returns its ID. When the
    /// table is full, idle sessions are expired first.
    pub async fn open(
        &self,
        repo: RepositoryName,
        writer: Box<dyn BlobWriter>,
    ) -> Result<String, TooManyUploads> {
        if self.len() >= self.limits.max_sessions {
            self.expire_idle().await;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let session = Session {
            repo,
            writer: Some(writer),
            last_used: Instant::now(),
        };
        let mut map = self.map();
        if map.len() >= self.limits.max_sessions {
            // `session` (and its writer) drops here, which removes its file.
            return Err(TooManyUploads { open: map.len() });
        }
        map.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(id)
    }

    /// The session `id`, if open.
    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.map().get(id).cloned()
    }

    /// Forgets the session `id` (after a commit or cancel took its writer).
    pub fn remove(&self, id: &str) -> Option<SessionHandle> {
        self.map().remove(id)
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
            map.retain(|_, handle| {
                let Ok(mut session) = handle.try_lock() else {
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
        let handles: Vec<SessionHandle> = self.map().drain().map(|(_, h)| h).collect();
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
            idle_timeout: Duration::from_millis(100),
        });
        let a = sessions
            .open(repo(), blobs.writer().await.unwrap())
            .await
            .unwrap();
        sessions
            .open(repo(), blobs.writer().await.unwrap())
            .await
            .unwrap();
        assert!(
            sessions
                .open(repo(), blobs.writer().await.unwrap())
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
            .open(repo(), blobs.writer().await.unwrap())
            .await
            .unwrap();
        sessions
            .open(repo(), blobs.writer().await.unwrap())
            .await
            .unwrap();
        assert!(handle.lock().await.writer.is_none(), "expired writer kept");
        sessions.cancel_all().await;
        assert!(sessions.is_empty());
        assert_eq!(files(), 0, "canceled uploads left files");
    }
}
