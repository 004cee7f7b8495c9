//! [`SqliteStore`]: the embedded metadata store (repositories, tags,
//! policies, jobs, logs) in one SQLite file, `regmirror.db`.
//!
//! One connection behind a mutex, used from the blocking pool: SQLite
//! serializes writers anyway, and metadata operations are small. WAL mode
//! lets the file be read while a write is in progress, and `synchronous=FULL`
//! makes a committed publish survive power loss.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::blob_fs::create_private_dir;
use super::layout::Layout;
use super::migrate::{Migration, add_column, has_column, migrate};
use super::sealed::SecretKeys;
use super::{
    CLAIM_TTL, JobLogStore, JobStore, LeaseStore, ManifestRecord, NewRepository, PolicyStore,
    Repository, RepositoryContent, RepositoryStore, StoreError, TAG_HISTORY_LIMIT, TagHistoryEntry,
    TagRecord, TagSource, Visibility,
};
use crate::digest::Digest;
use crate::job::{Job, JobFilter, JobStatus, LogLine};
use crate::policy::{MirroringStatus, PollMirroringPolicy, RemoteEndpoint};
use crate::reference::RepositoryName;
use crate::secret::Secret;

mod proxy_caches;
mod push_policies;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS repositories (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL,
    short_description TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS manifests (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    subject TEXT,
    artifact_type TEXT,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject);
CREATE TABLE IF NOT EXISTS manifest_refs (
    repo TEXT NOT NULL,
    manifest TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (repo, manifest, kind, position)
);
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    mirrored_by TEXT,
    mirrored_from TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (repo, name)
);
CREATE TABLE IF NOT EXISTS policies (
    id TEXT PRIMARY KEY,
    local_repository TEXT NOT NULL,
    remote_host TEXT NOT NULL,
    remote_repository TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    auth_token TEXT NOT NULL,
    remote_ca TEXT NOT NULL,
    skip_tls_verification INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    initial_evaluation INTEGER NOT NULL,
    last_mirrored_at TEXT,
    status_code TEXT NOT NULL,
    status_detail TEXT NOT NULL,
    status_timestamp TEXT NOT NULL,
    created_at TEXT NOT NULL,
    lease_job TEXT,
    lease_until TEXT
);
CREATE INDEX IF NOT EXISTS policies_local ON policies (local_repository);
CREATE TABLE IF NOT EXISTS baselines (
    policy_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (policy_id, tag)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    retry_from_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    status TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    action TEXT NOT NULL,
    retries_left INTEGER NOT NULL,
    retries_total INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    deadline TEXT NOT NULL,
    stop_timeout TEXT NOT NULL,
    heartbeat_at TEXT,
    cancel_requested INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, scheduled_at);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id TEXT NOT NULL,
    line_num INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, line_num)
);
"#;

/// The schema of `regmirror.db`, step by step (see [`super::migrate`]).
const MIGRATIONS: [Migration; 13] = [
    Migration {
        version: 1,
        what: "repositories, manifests, tags, policies, jobs and logs",
        apply: |c| c.execute_batch(SCHEMA),
    },
    Migration {
        version: 2,
        what: "policy owners, job failures, lookups of a digest's holders",
        apply: |c| {
            add_column(c, "policies", "owner", "TEXT")?;
            add_column(c, "jobs", "failure", "TEXT")?;
            c.execute_batch(
                "CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs (digest);
                 CREATE INDEX IF NOT EXISTS manifests_digest ON manifests (digest);",
            )
        },
    },
    Migration {
        version: 3,
        what: "a mirrored tag's remote repository and remote tag in their own columns",
        apply: split_mirrored_from,
    },
    Migration {
        version: 4,
        what: "policy leases in their own table",
        apply: |c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS policy_leases (
                     policy_id TEXT PRIMARY KEY,
                     job_id TEXT NOT NULL,
                     until TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS policy_leases_job ON policy_leases (job_id);",
            )?;
            if has_column(c, "policies", "lease_job")? {
                c.execute_batch(
                    "INSERT OR IGNORE INTO policy_leases (policy_id, job_id, until)
                         SELECT id, lease_job, lease_until FROM policies
                         WHERE lease_job IS NOT NULL AND lease_until IS NOT NULL;
                     ALTER TABLE policies DROP COLUMN lease_job;
                     ALTER TABLE policies DROP COLUMN lease_until;",
                )?;
            }
            Ok(())
        },
    },
    Migration {
        version: 5,
        what: "garbage collection's holds and claims",
        apply: |c| c.execute_batch(GC_SCHEMA),
    },
    Migration {
        version: 6,
        what: "policies' tag rules",
        apply: |c| add_column(c, "policies", "rules", "TEXT NOT NULL DEFAULT '[]'"),
    },
    Migration {
        version: 7,
        what: "policies' deletion propagation",
        apply: |c| {
            add_column(
                c,
                "policies",
                "delete_removed",
                "TEXT NOT NULL DEFAULT '{}'",
            )
        },
    },
    Migration {
        version: 8,
        what: "policies' platforms and referrers; a mirrored tag's remote digest",
        apply: |c| {
            add_column(c, "policies", "content", "TEXT NOT NULL DEFAULT '{}'")?;
            add_column(c, "tags", "mirrored_digest", "TEXT")
        },
    },
    Migration {
        version: 9,
        what: "tag history",
        apply: |c| c.execute_batch(TAG_HISTORY_SCHEMA),
    },
    Migration {
        version: 10,
        what: "push mirroring policies",
        apply: |c| c.execute_batch(push_policies::SCHEMA),
    },
    Migration {
        version: 11,
        what: "proxy caches",
        apply: |c| c.execute_batch(proxy_caches::SCHEMA),
    },
    Migration {
        version: 12,
        what: "when cached manifests were last pulled",
        apply: |c| c.execute_batch(proxy_caches::PULLS_SCHEMA),
    },
    Migration {
        version: 13,
        what: "policies' bandwidth limits",
        apply: |c| {
            add_column(
                c,
                "policies",
                "max_bytes_per_sec",
                "INTEGER NOT NULL DEFAULT 0",
            )
        },
    },
];

/// Step 9 (the same table in PostgreSQL's step 6): a tag's earlier values,
/// newest last (`id`).
const TAG_HISTORY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tag_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    mirrored_by TEXT,
    tagged_at TEXT NOT NULL,
    replaced_at TEXT NOT NULL,
    replaced_by TEXT
);
CREATE INDEX IF NOT EXISTS tag_history_tag ON tag_history (repo, tag, id);
";

/// Records, in the caller's transaction, the current value of `repo`'s
/// tags named `names` as history ended at `at` by `replaced_by` (a
/// delete: `None`), unless it already is `replaced_by`; then keeps the
/// newest [`TAG_HISTORY_LIMIT`] of each. Call before the write.
fn record_tag_history(
    c: &Connection,
    repo: &str,
    names: &[String],
    replaced_by: Option<&str>,
    at: &str,
    ctx: &str,
) -> Result<(), StoreError> {
    let mut record = c
        .prepare_cached(
            "INSERT INTO tag_history
                 (repo, tag, digest, media_type, size, mirrored_by, tagged_at, replaced_at, replaced_by)
             SELECT repo, name, digest, media_type, size, mirrored_by, updated_at, ?3, ?4
             FROM tags WHERE repo=?1 AND name=?2 AND digest IS NOT ?4",
        )
        .map_err(db_err(ctx))?;
    let mut prune = c
        .prepare_cached(
            "DELETE FROM tag_history WHERE repo=?1 AND tag=?2 AND id NOT IN
                 (SELECT id FROM tag_history WHERE repo=?1 AND tag=?2 ORDER BY id DESC LIMIT ?3)",
        )
        .map_err(db_err(ctx))?;
    for name in names {
        if record
            .execute(params![repo, name, at, replaced_by])
            .map_err(db_err(ctx))?
            > 0
        {
            prune
                .execute(params![repo, name, TAG_HISTORY_LIMIT as i64])
                .map_err(db_err(ctx))?;
        }
    }
    Ok(())
}

