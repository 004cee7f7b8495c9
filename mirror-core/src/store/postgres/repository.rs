//! [`RepositoryStore`] on PostgreSQL: a manifest's references are arrays
//! in its row; links and tags go with their repository (`ON DELETE
//! CASCADE`); a publish locks the repository row (`FOR SHARE`) so nothing
//! is linked to a repository being deleted.
//!
//! Garbage collection's holds and claims are serialized by one advisory
//! lock (`GC_LOCK`), taken first in each transaction: shared by holds,
//! publishes and links (which never wait for each other), exclusive by a
//! collector's claims and removals. Under `READ COMMITTED` a statement
//! after the lock sees every transaction that released it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db_err, execute, get, query};
use crate::digest::Digest;
use crate::reference::RepositoryName;
use crate::store::sqlite::{parse_digest, parse_name, tag_source, visibility};
use crate::store::{
    CLAIM_TTL, ManifestRecord, NewRepository, Repository, RepositoryContent, RepositoryStore,
    StoreError, TAG_HISTORY_LIMIT, TagHistoryEntry, TagRecord,
};

/// The advisory lock of garbage collection (`gc` in ASCII, key 0).
const GC_LOCK: i32 = 0x6763;

/// Takes [`GC_LOCK`], shared or exclusive, until the transaction ends.
async fn gc_lock(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &str,
    exclusive: bool,
) -> Result<(), StoreError> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1, 0)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1, 0)"
    };
    execute(tx, ctx, sql, &[&GC_LOCK]).await.map(drop)
}

/// Holds `digests` at `at` (sorted and once each, so two holds never
/// wait for each other's rows in opposite orders).
async fn hold(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &str,
    digests: &[String],
    at: &DateTime<Utc>,
) -> Result<(), StoreError> {
    execute(
        tx,
        ctx,
        "INSERT INTO gc_holds (digest, held_at)
         SELECT d, $2 FROM (SELECT DISTINCT unnest($1::text[]) AS d) u ORDER BY d
         ON CONFLICT (digest) DO UPDATE SET held_at = GREATEST(gc_holds.held_at, EXCLUDED.held_at)",
        &[&digests, at],
    )
    .await
    .map(drop)
}

/// Records, in the caller's transaction, the current value of `repo`'s
/// tags named `names` as history ended at `at` by `replaced_by` (a delete:
/// `None`), unless it already is `replaced_by`, locking those tag rows
/// (`FOR UPDATE`) so a concurrent move waits and records its own; then
/// keeps the newest [`TAG_HISTORY_LIMIT`] of each. Call before the write.
/// (Two publishes creating one new tag at once find no row to lock: the
/// second's upsert replaces the first's value without a history row.)
async fn record_tag_history(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &str,
    repo: &str,
    names: &[String],
    replaced_by: Option<&str>,
    at: &DateTime<Utc>,
) -> Result<(), StoreError> {
    let moved = query(
        tx,
        ctx,
        "INSERT INTO tag_history
             (repo, tag, digest, media_type, size, mirrored_by, tagged_at, replaced_at, replaced_by)
         SELECT repo, name, digest, media_type, size, mirrored_by, updated_at, $3, $4
         FROM (SELECT * FROM tags WHERE repo=$1 AND name = ANY($2::text[])
               AND digest IS DISTINCT FROM $4::text ORDER BY name FOR UPDATE) t
         RETURNING tag",
        &[&repo, &names, at, &replaced_by],
    )
    .await?;
    if moved.is_empty() {
        return Ok(());
    }
    let moved: Vec<String> = moved
        .iter()
        .map(|r| get(r, "tag"))
        .collect::<Result<_, _>>()?;
    execute(
        tx,
        ctx,
        "DELETE FROM tag_history h USING (
             SELECT id, row_number() OVER (PARTITION BY tag ORDER BY id DESC) AS n
             FROM tag_history WHERE repo=$1 AND tag = ANY($2::text[])
         ) r WHERE h.id = r.id AND r.n > $3",
        &[&repo, &moved, &(TAG_HISTORY_LIMIT as i64)],
    )
    .await
    .map(drop)
}

fn tag_history_row(r: &tokio_postgres::Row) -> Result<TagHistoryEntry, StoreError> {
    Ok(TagHistoryEntry {
        digest: parse_digest(get(r, "digest")?)?,
        media_type: get(r, "media_type")?,
        size: get::<i64>(r, "size")?.max(0) as u64,
        tagged_at: get(r, "tagged_at")?,
        replaced_at: get(r, "replaced_at")?,
        replaced_by: get::<Option<&str>>(r, "replaced_by")?
            .map(parse_digest)
            .transpose()?,
        mirrored_by: get(r, "mirrored_by")?,
        available: get(r, "available")?,
    })
}

