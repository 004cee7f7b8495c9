//! [`UploadSessions`]: chunked blob uploads (`/v2/<name>/blobs/uploads/<id>`)
//! between their requests, shared by every replica.
//!
//! Nothing of an upload stays in a process's memory between requests: each
//! request's bytes become a part in the blob store, hashed on the way by
//! mirror-core's resumable hasher ([`mirror_core::store::parts`]), and
//! the upload's progress (size, parts, saved hasher) is a row of the
//! server's [`UploadStore`], replaced only by the request that read it
//! (compare and set). So a chunked push may send each request to another
//! replica, two requests on one upload never both win, and a restart loses
//! no unfinished push. The last request checks the digest against the
//! hasher and makes the parts the blob; no partial blob is ever readable.
//!
//! Bounds: at most [`UploadLimits::max_sessions`] open at once, at most
//! [`UploadLimits::max_per_account`] of them opened by one account (so one
//! user cannot take every slot; counted in the shared database, so across
//! replicas up to a race between two opens), and an upload idle for longer
//! than [`UploadLimits::idle_timeout`] is removed, parts and all, by
//! [`UploadSessions::run_sweeper`] of whichever replica sees it first. A
//! request still sending marks its upload used every
//! [`UploadLimits::touch_every`].
//!
//! This module knows nothing about HTTP; `api/v2/upload.rs` drives it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use mirror_core::store::parts::UploadProgress;
use mirror_core::store::{PartWriter, StoreError};
use mirror_core::{BlobStore, Digest, RepositoryName};
use tokio_util::sync::CancellationToken;

use crate::store::records::UploadRecord;
use crate::store::{DbError, UploadStore};

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

    /// How often a request still sending marks its session used: well
    /// within the idle timeout.
    pub fn touch_every(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(60))
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

/// Why a session cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum TooManyUploads {
    /// The server holds as many as it allows.
    #[error(
        "{open} blob uploads are open, the most this server allows (max_uploads); finish or cancel some"
    )]
    Server {
        /// How many are open.
        open: u64,
    },
    /// The account holds as many as one account may.
    #[error(
        "this account has {open} blob uploads open, the most one account may (max_uploads_per_account); finish or cancel some"
    )]
    Account {
        /// How many of the account's are open.
        open: u64,
    },
}

/// Why a request on an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No more sessions may be opened now.
    #[error(transparent)]
    TooMany(#[from] TooManyUploads),
    /// No such session in this repository (finished, canceled, expired).
    #[error("blob upload {0} is unknown")]
    Unknown(String),
    /// Another request on the same session moved it on first; it now
    /// holds `size` bytes.
    #[error("another request changed blob upload {id} first; it holds {size} bytes")]
    Moved {
        /// The session.
        id: String,
        /// Bytes it holds now.
        size: u64,
    },
    /// The request body broke off (what arrived before is kept).
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The blob store failed, or the bytes do not match the digest.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server's database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// An open session, as a request reads it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session ID.
    pub id: String,
    /// Where it stands.
    pub progress: UploadProgress,
    /// `progress` as stored: what a change must find to replace it.
    stored: String,
}

impl Session {
    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.progress.size
    }
}

/// The open upload sessions of every replica.
pub struct UploadSessions {
    limits: UploadLimits,
    db: Arc<dyn UploadStore>,
    blobs: Arc<dyn BlobStore>,
}

impl UploadSessions {
    /// Sessions kept in `db`, their parts in `blobs`.
    pub fn new(limits: UploadLimits, db: Arc<dyn UploadStore>, blobs: Arc<dyn BlobStore>) -> Self {
        UploadSessions { limits, db, blobs }
    }

    /// Why `owner` cannot open one more session now, if so.
    async fn refusal(&self, owner: &str) -> Result<Option<TooManyUploads>, DbError> {
        let (open, mine) = self.db.upload_counts(owner).await?;
        Ok(if open >= self.limits.max_sessions as u64 {
            Some(TooManyUploads::Server { open })
        } else if mine >= self.limits.max_per_account as u64 {
            Some(TooManyUploads::Account { open: mine })
        } else {
            None
        })
    }

