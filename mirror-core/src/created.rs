//! When a remote image was built, for a `newest` rule ordered by
//! creation time ([`crate::rules::NewestBy::Created`]).
//!
//! The distribution API records no push time. The nearest a registry
//! serves is the image config's `created`: for an image, its config's; for
//! an index, the newest of its images' (attestation manifests left out).
//! Reading it costs a manifest GET and a config GET per image the store
//! does not hold; answers are kept per digest for the life of the process
//! (a digest's config never changes), so a poll every 30 minutes pays only
//! for digests it has not seen. Every read is bounded: manifests by
//! [`MAX_MANIFEST_SIZE`], configs by [`MAX_CONFIG_SIZE`], and each fetched
//! config is checked against its digest.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::digest::Digest;
use crate::manifest::{MAX_MANIFEST_SIZE, Manifest, ManifestBody, is_manifest_media_type};
use crate::reference::RepositoryName;
use crate::remote::{RemoteError, RemoteRegistry};
use crate::store::BlobStore;

/// The largest image config read for its `created` time.
pub const MAX_CONFIG_SIZE: u64 = 1024 * 1024;
/// Children of an index read at most for its newest `created`.
const MAX_CHILDREN: usize = 16;
/// Digests whose times are remembered (cleared when full).
const CACHE_ENTRIES: usize = 100_000;

fn cache() -> &'static Mutex<HashMap<Digest, Option<DateTime<Utc>>>> {
    static CACHE: OnceLock<Mutex<HashMap<Digest, Option<DateTime<Utc>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// When the image (or index) `digest` of `repo` was built, as its config
/// says; `Ok(None)` when it does not say (or says it unreadably). Read
/// from `blobs` when held there, else from `remote`.
pub async fn created(
    remote: &dyn RemoteRegistry,
    blobs: &dyn BlobStore,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Option<DateTime<Utc>>, RemoteError> {
    if let Some(hit) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(digest)
    {
        return Ok(*hit);
    }
    let time = read_created(remote, blobs, repo, digest).await?;
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHE_ENTRIES {
        map.clear();
    }
    map.insert(digest.clone(), time);
    Ok(time)
}

async fn read_created(
    remote: &dyn RemoteRegistry,
    blobs: &dyn BlobStore,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Option<DateTime<Utc>>, RemoteError> {
    let Some(manifest) = read_manifest(remote, blobs, repo, digest).await? else {
        return Ok(None);
    };
    match &manifest.body {
        ManifestBody::Image { config, .. } => {
            if config.size > MAX_CONFIG_SIZE {
                return Ok(None);
            }
            let bytes = config_bytes(remote, blobs, repo, &config.digest).await?;
            Ok(created_of(&bytes))
        }
        ManifestBody::Index { manifests } => {
            let mut newest = None;
            let images = manifests.iter().filter(|c| {
                is_manifest_media_type(&c.media_type)
                    && !c
                        .platform
                        .as_ref()
                        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
            });
            for child in images.take(MAX_CHILDREN) {
                let Some(m) = read_manifest(remote, blobs, repo, &child.digest).await? else {
                    continue;
                };
                if let ManifestBody::Image { config, .. } = &m.body
                    && config.size <= MAX_CONFIG_SIZE
                {
                    let bytes = config_bytes(remote, blobs, repo, &config.digest).await?;
                    newest = newest.max(created_of(&bytes));
                }
            }
            Ok(newest)
        }
    }
}

/// The manifest `digest`, from the store when held, else from the remote
/// (whose client checks the bytes against the digest); `None` when it
/// does not parse.
async fn read_manifest(
    remote: &dyn RemoteRegistry,
    blobs: &dyn BlobStore,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Option<Manifest>, RemoteError> {
    let bytes = match blobs.read_small(digest, MAX_MANIFEST_SIZE).await {
        Ok(b) => b,
        Err(_) => remote.get_manifest(repo, &digest.to_string()).await?.bytes,
    };
    Ok(Manifest::parse(&bytes, None).ok())
}

/// The config blob `digest`, from the store when held, else from the
/// remote: at most [`MAX_CONFIG_SIZE`] bytes, checked against the digest.
async fn config_bytes(
    remote: &dyn RemoteRegistry,
    blobs: &dyn BlobStore,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<u8>, RemoteError> {
    if let Ok(b) = blobs.read_small(digest, MAX_CONFIG_SIZE).await {
        return Ok(b.to_vec());
    }
    let mut body = remote.get_blob(repo, digest, 0).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.stream.next().await {
        let chunk = chunk?;
        if (bytes.len() + chunk.len()) as u64 > MAX_CONFIG_SIZE {
            return Err(RemoteError::LimitExceeded {
                what: format!("the config {repo}@{digest}"),
                limit: format!("more than {MAX_CONFIG_SIZE} bytes"),
                setting: "created::MAX_CONFIG_SIZE",
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(RemoteError::DigestMismatch {
            what: format!("the config {repo}@{digest}"),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// A config's `created`, when it is an RFC 3339 time.
fn created_of(config: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(default)]
        created: Option<String>,
    }
    let fields: Fields = serde_json::from_slice(config).ok()?;
    DateTime::parse_from_rfc3339(fields.created?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_reads_rfc3339_and_nothing_else() {
        let t = created_of(br#"{"created":"2024-05-01T12:00:00.123456789Z","os":"linux"}"#);
        assert_eq!(
            t.unwrap().to_rfc3339(),
            "2024-05-01T12:00:00.123456789+00:00"
        );
        assert_eq!(created_of(br#"{"created":"yesterday"}"#), None);
        assert_eq!(created_of(br#"{"created":5}"#), None);
        assert_eq!(created_of(b"not json"), None);
    }
}
