//! [`ProxyCacheStore`] on SQLite: the `proxy_caches` table (step 11) and
//! the `cache_pulls` table (step 12).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, db_err, parse_digest, parse_name, parse_ts, ts};
use crate::digest::Digest;
use crate::proxy_cache::ProxyCache;
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::proxy_cache::{
    from_db_int, latest_pulls, namespace_range, proxy_cache_secret_context, to_db_int,
};
use crate::store::{CachePull, ProxyCacheStore, SecretKeys, StoreError};

/// Step 11: proxy caches. `password` is sealed, NULL when there is none.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS proxy_caches (
    namespace TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT,
    remote_ca TEXT NOT NULL,
    skip_tls_verification INTEGER NOT NULL,
    tag_ttl_secs INTEGER NOT NULL,
    max_bytes INTEGER NOT NULL,
    anonymous_pull INTEGER NOT NULL,
    is_default INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
";

/// Step 12: when each cached manifest was last pulled. No foreign key (no
/// table here has one): a repository's rows go with it in
/// `delete_repository`, as its tags do.
pub(super) const PULLS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cache_pulls (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    pulled_at TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
);
";

const COLUMNS: &str = "namespace, host, username, password, remote_ca, skip_tls_verification, tag_ttl_secs, max_bytes, anonymous_pull, is_default, created_at, updated_at";

/// A row as read, the password still sealed.
struct CacheRow {
    namespace: String,
    host: String,
    username: String,
    password: Option<String>,
    remote_ca: String,
    skip_tls: bool,
    tag_ttl_secs: i64,
    max_bytes: i64,
    anonymous_pull: bool,
    is_default: bool,
    created: String,
    updated: String,
}

fn cache_row(r: &Row) -> rusqlite::Result<CacheRow> {
    Ok(CacheRow {
        namespace: r.get(0)?,
        host: r.get(1)?,
        username: r.get(2)?,
        password: r.get(3)?,
        remote_ca: r.get(4)?,
        skip_tls: r.get(5)?,
        tag_ttl_secs: r.get(6)?,
        max_bytes: r.get(7)?,
        anonymous_pull: r.get(8)?,
        is_default: r.get(9)?,
        created: r.get(10)?,
        updated: r.get(11)?,
    })
}

fn build(c: CacheRow, keys: &SecretKeys) -> Result<ProxyCache, StoreError> {
    let password = match c.password.as_deref() {
        None | Some("") => String::new(),
        Some(sealed) => keys.open(sealed, &proxy_cache_secret_context(&c.namespace))?,
    };
    Ok(ProxyCache {
        host: c.host,
        username: c.username,
        password: Secret::new(password),
        remote_ca: c.remote_ca,
        skip_tls_verification: c.skip_tls,
        tag_ttl_secs: from_db_int(c.tag_ttl_secs, &c.namespace, "tag TTL")?,
        max_bytes: from_db_int(c.max_bytes, &c.namespace, "size limit")?,
        anonymous_pull: c.anonymous_pull,
        is_default: c.is_default,
        created_at: parse_ts(&c.created)?,
        updated_at: parse_ts(&c.updated)?,
        namespace: c.namespace,
    })
}

impl SqliteStore {
    /// A cache's password, sealed for storage (`None` when empty).
    fn sealed_cache_password(&self, c: &ProxyCache) -> Option<String> {
        (!c.password.is_empty()).then(|| {
            self.keys.seal(
                c.password.expose(),
                &proxy_cache_secret_context(&c.namespace),
            )
        })
    }
}

/// Seals, with the current key, every proxy cache password sealed with an
/// older one (at open, as [`super::reseal_secrets`] does for poll policies).
pub(super) fn reseal(conn: &Connection, keys: &SecretKeys) -> Result<(), StoreError> {
    let ctx = "sealing proxy cache passwords";
    let rows: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare("SELECT namespace, password FROM proxy_caches WHERE password IS NOT NULL")
            .map_err(db_err(ctx))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err(ctx))?
            .collect::<Result<_, _>>()
            .map_err(db_err(ctx))?
    };
    for (namespace, password) in rows {
        if !keys.needs_reseal(&password) {
            continue;
        }
        let c = proxy_cache_secret_context(&namespace);
        conn.execute(
            "UPDATE proxy_caches SET password=?2 WHERE namespace=?1",
            params![namespace, keys.seal(&keys.open(&password, &c)?, &c)],
        )
        .map_err(db_err(ctx))?;
    }
    Ok(())
}

