//! Poll mirroring policies: what ties a local repository to a remote one.
//!
//! Field names follow Docker Trusted Registry's `PollMirroringPolicy`. The
//! secrets (`password`, `auth_token`) live in [`RemoteEndpoint`] as
//! [`Secret`]s and are never serialized: [`PollMirroringPolicy`]'s `Serialize`
//! is the public view.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::reference::RepositoryName;
use crate::rules::{TagFilter, TagRule};
use crate::secret::Secret;
use crate::selection::{ContentSelection, PlatformMode};

/// Where and how to reach a remote repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoint {
    /// Full URL of the registry: `https://registry.example.com`,
    /// `http://127.0.0.1:5001`; Docker Hub is `https://index.docker.io`.
    pub host: String,
    /// The remote repository, `namespace/name`.
    pub repository: RepositoryName,
    /// User name for Basic auth or the token server.
    pub username: String,
    /// Password or access token (write-only).
    pub password: Secret,
    /// A ready bearer token, sent as is (write-only).
    pub auth_token: Secret,
    /// Extra trusted CA certificates (PEM), may be empty.
    pub remote_ca: String,
    /// Skip TLS certificate verification.
    pub skip_tls_verification: bool,
}

impl RemoteEndpoint {
    /// An anonymous endpoint for `host` and `repository`.
    ///
    /// ```
    /// let e = mirror_core::RemoteEndpoint::anonymous("https://index.docker.io", "nginx").unwrap();
    /// assert_eq!(e.repository.as_str(), "library/nginx");
    /// ```
    pub fn anonymous(host: &str, repository: &str) -> Result<Self, InvalidPolicy> {
        let host = normalize_host(host)?;
        let repository = normalize_remote_repository(&host, repository)?;
        Ok(RemoteEndpoint {
            host,
            repository,
            username: String::new(),
            password: Secret::default(),
            auth_token: Secret::default(),
            remote_ca: String::new(),
            skip_tls_verification: false,
        })
    }
}

/// A policy field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidPolicy {
    /// The API field name (camelCase, as in DTR; `rules[1].values` for
    /// one of a list).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidPolicy {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        InvalidPolicy {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Checks a remote host URL and returns it without a trailing `/`.
