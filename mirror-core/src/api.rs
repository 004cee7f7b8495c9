//! The DTR `/api/v0` wire shapes, once: what the server reads and writes,
//! what a client sends and parses, in one place (so a field is named in
//! one struct, not in every face of the engine).
//!
//! - [`PolicyForm`]: a poll mirroring policy's fields, the body of DTR's
//!   create, update and Connect-check requests; with an ID and status
//!   around it ([`PolicyView`]) it is also how a policy is shown, without
//!   its secrets.
//! - [`RegistryCheck`]: the Connect check's answer.
//! - [`ErrorBody`]: DTR's error envelope, with a stable [`ErrorKind`] code.
//! - Headers: [`JOB_ID_HEADER`], [`NEXT_PAGE_HEADER`], [`RESOURCE_COUNT_HEADER`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::image_info::{ImageConfig, ImageInfo, IndexImage};
use crate::manifest::Platform;
pub use crate::policy::PolicyForm;
use crate::policy::{InvalidPolicy, MirroringStatus, PollMirroringPolicy};
use crate::reference::RepositoryName;
use crate::remote::Permissions;
use crate::store::TagRecord;

pub use crate::headers::{JOB_ID_HEADER, NEXT_PAGE_HEADER, RESOURCE_COUNT_HEADER};

/// A policy as shown: its form without secrets, inside its identity and
/// status. [`PollMirroringPolicy`] serializes (and a client deserializes
/// it) through this shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PollMirroringPolicy))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// Identifier (UUID).
    pub id: String,
    /// The remote side, enabled flag, evaluation mode, local repository.
    #[serde(flatten)]
    pub form: PolicyForm,
    /// When a poll last copied something (RFC 3339), empty if never.
    #[serde(default)]
    pub last_mirrored_at: String,
    /// The outcome of the last evaluation.
    pub last_status: MirroringStatus,
    /// When the policy was created.
    pub created_at: DateTime<Utc>,
}

impl From<&PollMirroringPolicy> for PolicyView {
    fn from(p: &PollMirroringPolicy) -> Self {
        let e = &p.remote;
        PolicyView {
            id: p.id.clone(),
            form: PolicyForm {
                remote_host: Some(e.host.clone()),
                remote_repository: Some(e.repository.to_string()),
                username: Some(e.username.clone()),
                password: None,
                auth_token: None,
                remote_ca: Some(e.remote_ca.clone()),
                skip_tls_verification: Some(e.skip_tls_verification),
                enabled: Some(p.enabled),
                initial_evaluation: Some(p.initial_evaluation),
                local_repository: Some(p.local_repository.to_string()),
                rules: Some(p.rules.clone()),
                delete_removed: Some(p.delete_removed.enabled),
                delete_removed_dry_run: Some(p.delete_removed.dry_run),
                delete_removed_max_percent: Some(p.delete_removed.max_percent),
                platforms: Some(p.content.platform_names()),
                platform_mode: Some(p.content.platform_mode),
                mirror_referrers: Some(p.content.referrers),
                referrer_artifact_types: Some(p.content.artifact_types.clone()),
                max_bytes_per_sec: Some(p.max_bytes_per_sec),
            },
            last_mirrored_at: p
                .last_mirrored_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            last_status: p.last_status.clone(),
            created_at: p.created_at,
        }
    }
}

impl Serialize for PollMirroringPolicy {
    /// DTR's response shape, [`PolicyView`], without the secrets.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PolicyView::from(self).serialize(s)
    }
}

impl TryFrom<PolicyView> for PollMirroringPolicy {
    type Error = InvalidPolicy;

