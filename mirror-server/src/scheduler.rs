//! Crons: jobs submitted on a schedule, kept in `server.db`, and the task
//! that submits them when due.
//!
//! Crons are keyed by action, as in DTR. A schedule is a cron spec with
//! seconds first (`57 54 3 * * *`), a classic 5-field spec (minutes first),
//! or a nickname (`@hourly`, `@daily`, ...), parsed by `croner`. A
//! `poll_mirror` cron every 30 minutes is created on the first start; if
//! an operator deletes it, it stays deleted.
//!
//! Changes through [`Scheduler::upsert`] and [`Scheduler::delete`] wake the
//! loop, so they take effect at once. Missed runs (while the server was down)
//! are not caught up: the next run is computed from "now" at start. A cron
//! does not submit a job while an earlier job of the same action and
//! parameters is still waiting or running, so slow polls do not pile up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mirror_core::job::{POLL_MIRROR, parse_duration, resolve_deadline};
use mirror_core::{JobFilter, JobSubmission, Mirror, MirrorError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::{DbError, ServerDb};

/// The schedule of the default `poll_mirror` cron: every 30 minutes.
pub const DEFAULT_POLL_SCHEDULE: &str = "0 */30 * * * *";

/// The longest the loop sleeps before re-reading the crons (a safety net;
/// changes wake it at once).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A cron, in DTR's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cron {
    /// Identifier (UUID).
    pub id: String,
    /// The action of the jobs it submits (the key).
    pub action: String,
    /// The cron spec.
    pub schedule: String,
    /// Retries of each submitted job.
    pub retries: i32,
    /// Accepted for DTR compatibility; this server has no capacity model.
    pub capacity_map: BTreeMap<String, i64>,
    /// Parameters of each submitted job.
    pub parameters: BTreeMap<String, String>,
    /// How long each job may run (`90s`, `30m`, `2h`, `1h30m`), empty = no limit.
    pub deadline: String,
    /// Accepted for DTR compatibility.
    pub stop_timeout: String,
    /// When it fires next.
    #[serde(serialize_with = "serialize_opt_time")]
    pub next_run: Option<DateTime<Utc>>,
}

fn serialize_opt_time<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// What a caller gives to create or replace a cron.
#[derive(Debug, Clone, Default)]
pub struct CronForm {
    /// The action.
    pub action: String,
    /// The cron spec.
    pub schedule: String,
    /// Retries of each job.
    pub retries: i32,
    /// Job parameters.
    pub parameters: BTreeMap<String, String>,
    /// Job run-time limit, a duration or empty.
    pub deadline: String,
    /// Echoed back.
    pub stop_timeout: String,
    /// Echoed back.
    pub capacity_map: BTreeMap<String, i64>,
}

