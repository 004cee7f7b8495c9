//! [`RepositoryStore`]: what each local repository holds.
//!
//! Blobs are shared and content-addressed in the [`super::BlobStore`]; this
//! store records which manifests and blobs belong to which repository and
//! where each tag points. [`RepositoryStore::publish`] links manifests and
//! moves tags in one transaction, after every blob has been committed, so a
//! tag never points at something missing.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::digest::Digest;
use crate::manifest::{Manifest, ManifestBody};
use crate::reference::RepositoryName;

/// Who can pull a repository without credentials.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone may pull.
    Public,
    /// Only users with access.
    Private,
}

impl Visibility {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// What is needed to create a repository.
#[derive(Debug, Clone)]
pub struct NewRepository {
    /// `namespace/name`.
    pub name: RepositoryName,
    /// Public or private.
    pub visibility: Visibility,
    /// One line of description.
    pub short_description: String,
}

/// A local repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// Stable identifier (UUID).
    pub id: String,
    /// `namespace/name`.
    pub name: RepositoryName,
    /// Public or private.
    pub visibility: Visibility,
    /// One line of description.
    pub short_description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Repository {
    /// The record of `repo`, created now with a new ID.
    pub(crate) fn created(repo: &NewRepository) -> Self {
        Repository {
            id: uuid::Uuid::new_v4().to_string(),
            name: repo.name.clone(),
            visibility: repo.visibility,
            short_description: repo.short_description.clone(),
            created_at: crate::job::now(),
        }
    }
}

/// A manifest as stored in a repository: its identity and what it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    /// Digest of the manifest bytes (in the blob store).
    pub digest: Digest,
    /// Media type of the manifest.
    pub media_type: String,
    /// Size of the manifest bytes.
    pub size: u64,
    /// Blobs it references (config and layers).
    pub blobs: Vec<Digest>,
    /// Child manifests (for an index).
    pub children: Vec<Digest>,
    /// The manifest it refers to, for referrers.
    pub subject: Option<Digest>,
    /// `artifactType`, or the config media type, for the referrers API.
    pub artifact_type: Option<String>,
}

impl ManifestRecord {
    /// The record of `manifest`, whose bytes are `size` long and hash to
    /// `digest`: what it references, its subject, and its `artifactType`
    /// (else, for an image, its config media type, as the referrers API
    /// reports).
    pub fn from_manifest(digest: Digest, size: u64, manifest: &Manifest) -> Self {
        let artifact_type = manifest
            .artifact_type
            .clone()
            .or_else(|| match &manifest.body {
                ManifestBody::Image { config, .. } => Some(config.media_type.clone()),
                ManifestBody::Index { .. } => None,
            });
        ManifestRecord {
            digest,
            media_type: manifest.media_type.clone(),
            size,
            blobs: manifest.blobs().iter().map(|d| d.digest.clone()).collect(),
            children: manifest
                .children()
                .iter()
                .map(|d| d.digest.clone())
                .collect(),
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            artifact_type,
        }
    }
}

/// A tag and where it points, as stored. Not a wire shape: the APIs and
/// Python show a tag as [`crate::api::Tag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    /// The tag.
    pub name: String,
    /// The manifest digest it points to.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Where a poll mirrored it from; `None` for a pushed tag.
    pub mirrored: Option<TagSource>,
    /// When the tag last moved.
    pub updated_at: DateTime<Utc>,
}

/// Where a mirrored tag came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSource {
    /// The policy whose poll wrote the tag.
    pub policy_id: String,
    /// The remote repository, `host/namespace/name` (the host as the
    /// policy's `remoteHost`, scheme included).
    pub remote_repository: String,
    /// The tag on the remote.
    pub remote_tag: String,
    /// The remote digest the tag was copied from, when the local digest
    /// differs (an index rewritten to the policy's platforms); `None`: the
    /// same as the tag's.
    pub remote_digest: Option<Digest>,
}

/// How many earlier values of one tag [`RepositoryStore::tag_history`]
/// keeps: a move past this many drops the oldest, in the same transaction.
pub const TAG_HISTORY_LIMIT: usize = 50;

