//! [`PolicyStore`] on PostgreSQL: policies with their remote secrets sealed
//! in `bytea` ([`SecretKeys::seal_bytes`]), statuses and baselines.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, db_err, execute, get};
use crate::digest::Digest;
use crate::policy::{MirroringStatus, PollMirroringPolicy, RemoteEndpoint};
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::sealed::SecretKeys;
use crate::store::sqlite::{parse_digest, parse_name, secret_context};
use crate::store::{PolicyStore, StoreError};

/// What an update replaces, in the order of [`PgStore::changeable`].
const CHANGEABLE_COLUMNS: &str = "remote_host, remote_repository, username, password, auth_token, remote_ca, skip_tls_verification, enabled, owner, rules, delete_removed, content, max_bytes_per_sec";

/// Every column, in the order of [`PgStore::insert_policy`]'s values.
const POLICY_COLUMNS: &str = "id, local_repository, initial_evaluation, last_mirrored_at, status_code, status_detail, status_timestamp, created_at, remote_host, remote_repository, username, password, auth_token, remote_ca, skip_tls_verification, enabled, owner, rules, delete_removed, content, max_bytes_per_sec";

/// The fields a policy's sealed secrets are kept in, with the field name
/// each is sealed for.
const SECRET_FIELDS: [(&str, &str); 2] = [("password", "password"), ("auth_token", "authToken")];

fn policy_row(r: &Row, keys: &SecretKeys) -> Result<PollMirroringPolicy, StoreError> {
    let id: String = get(r, "id")?;
    let [password, auth_token] = SECRET_FIELDS.map(|(column, field)| {
        let sealed: &[u8] = get(r, column)?;
        keys.open_bytes(sealed, &secret_context(&id, field))
            .map(Secret::new)
    });
    Ok(PollMirroringPolicy {
        local_repository: parse_name(get(r, "local_repository")?)?,
        remote: RemoteEndpoint {
            host: get(r, "remote_host")?,
            repository: parse_name(get(r, "remote_repository")?)?,
            username: get(r, "username")?,
            password: password?,
            auth_token: auth_token?,
            remote_ca: get(r, "remote_ca")?,
            skip_tls_verification: get(r, "skip_tls_verification")?,
        },
        enabled: get(r, "enabled")?,
        initial_evaluation: get(r, "initial_evaluation")?,
        last_mirrored_at: get(r, "last_mirrored_at")?,
        last_status: MirroringStatus {
            code: get(r, "status_code")?,
            detail: get(r, "status_detail")?,
            timestamp: get(r, "status_timestamp")?,
        },
        created_at: get(r, "created_at")?,
        owner: get(r, "owner")?,
        rules: super::super::rules_from_text(get(r, "rules")?)?,
        delete_removed: super::super::deletion_from_text(get(r, "delete_removed")?)?,
        content: super::super::selection_from_text(get(r, "content")?)?,
        max_bytes_per_sec: u64::try_from(get::<i64>(r, "max_bytes_per_sec")?).unwrap_or(0),
        id,
    })
}

impl PgStore {
    /// The values of [`CHANGEABLE_COLUMNS`] for `p`, its password and
    /// token sealed.
    fn changeable(p: &PollMirroringPolicy, keys: &SecretKeys) -> Vec<Box<dyn ToSql + Sync + Send>> {
        let seal = |secret: &Secret, (_, field): (&str, &str)| {
            keys.seal_bytes(secret.expose(), &secret_context(&p.id, field))
        };
        vec![
            Box::new(p.remote.host.clone()),
            Box::new(p.remote.repository.to_string()),
            Box::new(p.remote.username.clone()),
            Box::new(seal(&p.remote.password, SECRET_FIELDS[0])),
            Box::new(seal(&p.remote.auth_token, SECRET_FIELDS[1])),
            Box::new(p.remote.remote_ca.clone()),
            Box::new(p.remote.skip_tls_verification),
            Box::new(p.enabled),
            Box::new(p.owner.clone()),
            Box::new(super::super::rules_to_text(&p.rules)),
            Box::new(super::super::deletion_to_text(&p.delete_removed)),
            Box::new(super::super::selection_to_text(&p.content)),
            Box::new(i64::try_from(p.max_bytes_per_sec).unwrap_or(i64::MAX)),
        ]
    }

