//! [`JobLogStore`]: each job's log lines, appended while it runs and read
//! (from an offset) while it runs and after.

use async_trait::async_trait;

use super::StoreError;
use crate::job::LogLine;

/// Job logs.
#[async_trait]
pub trait JobLogStore: Send + Sync + 'static {
    /// Appends lines to a job's log.
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError>;

    /// A job's log lines from `offset`, at most `limit` (0 = all).
    async fn logs(&self, id: &str, offset: i64, limit: i64) -> Result<Vec<LogLine>, StoreError>;
}
