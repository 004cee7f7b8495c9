//! What a tag's manifest says about the image behind it: its platforms
//! (`os/arch[/variant]`), its size (config + layers), and what its config
//! says (OS version, creation time, author), read from the stored manifest
//! bytes and, for an image, its config blob; for an index, the same for
//! each image it lists.
//!
//! Every read is bounded by [`MAX_MANIFEST_SIZE`]. Manifests and configs
//! are content-addressed, so a summary never changes for a digest: they
//! are kept in a small process-wide cache and a tag list reads each
//! manifest once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::digest::Digest;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, Manifest, ManifestBody, Platform};
use crate::store::{BlobStore, StoreError};
use serde::Deserialize;

/// Summaries kept at most; the cache starts over when full.
const CACHE_ENTRIES: usize = 4096;

/// Media types of image configs, whose `os` / `architecture` name the
/// platform. Other configs (artifacts) are not read.
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
];

/// The platforms and size of one manifest, and what its config (or each
/// image of an index) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// `os/arch[/variant]`: the image's, or each child's of an index
    /// (attestation entries, platform `unknown/unknown`, left out).
    pub platforms: Vec<String>,
    /// Config plus layer sizes; for an index the sum over its children.
    /// `None` when a manifest or child could not be read.
    pub image_size: Option<u64>,
    /// An image's config (its descriptor, and what it says when it is an
    /// image config); `None` for an index.
    pub config: Option<ImageConfig>,
    /// An index's images, in order (attestations left out).
    pub images: Vec<IndexImage>,
}

/// An image's config blob: where it is and, for an image config, what it
/// says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// The config's digest.
    pub digest: String,
    /// The config's media type.
    pub media_type: String,
    /// The platform it names (`os`, `architecture`, `variant`).
    pub platform: Option<Platform>,
    /// `os.version` (Windows images).
    pub os_version: Option<String>,
    /// `created`: when the image was built (RFC 3339, as the config says).
    pub created: Option<String>,
    /// `author`.
    pub author: Option<String>,
}

/// One image an index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexImage {
    /// The child manifest's digest.
    pub digest: String,
    /// The child manifest's media type.
    pub media_type: String,
    /// The child manifest's size in bytes.
    pub size: u64,
    /// Its platform: the index entry's, else its config's.
    pub platform: Option<Platform>,
    /// Its config, when the child could be read.
    pub config: Option<ImageConfig>,
    /// Its config plus layer sizes, when the child could be read.
    pub image_size: Option<u64>,
}

fn cache() -> &'static Mutex<HashMap<Digest, Arc<ImageInfo>>> {
    static CACHE: OnceLock<Mutex<HashMap<Digest, Arc<ImageInfo>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The summary of the stored manifest `digest` (cached once complete).
pub async fn image_info(blobs: &dyn BlobStore, digest: &Digest) -> Arc<ImageInfo> {
    if let Some(hit) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(digest)
    {
        return hit.clone();
    }
    let (info, complete) = summarize(blobs, digest).await;
    let info = Arc::new(info);
    if complete {
        let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert(digest.clone(), info.clone());
    }
    info
}

async fn read_manifest(blobs: &dyn BlobStore, digest: &Digest) -> Option<Manifest> {
    let bytes = blobs.read_small(digest, MAX_MANIFEST_SIZE).await.ok()?;
    Manifest::parse(&bytes, None).ok()
}

/// The fields of an image config this module reads.
#[derive(Debug, Default, Deserialize)]
struct ConfigFields {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default, rename = "os.version")]
    os_version: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: Option<String>,
}

/// What the config `config` names; only image configs (of a readable
/// size) are read, others are described by their descriptor alone. `Err`
/// when an image config could not be read.
async fn read_config(
    blobs: &dyn BlobStore,
    config: &Descriptor,
) -> Result<ImageConfig, StoreError> {
    let mut out = ImageConfig {
        digest: config.digest.to_string(),
        media_type: config.media_type.clone(),
        ..ImageConfig::default()
    };
    if !IMAGE_CONFIGS.contains(&config.media_type.as_str()) || config.size > MAX_MANIFEST_SIZE {
        return Ok(out);
    }
    let bytes = blobs.read_small(&config.digest, MAX_MANIFEST_SIZE).await?;
    let fields: ConfigFields = serde_json::from_slice(&bytes).unwrap_or_default();
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    out.platform = (!fields.os.is_empty() && !fields.architecture.is_empty()).then(|| Platform {
        os: fields.os,
        architecture: fields.architecture,
        variant: nonempty(fields.variant),
    });
    out.os_version = nonempty(fields.os_version);
    out.created = nonempty(fields.created);
    out.author = nonempty(fields.author);
    Ok(out)
}

fn image_size(config: &Descriptor, layers: &[Descriptor]) -> u64 {
    layers.iter().map(|l| l.size).sum::<u64>() + config.size
}

fn is_attestation(p: &Platform) -> bool {
    p.os == "unknown" && p.architecture == "unknown"
}

