//! [`PushPolicyStore`] on SQLite: the `push_policies` table (step 10).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, db_err, parse_name, parse_ts, ts};
use crate::policy::{MirroringStatus, RemoteEndpoint};
use crate::push_policy::{PushMirroringPolicy, TagTemplate};
use crate::reference::RepositoryName;
use crate::secret::Secret;
use crate::store::push_policy::push_secret_context;
use crate::store::{PushPolicyStore, SecretKeys, StoreError};

/// Step 10: push mirroring policies.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS push_policies (
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
    rules TEXT NOT NULL,
    tag_template TEXT NOT NULL,
    owner TEXT,
    created_at TEXT NOT NULL,
    last_mirrored_at TEXT,
    status_code TEXT NOT NULL,
    status_detail TEXT NOT NULL,
    status_timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS push_policies_local ON push_policies (local_repository);
";

const COLUMNS: &str = "id, local_repository, remote_host, remote_repository, username, password, auth_token, remote_ca, skip_tls_verification, enabled, rules, tag_template, owner, created_at, last_mirrored_at, status_code, status_detail, status_timestamp";

/// A row as read, secrets still sealed.
struct PushRow {
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
    rules: String,
    template: String,
    owner: Option<String>,
    created: String,
    last_mirrored: Option<String>,
    code: String,
    detail: String,
    status_ts: String,
}

fn push_row(r: &Row) -> rusqlite::Result<PushRow> {
    Ok(PushRow {
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
        rules: r.get(10)?,
        template: r.get(11)?,
        owner: r.get(12)?,
        created: r.get(13)?,
        last_mirrored: r.get(14)?,
        code: r.get(15)?,
        detail: r.get(16)?,
        status_ts: r.get(17)?,
    })
}

fn build(p: PushRow, keys: &SecretKeys) -> Result<PushMirroringPolicy, StoreError> {
    let password = keys.open(&p.password, &push_secret_context(&p.id, "password"))?;
    let auth_token = keys.open(&p.auth_token, &push_secret_context(&p.id, "authToken"))?;
    let tag_template = TagTemplate::parse(&p.template).map_err(|e| StoreError::Corrupt {
        reason: format!("push policy {}: {e}", p.id),
    })?;
    Ok(PushMirroringPolicy {
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
        rules: crate::store::rules_from_text(&p.rules)?,
        tag_template,
        last_mirrored_at: p.last_mirrored.map(|t| parse_ts(&t)).transpose()?,
        last_status: MirroringStatus {
            code: p.code,
            detail: p.detail,
            timestamp: parse_ts(&p.status_ts)?,
        },
        created_at: parse_ts(&p.created)?,
        owner: p.owner,
        id: p.id,
    })
}

impl SqliteStore {
    fn sealed_push_secrets(&self, p: &PushMirroringPolicy) -> (String, String) {
        (
            self.keys.seal(
                p.remote.password.expose(),
                &push_secret_context(&p.id, "password"),
            ),
            self.keys.seal(
                p.remote.auth_token.expose(),
                &push_secret_context(&p.id, "authToken"),
            ),
        )
    }
}

/// Seals, with the current key, every push policy secret sealed with an
/// older one (at open, as [`super::reseal_secrets`] does for poll policies).
pub(super) fn reseal(conn: &Connection, keys: &SecretKeys) -> Result<(), StoreError> {
    let ctx = "sealing push policy secrets";
    let rows: Vec<(String, String, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, password, auth_token FROM push_policies")
            .map_err(db_err(ctx))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err(ctx))?
            .collect::<Result<_, _>>()
            .map_err(db_err(ctx))?
    };
    for (id, password, token) in rows {
        if !keys.needs_reseal(&password) && !keys.needs_reseal(&token) {
            continue;
        }
        let reseal = |stored: &str, field: &str| -> Result<String, StoreError> {
            let c = push_secret_context(&id, field);
            Ok(keys.seal(&keys.open(stored, &c)?, &c))
        };
        conn.execute(
            "UPDATE push_policies SET password=?2, auth_token=?3 WHERE id=?1",
            params![
                id,
                reseal(&password, "password")?,
                reseal(&token, "authToken")?
            ],
        )
        .map_err(db_err(ctx))?;
    }
    Ok(())
}

#[async_trait]
impl PushPolicyStore for SqliteStore {
    async fn insert_push_policy(&self, p: &PushMirroringPolicy) -> Result<(), StoreError> {
        let p = p.clone();
        let (password, auth_token) = self.sealed_push_secrets(&p);
        self.with(move |c| {
            c.execute(
                &format!("INSERT INTO push_policies ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"),
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
                    crate::store::rules_to_text(&p.rules),
                    p.tag_template.as_str(),
                    p.owner,
                    ts(&p.created_at),
                    p.last_mirrored_at.as_ref().map(ts),
                    p.last_status.code,
                    p.last_status.detail,
                    ts(&p.last_status.timestamp)
                ],
            )
            .map_err(db_err("saving a push policy"))?;
            Ok(())
        })
        .await
    }

    async fn push_policy(&self, id: &str) -> Result<Option<PushMirroringPolicy>, StoreError> {
        let id = id.to_string();
        let keys = self.keys.clone();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM push_policies WHERE id=?1"),
                params![id],
                push_row,
            )
            .optional()
            .map_err(db_err("reading a push policy"))?
            .map(|row| build(row, &keys))
            .transpose()
        })
        .await
    }

    async fn push_policies(
        &self,
        local: Option<&RepositoryName>,
    ) -> Result<Vec<PushMirroringPolicy>, StoreError> {
        let local = local.map(|l| l.to_string());
        let keys = self.keys.clone();
        self.with(move |c| {
            let ctx = "listing push policies";
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM push_policies WHERE ?1 IS NULL OR local_repository=?1 ORDER BY created_at, id"
                ))
                .map_err(db_err(ctx))?;
            let rows = stmt
                .query_map(params![local], push_row)
                .map_err(db_err(ctx))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err(ctx))?;
            rows.into_iter().map(|row| build(row, &keys)).collect()
        })
        .await
    }

    async fn update_push_policy(&self, p: &PushMirroringPolicy) -> Result<bool, StoreError> {
        let p = p.clone();
        let (password, auth_token) = self.sealed_push_secrets(&p);
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE push_policies SET remote_host=?2, remote_repository=?3, username=?4, password=?5, auth_token=?6, remote_ca=?7, skip_tls_verification=?8, enabled=?9, rules=?10, tag_template=?11, owner=?12 WHERE id=?1",
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
                        crate::store::rules_to_text(&p.rules),
                        p.tag_template.as_str(),
                        p.owner
                    ],
                )
                .map_err(db_err("updating a push policy"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_push_policy(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c
                .execute("DELETE FROM push_policies WHERE id=?1", params![id])
                .map_err(db_err("deleting a push policy"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn record_push_status(
        &self,
        id: &str,
        status: &MirroringStatus,
        mirrored_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (id, status) = (id.to_string(), status.clone());
        self.with(move |c| {
            c.execute(
                "UPDATE push_policies SET status_code=?2, status_detail=?3, status_timestamp=?4, last_mirrored_at=COALESCE(?5, last_mirrored_at) WHERE id=?1",
                params![id, status.code, status.detail, ts(&status.timestamp), mirrored_at.as_ref().map(ts)],
            )
            .map_err(db_err("recording a push policy status"))?;
            Ok(())
        })
        .await
    }
}
