//! Storage traits and their embedded backends.
//!
//! - [`BlobStore`]: content-addressed bytes (layers, configs, manifests). It
//!   sees digests only, never repositories or requests.
//! - [`RepositoryStore`]: local repositories, which manifests and blobs each
//!   holds, and tags. Publishing is one transaction.
//! - [`PolicyStore`]: policies, each with its last status and baseline.
//! - [`LeaseStore`]: which job holds which policy.
//! - [`JobStore`]: the job queue.
//! - [`JobLogStore`]: the jobs' log lines.
//! - [`ProxyCacheStore`]: proxy caches (pull-through), one per namespace,
//!   and when their cached manifests were last pulled.
//!
//! [`parts`] builds resumable chunked uploads on a [`BlobStore`]'s parts.
//!
//! Embedded defaults: [`FsBlobStore`] (a directory) and [`SqliteStore`]
//! (one SQLite file, implementing every metadata trait). With the feature
//! `s3`, `S3BlobStore` keeps blobs in an S3-compatible bucket; with the
//! feature `postgres`, `PgStore` implements every metadata trait on a
//! PostgreSQL database several engines share. Every backend must pass the
//! conformance checks in `tests/`.

mod blob_fs;
#[cfg(feature = "s3")]
mod blob_s3;
#[cfg(feature = "conformance")]
pub mod conformance;
mod job_log;
mod job_queue;
mod layout;
mod lease;
pub mod migrate;
pub mod parts;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod proxy_cache;
pub(crate) mod push_policy;
mod repository;
mod sealed;
mod sqlite;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::digest::{Digest, Hasher};

pub use blob_fs::{FsBlobStore, FsOptions};
#[cfg(feature = "s3")]
pub use blob_s3::{
    DEFAULT_PART_SIZE, DEFAULT_PURGE_GRACE, MAX_PRESIGN, MIN_PART_SIZE, PARTS_IN_FLIGHT,
    S3BlobStore, S3ConfigError, S3Options, SERVER_COPY_LIMIT,
};
pub use job_log::JobLogStore;
pub use job_queue::JobStore;
pub use lease::LeaseStore;
pub use policy::PolicyStore;
#[cfg(feature = "postgres")]
pub use postgres::{
    PgOptions, PgStep, PgStore, error_chain as pg_error_chain, migrate_steps as pg_migrate,
    pool as pg_pool,
};
pub use proxy_cache::{CachePull, ProxyCacheStore};
pub use push_policy::PushPolicyStore;
pub use repository::{
    CLAIM_TTL, ManifestRecord, NewRepository, Repository, RepositoryContent, RepositoryStore,
    TAG_HISTORY_LIMIT, TagHistoryEntry, TagRecord, TagSource, Visibility,
};
pub use sealed::SecretKeys;
pub use sqlite::SqliteStore;

/// Errors from a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The blob, repository, policy or job does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. `blob sha256:…`.
        what: String,
    },
    /// A write was refused because its content does not match its digest.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the content was announced with.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A write was refused because its length is not the announced size.
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest the content was announced with.
        digest: Digest,
        /// Announced size.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// The operation conflicts with existing state (e.g. the repository exists).
    #[error("{reason}")]
    Conflict {
        /// What conflicts.
        reason: String,
    },
    /// A filesystem error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A database error.
    #[error("database error while {context}: {source}")]
    Database {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data could not be decoded (corruption or a newer format).
    #[error("corrupt stored data: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let mut context = context.into();
        if matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        ) {
            // Say it in words an operator searches for.
            context.push_str(
                " (out of space: the disk is full, or a quota or file size limit was reached)",
            );
        }
        StoreError::Io { context, source }
    }
}