const REPOSITORY_COLUMNS: &str = "id, name, visibility, short_description, created_at";
const TAG_COLUMNS: &str = "name, digest, media_type, size, mirrored_by, mirrored_from, mirrored_tag, updated_at, mirrored_digest";
const MANIFEST_COLUMNS: &str = "digest, media_type, size, blobs, children, subject, artifact_type";

fn repository_row(r: &tokio_postgres::Row) -> Result<Repository, StoreError> {
    Ok(Repository {
        id: get(r, "id")?,
        name: parse_name(get(r, "name")?)?,
        visibility: visibility(get(r, "visibility")?),
        short_description: get(r, "short_description")?,
        created_at: get(r, "created_at")?,
    })
}

fn tag_row(r: &tokio_postgres::Row) -> Result<TagRecord, StoreError> {
    Ok(TagRecord {
        name: get(r, "name")?,
        digest: parse_digest(get(r, "digest")?)?,
        media_type: get(r, "media_type")?,
        size: get::<i64>(r, "size")? as u64,
        mirrored: tag_source(
            get(r, "mirrored_by")?,
            get(r, "mirrored_from")?,
            get(r, "mirrored_tag")?,
            get(r, "mirrored_digest")?,
        )?,
        updated_at: get(r, "updated_at")?,
    })
}

fn digests(list: Vec<String>) -> Result<Vec<Digest>, StoreError> {
    list.iter().map(|d| parse_digest(d)).collect()
}

fn manifest_row(r: &tokio_postgres::Row) -> Result<ManifestRecord, StoreError> {
    Ok(ManifestRecord {
        digest: parse_digest(get(r, "digest")?)?,
        media_type: get(r, "media_type")?,
        size: get::<i64>(r, "size")? as u64,
        blobs: digests(get(r, "blobs")?)?,
        children: digests(get(r, "children")?)?,
        subject: get::<Option<&str>>(r, "subject")?
            .map(parse_digest)
            .transpose()?,
        artifact_type: get(r, "artifact_type")?,
    })
}

fn strings(list: &[Digest]) -> Vec<String> {
    list.iter().map(Digest::to_string).collect()
}

/// `NotFound` unless the repository exists; holds it (`FOR SHARE`) until
/// the transaction ends, so it is not deleted meanwhile.
async fn require_repository(
    tx: &deadpool_postgres::Transaction<'_>,
    repo: &str,
    ctx: &str,
) -> Result<(), StoreError> {
    let found = query(
        tx,
        ctx,
        "SELECT 1 FROM repositories WHERE name=$1 FOR SHARE",
        &[&repo],
    )
    .await?;
    if found.is_empty() {
        return Err(StoreError::NotFound {
            what: format!("repository {repo}"),
        });
    }
    Ok(())
}

impl PgStore {
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
        let ctx = "publishing manifests and tags";
        let repo = repo.as_str();
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        gc_lock(&tx, ctx, false).await?;
        require_repository(&tx, repo, ctx).await?;
        let linked: Vec<String> = manifests
            .iter()
            .flat_map(|m| {
                std::iter::once(&m.digest)
                    .chain(&m.blobs)
                    .chain(&m.children)
            })
            .map(Digest::to_string)
            .collect();
        hold(&tx, ctx, &linked, &crate::job::now()).await?;
        for m in manifests {
            let blobs = strings(&m.blobs);
            execute(
                &tx,
                ctx,
                &format!(
                    "INSERT INTO manifests (repo, {MANIFEST_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
                     ON CONFLICT (repo, digest) DO UPDATE SET media_type=EXCLUDED.media_type,
                         size=EXCLUDED.size, blobs=EXCLUDED.blobs, children=EXCLUDED.children,
                         subject=EXCLUDED.subject, artifact_type=EXCLUDED.artifact_type"
                ),
                &[
                    &repo,
                    &m.digest.to_string(),
                    &m.media_type,
                    &(m.size as i64),
                    &blobs,
                    &strings(&m.children),
                    &m.subject.as_ref().map(Digest::to_string),
                    &m.artifact_type,
                ],
            )
            .await?;
            if link_blobs {
                execute(
                    &tx,
                    ctx,
                    "INSERT INTO repo_blobs (repo, digest) SELECT $1, unnest($2::text[])
                     ON CONFLICT DO NOTHING",
                    &[&repo, &blobs],
                )
                .await?;
            }
        }
        for t in tags {
            let (name, digest) = (std::slice::from_ref(&t.name), t.digest.to_string());
            record_tag_history(&tx, ctx, repo, name, Some(&digest), &t.updated_at).await?;
            let source = t.mirrored.as_ref();
            execute(
                &tx,
                ctx,
                &format!(
                    "INSERT INTO tags (repo, {TAG_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
                     ON CONFLICT (repo, name) DO UPDATE SET digest=EXCLUDED.digest,
                         media_type=EXCLUDED.media_type, size=EXCLUDED.size,
                         mirrored_by=EXCLUDED.mirrored_by, mirrored_from=EXCLUDED.mirrored_from,
                         mirrored_tag=EXCLUDED.mirrored_tag, updated_at=EXCLUDED.updated_at,
                         mirrored_digest=EXCLUDED.mirrored_digest"
                ),
                &[
                    &repo,
                    &t.name,
                    &t.digest.to_string(),
                    &t.media_type,
                    &(t.size as i64),
                    &source.map(|s| &s.policy_id),
                    &source.map(|s| &s.remote_repository),
                    &source.map(|s| &s.remote_tag),
                    &t.updated_at,
                    &source
                        .and_then(|s| s.remote_digest.as_ref())
                        .map(|d| d.to_string()),
                ],
            )
            .await?;
        }
        tx.commit().await.map_err(db_err(ctx))
    }
}

