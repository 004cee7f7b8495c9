//! [`SqliteServerStore`]: every server store trait on `server.db`, the
//! server's own SQLite file in the data directory.
//!
//! It is separate from mirror-core's `regmirror.db` on purpose: mirror-core
//! knows nothing about users or schedules, and the server never writes
//! mirror-core's tables. The file is owner-only (0600), like the data dir.
//! Calls run on the blocking pool, one at a time on one connection.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mirror_core::store::migrate::{Migration, add_column, migrate};
use rusqlite::{Connection, OptionalExtension, params};

use super::exec::{Exec, Param};
use super::rows::{self, Field, Row, parse_ts, ts};
use super::sql;
use super::{
    AccountChange, AccountStore, BearerRecord, BearerStore, CronStore, DbError, GrantStore,
    MetaStore, TokenChange, TokenStore, TokenUpdate, UploadStore,
};
use crate::store::records::Cron;
use crate::store::records::{AccessLevel, Account, ApiToken, Credential, UploadRecord};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "server.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    full_name TEXT NOT NULL DEFAULT '',
    is_admin INTEGER NOT NULL,
    is_active INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    hashed_token TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_used TEXT,
    revoked_by_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bearer_tokens (
    hashed_token TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    via_token TEXT REFERENCES api_tokens(hashed_token) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS bearer_tokens_by_user ON bearer_tokens (username, created_at);
CREATE TABLE IF NOT EXISTS repo_access (
    username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    repository TEXT NOT NULL,
    level TEXT NOT NULL,
    PRIMARY KEY (username, repository)
);
CREATE TABLE IF NOT EXISTS crons (
    action TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    schedule TEXT NOT NULL,
    retries INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    deadline TEXT NOT NULL,
    stop_timeout TEXT NOT NULL,
    capacity_map TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
";

/// The schema of `server.db`, step by step (see
/// `mirror_core::store::migrate`): version 1 is every table (created where
/// missing), version 2 the revocation mark on access tokens, version 3 each
/// cron's next run (claimed by the scheduler), version 4 chunked uploads,
/// version 5 organizations and teams, version 6 webhooks and their
/// deliveries.
const MIGRATIONS: [Migration; 6] = [
    Migration {
        version: 1,
        what: "users, access tokens, bearer tokens, grants, crons",
        apply: |c| c.execute_batch(SCHEMA),
    },
    Migration {
        version: 2,
        what: "who revoked an access token",
        apply: |c| {
            add_column(
                c,
                "api_tokens",
                "revoked_by_admin",
                "INTEGER NOT NULL DEFAULT 0",
            )
        },
    },
    Migration {
        version: 3,
        what: "the next run of each cron",
        apply: |c| add_column(c, "crons", "next_run", "TEXT"),
    },
    Migration {
        version: 4,
        what: "chunked blob uploads",
        apply: |c| {
            c.execute_batch(
                "CREATE TABLE blob_uploads (
                    id TEXT PRIMARY KEY,
                    repository TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    progress TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL
                );
                CREATE INDEX blob_uploads_by_owner ON blob_uploads (owner);
                CREATE INDEX blob_uploads_by_use ON blob_uploads (updated_at);",
            )
        },
    },
    Migration {
        version: 5,
        what: "organizations, members, teams and their access",
        apply: |c| {
            c.execute_batch(
                "CREATE TABLE organizations (
                    name TEXT PRIMARY KEY,
                    id TEXT NOT NULL,
                    full_name TEXT NOT NULL DEFAULT '',
                    created_at TEXT NOT NULL
                );
                CREATE TABLE org_members (
                    org TEXT NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
                    username TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                    is_admin INTEGER NOT NULL,
                    PRIMARY KEY (org, username)
                );
                CREATE INDEX org_members_by_user ON org_members (username);
                CREATE TABLE teams (
                    id TEXT PRIMARY KEY,
                    org TEXT NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL DEFAULT '',
                    created_at TEXT NOT NULL,
                    UNIQUE (org, name)
                );
                CREATE TABLE team_members (
                    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    username TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
                    PRIMARY KEY (team_id, username)
                );
                CREATE INDEX team_members_by_user ON team_members (username);
                CREATE TABLE team_access (
                    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    target TEXT NOT NULL,
                    level TEXT NOT NULL,
                    PRIMARY KEY (team_id, kind, target)
                );
                CREATE INDEX team_access_by_target ON team_access (kind, target);",
            )
        },
    },
    Migration {
        version: 6,
        what: "webhooks and their deliveries",
        apply: |c| {
            c.execute_batch(
                "CREATE TABLE webhooks (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    hook_key TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    author_id TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    last_successful_at TEXT,
                    inactive INTEGER NOT NULL,
                    tls_cert TEXT NOT NULL DEFAULT '',
                    skip_tls_verification INTEGER NOT NULL,
                    secret TEXT
                );
                CREATE INDEX webhooks_by_kind ON webhooks (kind);
                CREATE TABLE webhook_deliveries (
                    id TEXT PRIMARY KEY,
                    hook_id TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    body TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt_at TEXT NOT NULL,
                    status TEXT NOT NULL,
                    last_status_code INTEGER,
                    last_error TEXT,
                    created_at TEXT NOT NULL,
                    delivered_at TEXT,
                    lease_until TEXT
                );
                CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
                CREATE INDEX webhook_deliveries_of_hook ON webhook_deliveries (hook_id, created_at);",
            )
        },
    },
];

