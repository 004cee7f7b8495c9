//! [`JobStore`] on PostgreSQL: the queue several replicas share.
//!
//! A claim selects the oldest due waiting job `FOR UPDATE SKIP LOCKED` and
//! marks it running in the same transaction: concurrent claimers each get
//! a different job (or none) and never wait for one another's rows. With a
//! namespace share, the claim then takes a transaction-scoped advisory
//! lock on the job's namespace and counts its running jobs again, so two
//! replicas cannot both take the namespace's last slot.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Json;
use tokio_postgres::types::ToSql;

use super::{PgStore, db_err, execute, get, lock_key, query};
use crate::job::{Job, JobFailure, JobFilter};
use crate::store::sqlite::job_status;
use crate::store::{JobStore, StoreError};

const JOB_COLUMNS: &str = "id, retry_from_id, worker_id, status, scheduled_at, last_updated, action, retries_left, retries_total, parameters, deadline, stop_timeout_ms, heartbeat_at, cancel_requested, failure";

/// The policy a job row polls (`crate::job::PARAM_POLICY_ID`; the
/// `jobs_running` index is on this expression).
const POLICY_OF: &str = "parameters ->> 'policyID'";

/// The first key of the namespace advisory locks (`rm` in ASCII); the
/// second is the namespace's `hashtext`.
const NAMESPACE_LOCK: i32 = 0x726d;

/// How often a claim looks again after losing a namespace's last slot to
/// a concurrent claim.
const CLAIM_ATTEMPTS: usize = 4;

/// The push policy a job row pushes for
/// (`crate::push_policy::PARAM_PUSH_POLICY_ID`).
const PUSH_POLICY_OF: &str = "parameters ->> 'pushPolicyID'";

/// SQL for the local repository of the policy the job row `alias` runs
/// (a poll policy, or a push policy; NULL for neither).
fn policy_repository(alias: &str) -> String {
    format!(
        "COALESCE((SELECT p.local_repository FROM policies p WHERE p.id = {alias}.{POLICY_OF}),
                  (SELECT q.local_repository FROM push_policies q WHERE q.id = {alias}.{PUSH_POLICY_OF}))"
    )
}

/// SQL counting the running jobs of policies (poll or push) of the
/// namespace `namespace` (an SQL expression).
fn running_in(namespace: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM jobs r
          WHERE r.status = 'running' AND split_part({}, '/', 1) = {namespace})",
        policy_repository("r")
    )
}

/// The oldest due waiting job (or `$1`), with its policy's namespace
/// (NULL for a job that polls every policy, or a deleted policy), unless
/// that namespace runs `$3` jobs already.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT j.id, n.namespace FROM jobs j
         LEFT JOIN LATERAL (
             SELECT split_part({}, '/', 1) AS namespace
         ) n ON true
         WHERE j.status = 'waiting'
           AND ($1::text IS NULL OR j.id = $1)
           AND ($1::text IS NOT NULL OR j.scheduled_at <= $2)
           AND ($3::bigint IS NULL OR n.namespace IS NULL OR {} < $3)
         ORDER BY j.scheduled_at, j.id
         LIMIT 1
         FOR UPDATE OF j SKIP LOCKED",
        policy_repository("j"),
        running_in("n.namespace")
    )
});

static RUNNING_IN_NAMESPACE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} AS running", running_in("$1")));

fn job_row(r: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        id: get(r, "id")?,
        retry_from_id: get(r, "retry_from_id")?,
        worker_id: get(r, "worker_id")?,
        status: job_status(get(r, "status")?)?,
        scheduled_at: get(r, "scheduled_at")?,
        last_updated: get(r, "last_updated")?,
        action: get(r, "action")?,
        retries_left: get(r, "retries_left")?,
        retries_total: get(r, "retries_total")?,
        parameters: get::<Json<BTreeMap<String, String>>>(r, "parameters")?.0,
        deadline: get(r, "deadline")?,
        stop_timeout: Duration::from_millis(get::<i64>(r, "stop_timeout_ms")?.max(0) as u64),
        heartbeat_at: get(r, "heartbeat_at")?,
        cancel_requested: get(r, "cancel_requested")?,
        failure: get::<Option<Json<JobFailure>>>(r, "failure")?.map(|f| f.0),
    })
}

