//! What a policy copies of each image besides the manifest a tag names:
//! which platforms of an index, and which referrers (signatures,
//! attestations, SBOMs) hang off what it copied.
//!
//! - **Platforms.** With none named, every child of an index is copied.
//!   With some, only the children whose platform matches one of them, and
//!   the index is kept in one of two ways ([`PlatformMode`]): `sparse`
//!   (the default) stores the upstream index byte for byte, so its digest
//!   and any signature over it still hold, and the registry answers 404
//!   for the children it does not hold; `rewrite` stores a new index
//!   listing only the copied children (a new digest, with the upstream one
//!   recorded beside the tag and in the index's annotations).
//! - **Referrers.** On by default: after a tag's tree is copied, what
//!   refers to its manifests is copied too, found through the remote's OCI
//!   1.1 referrers API, else through cosign's tag scheme
//!   (`sha256-<hex>.sig`, `.att`, `.sbom`). `artifactTypes` narrows it.

use serde::{Deserialize, Serialize};

use crate::manifest::{Descriptor, Platform};

/// A platform a policy names: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlatformSpec {
    /// Operating system, such as `linux`.
    pub os: String,
    /// CPU architecture, such as `arm64`.
    pub architecture: String,
    /// CPU variant, such as `v8`; `None` matches any variant.
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// Parses `os/architecture[/variant]`, each part lowercase letters,
    /// digits, `_`, `-` or `.`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let well_formed = |p: &str| {
            !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| well_formed(p)) {
            return Err(format!(
                "{text:?} is not a platform: write os/architecture[/variant], such as linux/arm64/v8"
            ));
        }
        Ok(PlatformSpec {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an index entry's platform is this one. A spec without a
    /// variant matches every variant; `arm64` without a variant in the
    /// index is `arm64/v8`, as containerd reads it.
    pub fn matches(&self, platform: &Platform) -> bool {
        if self.os != platform.os || self.architecture != platform.architecture {
            return false;
        }
        let Some(wanted) = &self.variant else {
            return true;
        };
        let variant = platform
            .variant
            .as_deref()
            .or((platform.architecture == "arm64").then_some("v8"));
        variant == Some(wanted.as_str())
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Serialize for PlatformSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlatformSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PlatformSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How an index is kept when a policy names platforms.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformMode {
    /// The upstream index byte for byte (same digest, signatures hold);
    /// only the named platforms' children are held.
    #[default]
    Sparse,
    /// A new index listing only the named platforms (a new digest; the
    /// upstream digest is kept beside the tag).
    Rewrite,
}

/// The annotation a rewritten index carries with the upstream index's
/// digest.
pub const UPSTREAM_DIGEST_ANNOTATION: &str = "io.regmirror.upstream.digest";

/// Most artifact types a policy may name.
const MAX_ARTIFACT_TYPES: usize = 32;
/// Most platforms a policy may name.
const MAX_PLATFORMS: usize = 32;

/// A platform or artifact type that cannot be used, with the field it is
/// in (a policy form's wire name: `platforms[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidSelection {
    /// The field.
    pub field: String,
    /// Why.
    pub reason: String,
}

impl InvalidSelection {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        InvalidSelection {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A policy's choice of content (see the module documentation), as it is
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentSelection {
    /// Platforms to copy from an index; empty: all.
    pub platforms: Vec<PlatformSpec>,
    /// How an index is kept when `platforms` is not empty.
    pub platform_mode: PlatformMode,
    /// Whether referrers are copied (default true).
    pub referrers: bool,
    /// Referrers' artifact types to copy; empty: all.
    pub artifact_types: Vec<String>,
}

impl Default for ContentSelection {
    fn default() -> Self {
        ContentSelection {
            platforms: Vec::new(),
            platform_mode: PlatformMode::Sparse,
            referrers: true,
            artifact_types: Vec::new(),
        }
    }
}

impl ContentSelection {
    /// Checks the wire fields and builds the selection: `platforms` as
    /// `os/architecture[/variant]`, `referrerArtifactTypes` as media types.
    pub fn from_fields(
        platforms: &[String],
        platform_mode: PlatformMode,
        referrers: bool,
        artifact_types: &[String],
    ) -> Result<Self, InvalidSelection> {
        if platforms.len() > MAX_PLATFORMS {
            return Err(InvalidSelection::new(
                "platforms",
                format!("{} platforms; at most {MAX_PLATFORMS}", platforms.len()),
            ));
        }
        let mut specs = Vec::with_capacity(platforms.len());
        for (i, p) in platforms.iter().enumerate() {
            let spec = PlatformSpec::parse(p)
                .map_err(|reason| InvalidSelection::new(&format!("platforms[{i}]"), reason))?;
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
        if artifact_types.len() > MAX_ARTIFACT_TYPES {
            return Err(InvalidSelection::new(
                "referrerArtifactTypes",
                format!(
                    "{} types; at most {MAX_ARTIFACT_TYPES}",
                    artifact_types.len()
                ),
            ));
        }
        for (i, t) in artifact_types.iter().enumerate() {
            if !is_media_type(t) {
                return Err(InvalidSelection::new(
                    &format!("referrerArtifactTypes[{i}]"),
                    format!("{t:?} is not a media type (type/subtype)"),
                ));
            }
        }
        Ok(ContentSelection {
            platforms: specs,
            platform_mode,
            referrers,
            artifact_types: artifact_types.to_vec(),
        })
    }

    /// The platforms as the wire writes them.
    pub fn platform_names(&self) -> Vec<String> {
        self.platforms.iter().map(ToString::to_string).collect()
    }

    /// Whether an index's child is copied: every child without named
    /// platforms; else one whose platform is named, or an attestation
    /// (BuildKit's `vnd.docker.reference.digest`) of a copied child.
    pub fn keeps_child(&self, child: &Descriptor, siblings: &[Descriptor]) -> bool {
        if self.platforms.is_empty() {
            return true;
        }
        if let Some(p) = &child.platform
            && self.platforms.iter().any(|s| s.matches(p))
        {
            return true;
        }
        let attests = child
            .annotations
            .get("vnd.docker.reference.digest")
            .map(String::as_str);
        attests.is_some_and(|target| {
            siblings.iter().any(|s| {
                s.digest.to_string() == target
                    && s.platform
                        .as_ref()
                        .is_some_and(|p| self.platforms.iter().any(|spec| spec.matches(p)))
            })
        })
    }

    /// Whether an index is rewritten to the kept children.
    pub fn rewrites_index(&self) -> bool {
        !self.platforms.is_empty() && self.platform_mode == PlatformMode::Rewrite
    }

    /// Whether a referrer of `artifact_type` is copied.
    pub fn keeps_referrer(&self, artifact_type: Option<&str>) -> bool {
        self.referrers
            && (self.artifact_types.is_empty()
                || artifact_type.is_some_and(|t| self.artifact_types.iter().any(|a| a == t)))
    }
}

/// `type/subtype` with the characters RFC 6838 allows (and `+`, `.`).
fn is_media_type(text: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 127
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(text.split_once('/'), Some((t, s)) if ok(t) && ok(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn platforms_parse_and_match_as_containerd_reads_them() {
        let arm = PlatformSpec::parse("linux/arm64/v8").unwrap();
        assert!(arm.matches(&platform("linux", "arm64", Some("v8"))));
        assert!(arm.matches(&platform("linux", "arm64", None)));
        assert!(!arm.matches(&platform("linux", "arm", Some("v7"))));
        let any_arm = PlatformSpec::parse("linux/arm").unwrap();
        assert!(any_arm.matches(&platform("linux", "arm", Some("v6"))));
        assert!(!any_arm.matches(&platform("windows", "arm", None)));
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "Linux/amd64",
            "a/b/c/d",
            "linux/amd 64",
        ] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_fields_name_themselves() {
        let e = ContentSelection::from_fields(
            &["linux/amd64".into(), "amd64".into()],
            PlatformMode::Sparse,
            true,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "platforms[1]");
        let e = ContentSelection::from_fields(&[], PlatformMode::Sparse, true, &["sig".into()])
            .unwrap_err();
        assert_eq!(e.field, "referrerArtifactTypes[0]");
    }

    #[test]
    fn referrers_filter_by_artifact_type() {
        let mut s = ContentSelection::default();
        assert!(s.keeps_referrer(None));
        s.artifact_types = vec!["application/vnd.dev.cosign.artifact.sig.v1+json".into()];
        assert!(s.keeps_referrer(Some("application/vnd.dev.cosign.artifact.sig.v1+json")));
        assert!(!s.keeps_referrer(Some("application/spdx+json")));
        assert!(!s.keeps_referrer(None));
        s.referrers = false;
        s.artifact_types.clear();
        assert!(!s.keeps_referrer(None));
    }

    #[test]
    fn a_stored_empty_selection_is_the_default() {
        let empty: ContentSelection = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ContentSelection::default());
        let s = ContentSelection::from_fields(
            &["linux/arm64/v8".into()],
            PlatformMode::Rewrite,
            false,
            &[],
        )
        .unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<ContentSelection>(&text).unwrap(), s);
    }
}
