//! The server's own state behind one small trait per thing held:
//! [`AccountStore`] (accounts and their password hashes), [`TokenStore`]
//! (access tokens), [`BearerStore`] (bearer tokens of `/auth/token`),
//! [`GrantStore`] (per-repository access levels), [`CronStore`] (crons and
//! their next run), [`UploadStore`] (chunked blob uploads between their
//! requests), [`OrgStore`] (organizations, teams and their access) and
//! [`MetaStore`] (settings and one-time marks), [`WebhookStore`] (webhook
//! subscriptions and their deliveries, `webhooks.rs`).
//! [`ServerStores`] holds one of each; [`crate::accounts::Accounts`],
//! [`crate::scheduler::Scheduler`] and [`crate::settings::SettingsStore`]
//! only call these traits.
//!
//! Two backends implement every trait: `sqlite.rs` (`server.db` in the
//! data directory, one process) and `postgres.rs` (tables in a PostgreSQL
//! database that replicas share). Each has versioned migrations that run
//! at open and refuse a schema newer than the build. What they share is
//! written once: the statements (`sql.rs`, placeholders `$1`, `$2`, ...
//! that both read), the row → struct conversions (`rows.rs`, over a `Row`
//! each backend implements) and the rules (`sqlite::token_update`). `conformance.rs` checks any
//! backend of every trait (the tests run it on both).
//!
//! Mirror-core knows nothing about users or schedules: these tables are
//! the server's, and the server never writes mirror-core's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::records::Cron;
use crate::store::records::{
    AccessLevel, AccessMap, Account, ApiToken, Credential, GrantTarget, OrgMember, Organization,
    Team, UploadRecord,
};

pub mod conformance;
mod exec;
mod orgs;
mod postgres;
pub mod records;
mod rows;
mod sql;
mod sqlite;
mod webhooks;

pub use postgres::PgServerStore;
pub use sqlite::{FILE_NAME, SqliteServerStore};
pub use webhooks::{AttemptOutcome, DeliveryRecord, DeliveryStatus, WebhookRecord, WebhookStore};

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
#[error("server database error while {context}: {source}")]
pub struct DbError {
    /// What was being done.
    pub context: &'static str,
    /// The database (or task) error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl DbError {
    /// A closure wrapping an error as a [`DbError`] of `context`.
    pub(crate) fn wrap<E>(context: &'static str) -> impl FnOnce(E) -> DbError
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        move |e| DbError {
            context,
            source: e.into(),
        }
    }
}

/// A change of an account (`None` keeps a field).
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// The new display name.
    pub full_name: Option<String>,
    /// The new administrator flag.
    pub is_admin: Option<bool>,
    /// The new active flag.
    pub is_active: Option<bool>,
}

/// Accounts and their password hashes.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts `account` with `password_hash`; `false` when the name is taken.
    async fn insert_account(&self, account: &Account, password_hash: &str)
    -> Result<bool, DbError>;
    /// One account.
    async fn account(&self, name: &str) -> Result<Option<Account>, DbError>;
    /// Every account, by name.
    async fn accounts(&self) -> Result<Vec<Account>, DbError>;
    /// The password hash of `name`.
    async fn password_hash(&self, name: &str) -> Result<Option<String>, DbError>;
    /// In one round trip: the account `name`, its password hash, and
    /// whether `hashed_token` is one of its active access tokens. Reads
    /// only ([`TokenStore::touch_tokens`] records uses).
    async fn login(
        &self,
        name: &str,
        hashed_token: &str,
    ) -> Result<Option<(Account, String, bool)>, DbError>;
    /// Replaces the password hash of `name` and deletes the bearer tokens
    /// it minted with the password; `false` when there is no such account.
    async fn set_password_hash(&self, name: &str, hash: &str) -> Result<bool, DbError>;
    /// Applies `change` to `name`; `false` when there is no such account.
    async fn update_account(&self, name: &str, change: &AccountChange) -> Result<bool, DbError>;
}

