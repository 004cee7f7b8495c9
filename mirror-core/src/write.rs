//! The registry's write path: storing a manifest and moving a tag, for a
//! push and a poll alike, so "a tag never points at something missing" is
//! enforced in one place.
//!
//! `publish_checked` is the door to [`RepositoryStore::publish`] (a push
//! checks first and publishes after storing its bytes, the same two steps):
//! every blob a manifest references must be committed in the blob store
//! and either already held by the repository or vouched for by the caller
//! (a poll vouches for the blobs it copied or was allowed to reuse); every
//! child manifest must be held by the repository or published in the same
//! call. [`push_manifest`] is a push's whole write: parse, check the
//! digest or tag, store the bytes, publish.

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::manifest::{MAX_MANIFEST_SIZE, Manifest, ManifestError};
use crate::reference::{RepositoryName, validate_tag};
use crate::store::{BlobStore, ManifestRecord, RepositoryStore, StoreError, TagRecord};

/// Why a manifest cannot be stored or published.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The reference is neither a valid tag nor a valid digest.
    #[error("{reason}")]
    InvalidReference {
        /// `true` when it looked like a digest (had a `:`).
        digest: bool,
        /// Why.
        reason: String,
    },
    /// The bytes are not a manifest this registry stores.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Pushed by digest, the bytes hash to another one.
    #[error("the manifest's digest is {actual}, not {expected}")]
    DigestMismatch {
        /// The digest in the reference.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// A blob or child manifest it references is not in the repository.
    #[error("{digest} is referenced but not in the repository")]
    MissingReference {
        /// The missing digest.
        digest: Digest,
    },
    /// The repository does not exist.
    #[error("repository {repository} does not exist")]
    NoSuchRepository {
        /// Its name.
        repository: RepositoryName,
    },
    /// A store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl WriteError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WriteError::InvalidReference { .. }
            | WriteError::Manifest(_)
            | WriteError::DigestMismatch { .. }
            | WriteError::MissingReference { .. } => ErrorKind::Invalid,
            WriteError::NoSuchRepository { .. } => ErrorKind::NotFound,
            WriteError::Store(_) => ErrorKind::Internal,
        }
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The manifest it refers to (OCI 1.1 `subject`), if any.
    pub subject: Option<Digest>,
}

/// A manifest's reference in a push: a tag or a digest.
enum Reference<'a> {
    Tag(&'a str),
    Digest(Digest),
}

impl<'a> Reference<'a> {
    fn parse(reference: &'a str) -> Result<Self, WriteError> {
        if reference.contains(':') {
            Digest::parse(reference)
                .map(Reference::Digest)
                .map_err(|e| WriteError::InvalidReference {
                    digest: true,
                    reason: e.to_string(),
                })
        } else {
            validate_tag(reference)
                .map(|()| Reference::Tag(reference))
                .map_err(|e| WriteError::InvalidReference {
                    digest: false,
                    reason: e.to_string(),
                })
        }
    }
}

/// Links `manifests` (children before parents) into `repo` and moves
/// `tags`, in one transaction, after [`check_references`].
pub(crate) async fn publish_checked(
    blobs: &dyn BlobStore,
    repos: &dyn RepositoryStore,
    repo: &RepositoryName,
    manifests: &[ManifestRecord],
    tags: &[TagRecord],
    vouched: impl Fn(&Digest) -> bool,
) -> Result<(), WriteError> {
    check_references(blobs, repos, repo, manifests, &vouched).await?;
    publish(repos, repo, manifests, tags).await
}

/// [`RepositoryStore::publish`], its `NotFound` said as a missing
/// repository. Only after [`check_references`].
async fn publish(
    repos: &dyn RepositoryStore,
    repo: &RepositoryName,
    manifests: &[ManifestRecord],
    tags: &[TagRecord],
) -> Result<(), WriteError> {
    match repos.publish(repo, manifests, tags).await {
        Err(StoreError::NotFound { .. }) => Err(WriteError::NoSuchRepository {
            repository: repo.clone(),
        }),
        other => Ok(other?),
    }
}

/// Checks that nothing `manifests` reference is missing from `repo`: each
/// blob committed in `blobs` and held by the repository (or `vouched` for
/// by the caller), each child held or earlier in `manifests`.
async fn check_references(
    blobs: &dyn BlobStore,
    repos: &dyn RepositoryStore,
    repo: &RepositoryName,
    manifests: &[ManifestRecord],
    vouched: &impl Fn(&Digest) -> bool,
) -> Result<(), WriteError> {
    // Held before anything is checked: a collector either saw the hold
    // and keeps these, or finished deleting them before they are checked
    // (see `crate::gc`). The publish follows within the grace period.
    let linked: Vec<Digest> = manifests
        .iter()
        .flat_map(|m| {
            std::iter::once(&m.digest)
                .chain(&m.blobs)
                .chain(&m.children)
        })
        .cloned()
        .collect();
    crate::gc::hold(repos, &linked).await?;
    for (i, m) in manifests.iter().enumerate() {
        for d in &m.blobs {
            let stored = blobs.stat(d).await?.is_some();
            if !stored || !(vouched(d) || repos.has_blob(repo, d).await?) {
                return Err(WriteError::MissingReference { digest: d.clone() });
            }
        }
        for c in &m.children {
            let earlier = manifests[..i].iter().any(|r| &r.digest == c);
            if !earlier && repos.manifest(repo, c).await?.is_none() {
                return Err(WriteError::MissingReference { digest: c.clone() });
            }
        }
    }
    Ok(())
}

/// Stores a pushed manifest in `repo` under `reference` (a tag, or the
/// digest the bytes must hash to): parsed with [`Manifest::parse`]
/// (`content_type` when the JSON names no media type), every blob and
/// child it references already in the repository, the bytes stored, then
/// linked and the tag moved in one transaction.
pub async fn push_manifest(
    blobs: &dyn BlobStore,
    repos: &dyn RepositoryStore,
    repo: &RepositoryName,
    reference: &str,
    bytes: Bytes,
    content_type: Option<&str>,
) -> Result<PushedManifest, WriteError> {
    let reference = Reference::parse(reference)?;
    let manifest = Manifest::parse(&bytes, content_type)?;
    let digest = Digest::of(&bytes);
    if let Reference::Digest(expected) = &reference
        && *expected != digest
    {
        return Err(WriteError::DigestMismatch {
            expected: expected.clone(),
            actual: digest,
        });
    }
    let size = bytes.len() as u64;
    debug_assert!(size <= MAX_MANIFEST_SIZE, "checked by Manifest::parse");
    let record = ManifestRecord::from_manifest(digest.clone(), size, &manifest);
    // Checked before the bytes are stored, so a refused push leaves
    // nothing behind; a push vouches for nothing it did not upload.
    check_references(
        blobs,
        repos,
        repo,
        std::slice::from_ref(&record),
        &|_: &Digest| false,
    )
    .await?;
    if blobs.stat(&digest).await? != Some(size) {
        blobs.put(bytes, &digest).await?;
    }
    let tags: Vec<TagRecord> = match reference {
        Reference::Tag(name) => vec![TagRecord {
            name: name.to_string(),
            digest: digest.clone(),
            media_type: manifest.media_type.clone(),
            size,
            mirrored: None,
            updated_at: chrono::Utc::now(),
        }],
        Reference::Digest(_) => Vec::new(),
    };
    publish(repos, repo, &[record], &tags).await?;
    Ok(PushedManifest {
        digest,
        media_type: manifest.media_type,
        subject: manifest.subject.map(|s| s.digest),
    })
}
