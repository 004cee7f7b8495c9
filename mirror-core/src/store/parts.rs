//! Chunked uploads that any process sharing the blob store can continue.
//!
//! A chunked push (`POST`, `PATCH`..., `PUT ?digest=`) may send each
//! request to another replica, or outlive a restart. So nothing of it stays
//! in memory between requests: each request's bytes become a *part* in the
//! blob store ([`BlobStore::part_writer`]), hashed on the way by a hasher
//! that resumes where the previous part stopped; the upload's
//! [`UploadProgress`] (size, parts, saved hasher) is what the caller keeps
//! between requests (the server: in its shared database), replaced only by
//! the request that wrote the next part. Completing checks the digest
//! against that hasher; then the only part is moved into place, or several
//! are copied through a [`BlobWriter`](super::BlobWriter), which hashes
//! again. A blob is visible only when whole and verified.
//!
//! ```text
//! progress0 --part_writer(hasher0)--> part A --with_part--> progress1
//! progress1 --part_writer(hasher1)--> part B --with_part--> progress2
//! progress2 --complete(digest)--> blob (A alone: moved; A+B: copied)
//! ```

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{BlobStore, PartWriter, StoreError};
use crate::digest::{Digest, Hasher};

/// Where a chunked upload stands between requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadProgress {
    /// Bytes received so far.
    pub size: u64,
    /// The parts holding them, in order.
    pub parts: Vec<String>,
    /// The hasher after the last part ([`Hasher::save`]).
    hasher: String,
}

impl Default for UploadProgress {
    fn default() -> Self {
        UploadProgress {
            size: 0,
            parts: Vec::new(),
            hasher: Hasher::new().save(),
        }
    }
}

/// Checks that an upload ID is safe as a path segment or key part
/// (letters, digits, `-`; 1 to 64 of them).
pub fn check_upload_id(upload: &str) -> Result<(), StoreError> {
    let ok = !upload.is_empty()
        && upload.len() <= 64
        && upload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            reason: format!("{upload:?} is not an upload ID"),
        })
    }
}

impl UploadProgress {
    /// A new, empty upload.
    pub fn new() -> Self {
        Self::default()
    }

    /// The progress as text, to keep between requests.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("plain fields serialize")
    }

    /// The progress [`UploadProgress::encode`] wrote.
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let progress: UploadProgress =
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                reason: format!("a saved upload's progress does not parse: {e}"),
            })?;
        progress.resumed_hasher()?;
        Ok(progress)
    }

    fn resumed_hasher(&self) -> Result<Hasher, StoreError> {
        let hasher = Hasher::resume(&self.hasher).map_err(|e| StoreError::Corrupt {
            reason: format!("a saved upload's hasher: {e}"),
        })?;
        if hasher.len() != self.size {
            return Err(StoreError::Corrupt {
                reason: format!(
                    "a saved upload's hasher saw {} bytes, its progress says {}",
                    hasher.len(),
                    self.size
                ),
            });
        }
        Ok(hasher)
    }

    /// Starts the next part of `upload` in `blobs`.
    pub async fn next_part(
        &self,
        blobs: &dyn BlobStore,
        upload: &str,
    ) -> Result<Box<dyn PartWriter>, StoreError> {
        blobs.part_writer(upload, self.resumed_hasher()?).await
    }

    /// The progress once the part `name`, finished with `hasher`, follows
    /// the parts so far (an empty part is left out).
    pub fn with_part(&self, name: String, hasher: Hasher) -> UploadProgress {
        let mut next = self.clone();
        if hasher.len() > self.size {
            next.size = hasher.len();
            next.hasher = hasher.save();
            next.parts.push(name);
        }
        next
    }

    /// Checks the upload's bytes against `digest` and makes them the blob
    /// `digest` in `blobs`; on a mismatch nothing becomes visible. The
    /// parts stay: remove them with [`BlobStore::delete_parts`] whatever
    /// the outcome.
    pub async fn complete(
        &self,
        blobs: &dyn BlobStore,
        upload: &str,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let actual = self.resumed_hasher()?.finish();
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        match self.parts.as_slice() {
            [] => blobs.put(bytes::Bytes::new(), digest).await,
            [only] => blobs.place_part(upload, only, digest, self.size).await,
            parts => {
                let mut writer = blobs.writer().await?;
                for part in parts {
                    let mut stream = blobs.part_reader(upload, part).await?;
                    while let Some(chunk) = stream.next().await {
                        writer.write(chunk?).await?;
                    }
                }
                writer.commit(digest, Some(self.size)).await
            }
        }
    }
}

/// How long parts of a chunked upload are kept without a write before
/// [`BlobStore::purge_uploads`] removes them: far past any session's
/// idle timeout, so only parts whose session ended without removing them
/// (a crash) go.
pub const PARTS_KEPT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