    /// A policy read from the wire: without its secrets or owner, which
    /// the server never shows.
    fn try_from(v: PolicyView) -> Result<Self, InvalidPolicy> {
        let form = &v.form;
        let local = form.local_repository.as_deref().ok_or(InvalidPolicy {
            field: "localRepository".into(),
            reason: "is required".into(),
        })?;
        Ok(PollMirroringPolicy {
            id: v.id,
            local_repository: RepositoryName::parse(local).map_err(|e| InvalidPolicy {
                field: "localRepository".into(),
                reason: e.reason.to_string(),
            })?,
            remote: form.endpoint()?,
            enabled: form.is_enabled(),
            initial_evaluation: form.evaluates_initially(),
            last_mirrored_at: DateTime::parse_from_rfc3339(&v.last_mirrored_at)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            last_status: v.last_status,
            created_at: v.created_at,
            owner: None,
            rules: form.rules.clone().unwrap_or_default(),
            delete_removed: form.delete_removed_on(Default::default()),
            content: form.content_on(&Default::default())?,
            max_bytes_per_sec: form.max_bytes_per_sec.unwrap_or(0),
        })
    }
}

/// A tag (DTR 2.7's `ListTag`, plus regmirror's fields: the media type
/// and size of the tag's own manifest, its platforms and image size).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// The tag.
    pub name: String,
    /// The digest of the manifest it points to.
    pub digest: String,
    /// Not recorded: always empty.
    pub author: String,
    /// When the tag got its current manifest.
    pub created_at: DateTime<Utc>,
    /// When the tag last moved.
    pub updated_at: DateTime<Utc>,
    /// No signatures are kept: always false.
    pub hash_mismatch: bool,
    /// No Notary: always false.
    pub in_notary: bool,
    /// The tag's manifest (or one image of its index).
    pub manifest: TagManifest,
    /// Where the tag was mirrored from, when a policy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirroring: Option<TagMirroring>,
    /// The media type of the tag's own manifest.
    pub media_type: String,
    /// The size of the tag's own manifest.
    pub size: u64,
    /// `os/arch[/variant]` of the image, or of each image of an index.
    pub platforms: Vec<String>,
    /// Config plus layers (an index: the sum over its images); absent
    /// when the stored manifest cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<u64>,
}

/// DTR's `Manifest`: one image (or, in a list, the tag's index itself,
/// without a config or platform).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Manifest))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagManifest {
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The config blob's media type (empty for an index).
    pub config_media_type: String,
    /// The config blob's digest (empty for an index).
    pub config_digest: String,
    /// The image's size: config plus layers (an index: the sum over its
    /// images); 0 when the stored manifest cannot be read.
    pub size: u64,
    /// When the image was built, as its config says (an index: its newest
    /// image); absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The config's `author`.
    pub author: String,
    /// The image's OS (empty for an index).
    pub os: String,
    /// The config's `os.version`.
    pub os_version: String,
    /// The image's architecture (empty for an index).
    pub architecture: String,
    /// Dockerfile lines are not kept: always empty.
    pub dockerfile: Vec<String>,
}

impl TagManifest {
    /// The manifest `digest` of `media_type`, whose image is `image_size`
    /// bytes, with `config` and `platform` when it is an image.
    pub fn new(
        digest: String,
        media_type: String,
        image_size: Option<u64>,
        config: Option<&ImageConfig>,
        platform: Option<&Platform>,
    ) -> Self {
        let text = |f: fn(&ImageConfig) -> &Option<String>| {
            config.and_then(|c| f(c).clone()).unwrap_or_default()
        };
        TagManifest {
            digest,
            media_type,
            config_media_type: config.map(|c| c.media_type.clone()).unwrap_or_default(),
            config_digest: config.map(|c| c.digest.clone()).unwrap_or_default(),
            size: image_size.unwrap_or(0),
            created_at: config.and_then(|c| c.created.clone()),
            author: text(|c| &c.author),
            os: platform.map(|p| p.os.clone()).unwrap_or_default(),
            os_version: text(|c| &c.os_version),
            architecture: platform.map(|p| p.architecture.clone()).unwrap_or_default(),
            dockerfile: Vec::new(),
        }
    }