/// The worker ID kept in the data directory `root` (12 hex characters,
/// created on first use), so that an engine restarted on the same directory
/// recognizes the jobs its previous process left running.
pub(crate) fn data_dir_worker_id(root: &std::path::Path) -> Result<String, StoreError> {
    let path = layout::Layout::worker_id(root);
    let valid = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match std::fs::read_to_string(&path) {
        Ok(s) if valid(s.trim()) => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    std::io::Write::write_all(
        &mut open_private_file(&path, true)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?,
        format!("{id}\n").as_bytes(),
    )
    .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))?;
    Ok(id)
}

/// Opens `path` for writing, creating it readable and writable by the owner
/// only (mode 0600 on Unix); `truncate` empties an existing file. An existing
/// file is narrowed to 0600 too, so state written by an older version is not
/// left readable. Stores and the server create every file of the data
/// directory with it (SQLite gives its `-wal` and `-shm` files the mode of
/// the database file, so creating the database with it first covers those).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let f = mirror_core::store::open_private_file(&dir.path().join("state"), false).unwrap();
/// # drop(f);
/// ```
pub fn open_private_file(path: &std::path::Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// A policy's tag rules as the metadata stores keep them (JSON text).
pub(crate) fn rules_to_text(rules: &[crate::rules::TagRule]) -> String {
    serde_json::to_string(rules).expect("plain fields serialize")
}

/// Tag rules a metadata store kept ([`rules_to_text`]).
pub(crate) fn rules_from_text(text: &str) -> Result<Vec<crate::rules::TagRule>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        reason: format!("a stored policy's rules do not parse: {e}"),
    })
}

/// A policy's deletion settings as the metadata stores keep them (JSON).
pub(crate) fn deletion_to_text(d: &crate::policy::DeleteRemoved) -> String {
    serde_json::to_string(d).expect("plain fields serialize")
}

/// Deletion settings a metadata store kept ([`deletion_to_text`]; `{}`
/// for a policy saved before they existed: off).
pub(crate) fn deletion_from_text(text: &str) -> Result<crate::policy::DeleteRemoved, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        reason: format!("a stored policy's deletion settings do not parse: {e}"),
    })
}

/// A policy's content selection as a metadata store keeps it: JSON text
/// (`{}` for a policy saved before selections existed: every platform,
/// referrers on).
pub(crate) fn selection_to_text(s: &crate::selection::ContentSelection) -> String {
    serde_json::to_string(s).expect("plain fields serialize")
}

/// Reads [`selection_to_text`]'s form.
pub(crate) fn selection_from_text(
    text: &str,
) -> Result<crate::selection::ContentSelection, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        reason: format!("a stored policy's content selection does not parse: {e}"),
    })
}

/// A stream of blob bytes.
pub type ByteStream<E> = Pin<Box<dyn Stream<Item = Result<Bytes, E>> + Send + 'static>>;

/// A committed blob as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When its bytes were last written (committed).
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// Every committed blob of a store, a page at a time (see [`BlobStore::list`]).
pub type BlobListing = Pin<Box<dyn Stream<Item = Result<BlobEntry, StoreError>> + Send + 'static>>;

/// A blob opened for reading.
pub struct BlobReader {
    /// Total size of the blob.
    pub size: u64,
    /// First byte offset the stream starts at.
    pub offset: u64,
    /// How many bytes the stream yields.
    pub length: u64,
    /// The bytes.
    pub stream: ByteStream<StoreError>,
}

