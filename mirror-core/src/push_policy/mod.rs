//! Push mirroring policies (DTR's `pushMirroringPolicies`): what sends a
//! local repository's tags to a repository of another registry.
//!
//! [`PushMirroringPolicy`] is the stored policy (the remote as a
//! [`RemoteEndpoint`], secrets as [`Secret`]s that never serialize);
//! [`PushPolicyForm`] is the one form for creating and changing one (DTR's
//! `CreatePushMirroringPolicy` and `UpdatePushMirroringPolicy`, every
//! field optional); [`PushPolicyView`] is how one is shown. The remote
//! fields are checked by [`PolicyForm::endpoint`], the poll policies' own
//! validation, and the rules by [`TagFilter`]. Pure: no IO.

mod template;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use template::TagTemplate;

/// The action of a job that pushes one tag through one push policy
/// (run by [`crate::push`]).
pub const PUSH_MIRROR_TAG: &str = "push_mirror_tag";
/// Its parameter naming the push mirroring policy.
pub const PARAM_PUSH_POLICY_ID: &str = "pushPolicyID";
/// Its parameter naming the local tag.
pub const PARAM_TAG: &str = "tag";

use crate::policy::{InvalidPolicy, MirroringStatus, PolicyForm, RemoteEndpoint, normalize_host};
use crate::reference::RepositoryName;
use crate::rules::{TagFilter, TagRule};
use crate::secret::Secret;

/// A push mirroring policy.
///
/// `Serialize` gives DTR's response shape ([`PushPolicyView`]), never the
/// password or auth token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMirroringPolicy {
    /// Identifier (UUID).
    pub id: String,
    /// The local repository whose tags are pushed.
    pub local_repository: RepositoryName,
    /// Where they go, with the credentials (which need push access).
    pub remote: RemoteEndpoint,
    /// Whether tags pushed or mirrored into the repository are pushed on.
    pub enabled: bool,
    /// Which local tags are pushed ([`crate::rules`]); empty: every tag.
    pub rules: Vec<TagRule>,
    /// The remote tag's name ([`TagTemplate`]).
    pub tag_template: TagTemplate,
    /// When a push last succeeded, if ever.
    pub last_mirrored_at: Option<DateTime<Utc>>,
    /// The outcome of the last push.
    pub last_status: MirroringStatus,
    /// When the policy was created.
    pub created_at: DateTime<Utc>,
    /// The account that created it or last changed its remote (not part
    /// of the DTR view).
    pub owner: Option<String>,
}

impl PushMirroringPolicy {
    /// The rules, checked (they were when saved).
    pub fn tag_filter(&self) -> Result<TagFilter, InvalidPolicy> {
        TagFilter::new(&self.rules).map_err(|e| InvalidPolicy {
            field: e.field,
            reason: e.reason,
        })
    }

    /// `host/namespace/name` of the remote repository, for logs and events.
    pub fn remote_name(&self) -> String {
        let host = self.remote.host.split("://").last().unwrap_or_default();
        format!("{host}/{}", self.remote.repository)
    }
}

/// DTR's push mirroring policy form: every field optional (an update
/// changes the ones given; creating needs `remoteHost` and
/// `remoteRepository`). Unknown fields are ignored. The secrets are
/// serialized only by a client that sends them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushPolicyForm {
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
    /// Push tags as they arrive (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Which local tags to push; none: every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<TagRule>>,
    /// The remote tag's name ([`TagTemplate`]; default `%n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_template: Option<String>,
    /// The local repository (must match the one in the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_repository: Option<String>,
    /// Push every current matching tag now (also `?initialEvaluation=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_evaluation: Option<bool>,
}

/// Serializes a secret a client sends.
fn send_secret<S: serde::Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_str(v.expose()),
        None => s.serialize_none(),
    }
}

impl PushPolicyForm {
    /// A form for `remote_repository` on `remote_host`, the rest left out.
    pub fn new(remote_host: impl Into<String>, remote_repository: impl Into<String>) -> Self {
        PushPolicyForm {
            remote_host: Some(remote_host.into()),
            remote_repository: Some(remote_repository.into()),
            ..Default::default()
        }
    }

