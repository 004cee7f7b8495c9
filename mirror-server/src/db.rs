//! `server.db`: the server's own SQLite file (accounts, access tokens,
//! bearer tokens, per-repository access grants, crons).
//!
//! It is separate from mirror-core's `regmirror.db` on purpose: mirror-core
//! knows nothing about users or schedules, and the server never writes
//! mirror-core's tables. The file is owner-only (0600), like the data dir.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mirror_core::store::migrate::{Migration, add_column, migrate};
use rusqlite::Connection;

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
/// missing), version 2 the revocation mark on access tokens.
const MIGRATIONS: [Migration; 2] = [
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
];

/// A failed database operation.
#[derive(Debug, thiserror::Error)]
#[error("server database error while {context}: {source}")]
pub struct DbError {
    /// What was being done.
    pub context: &'static str,
    /// The SQLite (or task) error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The shared connection to `server.db`. Calls run on the blocking pool.
#[derive(Clone)]
pub struct ServerDb {
    conn: Arc<Mutex<Connection>>,
}

impl ServerDb {
    /// Opens (creating if needed) `server.db` in `data_dir`, owner-only.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        let err = |context| {
            move |e: rusqlite::Error| DbError {
                context,
                source: Box::new(e),
            }
        };
        let path = data_dir.join(FILE_NAME);
        // Owner-only before SQLite opens it: its -wal and -shm files get
        // the database file's mode.
        mirror_core::store::open_private_file(&path, false).map_err(|e| DbError {
            context: "creating server.db owner-only",
            source: Box::new(e),
        })?;
        let mut conn = Connection::open(&path).map_err(err("opening server.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err("configuring server.db"))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
            .map_err(err("configuring server.db"))?;
        migrate(&mut conn, FILE_NAME, &MIGRATIONS).map_err(|e| DbError {
            context: "migrating the server.db schema",
            source: Box::new(e),
        })?;
        Ok(ServerDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool; `context` says what
    /// it does, for the error message.
    pub async fn with<T: Send + 'static>(
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
        .map_err(|e| DbError {
            context,
            source: Box::new(e),
        })?
        .map_err(|e| DbError {
            context,
            source: Box::new(e),
        })
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
            ServerDb::open(dir.path()).unwrap();
        }
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        let revoked: bool = conn
            .query_row("SELECT revoked_by_admin FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert!(!revoked);
    }
}
