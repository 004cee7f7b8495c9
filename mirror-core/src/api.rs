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
use crate::policy::{
    InvalidPolicy, MirroringStatus, NewPolicy, PolicyUpdate, PollMirroringPolicy, RemoteEndpoint,
    normalize_remote_repository,
};
use crate::reference::RepositoryName;
use crate::remote::Permissions;
use crate::secret::Secret;
use crate::store::TagRecord;

/// The response header naming the job a "Save & Apply" started.
pub const JOB_ID_HEADER: &str = "x-job-id";
/// The response header naming where the next page of a list starts.
pub const NEXT_PAGE_HEADER: &str = "x-next-page-start";
/// The response header with a list's total count (`count=true`).
pub const RESOURCE_COUNT_HEADER: &str = "x-resource-count";

/// A poll mirroring policy's fields on the wire (DTR's
/// `CreatePollMirroringPolicy`, `UpdatePollMirroringPolicy` and
/// `CreateRemoteRegistryCheck`). Every field is optional: an update
/// changes the ones given; creating needs `remoteHost` and
/// `remoteRepository` ([`PolicyForm::new_policy`] says which is missing).
/// Unknown fields are ignored, as DTR's Go server did. The secrets are
/// serialized only by a client that sends them; a policy shown by the
/// server never carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyForm {
    /// Remote registry URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<String>,
    /// Remote repository, `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_repository: Option<String>,
    /// User name on the remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password or access token on the remote (write-only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "send_secret"
    )]
    pub password: Option<Secret>,
    /// A ready bearer token for the remote (write-only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "send_secret"
    )]
    pub auth_token: Option<Secret>,
    /// Extra CA certificates (PEM).
    #[serde(default, rename = "remoteCA", skip_serializing_if = "Option::is_none")]
    pub remote_ca: Option<String>,
    /// Skip TLS verification.
    #[serde(
        default,
        rename = "skipTLSVerification",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_tls_verification: Option<bool>,
    /// Enabled for scheduled polls (DTR's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Mirror every current tag (`true`, "Save & Apply") or only tags that
    /// appear or move later (`false`, "Save").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_evaluation: Option<bool>,
    /// The local repository (DTR migration scripts send it; it must match
    /// the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_repository: Option<String>,
}

/// Serializes a secret a client sends (the one place a [`Secret`] becomes
/// JSON: a request body to the server that stores it).
fn send_secret<S: serde::Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_str(v.expose()),
        None => s.serialize_none(),
    }
}

fn missing(field: &'static str) -> InvalidPolicy {
    InvalidPolicy {
        field,
        reason: "is required".into(),
    }
}

impl PolicyForm {
    /// The form of a new policy, owned by `owner`; `remoteHost` and
    /// `remoteRepository` are required.
    pub fn new_policy(&self, owner: Option<String>) -> Result<NewPolicy, InvalidPolicy> {
        Ok(NewPolicy {
            remote_host: self.remote_host.clone().ok_or(missing("remoteHost"))?,
            remote_repository: self
                .remote_repository
                .clone()
                .ok_or(missing("remoteRepository"))?,
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
            auth_token: self.auth_token.clone().unwrap_or_default(),
            remote_ca: self.remote_ca.clone().unwrap_or_default(),
            skip_tls_verification: self.skip_tls_verification.unwrap_or(false),
            enabled: self.enabled.unwrap_or(true),
            owner,
        })
    }

    /// The form as a partial update by `owner`.
    pub fn update(&self, owner: Option<String>) -> PolicyUpdate {
        PolicyUpdate {
            remote_host: self.remote_host.clone(),
            remote_repository: self.remote_repository.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            auth_token: self.auth_token.clone(),
            remote_ca: self.remote_ca.clone(),
            skip_tls_verification: self.skip_tls_verification,
            enabled: self.enabled,
            owner,
        }
    }

    /// The endpoint a Connect check tries: the form's remote fields.
    pub fn endpoint(&self) -> Result<RemoteEndpoint, InvalidPolicy> {
        self.new_policy(None)?.endpoint()
    }

    /// What a client sends to create `policy` (`initial_evaluation`: "Save
    /// & Apply").
    pub fn of_new_policy(policy: &NewPolicy, initial_evaluation: Option<bool>) -> Self {
        PolicyForm {
            remote_host: Some(policy.remote_host.clone()),
            remote_repository: Some(policy.remote_repository.clone()),
            username: Some(policy.username.clone()),
            password: Some(policy.password.clone()),
            auth_token: Some(policy.auth_token.clone()),
            remote_ca: Some(policy.remote_ca.clone()),
            skip_tls_verification: Some(policy.skip_tls_verification),
            enabled: Some(policy.enabled),
            initial_evaluation,
            local_repository: None,
        }
    }

