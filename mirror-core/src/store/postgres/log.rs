//! [`JobLogStore`] on PostgreSQL: numbered lines per job. An append holds
//! a transaction-scoped advisory lock on its job, so two writers (a job and
//! the recovery of it on another replica) never number a line twice.

use async_trait::async_trait;

use super::{PgStore, db_err, execute, get, lock_key};
use crate::job::LogLine;
use crate::store::{JobLogStore, StoreError};

/// The first key of the job log advisory locks (`lg` in ASCII); the second
/// is the job ID's `hashtext`.
const LOG_LOCK: i32 = 0x6c67;

#[async_trait]
impl JobLogStore for PgStore {
    /// Appends `lines` numbered after the job's last line, in one
    /// transaction: every line is written, or none (also when the caller
    /// stops waiting for it).
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let ctx = "appending job logs";
        let mut client = self.client(ctx).await?;
        let tx = client.transaction().await.map_err(db_err(ctx))?;
        lock_key(&tx, ctx, LOG_LOCK, id).await?;
        execute(
            &tx,
            ctx,
            "INSERT INTO job_logs (job_id, line_num, data)
             SELECT $1, next.n + u.i - 1, u.line
             FROM unnest($2::text[]) WITH ORDINALITY AS u (line, i),
                  (SELECT COALESCE(MAX(line_num) + 1, 0) AS n FROM job_logs WHERE job_id=$1) next",
            &[&id, &lines],
        )
        .await?;
        tx.commit().await.map_err(db_err(ctx))
    }

    async fn logs(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<LogLine>, StoreError> {
        self.rows(
            "reading job logs",
            "SELECT line_num, data FROM job_logs WHERE job_id=$1 AND line_num >= $2
             ORDER BY line_num LIMIT $3",
            &[&id, &offset, &(limit > 0).then_some(limit)],
            |r| {
                Ok(LogLine {
                    line_num: get(r, "line_num")?,
                    data: get(r, "data")?,
                })
            },
        )
        .await
    }
}