    /// The tag's own manifest: an image, or an index (whose `createdAt` is
    /// its newest image's).
    pub fn of_tag(t: &TagRecord, info: &ImageInfo) -> Self {
        let config = info.config.as_ref();
        let mut view = TagManifest::new(
            t.digest.to_string(),
            t.media_type.clone(),
            info.image_size,
            config,
            config.and_then(|c| c.platform.as_ref()),
        );
        if config.is_none() {
            view.created_at = info
                .images
                .iter()
                .filter_map(|i| i.config.as_ref()?.created.as_deref())
                .filter_map(|c| DateTime::parse_from_rfc3339(c).ok())
                .max()
                .map(|c| c.to_rfc3339());
        }
        view
    }

    /// One image of the tag's index.
    pub fn of_image(image: &IndexImage) -> Self {
        TagManifest::new(
            image.digest.clone(),
            image.media_type.clone(),
            image.image_size,
            image.config.as_ref(),
            image.platform.as_ref(),
        )
    }
}

/// DTR's `responses.Mirroring`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMirroring {
    /// The policy that wrote the tag.
    #[serde(rename = "mirroringPolicyID")]
    pub mirroring_policy_id: String,
    /// The digest it copied: the remote's (which differs from the tag's
    /// own when the policy rewrote an index to its platforms).
    pub digest: String,
    /// `host/namespace/name` of the source.
    pub remote_repository: String,
    /// The tag on the remote.
    pub remote_tag: String,
}

impl TagMirroring {
    /// Where `t` was mirrored from, when a policy wrote it.
    pub fn of(t: &TagRecord) -> Option<TagMirroring> {
        let source = t.mirrored.as_ref()?;
        Some(TagMirroring {
            mirroring_policy_id: source.policy_id.clone(),
            digest: source
                .remote_digest
                .as_ref()
                .unwrap_or(&t.digest)
                .to_string(),
            remote_repository: source.remote_repository.clone(),
            remote_tag: source.remote_tag.clone(),
        })
    }
}

impl Tag {
    /// The view of `t`, whose image is summarized by `info`, with
    /// `manifest` (its own, or one image of its index).
    pub fn new(t: &TagRecord, info: &ImageInfo, manifest: TagManifest) -> Tag {
        Tag {
            name: t.name.clone(),
            digest: t.digest.to_string(),
            author: String::new(),
            created_at: t.updated_at,
            updated_at: t.updated_at,
            hash_mismatch: false,
            in_notary: false,
            manifest,
            mirroring: TagMirroring::of(t),
            media_type: t.media_type.clone(),
            size: t.size,
            platforms: info.platforms.clone(),
            image_size: info.image_size,
        }
    }
}

/// The Connect check's answer (DTR's `RemoteRegistryCheck`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RemoteRegistryCheck))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCheck {
    /// `dockerhub` or `registry`.
    pub registry_type: String,
    /// Whether the credentials can read (and write) the repository.
    pub permissions: Permissions,
    /// When the form has `rules`: which remote tags they would mirror
    /// (regmirror's addition; DTR clients ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<TagPreview>,
}

/// Which remote tags a policy's rules would mirror, listed now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagPreview {
    /// How many tags the remote lists.
    pub tags_listed: usize,
    /// The ones the rules keep, in the remote's order.
    pub matching_tags: Vec<String>,
}

/// DTR's error envelope: `{"errors": [{"code", "message", "detail"}]}`
/// (the OCI registry API uses the same shape).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Errors))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errors, the first one the cause.
    pub errors: Vec<ErrorItem>,
}

/// One error of an [`ErrorBody`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorItem {
    /// DTR's (or OCI's) code, e.g. `NO_SUCH_REPOSITORY`, `MANIFEST_UNKNOWN`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Context: `field` (the input at fault), `reason`, and `kind` (the
    /// [`ErrorKind`] code, which this server always sends), among others.
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl ErrorBody {
    /// One error `code` answered with HTTP `status`: `detail` gets the
    /// error's `kind` (from [`error_kind`]) unless it names one.
    pub fn new(code: &str, message: &str, mut detail: serde_json::Value, status: u16) -> Self {
        if !detail.is_object() {
            detail = serde_json::json!({});
        }
        if detail.get("kind").is_none() {
            detail["kind"] = serde_json::json!(error_kind(code, status));
        }
        ErrorBody {
            errors: vec![ErrorItem {
                code: code.into(),
                message: message.into(),
                detail,
            }],
        }
    }
}