#[async_trait]
impl ProxyCacheStore for SqliteStore {
    async fn insert_proxy_cache(&self, cache: &ProxyCache) -> Result<(), StoreError> {
        let p = cache.clone();
        let password = self.sealed_cache_password(&p);
        self.with(move |c| {
            let n = c
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO proxy_caches ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
                    ),
                    params![
                        p.namespace,
                        p.host,
                        p.username,
                        password,
                        p.remote_ca,
                        p.skip_tls_verification,
                        to_db_int(p.tag_ttl_secs),
                        to_db_int(p.max_bytes),
                        p.anonymous_pull,
                        p.is_default,
                        ts(&p.created_at),
                        ts(&p.updated_at)
                    ],
                )
                .map_err(db_err("saving a proxy cache"))?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    reason: format!("namespace {} already has a proxy cache", p.namespace),
                });
            }
            Ok(())
        })
        .await
    }

    async fn proxy_cache(&self, namespace: &str) -> Result<Option<ProxyCache>, StoreError> {
        let namespace = namespace.to_string();
        let keys = self.keys.clone();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM proxy_caches WHERE namespace=?1"),
                params![namespace],
                cache_row,
            )
            .optional()
            .map_err(db_err("reading a proxy cache"))?
            .map(|row| build(row, &keys))
            .transpose()
        })
        .await
    }

    async fn proxy_caches(&self) -> Result<Vec<ProxyCache>, StoreError> {
        let keys = self.keys.clone();
        self.with(move |c| {
            let ctx = "listing proxy caches";
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM proxy_caches ORDER BY namespace"
                ))
                .map_err(db_err(ctx))?;
            let rows = stmt
                .query_map([], cache_row)
                .map_err(db_err(ctx))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err(ctx))?;
            rows.into_iter().map(|row| build(row, &keys)).collect()
        })
        .await
    }

    async fn update_proxy_cache(&self, cache: &ProxyCache) -> Result<bool, StoreError> {
        let p = cache.clone();
        let password = self.sealed_cache_password(&p);
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE proxy_caches SET host=?2, username=?3, password=?4, remote_ca=?5, skip_tls_verification=?6, tag_ttl_secs=?7, max_bytes=?8, anonymous_pull=?9, is_default=?10, updated_at=?11 WHERE namespace=?1",
                    params![
                        p.namespace,
                        p.host,
                        p.username,
                        password,
                        p.remote_ca,
                        p.skip_tls_verification,
                        to_db_int(p.tag_ttl_secs),
                        to_db_int(p.max_bytes),
                        p.anonymous_pull,
                        p.is_default,
                        ts(&p.updated_at)
                    ],
                )
                .map_err(db_err("updating a proxy cache"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_proxy_cache(&self, namespace: &str) -> Result<bool, StoreError> {
        let namespace = namespace.to_string();
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM proxy_caches WHERE namespace=?1",
                    params![namespace],
                )
                .map_err(db_err("deleting a proxy cache"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_pulls(&self, pulls: &[CachePull]) -> Result<(), StoreError> {
        if pulls.is_empty() {
            return Ok(());
        }
        let pulls = latest_pulls(pulls);
        self.with(move |c| {
            let ctx = "recording cache pulls";
            let tx = c.transaction().map_err(db_err(ctx))?;
            {
                // Text timestamps are fixed width: text order is time order.
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO cache_pulls (repo, digest, pulled_at)
                         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM repositories WHERE name=?1)
                         ON CONFLICT (repo, digest) DO UPDATE SET pulled_at=excluded.pulled_at
                         WHERE excluded.pulled_at > cache_pulls.pulled_at",
                    )
                    .map_err(db_err(ctx))?;
                for (repo, digest, at) in &pulls {
                    stmt.execute(params![repo, digest, ts(at)])
                        .map_err(db_err(ctx))?;
                }
            }
            tx.commit().map_err(db_err(ctx))
        })
        .await
    }

    async fn pulls(&self, namespace: &str) -> Result<Vec<CachePull>, StoreError> {
        let Some((from, to)) = namespace_range(namespace) else {
            return Ok(Vec::new());
        };
        let namespace = namespace.to_string();
        self.with(move |c| {
            let ctx = "listing cache pulls";
            let mut stmt = c
                .prepare_cached(
                    "SELECT repo, digest, pulled_at FROM cache_pulls
                     WHERE repo = ?1 OR (repo >= ?2 AND repo < ?3)
                     ORDER BY pulled_at, repo, digest",
                )
                .map_err(db_err(ctx))?;
            let rows = stmt
                .query_map(params![namespace, from, to], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db_err(ctx))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err(ctx))?;
            rows.into_iter()
                .map(|(repo, digest, at)| {
                    Ok(CachePull {
                        repository: parse_name(&repo)?,
                        digest: parse_digest(&digest)?,
                        pulled_at: parse_ts(&at)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn forget_pull(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM cache_pulls WHERE repo=?1 AND digest=?2",
                params![repo, digest],
            )
            .map_err(db_err("forgetting a cache pull"))?;
            Ok(())
        })
        .await
    }
}