/// Every server store on `server.db`.
#[derive(Clone)]
pub struct SqliteServerStore {
    conn: Arc<Mutex<Connection>>,
}

impl Row for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Field<String> {
        Ok(self.get(i)?)
    }
    fn flag(&self, i: usize) -> Field<bool> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Field<i64> {
        Ok(self.get(i)?)
    }
    fn opt_time(&self, i: usize) -> Field<Option<DateTime<Utc>>> {
        Ok(self.get::<_, Option<String>>(i)?.map(|s| parse_ts(&s)))
    }
    fn opt_text(&self, i: usize) -> Field<Option<String>> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Field<Option<i64>> {
        Ok(self.get(i)?)
    }
}

/// `convert` as a rusqlite row mapper.
fn mapped<T>(convert: fn(&dyn Row) -> Field<T>) -> impl Fn(&rusqlite::Row) -> rusqlite::Result<T> {
    move |r| convert(r).map_err(rusqlite::Error::ToSqlConversionFailure)
}

/// Every row of `sql` with `params`, read with `convert`.
fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    convert: fn(&dyn Row) -> Field<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare(sql)?;
    st.query_map(params, mapped(convert))?.collect()
}

impl SqliteServerStore {
    /// Opens (creating if needed) `server.db` in `data_dir`, owner-only,
    /// and migrates it (refusing a schema newer than this build).
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let err = DbError::wrap::<rusqlite::Error>;
        let path = data_dir.join(FILE_NAME);
        // Owner-only before SQLite opens it: its -wal and -shm files get
        // the database file's mode.
        mirror_core::store::open_private_file(&path, false)
            .map_err(DbError::wrap("creating server.db owner-only"))?;
        let mut conn = Connection::open(&path).map_err(err("opening server.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err("configuring server.db"))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
            .map_err(err("configuring server.db"))?;
        migrate(&mut conn, FILE_NAME, &MIGRATIONS)
            .map_err(DbError::wrap("migrating the server.db schema"))?;
        Ok(SqliteServerStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool; `context` says what
    /// it does, for the error message.
    async fn with<T: Send + 'static>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(DbError::wrap(context))?
        .map_err(DbError::wrap(context))
    }
}

#[async_trait]
impl AccountStore for SqliteServerStore {
    async fn insert_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, DbError> {
        let (a, hash) = (account.clone(), password_hash.to_string());
        let n = self
            .with("creating an account", move |c| {
                let created = ts(a.created_at);
                let p = params![
                    a.name,
                    a.id,
                    hash,
                    a.full_name,
                    a.is_admin,
                    a.is_active,
                    created
                ];
                c.execute(sql::INSERT_ACCOUNT, p)
            })
            .await?;
        Ok(n > 0)
    }

    async fn account(&self, name: &str) -> Result<Option<Account>, DbError> {
        let name = name.to_string();
        self.with("reading an account", move |c| {
            c.query_row(sql::ACCOUNT, [name], mapped(rows::account))
                .optional()
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, DbError> {
        self.with("listing accounts", |c| {
            all(c, sql::ACCOUNTS, [], rows::account)
        })
        .await
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, DbError> {
        let name = name.to_string();
        self.with("reading a password hash", move |c| {
            c.query_row(sql::PASSWORD_HASH, [name], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn login(
        &self,
        name: &str,
        hashed_token: &str,
    ) -> Result<Option<(Account, String, bool)>, DbError> {
        let (name, hashed_token) = (name.to_string(), hashed_token.to_string());
        self.with("verifying credentials", move |c| {
            c.prepare_cached(sql::LOGIN)?
                .query_row(params![name, hashed_token], |r| {
                    Ok((mapped(rows::account)(r)?, r.get(6)?, r.get(7)?))
                })
                .optional()
        })
        .await
    }

    async fn set_password_hash(&self, name: &str, hash: &str) -> Result<bool, DbError> {
        let (name, hash) = (name.to_string(), hash.to_string());
        self.with("changing a password", move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(sql::SET_PASSWORD_HASH, params![hash, name])?;
            tx.execute(sql::FORGET_PASSWORD_BEARERS, [&name])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn update_account(&self, name: &str, change: &AccountChange) -> Result<bool, DbError> {
        let (name, ch) = (name.to_string(), change.clone());
        let n = self
            .with("updating an account", move |c| {
                let p = params![ch.full_name, ch.is_admin, ch.is_active, name];
                c.execute(sql::UPDATE_ACCOUNT, p)
            })
            .await?;
        Ok(n > 0)
    }
}

#[async_trait]
impl TokenStore for SqliteServerStore {
    async fn insert_token(&self, token: &ApiToken) -> Result<(), DbError> {
        let t = token.clone();
        self.with("creating an access token", move |c| {
            let p = params![t.hashed_token, t.username, t.label, ts(t.created_at)];
            c.execute(sql::INSERT_TOKEN, p)
        })
        .await
        .map(drop)
    }

    async fn tokens(&self, user: &str) -> Result<Vec<ApiToken>, DbError> {
        let user = user.to_string();
        self.with("listing access tokens", move |c| {
            all(c, sql::TOKENS, [user], rows::api_token)
        })
        .await
    }

    async fn update_token(
        &self,
        user: &str,
        hashed_token: &str,
        change: &TokenChange,
    ) -> Result<TokenUpdate, DbError> {
        let (name, hashed, ch) = (user.to_string(), hashed_token.to_string(), change.clone());
        self.with("updating an access token", move |c| {
            let tx = c.transaction()?;
            let revoked_by_admin = tx
                .query_row(sql::SQLITE_TOKEN_REVOKED, params![name, hashed], |r| {
                    r.get::<_, bool>(0)
                })
                .optional()?;
            let found = token_update(revoked_by_admin, &ch);
            if found == TokenUpdate::Updated {
                let p = params![ch.label, ch.is_active, ch.by_admin, name, hashed];
                tx.execute(sql::UPDATE_TOKEN, p)?;
                tx.commit()?;
            }
            Ok(found)
        })
        .await
    }

    async fn delete_token(&self, user: &str, hashed_token: &str) -> Result<bool, DbError> {
        let (user, hashed) = (user.to_string(), hashed_token.to_string());
        let n = self
            .with("deleting an access token", move |c| {
                c.execute(sql::DELETE_TOKEN, params![user, hashed])
            })
            .await?;
        Ok(n > 0)
    }

    async fn touch_tokens(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), DbError> {
        let uses: Vec<(String, String)> = uses.iter().map(|(h, at)| (h.clone(), ts(*at))).collect();
        self.with("recording access token uses", move |c| {
            let tx = c.transaction()?;
            for (hashed, at) in &uses {
                tx.prepare_cached(sql::TOUCH_TOKEN)?
                    .execute(params![at, hashed])?;
            }
            tx.commit()
        })
        .await
    }
}

/// Whether a token whose revocation mark reads `revoked_by_admin` (`None`:
/// no such token) may take `change`: both backends' rule.
pub(super) fn token_update(revoked_by_admin: Option<bool>, change: &TokenChange) -> TokenUpdate {
    match revoked_by_admin {
        None => TokenUpdate::Missing,
        Some(true) if change.is_active == Some(true) && !change.by_admin => {
            TokenUpdate::RevokedByAdmin
        }
        Some(_) => TokenUpdate::Updated,
    }
}

#[async_trait]
impl BearerStore for SqliteServerStore {
    async fn insert_bearer(&self, bearer: &BearerRecord, keep: usize) -> Result<(), DbError> {
        let b = bearer.clone();
        self.with("minting a bearer token", move |c| {
            let tx = c.transaction()?;
            tx.execute(sql::DELETE_EXPIRED_BEARERS, [ts(b.created_at)])?;
            let keep = keep.saturating_sub(1) as i64;
            tx.execute(sql::TRIM_BEARERS, params![b.username, keep])?;
            let (created, expires) = (ts(b.created_at), ts(b.expires_at));
            let p = params![b.hashed_token, b.username, b.via_token, created, expires];
            tx.execute(sql::INSERT_BEARER, p)?;
            tx.commit()
        })
        .await
    }

    async fn bearer_account(
        &self,
        hashed: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Account, Credential)>, DbError> {
        let (hashed, now) = (hashed.to_string(), ts(now));
        self.with("verifying a bearer token", move |c| {
            let bearer = c
                .prepare_cached(sql::BEARER_ACCOUNT)?
                .query_row(params![hashed, now], mapped(rows::account))
                .optional()?;
            if let Some(account) = bearer {
                return Ok(Some((account, Credential::Bearer)));
            }
            let token = c
                .prepare_cached(sql::TOKEN_ACCOUNT)?
                .query_row([&hashed], mapped(rows::account))
                .optional()?;
            Ok(token.map(|account| (account, Credential::Token)))
        })
        .await
    }

    async fn bearer_count(&self, user: &str) -> Result<u64, DbError> {
        let user = user.to_string();
        self.with("counting bearer tokens", move |c| {
            c.query_row(sql::BEARER_COUNT, [user], |r| r.get::<_, i64>(0))
        })
        .await
        .map(|n| n as u64)
    }
}

#[async_trait]
impl GrantStore for SqliteServerStore {
    async fn grant(&self, user: &str, repo: &str) -> Result<Option<AccessLevel>, DbError> {
        let (user, repo) = (user.to_string(), repo.to_string());
        let level = self
            .with("reading an access grant", move |c| {
                c.query_row(sql::GRANT, params![user, repo], |r| r.get::<_, String>(0))
                    .optional()
            })
            .await?;
        Ok(level.as_deref().and_then(AccessLevel::parse))
    }

    async fn grants_of(&self, user: &str) -> Result<HashMap<String, AccessLevel>, DbError> {
        let user = user.to_string();
        let rows = self
            .with("listing access grants", move |c| {
                all(c, sql::GRANTS_OF, [user], rows::named_level)
            })
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn grants_on(&self, repo: &str) -> Result<Vec<(String, AccessLevel)>, DbError> {
        let repo = repo.to_string();
        let rows = self
            .with("listing access grants", move |c| {
                all(c, sql::GRANTS_ON, [repo], rows::named_level)
            })
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn set_grant(&self, user: &str, repo: &str, level: AccessLevel) -> Result<(), DbError> {
        let (user, repo) = (user.to_string(), repo.to_string());
        self.with("saving an access grant", move |c| {
            c.execute(sql::SET_GRANT, params![user, repo, level.as_str()])
        })
        .await
        .map(drop)
    }

    async fn remove_grant(&self, user: &str, repo: &str) -> Result<bool, DbError> {
        let (user, repo) = (user.to_string(), repo.to_string());
        let n = self
            .with("removing an access grant", move |c| {
                c.execute(sql::REMOVE_GRANT, params![user, repo])
            })
            .await?;
        Ok(n > 0)
    }

    async fn remove_grants_on(&self, repo: &str) -> Result<(), DbError> {
        let repo = repo.to_string();
        self.with("removing access grants", move |c| {
            c.execute(sql::REMOVE_GRANTS_ON, [repo])
        })
        .await
        .map(drop)
    }
}

/// Saves `cron` on `c` (an existing cron keeps its ID).
fn save_cron(c: &Connection, cron: &Cron) -> rusqlite::Result<usize> {
    let (parameters, capacity_map) = rows::cron_json(cron);
    let (now, next) = (ts(Utc::now()), cron.next_run.map(ts));
    let p = params![
        cron.action,
        cron.id,
        cron.schedule,
        cron.retries,
        parameters,
        cron.deadline,
        cron.stop_timeout,
        capacity_map,
        now,
        next,
    ];
    c.execute(sql::SAVE_CRON, p)
}

#[async_trait]
impl CronStore for SqliteServerStore {
    async fn crons(&self) -> Result<Vec<Cron>, DbError> {
        self.with("listing crons", |c| all(c, sql::CRONS, [], rows::cron))
            .await
    }

    async fn save_cron(&self, cron: &Cron) -> Result<(), DbError> {
        let cron = cron.clone();
        self.with("saving a cron", move |c| save_cron(c, &cron))
            .await
            .map(drop)
    }

    async fn seed_cron(&self, cron: &Cron) -> Result<bool, DbError> {
        let cron = cron.clone();
        self.with("creating the default cron", move |c| {
            let tx = c.transaction()?;
            let first = tx.execute(sql::MARK_SEEDED, [])? > 0;
            if first {
                save_cron(&tx, &cron)?;
            }
            tx.commit()?;
            Ok(first)
        })
        .await
    }

    async fn delete_cron(&self, action: &str) -> Result<bool, DbError> {
        let action = action.to_string();
        let n = self
            .with("deleting a cron", move |c| {
                c.execute(sql::DELETE_CRON, [action])
            })
            .await?;
        Ok(n > 0)
    }

    async fn claim_cron(
        &self,
        action: &str,
        due: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool, DbError> {
        let action = action.to_string();
        let n = self
            .with("claiming a cron run", move |c| {
                c.execute(sql::CLAIM_CRON, params![next.map(ts), action, due.map(ts)])
            })
            .await?;
        Ok(n > 0)
    }
}

/// A shared statement's parameter as SQLite keeps it.
fn sqlite_value(p: Param) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        Param::Text(s) => Value::Text(s),
        Param::Flag(b) => Value::Integer(b.into()),
        Param::Time(t) => Value::Text(ts(t)),
        Param::Int(n) => Value::Integer(n),
        Param::OptText(s) => s.map_or(Value::Null, Value::Text),
        Param::OptTime(t) => t.map_or(Value::Null, |t| Value::Text(ts(t))),
        Param::OptInt(n) => n.map_or(Value::Null, Value::Integer),
    }
}

#[async_trait]
impl Exec for SqliteServerStore {
    async fn exec(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<u64, DbError> {
        self.with(ctx, move |c| {
            let mut st = c.prepare_cached(sql)?;
            let n = st.execute(rusqlite::params_from_iter(
                params.into_iter().map(sqlite_value),
            ))?;
            Ok(n as u64)
        })
        .await
    }

    async fn query<T: Send + 'static>(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        convert: for<'r> fn(&'r (dyn Row + 'r)) -> Field<T>,
    ) -> Result<Vec<T>, DbError> {
        self.with(ctx, move |c| {
            let mut st = c.prepare_cached(sql)?;
            st.query_map(
                rusqlite::params_from_iter(params.into_iter().map(sqlite_value)),
                mapped(convert),
            )?
            .collect()
        })
        .await
    }
}

#[async_trait]
impl UploadStore for SqliteServerStore {
    async fn insert_upload(&self, upload: &UploadRecord) -> Result<(), DbError> {
        let u = upload.clone();
        self.with("recording a blob upload", move |c| {
            let p = params![u.id, u.repository, u.owner, u.progress, ts(u.updated_at)];
            c.execute(sql::INSERT_UPLOAD, p)
        })
        .await
        .map(drop)
    }

    async fn upload_counts(&self, owner: &str) -> Result<(u64, u64), DbError> {
        let owner = owner.to_string();
        self.with("counting blob uploads", move |c| {
            c.query_row(sql::UPLOAD_COUNTS, [owner], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
        })
        .await
    }

    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>, DbError> {
        let id = id.to_string();
        self.with("reading a blob upload", move |c| {
            c.query_row(sql::UPLOAD, [id], mapped(rows::upload))
                .optional()
        })
        .await
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected: &str,
        progress: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let p = (id.to_string(), expected.to_string(), progress.to_string());
        let n = self
            .with("recording a blob upload's progress", move |c| {
                c.execute(sql::ADVANCE_UPLOAD, params![p.2, ts(now), p.0, p.1])
            })
            .await?;
        Ok(n > 0)
    }

    async fn touch_upload(&self, id: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let id = id.to_string();
        let n = self
            .with("marking a blob upload used", move |c| {
                c.execute(sql::TOUCH_UPLOAD, params![ts(now), id])
            })
            .await?;
        Ok(n > 0)
    }

    async fn take_upload(&self, id: &str, expected: Option<&str>) -> Result<bool, DbError> {
        let (id, expected) = (id.to_string(), expected.map(str::to_string));
        let n = self
            .with("ending a blob upload", move |c| match expected {
                Some(expected) => c.execute(sql::TAKE_UPLOAD, [id, expected]),
                None => c.execute(sql::DELETE_UPLOAD, [id]),
            })
            .await?;
        Ok(n > 0)
    }

    async fn expire_uploads(&self, before: DateTime<Utc>) -> Result<Vec<String>, DbError> {
        self.with("expiring idle blob uploads", move |c| {
            let mut st = c.prepare(sql::EXPIRE_UPLOADS)?;
            st.query_map([ts(before)], |r| r.get(0))?.collect()
        })
        .await
    }
}

#[async_trait]
impl MetaStore for SqliteServerStore {
    async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        let key = key.to_string();
        self.with("reading the settings", move |c| {
            c.query_row(sql::META, [key], |r| r.get(0)).optional()
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with("saving the settings", move |c| {
            c.execute(sql::SET_META, [key, value])
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_an_older_version_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            old.execute_batch(
                "CREATE TABLE api_tokens (hashed_token TEXT PRIMARY KEY, username TEXT NOT NULL,
                 label TEXT NOT NULL, is_active INTEGER NOT NULL, created_at TEXT NOT NULL,
                 last_used TEXT);
                 INSERT INTO api_tokens VALUES ('h', 'u', 'l', 0, 't', NULL);",
            )
            .unwrap();
        }
        for _ in 0..2 {
            SqliteServerStore::open(dir.path()).unwrap();
        }
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        let revoked: bool = conn
            .query_row("SELECT revoked_by_admin FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert!(!revoked);
    }

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteServerStore::open(dir.path()).unwrap());
        super::super::conformance::all(&super::super::ServerStores::sharing(store)).await;
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        SqliteServerStore::open(dir.path()).unwrap();
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        let e = SqliteServerStore::open(dir.path()).err().unwrap();
        assert!(
            format!("{e}").contains("newer than this build knows"),
            "{e}"
        );
    }
}