/// A change of an access token (`None` keeps a field).
#[derive(Debug, Clone, Default)]
pub struct TokenChange {
    /// The new label.
    pub label: Option<String>,
    /// The new active flag.
    pub is_active: Option<bool>,
    /// A server administrator asks: only an administrator re-enables a
    /// token an administrator deactivated.
    pub by_admin: bool,
}

/// What [`TokenStore::update_token`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUpdate {
    /// No such token of the user.
    Missing,
    /// A user asked to re-enable a token an administrator revoked.
    RevokedByAdmin,
    /// Changed.
    Updated,
}

/// Access tokens (only their SHA-256 is held).
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts `token`, active.
    async fn insert_token(&self, token: &ApiToken) -> Result<(), DbError>;
    /// The tokens of `user`, newest first.
    async fn tokens(&self, user: &str) -> Result<Vec<ApiToken>, DbError>;
    /// Applies `change` to a token of `user` (in one transaction with the
    /// check of who revoked it): deactivating by an administrator marks
    /// it, re-enabling clears the mark.
    async fn update_token(
        &self,
        user: &str,
        hashed_token: &str,
        change: &TokenChange,
    ) -> Result<TokenUpdate, DbError>;
    /// Deletes a token of `user`; whether it existed.
    async fn delete_token(&self, user: &str, hashed_token: &str) -> Result<bool, DbError>;
    /// Records when access tokens were last used: `(hashed token, at)`,
    /// in one transaction; a later time already recorded is kept.
    async fn touch_tokens(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), DbError>;
}

/// A bearer token as held (its SHA-256, never the token).
#[derive(Debug, Clone)]
pub struct BearerRecord {
    /// SHA-256 (hex) of the token.
    pub hashed_token: String,
    /// Its account.
    pub username: String,
    /// The access token (SHA-256) it was minted with; `None`: the password.
    pub via_token: Option<String>,
    /// When it was minted.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Bearer tokens minted by `GET /auth/token`.
#[async_trait]
pub trait BearerStore: Send + Sync {
    /// In one transaction: deletes expired bearer tokens, keeps the newest
    /// `keep - 1` of the user's, and inserts `bearer`.
    async fn insert_bearer(&self, bearer: &BearerRecord, keep: usize) -> Result<(), DbError>;
    /// The active account whose live bearer token (its access token, if
    /// any, still active) has the hash `hashed` ([`Credential::Bearer`]),
    /// or whose active access token it is ([`Credential::Token`]), at
    /// `now`. Reads only.
    async fn bearer_account(
        &self,
        hashed: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Account, Credential)>, DbError>;
    /// How many bearer tokens `user` holds (live or not yet pruned).
    async fn bearer_count(&self, user: &str) -> Result<u64, DbError>;
}

/// Per-repository access levels granted to accounts.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// The level granted to `user` on `repo`.
    async fn grant(&self, user: &str, repo: &str) -> Result<Option<AccessLevel>, DbError>;
    /// Every grant of `user`: repository → level.
    async fn grants_of(&self, user: &str) -> Result<HashMap<String, AccessLevel>, DbError>;
    /// Every grant on `repo`: (user, level), by user.
    async fn grants_on(&self, repo: &str) -> Result<Vec<(String, AccessLevel)>, DbError>;
    /// Grants `level` (replacing an earlier grant).
    async fn set_grant(&self, user: &str, repo: &str, level: AccessLevel) -> Result<(), DbError>;
    /// Removes a grant; whether it existed.
    async fn remove_grant(&self, user: &str, repo: &str) -> Result<bool, DbError>;
    /// Removes every grant on `repo`.
    async fn remove_grants_on(&self, repo: &str) -> Result<(), DbError>;
}

