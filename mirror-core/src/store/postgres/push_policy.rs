//! [`PushPolicyStore`] on PostgreSQL: the `push_policies` table (step 7),
//! secrets sealed in `bytea` as poll policies' are.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{PgStore, get};
use crate::policy::{MirroringStatus, RemoteEndpoint};
use crate::push_policy::{PushMirroringPolicy, TagTemplate};
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::push_policy::push_secret_context;
use crate::store::sealed::SecretKeys;
use crate::store::sqlite::parse_name;
use crate::store::{PushPolicyStore, StoreError};

/// Step 7: push mirroring policies.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE push_policies (
    id text COLLATE "C" PRIMARY KEY,
    local_repository text COLLATE "C" NOT NULL,
    remote_host text NOT NULL,
    remote_repository text NOT NULL,
    username text NOT NULL,
    password bytea NOT NULL,
    auth_token bytea NOT NULL,
    remote_ca text NOT NULL,
    skip_tls_verification boolean NOT NULL,
    enabled boolean NOT NULL,
    rules text NOT NULL,
    tag_template text NOT NULL,
    owner text,
    created_at timestamptz NOT NULL,
    last_mirrored_at timestamptz,
    status_code text NOT NULL,
    status_detail text NOT NULL,
    status_timestamp timestamptz NOT NULL
);
CREATE INDEX push_policies_local ON push_policies (local_repository);
"#;

const COLUMNS: &str = "id, local_repository, remote_host, remote_repository, username, password, auth_token, remote_ca, skip_tls_verification, enabled, rules, tag_template, owner, created_at, last_mirrored_at, status_code, status_detail, status_timestamp";

fn push_row(r: &Row, keys: &SecretKeys) -> Result<PushMirroringPolicy, StoreError> {
    let id: String = get(r, "id")?;
    let open = |column: &str, field: &str| -> Result<Secret, StoreError> {
        let sealed: &[u8] = get(r, column)?;
        keys.open_bytes(sealed, &push_secret_context(&id, field))
            .map(Secret::new)
    };
    let template: String = get(r, "tag_template")?;
    let tag_template = TagTemplate::parse(&template).map_err(|e| StoreError::Corrupt {
        reason: format!("push policy {id}: {e}"),
    })?;
    Ok(PushMirroringPolicy {
        local_repository: parse_name(get(r, "local_repository")?)?,
        remote: RemoteEndpoint {
            host: get(r, "remote_host")?,
            repository: parse_name(get(r, "remote_repository")?)?,
            username: get(r, "username")?,
            password: open("password", "password")?,
            auth_token: open("auth_token", "authToken")?,
            remote_ca: get(r, "remote_ca")?,
            skip_tls_verification: get(r, "skip_tls_verification")?,
        },
        enabled: get(r, "enabled")?,
        rules: crate::store::rules_from_text(get(r, "rules")?)?,
        tag_template,
        last_mirrored_at: get(r, "last_mirrored_at")?,
        last_status: MirroringStatus {
            code: get(r, "status_code")?,
            detail: get(r, "status_detail")?,
            timestamp: get(r, "status_timestamp")?,
        },
        created_at: get(r, "created_at")?,
        owner: get(r, "owner")?,
        id,
    })
}

impl PgStore {
    fn sealed_push(&self, p: &PushMirroringPolicy) -> [Vec<u8>; 2] {
        [
            self.keys.seal_bytes(
                p.remote.password.expose(),
                &push_secret_context(&p.id, "password"),
            ),
            self.keys.seal_bytes(
                p.remote.auth_token.expose(),
                &push_secret_context(&p.id, "authToken"),
            ),
        ]
    }

