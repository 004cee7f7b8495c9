//! Jobs: DTR's job record and its state machine.
//!
//! [`transition`] is pure: it decides whether an event may move a job from
//! one status to another. Stores persist jobs; the worker (`worker.rs`)
//! drives them. Nothing here does IO.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::ErrorKind;
use serde::{Deserialize, Serialize};

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A job record, with DTR's fields (as the API writes and a client reads it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// When the job is canceled if still running (written RFC 3339, empty
    /// for none).
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    #[serde(
        default,
        serialize_with = "serialize_deadline",
        deserialize_with = "deserialize_deadline"
    )]
    pub deadline: Option<DateTime<Utc>>,
    /// How long a cancel may take before the job is abandoned (written
    /// `30s`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    #[serde(
        default = "default_stop_timeout",
        serialize_with = "serialize_duration",
        deserialize_with = "deserialize_duration"
    )]
    pub stop_timeout: Duration,
    /// Last heartbeat of the worker running it.
    #[serde(default)]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Whether a cancel was requested and not yet acted on.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Why the job ended `errored` or `canceled` (absent otherwise).
    #[serde(default, rename = "error", skip_serializing_if = "Option::is_none")]
    pub failure: Option<JobFailure>,
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
    /// When to cancel it if still running; `None` for never.
    pub deadline: Option<DateTime<Utc>>,
}

/// How long a cancel may take before a job is abandoned (DTR's default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn serialize_deadline<S: serde::Serializer>(
    d: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(t) => s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_str(""),
    }
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn default_stop_timeout() -> Duration {
    DEFAULT_STOP_TIMEOUT
}

/// Reads what [`serialize_deadline`] writes: empty for none, else RFC 3339.
fn deserialize_deadline<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    match s.trim() {
        "" => Ok(None),
        t => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("deadline {t:?}: {e}"))),
    }
}

/// Reads what [`serialize_duration`] writes (`30s`, `1h30m`; `0s`).
fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim() {
        "0s" => Ok(Duration::ZERO),
        t => parse_duration(t).ok_or_else(|| {
            serde::de::Error::custom(format!("{t:?} is not a duration such as \"30s\""))
        }),
    }
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
            deadline: submission.deadline,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            heartbeat_at: None,
            cancel_requested: false,
            failure: None,
        }
    }
}

/// Why a job did not end `done`: a kind (for API statuses and Python
/// exception classes) and a message naming the policy and the cause.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    /// What sort of failure.
    pub kind: ErrorKind,
    /// What failed and why.
    pub message: String,
}

impl JobFailure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        JobFailure {
            kind,
            message: message.into(),
        }
    }

    /// The job was canceled (by request, deadline or shutdown).
    pub fn canceled() -> Self {
        JobFailure::new(ErrorKind::Canceled, "canceled")
    }

    /// One failure for several: the first one's kind, every message.
    pub(crate) fn combine(failures: Vec<JobFailure>) -> Option<JobFailure> {
        let kind = failures.first()?.kind;
        Some(JobFailure::new(
            kind,
            failures
                .into_iter()
                .map(|f| f.message)
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Parses a duration such as `90s`, `30m`, `2h` or `1h30m`.
///
/// ```
/// use mirror_core::job::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Some(std::time::Duration::from_secs(5400)));
/// assert_eq!(parse_duration("10"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
        any = true;
    }
    (any && digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Turns a job deadline as given to the API (empty, RFC 3339, or a
/// duration from `now`) into a time, or `None` for no deadline.
pub fn resolve_deadline(
    deadline: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    let d = deadline.trim();
    if d.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(d) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let dur = parse_duration(d).ok_or_else(|| {
        format!("{d:?} is neither an RFC 3339 time nor a duration such as \"30m\" or \"2h\"")
    })?;
    let until = now + chrono::Duration::from_std(dur).map_err(|e| e.to_string())?;
    Ok(Some(until))
}

/// A duration as the API writes it: `90s`, `30m`, `2h`, `1h30m`.
///
/// ```
/// use mirror_core::job::format_duration;
/// assert_eq!(format_duration(std::time::Duration::from_secs(5400)), "1h30m");
/// assert_eq!(format_duration(std::time::Duration::from_secs(30)), "30s");
/// ```
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// One line of a job's log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    fn check_duration(s: &str, secs: Option<u64>) {
        assert_eq!(parse_duration(s), secs.map(Duration::from_secs), "{s}");
    }

    #[test]
    fn durations() {
        check_duration("90s", Some(90));
        check_duration("30m", Some(1800));
        check_duration("1h30m", Some(5400));
        check_duration("2h", Some(7200));
        check_duration("", None);
        check_duration("0s", None);
        check_duration("10", None);
        check_duration("1d", None);
        check_duration("m", None);
    }

    #[test]
    fn a_job_reads_back_what_it_writes() {
        use chrono::SubsecRound;
        let mut job = Job::new(&JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: [(PARAM_POLICY_ID.to_string(), "p1".to_string())].into(),
            ..Default::default()
        });
        for deadline in [None, Some(now().trunc_subsecs(0))] {
            job.deadline = deadline;
            job.stop_timeout = Duration::from_secs(5400);
            let json = serde_json::to_value(&job).unwrap();
            assert_eq!(json["stopTimeout"], "1h30m");
            let back: Job = serde_json::from_value(json).unwrap();
            assert_eq!(back, job);
        }
        let bad = serde_json::json!({"deadline": "tomorrow"});
        let mut json = serde_json::to_value(&job).unwrap();
        json["deadline"] = bad["deadline"].clone();
        assert!(serde_json::from_value::<Job>(json).is_err());
    }

    #[test]
    fn deadlines() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        assert_eq!(resolve_deadline("", now).unwrap(), None);
        assert_eq!(
            resolve_deadline("30m", now).unwrap(),
            at("2024-01-01T10:30:00Z")
        );
        assert_eq!(
            resolve_deadline("2024-02-01T00:00:00+01:00", now).unwrap(),
            at("2024-01-31T23:00:00Z")
        );
        assert!(resolve_deadline("soon", now).is_err());
    }
}