#[async_trait]
impl RepositoryStore for PgStore {
    async fn create_repository(&self, repo: &NewRepository) -> Result<Repository, StoreError> {
        let record = Repository::created(repo);
        let n = self
            .execute(
                "creating a repository",
                &format!(
                    "INSERT INTO repositories ({REPOSITORY_COLUMNS}) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING"
                ),
                &[
                    &record.id,
                    &record.name.as_str(),
                    &record.visibility.as_str(),
                    &record.short_description,
                    &record.created_at,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict {
                reason: format!("repository {} already exists", record.name),
            });
        }
        Ok(record)
    }

    async fn repository(&self, name: &RepositoryName) -> Result<Option<Repository>, StoreError> {
        self.row(
            "reading a repository",
            &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name=$1"),
            &[&name.as_str()],
            repository_row,
        )
        .await
    }

    async fn repositories(&self) -> Result<Vec<Repository>, StoreError> {
        self.rows(
            "listing repositories",
            &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories ORDER BY name"),
            &[],
            repository_row,
        )
        .await
    }

    async fn delete_repository(&self, name: &RepositoryName) -> Result<bool, StoreError> {
        // Manifests, links and tags go with it (ON DELETE CASCADE).
        let n = self
            .execute(
                "deleting a repository",
                "DELETE FROM repositories WHERE name=$1",
                &[&name.as_str()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn tags(&self, repo: &RepositoryName) -> Result<Vec<TagRecord>, StoreError> {
        self.rows(
            "listing tags",
            &format!("SELECT {TAG_COLUMNS} FROM tags WHERE repo=$1 ORDER BY name"),
            &[&repo.as_str()],
            tag_row,
        )
        .await
    }

    async fn tag_count(&self, repo: &RepositoryName) -> Result<u64, StoreError> {
        let n = self
            .row(
                "counting tags",
                "SELECT COUNT(*) AS n FROM tags WHERE repo=$1",
                &[&repo.as_str()],
                |r| get::<i64>(r, "n"),
            )
            .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn tag(&self, repo: &RepositoryName, tag: &str) -> Result<Option<TagRecord>, StoreError> {
        self.row(
            "reading a tag",
            &format!("SELECT {TAG_COLUMNS} FROM tags WHERE repo=$1 AND name=$2"),
            &[&repo.as_str(), &tag],
            tag_row,
        )
        .await
    }

    async fn manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, StoreError> {
        self.row(
            "reading a manifest",
            &format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repo=$1 AND digest=$2"),
            &[&repo.as_str(), &digest.to_string()],
            manifest_row,
        )
        .await
    }

    async fn has_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool, StoreError> {
        let linked = self
            .row(
                "looking up a blob link",
                "SELECT EXISTS (SELECT 1 FROM repo_blobs WHERE repo=$1 AND digest=$2)
                     OR EXISTS (SELECT 1 FROM manifests WHERE repo=$1 AND digest=$2) AS linked",
                &[&repo.as_str(), &digest.to_string()],
                |r| get::<bool>(r, "linked"),
            )
            .await?;
        Ok(linked == Some(true))
    }

    async fn holders(&self, digest: &Digest) -> Result<Vec<RepositoryName>, StoreError> {
        self.rows(
            "finding the holders of a blob",
            "SELECT repo FROM repo_blobs WHERE digest=$1
             UNION SELECT repo FROM manifests WHERE digest=$1 ORDER BY 1",
            &[&digest.to_string()],
            |r| parse_name(get(r, "repo")?),
        )
        .await
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<ManifestRecord>, StoreError> {
        self.rows(
            "listing referrers",
            &format!(
                "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repo=$1 AND subject=$2 ORDER BY digest"
            ),
            &[&repo.as_str(), &digest.to_string()],
            manifest_row,
        )
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
        let ctx = "deleting a tag";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        let (repo, tag) = (repo.as_str(), tag.to_string());
        let now = crate::job::now();
        record_tag_history(&tx, ctx, repo, std::slice::from_ref(&tag), None, &now).await?;
        let n = execute(
            &tx,
            ctx,
            "DELETE FROM tags WHERE repo=$1 AND name=$2",
            &[&repo, &tag],
        )
        .await?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(n > 0)
    }

    async fn tag_history(
        &self,
        repo: &RepositoryName,
        tag: &str,
    ) -> Result<Vec<TagHistoryEntry>, StoreError> {
        self.rows(
            "reading a tag's history",
            "SELECT h.digest, h.media_type, h.size, h.tagged_at, h.replaced_at, h.replaced_by,
                    h.mirrored_by,
                    EXISTS (SELECT 1 FROM manifests m WHERE m.repo=h.repo AND m.digest=h.digest)
                        AS available
             FROM tag_history h WHERE h.repo=$1 AND h.tag=$2 ORDER BY h.id DESC",
            &[&repo.as_str(), &tag],
            tag_history_row,
        )
        .await
    }

    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<(), StoreError> {
        let ctx = "linking a blob";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        gc_lock(&tx, ctx, false).await?;
        require_repository(&tx, repo.as_str(), ctx).await?;
        execute(
            &tx,
            ctx,
            "INSERT INTO repo_blobs (repo, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&repo.as_str(), &digest.to_string()],
        )
        .await?;
        hold(&tx, ctx, &[digest.to_string()], &crate::job::now()).await?;
        tx.commit().await.map_err(db_err(ctx))
    }

    async fn unlink_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "unlinking a blob",
                "DELETE FROM repo_blobs WHERE repo=$1 AND digest=$2",
                &[&repo.as_str(), &digest.to_string()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn content(&self, repo: &RepositoryName) -> Result<RepositoryContent, StoreError> {
        let ctx = "reading a repository's content";
        let mut client = self.client(ctx).await?;
        // One snapshot for the three reads.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_err(ctx))?;
        let repo = repo.as_str();
        let tags = query(
            &tx,
            ctx,
            "SELECT name, digest FROM tags WHERE repo=$1",
            &[&repo],
        )
        .await?
        .iter()
        .map(|r| Ok((get(r, "name")?, parse_digest(get(r, "digest")?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        let manifests = query(
            &tx,
            ctx,
            &format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repo=$1"),
            &[&repo],
        )
        .await?
        .iter()
        .map(manifest_row)
        .collect::<Result<Vec<_>, _>>()?;
        let blobs = query(
            &tx,
            ctx,
            "SELECT digest FROM repo_blobs WHERE repo=$1",
            &[&repo],
        )
        .await?
        .iter()
        .map(|r| parse_digest(get(r, "digest")?))
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(RepositoryContent {
            tags,
            manifests,
            blobs,
        })
    }

    async fn hold_digests(
        &self,
        digests: &[Digest],
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError> {
        let ctx = "holding digests for garbage collection";
        let claimed_since = at - chrono::Duration::from_std(CLAIM_TTL).expect("small");
        let list = strings(digests);
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        gc_lock(&tx, ctx, false).await?;
        // No wait for the WAL flush: a hold guards a writer of this moment,
        // which a server crash ends too.
        execute(&tx, ctx, "SET LOCAL synchronous_commit = off", &[]).await?;
        hold(&tx, ctx, &list, &at).await?;
        let claimed = query(
            &tx,
            ctx,
            "SELECT digest FROM gc_claims WHERE digest = ANY($1) AND claimed_at >= $2",
            &[&list, &claimed_since],
        )
        .await?
        .iter()
        .map(|r| parse_digest(get(r, "digest")?))
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(claimed)
    }

    async fn held_since(&self, since: DateTime<Utc>) -> Result<Vec<Digest>, StoreError> {
        self.rows(
            "listing held digests",
            "SELECT digest FROM gc_holds WHERE held_at >= $1",
            &[&since],
            |r| parse_digest(get(r, "digest")?),
        )
        .await
    }

    async fn prune_holds(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.execute(
            "pruning garbage collection holds",
            "DELETE FROM gc_holds WHERE held_at < $1",
            &[&before],
        )
        .await
    }

    async fn remove_unreferenced(
        &self,
        repo: &RepositoryName,
        manifests: &[Digest],
        blobs: &[Digest],
        held_since: DateTime<Utc>,
    ) -> Result<(Vec<Digest>, Vec<Digest>), StoreError> {
        let ctx = "removing unreferenced manifests and blob links";
        let repo = repo.as_str();
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        gc_lock(&tx, ctx, true).await?;
        let mut gone_manifests = Vec::new();
        for d in manifests {
            let n = execute(
                &tx,
                ctx,
                "DELETE FROM manifests m WHERE m.repo=$1 AND m.digest=$2
                   AND NOT EXISTS (SELECT 1 FROM tags WHERE repo=$1 AND digest=$2)
                   AND NOT EXISTS (SELECT 1 FROM manifests p WHERE p.repo=$1 AND p.children @> ARRAY[$2::text])
                   AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo=$1 AND t.digest=m.subject)
                   AND NOT EXISTS (SELECT 1 FROM gc_holds WHERE digest=$2 AND held_at >= $3)",
                &[&repo, &d.to_string(), &held_since],
            )
            .await?;
            if n > 0 {
                gone_manifests.push(d.clone());
            }
        }
        let mut gone_blobs = Vec::new();
        for d in blobs {
            let n = execute(
                &tx,
                ctx,
                "DELETE FROM repo_blobs WHERE repo=$1 AND digest=$2
                   AND NOT EXISTS (SELECT 1 FROM manifests p WHERE p.repo=$1 AND p.blobs @> ARRAY[$2::text])
                   AND NOT EXISTS (SELECT 1 FROM gc_holds WHERE digest=$2 AND held_at >= $3)",
                &[&repo, &d.to_string(), &held_since],
            )
            .await?;
            if n > 0 {
                gone_blobs.push(d.clone());
            }
        }
        tx.commit().await.map_err(db_err(ctx))?;
        Ok((gone_manifests, gone_blobs))
    }

    async fn claim_unreferenced(
        &self,
        digests: &[Digest],
        held_since: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Digest>, StoreError> {
        let ctx = "claiming unreferenced blobs";
        // Another collector's live claim is its own: taken over only once
        // stale.
        let stale = at - chrono::Duration::from_std(CLAIM_TTL).expect("small");
        let list = strings(digests);
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        gc_lock(&tx, ctx, true).await?;
        let claimed = query(
            &tx,
            ctx,
            "INSERT INTO gc_claims (digest, claimed_at)
             SELECT d, $2 FROM (SELECT DISTINCT unnest($1::text[]) AS d) u
             WHERE NOT EXISTS (SELECT 1 FROM repo_blobs r WHERE r.digest = u.d)
               AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = u.d)
               AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.blobs @> ARRAY[u.d])
               AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.children @> ARRAY[u.d])
               AND NOT EXISTS (SELECT 1 FROM gc_holds h WHERE h.digest = u.d AND h.held_at >= $3)
             ORDER BY d
             ON CONFLICT (digest) DO UPDATE SET claimed_at = EXCLUDED.claimed_at
               WHERE gc_claims.claimed_at < $4
             RETURNING digest",
            &[&list, &at, &held_since, &stale],
        )
        .await?
        .iter()
        .map(|r| parse_digest(get(r, "digest")?))
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(claimed)
    }

    async fn release_claims(&self, digests: &[Digest]) -> Result<(), StoreError> {
        self.execute(
            "releasing garbage collection claims",
            "DELETE FROM gc_claims WHERE digest = ANY($1)",
            &[&strings(digests)],
        )
        .await
        .map(drop)
    }

    async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let ctx = "deleting a manifest";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        let (repo, digest) = (repo.as_str(), digest.to_string());
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&repo, &digest];
        let n = execute(
            &tx,
            ctx,
            "DELETE FROM manifests WHERE repo=$1 AND digest=$2",
            &args,
        )
        .await?;
        let tags = query(
            &tx,
            ctx,
            "SELECT name FROM tags WHERE repo=$1 AND digest=$2 ORDER BY name FOR UPDATE",
            &args,
        )
        .await?;
        let tags: Vec<String> = tags
            .iter()
            .map(|r| get(r, "name"))
            .collect::<Result<_, _>>()?;
        let now = crate::job::now();
        record_tag_history(&tx, ctx, repo, &tags, None, &now).await?;
        execute(
            &tx,
            ctx,
            "DELETE FROM tags WHERE repo=$1 AND digest=$2",
            &args,
        )
        .await?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(n > 0)
    }
}