/// Step 5 (the same tables in PostgreSQL's step 5).
const GC_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gc_holds (digest TEXT PRIMARY KEY, held_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gc_holds_at ON gc_holds (held_at);
CREATE TABLE IF NOT EXISTS gc_claims (digest TEXT PRIMARY KEY, claimed_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS manifest_refs_target ON manifest_refs (target, repo);
";

/// Records holds on `digests` at `at` (a later hold is kept).
fn hold(c: &Connection, digests: &[String], at: &str, ctx: &str) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO gc_holds (digest, held_at) VALUES (?1, ?2)
             ON CONFLICT (digest) DO UPDATE SET held_at = max(held_at, excluded.held_at)",
        )
        .map_err(db_err(ctx))?;
    for d in digests {
        stmt.execute(params![d, at]).map_err(db_err(ctx))?;
    }
    Ok(())
}

/// In one transaction: holds `digests` at `at`, then reads which of them
/// are claimed since `claimed_since`.
fn hold_and_read_claims(
    c: &mut Connection,
    digests: &[String],
    at: &DateTime<Utc>,
    claimed_since: &str,
    ctx: &str,
) -> Result<Vec<Digest>, StoreError> {
    let tx = c.transaction().map_err(db_err(ctx))?;
    hold(&tx, digests, &ts(at), ctx)?;
    let mut claimed = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached("SELECT 1 FROM gc_claims WHERE digest=?1 AND claimed_at >= ?2")
            .map_err(db_err(ctx))?;
        for d in digests {
            if stmt
                .exists(params![d, claimed_since])
                .map_err(db_err(ctx))?
            {
                claimed.push(parse_digest(d)?);
            }
        }
    }
    tx.commit().map_err(db_err(ctx))?;
    Ok(claimed)
}

fn digest_strings(digests: &[Digest]) -> Vec<String> {
    digests.iter().map(|d| d.to_string()).collect()
}

/// Step 3: `mirrored_from` held `host/repository:tag`; the tag moves to
/// `mirrored_tag` (split once here, at the last `:`, which cannot be part
/// of a tag; a host's port comes before the repository's `/`).
fn split_mirrored_from(c: &Connection) -> rusqlite::Result<()> {
    add_column(c, "tags", "mirrored_tag", "TEXT")?;
    let rows: Vec<(i64, String)> = c
        .prepare(
            "SELECT rowid, mirrored_from FROM tags
             WHERE mirrored_from IS NOT NULL AND mirrored_tag IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update =
        c.prepare("UPDATE tags SET mirrored_from=?2, mirrored_tag=?3 WHERE rowid=?1")?;
    for (rowid, from) in rows {
        let (repository, tag) = from.rsplit_once(':').unwrap_or((from.as_str(), ""));
        update.execute(params![rowid, repository, tag])?;
    }
    Ok(())
}

/// The associated data of a policy's sealed `field`.
pub(super) fn secret_context(policy_id: &str, field: &str) -> String {
    format!("policy {policy_id} {field}")
}

/// Seals, with the current key, every policy secret stored in plain text
/// or under an older key.
fn reseal_secrets(conn: &Connection, keys: &SecretKeys) -> Result<(), StoreError> {
    let rows: Vec<(String, String, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, password, auth_token FROM policies")
            .map_err(db_err("reading policy secrets"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err("reading policy secrets"))?
            .collect::<Result<_, _>>()
            .map_err(db_err("reading policy secrets"))?
    };
    for (id, password, token) in rows {
        if !keys.needs_reseal(&password) && !keys.needs_reseal(&token) {
            continue;
        }
        let reseal = |stored: &str, field: &str| -> Result<String, StoreError> {
            let ctx = secret_context(&id, field);
            Ok(keys.seal(&keys.open(stored, &ctx)?, &ctx))
        };
        conn.execute(
            "UPDATE policies SET password=?2, auth_token=?3 WHERE id=?1",
            params![
                id,
                reseal(&password, "password")?,
                reseal(&token, "authToken")?
            ],
        )
        .map_err(db_err("sealing policy secrets"))?;
    }
    Ok(())
}

/// Repositories, tags, policies and jobs in an embedded SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Seal remote secrets at rest.
    keys: Arc<SecretKeys>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db_err(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Database {
        context: context.to_string(),
        source: Box::new(e),
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    // Fixed width, so that text order is time order.
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            reason: format!("bad timestamp {s:?}: {e}"),
        })
}

pub(super) fn parse_digest(s: &str) -> Result<Digest, StoreError> {
    Digest::parse(s).map_err(|e| StoreError::Corrupt {
        reason: e.to_string(),
    })
}

pub(super) fn parse_name(s: &str) -> Result<RepositoryName, StoreError> {
    RepositoryName::parse(s).map_err(|e| StoreError::Corrupt {
        reason: e.to_string(),
    })
}

impl SqliteStore {
    /// Opens (creating if needed) `regmirror.db` in `data_dir`; the directory
    /// and file are owner-only. Remote secrets are sealed with the keys of
    /// [`SecretKeys::load`].
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir)?;
        let keys = SecretKeys::load(data_dir)?;
        SqliteStore::open_with_keys(data_dir, keys)
    }

    /// [`SqliteStore::open`] with the given keys. Values sealed with an
    /// older key, or stored in plain text by an older version, are sealed
    /// again with the current key.
    pub fn open_with_keys(data_dir: &Path, keys: SecretKeys) -> Result<Self, StoreError> {
        create_private_dir(data_dir)?;
        let path = Layout::database(data_dir);
        // Owner-only before SQLite opens it: its -wal and -shm files get
        // the database file's mode.
        super::open_private_file(&path, false)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        let mut conn = Connection::open(&path).map_err(db_err("opening the database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err("configuring the database"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )
        .map_err(db_err("configuring the database"))?;
        // The statements a registry read runs stay prepared.
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, "regmirror.db", &MIGRATIONS)?;
        reseal_secrets(&conn, &keys)?;
        push_policies::reseal(&conn, &keys)?;
        proxy_caches::reseal(&conn, &keys)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            keys: Arc::new(keys),
        })
    }

    /// A policy's password and token, sealed for storage.
    fn sealed_secrets(&self, p: &PollMirroringPolicy) -> (String, String) {
        (
            self.keys.seal(
                p.remote.password.expose(),
                &secret_context(&p.id, "password"),
            ),
            self.keys.seal(
                p.remote.auth_token.expose(),
                &secret_context(&p.id, "authToken"),
            ),
        )
    }

    /// Runs `f`, a lookup by key (microseconds, the pages cached), at
    /// once on this thread when the connection is free: less than the
    /// hand-off to the blocking pool and back that [`SqliteStore::with`]
    /// costs. When the connection is busy (a write, a listing), `f` waits
    /// for it on the blocking pool instead. For the lookups of a registry
    /// read (`GET` of a manifest or blob).
    async fn lookup<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Ok(mut conn) = self.conn.try_lock() {
            return f(&mut conn);
        }
        self.with(f).await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Database {
            context: "running a database task".into(),
            source: Box::new(e),
        })?
    }
}

fn repository_from_row(r: &Row) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn build_repository(
    (id, name, vis, desc, created): (String, String, String, String, String),
) -> Result<Repository, StoreError> {
    Ok(Repository {
        id,
        name: parse_name(&name)?,
        visibility: visibility(&vis),
        short_description: desc,
        created_at: parse_ts(&created)?,
    })
}

/// The columns a tag is read from and written to, in order.
const TAG_COLUMNS: &str = "name, digest, media_type, size, mirrored_by, mirrored_from, mirrored_tag, updated_at, mirrored_digest";

