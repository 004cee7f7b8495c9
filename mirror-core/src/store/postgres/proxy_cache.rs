//! [`ProxyCacheStore`] on PostgreSQL: the `proxy_caches` table (step 8),
//! the password sealed in `bytea` as poll policies' secrets are; the
//! `cache_pulls` table (step 9).

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{PgStore, db_err, execute, get, query};
use crate::digest::Digest;
use crate::proxy_cache::ProxyCache;
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::proxy_cache::{
    from_db_int, latest_pulls, namespace_range, proxy_cache_secret_context, to_db_int,
};
use crate::store::sealed::SecretKeys;
use crate::store::sqlite::{parse_digest, parse_name};
use crate::store::{CachePull, ProxyCacheStore, StoreError};

/// Step 8: proxy caches. `password` is sealed, NULL when there is none.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE proxy_caches (
    namespace text COLLATE "C" PRIMARY KEY,
    host text NOT NULL,
    username text NOT NULL,
    password bytea,
    remote_ca text NOT NULL,
    skip_tls_verification boolean NOT NULL,
    tag_ttl_secs bigint NOT NULL,
    max_bytes bigint NOT NULL,
    anonymous_pull boolean NOT NULL,
    is_default boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
"#;

/// Step 9: when each cached manifest was last pulled. A repository's rows
/// go with it (`ON DELETE CASCADE`), as its tags and tag history do.
pub(super) const PULLS_SCHEMA: &str = r#"
CREATE TABLE cache_pulls (
    repo text COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest text COLLATE "C" NOT NULL,
    pulled_at timestamptz NOT NULL,
    PRIMARY KEY (repo, digest)
);
"#;

const COLUMNS: &str = "namespace, host, username, password, remote_ca, skip_tls_verification, tag_ttl_secs, max_bytes, anonymous_pull, is_default, created_at, updated_at";

fn cache_row(r: &Row, keys: &SecretKeys) -> Result<ProxyCache, StoreError> {
    let namespace: String = get(r, "namespace")?;
    let sealed: Option<&[u8]> = get(r, "password")?;
    let password = match sealed {
        None => String::new(),
        Some(sealed) => keys.open_bytes(sealed, &proxy_cache_secret_context(&namespace))?,
    };
    Ok(ProxyCache {
        host: get(r, "host")?,
        username: get(r, "username")?,
        password: Secret::new(password),
        remote_ca: get(r, "remote_ca")?,
        skip_tls_verification: get(r, "skip_tls_verification")?,
        tag_ttl_secs: from_db_int(get(r, "tag_ttl_secs")?, &namespace, "tag TTL")?,
        max_bytes: from_db_int(get(r, "max_bytes")?, &namespace, "size limit")?,
        anonymous_pull: get(r, "anonymous_pull")?,
        is_default: get(r, "is_default")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        namespace,
    })
}

impl PgStore {
    /// A cache's password, sealed for storage (`None` when empty).
    fn sealed_cache_password(&self, c: &ProxyCache) -> Option<Vec<u8>> {
        (!c.password.is_empty()).then(|| {
            self.keys.seal_bytes(
                c.password.expose(),
                &proxy_cache_secret_context(&c.namespace),
            )
        })
    }

