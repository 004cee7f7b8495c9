//! [`PgServerStore`]: every server store trait on a PostgreSQL database
//! that replicas share (the one mirror-core's `PgStore` uses, with tables
//! of its own).
//!
//! - **Its own pool** (`mirror_core::store::pg_pool`, the same client,
//!   pool settings and URL handling as mirror-core's store): the server's
//!   lookups run on requests (credentials, grants, at most every few
//!   seconds each: `accounts::RECENT_TTL`), and must not queue
//!   behind the engine's job traffic, nor depend on how mirror-core holds
//!   its store.
//! - **Migrations** run at connect, recorded in
//!   `regmirror_server_schema_migrations`, each step in its own transaction
//!   under `pg_advisory_xact_lock` (`mirror_core::store::pg_migrate`, the
//!   same code and the same refusal of a newer schema as mirror-core's).
//! - **A cron run is claimed** by `UPDATE crons SET next_run=$next WHERE
//!   action=$a AND next_run IS NOT DISTINCT FROM $due`: one replica
//!   changes the row and fires, the others change nothing.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use mirror_core::store::{PgOptions, PgStep};
use tokio_postgres::types::ToSql;

use super::exec::{Exec, Param};
use super::rows::{self, Field, Row};
use super::sql;
use super::sqlite::token_update;
use super::{
    AccountChange, AccountStore, BearerRecord, BearerStore, CronStore, DbError, GrantStore,
    MetaStore, TokenChange, TokenStore, TokenUpdate, UploadStore,
};
use crate::store::records::Cron;
use crate::store::records::{AccessLevel, Account, ApiToken, Credential, UploadRecord};

/// The table that records the server's schema steps.
pub const MIGRATIONS_TABLE: &str = "regmirror_server_schema_migrations";

/// The advisory lock of the server's migrations (`regmsrvr` in ASCII), not
/// mirror-core's: the two migrate independently.
const LOCK_KEY: i64 = 0x7265_676d_7372_7672;