/// Organizations (DTR's model): their members, their teams and the teams'
/// access levels on repositories and whole namespaces, and the level an
/// account holds through all of them. Written once for both backends
/// (`orgs.rs`).
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Inserts `org`; `false` when an organization of that name exists
    /// (the caller checks accounts: the two share one namespace).
    async fn insert_org(&self, org: &Organization) -> Result<bool, DbError>;
    /// The organization `name`.
    async fn org(&self, name: &str) -> Result<Option<Organization>, DbError>;
    /// Every organization, by name.
    async fn orgs(&self) -> Result<Vec<Organization>, DbError>;
    /// Sets an organization's display name; whether it exists.
    async fn update_org(&self, name: &str, full_name: &str) -> Result<bool, DbError>;
    /// Deletes an organization with its memberships, teams and their
    /// access; whether it existed.
    async fn delete_org(&self, name: &str) -> Result<bool, DbError>;
    /// The members of `org`, by name.
    async fn org_members(&self, org: &str) -> Result<Vec<OrgMember>, DbError>;
    /// The organizations `user` is a member of (`OrgMember::name` is the
    /// organization's).
    async fn orgs_of(&self, user: &str) -> Result<Vec<OrgMember>, DbError>;
    /// Makes `user` a member of `org` (or changes the admin flag).
    async fn set_org_member(&self, org: &str, user: &str, is_admin: bool) -> Result<(), DbError>;
    /// Removes `user` from `org` and its teams; whether they were a member.
    async fn remove_org_member(&self, org: &str, user: &str) -> Result<bool, DbError>;
    /// The teams of `org`, by name.
    async fn teams(&self, org: &str) -> Result<Vec<Team>, DbError>;
    /// The team `name` of `org`.
    async fn team(&self, org: &str, name: &str) -> Result<Option<Team>, DbError>;
    /// Inserts `team`; `false` when its organization has one of that name.
    async fn insert_team(&self, team: &Team) -> Result<bool, DbError>;
    /// Saves a team's name and description (by ID); whether it exists.
    async fn update_team(&self, team: &Team) -> Result<bool, DbError>;
    /// Deletes a team with its memberships and access; whether it existed.
    async fn delete_team(&self, team_id: &str) -> Result<bool, DbError>;
    /// The members of a team, by name.
    async fn team_members(&self, team_id: &str) -> Result<Vec<String>, DbError>;
    /// Adds `user` to `team` (and to its organization, as a member).
    async fn add_team_member(&self, team: &Team, user: &str) -> Result<(), DbError>;
    /// Removes `user` from a team; whether they were in it.
    async fn remove_team_member(&self, team_id: &str, user: &str) -> Result<bool, DbError>;
    /// Grants a team `level` on `target` (replacing an earlier level).
    async fn set_team_access(
        &self,
        team_id: &str,
        target: &GrantTarget,
        level: AccessLevel,
    ) -> Result<(), DbError>;
    /// Removes a team's level on `target`; whether it had one.
    async fn remove_team_access(
        &self,
        team_id: &str,
        target: &GrantTarget,
    ) -> Result<bool, DbError>;
    /// Every team's level on `target`, by team name.
    async fn team_access_on(
        &self,
        target: &GrantTarget,
    ) -> Result<Vec<(Team, AccessLevel)>, DbError>;
    /// What a team is granted.
    async fn team_access_of(
        &self,
        team_id: &str,
    ) -> Result<Vec<(GrantTarget, AccessLevel)>, DbError>;
    /// Removes every team's level on `target` (a deleted repository).
    async fn remove_team_access_on(&self, target: &GrantTarget) -> Result<(), DbError>;
    /// The highest level `user` holds on `repo` in `namespace` through
    /// their own grant, their teams and their organizations (one query:
    /// the request path of every pull runs it).
    async fn levels(
        &self,
        user: &str,
        repo: &str,
        namespace: &str,
    ) -> Result<Option<AccessLevel>, DbError>;
    /// Every level `user` holds, for lists (one query).
    async fn access_map(&self, user: &str) -> Result<AccessMap, DbError>;
}

