//! Row → struct conversions, written once for both backends: each backend
//! implements [`Row`] (SQLite keeps times as RFC 3339 text and flags as
//! integers, PostgreSQL as `timestamptz` and `boolean`), and the
//! statements (`sql.rs`) that produce the rows are shared too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::store::records::Cron;
use crate::store::records::{
    AccessLevel, Account, ApiToken, GrantTarget, OrgMember, Organization, Team, UploadRecord,
};

/// A column that could not be read.
pub(super) type Field<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One result row of either backend, read by column index.
pub(super) trait Row {
    /// A text column.
    fn text(&self, i: usize) -> Field<String>;
    /// A boolean column.
    fn flag(&self, i: usize) -> Field<bool>;
    /// An integer column.
    fn int(&self, i: usize) -> Field<i64>;
    /// A nullable time column.
    fn opt_time(&self, i: usize) -> Field<Option<DateTime<Utc>>>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Field<Option<String>>;
    /// A nullable integer (`bigint`) column.
    fn opt_int(&self, i: usize) -> Field<Option<i64>>;
    /// A time column (a missing one reads as the epoch, as before).
    fn time(&self, i: usize) -> Field<DateTime<Utc>> {
        Ok(self.opt_time(i)?.unwrap_or_default())
    }
}

/// An account from `sql`'s account columns.
pub(super) fn account(r: &dyn Row) -> Field<Account> {
    Ok(Account {
        id: r.text(0)?,
        name: r.text(1)?,
        full_name: r.text(2)?,
        is_admin: r.flag(3)?,
        is_active: r.flag(4)?,
        created_at: r.time(5)?,
    })
}

/// An access token from `sql`'s token columns.
pub(super) fn api_token(r: &dyn Row) -> Field<ApiToken> {
    Ok(ApiToken {
        hashed_token: r.text(0)?,
        label: r.text(1)?,
        is_active: r.flag(2)?,
        username: r.text(3)?,
        created_at: r.time(4)?,
        last_used: r.opt_time(5)?,
    })
}

/// A cron from `sql::CRONS` (parameters and capacity map are JSON text).
pub(super) fn cron(r: &dyn Row) -> Field<Cron> {
    Ok(Cron {
        action: r.text(0)?,
        id: r.text(1)?,
        schedule: r.text(2)?,
        retries: i32::try_from(r.int(3)?)?,
        parameters: serde_json::from_str(&r.text(4)?).unwrap_or_default(),
        deadline: r.text(5)?,
        stop_timeout: r.text(6)?,
        capacity_map: serde_json::from_str(&r.text(7)?).unwrap_or_default(),
        next_run: r.opt_time(8)?,
    })
}

/// An organization from `sql`'s organization columns.
pub(super) fn organization(r: &dyn Row) -> Field<Organization> {
    Ok(Organization {
        name: r.text(0)?,
        id: r.text(1)?,
        full_name: r.text(2)?,
        created_at: r.time(3)?,
    })
}

/// A `(name, is_admin)` membership row.
pub(super) fn org_member(r: &dyn Row) -> Field<OrgMember> {
    Ok(OrgMember {
        name: r.text(0)?,
        is_admin: r.flag(1)?,
    })
}

/// A team from `sql`'s team columns.
pub(super) fn team(r: &dyn Row) -> Field<Team> {
    Ok(Team {
        id: r.text(0)?,
        org: r.text(1)?,
        name: r.text(2)?,
        description: r.text(3)?,
        members: u64::try_from(r.int(4)?)?,
    })
}

/// A team and its level (column 5); `None` for a level this build does
/// not know.
pub(super) fn team_level(r: &dyn Row) -> Field<Option<(Team, AccessLevel)>> {
    let Some(level) = AccessLevel::parse(&r.text(5)?) else {
        return Ok(None);
    };
    Ok(Some((team(r)?, level)))
}

/// A `(kind, target, level)` row; `None` for a kind or level this build
/// does not know.
pub(super) fn target_level(r: &dyn Row) -> Field<Option<(GrantTarget, AccessLevel)>> {
    let target = match r.text(0)?.as_str() {
        "repository" => GrantTarget::Repository(r.text(1)?),
        "namespace" => GrantTarget::Namespace(r.text(1)?),
        _ => return Ok(None),
    };
    Ok(AccessLevel::parse(&r.text(2)?).map(|level| (target, level)))
}

/// A level (column 0); `None` for one this build does not know.
pub(super) fn level(r: &dyn Row) -> Field<Option<AccessLevel>> {
    Ok(AccessLevel::parse(&r.text(0)?))
}

/// An upload from `sql`'s upload columns.
pub(super) fn upload(r: &dyn Row) -> Field<UploadRecord> {
    Ok(UploadRecord {
        id: r.text(0)?,
        repository: r.text(1)?,
        owner: r.text(2)?,
        progress: r.text(3)?,
        updated_at: r.time(4)?,
    })
}

/// A `(name, level)` row; `None` for a level this build does not know.
pub(super) fn named_level(r: &dyn Row) -> Field<Option<(String, AccessLevel)>> {
    Ok(AccessLevel::parse(&r.text(1)?).map(|level| (r.text(0).unwrap_or_default(), level)))
}

/// The JSON text a cron's parameters and capacity map are stored as.
pub(super) fn cron_json(cron: &Cron) -> (String, String) {
    fn json<T: serde::Serialize>(v: &BTreeMap<String, T>) -> String {
        serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
    }
    (json(&cron.parameters), json(&cron.capacity_map))
}

/// The time format of SQLite's text columns (sortable, millisecond).
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time from SQLite's text column (the epoch when unreadable, as before).
pub(super) fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}