/// `$1`..`$15`: a job's [`JOB_COLUMNS`], as [`PgStore::write_job`] binds
/// them.
const JOB_VALUES: &str = "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15";

impl PgStore {
    /// Runs `sql` with the job's columns bound to `$1`..`$15` (in
    /// [`JOB_COLUMNS`] order) and `extra` after them; returns the rows
    /// changed.
    async fn write_job(
        &self,
        ctx: &str,
        sql: &str,
        j: &Job,
        extra: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let stop_timeout_ms = i64::try_from(j.stop_timeout.as_millis()).unwrap_or(i64::MAX);
        let (status, parameters) = (j.status.as_str(), Json(&j.parameters));
        let failure = j.failure.as_ref().map(Json);
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![
            &j.id,
            &j.retry_from_id,
            &j.worker_id,
            &status,
            &j.scheduled_at,
            &j.last_updated,
            &j.action,
            &j.retries_left,
            &j.retries_total,
            &parameters,
            &j.deadline,
            &stop_timeout_ms,
            &j.heartbeat_at,
            &j.cancel_requested,
            &failure,
        ];
        values.extend_from_slice(extra);
        self.execute(ctx, sql, &values).await
    }

    /// Inserts or replaces a job.
    async fn save_job(&self, j: &Job) -> Result<(), StoreError> {
        self.write_job(
            "saving a job",
            &format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({JOB_VALUES})
                 ON CONFLICT (id) DO UPDATE SET retry_from_id=EXCLUDED.retry_from_id,
                     worker_id=EXCLUDED.worker_id, status=EXCLUDED.status,
                     scheduled_at=EXCLUDED.scheduled_at, last_updated=EXCLUDED.last_updated,
                     action=EXCLUDED.action, retries_left=EXCLUDED.retries_left,
                     retries_total=EXCLUDED.retries_total, parameters=EXCLUDED.parameters,
                     deadline=EXCLUDED.deadline, stop_timeout_ms=EXCLUDED.stop_timeout_ms,
                     heartbeat_at=EXCLUDED.heartbeat_at,
                     cancel_requested=EXCLUDED.cancel_requested, failure=EXCLUDED.failure"
            ),
            j,
            &[],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl JobStore for PgStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        self.save_job(job).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.row(
            "reading a job",
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id=$1"),
            &[&id],
            job_row,
        )
        .await
    }