    /// The form's wire field names, in order (read from its `Deserialize`,
    /// as [`PolicyForm::field_names`]).
    pub fn field_names() -> &'static [&'static str] {
        crate::serde_fields::struct_fields::<PushPolicyForm>()
    }

    /// The remote fields as the poll policies' form, whose
    /// [`PolicyForm::endpoint`] checks them.
    fn remote_form(&self) -> PolicyForm {
        PolicyForm {
            remote_host: self.remote_host.clone(),
            remote_repository: self.remote_repository.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            auth_token: self.auth_token.clone(),
            remote_ca: self.remote_ca.clone(),
            skip_tls_verification: self.skip_tls_verification,
            ..PolicyForm::default()
        }
    }

    /// Validates the remote fields into an endpoint (`remoteHost` and
    /// `remoteRepository` required).
    pub fn endpoint(&self) -> Result<RemoteEndpoint, InvalidPolicy> {
        self.remote_form().endpoint()
    }

    /// Checks the rules and the template.
    pub fn check_options(&self) -> Result<(TagFilter, TagTemplate), InvalidPolicy> {
        let filter = TagFilter::new(self.rules.as_deref().unwrap_or_default()).map_err(|e| {
            InvalidPolicy {
                field: e.field,
                reason: e.reason,
            }
        })?;
        let template = TagTemplate::parse(self.tag_template.as_deref().unwrap_or_default())?;
        Ok((filter, template))
    }

    /// Whether an update touches how the remote is reached (then write
    /// access is checked again before saving).
    pub fn changes_remote(&self) -> bool {
        self.remote_form().changes_remote()
    }

    /// A new policy for `local` from this form, by `owner`.
    pub fn create(
        &self,
        local: RepositoryName,
        owner: Option<&str>,
    ) -> Result<PushMirroringPolicy, InvalidPolicy> {
        let remote = self.endpoint()?;
        let (_, tag_template) = self.check_options()?;
        let now = crate::job::now();
        Ok(PushMirroringPolicy {
            id: uuid::Uuid::new_v4().to_string(),
            local_repository: local,
            remote,
            enabled: self.enabled.unwrap_or(true),
            rules: self.rules.clone().unwrap_or_default(),
            tag_template,
            last_mirrored_at: None,
            last_status: MirroringStatus {
                code: "NEVER_RUN".into(),
                detail: String::new(),
                timestamp: now,
            },
            created_at: now,
            owner: owner.map(str::to_string),
        })
    }

    /// The form as a partial update of `policy` by `by`, checked. A new
    /// `remoteHost` or `username` drops the stored password and token
    /// unless new ones are given (as for poll policies: they were saved
    /// for the old ones).
    pub fn apply(
        &self,
        policy: &PushMirroringPolicy,
        by: Option<&str>,
    ) -> Result<PushMirroringPolicy, InvalidPolicy> {
        let r = &policy.remote;
        let host_moves = self
            .remote_host
            .as_deref()
            .is_some_and(|h| normalize_host(h).map_or(true, |h| h != r.host));
        let user_moves = self.username.as_deref().is_some_and(|u| u != r.username);
        let kept = |secret: &Secret| {
            if host_moves || user_moves {
                Secret::default()
            } else {
                secret.clone()
            }
        };
        let whole = PushPolicyForm {
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
            rules: Some(self.rules.clone().unwrap_or_else(|| policy.rules.clone())),
            tag_template: Some(
                self.tag_template
                    .clone()
                    .unwrap_or_else(|| policy.tag_template.to_string()),
            ),
            ..PushPolicyForm::default()
        };
        let mut next = policy.clone();
        next.remote = whole.endpoint()?;
        let (_, template) = whole.check_options()?;
        next.tag_template = template;
        next.rules = whole.rules.unwrap_or_default();
        next.enabled = self.enabled.unwrap_or(policy.enabled);
        if self.changes_remote()
            && let Some(by) = by
        {
            next.owner = Some(by.to_string());
        }
        Ok(next)
    }
}