/// A row of `SELECT {TAG_COLUMNS} FROM tags`, read whole so the statement
/// can be finished before the values are checked.
struct TagRow {
    name: String,
    digest: String,
    media_type: String,
    size: i64,
    mirrored_by: Option<String>,
    mirrored_from: Option<String>,
    mirrored_tag: Option<String>,
    updated_at: String,
    mirrored_digest: Option<String>,
}

fn tag_row(r: &Row) -> rusqlite::Result<TagRow> {
    Ok(TagRow {
        name: r.get(0)?,
        digest: r.get(1)?,
        media_type: r.get(2)?,
        size: r.get(3)?,
        mirrored_by: r.get(4)?,
        mirrored_from: r.get(5)?,
        mirrored_tag: r.get(6)?,
        updated_at: r.get(7)?,
        mirrored_digest: r.get(8)?,
    })
}

/// A stored visibility (anything but `public` is private).
pub(super) fn visibility(stored: &str) -> Visibility {
    if stored == "public" {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

/// Where a tag was mirrored from, from its four columns (`None` for a
/// pushed tag).
pub(super) fn tag_source(
    policy_id: Option<String>,
    remote_repository: Option<String>,
    remote_tag: Option<String>,
    remote_digest: Option<String>,
) -> Result<Option<TagSource>, StoreError> {
    let (Some(policy_id), Some(remote_repository), Some(remote_tag)) =
        (policy_id, remote_repository, remote_tag)
    else {
        return Ok(None);
    };
    Ok(Some(TagSource {
        policy_id,
        remote_repository,
        remote_tag,
        remote_digest: remote_digest.as_deref().map(parse_digest).transpose()?,
    }))
}

fn build_tag(row: TagRow) -> Result<TagRecord, StoreError> {
    Ok(TagRecord {
        name: row.name,
        digest: parse_digest(&row.digest)?,
        media_type: row.media_type,
        size: row.size as u64,
        mirrored: tag_source(
            row.mirrored_by,
            row.mirrored_from,
            row.mirrored_tag,
            row.mirrored_digest,
        )?,
        updated_at: parse_ts(&row.updated_at)?,
    })
}

/// `NotFound` unless the repository exists (checked inside the caller's
/// transaction, so nothing is linked to a repository being deleted).
fn require_repository(c: &Connection, repo: &str, ctx: &str) -> Result<(), StoreError> {
    let exists: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM repositories WHERE name=?1",
            params![repo],
            |r| r.get(0),
        )
        .map_err(db_err(ctx))?;
    if exists == 0 {
        return Err(StoreError::NotFound {
            what: format!("repository {repo}"),
        });
    }
    Ok(())
}

fn load_manifest(
    conn: &Connection,
    repo: &str,
    digest: &str,
) -> Result<Option<ManifestRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT media_type, size, subject, artifact_type FROM manifests WHERE repo=?1 AND digest=?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![repo, digest], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()
        })
        .map_err(db_err("reading a manifest"))?;
    let Some((media_type, size, subject, artifact_type)) = row else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT target, kind FROM manifest_refs WHERE repo=?1 AND manifest=?2 ORDER BY kind, position",
        )
        .map_err(db_err("reading manifest references"))?;
    let refs = stmt
        .query_map(params![repo, digest], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err("reading manifest references"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err("reading manifest references"))?;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    for (target, kind) in refs {
        let d = parse_digest(&target)?;
        if kind == "blob" {
            blobs.push(d);
        } else {
            children.push(d);
        }
    }
    Ok(Some(ManifestRecord {
        digest: parse_digest(digest)?,
        media_type,
        size: size as u64,
        blobs,
        children,
        subject: subject.map(|s| parse_digest(&s)).transpose()?,
        artifact_type,
    }))
}

