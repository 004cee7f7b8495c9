//! Manifest parsing: just enough to know what a manifest references.
//!
//! Manifests are copied byte for byte (their digest is their identity), so this
//! module never re-serializes one. It reads the media type and the descriptors
//! of children (for an index), config, layers and subject (for an image or
//! artifact), treating unknown media types of blobs as opaque.

use serde::Deserialize;

use crate::digest::Digest;

/// The largest manifest accepted, as in distribution (4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest (also used for artifacts).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header sent for manifests: every type we can mirror.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether `media_type` is one of the four manifest types regmirror mirrors.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | OCI_MANIFEST | OCI_INDEX
    )
}

/// A content descriptor: what a manifest says about a blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// The platform of an index entry, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Non-distributable ("foreign") layers list where they can be fetched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// The descriptor's annotations (string values only; others are
    /// ignored), such as BuildKit's `vnd.docker.reference.digest`.
    #[serde(
        default,
        deserialize_with = "string_values",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The artifact type of a referrer, as a referrers list gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Reads an annotation map keeping only its string values (a hostile or
/// careless manifest may put anything there; it still parses).
fn string_values<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let map: Option<serde_json::Map<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Platform {
    /// CPU architecture, such as `amd64`.
    pub architecture: String,
    /// Operating system, such as `linux`.
    pub os: String,
    /// CPU variant, such as `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest references, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestBody {
    /// An image index or manifest list: child manifests.
    Index {
        /// The child manifests, in order.
        manifests: Vec<Descriptor>,
    },
    /// An image (or artifact) manifest: blobs.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layers, in order.
        layers: Vec<Descriptor>,
    },
}

/// A parsed manifest: its media type, what it references, and an optional subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The effective media type (from the JSON, else the served Content-Type).
    pub media_type: String,
    /// Children or blobs.
    pub body: ManifestBody,
    /// The manifest this one refers to (OCI 1.1 referrers), if any.
    pub subject: Option<Descriptor>,
    /// The `artifactType` field (OCI 1.1), if any.
    pub artifact_type: Option<String>,
    /// The manifest's `annotations` (string values only; others are
    /// ignored), which the referrers API reports.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Why manifest bytes cannot be mirrored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_SIZE`].
    #[error("manifest is {size} bytes, over the {MAX_MANIFEST_SIZE}-byte limit")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// Not JSON, or not shaped like a manifest.
    #[error("manifest is not valid: {reason}")]
    Invalid {
        /// What the parser said.
        reason: String,
    },
    /// A media type we do not mirror (such as Docker schema 1).
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default, deserialize_with = "string_values")]
    annotations: std::collections::BTreeMap<String, String>,
}

impl Manifest {
    /// Parses manifest bytes; `content_type` is the media type the registry
    /// served them with, used when the JSON carries none.
    ///
    /// ```
    /// let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    /// let m = mirror_core::Manifest::parse(bytes, None).unwrap();
    /// assert_eq!(m.media_type, mirror_core::manifest::OCI_INDEX);
    /// ```
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge {
                size: bytes.len() as u64,
            });
        }
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid {
                reason: e.to_string(),
            })?;
        if raw.schema_version == Some(1) {
            return Err(ManifestError::UnsupportedMediaType {
                media_type: "application/vnd.docker.distribution.manifest.v1+json (schema 1)"
                    .into(),
            });
        }
        // The JSON's own mediaType wins; an OCI manifest may omit it, and then
        // the shape decides (a `manifests` key means an index).
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim())
            .filter(|c| is_manifest_media_type(c));
        let media_type = match (&raw.media_type, content_type) {
            (Some(m), _) => m.clone(),
            (None, Some(c)) => c.to_string(),
            (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        let body = match media_type.as_str() {
            DOCKER_MANIFEST_LIST | OCI_INDEX => ManifestBody::Index {
                manifests: raw.manifests.ok_or_else(|| ManifestError::Invalid {
                    reason: "an index has no \"manifests\" list".into(),
                })?,
            },
            DOCKER_MANIFEST | OCI_MANIFEST => ManifestBody::Image {
                config: raw.config.ok_or_else(|| ManifestError::Invalid {
                    reason: "an image manifest has no \"config\"".into(),
                })?,
                layers: raw.layers.unwrap_or_default(),
            },
            other => {
                return Err(ManifestError::UnsupportedMediaType {
                    media_type: other.to_string(),
                });
            }
        };
        Ok(Manifest {
            media_type,
            body,
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations,
        })
    }

    /// Blobs (config and layers) this manifest references directly.
    /// Foreign layers (with `urls`) are not distributable and are skipped.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.body {
            ManifestBody::Index { .. } => Vec::new(),
            ManifestBody::Image { config, layers } => std::iter::once(config)
                .chain(layers.iter().filter(|l| !is_foreign(l)))
                .collect(),
        }
    }

    /// Child manifests of an index; empty for an image.
    pub fn children(&self) -> &[Descriptor] {
        match &self.body {
            ManifestBody::Index { manifests } => manifests,
            ManifestBody::Image { .. } => &[],
        }
    }
}

/// Whether a layer is non-distributable: it names external URLs and a
/// "foreign"/"nondistributable" media type, so registries do not serve it.
fn is_foreign(d: &Descriptor) -> bool {
    !d.urls.is_empty()
        && (d.media_type.contains("foreign") || d.media_type.contains("nondistributable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":10}},
            "layers":[{{"mediaType":"application/x-custom","digest":"{D2}","size":20}}]}}"#
        );
        let m = Manifest::parse(json.as_bytes(), None).unwrap();
        let digests: Vec<String> = m.blobs().iter().map(|d| d.digest.to_string()).collect();
        assert_eq!(digests, [D1, D2]);
    }

    #[test]
    fn oci_manifest_without_media_type_uses_shape() {
        let json = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5}}]}}"#
        );
        let m = Manifest::parse(json.as_bytes(), None).unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
        assert_eq!(m.children().len(), 1);
    }

    #[test]
    fn rejects_schema1_oversize_and_garbage() {
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":1,"name":"x"}"#, None),
            Err(ManifestError::UnsupportedMediaType { .. })
        ));
        let big = vec![b' '; MAX_MANIFEST_SIZE as usize + 1];
        assert!(matches!(
            Manifest::parse(&big, None),
            Err(ManifestError::TooLarge { .. })
        ));
        assert!(matches!(
            Manifest::parse(b"not json", None),
            Err(ManifestError::Invalid { .. })
        ));
        let bad_digest =
            r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../x","size":1}}"#;
        assert!(Manifest::parse(bad_digest.as_bytes(), None).is_err());
    }
}