/// A push mirroring policy as shown (DTR's `responses.PushMirroringPolicy`),
/// without secrets.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PushMirroringPolicy))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushPolicyView {
    /// Identifier (UUID).
    pub id: String,
    /// `push` (DTR's `mirroringType`, for the union list of both kinds).
    pub mirroring_type: String,
    /// The local repository.
    pub local_repository: String,
    /// Remote registry URL.
    pub remote_host: String,
    /// Remote repository.
    pub remote_repository: String,
    /// User name on the remote.
    pub username: String,
    /// Extra CA certificates (PEM).
    #[serde(rename = "remoteCA")]
    pub remote_ca: String,
    /// Skip TLS verification.
    #[serde(rename = "skipTLSVerification")]
    pub skip_tls_verification: bool,
    /// Whether arriving tags are pushed.
    pub enabled: bool,
    /// Which local tags are pushed.
    pub rules: Vec<TagRule>,
    /// The remote tag's name.
    pub tag_template: String,
    /// When a push last succeeded (RFC 3339), empty if never.
    #[serde(default)]
    pub last_mirrored_at: String,
    /// The outcome of the last push.
    pub last_status: MirroringStatus,
    /// When the policy was created.
    pub created_at: DateTime<Utc>,
}

impl From<&PushMirroringPolicy> for PushPolicyView {
    fn from(p: &PushMirroringPolicy) -> Self {
        let e = &p.remote;
        PushPolicyView {
            id: p.id.clone(),
            mirroring_type: "push".into(),
            local_repository: p.local_repository.to_string(),
            remote_host: e.host.clone(),
            remote_repository: e.repository.to_string(),
            username: e.username.clone(),
            remote_ca: e.remote_ca.clone(),
            skip_tls_verification: e.skip_tls_verification,
            enabled: p.enabled,
            rules: p.rules.clone(),
            tag_template: p.tag_template.to_string(),
            last_mirrored_at: p
                .last_mirrored_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            last_status: p.last_status.clone(),
            created_at: p.created_at,
        }
    }
}

impl Serialize for PushMirroringPolicy {
    /// DTR's response shape, [`PushPolicyView`], without the secrets.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PushPolicyView::from(self).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> PushPolicyForm {
        PushPolicyForm {
            username: Some("bot".into()),
            password: Some(Secret::new("pw")),
            tag_template: Some("%n-copy".into()),
            ..PushPolicyForm::new("https://reg.example.com/", "team/app")
        }
    }

    #[test]
    fn a_policy_shows_no_secret_and_names_bad_fields() {
        let local = RepositoryName::parse("acme/app").unwrap();
        let p = form().create(local.clone(), Some("alice")).unwrap();
        assert_eq!(p.remote.host, "https://reg.example.com");
        let shown = serde_json::to_value(&p).unwrap();
        assert_eq!(shown["tagTemplate"], "%n-copy");
        assert_eq!(shown["mirroringType"], "push");
        assert!(!shown.to_string().contains("pw"), "{shown}");
        let bad = PushPolicyForm {
            tag_template: Some("%n/x".into()),
            ..form()
        };
        assert_eq!(
            bad.create(local.clone(), None).unwrap_err().field,
            "tagTemplate"
        );
        let bad = PushPolicyForm {
            remote_host: None,
            ..form()
        };
        assert_eq!(bad.create(local, None).unwrap_err().field, "remoteHost");
    }

    #[test]
    fn field_names_are_the_wire_names() {
        let names = PushPolicyForm::field_names();
        for wire in [
            "remoteHost",
            "remoteCA",
            "skipTLSVerification",
            "tagTemplate",
            "rules",
        ] {
            assert!(names.contains(&wire), "{wire} not in {names:?}");
        }
    }

    #[test]
    fn an_update_to_another_host_drops_the_stored_secrets() {
        let local = RepositoryName::parse("acme/app").unwrap();
        let p = form().create(local, None).unwrap();
        let same = PushPolicyForm {
            enabled: Some(false),
            ..Default::default()
        };
        let next = same.apply(&p, None).unwrap();
        assert_eq!(next.remote.password.expose(), "pw");
        assert_eq!(next.tag_template.as_str(), "%n-copy");
        assert!(!next.enabled);
        let moved = PushPolicyForm {
            remote_host: Some("https://other.example.com".into()),
            ..Default::default()
        };
        let next = moved.apply(&p, Some("bob")).unwrap();
        assert!(next.remote.password.is_empty());
        assert_eq!(next.owner.as_deref(), Some("bob"));
    }
}