impl SqliteStore {
    /// [`RepositoryStore::publish`] (`link_blobs`) and
    /// [`RepositoryStore::publish_cached`] (not): the same transaction,
    /// but only the first links the manifests' blobs to the repository.
    async fn publish_linking(
        &self,
        repo: &RepositoryName,
        manifests: &[ManifestRecord],
        tags: &[TagRecord],
        link_blobs: bool,
    ) -> Result<(), StoreError> {
        let repo = repo.to_string();
        let manifests = manifests.to_vec();
        let tags = tags.to_vec();
        self.with(move |c| {
            let ctx = "publishing manifests and tags";
            let tx = c.transaction().map_err(db_err(ctx))?;
            require_repository(&tx, &repo, ctx)?;
            for m in &manifests {
                let d = m.digest.to_string();
                tx.execute(
                    "INSERT OR REPLACE INTO manifests (repo, digest, media_type, size, subject, artifact_type) VALUES (?1,?2,?3,?4,?5,?6)",
                    params![repo, d, m.media_type, m.size as i64, m.subject.as_ref().map(|s| s.to_string()), m.artifact_type],
                )
                .map_err(db_err(ctx))?;
                tx.execute("DELETE FROM manifest_refs WHERE repo=?1 AND manifest=?2", params![repo, d])
                    .map_err(db_err(ctx))?;
                for (kind, list) in [("blob", &m.blobs), ("manifest", &m.children)] {
                    for (i, target) in list.iter().enumerate() {
                        let t = target.to_string();
                        tx.execute(
                            "INSERT INTO manifest_refs (repo, manifest, target, kind, position) VALUES (?1,?2,?3,?4,?5)",
                            params![repo, d, t, kind, i as i64],
                        )
                        .map_err(db_err(ctx))?;
                        if link_blobs && kind == "blob" {
                            tx.execute("INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1,?2)", params![repo, t])
                                .map_err(db_err(ctx))?;
                        }
                    }
                }
            }
            let linked: Vec<String> = manifests
                .iter()
                .flat_map(|m| std::iter::once(&m.digest).chain(&m.blobs).chain(&m.children))
                .map(|d| d.to_string())
                .collect();
            hold(&tx, &linked, &ts(&crate::job::now()), ctx)?;
            for t in &tags {
                let (name, digest) = (std::slice::from_ref(&t.name), t.digest.to_string());
                record_tag_history(&tx, &repo, name, Some(&digest), &ts(&t.updated_at), ctx)?;
                tx.execute(
                    &format!("INSERT OR REPLACE INTO tags (repo, {TAG_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"),
                    params![
                        repo,
                        t.name,
                        t.digest.to_string(),
                        t.media_type,
                        t.size as i64,
                        t.mirrored.as_ref().map(|m| &m.policy_id),
                        t.mirrored.as_ref().map(|m| &m.remote_repository),
                        t.mirrored.as_ref().map(|m| &m.remote_tag),
                        ts(&t.updated_at),
                        t.mirrored
                            .as_ref()
                            .and_then(|m| m.remote_digest.as_ref())
                            .map(|d| d.to_string())
                    ],
                )
                .map_err(db_err(ctx))?;
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }
}

#[async_trait]
impl RepositoryStore for SqliteStore {
    async fn create_repository(&self, repo: &NewRepository) -> Result<Repository, StoreError> {
        let record = Repository::created(repo);
        let r = record.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO repositories (id, name, visibility, short_description, created_at) VALUES (?1,?2,?3,?4,?5)",
                    params![r.id, r.name.as_str(), r.visibility.as_str(), r.short_description, ts(&r.created_at)],
                )
                .map_err(db_err("creating a repository"))?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    reason: format!("repository {} already exists", r.name),
                });
            }
            Ok(())
        })
        .await?;
        Ok(record)
    }

    async fn repository(&self, name: &RepositoryName) -> Result<Option<Repository>, StoreError> {
        let name = name.to_string();
        self.lookup(move |c| {
            c.prepare_cached(
                "SELECT id, name, visibility, short_description, created_at FROM repositories WHERE name=?1",
            )
            .and_then(|mut stmt| stmt.query_row(params![name], repository_from_row).optional())
            .map_err(db_err("reading a repository"))?
            .map(build_repository)
            .transpose()
        })
        .await
    }

    async fn repositories(&self) -> Result<Vec<Repository>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT id, name, visibility, short_description, created_at FROM repositories ORDER BY name")
                .map_err(db_err("listing repositories"))?;
            let rows = stmt
                .query_map([], repository_from_row)
                .map_err(db_err("listing repositories"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("listing repositories"))?;
            rows.into_iter().map(build_repository).collect()
        })
        .await
    }

    async fn delete_repository(&self, name: &RepositoryName) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(db_err("deleting a repository"))?;
            let n = tx
                .execute("DELETE FROM repositories WHERE name=?1", params![name])
                .map_err(db_err("deleting a repository"))?;
            for table in [
                "manifests",
                "manifest_refs",
                "repo_blobs",
                "tags",
                "tag_history",
                "cache_pulls",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE repo=?1"), params![name])
                    .map_err(db_err("deleting a repository"))?;
            }
            tx.commit().map_err(db_err("deleting a repository"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn tags(&self, repo: &RepositoryName) -> Result<Vec<TagRecord>, StoreError> {
        let repo = repo.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {TAG_COLUMNS} FROM tags WHERE repo=?1 ORDER BY name"
                ))
                .map_err(db_err("listing tags"))?;
            let rows = stmt
                .query_map(params![repo], tag_row)
                .map_err(db_err("listing tags"))?
                .collect::<Result<Vec<TagRow>, _>>()
                .map_err(db_err("listing tags"))?;
            rows.into_iter().map(build_tag).collect()
        })
        .await
    }

    async fn tag_count(&self, repo: &RepositoryName) -> Result<u64, StoreError> {
        let repo = repo.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM tags WHERE repo=?1",
                params![repo],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(db_err("counting tags"))
        })
        .await
    }

    async fn tag(&self, repo: &RepositoryName, tag: &str) -> Result<Option<TagRecord>, StoreError> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.lookup(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TAG_COLUMNS} FROM tags WHERE repo=?1 AND name=?2"
            ))
            .and_then(|mut stmt| stmt.query_row(params![repo, tag], tag_row).optional())
            .map_err(db_err("reading a tag"))?
            .map(build_tag)
            .transpose()
        })
        .await
    }

    async fn manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.lookup(move |c| load_manifest(c, &repo, &digest)).await
    }

    async fn has_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool, StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.lookup(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM repo_blobs WHERE repo=?1 AND digest=?2) + (SELECT COUNT(*) FROM manifests WHERE repo=?1 AND digest=?2)",
                )
                .and_then(|mut stmt| stmt.query_row(params![repo, digest], |r| r.get(0)))
                .map_err(db_err("looking up a blob link"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn holders(&self, digest: &Digest) -> Result<Vec<RepositoryName>, StoreError> {
        let digest = digest.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT repo FROM repo_blobs WHERE digest=?1 UNION SELECT repo FROM manifests WHERE digest=?1 ORDER BY 1",
                )
                .map_err(db_err("finding the holders of a blob"))?;
            let names = stmt
                .query_map(params![digest], |r| r.get::<_, String>(0))
                .map_err(db_err("finding the holders of a blob"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("finding the holders of a blob"))?;
            names.iter().map(|n| parse_name(n)).collect()
        })
        .await
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<ManifestRecord>, StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.with(move |c| {
            let digests: Vec<String> = {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT digest FROM manifests WHERE repo=?1 AND subject=?2 ORDER BY digest",
                    )
                    .map_err(db_err("listing referrers"))?;
                stmt.query_map(params![repo, digest], |r| r.get(0))
                    .map_err(db_err("listing referrers"))?
                    .collect::<Result<_, _>>()
                    .map_err(db_err("listing referrers"))?
            };
            let mut out = Vec::new();
            for d in digests {
                if let Some(m) = load_manifest(c, &repo, &d)? {
                    out.push(m);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn publish(
        &self,
        repo: &RepositoryName,
        manifests: &[ManifestRecord],
        tags: &[TagRecord],
    ) -> Result<(), StoreError> {
        self.publish_linking(repo, manifests, tags, true).await
    }

    async fn publish_cached(
        &self,
        repo: &RepositoryName,
        manifests: &[ManifestRecord],
        tags: &[TagRecord],
    ) -> Result<(), StoreError> {
        self.publish_linking(repo, manifests, tags, false).await
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &str) -> Result<bool, StoreError> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.with(move |c| {
            let ctx = "deleting a tag";
            let tx = c.transaction().map_err(db_err(ctx))?;
            let at = ts(&crate::job::now());
            record_tag_history(&tx, &repo, std::slice::from_ref(&tag), None, &at, ctx)?;
            let n = tx
                .execute(
                    "DELETE FROM tags WHERE repo=?1 AND name=?2",
                    params![repo, tag],
                )
                .map_err(db_err(ctx))?;
            tx.commit().map_err(db_err(ctx))?;
            Ok(n > 0)
        })
        .await
    }

    async fn tag_history(
        &self,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Vec<TagHistoryEntry>, StoreError> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.with(move |c| {
            let ctx = "reading a tag's history";
            type Row = (String, String, i64, String, String, Option<String>, Option<String>, bool);
            let rows: Vec<Row> = c
                .prepare_cached(
                    "SELECT h.digest, h.media_type, h.size, h.tagged_at, h.replaced_at,
                            h.replaced_by, h.mirrored_by,
                            EXISTS (SELECT 1 FROM manifests m WHERE m.repo=h.repo AND m.digest=h.digest)
                     FROM tag_history h WHERE h.repo=?1 AND h.tag=?2 ORDER BY h.id DESC",
                )
                .map_err(db_err(ctx))?
                .query_map(params![repo, tag], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .map_err(db_err(ctx))?
                .collect::<Result<_, _>>()
                .map_err(db_err(ctx))?;
            rows.into_iter()
                .map(|(digest, media_type, size, tagged, replaced, by, mirrored_by, available)| {
                    Ok(TagHistoryEntry {
                        digest: parse_digest(&digest)?,
                        media_type,
                        size: size.max(0) as u64,
                        tagged_at: parse_ts(&tagged)?,
                        replaced_at: parse_ts(&replaced)?,
                        replaced_by: by.as_deref().map(parse_digest).transpose()?,
                        mirrored_by,
                        available,
                    })
                })
                .collect()
        })
        .await
    }

    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.with(move |c| {
            let ctx = "linking a blob";
            let tx = c.transaction().map_err(db_err(ctx))?;
            require_repository(&tx, &repo, ctx)?;
            tx.execute(
                "INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1,?2)",
                params![repo, digest],
            )
            .map_err(db_err(ctx))?;
            hold(
                &tx,
                std::slice::from_ref(&digest),
                &ts(&crate::job::now()),
                ctx,
            )?;
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn unlink_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM repo_blobs WHERE repo=?1 AND digest=?2",
                    params![repo, digest],
                )
                .map_err(db_err("unlinking a blob"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn content(&self, repo: &RepositoryName) -> Result<RepositoryContent, StoreError> {
        let repo = repo.to_string();
        self.with(move |c| {
            let ctx = "reading a repository's content";
            let tx = c.transaction().map_err(db_err(ctx))?;
            let strings = |sql: &str| -> Result<Vec<(String, String)>, StoreError> {
                let mut stmt = tx.prepare_cached(sql).map_err(db_err(ctx))?;
                stmt.query_map(params![repo], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_err(ctx))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_err(ctx))
            };
            let tags = strings("SELECT name, digest FROM tags WHERE repo=?1")?
                .into_iter()
                .map(|(n, d)| Ok((n, parse_digest(&d)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let blobs = strings("SELECT digest, '' FROM repo_blobs WHERE repo=?1")?
                .iter()
                .map(|(d, _)| parse_digest(d))
                .collect::<Result<Vec<_>, _>>()?;
            let mut records: Vec<ManifestRecord> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT digest, media_type, size, subject, artifact_type FROM manifests WHERE repo=?1",
                    )
                    .map_err(db_err(ctx))?;
                let rows = stmt
                    .query_map(params![repo], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    })
                    .map_err(db_err(ctx))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_err(ctx))?;
                for (digest, media_type, size, subject, artifact_type) in rows {
                    index.insert(digest.clone(), records.len());
                    records.push(ManifestRecord {
                        digest: parse_digest(&digest)?,
                        media_type,
                        size: size as u64,
                        blobs: Vec::new(),
                        children: Vec::new(),
                        subject: subject.map(|s| parse_digest(&s)).transpose()?,
                        artifact_type,
                    });
                }
            }
            let mut stmt = tx
                .prepare_cached(
                    "SELECT manifest, target, kind FROM manifest_refs WHERE repo=?1 ORDER BY manifest, kind, position",
                )
                .map_err(db_err(ctx))?;
            let refs = stmt
                .query_map(params![repo], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(db_err(ctx))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err(ctx))?;
            for (manifest, target, kind) in refs {
                let Some(&i) = index.get(&manifest) else { continue };
                let target = parse_digest(&target)?;
                if kind == "blob" {
                    records[i].blobs.push(target);
                } else {
                    records[i].children.push(target);
                }
            }
            Ok(RepositoryContent {
                tags,
                manifests: records,
                blobs,
            })
        })
        .await
    }

    async fn hold_digests(
        &self,
        digests: &[Digest],
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError> {
        let digests = digest_strings(digests);
        let claimed_since = ts(&(at - chrono::Duration::from_std(CLAIM_TTL).expect("small")));
        self.with(move |c| {
            let ctx = "holding digests for garbage collection";
            // Without an fsync: a hold guards a writer of this moment, and
            // a power loss ends that writer too (WAL keeps it atomic).
            c.execute_batch("PRAGMA synchronous=NORMAL")
                .map_err(db_err(ctx))?;
            let held = hold_and_read_claims(c, &digests, &at, &claimed_since, ctx);
            c.execute_batch("PRAGMA synchronous=FULL")
                .map_err(db_err(ctx))?;
            held
        })
        .await
    }

    async fn held_since(&self, since: DateTime<Utc>) -> Result<Vec<Digest>, StoreError> {
        self.with(move |c| {
            let ctx = "listing held digests";
            let mut stmt = c
                .prepare_cached("SELECT digest FROM gc_holds WHERE held_at >= ?1")
                .map_err(db_err(ctx))?;
            let rows = stmt
                .query_map(params![ts(&since)], |r| r.get::<_, String>(0))
                .map_err(db_err(ctx))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err(ctx))?;
            rows.iter().map(|d| parse_digest(d)).collect()
        })
        .await
    }

    async fn prune_holds(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM gc_holds WHERE held_at < ?1",
                params![ts(&before)],
            )
            .map(|n| n as u64)
            .map_err(db_err("pruning garbage collection holds"))
        })
        .await
    }

    async fn remove_unreferenced(
        &self,
        repo: &RepositoryName,
        manifests: &[Digest],
        blobs: &[Digest],
        held_since: DateTime<Utc>,
    ) -> Result<(Vec<Digest>, Vec<Digest>), StoreError> {
        let repo = repo.to_string();
        let (manifests, blobs) = (manifests.to_vec(), blobs.to_vec());
        self.with(move |c| {
            let ctx = "removing unreferenced manifests and blob links";
            let since = ts(&held_since);
            let tx = c.transaction().map_err(db_err(ctx))?;
            let mut gone_manifests = Vec::new();
            for d in manifests {
                let n = tx
                    .execute(
                        "DELETE FROM manifests WHERE repo=?1 AND digest=?2
                           AND NOT EXISTS (SELECT 1 FROM tags WHERE repo=?1 AND digest=?2)
                           AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo=?1 AND target=?2 AND kind='manifest')
                           AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo=?1 AND t.digest=manifests.subject)
                           AND NOT EXISTS (SELECT 1 FROM gc_holds WHERE digest=?2 AND held_at >= ?3)",
                        params![repo, d.to_string(), since],
                    )
                    .map_err(db_err(ctx))?;
                if n > 0 {
                    tx.execute(
                        "DELETE FROM manifest_refs WHERE repo=?1 AND manifest=?2",
                        params![repo, d.to_string()],
                    )
                    .map_err(db_err(ctx))?;
                    gone_manifests.push(d);
                }
            }
            let mut gone_blobs = Vec::new();
            for d in blobs {
                let n = tx
                    .execute(
                        "DELETE FROM repo_blobs WHERE repo=?1 AND digest=?2
                           AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo=?1 AND target=?2 AND kind='blob')
                           AND NOT EXISTS (SELECT 1 FROM gc_holds WHERE digest=?2 AND held_at >= ?3)",
                        params![repo, d.to_string(), since],
                    )
                    .map_err(db_err(ctx))?;
                if n > 0 {
                    gone_blobs.push(d);
                }
            }
            tx.commit().map_err(db_err(ctx))?;
            Ok((gone_manifests, gone_blobs))
        })
        .await
    }

    async fn claim_unreferenced(
        &self,
        digests: &[Digest],
        held_since: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError> {
        let digests = digests.to_vec();
        self.with(move |c| {
            let ctx = "claiming unreferenced blobs";
            // Another collector's live claim is its own: taken over only
            // once stale.
            let stale = ts(&(at - chrono::Duration::from_std(CLAIM_TTL).expect("small")));
            let (since, at) = (ts(&held_since), ts(&at));
            let tx = c.transaction().map_err(db_err(ctx))?;
            let mut claimed = Vec::new();
            for d in digests {
                let n = tx
                    .execute(
                        "INSERT INTO gc_claims (digest, claimed_at) SELECT ?1, ?2
                         WHERE NOT EXISTS (SELECT 1 FROM repo_blobs WHERE digest=?1)
                           AND NOT EXISTS (SELECT 1 FROM manifests WHERE digest=?1)
                           AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE target=?1)
                           AND NOT EXISTS (SELECT 1 FROM gc_holds WHERE digest=?1 AND held_at >= ?3)
                         ON CONFLICT (digest) DO UPDATE SET claimed_at = excluded.claimed_at
                           WHERE gc_claims.claimed_at < ?4",
                        params![d.to_string(), at, since, stale],
                    )
                    .map_err(db_err(ctx))?;
                if n > 0 {
                    claimed.push(d);
                }
            }
            tx.commit().map_err(db_err(ctx))?;
            Ok(claimed)
        })
        .await
    }

    async fn release_claims(&self, digests: &[Digest]) -> Result<(), StoreError> {
        let digests = digest_strings(digests);
        self.with(move |c| {
            let ctx = "releasing garbage collection claims";
            let tx = c.transaction().map_err(db_err(ctx))?;
            for d in &digests {
                tx.execute("DELETE FROM gc_claims WHERE digest=?1", params![d])
                    .map_err(db_err(ctx))?;
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.with(move |c| {
            let ctx = "deleting a manifest";
            let tx = c.transaction().map_err(db_err(ctx))?;
            let n = tx
                .execute(
                    "DELETE FROM manifests WHERE repo=?1 AND digest=?2",
                    params![repo, digest],
                )
                .map_err(db_err(ctx))?;
            tx.execute(
                "DELETE FROM manifest_refs WHERE repo=?1 AND manifest=?2",
                params![repo, digest],
            )
            .map_err(db_err(ctx))?;
            let tags: Vec<String> = tx
                .prepare_cached("SELECT name FROM tags WHERE repo=?1 AND digest=?2")
                .map_err(db_err(ctx))?
                .query_map(params![repo, digest], |r| r.get(0))
                .map_err(db_err(ctx))?
                .collect::<Result<_, _>>()
                .map_err(db_err(ctx))?;
            record_tag_history(&tx, &repo, &tags, None, &ts(&crate::job::now()), ctx)?;
            tx.execute(
                "DELETE FROM tags WHERE repo=?1 AND digest=?2",
                params![repo, digest],
            )
            .map_err(db_err(ctx))?;
            tx.commit().map_err(db_err(ctx))?;
            Ok(n > 0)
        })
        .await
    }
}

const POLICY_COLUMNS: &str = "id, local_repository, remote_host, remote_repository, username, password, auth_token, remote_ca, skip_tls_verification, enabled, initial_evaluation, last_mirrored_at, status_code, status_detail, status_timestamp, created_at, owner, rules, delete_removed, content, max_bytes_per_sec";

struct PolicyRow {
    id: String,
    local: String,
    host: String,
    remote: String,
    username: String,
    password: String,
    auth_token: String,
    remote_ca: String,
    skip_tls: bool,
    enabled: bool,
    initial: bool,
    last_mirrored: Option<String>,
    code: String,
    detail: String,
    status_ts: String,
    created: String,
    owner: Option<String>,
    rules: String,
    delete_removed: String,
    content: String,
    max_bytes_per_sec: i64,
}

fn policy_row(r: &Row) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        id: r.get(0)?,
        local: r.get(1)?,
        host: r.get(2)?,
        remote: r.get(3)?,
        username: r.get(4)?,
        password: r.get(5)?,
        auth_token: r.get(6)?,
        remote_ca: r.get(7)?,
        skip_tls: r.get(8)?,
        enabled: r.get(9)?,
        initial: r.get(10)?,
        last_mirrored: r.get(11)?,
        code: r.get(12)?,
        detail: r.get(13)?,
        status_ts: r.get(14)?,
        created: r.get(15)?,
        owner: r.get(16)?,
        rules: r.get(17)?,
        delete_removed: r.get(18)?,
        content: r.get(19)?,
        max_bytes_per_sec: r.get(20)?,
    })
}