/// One earlier value of a tag: the manifest it pointed at and how that
/// ended. Written by the store in the transaction that moves or deletes the
/// tag (a publish at the same digest is no move); the newest
/// [`TAG_HISTORY_LIMIT`] of each tag are kept, and they go with their
/// repository.
///
/// History keeps no manifest alive: garbage collection removes an untagged
/// manifest as it would without it. [`TagHistoryEntry::available`] says
/// whether the repository still holds the manifest (so `@digest` pulls).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagHistoryEntry {
    /// The manifest the tag pointed at.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the tag started pointing at it.
    pub tagged_at: DateTime<Utc>,
    /// When the tag moved away from it or was deleted.
    pub replaced_at: DateTime<Utc>,
    /// The digest the tag moved to; `None` when the tag was deleted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub replaced_by: Option<Digest>,
    /// The policy whose poll had mirrored this value; `None` for a pushed
    /// one.
    pub mirrored_by: Option<String>,
    /// Whether the repository still holds the manifest (read with the
    /// entry): `false` once garbage collection or a manifest delete took
    /// it.
    pub available: bool,
}

/// How long a garbage collector's claim on a digest stands (see
/// [`RepositoryStore::claim_unreferenced`]): a hold finds a claim younger
/// than this "being deleted"; an older one is a collector that died, and is
/// ignored. A collector never deletes under a claim older than half of it.
pub const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Everything one repository holds, read at once for garbage collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryContent {
    /// Every tag and the manifest it points at.
    pub tags: Vec<(String, Digest)>,
    /// Every manifest the repository holds, with its references.
    pub manifests: Vec<ManifestRecord>,
    /// Every blob linked to it (by a manifest, a push or a mount).
    pub blobs: Vec<Digest>,
}

