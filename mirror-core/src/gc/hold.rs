//! The writers' side of garbage collection: a hold before relying on
//! stored bytes, and [`HoldingBlobStore`], which holds every digest before
//! its commit.
//!
//! A writer that is about to link a digest (reuse a stored blob, commit a
//! new one, publish a manifest) first calls [`hold`]: recorded in the
//! [`RepositoryStore`], serialized there with a collector's claims, so
//! either the collector's claim sees the hold (and leaves the digest) or
//! the hold sees the claim and waits until the collector has deleted the
//! bytes and released it (then the writer finds the blob absent and
//! writes it again). See `ARCHITECTURE.md`, garbage collection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::digest::{Digest, Hasher};
use crate::store::{
    BlobListing, BlobReader, BlobStore, BlobWriter, ByteStream, CLAIM_TTL, PartWriter,
    RepositoryStore, StoreError,
};

/// Holds `digests` for the caller, waiting while a collector is deleting
/// any of them (at most [`CLAIM_TTL`], after which a claim is dead).
pub async fn hold(repos: &dyn RepositoryStore, digests: &[Digest]) -> Result<(), StoreError> {
    if digests.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let claimed = repos.hold_digests(digests, crate::job::now()).await?;
        let Some(first) = claimed.first() else {
            return Ok(());
        };
        if started.elapsed() > CLAIM_TTL {
            return Err(StoreError::Conflict {
                reason: format!("{first} is still being garbage-collected"),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// A [`BlobStore`] whose writers [`hold`] the digest before they commit,
/// so a collector never deletes bytes a writer is committing (a commit of
/// a digest already stored replaces its file, or its object, in place).
/// [`crate::Mirror::new`] puts it around the blob store it is given.
pub struct HoldingBlobStore {
    inner: Arc<dyn BlobStore>,
    repos: Arc<dyn RepositoryStore>,
}

impl HoldingBlobStore {
    /// `inner`, holding in `repos`.
    pub fn new(inner: Arc<dyn BlobStore>, repos: Arc<dyn RepositoryStore>) -> Self {
        HoldingBlobStore { inner, repos }
    }
}

#[async_trait]
impl BlobStore for HoldingBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.inner.stat(digest).await
    }

    async fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(HoldingWriter {
            inner: self.inner.writer().await?,
            repos: self.repos.clone(),
        }))
    }

    async fn reader(
        &self,
        digest: &Digest,
        offset: u64,
        length: Option<u64>,
    ) -> Result<BlobReader, StoreError> {
        self.inner.reader(digest, offset, length).await
    }

    async fn read_small(&self, digest: &Digest, max: u64) -> Result<Bytes, StoreError> {
        self.inner.read_small(digest, max).await
    }

    async fn presigned_get(&self, digest: &Digest, expires: Duration) -> Option<url::Url> {
        self.inner.presigned_get(digest, expires).await
    }

    fn list(&self) -> BlobListing {
        self.inner.list()
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.inner.delete(digest).await
    }

    async fn purge_uploads(&self) -> Result<usize, StoreError> {
        self.inner.purge_uploads().await
    }

    async fn part_writer(
        &self,
        upload: &str,
        hasher: Hasher,
    ) -> Result<Box<dyn PartWriter>, StoreError> {
        self.inner.part_writer(upload, hasher).await
    }

    async fn part_reader(
        &self,
        upload: &str,
        part: &str,
    ) -> Result<ByteStream<StoreError>, StoreError> {
        self.inner.part_reader(upload, part).await
    }

    /// Holds `digest` first, as a writer's commit does (several parts go
    /// through [`BlobStore::writer`], so they are held there).
    async fn place_part(
        &self,
        upload: &str,
        part: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        hold(self.repos.as_ref(), std::slice::from_ref(digest)).await?;
        self.inner.place_part(upload, part, digest, size).await
    }

    async fn delete_parts(&self, upload: &str) -> Result<(), StoreError> {
        self.inner.delete_parts(upload).await
    }
}

struct HoldingWriter {
    inner: Box<dyn BlobWriter>,
    repos: Arc<dyn RepositoryStore>,
}

#[async_trait]
impl BlobWriter for HoldingWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.inner.write(chunk).await
    }

    fn written(&self) -> u64 {
        self.inner.written()
    }

    async fn commit(
        self: Box<Self>,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        if let Err(e) = hold(self.repos.as_ref(), std::slice::from_ref(expected)).await {
            let _ = self.inner.cancel().await;
            return Err(e);
        }
        self.inner.commit(expected, size).await
    }

    async fn cancel(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.cancel().await
    }
}