    /// Opens a session in `repo` for the account `owner`; returns its ID.
    /// When a limit is reached, idle sessions are expired first.
    pub async fn open(&self, repo: &RepositoryName, owner: &str) -> Result<String, UploadError> {
        if self.refusal(owner).await?.is_some() {
            self.expire_idle().await?;
            if let Some(refused) = self.refusal(owner).await? {
                return Err(refused.into());
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.db
            .insert_upload(&UploadRecord {
                id: id.clone(),
                repository: repo.as_str().to_string(),
                owner: owner.to_string(),
                progress: UploadProgress::new().encode(),
                updated_at: Utc::now(),
            })
            .await?;
        Ok(id)
    }

    /// Sessions open now, on every replica.
    pub async fn open_count(&self) -> Result<u64, DbError> {
        Ok(self.db.upload_counts("").await?.0)
    }

    /// The session `id` of `repo`.
    pub async fn get(&self, repo: &RepositoryName, id: &str) -> Result<Session, UploadError> {
        let unknown = || UploadError::Unknown(id.to_string());
        let record = self.db.upload(id).await?.ok_or_else(unknown)?;
        if record.repository != repo.as_str() {
            return Err(unknown());
        }
        Ok(Session {
            id: record.id,
            progress: UploadProgress::decode(&record.progress)?,
            stored: record.progress,
        })
    }

    /// Appends `body` to the session as one part and records it. A body
    /// that breaks off keeps what arrived (the client may ask where the
    /// upload stands and go on) and fails with [`UploadError::Body`].
    pub async fn append<S, E>(&self, session: &Session, body: S) -> Result<Session, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (next, broken) = self.write_part(session, body).await?;
        let stored = next.encode();
        if !self
            .db
            .advance_upload(&session.id, &session.stored, &stored, Utc::now())
            .await?
        {
            return Err(self.lost(&session.id).await);
        }
        match broken {
            Some(reason) => Err(UploadError::Body(reason)),
            None => Ok(Session {
                id: session.id.clone(),
                progress: next,
                stored,
            }),
        }
    }

    /// Appends `body` as the last part, ends the session and makes its
    /// bytes the blob `digest` (checked; on a mismatch nothing is stored).
    /// The session ends whatever the outcome, unless another request
    /// moved it on first.
    pub async fn complete<S, E>(
        &self,
        session: &Session,
        body: S,
        digest: &Digest,
    ) -> Result<(), UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (last, broken) = self.write_part(session, body).await?;
        if !self
            .db
            .take_upload(&session.id, Some(&session.stored))
            .await?
        {
            return Err(self.lost(&session.id).await);
        }
        let result = match broken {
            Some(reason) => Err(UploadError::Body(reason)),
            None => last
                .complete(self.blobs.as_ref(), &session.id, digest)
                .await
                .map_err(UploadError::from),
        };
        self.discard_parts(&session.id).await;
        result
    }

    /// Cancels the session `id` of `repo`.
    pub async fn cancel(&self, repo: &RepositoryName, id: &str) -> Result<(), UploadError> {
        self.get(repo, id).await?;
        if !self.db.take_upload(id, None).await? {
            return Err(UploadError::Unknown(id.to_string()));
        }
        self.discard_parts(id).await;
        Ok(())
    }