fn build_policy(p: PolicyRow, keys: &SecretKeys) -> Result<PollMirroringPolicy, StoreError> {
    let password = keys.open(&p.password, &secret_context(&p.id, "password"))?;
    let auth_token = keys.open(&p.auth_token, &secret_context(&p.id, "authToken"))?;
    Ok(PollMirroringPolicy {
        id: p.id,
        local_repository: parse_name(&p.local)?,
        remote: RemoteEndpoint {
            host: p.host,
            repository: parse_name(&p.remote)?,
            username: p.username,
            password: Secret::new(password),
            auth_token: Secret::new(auth_token),
            remote_ca: p.remote_ca,
            skip_tls_verification: p.skip_tls,
        },
        enabled: p.enabled,
        initial_evaluation: p.initial,
        last_mirrored_at: p.last_mirrored.map(|t| parse_ts(&t)).transpose()?,
        last_status: MirroringStatus {
            code: p.code,
            detail: p.detail,
            timestamp: parse_ts(&p.status_ts)?,
        },
        created_at: parse_ts(&p.created)?,
        owner: p.owner,
        rules: super::rules_from_text(&p.rules)?,
        delete_removed: super::deletion_from_text(&p.delete_removed)?,
        content: super::selection_from_text(&p.content)?,
        max_bytes_per_sec: u64::try_from(p.max_bytes_per_sec).unwrap_or(0),
    })
}