/// The server's schema, step by step. Names compare byte by byte
/// (`COLLATE "C"`), so lists sort as SQLite sorts them.
const STEPS: [PgStep; 4] = [
    PgStep {
        version: 1,
        what: "server meta, users, access tokens, bearer tokens, grants, crons",
        sql: r#"
CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE users (
    name text COLLATE "C" PRIMARY KEY,
    id text NOT NULL,
    password_hash text NOT NULL,
    full_name text NOT NULL DEFAULT '',
    is_admin boolean NOT NULL,
    is_active boolean NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE api_tokens (
    hashed_token text PRIMARY KEY,
    username text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label text NOT NULL,
    is_active boolean NOT NULL,
    created_at timestamptz NOT NULL,
    last_used timestamptz,
    revoked_by_admin boolean NOT NULL DEFAULT false
);
CREATE INDEX api_tokens_by_user ON api_tokens (username, created_at);
CREATE TABLE bearer_tokens (
    hashed_token text PRIMARY KEY,
    username text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    via_token text REFERENCES api_tokens (hashed_token) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX bearer_tokens_by_user ON bearer_tokens (username, created_at);
CREATE TABLE repo_access (
    username text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    repository text COLLATE "C" NOT NULL,
    level text NOT NULL,
    PRIMARY KEY (username, repository)
);
CREATE INDEX repo_access_by_repository ON repo_access (repository);
CREATE TABLE crons (
    action text COLLATE "C" PRIMARY KEY,
    id text NOT NULL,
    schedule text NOT NULL,
    retries integer NOT NULL,
    parameters text NOT NULL,
    deadline text NOT NULL,
    stop_timeout text NOT NULL,
    capacity_map text NOT NULL,
    updated_at timestamptz NOT NULL,
    next_run timestamptz
);
"#,
    },
    PgStep {
        version: 2,
        what: "chunked blob uploads",
        sql: r#"
CREATE TABLE blob_uploads (
    id text PRIMARY KEY,
    repository text NOT NULL,
    owner text COLLATE "C" NOT NULL,
    progress text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX blob_uploads_by_owner ON blob_uploads (owner);
CREATE INDEX blob_uploads_by_use ON blob_uploads (updated_at);
"#,
    },
    PgStep {
        version: 3,
        what: "organizations, members, teams and their access",
        sql: r#"
CREATE TABLE organizations (
    name text COLLATE "C" PRIMARY KEY,
    id text NOT NULL,
    full_name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);
CREATE TABLE org_members (
    org text COLLATE "C" NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    username text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    is_admin boolean NOT NULL,
    PRIMARY KEY (org, username)
);
CREATE INDEX org_members_by_user ON org_members (username);
CREATE TABLE teams (
    id text PRIMARY KEY,
    org text COLLATE "C" NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    name text COLLATE "C" NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    UNIQUE (org, name)
);
CREATE TABLE team_members (
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    username text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    PRIMARY KEY (team_id, username)
);
CREATE INDEX team_members_by_user ON team_members (username);
CREATE TABLE team_access (
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    kind text NOT NULL,
    target text COLLATE "C" NOT NULL,
    level text NOT NULL,
    PRIMARY KEY (team_id, kind, target)
);
CREATE INDEX team_access_by_target ON team_access (kind, target);
"#,
    },
    PgStep {
        version: 4,
        what: "webhooks and their deliveries",
        sql: r#"
CREATE TABLE webhooks (
    id text PRIMARY KEY,
    kind text NOT NULL,
    hook_key text COLLATE "C" NOT NULL,
    endpoint text NOT NULL,
    author_id text NOT NULL,
    created_at timestamptz NOT NULL,
    last_successful_at timestamptz,
    inactive boolean NOT NULL,
    tls_cert text NOT NULL DEFAULT '',
    skip_tls_verification boolean NOT NULL,
    secret text
);
CREATE INDEX webhooks_by_kind ON webhooks (kind);
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    hook_id text NOT NULL,
    event_type text NOT NULL,
    body text NOT NULL,
    attempts bigint NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    status text NOT NULL,
    last_status_code bigint,
    last_error text,
    created_at timestamptz NOT NULL,
    delivered_at timestamptz,
    lease_until timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_of_hook ON webhook_deliveries (hook_id, created_at);
"#,
    },
];

/// Every server store in PostgreSQL.
#[derive(Clone)]
pub struct PgServerStore {
    pool: Pool,
}

impl std::fmt::Debug for PgServerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServerStore").finish_non_exhaustive()
    }
}

/// Wraps a driver or pool error with every cause in its message (the
/// driver's own `Display` says only "db error").
fn pg_err<E: std::error::Error>(context: &'static str) -> impl FnOnce(E) -> DbError {
    move |e| DbError::wrap(context)(mirror_core::store::pg_error_chain(&e))
}

impl Row for tokio_postgres::Row {
    fn text(&self, i: usize) -> Field<String> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Field<bool> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Field<i64> {
        // `integer` columns and `COUNT(*)`'s `bigint`.
        match self.try_get::<_, i32>(i) {
            Ok(n) => Ok(n.into()),
            Err(_) => Ok(self.try_get(i)?),
        }
    }
    fn opt_time(&self, i: usize) -> Field<Option<DateTime<Utc>>> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Field<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Field<Option<i64>> {
        Ok(self.try_get(i)?)
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgServerStore {
    /// Connects to the database at `url` with a pool of `pool_size`
    /// connections of its own, and migrates the server's tables (refusing a
    /// schema newer than this build). The URL (and its password) is never
    /// logged nor shown in errors.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, DbError> {
        let options = PgOptions {
            pool_size,
            ..PgOptions::default()
        };
        let (pool, target) = mirror_core::store::pg_pool(url, &options)
            .map_err(DbError::wrap("connecting to PostgreSQL"))?;
        let mut client = pool
            .get()
            .await
            .map_err(pg_err("connecting to PostgreSQL"))?;
        let dbname = target.rsplit('/').next().unwrap_or_default();
        mirror_core::store::pg_migrate(
            &mut client,
            &format!("server schema of PostgreSQL database {dbname}"),
            MIGRATIONS_TABLE,
            LOCK_KEY,
            &STEPS,
        )
        .await
        .map_err(DbError::wrap("migrating the server schema"))?;
        tracing::info!(database = %target, "PostgreSQL server store ready");
        Ok(PgServerStore { pool })
    }

    async fn client(&self, ctx: &'static str) -> Result<deadpool_postgres::Client, DbError> {
        self.pool.get().await.map_err(pg_err(ctx))
    }

    /// The rows of `sql`, each read with `convert`.
    async fn rows<T>(
        &self,
        ctx: &'static str,
        sql: &str,
        params: Params<'_>,
        convert: fn(&dyn Row) -> Field<T>,
    ) -> Result<Vec<T>, DbError> {
        let rows = query(&self.client(ctx).await?, ctx, sql, params).await?;
        rows.iter()
            .map(|r| convert(r).map_err(DbError::wrap(ctx)))
            .collect()
    }

    /// The first row of `sql`, if any, read with `convert`.
    async fn row<T>(
        &self,
        ctx: &'static str,
        sql: &str,
        params: Params<'_>,
        convert: fn(&dyn Row) -> Field<T>,
    ) -> Result<Option<T>, DbError> {
        Ok(self
            .rows(ctx, sql, params, convert)
            .await?
            .into_iter()
            .next())
    }

    /// Runs `sql`; the rows it changed.
    async fn execute(
        &self,
        ctx: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, DbError> {
        execute(&self.client(ctx).await?, ctx, sql, params).await
    }
}

async fn query(
    c: &impl GenericClient,
    ctx: &'static str,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err(ctx))?;
    c.query(&stmt, params).await.map_err(pg_err(ctx))
}

async fn execute(
    c: &impl GenericClient,
    ctx: &'static str,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, DbError> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err(ctx))?;
    c.execute(&stmt, params).await.map_err(pg_err(ctx))
}

fn text(r: &dyn Row) -> Field<String> {
    r.text(0)
}

#[async_trait]
impl AccountStore for PgServerStore {
    async fn insert_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, DbError> {
        let a = account;
        let p: Params = &[
            &a.name,
            &a.id,
            &password_hash,
            &a.full_name,
            &a.is_admin,
            &a.is_active,
            &a.created_at,
        ];
        let n = self
            .execute("creating an account", sql::INSERT_ACCOUNT, p)
            .await?;
        Ok(n > 0)
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, DbError> {
        self.row("reading an account", sql::ACCOUNT, &[&name], rows::account)
            .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, DbError> {
        self.rows("listing accounts", sql::ACCOUNTS, &[], rows::account)
            .await
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, DbError> {
        self.row(
            "reading a password hash",
            sql::PASSWORD_HASH,
            &[&name],
            text,
        )
        .await
    }

    async fn login(
        &self,
        name: &str,
        hashed_token: &str,
    ) -> Result<Option<(Account, String, bool)>, DbError> {
        self.row(
            "verifying credentials",
            sql::LOGIN,
            &[&name, &hashed_token],
            |r| Ok((rows::account(r)?, r.text(6)?, r.flag(7)?)),
        )
        .await
    }

    async fn set_password_hash(&self, name: &str, hash: &str) -> Result<bool, DbError> {
        const CTX: &str = "changing a password";
        let mut client = self.client(CTX).await?;
        let tx = client.transaction().await.map_err(pg_err(CTX))?;
        let n = execute(&tx, CTX, sql::SET_PASSWORD_HASH, &[&hash, &name]).await?;
        execute(&tx, CTX, sql::FORGET_PASSWORD_BEARERS, &[&name]).await?;
        tx.commit().await.map_err(pg_err(CTX))?;
        Ok(n > 0)
    }

    async fn update_account(&self, name: &str, change: &AccountChange) -> Result<bool, DbError> {
        let ch = change;
        let p: Params = &[&ch.full_name, &ch.is_admin, &ch.is_active, &name];
        let n = self
            .execute("updating an account", sql::UPDATE_ACCOUNT, p)
            .await?;
        Ok(n > 0)
    }
}

#[async_trait]
impl TokenStore for PgServerStore {
    async fn insert_token(&self, token: &ApiToken) -> Result<(), DbError> {
        let t = token;
        let p: Params = &[&t.hashed_token, &t.username, &t.label, &t.created_at];
        self.execute("creating an access token", sql::INSERT_TOKEN, p)
            .await
            .map(drop)
    }

    async fn tokens(&self, user: &str) -> Result<Vec<ApiToken>, DbError> {
        self.rows(
            "listing access tokens",
            sql::TOKENS,
            &[&user],
            rows::api_token,
        )
        .await
    }

    async fn update_token(
        &self,
        user: &str,
        hashed_token: &str,
        change: &TokenChange,
    ) -> Result<TokenUpdate, DbError> {
        const CTX: &str = "updating an access token";
        let mut client = self.client(CTX).await?;
        let tx = client.transaction().await.map_err(pg_err(CTX))?;
        let revoked_by_admin = query(&tx, CTX, sql::PG_TOKEN_REVOKED, &[&user, &hashed_token])
            .await?
            .first()
            .map(|r| r.flag(0))
            .transpose()
            .map_err(DbError::wrap(CTX))?;
        let found = token_update(revoked_by_admin, change);
        if found == TokenUpdate::Updated {
            let ch = change;
            let p: Params = &[&ch.label, &ch.is_active, &ch.by_admin, &user, &hashed_token];
            execute(&tx, CTX, sql::UPDATE_TOKEN, p).await?;
            tx.commit().await.map_err(pg_err(CTX))?;
        }
        Ok(found)
    }

    async fn delete_token(&self, user: &str, hashed_token: &str) -> Result<bool, DbError> {
        let p: Params = &[&user, &hashed_token];
        let n = self
            .execute("deleting an access token", sql::DELETE_TOKEN, p)
            .await?;
        Ok(n > 0)
    }

    async fn touch_tokens(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), DbError> {
        const CTX: &str = "recording access token uses";
        let mut client = self.client(CTX).await?;
        let tx = client.transaction().await.map_err(pg_err(CTX))?;
        for (hashed, at) in uses {
            execute(&tx, CTX, sql::TOUCH_TOKEN, &[at, hashed]).await?;
        }
        tx.commit().await.map_err(pg_err(CTX))
    }
}

#[async_trait]
impl BearerStore for PgServerStore {
    async fn insert_bearer(&self, bearer: &BearerRecord, keep: usize) -> Result<(), DbError> {
        const CTX: &str = "minting a bearer token";
        let b = bearer;
        let keep = keep.saturating_sub(1) as i64;
        let mut client = self.client(CTX).await?;
        let tx = client.transaction().await.map_err(pg_err(CTX))?;
        execute(&tx, CTX, sql::DELETE_EXPIRED_BEARERS, &[&b.created_at]).await?;
        execute(&tx, CTX, sql::TRIM_BEARERS, &[&b.username, &keep]).await?;
        let p: Params = &[
            &b.hashed_token,
            &b.username,
            &b.via_token,
            &b.created_at,
            &b.expires_at,
        ];
        execute(&tx, CTX, sql::INSERT_BEARER, p).await?;
        tx.commit().await.map_err(pg_err(CTX))
    }

    async fn bearer_account(
        &self,
        hashed: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Account, Credential)>, DbError> {
        const CTX: &str = "verifying a bearer token";
        let p: Params = &[&hashed, &now];
        if let Some(account) = self.row(CTX, sql::BEARER_ACCOUNT, p, rows::account).await? {
            return Ok(Some((account, Credential::Bearer)));
        }
        let token = self
            .row(CTX, sql::TOKEN_ACCOUNT, &[&hashed], rows::account)
            .await?;
        Ok(token.map(|account| (account, Credential::Token)))
    }

    async fn bearer_count(&self, user: &str) -> Result<u64, DbError> {
        let n = self
            .row("counting bearer tokens", sql::BEARER_COUNT, &[&user], |r| {
                r.int(0)
            })
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }
}

#[async_trait]
impl GrantStore for PgServerStore {
    async fn grant(&self, user: &str, repo: &str) -> Result<Option<AccessLevel>, DbError> {
        let p: Params = &[&user, &repo];
        let level = self
            .row("reading an access grant", sql::GRANT, p, text)
            .await?;
        Ok(level.as_deref().and_then(AccessLevel::parse))
    }

    async fn grants_of(&self, user: &str) -> Result<HashMap<String, AccessLevel>, DbError> {
        let rows = self
            .rows(
                "listing access grants",
                sql::GRANTS_OF,
                &[&user],
                rows::named_level,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn grants_on(&self, repo: &str) -> Result<Vec<(String, AccessLevel)>, DbError> {
        let rows = self
            .rows(
                "listing access grants",
                sql::GRANTS_ON,
                &[&repo],
                rows::named_level,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn set_grant(&self, user: &str, repo: &str, level: AccessLevel) -> Result<(), DbError> {
        let p: Params = &[&user, &repo, &level.as_str()];
        self.execute("saving an access grant", sql::SET_GRANT, p)
            .await
            .map(drop)
    }

    async fn remove_grant(&self, user: &str, repo: &str) -> Result<bool, DbError> {
        let p: Params = &[&user, &repo];
        let n = self
            .execute("removing an access grant", sql::REMOVE_GRANT, p)
            .await?;
        Ok(n > 0)
    }

    async fn remove_grants_on(&self, repo: &str) -> Result<(), DbError> {
        self.execute("removing access grants", sql::REMOVE_GRANTS_ON, &[&repo])
            .await
            .map(drop)
    }
}

/// Saves `cron` (an existing cron keeps its ID).
async fn save_cron(c: &impl GenericClient, cron: &Cron) -> Result<u64, DbError> {
    let (parameters, capacity_map) = rows::cron_json(cron);
    let now = Utc::now();
    let p: Params = &[
        &cron.action,
        &cron.id,
        &cron.schedule,
        &cron.retries,
        &parameters,
        &cron.deadline,
        &cron.stop_timeout,
        &capacity_map,
        &now,
        &cron.next_run,
    ];
    execute(c, "saving a cron", sql::SAVE_CRON, p).await
}

#[async_trait]
impl CronStore for PgServerStore {
    async fn crons(&self) -> Result<Vec<Cron>, DbError> {
        self.rows("listing crons", sql::CRONS, &[], rows::cron)
            .await
    }

    async fn save_cron(&self, cron: &Cron) -> Result<(), DbError> {
        save_cron(&self.client("saving a cron").await?, cron)
            .await
            .map(drop)
    }

    async fn seed_cron(&self, cron: &Cron) -> Result<bool, DbError> {
        const CTX: &str = "creating the default cron";
        let mut client = self.client(CTX).await?;
        let tx = client.transaction().await.map_err(pg_err(CTX))?;
        let first = execute(&tx, CTX, sql::MARK_SEEDED, &[]).await? > 0;
        if first {
            save_cron(&tx, cron).await?;
        }
        tx.commit().await.map_err(pg_err(CTX))?;
        Ok(first)
    }

    async fn delete_cron(&self, action: &str) -> Result<bool, DbError> {
        let n = self
            .execute("deleting a cron", sql::DELETE_CRON, &[&action])
            .await?;
        Ok(n > 0)
    }

    async fn claim_cron(
        &self,
        action: &str,
        due: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool, DbError> {
        let p: Params = &[&next, &action, &due];
        let n = self
            .execute("claiming a cron run", sql::CLAIM_CRON, p)
            .await?;
        Ok(n > 0)
    }
}

/// A shared statement's parameter as PostgreSQL takes it.
fn pg_value(p: &Param) -> Box<dyn ToSql + Sync + Send> {
    match p {
        Param::Text(s) => Box::new(s.clone()),
        Param::Flag(b) => Box::new(*b),
        Param::Time(t) => Box::new(*t),
        Param::Int(n) => Box::new(*n),
        Param::OptText(s) => Box::new(s.clone()),
        Param::OptTime(t) => Box::new(*t),
        Param::OptInt(n) => Box::new(*n),
    }
}

#[async_trait]
impl Exec for PgServerStore {
    async fn exec(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<u64, DbError> {
        let values: Vec<_> = params.iter().map(pg_value).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        self.execute(ctx, sql, &refs).await
    }

    async fn query<T: Send + 'static>(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        convert: for<'r> fn(&'r (dyn Row + 'r)) -> Field<T>,
    ) -> Result<Vec<T>, DbError> {
        let values: Vec<_> = params.iter().map(pg_value).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        self.rows(ctx, sql, &refs, convert).await
    }
}

#[async_trait]
impl UploadStore for PgServerStore {
    async fn insert_upload(&self, u: &UploadRecord) -> Result<(), DbError> {
        let p: Params = &[&u.id, &u.repository, &u.owner, &u.progress, &u.updated_at];
        self.execute("recording a blob upload", sql::INSERT_UPLOAD, p)
            .await
            .map(drop)
    }

    async fn upload_counts(&self, owner: &str) -> Result<(u64, u64), DbError> {
        fn counts(r: &dyn Row) -> Field<(u64, u64)> {
            Ok((u64::try_from(r.int(0)?)?, u64::try_from(r.int(1)?)?))
        }
        let row = self
            .row(
                "counting blob uploads",
                sql::UPLOAD_COUNTS,
                &[&owner],
                counts,
            )
            .await?;
        Ok(row.unwrap_or_default())
    }

    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>, DbError> {
        self.row("reading a blob upload", sql::UPLOAD, &[&id], rows::upload)
            .await
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected: &str,
        progress: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let p: Params = &[&progress, &now, &id, &expected];
        let n = self
            .execute("recording a blob upload's progress", sql::ADVANCE_UPLOAD, p)
            .await?;
        Ok(n > 0)
    }

    async fn touch_upload(&self, id: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let n = self
            .execute(
                "marking a blob upload used",
                sql::TOUCH_UPLOAD,
                &[&now, &id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn take_upload(&self, id: &str, expected: Option<&str>) -> Result<bool, DbError> {
        const CTX: &str = "ending a blob upload";
        let n = match expected {
            Some(expected) => {
                self.execute(CTX, sql::TAKE_UPLOAD, &[&id, &expected])
                    .await?
            }
            None => self.execute(CTX, sql::DELETE_UPLOAD, &[&id]).await?,
        };
        Ok(n > 0)
    }

    async fn expire_uploads(&self, before: DateTime<Utc>) -> Result<Vec<String>, DbError> {
        self.rows(
            "expiring idle blob uploads",
            sql::EXPIRE_UPLOADS,
            &[&before],
            text,
        )
        .await
    }
}

#[async_trait]
impl MetaStore for PgServerStore {
    async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        self.row("reading the settings", sql::META, &[&key], text)
            .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.execute("saving the settings", sql::SET_META, &[&key, &value])
            .await
            .map(drop)
    }
}
