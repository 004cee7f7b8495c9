//! Versioned schema steps of the PostgreSQL store.
//!
//! `regmirror_schema_migrations` holds one row per step applied. At
//! connect, each step later than the highest recorded one runs in its own
//! transaction, together with its row, under a transaction-scoped advisory
//! lock: replicas starting at once take turns, and the second finds the step
//! recorded and skips it. A database whose highest step is newer than this
//! build's last is refused (as SQLite's files are, [`crate::store::migrate`]).

use super::{db_err, execute, get, query};
use crate::store::StoreError;
use crate::store::migrate::newer_schema;

/// One schema step of a PostgreSQL schema (this store's, or another
/// component's on the same database: the server's accounts and crons).
#[derive(Debug, Clone, Copy)]
pub struct PgStep {
    /// The version the database has once the step is applied (1, 2, ...).
    pub version: i32,
    /// What the step does, for messages.
    pub what: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// The key of the advisory lock migrations hold (`regmirro` in ASCII); a
/// lock of one database, whatever other databases on the server do.
const LOCK_KEY: i64 = 0x7265_676d_6972_726f;

/// Names, tags and digests compare byte by byte (`COLLATE "C"`), so lists
/// sort as SQLite sorts them, whatever the database's locale.
const STEPS: [PgStep; 10] = [
    PgStep {
        version: 1,
        what: "repositories, manifests, tags, policies, leases, jobs and logs",
        sql: r#"
CREATE TABLE repositories (
    name text COLLATE "C" PRIMARY KEY,
    id text NOT NULL UNIQUE,
    visibility text NOT NULL CHECK (visibility IN ('public', 'private')),
    short_description text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE manifests (
    repo text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    blobs text[] NOT NULL,
    children text[] NOT NULL,
    subject text COLLATE "C",
    artifact_type text,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX manifests_subject ON manifests (repo, subject) WHERE subject IS NOT NULL;
CREATE INDEX manifests_digest ON manifests (digest);
CREATE TABLE repo_blobs (
    repo text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest text COLLATE "C" NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs (digest);
CREATE TABLE tags (
    repo text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    name text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    mirrored_by text,
    mirrored_from text,
    mirrored_tag text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (repo, name)
);
CREATE INDEX tags_digest ON tags (repo, digest);
CREATE TABLE policies (
    id text PRIMARY KEY,
    local_repository text COLLATE "C" NOT NULL,
    remote_host text NOT NULL,
    remote_repository text NOT NULL,
    username text NOT NULL,
    password bytea NOT NULL,
    auth_token bytea NOT NULL,
    remote_ca text NOT NULL,
    skip_tls_verification boolean NOT NULL,
    enabled boolean NOT NULL,
    initial_evaluation boolean NOT NULL,
    last_mirrored_at timestamptz,
    status_code text NOT NULL,
    status_detail text NOT NULL,
    status_timestamp timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    owner text
);
CREATE INDEX policies_local ON policies (local_repository, created_at, id);
CREATE INDEX policies_created ON policies (created_at, id);
CREATE TABLE baselines (
    policy_id text NOT NULL,
    tag text NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (policy_id, tag)
);
CREATE TABLE policy_leases (
    policy_id text PRIMARY KEY,
    job_id text NOT NULL,
    until timestamptz NOT NULL
);
CREATE INDEX policy_leases_job ON policy_leases (job_id);
CREATE TABLE jobs (
    id text PRIMARY KEY,
    retry_from_id text NOT NULL,
    worker_id text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('waiting', 'running', 'done', 'errored', 'canceled')),
    scheduled_at timestamptz NOT NULL,
    last_updated timestamptz NOT NULL,
    action text NOT NULL,
    retries_left integer NOT NULL,
    retries_total integer NOT NULL,
    parameters jsonb NOT NULL,
    deadline timestamptz,
    stop_timeout_ms bigint NOT NULL,
    heartbeat_at timestamptz,
    cancel_requested boolean NOT NULL,
    failure jsonb
);
CREATE INDEX jobs_due ON jobs (scheduled_at, id) WHERE status = 'waiting';
CREATE INDEX jobs_running ON jobs ((parameters ->> 'policyID')) WHERE status = 'running';
CREATE INDEX jobs_newest ON jobs (scheduled_at DESC, id DESC);
CREATE TABLE job_logs (
    job_id text NOT NULL,
    line_num bigint NOT NULL,
    data text NOT NULL,
    PRIMARY KEY (job_id, line_num)
);
"#,
    },
    PgStep {
        version: 2,
        what: "garbage collection's holds and claims",
        sql: r#"
CREATE TABLE gc_holds (
    digest text COLLATE "C" PRIMARY KEY,
    held_at timestamptz NOT NULL
);
CREATE INDEX gc_holds_at ON gc_holds (held_at);
CREATE TABLE gc_claims (
    digest text COLLATE "C" PRIMARY KEY,
    claimed_at timestamptz NOT NULL
);
CREATE INDEX manifests_blobs ON manifests USING gin (blobs);
CREATE INDEX manifests_children ON manifests USING gin (children);
"#,
    },
    PgStep {
        version: 3,
        what: "policies' tag rules",
        sql: "ALTER TABLE policies ADD COLUMN rules text NOT NULL DEFAULT '[]';",
    },
    PgStep {
        version: 4,
        what: "policies' deletion propagation",
        sql: "ALTER TABLE policies ADD COLUMN delete_removed text NOT NULL DEFAULT '{}';",
    },
    PgStep {
        version: 5,
        what: "policies' platforms and referrers; a mirrored tag's remote digest",
        sql: "ALTER TABLE policies ADD COLUMN content text NOT NULL DEFAULT '{}';
              ALTER TABLE tags ADD COLUMN mirrored_digest text;",
    },
    PgStep {
        version: 6,
        what: "tag history",
        sql: r#"
CREATE TABLE tag_history (
    id bigserial PRIMARY KEY,
    repo text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    tag text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    mirrored_by text,
    tagged_at timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL,
    replaced_by text COLLATE "C"
);
CREATE INDEX tag_history_tag ON tag_history (repo, tag, id);
"#,
    },
    PgStep {
        version: 7,
        what: "push mirroring policies",
        sql: super::push_policy::SCHEMA,
    },
    PgStep {
        version: 8,
        what: "proxy caches",
        sql: super::proxy_cache::SCHEMA,
    },
    PgStep {
        version: 9,
        what: "when cached manifests were last pulled",
        sql: super::proxy_cache::PULLS_SCHEMA,
    },
    PgStep {
        version: 10,
        what: "policies' bandwidth limits",
        sql: "ALTER TABLE policies ADD COLUMN max_bytes_per_sec BIGINT NOT NULL DEFAULT 0",
    },
];

/// Brings the database (`what`, for messages) up to the last of `STEPS`;
/// returns the version it is at.
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Client,
    what: &str,
) -> Result<i32, StoreError> {
    migrate_steps(
        client,
        what,
        "regmirror_schema_migrations",
        LOCK_KEY,
        &STEPS,
    )
    .await
}

/// Applies the `steps` later than the highest version recorded in `table`
/// (created if missing), each in its own transaction with its row, under
/// the transaction-scoped advisory lock `lock_key`; a database whose
/// highest version is newer than the last step is refused as SQLite's
/// files are. Returns the version the database is at.
pub async fn migrate_steps(
    client: &mut deadpool_postgres::Client,
    what: &str,
    table: &str,
    lock_key: i64,
    steps: &[PgStep],
) -> Result<i32, StoreError> {
    let latest = steps.last().map_or(0, |s| s.version);
    let ctx = format!("migrating the {what}");
    loop {
        let tx = client.transaction().await.map_err(db_err(&ctx))?;
        execute(&tx, &ctx, "SELECT pg_advisory_xact_lock($1)", &[&lock_key]).await?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 version integer PRIMARY KEY,
                 what text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await
        .map_err(db_err(&ctx))?;
        let versions = query(
            &tx,
            &ctx,
            &format!("SELECT COALESCE(MAX(version), 0) AS version FROM {table}"),
            &[],
        )
        .await?;
        let current: i32 = versions.first().map_or(Ok(0), |r| get(r, "version"))?;
        if current > latest {
            return Err(newer_schema(what, current as u32, latest as u32));
        }
        let Some(step) = steps.iter().find(|s| s.version > current) else {
            tx.commit().await.map_err(db_err(&ctx))?;
            return Ok(current);
        };
        let step_ctx = format!("{ctx}: {}", step.what);
        tx.batch_execute(step.sql)
            .await
            .map_err(db_err(&step_ctx))?;
        execute(
            &tx,
            &step_ctx,
            &format!("INSERT INTO {table} (version, what) VALUES ($1, $2)"),
            &[&step.version, &step.what],
        )
        .await?;
        tx.commit().await.map_err(db_err(&step_ctx))?;
        tracing::info!(
            database = what,
            version = step.version,
            "database schema migrated: {}",
            step.what
        );
    }
}