    /// Seals again, with the current key, push policy secrets sealed with
    /// an older one (a row changed meanwhile is left alone).
    pub(super) async fn reseal_push_secrets(&self) -> Result<(), StoreError> {
        let ctx = "sealing push policy secrets with the current key";
        let rows = self
            .rows(
                ctx,
                "SELECT id, password, auth_token FROM push_policies",
                &[],
                |r| {
                    let stored: [Vec<u8>; 2] = [get(r, "password")?, get(r, "auth_token")?];
                    Ok((get::<String>(r, "id")?, stored))
                },
            )
            .await?;
        for (id, [password, token]) in rows {
            if !self.keys.needs_reseal_bytes(&password) && !self.keys.needs_reseal_bytes(&token) {
                continue;
            }
            let reseal = |sealed: &[u8], field: &str| -> Result<Vec<u8>, StoreError> {
                let context = push_secret_context(&id, field);
                let plain = self.keys.open_bytes(sealed, &context)?;
                Ok(self.keys.seal_bytes(&plain, &context))
            };
            let new = [reseal(&password, "password")?, reseal(&token, "authToken")?];
            self.execute(
                ctx,
                "UPDATE push_policies SET password=$2, auth_token=$3
                 WHERE id=$1 AND password=$4 AND auth_token=$5",
                &[&id, &new[0], &new[1], &password, &token],
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PushPolicyStore for PgStore {
    async fn insert_push_policy(&self, p: &PushMirroringPolicy) -> Result<(), StoreError> {
        let [password, auth_token] = self.sealed_push(p);
        let rules = crate::store::rules_to_text(&p.rules);
        self.execute(
            "saving a push policy",
            &format!(
                "INSERT INTO push_policies ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)"
            ),
            &[
                &p.id,
                &p.local_repository.as_str(),
                &p.remote.host,
                &p.remote.repository.as_str(),
                &p.remote.username,
                &password,
                &auth_token,
                &p.remote.remote_ca,
                &p.remote.skip_tls_verification,
                &p.enabled,
                &rules,
                &p.tag_template.as_str(),
                &p.owner,
                &p.created_at,
                &p.last_mirrored_at,
                &p.last_status.code,
                &p.last_status.detail,
                &p.last_status.timestamp,
            ],
        )
        .await?;
        Ok(())
    }

    async fn push_policy(&self, id: &str) -> Result<Option<PushMirroringPolicy>, StoreError> {
        self.row(
            "reading a push policy",
            &format!("SELECT {COLUMNS} FROM push_policies WHERE id=$1"),
            &[&id],
            |r| push_row(r, &self.keys),
        )
        .await
    }

    async fn push_policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PushMirroringPolicy>, StoreError> {
        self.rows(
            "listing push policies",
            &format!(
                "SELECT {COLUMNS} FROM push_policies
                 WHERE $1::text IS NULL OR local_repository=$1 ORDER BY created_at, id"
            ),
            &[&local.map(RepositoryName::as_str)],
            |r| push_row(r, &self.keys),
        )
        .await
    }

    async fn update_push_policy(&self, p: &PushMirroringPolicy) -> Result<bool, StoreError> {
        let [password, auth_token] = self.sealed_push(p);
        let rules = crate::store::rules_to_text(&p.rules);
        let n = self
            .execute(
                "updating a push policy",
                "UPDATE push_policies SET remote_host=$2, remote_repository=$3, username=$4,
                     password=$5, auth_token=$6, remote_ca=$7, skip_tls_verification=$8,
                     enabled=$9, rules=$10, tag_template=$11, owner=$12
                 WHERE id=$1",
                &[
                    &p.id,
                    &p.remote.host,
                    &p.remote.repository.as_str(),
                    &p.remote.username,
                    &password,
                    &auth_token,
                    &p.remote.remote_ca,
                    &p.remote.skip_tls_verification,
                    &p.enabled,
                    &rules,
                    &p.tag_template.as_str(),
                    &p.owner,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_push_policy(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "deleting a push policy",
                "DELETE FROM push_policies WHERE id=$1",
                &[&id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn record_push_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.execute(
            "recording a push policy status",
            "UPDATE push_policies SET status_code=$2, status_detail=$3, status_timestamp=$4,
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
}
