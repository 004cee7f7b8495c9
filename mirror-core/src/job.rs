//! Jobs: DTR's job record and its state machine.
//!
//! [`transition`] is pure: it decides whether an event may move a job from
//! one status to another. Stores persist jobs; the worker (`worker.rs`)
//! drives them. Nothing here does IO.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The `poll_mirror` action: evaluates every enabled poll mirroring policy,
/// or only the one named by the `policyID` parameter.
pub const POLL_MIRROR: &str = "poll_mirror";

/// The job parameter that limits a `poll_mirror` job to one policy.
pub const PARAM_POLICY_ID: &str = "policyID";

/// The current time at the precision stores keep (microseconds), so a
/// record reads back equal to what was written.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Scheduled, not yet claimed by a worker.
    Waiting,
    /// Claimed and running on a worker.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with an error.
    Errored,
    /// Stopped on request.
    Canceled,
}

impl JobStatus {
    /// The DTR spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Errored => "errored",
            JobStatus::Canceled => "canceled",
        }
    }

    /// Parses a status; DTR's documentation spellings (`error`, `cancel`,
    /// `worker_dead`, ...) are accepted too.
    ///
    /// ```
    /// use mirror_core::JobStatus;
    /// assert_eq!(JobStatus::parse("error"), Some(JobStatus::Errored));
    /// assert_eq!(JobStatus::parse("bogus"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => JobStatus::Waiting,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "errored" | "error" | "worker_dead" | "worker_shutdown" => JobStatus::Errored,
            "canceled" | "cancel" | "cancelled" | "cancel_request" | "deleted" => {
                JobStatus::Canceled
            }
            _ => return None,
        })
    }

    /// Whether the job has finished (no further transition).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Errored | JobStatus::Canceled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// A worker claims a waiting job.
    Claim,
    /// The work finished successfully.
    Succeed,
    /// The work failed.
    Fail,
    /// A cancel was requested (or the job was deleted).
    Cancel,
    /// The worker stopped heart-beating (crash): the job is given back to the
    /// queue when it has retries left, else it errors.
    WorkerLost {
        /// Whether the job may run again.
        retry: bool,
    },
}

/// An event that is not allowed in the job's current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} job cannot take the event {event:?}")]
pub struct InvalidTransition {
    /// The status the job was in.
    pub from: JobStatus,
    /// The refused event.
    pub event: JobEvent,
}

/// The status after `event`, or why it may not happen.
///
/// ```
/// use mirror_core::{job::{transition, JobEvent}, JobStatus};
/// assert_eq!(transition(JobStatus::Waiting, JobEvent::Claim), Ok(JobStatus::Running));
/// assert!(transition(JobStatus::Done, JobEvent::Claim).is_err());
/// ```
pub fn transition(from: JobStatus, event: JobEvent) -> Result<JobStatus, InvalidTransition> {
    use JobEvent::*;
    use JobStatus::*;
    let to = match (from, event) {
        (Waiting, Claim) => Running,
        (Running, Succeed) => Done,
        (Running, Fail) => Errored,
        (Waiting | Running, Cancel) => Canceled,
        (Running, WorkerLost { retry: true }) => Waiting,
        (Running, WorkerLost { retry: false }) => Errored,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// A job record, with DTR's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Identifier (UUID).
    pub id: String,
    /// The job this one retries, or empty.
    #[serde(rename = "retryFromID")]
    pub retry_from_id: String,
    /// The worker that claimed it, or empty.
    #[serde(rename = "workerID")]
    pub worker_id: String,
    /// Current status.
    pub status: JobStatus,
    /// When it may start.
    pub scheduled_at: DateTime<Utc>,
    /// Last change of any field.
    pub last_updated: DateTime<Utc>,
    /// What it does, e.g. [`POLL_MIRROR`].
    pub action: String,
    /// How many reruns remain after a worker loss.
    pub retries_left: i32,
    /// How many reruns were allowed.
    pub retries_total: i32,
    /// Action parameters, e.g. `policyID`.
    pub parameters: BTreeMap<String, String>,
    /// Deadline (RFC 3339) after which the job is canceled, empty for none.
    pub deadline: String,
    /// How long a cancel may take before the job is abandoned (e.g. `30s`).
    pub stop_timeout: String,
    /// Last heartbeat of the worker running it.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Whether a cancel was requested and not yet acted on.
    pub cancel_requested: bool,
}

/// What a caller submits to schedule a job (DTR's `JobSubmission`).
#[derive(Debug, Clone, Default)]
pub struct JobSubmission {
    /// The action, e.g. [`POLL_MIRROR`].
    pub action: String,
    /// Parameters.
    pub parameters: BTreeMap<String, String>,
    /// Reruns allowed after a worker crash.
    pub retries: i32,
    /// When to start; `None` means now.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Deadline, RFC 3339 or empty.
    pub deadline: String,
}

impl Job {
    /// A new waiting job for `submission`.
    pub fn new(submission: &JobSubmission) -> Self {
        let now = now();
        Job {
            id: uuid::Uuid::new_v4().to_string(),
            retry_from_id: String::new(),
            worker_id: String::new(),
            status: JobStatus::Waiting,
            scheduled_at: submission.scheduled_at.unwrap_or(now),
            last_updated: now,
            action: submission.action.clone(),
            retries_left: submission.retries,
            retries_total: submission.retries,
            parameters: submission.parameters.clone(),
            deadline: submission.deadline.clone(),
            stop_timeout: "30s".into(),
            heartbeat_at: None,
            cancel_requested: false,
        }
    }
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// 0-based position in the log.
    pub line_num: i64,
    /// The text.
    pub data: String,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this action (`None` = any).
    pub action: Option<String>,
    /// `Some(true)`: only waiting or running; `Some(false)`: only finished.
    pub running: Option<bool>,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Skip this many (newest first).
    pub start: usize,
    /// At most this many.
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::JobEvent::*;
    use super::JobStatus::*;
    use super::*;

    fn check(from: JobStatus, event: JobEvent, expected: Option<JobStatus>) {
        assert_eq!(transition(from, event).ok(), expected, "{from} + {event:?}");
    }

    #[test]
    fn state_machine_table() {
        check(Waiting, Claim, Some(Running));
        check(Waiting, Succeed, None);
        check(Waiting, Cancel, Some(Canceled));
        check(Running, Succeed, Some(Done));
        check(Running, Fail, Some(Errored));
        check(Running, Cancel, Some(Canceled));
        check(Running, Claim, None);
        check(Running, WorkerLost { retry: true }, Some(Waiting));
        check(Running, WorkerLost { retry: false }, Some(Errored));
        for done in [Done, Errored, Canceled] {
            for ev in [Claim, Succeed, Fail, Cancel, WorkerLost { retry: true }] {
                check(done, ev, None);
            }
        }
    }
}