    /// Seals again, with the current key, proxy cache passwords sealed
    /// with an older one (a row changed meanwhile is left alone).
    pub(super) async fn reseal_proxy_cache_secrets(&self) -> Result<(), StoreError> {
        let ctx = "sealing proxy cache passwords with the current key";
        let rows = self
            .rows(
                ctx,
                "SELECT namespace, password FROM proxy_caches WHERE password IS NOT NULL",
                &[],
                |r| {
                    Ok((
                        get::<String>(r, "namespace")?,
                        get::<Vec<u8>>(r, "password")?,
                    ))
                },
            )
            .await?;
        for (namespace, password) in rows {
            if !self.keys.needs_reseal_bytes(&password) {
                continue;
            }
            let context = proxy_cache_secret_context(&namespace);
            let plain = self.keys.open_bytes(&password, &context)?;
            let new = self.keys.seal_bytes(&plain, &context);
            self.execute(
                ctx,
                "UPDATE proxy_caches SET password=$2 WHERE namespace=$1 AND password=$3",
                &[&namespace, &new, &password],
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ProxyCacheStore for PgStore {
    async fn insert_proxy_cache(&self, c: &ProxyCache) -> Result<(), StoreError> {
        let password = self.sealed_cache_password(c);
        let n = self
            .execute(
                "saving a proxy cache",
                &format!(
                    "INSERT INTO proxy_caches ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
                     ON CONFLICT (namespace) DO NOTHING"
                ),
                &[
                    &c.namespace,
                    &c.host,
                    &c.username,
                    &password,
                    &c.remote_ca,
                    &c.skip_tls_verification,
                    &to_db_int(c.tag_ttl_secs),
                    &to_db_int(c.max_bytes),
                    &c.anonymous_pull,
                    &c.is_default,
                    &c.created_at,
                    &c.updated_at,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict {
                reason: format!("namespace {} already has a proxy cache", c.namespace),
            });
        }
        Ok(())
    }

    async fn proxy_cache(&self, namespace: &str) -> Result<Option<ProxyCache>, StoreError> {
        self.row(
            "reading a proxy cache",
            &format!("SELECT {COLUMNS} FROM proxy_caches WHERE namespace=$1"),
            &[&namespace],
            |r| cache_row(r, &self.keys),
        )
        .await
    }

    async fn proxy_caches(&self) -> Result<Vec<ProxyCache>, StoreError> {
        self.rows(
            "listing proxy caches",
            &format!("SELECT {COLUMNS} FROM proxy_caches ORDER BY namespace"),
            &[],
            |r| cache_row(r, &self.keys),
        )
        .await
    }

    async fn update_proxy_cache(&self, c: &ProxyCache) -> Result<bool, StoreError> {
        let password = self.sealed_cache_password(c);
        let n = self
            .execute(
                "updating a proxy cache",
                "UPDATE proxy_caches SET host=$2, username=$3, password=$4, remote_ca=$5,
                     skip_tls_verification=$6, tag_ttl_secs=$7, max_bytes=$8,
                     anonymous_pull=$9, is_default=$10, updated_at=$11
                 WHERE namespace=$1",
                &[
                    &c.namespace,
                    &c.host,
                    &c.username,
                    &password,
                    &c.remote_ca,
                    &c.skip_tls_verification,
                    &to_db_int(c.tag_ttl_secs),
                    &to_db_int(c.max_bytes),
                    &c.anonymous_pull,
                    &c.is_default,
                    &c.updated_at,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_proxy_cache(&self, namespace: &str) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "deleting a proxy cache",
                "DELETE FROM proxy_caches WHERE namespace=$1",
                &[&namespace],
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_pulls(&self, pulls: &[CachePull]) -> Result<(), StoreError> {
        if pulls.is_empty() {
            return Ok(());
        }
        let ctx = "recording cache pulls";
        let pulls = latest_pulls(pulls);
        let names: Vec<&str> = pulls
            .iter()
            .map(|(repo, _, _)| repo.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        // The repositories that exist, locked against deletion until the
        // insert (which their foreign key would otherwise fail) commits.
        let existing: BTreeSet<String> = query(
            &tx,
            ctx,
            "SELECT name FROM repositories WHERE name = ANY($1::text[]) ORDER BY name FOR KEY SHARE",
            &[&names],
        )
        .await?
        .iter()
        .map(|r| get(r, "name"))
        .collect::<Result<_, _>>()?;
        let mut repos: Vec<&str> = Vec::with_capacity(pulls.len());
        let mut digests: Vec<&str> = Vec::with_capacity(pulls.len());
        let mut times: Vec<DateTime<Utc>> = Vec::with_capacity(pulls.len());
        for (repo, digest, at) in &pulls {
            if existing.contains(repo) {
                repos.push(repo);
                digests.push(digest);
                times.push(*at);
            }
        }
        if !repos.is_empty() {
            // One row per repository and digest (`latest_pulls`), in key
            // order: two batches at once wait for each other's rows, never
            // deadlock on them.
            execute(
                &tx,
                ctx,
                "INSERT INTO cache_pulls (repo, digest, pulled_at)
                 SELECT repo, digest, at
                 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS p (repo, digest, at)
                 ORDER BY repo, digest
                 ON CONFLICT (repo, digest) DO UPDATE SET pulled_at = EXCLUDED.pulled_at
                 WHERE EXCLUDED.pulled_at > cache_pulls.pulled_at",
                &[&repos, &digests, &times],
            )
            .await?;
        }
        tx.commit().await.map_err(db_err(ctx))
    }

    async fn pulls(&self, namespace: &str) -> Result<Vec<CachePull>, StoreError> {
        let Some((from, to)) = namespace_range(namespace) else {
            return Ok(Vec::new());
        };
        self.rows(
            "listing cache pulls",
            "SELECT repo, digest, pulled_at FROM cache_pulls
             WHERE repo = $1 OR (repo >= $2 AND repo < $3)
             ORDER BY pulled_at, repo, digest",
            &[&namespace, &from, &to],
            |r| {
                Ok(CachePull {
                    repository: parse_name(get(r, "repo")?)?,
                    digest: parse_digest(get(r, "digest")?)?,
                    pulled_at: get(r, "pulled_at")?,
                })
            },
        )
        .await
    }

    async fn forget_pull(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError> {
        self.execute(
            "forgetting a cache pull",
            "DELETE FROM cache_pulls WHERE repo=$1 AND digest=$2",
            &[&repo.as_str(), &digest.to_string()],
        )
        .await
        .map(drop)
    }
}