    /// Seals again, with the current key, every policy secret sealed with
    /// an older one. Each row is replaced only if it still holds what was
    /// read, so a policy saved meanwhile (by another replica) is left alone.
    pub(super) async fn reseal_secrets(&self) -> Result<(), StoreError> {
        let ctx = "sealing policy secrets with the current key";
        let rows = self
            .rows(
                ctx,
                "SELECT id, password, auth_token FROM policies",
                &[],
                |r| {
                    let stored: [Vec<u8>; 2] = [get(r, "password")?, get(r, "auth_token")?];
                    Ok((get::<String>(r, "id")?, stored))
                },
            )
            .await?;
        for (id, [password, token]) in rows {
            let (password, token) = (password.as_slice(), token.as_slice());
            if !self.keys.needs_reseal_bytes(password) && !self.keys.needs_reseal_bytes(token) {
                continue;
            }
            let reseal = |sealed: &[u8], (_, field): (&str, &str)| -> Result<Vec<u8>, StoreError> {
                let context = secret_context(&id, field);
                let plain = self.keys.open_bytes(sealed, &context)?;
                Ok(self.keys.seal_bytes(&plain, &context))
            };
            let resealed = [
                reseal(password, SECRET_FIELDS[0])?,
                reseal(token, SECRET_FIELDS[1])?,
            ];
            self.execute(
                ctx,
                "UPDATE policies SET password=$2, auth_token=$3
                 WHERE id=$1 AND password=$4 AND auth_token=$5",
                &[&id, &resealed[0], &resealed[1], &password, &token],
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn insert_policy(&self, p: &PollMirroringPolicy) -> Result<(), StoreError> {
        let fixed: [&(dyn ToSql + Sync); 8] = [
            &p.id,
            &p.local_repository.as_str(),
            &p.initial_evaluation,
            &p.last_mirrored_at,
            &p.last_status.code,
            &p.last_status.detail,
            &p.last_status.timestamp,
            &p.created_at,
        ];
        let changeable = PgStore::changeable(p, &self.keys);
        let values: Vec<&(dyn ToSql + Sync)> = fixed
            .into_iter()
            .chain(changeable.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)))
            .collect();
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        self.execute(
            "saving a policy",
            &format!(
                "INSERT INTO policies ({POLICY_COLUMNS}) VALUES ({})",
                placeholders.join(",")
            ),
            &values,
        )
        .await?;
        Ok(())
    }

    async fn policy(&self, id: &str) -> Result<Option<PollMirroringPolicy>, StoreError> {
        self.row(
            "reading a policy",
            &format!("SELECT {POLICY_COLUMNS} FROM policies WHERE id=$1"),
            &[&id],
            |r| policy_row(r, &self.keys),
        )
        .await
    }

    async fn policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PollMirroringPolicy>, StoreError> {
        self.rows(
            "listing policies",
            &format!(
                "SELECT {POLICY_COLUMNS} FROM policies
                 WHERE $1::text IS NULL OR local_repository=$1 ORDER BY created_at, id"
            ),
            &[&local.map(RepositoryName::as_str)],
            |r| policy_row(r, &self.keys),
        )
        .await
    }

    async fn update_policy(&self, p: &PollMirroringPolicy) -> Result<bool, StoreError> {
        let changeable = PgStore::changeable(p, &self.keys);
        let values: Vec<&(dyn ToSql + Sync)> = std::iter::once(&p.id as &(dyn ToSql + Sync))
            .chain(changeable.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)))
            .collect();
        let placeholders: Vec<String> = (2..=values.len()).map(|i| format!("${i}")).collect();
        let n = self
            .execute(
                "updating a policy",
                &format!(
                    "UPDATE policies SET ({CHANGEABLE_COLUMNS}) = ({}) WHERE id=$1",
                    placeholders.join(",")
                ),
                &values,
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_policy(&self, id: &str) -> Result<bool, StoreError> {
        let ctx = "deleting a policy";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        let n = execute(&tx, ctx, "DELETE FROM policies WHERE id=$1", &[&id]).await?;
        execute(&tx, ctx, "DELETE FROM baselines WHERE policy_id=$1", &[&id]).await?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(n > 0)
    }

    async fn record_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.execute(
            "recording a policy status",
            "UPDATE policies SET status_code=$2, status_detail=$3, status_timestamp=$4,
                 last_mirrored_at=COALESCE($5, last_mirrored_at)
             WHERE id=$1",
            &[
                &id,
                &status.code,
                &status.detail,
                &status.timestamp,
                &mirrored_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn set_baseline(
        &self,
        id: &str,
        tags: &HashMap<String, Digest>,
    ) -> Result<(), StoreError> {
        let ctx = "saving a baseline";
        let (names, digests): (Vec<&str>, Vec<String>) = tags
            .iter()
            .map(|(t, d)| (t.as_str(), d.to_string()))
            .unzip();
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        execute(&tx, ctx, "DELETE FROM baselines WHERE policy_id=$1", &[&id]).await?;
        execute(
            &tx,
            ctx,
            "INSERT INTO baselines (policy_id, tag, digest)
             SELECT $1, t, d FROM unnest($2::text[], $3::text[]) AS u (t, d)",
            &[&id, &names, &digests],
        )
        .await?;
        tx.commit().await.map_err(db_err(ctx))
    }

    async fn baseline(&self, id: &str) -> Result<HashMap<String, Digest>, StoreError> {
        let pairs = self
            .rows(
                "reading a baseline",
                "SELECT tag, digest FROM baselines WHERE policy_id=$1",
                &[&id],
                |r| Ok((get(r, "tag")?, parse_digest(get(r, "digest")?)?)),
            )
            .await?;
        Ok(pairs.into_iter().collect())
    }
}