impl ErrorItem {
    /// The input field at fault, if the error names one.
    pub fn field(&self) -> Option<&str> {
        self.detail.get("field").and_then(serde_json::Value::as_str)
    }

    /// The kind the server gave (`detail.kind`), if any.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.detail
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .and_then(ErrorKind::from_code)
    }
}

/// The kind of an error answered with DTR or OCI `code` and HTTP `status`:
/// the one mapping, which this server puts in `detail.kind` and a client
/// applies to a server that does not.
///
/// ```
/// use mirror_core::{ErrorKind, api::error_kind};
/// assert_eq!(error_kind("NO_SUCH_REPOSITORY", 404), ErrorKind::NotFound);
/// assert_eq!(error_kind("INVALID_JSON", 400), ErrorKind::Invalid);
/// assert_eq!(error_kind("", 502), ErrorKind::Transient);
/// ```
pub fn error_kind(code: &str, status: u16) -> ErrorKind {
    match code {
        // DTR answers every failed Connect check with this code.
        "NOT_AUTHENTICATED" | "UNAUTHORIZED" | "REMOTE_REGISTRY_INVALID_PERMISSIONS" => {
            ErrorKind::Unauthorized
        }
        "NOT_AUTHORIZED" | "DENIED" | "FOREIGN_ORIGIN" => ErrorKind::Denied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "CONFLICT" => ErrorKind::Conflict,
        c if c.starts_with("NO_SUCH_") || c.ends_with("_UNKNOWN") => ErrorKind::NotFound,
        c if c.starts_with("INVALID_") || c.ends_with("_INVALID") => ErrorKind::Invalid,
        c if c.ends_with("_EXISTS") => ErrorKind::Conflict,
        _ => match status {
            400 | 413 | 415 | 416 | 422 => ErrorKind::Invalid,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Internal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_policy_is_shown_through_its_form_without_secrets_and_read_back() {
        let form: PolicyForm = serde_json::from_value(serde_json::json!({
            "remoteHost": "https://r.example.com", "remoteRepository": "a/b",
            "username": "bot", "password": "pa55word", "authToken": "tok3n",
            "remoteCA": "", "skipTLSVerification": true, "enabled": false,
            "id": "ignored", "rules": [], "tagTemplate": "%n"
        }))
        .unwrap();
        let endpoint = form.endpoint().unwrap();
        assert_eq!(endpoint.password.expose(), "pa55word");
        let local = RepositoryName::parse("acme/b").unwrap();
        let policy = PollMirroringPolicy::new(local, endpoint, &form, Some("alice")).unwrap();
        let json = serde_json::to_value(&policy).unwrap();
        assert!(!json.to_string().contains("pa55word") && !json.to_string().contains("tok3n"));
        for (field, value) in [
            ("remoteHost", serde_json::json!("https://r.example.com")),
            ("remoteRepository", serde_json::json!("a/b")),
            ("remoteCA", serde_json::json!("")),
            ("skipTLSVerification", serde_json::json!(true)),
            ("enabled", serde_json::json!(false)),
            ("localRepository", serde_json::json!("acme/b")),
            ("lastMirroredAt", serde_json::json!("")),
        ] {
            assert_eq!(json[field], value, "{field}: {json}");
        }
        let back =
            PollMirroringPolicy::try_from(serde_json::from_value::<PolicyView>(json).unwrap())
                .unwrap();
        assert_eq!(back.remote.host, policy.remote.host);
        assert!(back.remote.password.is_empty());
        assert_eq!(back.local_repository, policy.local_repository);
    }

    #[test]
    fn a_client_sends_secrets_only_when_given() {
        let update = PolicyForm {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({"enabled": false})
        );
        let rotate = PolicyForm {
            password: Some(Secret::new("new")),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&rotate).unwrap(),
            serde_json::json!({"password": "new"})
        );
        let e = PolicyForm::default().endpoint().unwrap_err();
        assert_eq!(e.field, "remoteHost");
    }
}