/// Crons, keyed by action, with the time each fires next.
#[async_trait]
pub trait CronStore: Send + Sync {
    /// Every cron, by action, with its stored next run.
    async fn crons(&self) -> Result<Vec<Cron>, DbError>;
    /// Creates or replaces the cron of `cron.action` (an existing one
    /// keeps its ID), with `cron.next_run`.
    async fn save_cron(&self, cron: &Cron) -> Result<(), DbError>;
    /// Saves `cron` unless a cron was ever seeded in this database (so a
    /// deleted default stays deleted); whether it was saved.
    async fn seed_cron(&self, cron: &Cron) -> Result<bool, DbError>;
    /// Deletes the cron of `action`; whether it existed.
    async fn delete_cron(&self, action: &str) -> Result<bool, DbError>;
    /// The claim of a run: sets the next run of `action` to `next` only if
    /// it is still `due` (`None`: not planned yet). `true`: this caller
    /// won, and (if `due` was a time) fires it; every other caller with
    /// the same `due` gets `false`.
    async fn claim_cron(
        &self,
        action: &str,
        due: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool, DbError>;
}

/// Chunked blob uploads between their requests. Each request replaces an
/// upload's progress only if it is still what the request read (so two
/// requests on one upload, on any replicas, never both win).
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a new upload.
    async fn insert_upload(&self, upload: &UploadRecord) -> Result<(), DbError>;
    /// How many uploads are open, and how many of them `owner` started.
    async fn upload_counts(&self, owner: &str) -> Result<(u64, u64), DbError>;
    /// The upload `id`.
    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>, DbError>;
    /// Sets the progress of `id` to `progress` (used at `now`) if it is
    /// still `expected`; whether it was.
    async fn advance_upload(
        &self,
        id: &str,
        expected: &str,
        progress: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError>;
    /// Marks `id` as used at `now` (a long request is still sending it).
    async fn touch_upload(&self, id: &str, now: DateTime<Utc>) -> Result<bool, DbError>;
    /// Removes `id` if its progress is still `expected` (any, for
    /// `None`); whether this call removed it.
    async fn take_upload(&self, id: &str, expected: Option<&str>) -> Result<bool, DbError>;
    /// Removes the uploads last used before `before`; their IDs.
    async fn expire_uploads(&self, before: DateTime<Utc>) -> Result<Vec<String>, DbError>;
}

/// Small named values: the settings, one-time marks.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// The value of `key`.
    async fn meta(&self, key: &str) -> Result<Option<String>, DbError>;
    /// Sets `key` to `value`.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError>;
}

/// One of each server store.
#[derive(Clone)]
pub struct ServerStores {
    /// Accounts and password hashes.
    pub accounts: Arc<dyn AccountStore>,
    /// Access tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Bearer tokens.
    pub bearers: Arc<dyn BearerStore>,
    /// Access grants.
    pub grants: Arc<dyn GrantStore>,
    /// Crons.
    pub crons: Arc<dyn CronStore>,
    /// Chunked blob uploads.
    pub uploads: Arc<dyn UploadStore>,
    /// Organizations, teams and their access.
    pub orgs: Arc<dyn OrgStore>,
    /// Settings and marks.
    pub meta: Arc<dyn MetaStore>,
    /// Webhooks and their deliveries.
    pub webhooks: Arc<dyn WebhookStore>,
}

impl ServerStores {
    /// Every store in `server.db` in `data_dir`.
    pub fn sqlite(data_dir: &Path) -> Result<Self, DbError> {
        Ok(ServerStores::sharing(Arc::new(SqliteServerStore::open(
            data_dir,
        )?)))
    }

    /// Every store in the PostgreSQL database at `url`, on a pool of
    /// `pool_size` connections of its own.
    pub async fn postgres(url: &str, pool_size: usize) -> Result<Self, DbError> {
        Ok(ServerStores::sharing(Arc::new(
            PgServerStore::connect(url, pool_size).await?,
        )))
    }

    /// `db` for every trait.
    pub fn sharing<S>(db: Arc<S>) -> Self
    where
        S: AccountStore
            + TokenStore
            + BearerStore
            + GrantStore
            + CronStore
            + UploadStore
            + OrgStore
            + MetaStore
            + WebhookStore
            + 'static,
    {
        ServerStores {
            accounts: db.clone(),
            tokens: db.clone(),
            bearers: db.clone(),
            grants: db.clone(),
            crons: db.clone(),
            uploads: db.clone(),
            orgs: db.clone(),
            webhooks: db.clone(),
            meta: db,
        }
    }
}
