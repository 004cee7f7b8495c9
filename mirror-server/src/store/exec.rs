//! [`Exec`]: run one shared statement (`sql.rs`) on either backend with
//! typed parameters, so a store written against it (`orgs.rs`) is
//! written once for SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DbError;
use super::rows::{Field, Row};

/// A statement parameter.
#[derive(Debug, Clone)]
pub(super) enum Param {
    /// Text.
    Text(String),
    /// A truth value (SQLite: an integer; PostgreSQL: `boolean`).
    Flag(bool),
    /// A time (SQLite: RFC 3339 text; PostgreSQL: `timestamptz`).
    Time(DateTime<Utc>),
    /// An integer (PostgreSQL: `bigint`).
    Int(i64),
    /// Text or `NULL`.
    OptText(Option<String>),
    /// A time or `NULL`.
    OptTime(Option<DateTime<Utc>>),
    /// An integer or `NULL`.
    OptInt(Option<i64>),
}

impl From<Option<i64>> for Param {
    fn from(n: Option<i64>) -> Self {
        Param::OptInt(n)
    }
}

impl From<i64> for Param {
    fn from(n: i64) -> Self {
        Param::Int(n)
    }
}

impl From<Option<String>> for Param {
    fn from(s: Option<String>) -> Self {
        Param::OptText(s)
    }
}

impl From<Option<DateTime<Utc>>> for Param {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        Param::OptTime(t)
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Text(s.to_string())
    }
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Text(s)
    }
}

impl From<bool> for Param {
    fn from(b: bool) -> Self {
        Param::Flag(b)
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(t: DateTime<Utc>) -> Self {
        Param::Time(t)
    }
}

/// Parameters, from anything that converts.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(crate::store::exec::Param::from($p)),*]
    };
}
pub(super) use params;

/// Runs shared statements on one backend.
#[async_trait]
pub(super) trait Exec: Send + Sync {
    /// Runs `sql`; the rows it changed. `ctx` says what it does.
    async fn exec(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<u64, DbError>;

    /// The rows of `sql`, each read with `convert`.
    async fn query<T: Send + 'static>(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        convert: for<'r> fn(&'r (dyn Row + 'r)) -> Field<T>,
    ) -> Result<Vec<T>, DbError>;

    /// The first row of `sql`, if any.
    async fn query_one<T: Send + 'static>(
        &self,
        ctx: &'static str,
        sql: &'static str,
        params: Vec<Param>,
        convert: for<'r> fn(&'r (dyn Row + 'r)) -> Field<T>,
    ) -> Result<Option<T>, DbError> {
        Ok(self
            .query(ctx, sql, params, convert)
            .await?
            .into_iter()
            .next())
    }
}
