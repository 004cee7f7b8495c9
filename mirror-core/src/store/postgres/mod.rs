//! [`PgStore`]: every metadata store trait ([`RepositoryStore`],
//! [`PolicyStore`], [`LeaseStore`], [`JobStore`], [`JobLogStore`]) on one
//! PostgreSQL database, which several engines (server replicas) share.
//!
//! - **Jobs** are claimed with `SELECT … FOR UPDATE SKIP LOCKED`: one
//!   winner per job, and a claimer never waits for another's row. A claim
//!   that counts a namespace's running jobs (`per_namespace`) takes a
//!   transaction-scoped advisory lock on that namespace first, so two
//!   replicas cannot both take its last slot.
//! - **Policy leases** live in `policy_leases`, taken by one upsert that
//!   succeeds only when the lease is free, expired or already the job's.
//! - **Migrations** (`migrate.rs`) run at connect, each step in its own
//!   transaction under `pg_advisory_xact_lock`, recorded in
//!   `regmirror_schema_migrations`; replicas starting at once apply each
//!   step once, and a database newer than this build is refused.
//! - **Secrets** are sealed as SQLite's are ([`SecretKeys`], the policy ID
//!   and field as associated data), in `bytea` columns
//!   ([`SecretKeys::seal_bytes`]); values sealed with an older key are
//!   sealed again at connect.
//!
//! Times are compared with the clock of the engine that asks (as with
//! SQLite): replicas need synchronized clocks, as they do for heartbeats.
//! Tables live in the connection's `search_path` (add
//! `options=-csearch_path%3Dregmirror` to the URL for a schema of its own).
//!
//! **Why tokio-postgres + deadpool-postgres, not sqlx**: sqlx's `postgres`
//! feature alone would do, but it brings its own query layer, pool and
//! macros for the same few calls, and the workspace must never enable its
//! `sqlite` feature (its `libsqlite3-sys` conflicts with rusqlite's).
//! tokio-postgres is the protocol client sqlx would replace: explicit
//! transactions, typed parameters (`timestamptz`, `bytea`, `text[]`,
//! `jsonb`), `batch_execute` for migration steps; deadpool-postgres adds a
//! small pool with per-connection statement caches (deadpool is already in
//! the dependency tree).
//!
//! TLS ([`tls`]): `sslmode=require`, `verify-ca` or `verify-full` in the URL
//! connect over TLS and verify the server's certificate and name against
//! the system's roots and the PEM file `sslrootcert=` names (stricter than
//! libpq's `require`, which verifies nothing); otherwise (`prefer`, the
//! default, or `disable`) plain TCP or a Unix socket, as before.

mod job;
mod lease;
mod log;
mod migrate;
pub use migrate::{PgStep, migrate_steps};
mod policy;
mod proxy_cache;
mod push_policy;
mod repository;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

use super::StoreError;
use super::sealed::SecretKeys;

#[cfg(doc)]
use super::{JobLogStore, JobStore, LeaseStore, PolicyStore, RepositoryStore};

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections kept in the pool, at most (default 10). Every replica
    /// holds up to this many: keep `replicas × pool_size` under the
    /// server's `max_connections`.
    pub pool_size: usize,
    /// How long connecting, or waiting for a free pooled connection, may
    /// take before the operation fails (default 10 s). A URL's own
    /// `connect_timeout` wins for connecting.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 10,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Repositories, tags, policies, leases, jobs and logs in PostgreSQL.
///
/// ```no_run
/// # async fn f() -> Result<(), mirror_core::store::StoreError> {
/// use mirror_core::store::{PgOptions, PgStore, SecretKeys};
/// let keys = SecretKeys::from_key([7; 32]);
/// let store = PgStore::connect(
///     "postgres://regmirror:secret@db.internal/regmirror",
///     PgOptions { pool_size: 20, ..Default::default() },
///     keys,
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    keys: Arc<SecretKeys>,
    /// `user@host:port/dbname`, for messages: never the password.
    target: Arc<str>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish()
    }
}