    /// What a client sends for `update`.
    pub fn of_update(update: &PolicyUpdate) -> Self {
        PolicyForm {
            remote_host: update.remote_host.clone(),
            remote_repository: update.remote_repository.clone(),
            username: update.username.clone(),
            password: update.password.clone(),
            auth_token: update.auth_token.clone(),
            remote_ca: update.remote_ca.clone(),
            skip_tls_verification: update.skip_tls_verification,
            enabled: update.enabled,
            initial_evaluation: None,
            local_repository: None,
        }
    }
}

/// A policy as shown: its form without secrets, inside its identity and
/// status. [`PollMirroringPolicy`] serializes (and a client deserializes
/// it) through this shape.
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

impl TryFrom<PolicyView> for PollMirroringPolicy {
    type Error = InvalidPolicy;

    /// A policy read from the wire: without its secrets or owner, which
    /// the server never shows.
    fn try_from(v: PolicyView) -> Result<Self, InvalidPolicy> {
        let form = &v.form;
        let host = form.remote_host.clone().ok_or(missing("remoteHost"))?;
        let repository = normalize_remote_repository(
            &host,
            form.remote_repository
                .as_deref()
                .ok_or(missing("remoteRepository"))?,
        )?;
        let local = form
            .local_repository
            .as_deref()
            .ok_or(missing("localRepository"))?;
        Ok(PollMirroringPolicy {
            id: v.id,
            local_repository: RepositoryName::parse(local).map_err(|e| InvalidPolicy {
                field: "localRepository",
                reason: e.reason.to_string(),
            })?,
            remote: RemoteEndpoint {
                host,
                repository,
                username: form.username.clone().unwrap_or_default(),
                password: Secret::default(),
                auth_token: Secret::default(),
                remote_ca: form.remote_ca.clone().unwrap_or_default(),
                skip_tls_verification: form.skip_tls_verification.unwrap_or(false),
            },
            enabled: form.enabled.unwrap_or(true),
            initial_evaluation: form.initial_evaluation.unwrap_or(true),
            last_mirrored_at: DateTime::parse_from_rfc3339(&v.last_mirrored_at)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            last_status: v.last_status,
            created_at: v.created_at,
            owner: None,
        })
    }
}

/// A tag (DTR 2.7's `ListTag`, plus regmirror's fields: the media type
/// and size of the tag's own manifest, its platforms and image size).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMirroring {
    /// The policy that wrote the tag.
    #[serde(rename = "mirroringPolicyID")]
    pub mirroring_policy_id: String,
    /// The digest it copied.
    pub digest: String,
    /// `host/namespace/name` of the source.
    pub remote_repository: String,
    /// The tag on the remote.
    pub remote_tag: String,
}

impl TagMirroring {
    /// Where `t` was mirrored from, when a policy wrote it.
    pub fn of(t: &TagRecord) -> Option<TagMirroring> {
        let policy = t.mirrored_by.clone()?;
        let from = t.mirrored_from.clone().unwrap_or_default();
        let (repo, tag) = from
            .rsplit_once(':')
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or((from.clone(), String::new()));
        Some(TagMirroring {
            mirroring_policy_id: policy,
            digest: t.digest.to_string(),
            remote_repository: repo,
            remote_tag: tag,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCheck {
    /// `dockerhub` or `registry`.
    pub registry_type: String,
    /// Whether the credentials can read (and write) the repository.
    pub permissions: Permissions,
}

/// DTR's error envelope: `{"errors": [{"code", "message", "detail"}]}`
/// (the OCI registry API uses the same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errors, the first one the cause.
    pub errors: Vec<ErrorItem>,
}

/// One error of an [`ErrorBody`].
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

    #[test]
    fn a_policy_is_shown_through_its_form_without_secrets_and_read_back() {
        let form: PolicyForm = serde_json::from_value(serde_json::json!({
            "remoteHost": "https://r.example.com", "remoteRepository": "a/b",
            "username": "bot", "password": "pa55word", "authToken": "tok3n",
            "remoteCA": "", "skipTLSVerification": true, "enabled": false,
            "id": "ignored", "rules": [], "tagTemplate": "%n"
        }))
        .unwrap();
        let new = form.new_policy(Some("alice".into())).unwrap();
        assert_eq!(new.password.expose(), "pa55word");
        let local = RepositoryName::parse("acme/b").unwrap();
        let policy = PollMirroringPolicy::new(local, new.endpoint().unwrap(), &new, true);
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
        let update = PolicyUpdate {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(PolicyForm::of_update(&update)).unwrap(),
            serde_json::json!({"enabled": false})
        );
        let rotate = PolicyUpdate {
            password: Some(Secret::new("new")),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(PolicyForm::of_update(&rotate)).unwrap(),
            serde_json::json!({"password": "new"})
        );
        let e = PolicyForm::default().new_policy(None).unwrap_err();
        assert_eq!(e.field, "remoteHost");
    }
}