/// The summary of manifest `digest`, and whether every read it needed
/// succeeded (only then is it cached).
async fn summarize(blobs: &dyn BlobStore, digest: &Digest) -> (ImageInfo, bool) {
    let Some(manifest) = read_manifest(blobs, digest).await else {
        return (ImageInfo::default(), false);
    };
    match &manifest.body {
        ManifestBody::Image { config, layers } => {
            let size = image_size(config, layers);
            let read = read_config(blobs, config).await;
            let complete = read.is_ok();
            let config = read.unwrap_or_else(|_| ImageConfig {
                digest: config.digest.to_string(),
                media_type: config.media_type.clone(),
                ..ImageConfig::default()
            });
            let info = ImageInfo {
                platforms: config.platform.iter().map(Platform::to_string).collect(),
                image_size: Some(size),
                config: Some(config),
                images: Vec::new(),
            };
            (info, complete)
        }
        ManifestBody::Index { manifests } => {
            let mut info = ImageInfo {
                image_size: Some(0),
                ..ImageInfo::default()
            };
            let mut complete = true;
            for child in manifests {
                let (image, child_complete) = index_image(blobs, child).await;
                complete &= child_complete;
                info.image_size = info.image_size.zip(image.image_size).map(|(t, s)| t + s);
                if image.platform.as_ref().is_some_and(is_attestation) {
                    continue;
                }
                if let Some(text) = image.platform.as_ref().map(Platform::to_string)
                    && !info.platforms.contains(&text)
                {
                    info.platforms.push(text);
                }
                info.images.push(image);
            }
            let complete = complete && info.image_size.is_some();
            (info, complete)
        }
    }
}

/// One entry of an index, and whether every read it needed succeeded.
/// Only an image child has a size; a nested index counts as unknown.
async fn index_image(blobs: &dyn BlobStore, child: &Descriptor) -> (IndexImage, bool) {
    let mut image = IndexImage {
        digest: child.digest.to_string(),
        media_type: child.media_type.clone(),
        size: child.size,
        platform: child.platform.clone(),
        config: None,
        image_size: None,
    };
    let Some(ManifestBody::Image { config, layers }) =
        read_manifest(blobs, &child.digest).await.map(|m| m.body)
    else {
        return (image, true);
    };
    image.image_size = Some(image_size(&config, &layers));
    match read_config(blobs, &config).await {
        Ok(read) => {
            if image.platform.is_none() {
                image.platform = read.platform.clone();
            }
            image.config = Some(read);
            (image, true)
        }
        Err(_) => (image, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FsBlobStore, FsOptions};
    use bytes::Bytes;
    use serde_json::json;

    async fn put(store: &FsBlobStore, value: serde_json::Value) -> (Digest, u64) {
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap());
        let digest = Digest::of(&bytes);
        let size = bytes.len() as u64;
        store.put(bytes, &digest).await.unwrap();
        (digest, size)
    }

    fn desc(media_type: &str, digest: &Digest, size: u64) -> serde_json::Value {
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
    }

    async fn image(store: &FsBlobStore, os: &str, arch: &str, layer: u64) -> (Digest, u64) {
        let (config, config_size) = put(store, json!({"os": os, "architecture": arch})).await;
        let layer_digest = Digest::of(format!("layer {layer}").as_bytes());
        put(
            store,
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": desc(IMAGE_CONFIGS[1], &config, config_size),
                "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &layer_digest, layer)],
            }),
        )
        .await
    }

    #[tokio::test]
    async fn images_and_indexes() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), FsOptions { durable: false })?;
        let (amd, amd_size) = image(&store, "linux", "amd64", 1000).await;
        let (info, complete) = summarize(&store, &amd).await;
        assert!(complete);
        assert_eq!(info.platforms, ["linux/amd64"]);
        let config_size = serde_json::to_vec(&json!({"os": "linux", "architecture": "amd64"}))
            .unwrap()
            .len() as u64;
        assert_eq!(info.image_size, Some(1000 + config_size));

        // An index: platforms from its entries, or from the child's config
        // when the entry has none; attestations left out; sizes summed.
        let (arm, arm_size) = image(&store, "linux", "arm64", 2000).await;
        let (att, att_size) = image(&store, "unknown", "unknown", 10).await;
        let mut arm_entry = desc("application/vnd.oci.image.manifest.v1+json", &arm, arm_size);
        arm_entry["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
        let mut att_entry = desc("application/vnd.oci.image.manifest.v1+json", &att, att_size);
        att_entry["platform"] = json!({"os": "unknown", "architecture": "unknown"});
        let (index, _) = put(
            &store,
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    desc("application/vnd.oci.image.manifest.v1+json", &amd, amd_size),
                    arm_entry,
                    att_entry,
                ],
            }),
        )
        .await;
        let info = image_info(&store, &index).await;
        assert_eq!(info.platforms, ["linux/amd64", "linux/arm64/v8"]);
        let mut expected = 0;
        for d in [&amd, &arm, &att] {
            expected += summarize(&store, d).await.0.image_size.unwrap();
        }
        assert_eq!(info.image_size, Some(expected));

        // A manifest that is not stored: nothing known, nothing cached.
        let missing = Digest::of(b"missing");
        assert_eq!(*image_info(&store, &missing).await, ImageInfo::default());
        assert!(!cache().lock().unwrap().contains_key(&missing));
        Ok(())
    }
}