/// Errors of cron operations.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// A field is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The API field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The job the cron would submit is invalid.
    #[error(transparent)]
    Job(MirrorError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Parses a schedule: seconds-first 6 fields, 5 fields, or a nickname.
///
/// ```
/// use mirror_server::scheduler::parse_schedule;
/// assert!(parse_schedule("0 */30 * * * *").is_ok());
/// assert!(parse_schedule("@hourly").is_ok());
/// assert!(parse_schedule("every day").is_err());
/// ```
pub fn parse_schedule(spec: &str) -> Result<croner::Cron, String> {
    use croner::parser::{CronParser, Seconds};
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("is empty; give a cron spec such as \"0 */30 * * * *\" or \"@hourly\"".into());
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(spec)
        .map_err(|e| format!("{spec:?} is not a valid cron spec: {e}"))
}

/// The first time strictly after `after` that `spec` matches.
pub fn next_run(spec: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse_schedule(spec)
        .ok()?
        .find_next_occurrence(&after, false)
        .ok()
}

/// The cron store and the loop that fires crons.
pub struct Scheduler {
    db: ServerDb,
    mirror: Mirror,
    /// Wakes the loop after a change.
    changed: Notify,
    /// The loop's plan: action → (schedule, next run).
    planned: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

type CronRow = (String, String, String, i32, String, String, String, String);

impl Scheduler {
    /// The scheduler over `db`, submitting jobs to `mirror`.
    pub fn new(db: ServerDb, mirror: Mirror) -> Self {
        Scheduler {
            db,
            mirror,
            changed: Notify::new(),
            planned: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the default `poll_mirror` cron on the very first start.
    pub async fn seed_default(&self) -> Result<(), CronError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.db
            .with("creating the default poll_mirror cron", move |c| {
                let tx = c.transaction()?;
                let seeded = tx
                    .query_row("SELECT value FROM meta WHERE key='crons_seeded'", [], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()?;
                if seeded.is_none() {
                    tx.execute(
                        "INSERT INTO crons (action, id, schedule, retries, parameters, deadline, stop_timeout, capacity_map, updated_at)
                         VALUES (?1, ?2, ?3, 0, '{}', '', '', '{}', ?4) ON CONFLICT (action) DO NOTHING",
                        params![POLL_MIRROR, id, DEFAULT_POLL_SCHEDULE, Utc::now().to_rfc3339()],
                    )?;
                    tx.execute("INSERT INTO meta (key, value) VALUES ('crons_seeded', 'yes')", [])?;
                }
                tx.commit()
            })
            .await?;
        Ok(())
    }

    fn build(&self, row: CronRow) -> Cron {
        let (action, id, schedule, retries, parameters, deadline, stop_timeout, capacity) = row;
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&action)
            .filter(|(s, _)| *s == schedule)
            .map(|(_, t)| *t);
        Cron {
            next_run: planned.or_else(|| next_run(&schedule, Utc::now())),
            id,
            action,
            retries,
            capacity_map: serde_json::from_str(&capacity).unwrap_or_default(),
            parameters: serde_json::from_str(&parameters).unwrap_or_default(),
            schedule,
            deadline,
            stop_timeout,
        }
    }

    /// Every cron, by action.
    pub async fn list(&self) -> Result<Vec<Cron>, CronError> {
        let rows = self
            .db
            .with("listing crons", |c| {
                let mut st = c.prepare(
                    "SELECT action, id, schedule, retries, parameters, deadline, stop_timeout, capacity_map
                     FROM crons ORDER BY action",
                )?;
                st.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })?
                .collect::<Result<Vec<CronRow>, _>>()
            })
            .await?;
        Ok(rows.into_iter().map(|r| self.build(r)).collect())
    }

    /// The cron of `action`, or `None`.
    pub async fn get(&self, action: &str) -> Result<Option<Cron>, CronError> {
        Ok(self.list().await?.into_iter().find(|c| c.action == action))
    }

    /// Creates or replaces the cron of `form.action`, after checking its
    /// schedule, deadline and the job it would submit.
    pub async fn upsert(&self, form: CronForm) -> Result<Cron, CronError> {
        parse_schedule(&form.schedule).map_err(|reason| CronError::Invalid {
            field: "schedule",
            reason,
        })?;
        if !form.deadline.trim().is_empty() && parse_duration(&form.deadline).is_none() {
            return Err(CronError::Invalid {
                field: "deadline",
                reason: format!(
                    "{:?} is not a duration such as \"30m\", \"2h\" or \"1h30m\"",
                    form.deadline
                ),
            });
        }
        self.mirror
            .validate_job(&JobSubmission {
                action: form.action.clone(),
                parameters: form.parameters.clone(),
                retries: form.retries,
                scheduled_at: None,
                deadline: None,
            })
            .await
            .map_err(CronError::Job)?;
        let id = uuid::Uuid::new_v4().to_string();
        let params_json = serde_json::to_string(&form.parameters).unwrap_or_else(|_| "{}".into());
        let cap_json = serde_json::to_string(&form.capacity_map).unwrap_or_else(|_| "{}".into());
        let f = form.clone();
        self.db
            .with("saving a cron", move |c| {
                c.execute(
                    "INSERT INTO crons (action, id, schedule, retries, parameters, deadline, stop_timeout, capacity_map, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (action) DO UPDATE SET schedule=excluded.schedule, retries=excluded.retries,
                       parameters=excluded.parameters, deadline=excluded.deadline,
                       stop_timeout=excluded.stop_timeout, capacity_map=excluded.capacity_map,
                       updated_at=excluded.updated_at",
                    params![
                        f.action,
                        id,
                        f.schedule.trim(),
                        f.retries,
                        params_json,
                        f.deadline.trim(),
                        f.stop_timeout,
                        cap_json,
                        Utc::now().to_rfc3339()
                    ],
                )
            })
            .await?;
        self.changed.notify_one();
        let cron = self.get(&form.action).await?;
        Ok(cron.expect("the cron was just saved"))
    }

    /// Deletes the cron of `action`; jobs it submitted are left alone.
    /// Returns whether it existed.
    pub async fn delete(&self, action: &str) -> Result<bool, CronError> {
        let action = action.to_string();
        let n = self
            .db
            .with("deleting a cron", move |c| {
                c.execute("DELETE FROM crons WHERE action=?1", [action])
            })
            .await?;
        self.changed.notify_one();
        Ok(n > 0)
    }

    /// Fires crons until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            let sleep = match self.tick(Utc::now()).await {
                Ok(until_next) => until_next.min(MAX_SLEEP),
                Err(e) => {
                    tracing::error!("cron scheduler: {e}");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.changed.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Submits the jobs of due crons and plans the next runs; returns how
    /// long until the earliest one.
    async fn tick(&self, now: DateTime<Utc>) -> Result<Duration, CronError> {
        let crons = self.list().await?;
        let mut due = Vec::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        {
            let mut planned = self.planned.lock().unwrap_or_else(|p| p.into_inner());
            planned.retain(|action, _| crons.iter().any(|c| &c.action == action));
            for cron in &crons {
                let entry = planned
                    .get(&cron.action)
                    .filter(|(schedule, _)| *schedule == cron.schedule)
                    .map(|(_, t)| *t);
                let next = match entry {
                    Some(t) if t <= now => {
                        due.push(cron.clone());
                        next_run(&cron.schedule, now)
                    }
                    Some(t) => Some(t),
                    None => next_run(&cron.schedule, now),
                };
                match next {
                    Some(t) => {
                        planned.insert(cron.action.clone(), (cron.schedule.clone(), t));
                        earliest = Some(earliest.map_or(t, |e| e.min(t)));
                    }
                    None => {
                        planned.remove(&cron.action);
                    }
                }
            }
        }
        for cron in due {
            self.fire(&cron, now).await;
        }
        Ok(earliest
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_millis(50))
            .max(Duration::from_millis(50)))
    }

    /// Submits the job of one due cron, unless an identical one is pending.
    async fn fire(&self, cron: &Cron, now: DateTime<Utc>) {
        let pending = self
            .mirror
            .jobs(&JobFilter {
                action: Some(cron.action.clone()),
                running: Some(true),
                limit: 100,
                ..Default::default()
            })
            .await;
        match pending {
            Ok(jobs) if jobs.iter().any(|j| j.parameters == cron.parameters) => {
                tracing::info!(action = %cron.action, "cron due, but an earlier job is still pending; skipped");
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(action = %cron.action, "cannot list pending jobs: {e}"),
        }
        let deadline = resolve_deadline(&cron.deadline, now).unwrap_or(None);
        let submitted = self
            .mirror
            .submit_job(JobSubmission {
                action: cron.action.clone(),
                parameters: cron.parameters.clone(),
                retries: cron.retries,
                scheduled_at: None,
                deadline,
            })
            .await;
        match submitted {
            Ok(job) => tracing::info!(action = %cron.action, job = %job.id, "cron submitted a job"),
            Err(e) => tracing::error!(action = %cron.action, "cron could not submit its job: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_schedule(spec: &str, ok: bool) {
        assert_eq!(parse_schedule(spec).is_ok(), ok, "{spec}");
    }

    #[test]
    fn schedules() {
        check_schedule(DEFAULT_POLL_SCHEDULE, true);
        check_schedule("57 54 3 * * *", true);
        check_schedule("*/5 * * * *", true);
        check_schedule("@hourly", true);
        check_schedule("@weekly", true);
        check_schedule("", false);
        check_schedule("61 * * * * *", false);
        check_schedule("every hour", false);
    }

    #[test]
    fn default_schedule_is_every_half_hour() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T10:07:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let n1 = next_run(DEFAULT_POLL_SCHEDULE, t).unwrap();
        let n2 = next_run(DEFAULT_POLL_SCHEDULE, n1).unwrap();
        assert_eq!(n1.to_rfc3339(), "2024-01-01T10:30:00+00:00");
        assert_eq!((n2 - n1).num_minutes(), 30);
        let six = next_run("57 54 3 * * *", t).unwrap();
        assert_eq!(six.to_rfc3339(), "2024-01-02T03:54:57+00:00");
    }
}