const JOB_COLUMNS: &str = "id, retry_from_id, worker_id, status, scheduled_at, last_updated, action, retries_left, retries_total, parameters, deadline, stop_timeout, heartbeat_at, cancel_requested, failure";

type JobRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i32,
    i32,
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
);

fn job_row(r: &Row) -> rusqlite::Result<JobRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

/// A stored job status.
pub(super) fn job_status(stored: &str) -> Result<JobStatus, StoreError> {
    JobStatus::parse(stored).ok_or_else(|| StoreError::Corrupt {
        reason: format!("unknown job status {stored:?}"),
    })
}

fn build_job(j: JobRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: j.0,
        retry_from_id: j.1,
        worker_id: j.2,
        status: job_status(&j.3)?,
        scheduled_at: parse_ts(&j.4)?,
        last_updated: parse_ts(&j.5)?,
        action: j.6,
        retries_left: j.7,
        retries_total: j.8,
        parameters: serde_json::from_str(&j.9).map_err(|e| StoreError::Corrupt {
            reason: format!("job parameters: {e}"),
        })?,
        deadline: match j.10.as_str() {
            "" => None,
            t => Some(parse_ts(t)?),
        },
        stop_timeout: crate::job::parse_duration(&j.11).unwrap_or(crate::job::DEFAULT_STOP_TIMEOUT),
        heartbeat_at: j.12.map(|t| parse_ts(&t)).transpose()?,
        cancel_requested: j.13,
        failure: j
            .14
            .map(|f| serde_json::from_str(&f))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                reason: format!("job failure: {e}"),
            })?,
    })
}

/// SQL for the local namespace of the policy whose job the row `alias`
/// is: the poll policy a `poll_mirror` job polls, or the push policy a
/// `push_mirror_tag` job pushes for (NULL for a job that polls every
/// policy, another action, or a deleted policy).
fn job_namespace_sql(alias: &str) -> String {
    let namespace = |table: &str, param: &str| {
        format!(
            "(SELECT substr(p.local_repository, 1, instr(p.local_repository || '/', '/') - 1) \
             FROM {table} p WHERE p.id = json_extract({alias}.parameters, '$.{param}'))"
        )
    };
    format!(
        "COALESCE({}, {})",
        namespace("policies", crate::job::PARAM_POLICY_ID),
        namespace("push_policies", crate::push_policy::PARAM_PUSH_POLICY_ID)
    )
}

fn load_job(c: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id=?1"),
        params![id],
        job_row,
    )
    .optional()
    .map_err(db_err("reading a job"))?
    .map(build_job)
    .transpose()
}

fn save_job(c: &Connection, j: &Job) -> Result<(), StoreError> {
    write_job(
        c,
        &format!("INSERT OR REPLACE INTO jobs ({JOB_COLUMNS}) VALUES ({JOB_VALUES})"),
        j,
        &[],
    )?;
    Ok(())
}

/// `?1`..`?15`: a job's [`JOB_COLUMNS`], as [`write_job`] binds them.
const JOB_VALUES: &str = "?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15";