/// `user@host:port/dbname` of `config`, without its password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`
    /// or libpq's `key=value` form), migrates its schema (refusing a schema
    /// newer than this build) and seals, with the current key of `keys`,
    /// any secret sealed with an older one. The URL, and so its password,
    /// is never logged nor shown by `Debug` or in errors.
    pub async fn connect(
        url: &str,
        options: PgOptions,
        keys: SecretKeys,
    ) -> Result<Self, StoreError> {
        let (pool, target) = pool(url, &options)?;
        let store = PgStore {
            pool,
            keys: Arc::new(keys),
            target: target.into(),
        };
        let mut client = store
            .client(&format!("connecting to PostgreSQL at {}", store.target))
            .await?;
        let dbname = store.target.rsplit('/').next().unwrap_or_default();
        migrate::migrate(&mut client, &format!("PostgreSQL database {dbname}")).await?;
        drop(client);
        store.reseal_secrets().await?;
        store.reseal_push_secrets().await?;
        store.reseal_proxy_cache_secrets().await?;
        tracing::info!(database = %store.target, "PostgreSQL metadata store ready");
        Ok(store)
    }

    /// A pooled connection.
    async fn client(&self, ctx: &str) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(db_err(ctx))
    }

    /// The rows of `sql` on a pooled connection, each read with `parse`.
    async fn rows<T>(
        &self,
        ctx: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        parse: impl Fn(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        let rows = query(&self.client(ctx).await?, ctx, sql, params).await?;
        rows.iter().map(parse).collect()
    }

    /// The first row of `sql`, if any, read with `parse`.
    async fn row<T>(
        &self,
        ctx: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        parse: impl Fn(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        let rows = query(&self.client(ctx).await?, ctx, sql, params).await?;
        rows.first().map(parse).transpose()
    }

    /// Runs `sql` on a pooled connection; returns the rows it changed.
    async fn execute(
        &self,
        ctx: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        execute(&self.client(ctx).await?, ctx, sql, params).await
    }
}

/// A pool of up to `options.pool_size` connections to the database at
/// `url` (connecting lazily), and `user@host:port/dbname` of it for
/// messages (never the password). [`PgStore::connect`] uses it, and so may
/// other components keeping tables of their own in the same database
/// (the server's accounts and crons, migrated with [`migrate_steps`]).
pub fn pool(url: &str, options: &PgOptions) -> Result<(Pool, String), StoreError> {
    let (url, tls) = tls::split_url(url)?;
    // The parser's messages name the option at fault, never a value.
    let mut config: tokio_postgres::Config =
        url.parse().map_err(db_err("reading the database URL"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("regmirror");
    }
    let target = describe(&config);
    let recycling = || ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        Some(wanted) => Manager::from_config(config, wanted.connector()?, recycling()),
        None => Manager::from_config(config, NoTls, recycling()),
    };
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .build()
        .map_err(db_err("creating the connection pool"))?;
    Ok((pool, target))
}

/// Wraps a driver or pool error, with every cause in its message: the
/// driver's own `Display` says only "db error" or "error connecting to
/// server", and keeps the server's message (or the OS error) as its source.
fn db_err<E>(context: &str) -> impl FnOnce(E) -> StoreError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::Database {
        context: context.to_string(),
        source: error_chain(&e).into(),
    }
}

/// `e`'s message followed by each of its causes', `: `-separated: what a
/// driver error says in full (its own `Display` often names none).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

/// Rows of `sql` (a statement prepared once per connection).
async fn query(
    c: &impl GenericClient,
    ctx: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let stmt = c.prepare_cached(sql).await.map_err(db_err(ctx))?;
    c.query(&stmt, params).await.map_err(db_err(ctx))
}

/// Runs `sql`; returns the rows it changed.
async fn execute(
    c: &impl GenericClient,
    ctx: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = c.prepare_cached(sql).await.map_err(db_err(ctx))?;
    c.execute(&stmt, params).await.map_err(db_err(ctx))
}

/// Takes the transaction-scoped advisory lock `(class, hashtext(key))`:
/// held until the transaction ends, by one transaction at a time (a hash
/// collision only makes two keys take turns).
async fn lock_key(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &str,
    class: i32,
    key: &str,
) -> Result<(), StoreError> {
    execute(
        tx,
        ctx,
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&class, &key],
    )
    .await
    .map(drop)
}

/// Column `name` of `row`; a value of the wrong type is corrupt data.
fn get<'a, T: FromSql<'a>>(row: &'a Row, name: &str) -> Result<T, StoreError> {
    row.try_get(name).map_err(|e| StoreError::Corrupt {
        reason: format!("column {name}: {e}"),
    })
}