///
/// ```
/// use mirror_core::policy::normalize_host;
/// assert_eq!(normalize_host("https://r.example.com/").unwrap(), "https://r.example.com");
/// assert!(normalize_host("r.example.com").is_err());
/// assert!(normalize_host("ftp://x").is_err());
/// ```
pub fn normalize_host(host: &str) -> Result<String, InvalidPolicy> {
    let host = host.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(host).map_err(|e| {
        InvalidPolicy::new(
            "remoteHost",
            format!(
                "{host:?} is not a URL ({e}); give a full URL such as https://registry.example.com"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidPolicy::new(
            "remoteHost",
            format!(
                "scheme {:?} is not supported; use https:// or http://",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(InvalidPolicy::new("remoteHost", "the URL has no host"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(InvalidPolicy::new(
            "remoteHost",
            "the URL must not have a path; give only scheme, host and port",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || host.contains('@') {
        return Err(InvalidPolicy::new(
            "remoteHost",
            "the URL must not carry credentials (user:password@); use the username and password fields",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidPolicy::new(
            "remoteHost",
            "the URL must not carry a query or fragment; give only scheme, host and port",
        ));
    }
    Ok(host.to_string())
}

/// Validates a remote repository name; on Docker Hub, `nginx` means `library/nginx`.
pub fn normalize_remote_repository(
    host: &str,
    repo: &str,
) -> Result<RepositoryName, InvalidPolicy> {
    let repo = repo.trim().trim_matches('/');
    let is_hub = is_docker_hub(host);
    let full = if is_hub && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_string()
    };
    RepositoryName::parse(&full).map_err(|e| InvalidPolicy::new("remoteRepository", e.reason))
}

/// Whether `host` names Docker Hub.
pub fn is_docker_hub(host: &str) -> bool {
    let h = host
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    matches!(
        h,
        "index.docker.io" | "docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// The outcome of the last evaluation of a policy, as DTR's `MirroringStatus`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MirroringStatus {
    /// `SUCCESS`, `PARTIAL`, `FAILED`, `CANCELED` or `NEVER_RUN`.
    pub code: String,
    /// A human-readable summary.
    pub detail: String,
    /// When the status was recorded.
    pub timestamp: DateTime<Utc>,
}

/// A poll mirroring policy.
///
/// `Serialize` gives DTR's response shape through
/// [`crate::api::PolicyView`] (the wire form's field names, once) and never
/// includes the password or auth token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollMirroringPolicy {
    /// Identifier (UUID).
    pub id: String,
    /// The local repository the policy feeds.
    pub local_repository: RepositoryName,
    /// The remote side, with its credentials.
    pub remote: RemoteEndpoint,
    /// Whether scheduled polls evaluate this policy.
    pub enabled: bool,
    /// `true` ("Save & Apply"): mirror every current remote tag. `false`
    /// ("Save"): mirror only tags that appear or move after creation.
    pub initial_evaluation: bool,
    /// When a poll last copied something, if ever.
    pub last_mirrored_at: Option<DateTime<Utc>>,
    /// The outcome of the last evaluation.
    pub last_status: MirroringStatus,
    /// When the policy was created.
    pub created_at: DateTime<Utc>,
    /// The account that created the policy or last changed its remote
    /// (`None`: unknown, or an engine without accounts). A poll links
    /// stored content without downloading it only where this account may
    /// read it (see [`crate::access`]). Not part of the DTR view.
    pub owner: Option<String>,
    /// Which remote tags it mirrors ([`crate::rules`]); empty: every tag.
    pub rules: Vec<TagRule>,
    /// Whether its polls delete local tags the remote no longer lists.
    pub delete_removed: DeleteRemoved,
    /// Which platforms and referrers it copies ([`crate::selection`]).
    pub content: ContentSelection,
    /// The most its copies read from the remote, in bytes per second
    /// ([`crate::bandwidth`]); 0: no limit of its own.
    pub max_bytes_per_sec: u64,
}

/// The lowest bandwidth limit a policy (or the server) may set, in bytes
/// per second: below it a copy of any real image would take days.
pub const MIN_BYTES_PER_SEC: u64 = 1024;

/// Checks a bandwidth limit (a policy's `maxBytesPerSec`, the server's
/// `remote_limits.max_bytes_per_sec`): 0 for none, else at least
/// [`MIN_BYTES_PER_SEC`]; the error says so.
pub fn check_bytes_per_sec(rate: u64) -> Result<(), String> {
    if rate != 0 && rate < MIN_BYTES_PER_SEC {
        return Err(format!(
            "{rate}: bytes per second, at least {MIN_BYTES_PER_SEC}, or 0 for no limit"
        ));
    }
    Ok(())
}

/// Deletion propagation: a poll deletes local tags this policy mirrored
/// that the remote no longer lists, never when the remote lists no tag at
/// all, and at most `max_percent` of the policy's tags per poll (rounded
/// up); with `dry_run` it only logs what it would delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteRemoved {
    /// Off by default.
    pub enabled: bool,
    /// Log what would go, delete nothing.
    pub dry_run: bool,
    /// The most a poll deletes, in percent of the tags this policy
    /// mirrored (1 to 100; default 10).
    pub max_percent: u8,
}

impl Default for DeleteRemoved {
    fn default() -> Self {
        DeleteRemoved {
            enabled: false,
            dry_run: false,
            max_percent: 10,
        }
    }
}

impl PollMirroringPolicy {
    /// A new policy (a fresh ID, never run) feeding `local_repository`
    /// from `remote` (`form`'s endpoint), with `form`'s flags, owned by
    /// `owner`. Fails on a bad platform or artifact type.
    pub fn new(
        local_repository: RepositoryName,
        remote: RemoteEndpoint,
        form: &PolicyForm,
        owner: Option<&str>,
    ) -> Result<Self, InvalidPolicy> {
        let now = crate::job::now();
        Ok(PollMirroringPolicy {
            id: uuid::Uuid::new_v4().to_string(),
            local_repository,
            remote,
            enabled: form.is_enabled(),
            initial_evaluation: form.evaluates_initially(),
            last_mirrored_at: None,
            last_status: MirroringStatus {
                code: "NEVER_RUN".into(),
                detail: String::new(),
                timestamp: now,
            },
            created_at: now,
            owner: owner.map(str::to_string),
            rules: form.rules.clone().unwrap_or_default(),
            delete_removed: form.delete_removed_on(DeleteRemoved::default()),
            content: form.content_on(&ContentSelection::default())?,
            max_bytes_per_sec: form.max_bytes_per_sec.unwrap_or(0),
        })
    }
}

/// A poll mirroring policy's fields, as DTR's `CreatePollMirroringPolicy`,
/// `UpdatePollMirroringPolicy` and `CreateRemoteRegistryCheck` send them:
/// the one form for creating a policy, changing one, and checking a
/// connection, in Rust, on the wire and in Python (whose keyword
/// arguments are these names in snake_case).
///
/// Every field is optional: an update changes the ones given; creating
/// needs `remoteHost` and `remoteRepository` ([`PolicyForm::endpoint`]
/// says which is missing). Unknown fields are ignored, as DTR's Go server
/// did. The secrets are serialized only by a client that sends them; a
/// policy shown by the server never carries them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Mirror every current tag (`true`, the default, "Save & Apply") or
    /// only tags that appear or move later (`false`, "Save").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_evaluation: Option<bool>,
    /// The local repository (DTR migration scripts send it; it must match
    /// the repository the policy is created in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_repository: Option<String>,
    /// Which remote tags to mirror ([`crate::rules`]); none: every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<TagRule>>,
    /// Delete local tags this policy mirrored that the remote no longer
    /// lists ([`DeleteRemoved`]; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_removed: Option<bool>,
    /// With `deleteRemoved`, only log what would be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_removed_dry_run: Option<bool>,
    /// With `deleteRemoved`, the most a poll deletes, in percent of the
    /// policy's tags (1 to 100; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_removed_max_percent: Option<u8>,
    /// Platforms to copy from an index, `os/architecture[/variant]`
    /// ([`crate::selection`]); none or empty: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    /// With `platforms`: `sparse` (default; the upstream index as is, only
    /// the named children held) or `rewrite` (a new index of the named
    /// children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_mode: Option<PlatformMode>,
    /// Copy what refers to each copied manifest (signatures, attestations,
    /// SBOMs; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_referrers: Option<bool>,
    /// With `mirrorReferrers`, only referrers of these artifact types; none
    /// or empty: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_artifact_types: Option<Vec<String>>,
    /// The most the policy's copies read from the remote, in bytes per
    /// second (at least 1024); 0 or none: no limit of its own (the
    /// server's, if set, still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_sec: Option<u64>,
}

/// Serializes a secret a client sends (the one place a [`Secret`] becomes
/// JSON: a request body to the server that stores it).
pub(crate) fn send_secret<S: serde::Serializer>(
    secret: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_str(v.expose()),
        None => s.serialize_none(),
    }
}

impl PolicyForm {
    /// A form for `remote_repository` on `remote_host`, the other fields
    /// left out (their defaults: anonymous, enabled, Save & Apply).
    pub fn new(remote_host: impl Into<String>, remote_repository: impl Into<String>) -> Self {
        PolicyForm {
            remote_host: Some(remote_host.into()),
            remote_repository: Some(remote_repository.into()),
            ..Default::default()
        }
    }

    /// The form's wire field names, in order (read from its `Deserialize`,
    /// so they are never written out twice).
    pub fn field_names() -> &'static [&'static str] {
        crate::serde_fields::struct_fields::<PolicyForm>()
    }

    /// Whether scheduled polls evaluate the policy (default: true).
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Whether every current remote tag is mirrored (default: true).
    pub fn evaluates_initially(&self) -> bool {
        self.initial_evaluation.unwrap_or(true)
    }

    /// `current` with the deletion fields the form gives.
    pub fn delete_removed_on(&self, current: DeleteRemoved) -> DeleteRemoved {
        DeleteRemoved {
            enabled: self.delete_removed.unwrap_or(current.enabled),
            dry_run: self.delete_removed_dry_run.unwrap_or(current.dry_run),
            max_percent: self
                .delete_removed_max_percent
                .unwrap_or(current.max_percent),
        }
    }

    /// `current` with the platform and referrer fields the form gives,
    /// checked.
    pub fn content_on(
        &self,
        current: &ContentSelection,
    ) -> Result<ContentSelection, InvalidPolicy> {
        let platforms = match &self.platforms {
            Some(p) => p.clone(),
            None => current.platform_names(),
        };
        let types = self
            .referrer_artifact_types
            .as_ref()
            .unwrap_or(&current.artifact_types);
        ContentSelection::from_fields(
            &platforms,
            self.platform_mode.unwrap_or(current.platform_mode),
            self.mirror_referrers.unwrap_or(current.referrers),
            types,
        )
        .map_err(|e| InvalidPolicy {
            field: e.field,
            reason: e.reason,
        })
    }

    /// Checks the fields that are not about the remote: the rules, the
    /// deletion share, platforms and artifact types, the bandwidth limit.
    pub fn check_options(&self) -> Result<TagFilter, InvalidPolicy> {
        self.content_on(&ContentSelection::default())?;
        if let Some(p) = self.delete_removed_max_percent
            && !(1..=100).contains(&p)
        {
            return Err(InvalidPolicy::new(
                "deleteRemovedMaxPercent",
                format!("{p}: a percentage from 1 to 100"),
            ));
        }
        if let Some(rate) = self.max_bytes_per_sec {
            check_bytes_per_sec(rate).map_err(|e| InvalidPolicy::new("maxBytesPerSec", e))?;
        }
        self.tag_filter()
    }

    /// The form's rules, checked ([`TagFilter::new`]): every tag when
    /// there are none.
    pub fn tag_filter(&self) -> Result<TagFilter, InvalidPolicy> {
        let rules = self.rules.as_deref().unwrap_or_default();
        TagFilter::new(rules).map_err(|e| InvalidPolicy {
            field: e.field,
            reason: e.reason,
        })
    }

    /// Validates the remote fields and builds the endpoint: `remoteHost`
    /// and `remoteRepository` are required.
    pub fn endpoint(&self) -> Result<RemoteEndpoint, InvalidPolicy> {
        let required = |v: &Option<String>, field| {
            v.clone()
                .ok_or_else(|| InvalidPolicy::new(field, "is required"))
        };
        let host = normalize_host(&required(&self.remote_host, "remoteHost")?)?;
        let repository = normalize_remote_repository(
            &host,
            &required(&self.remote_repository, "remoteRepository")?,
        )?;
        let username = self.username.clone().unwrap_or_default();
        let password = self.password.clone().unwrap_or_default();
        let remote_ca = self.remote_ca.clone().unwrap_or_default();
        validate_ca(&remote_ca)?;
        if username.len() > 255 {
            return Err(InvalidPolicy::new("username", "longer than 255 characters"));
        }
        if !password.is_empty() && username.is_empty() {
            return Err(InvalidPolicy::new(
                "username",
                "a password or access token needs a username",
            ));
        }
        Ok(RemoteEndpoint {
            host,
            repository,
            username,
            password,
            auth_token: self.auth_token.clone().unwrap_or_default(),
            remote_ca,
            skip_tls_verification: self.skip_tls_verification.unwrap_or(false),
        })
    }

    /// Whether the form, as an update, touches how the remote is reached
    /// (so the connection must be checked again before saving).
    pub fn changes_remote(&self) -> bool {
        self.remote_host.is_some()
            || self.remote_repository.is_some()
            || self.username.is_some()
            || self.password.is_some()
            || self.auth_token.is_some()
            || self.remote_ca.is_some()
            || self.skip_tls_verification.is_some()
    }

    /// Whether the update points the policy at another host or account:
    /// then the stored password and token, saved for the old ones, are
    /// not carried over (a repository admin who was never shown them could
    /// otherwise have them sent to a host of their choice).
    fn moves_credentials(&self, current: &RemoteEndpoint) -> bool {
        let host_moves = self
            .remote_host
            .as_deref()
            .is_some_and(|h| normalize_host(h).map_or(true, |h| h != current.host));
        let user_moves = self
            .username
            .as_deref()
            .is_some_and(|u| u != current.username);
        host_moves || user_moves
    }

    /// Applies the form to `policy` as a partial update by `by` (who
    /// becomes the owner when the update changes how the remote is
    /// reached), validating the result. Changing `remoteHost` or
    /// `username` clears the stored `password` and `authToken` unless the
    /// update gives new ones.
    pub fn apply(
        &self,
        policy: &PollMirroringPolicy,
        by: Option<&str>,
    ) -> Result<PollMirroringPolicy, InvalidPolicy> {
        let r = &policy.remote;
        let kept = |secret: &Secret| {
            if self.moves_credentials(r) {
                Secret::default()
            } else {
                secret.clone()
            }
        };
        let whole = PolicyForm {
            remote_host: Some(self.remote_host.clone().unwrap_or_else(|| r.host.clone())),
            remote_repository: Some(
                self.remote_repository
                    .clone()
                    .unwrap_or_else(|| r.repository.to_string()),
            ),
            username: Some(self.username.clone().unwrap_or_else(|| r.username.clone())),
            password: Some(self.password.clone().unwrap_or_else(|| kept(&r.password))),
            auth_token: Some(
                self.auth_token
                    .clone()
                    .unwrap_or_else(|| kept(&r.auth_token)),
            ),
            remote_ca: Some(
                self.remote_ca
                    .clone()
                    .unwrap_or_else(|| r.remote_ca.clone()),
            ),
            skip_tls_verification: Some(
                self.skip_tls_verification
                    .unwrap_or(r.skip_tls_verification),
            ),
            ..PolicyForm::default()
        };
        let mut next = policy.clone();
        next.remote = whole.endpoint()?;
        next.enabled = self.enabled.unwrap_or(policy.enabled);
        if let Some(rules) = &self.rules {
            next.rules = rules.clone();
        }
        next.delete_removed = self.delete_removed_on(policy.delete_removed);
        next.content = self.content_on(&policy.content)?;
        next.max_bytes_per_sec = self.max_bytes_per_sec.unwrap_or(policy.max_bytes_per_sec);
        if self.changes_remote()
            && let Some(by) = by
        {
            next.owner = Some(by.to_string());
        }
        Ok(next)
    }
}

/// Checks that `pem` is empty or holds only well-formed certificates: each
/// `CERTIFICATE` block must be base64 of one DER `SEQUENCE` of the length
/// it declares.
pub fn validate_ca(pem: &str) -> Result<(), InvalidPolicy> {
    use base64::Engine;
    if pem.trim().is_empty() {
        return Ok(());
    }
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = pem;
    let mut count = 0;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or_else(|| {
            InvalidPolicy::new(
                "remoteCA",
                format!("certificate {} has no {END} line", count + 1),
            )
        })?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| {
                InvalidPolicy::new(
                    "remoteCA",
                    format!("certificate {} is not valid base64: {e}", count + 1),
                )
            })?;
        if !is_der_sequence(&der) {
            return Err(InvalidPolicy::new(
                "remoteCA",
                format!(
                    "certificate {} is not a DER-encoded X.509 certificate",
                    count + 1
                ),
            ));
        }
        count += 1;
        rest = &after[end + END.len()..];
    }
    if count == 0 {
        return Err(InvalidPolicy::new(
            "remoteCA",
            format!("not a PEM certificate (expected a {BEGIN} line)"),
        ));
    }
    Ok(())
}

/// Whether `der` is exactly one DER SEQUENCE (the outer shape of X.509).
fn is_der_sequence(der: &[u8]) -> bool {
    if der.len() < 2 || der[0] != 0x30 {
        return false;
    }
    let (len, header) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            if k == 0 || k > 4 || der.len() < 2 + k {
                return false;
            }
            let len = der[2..2 + k]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, 2 + k)
        }
    };
    header + len == der.len() && len > 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_never_shows_secrets() {
        let p = saved_policy();
        let json = serde_json::to_string(&p).unwrap();
        let debug = format!("{p:?}");
        for text in [&json, &debug] {
            assert!(
                !text.contains("pa55word") && !text.contains("tok3n"),
                "{text}"
            );
        }
        assert!(json.contains("\"remoteHost\":\"https://r.example.com\""));
        assert!(json.contains("\"lastMirroredAt\":\"\""));
    }

    #[test]
    fn hub_official_images_get_library_prefix() {
        let r = normalize_remote_repository("https://index.docker.io", "nginx").unwrap();
        assert_eq!(r.as_str(), "library/nginx");
        let r = normalize_remote_repository("https://r.example.com", "nginx").unwrap();
        assert_eq!(r.as_str(), "nginx");
    }

    #[test]
    fn bad_fields_name_the_field() {
        let form = PolicyForm {
            remote_ca: Some(
                "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n".into(),
            ),
            ..PolicyForm::new("https://r.example.com", "a/b")
        };
        assert_eq!(form.endpoint().unwrap_err().field, "remoteCA");
        let form = PolicyForm::new("https://r.example.com/v2/x", "a/b");
        assert_eq!(form.endpoint().unwrap_err().field, "remoteHost");
        let form = PolicyForm::new("https://r.example.com", "UPPER/case");
        assert_eq!(form.endpoint().unwrap_err().field, "remoteRepository");
        let form = PolicyForm {
            remote_repository: None,
            ..PolicyForm::new("https://r.example.com", "a/b")
        };
        let e = form.endpoint().unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("remoteRepository", "is required")
        );
    }

    #[test]
    fn field_names_are_the_wire_names() {
        assert_eq!(
            PolicyForm::field_names(),
            [
                "remoteHost",
                "remoteRepository",
                "username",
                "password",
                "authToken",
                "remoteCA",
                "skipTLSVerification",
                "enabled",
                "initialEvaluation",
                "localRepository",
                "rules",
                "deleteRemoved",
                "deleteRemovedDryRun",
                "deleteRemovedMaxPercent",
                "platforms",
                "platformMode",
                "mirrorReferrers",
                "referrerArtifactTypes",
                "maxBytesPerSec"
            ]
        );
    }

    /// A saved policy with a password and a token, owned by `alice`.
    fn saved_policy() -> PollMirroringPolicy {
        let form = PolicyForm {
            username: Some("bot".into()),
            password: Some(Secret::new("pa55word")),
            auth_token: Some(Secret::new("tok3n")),
            ..PolicyForm::new("https://r.example.com", "a/b")
        };
        let local = RepositoryName::parse("acme/b").unwrap();
        PollMirroringPolicy::new(local, form.endpoint().unwrap(), &form, Some("alice")).unwrap()
    }

    #[test]
    fn re_pointing_a_policy_drops_its_secrets() {
        let p = saved_policy();
        for update in [
            PolicyForm {
                remote_host: Some("https://evil.example".into()),
                ..Default::default()
            },
            PolicyForm {
                username: Some("other".into()),
                ..Default::default()
            },
        ] {
            let next = update.apply(&p, None).unwrap();
            assert!(next.remote.password.is_empty(), "{update:?}");
            assert!(next.remote.auth_token.is_empty(), "{update:?}");
        }
        // The same host (spelled with a trailing slash) and the same user
        // keep them; so does a change of repository or CA.
        for update in [
            PolicyForm {
                remote_host: Some("https://r.example.com/".into()),
                username: Some("bot".into()),
                ..Default::default()
            },
            PolicyForm {
                remote_repository: Some("a/c".into()),
                enabled: Some(false),
                ..Default::default()
            },
        ] {
            let next = update.apply(&p, None).unwrap();
            assert_eq!(next.remote.password.expose(), "pa55word", "{update:?}");
            assert_eq!(next.remote.auth_token.expose(), "tok3n", "{update:?}");
        }
        // New secrets in the same request are used.
        let next = PolicyForm {
            remote_host: Some("https://other.example".into()),
            password: Some(Secret::new("new")),
            ..Default::default()
        }
        .apply(&p, None)
        .unwrap();
        assert_eq!(next.remote.password.expose(), "new");
        assert!(next.remote.auth_token.is_empty());
    }

    #[test]
    fn whoever_changes_the_remote_becomes_the_owner() {
        let p = saved_policy();
        let by = |owner: &str, update: PolicyForm| update.apply(&p, Some(owner)).unwrap().owner;
        let moved = PolicyForm {
            remote_repository: Some("a/c".into()),
            ..Default::default()
        };
        assert_eq!(by("mallory", moved).as_deref(), Some("mallory"));
        let toggled = PolicyForm {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(by("mallory", toggled).as_deref(), Some("alice"));
    }

    #[test]
    fn credentials_in_the_host_url_are_refused() {
        for host in [
            "http://:pw@r.example.com",
            "http://user@r.example.com",
            "https://user:pw@r.example.com:5000",
            "http://@r.example.com",
        ] {
            let e = normalize_host(host).unwrap_err();
            assert_eq!(e.field, "remoteHost", "{host}");
            assert!(e.reason.contains("credentials"), "{host}: {}", e.reason);
        }
    }
}