/// Runs `sql` with the job's columns bound to `?1`..`?15` (in
/// [`JOB_COLUMNS`] order) and `extra` after them; returns the rows changed.
fn write_job(
    c: &Connection,
    sql: &str,
    j: &Job,
    extra: &[&dyn rusqlite::ToSql],
) -> Result<usize, StoreError> {
    let params_json = serde_json::to_string(&j.parameters).expect("string map serializes");
    let (scheduled_at, last_updated) = (ts(&j.scheduled_at), ts(&j.last_updated));
    let deadline = j.deadline.as_ref().map(ts).unwrap_or_default();
    let stop_timeout = crate::job::format_duration(j.stop_timeout);
    let heartbeat_at = j.heartbeat_at.as_ref().map(ts);
    let failure = j
        .failure
        .as_ref()
        .map(|f| serde_json::to_string(f).expect("a failure serializes"));
    let status = j.status.as_str();
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![
        &j.id,
        &j.retry_from_id,
        &j.worker_id,
        &status,
        &scheduled_at,
        &last_updated,
        &j.action,
        &j.retries_left,
        &j.retries_total,
        &params_json,
        &deadline,
        &stop_timeout,
        &heartbeat_at,
        &j.cancel_requested,
        &failure,
    ];
    values.extend_from_slice(extra);
    c.execute(sql, values.as_slice())
        .map_err(db_err("saving a job"))
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn insert_policy(&self, p: &PollMirroringPolicy) -> Result<(), StoreError> {
        let p = p.clone();
        let (password, auth_token) = self.sealed_secrets(&p);
        self.with(move |c| {
            c.execute(
                &format!("INSERT INTO policies ({POLICY_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"),
                params![
                    p.id,
                    p.local_repository.as_str(),
                    p.remote.host,
                    p.remote.repository.as_str(),
                    p.remote.username,
                    password,
                    auth_token,
                    p.remote.remote_ca,
                    p.remote.skip_tls_verification,
                    p.enabled,
                    p.initial_evaluation,
                    p.last_mirrored_at.as_ref().map(ts),
                    p.last_status.code,
                    p.last_status.detail,
                    ts(&p.last_status.timestamp),
                    ts(&p.created_at),
                    p.owner,
                    super::rules_to_text(&p.rules),
                    super::deletion_to_text(&p.delete_removed),
                    super::selection_to_text(&p.content),
                    i64::try_from(p.max_bytes_per_sec).unwrap_or(i64::MAX)
                ],
            )
            .map_err(db_err("saving a policy"))?;
            Ok(())
        })
        .await
    }

    async fn policy(&self, id: &str) -> Result<Option<PollMirroringPolicy>, StoreError> {
        let id = id.to_string();
        let keys = self.keys.clone();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id=?1"),
                params![id],
                policy_row,
            )
            .optional()
            .map_err(db_err("reading a policy"))?
            .map(|row| build_policy(row, &keys))
            .transpose()
        })
        .await
    }

    async fn policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PollMirroringPolicy>, StoreError> {
        let local = local.map(|l| l.to_string());
        let keys = self.keys.clone();
        self.with(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {POLICY_COLUMNS} FROM policies WHERE ?1 IS NULL OR local_repository=?1 ORDER BY created_at, id"
                ))
                .map_err(db_err("listing policies"))?;
            let rows = stmt
                .query_map(params![local], policy_row)
                .map_err(db_err("listing policies"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("listing policies"))?;
            rows.into_iter()
                .map(|row| build_policy(row, &keys))
                .collect()
        })
        .await
    }

    async fn update_policy(&self, p: &PollMirroringPolicy) -> Result<bool, StoreError> {
        let p = p.clone();
        let (password, auth_token) = self.sealed_secrets(&p);
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE policies SET remote_host=?2, remote_repository=?3, username=?4, password=?5, auth_token=?6, remote_ca=?7, skip_tls_verification=?8, enabled=?9, owner=?10, rules=?11, delete_removed=?12, content=?13, max_bytes_per_sec=?14 WHERE id=?1",
                    params![
                        p.id,
                        p.remote.host,
                        p.remote.repository.as_str(),
                        p.remote.username,
                        password,
                        auth_token,
                        p.remote.remote_ca,
                        p.remote.skip_tls_verification,
                        p.enabled,
                        p.owner,
                        super::rules_to_text(&p.rules),
                        super::deletion_to_text(&p.delete_removed),
                        super::selection_to_text(&p.content),
                        i64::try_from(p.max_bytes_per_sec).unwrap_or(i64::MAX)
                    ],
                )
                .map_err(db_err("updating a policy"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_policy(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(db_err("deleting a policy"))?;
            let n = tx
                .execute("DELETE FROM policies WHERE id=?1", params![id])
                .map_err(db_err("deleting a policy"))?;
            tx.execute("DELETE FROM baselines WHERE policy_id=?1", params![id])
                .map_err(db_err("deleting a policy"))?;
            tx.commit().map_err(db_err("deleting a policy"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (id, status) = (id.to_string(), status.clone());
        self.with(move |c| {
            c.execute(
                "UPDATE policies SET status_code=?2, status_detail=?3, status_timestamp=?4, last_mirrored_at=COALESCE(?5, last_mirrored_at) WHERE id=?1",
                params![id, status.code, status.detail, ts(&status.timestamp), mirrored_at.as_ref().map(ts)],
            )
            .map_err(db_err("recording a policy status"))?;
            Ok(())
        })
        .await
    }

    async fn set_baseline(
        &self,
        id: &str,
        tags: &HashMap<String, Digest>,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let tags: Vec<(String, String)> = tags
            .iter()
            .map(|(t, d)| (t.clone(), d.to_string()))
            .collect();
        self.with(move |c| {
            let tx = c.transaction().map_err(db_err("saving a baseline"))?;
            tx.execute("DELETE FROM baselines WHERE policy_id=?1", params![id])
                .map_err(db_err("saving a baseline"))?;
            {
                let mut stmt = tx
                    .prepare("INSERT INTO baselines (policy_id, tag, digest) VALUES (?1,?2,?3)")
                    .map_err(db_err("saving a baseline"))?;
                for (t, d) in &tags {
                    stmt.execute(params![id, t, d])
                        .map_err(db_err("saving a baseline"))?;
                }
            }
            tx.commit().map_err(db_err("saving a baseline"))
        })
        .await
    }

    async fn baseline(&self, id: &str) -> Result<HashMap<String, Digest>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare("SELECT tag, digest FROM baselines WHERE policy_id=?1")
                .map_err(db_err("reading a baseline"))?;
            let rows = stmt
                .query_map(params![id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db_err("reading a baseline"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("reading a baseline"))?;
            rows.into_iter()
                .map(|(t, d)| Ok((t, parse_digest(&d)?)))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn lease_policy(
        &self,
        policy_id: &str,
        job_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (pid, jid) = (policy_id.to_string(), job_id.to_string());
        let now = ts(&Utc::now());
        self.with(move |c| {
            // Taken when free, expired, or already this job's (renewed).
            let n = c
                .execute(
                    "INSERT INTO policy_leases (policy_id, job_id, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (policy_id) DO UPDATE SET job_id=excluded.job_id, until=excluded.until
                     WHERE policy_leases.job_id=excluded.job_id OR policy_leases.until < ?4",
                    params![pid, jid, ts(&until), now],
                )
                .map_err(db_err("leasing a policy"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn policy_lease_holder(&self, policy_id: &str) -> Result<Option<String>, StoreError> {
        let pid = policy_id.to_string();
        let now = ts(&Utc::now());
        self.with(move |c| {
            c.query_row(
                "SELECT job_id FROM policy_leases WHERE policy_id=?1 AND until >= ?2",
                params![pid, now],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err("reading a policy lease"))
        })
        .await
    }

    async fn release_policy(&self, policy_id: &str, job_id: &str) -> Result<(), StoreError> {
        let (pid, jid) = (policy_id.to_string(), job_id.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM policy_leases WHERE policy_id=?1 AND job_id=?2",
                params![pid, jid],
            )
            .map_err(db_err("releasing a policy lease"))?;
            Ok(())
        })
        .await
    }

    async fn release_job_leases(&self, job_id: &str) -> Result<(), StoreError> {
        let jid = job_id.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM policy_leases WHERE job_id=?1", params![jid])
                .map_err(db_err("releasing policy leases"))?;
            Ok(())
        })
        .await
    }
    async fn renew_leases(&self, job_id: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        let jid = job_id.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE policy_leases SET until=?2 WHERE job_id=?1",
                params![jid, ts(&until)],
            )
            .map_err(db_err("renewing policy leases"))?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        let job = job.clone();
        self.with(move |c| save_job(c, &job)).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        self.with(move |c| load_job(c, &id)).await
    }

    async fn jobs(&self, f: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let f = f.clone();
        self.with(move |c| {
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR action=?1) AND (?2 IS NULL OR status=?2)");
            match f.running {
                Some(true) => sql.push_str(" AND status IN ('waiting','running')"),
                Some(false) => sql.push_str(" AND status NOT IN ('waiting','running')"),
                None => {}
            }
            sql.push_str(" ORDER BY scheduled_at DESC, id DESC LIMIT ?3 OFFSET ?4");
            let limit = if f.limit == 0 { -1 } else { f.limit as i64 };
            let mut stmt = c.prepare(&sql).map_err(db_err("listing jobs"))?;
            let rows = stmt
                .query_map(
                    params![f.action, f.status.map(|s| s.as_str()), limit, f.start as i64],
                    job_row,
                )
                .map_err(db_err("listing jobs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("listing jobs"))?;
            rows.into_iter().map(build_job).collect()
        })
        .await
    }

    async fn claim_job(
        &self,
        worker_id: &str,
        job_id: Option<&str>,
        now: DateTime<Utc>,
        per_namespace: Option<usize>,
    ) -> Result<Option<Job>, StoreError> {
        let (worker, job_id) = (worker_id.to_string(), job_id.map(str::to_string));
        let share = per_namespace.map(|n| n as i64);
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_err("claiming a job"))?;
            let id: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM jobs j WHERE status='waiting' AND (?1 IS NULL OR id=?1) AND (?1 IS NOT NULL OR scheduled_at <= ?2) \
                         AND (?3 IS NULL OR {ns} IS NULL OR (SELECT COUNT(*) FROM jobs r WHERE r.status='running' AND {ns_r} = {ns}) < ?3) \
                         ORDER BY scheduled_at, id LIMIT 1",
                        ns = job_namespace_sql("j"),
                        ns_r = job_namespace_sql("r"),
                    ),
                    params![job_id, ts(&now), share],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err("claiming a job"))?;
            let Some(id) = id else { return Ok(None) };
            tx.execute(
                "UPDATE jobs SET status='running', worker_id=?2, last_updated=?3, heartbeat_at=?3 WHERE id=?1",
                params![id, worker, ts(&now)],
            )
            .map_err(db_err("claiming a job"))?;
            let job = load_job(&tx, &id)?;
            tx.commit().map_err(db_err("claiming a job"))?;
            Ok(job)
        })
        .await
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let job = job.clone();
        self.with(move |c| save_job(c, &job)).await
    }

    async fn finish_job(&self, job: &Job, worker_id: &str) -> Result<bool, StoreError> {
        let (job, worker) = (job.clone(), worker_id.to_string());
        self.with(move |c| {
            let n = write_job(
                c,
                &format!(
                    "UPDATE jobs SET ({JOB_COLUMNS}) = ({JOB_VALUES})
                     WHERE id=?1 AND status='running' AND worker_id=?16"
                ),
                &job,
                &[&worker],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn replace_lost_job(
        &self,
        job: &Job,
        found_worker: &str,
        found_heartbeat: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let (job, worker) = (job.clone(), found_worker.to_string());
        let heartbeat = found_heartbeat.as_ref().map(ts);
        self.with(move |c| {
            let n = write_job(
                c,
                &format!(
                    "UPDATE jobs SET ({JOB_COLUMNS}) = ({JOB_VALUES})
                     WHERE id=?1 AND status='running' AND worker_id=?16 AND heartbeat_at IS ?17"
                ),
                &job,
                &[&worker, &heartbeat],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE jobs SET heartbeat_at=?2 WHERE id=?1 AND status='running'",
                params![id, ts(&now)],
            )
            .map_err(db_err("recording a heartbeat"))?;
            load_job(c, &id)
        })
        .await
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        let now = ts(&Utc::now());
        self.with(move |c| {
            c.execute(
                "UPDATE jobs SET cancel_requested=1, last_updated=?2 WHERE id=?1 AND status='running'",
                params![id, now],
            )
            .map_err(db_err("canceling a job"))?;
            c.execute(
                "UPDATE jobs SET status='canceled', last_updated=?2 WHERE id=?1 AND status='waiting'",
                params![id, now],
            )
            .map_err(db_err("canceling a job"))?;
            load_job(c, &id)
        })
        .await
    }

    async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(db_err("deleting a job"))?;
            let n = tx
                .execute("DELETE FROM jobs WHERE id=?1", params![id])
                .map_err(db_err("deleting a job"))?;
            tx.execute("DELETE FROM job_logs WHERE job_id=?1", params![id])
                .map_err(db_err("deleting a job"))?;
            tx.commit().map_err(db_err("deleting a job"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn stale_jobs(&self, before: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        self.with(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status='running' AND (heartbeat_at IS NULL OR heartbeat_at < ?1)"
                ))
                .map_err(db_err("finding stale jobs"))?;
            let rows = stmt
                .query_map(params![ts(&before)], job_row)
                .map_err(db_err("finding stale jobs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("finding stale jobs"))?;
            rows.into_iter().map(build_job).collect()
        })
        .await
    }
}

#[async_trait]
impl JobLogStore for SqliteStore {
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError> {
        let (id, lines) = (id.to_string(), lines.to_vec());
        self.with(move |c| {
            let tx = c.transaction().map_err(db_err("appending job logs"))?;
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(line_num)+1, 0) FROM job_logs WHERE job_id=?1",
                    params![id],
                    |r| r.get(0),
                )
                .map_err(db_err("appending job logs"))?;
            for (i, line) in lines.iter().enumerate() {
                tx.execute(
                    "INSERT INTO job_logs (job_id, line_num, data) VALUES (?1,?2,?3)",
                    params![id, next + i as i64, line],
                )
                .map_err(db_err("appending job logs"))?;
            }
            tx.commit().map_err(db_err("appending job logs"))
        })
        .await
    }

    async fn logs(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<LogLine>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT line_num, data FROM job_logs WHERE job_id=?1 AND line_num >= ?2 ORDER BY line_num LIMIT ?3",
                )
                .map_err(db_err("reading job logs"))?;
            let limit = if limit <= 0 { -1 } else { limit };
            let rows = stmt
                .query_map(params![id, offset, limit], |r| {
                    Ok(LogLine { line_num: r.get(0)?, data: r.get(1)? })
                })
                .map_err(db_err("reading job logs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err("reading job logs"))?;
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_with_a_newer_schema_is_refused_and_an_old_one_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let keys = || SecretKeys::from_key([3; 32]);
        drop(SqliteStore::open_with_keys(dir.path(), keys()).unwrap());
        let path = Layout::database(dir.path());
        let version = |c: &Connection| -> u32 {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        let c = Connection::open(&path).unwrap();
        assert_eq!(version(&c), MIGRATIONS.len() as u32);
        // A database from before versions were recorded: adopted, upgraded.
        c.execute_batch("PRAGMA user_version = 0").unwrap();
        drop(c);
        drop(SqliteStore::open_with_keys(dir.path(), keys()).unwrap());
        let c = Connection::open(&path).unwrap();
        assert_eq!(version(&c), MIGRATIONS.len() as u32);
        // One written by a newer build is left alone.
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let e = SqliteStore::open_with_keys(dir.path(), keys()).unwrap_err();
        assert!(
            e.to_string()
                .contains("schema version 99, newer than this build knows"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_mirrored_tag_of_an_older_schema_keeps_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let keys = || SecretKeys::from_key([3; 32]);
        let store = SqliteStore::open_with_keys(dir.path(), keys()).unwrap();
        let repo = RepositoryName::parse("mirrors/app").unwrap();
        store
            .create_repository(&NewRepository {
                name: repo.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await
            .unwrap();
        drop(store);
        // As version 2 wrote it: `host/repository:tag` in one column.
        let c = Connection::open(Layout::database(dir.path())).unwrap();
        c.execute_batch(
            "ALTER TABLE tags DROP COLUMN mirrored_tag;
             INSERT INTO tags (repo, name, digest, media_type, size, mirrored_by, mirrored_from, updated_at)
             VALUES ('mirrors/app', 'v1', 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
                     'application/vnd.oci.image.manifest.v1+json', 10, 'p1',
                     'http://127.0.0.1:5000/team/app:v1', '2026-01-01T00:00:00Z');
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(c);
        let store = SqliteStore::open_with_keys(dir.path(), keys()).unwrap();
        let tag = store.tag(&repo, "v1").await.unwrap().unwrap();
        assert_eq!(
            tag.mirrored,
            Some(TagSource {
                policy_id: "p1".into(),
                remote_repository: "http://127.0.0.1:5000/team/app".into(),
                remote_tag: "v1".into(),
                remote_digest: None,
            })
        );
    }
}