    /// Writes `body` as the next part of `session`: the progress with it,
    /// and why the body broke off, if it did. The session is marked used
    /// now and then while the body is arriving.
    async fn write_part<S, E>(
        &self,
        session: &Session,
        mut body: S,
    ) -> Result<(UploadProgress, Option<String>), UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut part: Option<Box<dyn PartWriter>> = None;
        let mut last_touch = Instant::now();
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => chunk,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            let writer = match &mut part {
                Some(w) => w,
                None => part.insert(
                    session
                        .progress
                        .next_part(self.blobs.as_ref(), &session.id)
                        .await?,
                ),
            };
            writer.write(chunk).await?;
            if last_touch.elapsed() >= self.limits.touch_every() {
                last_touch = Instant::now();
                self.db.touch_upload(&session.id, Utc::now()).await?;
            }
        }
        let next = match part {
            // An empty body adds no part.
            None => session.progress.clone(),
            Some(w) => {
                let (name, hasher) = w.finish().await?;
                session.progress.with_part(name, hasher)
            }
        };
        Ok((next, broken))
    }

    /// The error for a session another request changed or ended first.
    async fn lost(&self, id: &str) -> UploadError {
        match self.db.upload(id).await {
            Ok(Some(record)) => match UploadProgress::decode(&record.progress) {
                Ok(p) => UploadError::Moved {
                    id: id.to_string(),
                    size: p.size,
                },
                Err(e) => e.into(),
            },
            Ok(None) => UploadError::Unknown(id.to_string()),
            Err(e) => e.into(),
        }
    }

    /// Removes the parts of an ended session (a failure is logged: the
    /// blob store's purge removes them a day later).
    async fn discard_parts(&self, id: &str) {
        if let Err(e) = self.blobs.delete_parts(id).await {
            tracing::warn!(upload = id, "removing an ended upload's parts failed: {e}");
        }
    }

    /// Removes sessions idle for longer than the limit, and their parts.
    /// Returns how many.
    pub async fn expire_idle(&self) -> Result<usize, DbError> {
        let idle =
            chrono::Duration::from_std(self.limits.idle_timeout).unwrap_or(chrono::Duration::MAX);
        let Some(before) = Utc::now().checked_sub_signed(idle) else {
            return Ok(0);
        };
        let expired = self.db.expire_uploads(before).await?;
        for id in &expired {
            self.discard_parts(id).await;
        }
        if !expired.is_empty() {
            tracing::info!(expired = expired.len(), "canceled idle blob uploads");
        }
        Ok(expired.len())
    }

    /// Expires idle sessions every few seconds until `stop`. Open sessions
    /// outlive a shutdown (a restarted or another replica goes on).
    pub async fn run_sweeper(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.expire_idle().await {
                        tracing::warn!("expiring idle blob uploads failed: {e}");
                    }
                }
                _ = stop.cancelled() => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteServerStore;
    use mirror_core::store::{FsBlobStore, FsOptions};

    fn repo() -> RepositoryName {
        RepositoryName::parse("a/b").unwrap()
    }

    fn body(chunks: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        blobs: Arc<FsBlobStore>,
        db: Arc<SqliteServerStore>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let blobs =
                Arc::new(FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap());
            let db = Arc::new(SqliteServerStore::open(dir.path()).unwrap());
            Fixture {
                _dir: dir,
                blobs,
                db,
            }
        }

        /// A second replica's view: its own `UploadSessions` on the same
        /// database and blob store.
        fn sessions(&self, limits: UploadLimits) -> UploadSessions {
            UploadSessions::new(limits, self.db.clone(), self.blobs.clone())
        }

        fn part_dirs(&self) -> usize {
            std::fs::read_dir(self._dir.path().join("upload-parts"))
                .map(|d| d.count())
                .unwrap_or(0)
        }
    }

    #[tokio::test]
    async fn requests_continue_on_any_replica_and_race_safely() {
        let f = Fixture::new();
        let (a, b) = (
            f.sessions(UploadLimits::default()),
            f.sessions(UploadLimits::default()),
        );
        let id = a.open(&repo(), "alice").await.unwrap();
        let s = b.get(&repo(), &id).await.unwrap();
        let s1 = b.append(&s, body(&[b"hello", b" "])).await.unwrap();
        assert_eq!(s1.size(), 6);
        // A request that read the session before that one loses.
        match a.append(&s, body(&[b"late"])).await {
            Err(UploadError::Moved { size: 6, .. }) => {}
            r => panic!("expected Moved, got {r:?}"),
        }
        let s2 = a.get(&repo(), &id).await.unwrap();
        assert_eq!(s2.size(), 6);
        assert!(matches!(
            a.get(&RepositoryName::parse("other/repo").unwrap(), &id)
                .await,
            Err(UploadError::Unknown(_))
        ));
        // A wrong digest stores nothing and ends the session.
        let wrong = Digest::of(b"hello there");
        let e = b
            .complete(&s2, body(&[b"world"]), &wrong)
            .await
            .unwrap_err();
        assert!(
            matches!(e, UploadError::Store(StoreError::DigestMismatch { .. })),
            "{e}"
        );
        assert!(matches!(
            a.get(&repo(), &id).await,
            Err(UploadError::Unknown(_))
        ));
        assert_eq!(f.blobs.stat(&wrong).await.unwrap(), None);
        assert_eq!(f.part_dirs(), 0, "parts left behind");

        // The right one: the blob, whole.
        let id = a.open(&repo(), "alice").await.unwrap();
        let s = a.get(&repo(), &id).await.unwrap();
        let s = b.append(&s, body(&[b"hello "])).await.unwrap();
        let d = Digest::of(b"hello world");
        a.complete(&s, body(&[b"world"]), &d).await.unwrap();
        assert_eq!(
            &f.blobs.read_small(&d, 100).await.unwrap()[..],
            b"hello world"
        );
        assert_eq!(f.part_dirs(), 0, "parts left behind");
    }

    #[tokio::test]
    async fn a_broken_body_keeps_what_arrived() {
        let f = Fixture::new();
        let a = f.sessions(UploadLimits::default());
        let id = a.open(&repo(), "alice").await.unwrap();
        let s = a.get(&repo(), &id).await.unwrap();
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err("connection reset".to_string()),
        ]);
        let e = a.append(&s, broken).await.unwrap_err();
        assert!(e.to_string().contains("connection reset"), "{e}");
        let s = a.get(&repo(), &id).await.unwrap();
        assert_eq!(s.size(), 3);
        a.cancel(&repo(), &id).await.unwrap();
        assert!(matches!(
            a.cancel(&repo(), &id).await,
            Err(UploadError::Unknown(_))
        ));
        assert_eq!(f.part_dirs(), 0);
    }

    #[tokio::test]
    async fn bounded_and_idle_sessions_expire() {
        let f = Fixture::new();
        // Long enough that opening four sessions on a loaded machine
        // (other tests hash passwords meanwhile) never outlasts it.
        let limits = UploadLimits {
            max_sessions: 3,
            max_per_account: 2,
            idle_timeout: Duration::from_secs(3),
        };
        let a = f.sessions(limits);
        let first = a.open(&repo(), "alice").await.unwrap();
        let s = a.get(&repo(), &first).await.unwrap();
        a.append(&s, body(&[b"x"])).await.unwrap();
        a.open(&repo(), "alice").await.unwrap();
        let e = a.open(&repo(), "alice").await.unwrap_err();
        assert!(
            matches!(e, UploadError::TooMany(TooManyUploads::Account { open: 2 })),
            "{e}"
        );
        assert!(e.to_string().contains("max_uploads_per_account"), "{e}");
        a.open(&repo(), "bob").await.unwrap();
        let e = a.open(&repo(), "carol").await.unwrap_err();
        assert!(
            matches!(e, UploadError::TooMany(TooManyUploads::Server { open: 3 })),
            "{e}"
        );
        // Once idle, they expire (parts too), and opening makes room.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        a.open(&repo(), "carol").await.unwrap();
        assert!(matches!(
            a.get(&repo(), &first).await,
            Err(UploadError::Unknown(_))
        ));
        assert_eq!(f.part_dirs(), 0, "an expired upload's parts stayed");
        assert_eq!(f.db.upload_counts("carol").await.unwrap(), (1, 1));
    }
}
