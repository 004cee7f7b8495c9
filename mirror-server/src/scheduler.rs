//! Crons: jobs submitted on a schedule, kept in the server's
//! [`CronStore`] with the time each fires next, and the task that submits
//! them when due.
//!
//! Crons are keyed by action, as in DTR. A schedule is a cron spec with
//! seconds first (`57 54 3 * * *`), a classic 5-field spec (minutes first),
//! or a nickname (`@hourly`, `@daily`, ...), parsed by `croner`. A
//! `poll_mirror` cron every 30 minutes is created on the first start; if
//! an operator deletes it, it stays deleted.
//!
//! Changes through [`Scheduler::upsert`] and [`Scheduler::delete`] wake the
//! loop, so they take effect at once (on other replicas, at their next
//! wake-up, within a minute). A cron does not submit a job while an earlier
//! job of the same action and parameters is still waiting or running, so
//! slow polls do not pile up.
//!
//! **A run fires once across replicas**: each cron's next run is stored;
//! a replica that finds it due first *claims* it, moving it to the
//! following run only if it still holds the due time it read
//! ([`CronStore::claim_cron`], one row changed = this replica fires).
//! The others find it moved and fire nothing. Missed runs (every replica
//! down) are not caught up: a claim of a run more than [`MISSED_AFTER`]
//! late moves it on without firing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mirror_core::job::{POLL_MIRROR, parse_duration, resolve_deadline};
use mirror_core::{JobFilter, JobSubmission, Mirror, MirrorError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{CronStore, DbError};

/// The schedule of the default `poll_mirror` cron: every 30 minutes.
pub const DEFAULT_POLL_SCHEDULE: &str = "0 */30 * * * *";

/// The longest the loop sleeps before re-reading the crons (a safety net;
/// changes wake it at once).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A run found due later than this after its time was missed (the server
/// was down): it is moved on without firing.
pub const MISSED_AFTER: Duration = Duration::from_secs(30);

pub use crate::store::records::Cron;

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
    crons: Arc<dyn CronStore>,
    mirror: Mirror,
    /// Wakes the loop after a change.
    changed: Notify,
}

impl Scheduler {
    /// The scheduler over `crons`, submitting jobs to `mirror`.
    pub fn new(crons: Arc<dyn CronStore>, mirror: Mirror) -> Self {
        Scheduler {
            crons,
            mirror,
            changed: Notify::new(),
        }
    }

    /// Creates the default `poll_mirror` cron on the very first start.
    pub async fn seed_default(&self) -> Result<(), CronError> {
        let cron = Cron {
            id: uuid::Uuid::new_v4().to_string(),
            action: POLL_MIRROR.into(),
            schedule: DEFAULT_POLL_SCHEDULE.into(),
            retries: 0,
            capacity_map: BTreeMap::new(),
            parameters: BTreeMap::new(),
            deadline: String::new(),
            stop_timeout: String::new(),
            next_run: next_run(DEFAULT_POLL_SCHEDULE, Utc::now()),
        };
        self.crons.seed_cron(&cron).await?;
        Ok(())
    }

    /// Every cron, by action.
    pub async fn list(&self) -> Result<Vec<Cron>, CronError> {
        let now = Utc::now();
        let mut crons = self.crons.crons().await?;
        for cron in &mut crons {
            if cron.next_run.is_none() {
                cron.next_run = next_run(&cron.schedule, now);
            }
        }
        Ok(crons)
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
        let schedule = form.schedule.trim().to_string();
        let cron = Cron {
            id: uuid::Uuid::new_v4().to_string(),
            next_run: next_run(&schedule, Utc::now()),
            action: form.action.clone(),
            schedule,
            retries: form.retries,
            capacity_map: form.capacity_map,
            parameters: form.parameters,
            deadline: form.deadline.trim().to_string(),
            stop_timeout: form.stop_timeout,
        };
        self.crons.save_cron(&cron).await?;
        self.changed.notify_one();
        let cron = self.get(&form.action).await?;
        Ok(cron.expect("the cron was just saved"))
    }

    /// Deletes the cron of `action`; jobs it submitted are left alone.
    /// Returns whether it existed.
    pub async fn delete(&self, action: &str) -> Result<bool, CronError> {
        let existed = self.crons.delete_cron(action).await?;
        self.changed.notify_one();
        Ok(existed)
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

    /// Plans crons not planned yet, fires the due ones this replica
    /// claims, and returns how long until the earliest next run.
    async fn tick(&self, now: DateTime<Utc>) -> Result<Duration, CronError> {
        let mut earliest: Option<DateTime<Utc>> = None;
        for cron in self.crons.crons().await? {
            let next = next_run(&cron.schedule, now);
            let planned = match cron.next_run {
                // New, or from a version that did not store it.
                None if next.is_some() => {
                    self.crons.claim_cron(&cron.action, None, next).await?;
                    next
                }
                None => None,
                Some(due) if due <= now => {
                    if self.crons.claim_cron(&cron.action, Some(due), next).await? {
                        let late = (now - due).to_std().unwrap_or_default();
                        if late > MISSED_AFTER {
                            tracing::info!(action = %cron.action, due = %due, "cron run missed while no server ran; not caught up");
                        } else {
                            self.fire(&cron, now).await;
                        }
                    }
                    next
                }
                Some(due) => Some(due),
            };
            if let Some(t) = planned {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
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