/// Content-addressed blob storage.
///
/// Writes go through a [`BlobWriter`], which hashes as it writes; a blob
/// becomes visible only when [`BlobWriter::commit`] has checked its digest
/// and size. Readers never see partial blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of a committed blob, or `None` if it is absent.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Starts a new blob write.
    async fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError>;

    /// Opens a committed blob, optionally from `offset` for `length` bytes
    /// (`None` = to the end). Fails with `NotFound` if absent.
    async fn reader(
        &self,
        digest: &Digest,
        offset: u64,
        length: Option<u64>,
    ) -> Result<BlobReader, StoreError>;

    /// Reads a whole small blob (a manifest or config) into memory. Callers
    /// must bound `max` (e.g. [`crate::manifest::MAX_MANIFEST_SIZE`]).
    async fn read_small(&self, digest: &Digest, max: u64) -> Result<Bytes, StoreError> {
        use futures_util::StreamExt;
        let mut r = self.reader(digest, 0, None).await?;
        if r.size > max {
            return Err(StoreError::Conflict {
                reason: format!(
                    "blob {digest} is {} bytes, over the {max}-byte limit",
                    r.size
                ),
            });
        }
        let mut out = Vec::with_capacity(r.size as usize);
        while let Some(chunk) = r.stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Stores small in-memory content under `expected` after verifying it.
    async fn put(&self, bytes: Bytes, expected: &Digest) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        let mut w = self.writer().await?;
        w.write(bytes).await?;
        w.commit(expected, Some(len)).await
    }

    /// A URL from which a client may `GET` the committed blob directly for
    /// `expires`, if this store can make one (an S3 bucket presigns one;
    /// the default is `None`: the bytes go through [`BlobStore::reader`]).
    async fn presigned_get(
        &self,
        _digest: &Digest,
        _expires: std::time::Duration,
    ) -> Option<url::Url> {
        None
    }

    /// Every committed blob (never uploads in progress), in no particular
    /// order, read a page at a time so memory does not grow with the store.
    /// A blob committed or deleted while the listing runs may or may not
    /// appear. Garbage collection sweeps from it.
    fn list(&self) -> BlobListing;

    /// Deletes a blob (absent blobs are not an error).
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;

    /// Removes leftovers of writes that never committed (after a crash),
    /// and parts of chunked uploads older than a day (their session
    /// expired long ago). Returns how many were removed.
    async fn purge_uploads(&self) -> Result<usize, StoreError>;

    /// Starts writing a new part of the chunked upload `upload` (an ID
    /// of letters, digits and `-`): the bytes one request of a chunked push
    /// brings. `hasher` has seen the upload's earlier parts; the part's
    /// bytes continue it. Parts are stored where every process sharing this
    /// store finds them, so a later request of the same push may go to
    /// another replica. See [`parts`] for the whole protocol.
    async fn part_writer(
        &self,
        upload: &str,
        hasher: Hasher,
    ) -> Result<Box<dyn PartWriter>, StoreError>;

    /// Streams the finished part `part` of `upload`, whole.
    async fn part_reader(
        &self,
        upload: &str,
        part: &str,
    ) -> Result<ByteStream<StoreError>, StoreError>;

    /// Makes the part `part` of `upload` the blob `digest` of `size`
    /// bytes, when it is the upload's only part: a move, not a copy. The
    /// caller checked the digest with the hasher that saw the part written
    /// ([`parts::UploadProgress::complete`]).
    async fn place_part(
        &self,
        upload: &str,
        part: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError>;

    /// Removes every part of `upload` (none is not an error).
    async fn delete_parts(&self, upload: &str) -> Result<(), StoreError>;
}

/// A part of a chunked upload being written ([`BlobStore::part_writer`]).
/// Dropping it without `finish` discards the part.
#[async_trait]
pub trait PartWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Bytes of this part written so far.
    fn written(&self) -> u64;

    /// Makes the part durable and findable by its name; returns the name
    /// and the hasher, which has now seen this part too.
    async fn finish(self: Box<Self>) -> Result<(String, Hasher), StoreError>;
}

/// An in-progress blob write. Dropping it without `commit` discards the data.
#[async_trait]
pub trait BlobWriter: Send {
    /// Appends a chunk.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Bytes written so far.
    fn written(&self) -> u64;

    /// Verifies the digest (and size, when given) of everything written and
    /// makes the blob visible; on mismatch discards it and fails.
    async fn commit(
        self: Box<Self>,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Discards the write.
    async fn cancel(self: Box<Self>) -> Result<(), StoreError>;
}
