//! What the server's stores hold: accounts, access tokens, access levels
//! and crons (the services in `accounts` and `scheduler` work on them;
//! the stores only keep them).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The account's password.
    Password,
    /// One of the account's access tokens.
    Token,
    /// A short-lived bearer token from `GET /auth/token` (see `accounts::bearer`).
    Bearer,
}

/// What a user may do with one repository. Ordered: each level includes the
/// ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum AccessLevel {
    /// Pull, see tags and policies.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Also push, and delete manifests, tags and blob links.
    #[serde(rename = "read-write")]
    ReadWrite,
    /// Also manage mirroring policies, access grants and delete the repository.
    #[serde(rename = "admin")]
    Admin,
}

impl AccessLevel {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::ReadOnly => "read-only",
            AccessLevel::ReadWrite => "read-write",
            AccessLevel::Admin => "admin",
        }
    }

    /// The level of an API spelling.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "read-only" => Some(AccessLevel::ReadOnly),
            "read-write" => Some(AccessLevel::ReadWrite),
            "admin" => Some(AccessLevel::Admin),
            _ => None,
        }
    }
}

/// A user account (never carries the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable identifier (UUID).
    pub id: String,
    /// Login name; also the name of the user's own namespace.
    pub name: String,
    /// Display name.
    pub full_name: String,
    /// Server administrator: every repository, jobs, crons and accounts.
    pub is_admin: bool,
    /// Inactive accounts cannot log in.
    pub is_active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An organization: a namespace that accounts share through its members
/// and teams (DTR's model; it cannot log in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Stable identifier (UUID).
    pub id: String,
    /// Its name, also its namespace; unique among accounts and organizations.
    pub name: String,
    /// Display name.
    pub full_name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A member of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgMember {
    /// The member's account name.
    pub name: String,
    /// An organization administrator: manages its members and teams and
    /// has `admin` on every repository of its namespace.
    pub is_admin: bool,
}

/// A team: members of one organization, granted access together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Stable identifier (UUID).
    pub id: String,
    /// The organization it belongs to.
    pub org: String,
    /// Its name, unique in the organization.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// How many members it has (as read).
    pub members: u64,
}

/// What a team's access level applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantTarget {
    /// One repository (`ns/name`).
    Repository(String),
    /// Every repository of a namespace.
    Namespace(String),
}

impl GrantTarget {
    /// The stored kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            GrantTarget::Repository(_) => "repository",
            GrantTarget::Namespace(_) => "namespace",
        }
    }

    /// The repository or namespace name.
    pub fn name(&self) -> &str {
        match self {
            GrantTarget::Repository(n) | GrantTarget::Namespace(n) => n,
        }
    }
}

/// Every level an account holds through its own grants, its teams and
/// its organizations, by repository and by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessMap {
    /// Repository (`ns/name`) → the highest level on it.
    pub repositories: BTreeMap<String, AccessLevel>,
    /// Namespace → the highest level on all of its repositories.
    pub namespaces: BTreeMap<String, AccessLevel>,
}

impl AccessMap {
    /// Adds `level` on `target`, keeping the higher of two.
    pub fn add(&mut self, target: GrantTarget, level: AccessLevel) {
        let map = match &target {
            GrantTarget::Repository(_) => &mut self.repositories,
            GrantTarget::Namespace(_) => &mut self.namespaces,
        };
        let slot = map.entry(target.name().to_string()).or_insert(level);
        *slot = (*slot).max(level);
    }

    /// The highest level held on `repo` (in `namespace`), if any.
    pub fn level(&self, repo: &str, namespace: &str) -> Option<AccessLevel> {
        let on_repo = self.repositories.get(repo).copied();
        on_repo.max(self.namespaces.get(namespace).copied())
    }
}

/// An access token as listed (the secret itself is shown only at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// SHA-256 (hex) of the token: its public identifier.
    pub hashed_token: String,
    /// The user's label for it.
    pub label: String,
    /// Revoked tokens are kept but refused.
    pub is_active: bool,
    /// The owner.
    pub username: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request.
    pub last_used: Option<DateTime<Utc>>,
}

/// A cron, in DTR's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cron {
    /// Identifier (UUID).
    pub id: String,
    /// The action of the jobs it submits (the key).
    pub action: String,
    /// The cron spec: 6 fields, seconds first (`0 */30 * * * *`), or
    /// `@hourly`-style.
    pub schedule: String,
    /// Retries of each submitted job.
    pub retries: i32,
    /// Accepted for DTR compatibility; this server has no capacity model.
    pub capacity_map: BTreeMap<String, i64>,
    /// Parameters of each submitted job.
    pub parameters: BTreeMap<String, String>,
    /// How long each job may run (`90s`, `30m`, `2h`, `1h30m`), empty = no limit.
    pub deadline: String,
    /// Accepted for DTR compatibility.
    pub stop_timeout: String,
    /// When it fires next (as stored: `None` until a scheduler planned it;
    /// shown as the next time the schedule matches then).
    #[serde(serialize_with = "serialize_opt_time")]
    pub next_run: Option<DateTime<Utc>>,
}

/// A chunked blob upload in progress (`/v2/<name>/blobs/uploads/<id>`),
/// kept between its requests so any replica can take the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The session ID in the upload's URL.
    pub id: String,
    /// The repository it was started in; other repositories cannot use it.
    pub repository: String,
    /// The account that started it (counted against its limit).
    pub owner: String,
    /// Where it stands (mirror-core's `UploadProgress`, encoded).
    pub progress: String,
    /// When a request last started or finished with it.
    pub updated_at: DateTime<Utc>,
}

fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}