/// Local repositories, their manifests and tags.
///
/// Garbage collection's part is a set of *holds* (a digest and when a
/// writer last said it is about to link it; [`RepositoryStore::publish`]
/// and [`RepositoryStore::link_blob`] hold what they link too) and
/// *claims* (a digest a collector is deleting): a hold and a claim of one
/// digest are serialized, so either the claim sees the hold or the hold
/// sees the claim (see `ARCHITECTURE.md`, garbage collection).
#[async_trait]
pub trait RepositoryStore: Send + Sync + 'static {
    /// Creates a repository; `Conflict` if it exists.
    async fn create_repository(&self, repo: &NewRepository) -> Result<Repository, StoreError>;

    /// One repository, or `None`.
    async fn repository(&self, name: &RepositoryName) -> Result<Option<Repository>, StoreError>;

    /// All repositories, sorted by name.
    async fn repositories(&self) -> Result<Vec<Repository>, StoreError>;

    /// Deletes a repository with its tags and links (blobs stay in the blob
    /// store for garbage collection). Returns whether it existed.
    async fn delete_repository(&self, name: &RepositoryName) -> Result<bool, StoreError>;

    /// Every tag of a repository, sorted by name.
    async fn tags(&self, repo: &RepositoryName) -> Result<Vec<TagRecord>, StoreError>;

    /// How many tags a repository has.
    async fn tag_count(&self, repo: &RepositoryName) -> Result<u64, StoreError> {
        Ok(self.tags(repo).await?.len() as u64)
    }

    /// Tag name to the digest a poll's diff compares with the remote's:
    /// the remote digest of a tag mirrored from another digest (see
    /// [`TagSource::remote_digest`]), else the tag's digest.
    async fn tag_digests(
        &self,
        repo: &RepositoryName,
    ) -> Result<HashMap<String, Digest>, StoreError> {
        Ok(self
            .tags(repo)
            .await?
            .into_iter()
            .map(|t| {
                let compared = t.mirrored.and_then(|m| m.remote_digest);
                (t.name, compared.unwrap_or(t.digest))
            })
            .collect())
    }

    /// One tag, or `None`.
    async fn tag(&self, repo: &RepositoryName, tag: &str) -> Result<Option<TagRecord>, StoreError>;

    /// A manifest held by the repository, or `None`.
    async fn manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, StoreError>;

    /// Whether the repository holds (links) this blob.
    async fn has_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool, StoreError>;

    /// The repositories that hold (link) `digest`, as a blob or a
    /// manifest, sorted by name. Used to decide whether stored content may
    /// be linked elsewhere without downloading it (see [`crate::access`]).
    async fn holders(&self, digest: &Digest) -> Result<Vec<RepositoryName>, StoreError> {
        let mut out = Vec::new();
        for repo in self.repositories().await? {
            if self.has_blob(&repo.name, digest).await? {
                out.push(repo.name);
            }
        }
        Ok(out)
    }

    /// Manifests in the repository whose subject is `digest` (referrers).
    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<ManifestRecord>, StoreError>;

    /// In one transaction: links `manifests` (children before parents) and
    /// their blobs to the repository, then points `tags` at their digests.
    /// The caller guarantees every referenced blob is committed. Fails with
    /// `NotFound` if the repository does not exist.
    async fn publish(
        &self,
        repo: &RepositoryName,
        manifests: &[ManifestRecord],
        tags: &[TagRecord],
    ) -> Result<(), StoreError>;

    /// As [`RepositoryStore::publish`], but links none of the manifests'
    /// blobs: a pull-through cache records manifests fetched from its
    /// upstream before their blobs, which are linked one by one
    /// ([`RepositoryStore::link_blob`]) as they are fetched and verified.
    async fn publish_cached(
        &self,
        repo: &RepositoryName,
        manifests: &[ManifestRecord],
        tags: &[TagRecord],
    ) -> Result<(), StoreError>;

    /// Removes a tag. Returns whether it existed.
    async fn delete_tag(&self, repo: &RepositoryName, tag: &str) -> Result<bool, StoreError>;

    /// The earlier values of a tag, newest first (at most
    /// [`TAG_HISTORY_LIMIT`]): every move ([`RepositoryStore::publish`] at
    /// another digest) and delete ([`RepositoryStore::delete_tag`],
    /// [`RepositoryStore::delete_manifest`]) records one in the
    /// transaction that writes the tag. Empty for a tag never moved, or an
    /// unknown repository.
    async fn tag_history(
        &self,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Vec<TagHistoryEntry>, StoreError>;

    /// Links a committed blob to the repository without a manifest (a
    /// pushed or mounted blob), so that manifests published later may
    /// reference it. The caller guarantees the blob is committed. Fails with
    /// `NotFound` if the repository does not exist.
    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError>;

    /// Removes a blob link from the repository. Returns whether it existed.
    /// Manifests that reference the blob stay (as in distribution); the
    /// bytes stay in the blob store, which other repositories may share.
    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest)
    -> Result<bool, StoreError>;

    /// Everything `repo` holds (empty when it does not exist).
    async fn content(&self, repo: &RepositoryName) -> Result<RepositoryContent, StoreError>;

    /// Records that a writer is about to link `digests` (held at `at`),
    /// then answers those a collector has claimed since `at` minus
    /// [`CLAIM_TTL`]: their bytes are being deleted, and the writer must
    /// wait until the claim is released before relying on them.
    async fn hold_digests(
        &self,
        digests: &[Digest],
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError>;

    /// Every digest held at or after `since`.
    async fn held_since(&self, since: DateTime<Utc>) -> Result<Vec<Digest>, StoreError>;

    /// Forgets holds older than `before`. Returns how many went.
    async fn prune_holds(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// In one transaction, removes from `repo` what garbage collection found
    /// unreferenced, each only if it still is: each of `manifests` (in
    /// order, so parents before children) that no tag points at, no
    /// manifest of the repository lists as a child, whose subject no tag
    /// points at, and that is not held at or after `held_since`; then each
    /// of `blobs` linked to the repository that no manifest of it
    /// references and that is not held since then. Returns the manifests
    /// and blob links removed.
    async fn remove_unreferenced(
        &self,
        repo: &RepositoryName,
        manifests: &[Digest],
        blobs: &[Digest],
        held_since: DateTime<Utc>,
    ) -> Result<(Vec<Digest>, Vec<Digest>), StoreError>;

    /// In one transaction (serialized with [`RepositoryStore::hold_digests`]),
    /// claims for deletion those of `digests` that no repository links or
    /// references as a blob or manifest and that are not held at or after
    /// `held_since`, and that no other claim younger than [`CLAIM_TTL`]
    /// holds (two collectors never delete under one claim); a claim is
    /// recorded at `at`. Returns the claimed ones:
    /// only their bytes may be deleted, and only until `at` plus half of
    /// [`CLAIM_TTL`].
    async fn claim_unreferenced(
        &self,
        digests: &[Digest],
        held_since: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError>;

    /// Drops the claims on `digests` (their bytes are gone, or were left).
    async fn release_claims(&self, digests: &[Digest]) -> Result<(), StoreError>;

    /// In one transaction: removes a manifest from the repository with its
    /// references and every tag that points at it. Its children and blobs
    /// stay linked; the bytes stay in the blob store. Returns whether the
    /// repository held it.
    async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError>;
}