    async fn jobs(&self, f: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let running = match f.running {
            Some(true) => " AND status IN ('waiting', 'running')",
            Some(false) => " AND status NOT IN ('waiting', 'running')",
            None => "",
        };
        let limit = (f.limit > 0).then_some(f.limit as i64);
        self.rows(
                "listing jobs",
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE ($1::text IS NULL OR action=$1) AND ($2::text IS NULL OR status=$2){running}
                     ORDER BY scheduled_at DESC, id DESC LIMIT $3 OFFSET $4"
                ),
                &[
                    &f.action,
                    &f.status.map(|s| s.as_str()),
                    &limit,
                    &(f.start as i64),
                ],
                job_row,
            )
            .await
    }

    async fn claim_job(
        &self,
        worker_id: &str,
        job_id: Option<&str>,
        now: DateTime<Utc>,
        per_namespace: Option<usize>,
    ) -> Result<Option<Job>, StoreError> {
        let ctx = "claiming a job";
        let share = per_namespace.map(|n| n as i64);
        let mut client = self.client(ctx).await?;
        for _ in 0..CLAIM_ATTEMPTS {
            let tx = client.transaction().await.map_err(db_err(ctx))?;
            let candidates = query(&tx, ctx, &CLAIM, &[&job_id, &now, &share]).await?;
            let Some(candidate) = candidates.first() else {
                tx.rollback().await.map_err(db_err(ctx))?;
                return Ok(None);
            };
            let id: String = get(candidate, "id")?;
            if let Some(namespace) = get::<Option<String>>(candidate, "namespace")? {
                lock_key(&tx, ctx, NAMESPACE_LOCK, &namespace).await?;
                if let Some(share) = share {
                    // Counted again under the lock: a claim of this
                    // namespace that committed since the SELECT shows now.
                    let counted = query(&tx, ctx, &RUNNING_IN_NAMESPACE, &[&namespace]).await?;
                    let running: i64 = counted.first().map_or(Ok(0), |r| get(r, "running"))?;
                    if running >= share {
                        tx.rollback().await.map_err(db_err(ctx))?;
                        continue;
                    }
                }
            }
            let claimed = query(
                &tx,
                ctx,
                &format!(
                    "UPDATE jobs SET status='running', worker_id=$2, last_updated=$3, heartbeat_at=$3
                     WHERE id=$1 RETURNING {JOB_COLUMNS}"
                ),
                &[&id, &worker_id, &now],
            )
            .await?;
            tx.commit().await.map_err(db_err(ctx))?;
            return claimed.first().map(job_row).transpose();
        }
        Ok(None)
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        self.save_job(job).await
    }

    async fn finish_job(&self, job: &Job, worker_id: &str) -> Result<bool, StoreError> {
        let n = self
            .write_job(
                "finishing a job",
                &format!(
                    "UPDATE jobs SET ({JOB_COLUMNS}) = ({JOB_VALUES})
                     WHERE id=$1 AND status='running' AND worker_id=$16"
                ),
                job,
                &[&worker_id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn replace_lost_job(
        &self,
        job: &Job,
        found_worker: &str,
        found_heartbeat: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        // One statement: the row is locked from the check to the write, so
        // of two recoveries at once the second finds it changed.
        let n = self
            .write_job(
                "recovering a lost job",
                &format!(
                    "UPDATE jobs SET ({JOB_COLUMNS}) = ({JOB_VALUES})
                     WHERE id=$1 AND status='running' AND worker_id=$16
                       AND heartbeat_at IS NOT DISTINCT FROM $17"
                ),
                job,
                &[&found_worker, &found_heartbeat],
            )
            .await?;
        Ok(n > 0)
    }

    async fn heartbeat(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Job>, StoreError> {
        let beat = self
            .row(
                "recording a heartbeat",
                &format!(
                    "UPDATE jobs SET heartbeat_at=$2 WHERE id=$1 AND status='running'
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&id, &now],
                job_row,
            )
            .await?;
        match beat {
            Some(job) => Ok(Some(job)),
            None => self.job(id).await,
        }
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        // A running job is asked to stop; a waiting one is canceled now.
        let changed = self
            .row(
                "canceling a job",
                &format!(
                    "UPDATE jobs SET cancel_requested = cancel_requested OR status = 'running',
                         status = CASE status WHEN 'waiting' THEN 'canceled' ELSE status END,
                         last_updated = $2
                     WHERE id=$1 AND status IN ('waiting', 'running')
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&id, &crate::job::now()],
                job_row,
            )
            .await?;
        match changed {
            Some(job) => Ok(Some(job)),
            None => self.job(id).await,
        }
    }

    async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        let ctx = "deleting a job";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        let n = execute(&tx, ctx, "DELETE FROM jobs WHERE id=$1", &[&id]).await?;
        execute(&tx, ctx, "DELETE FROM job_logs WHERE job_id=$1", &[&id]).await?;
        tx.commit().await.map_err(db_err(ctx))?;
        Ok(n > 0)
    }

    async fn stale_jobs(&self, before: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        self.rows(
            "finding stale jobs",
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE status='running' AND (heartbeat_at IS NULL OR heartbeat_at < $1)"
            ),
            &[&before],
            job_row,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_expression_reads_the_policy_parameter() {
        assert!(super::POLICY_OF.contains(&format!("'{}'", crate::job::PARAM_POLICY_ID)));
        let push = crate::push_policy::PARAM_PUSH_POLICY_ID;
        assert!(super::PUSH_POLICY_OF.contains(&format!("'{push}'")));
    }
}
