//! [`Metrics`]: counters the engine updates as it works, for an embedder to
//! export (mirror-server renders them as Prometheus text at `/metrics`).
//!
//! Who updates what:
//! - [`crate::Mirror`] counts finished jobs (by status, with their
//!   duration), poll results per policy, tags skipped and failed, and the
//!   last success of each policy;
//! - the HTTP remote client (`remote/http.rs`) counts `429 Too Many
//!   Requests` answers, retried or not;
//! - bytes, blobs and tags copied and blob retries come from each job's
//!   [`Progress`](crate::Progress): folded into the totals when the job
//!   ends, and added live for running jobs by [`crate::Mirror::metrics`].
//!
//! One `Metrics` belongs to one `Mirror` (and the connector it was opened
//! with). Counters only grow while the process runs; they start at zero on
//! each start, except the last success of a policy, which `Mirror::metrics`
//! also reads from the stored policy status. Nothing here knows about HTTP
//! servers or Prometheus.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::JobStatus;
use crate::policy::PollMirroringPolicy;
use crate::progress::ProgressSnapshot;

/// Upper bounds (seconds) of the job duration histogram's buckets; the
/// implicit last bucket is `+Inf`.
pub const JOB_DURATION_BUCKETS: [f64; 9] = [
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
];

/// How one poll of one policy ended (the policy's `lastStatus.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollResult {
    /// Every tag to copy was copied.
    Success,
    /// Some tags were copied, some failed.
    Partial,
    /// Nothing could be copied (listing failed, or every tag failed).
    Failed,
    /// The poll was canceled.
    Canceled,
}

impl PollResult {
    /// Every result, in a stable order.
    pub const ALL: [PollResult; 4] = [
        PollResult::Success,
        PollResult::Partial,
        PollResult::Failed,
        PollResult::Canceled,
    ];

    /// Lower-case name, as a label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PollResult::Success => "success",
            PollResult::Partial => "partial",
            PollResult::Failed => "failed",
            PollResult::Canceled => "canceled",
        }
    }

    /// The policy status code it records (`lastStatus.code`).
    pub fn code(self) -> &'static str {
        match self {
            PollResult::Success => "SUCCESS",
            PollResult::Partial => "PARTIAL",
            PollResult::Failed => "FAILED",
            PollResult::Canceled => "CANCELED",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const FINAL_STATUSES: [JobStatus; 3] = [JobStatus::Done, JobStatus::Errored, JobStatus::Canceled];

/// A histogram of durations in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Per bucket of [`JOB_DURATION_BUCKETS`]: how many observations were
    /// at most its bound (cumulative, as Prometheus expects).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// The last success of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySuccess {
    /// The policy.
    pub policy_id: String,
    /// Its local repository.
    pub local_repository: String,
    /// When a poll of it last ended with `SUCCESS`; `None` if never (that
    /// this process or the stored status knows of).
    pub last_success: Option<DateTime<Utc>>,
}

/// A point-in-time reading of every counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Polls by result.
    pub polls: Vec<(PollResult, u64)>,
    /// Finished jobs by final status.
    pub jobs: Vec<(JobStatus, u64)>,
    /// Jobs running in this process now.
    pub jobs_running: u64,
    /// Durations of finished jobs.
    pub job_durations: Histogram,
    /// Bytes, blobs and tags copied, blobs reused, blob retries: finished
    /// jobs plus the progress of running ones.
    pub copied: ProgressSnapshot,
    /// Tags left alone because they were unchanged.
    pub tags_unchanged: u64,
    /// Tags left alone because they predate a "Save"-only policy.
    pub tags_preexisting: u64,
    /// Tags whose copy failed.
    pub tags_failed: u64,
    /// `429 Too Many Requests` answers received from remote registries
    /// (each one, including those retried successfully).
    pub rate_limited: u64,
    /// The last success of every policy, sorted by policy ID.
    pub policies: Vec<PolicySuccess>,
    /// What each registry last said of its pull budget, sorted by host.
    pub pull_budgets: Vec<(String, PullBudget)>,
    /// Garbage collections and what they removed.
    pub gc: GcTotals,
    /// What pull-through caches did.
    pub cache: CacheTotals,
    /// The server's bandwidth limit for copies from remotes, in bytes per
    /// second (0: none).
    pub bandwidth_limit: u64,
}

/// What garbage collections did since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcTotals {
    /// Collections that finished (dry runs included).
    pub runs: u64,
    /// Of them, dry runs.
    pub dry_runs: u64,
    /// Bytes deleted from the blob store.
    pub bytes_freed: u64,
    /// Blobs deleted from the blob store.
    pub blobs_removed: u64,
    /// Manifests removed from repositories.
    pub manifests_removed: u64,
    /// What the last dry run found it would free, in bytes.
    pub last_dry_run_bytes: u64,
}

/// What pull-through caches did since the process started
/// ([`crate::pull_through`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTotals {
    /// Pulls served from the stores (tags within their TTL or confirmed
    /// by a `HEAD`, manifests and blobs held).
    pub hits: u64,
    /// Manifests and blobs fetched from an upstream.
    pub misses: u64,
    /// Pulls of a blob that joined a fetch already under way.
    pub joined: u64,
    /// Tags served from the stores because the upstream failed.
    pub stale_served: u64,
    /// Blob bytes read from upstreams.
    pub upstream_bytes: u64,
}

/// A registry's pull budget as it last announced it (Docker Hub's
/// `ratelimit-limit` and `ratelimit-remaining` headers, `N;w=SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullBudget {
    /// Pulls allowed per window, if announced.
    pub limit: Option<u64>,
    /// Pulls left in the current window, if announced.
    pub remaining: Option<u64>,
    /// The window's length, if announced.
    pub window: Option<std::time::Duration>,
    /// When `remaining` was read.
    pub observed: std::time::Instant,
}

impl PullBudget {
    /// Whether the pulls left are at or under `floor_percent` of the limit,
    /// and the reading is still within its window.
    pub fn is_low(&self, floor_percent: u8, now: std::time::Instant) -> bool {
        let (Some(limit), Some(remaining)) = (self.limit, self.remaining) else {
            return false;
        };
        let fresh = self
            .window
            .is_none_or(|w| now.saturating_duration_since(self.observed) < w);
        fresh && remaining * 100 <= limit * u64::from(floor_percent)
    }
}

/// Whether a pull may start now ([`Metrics::start_pull`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullGate {
    /// Start it; it is counted as under way until [`Metrics::pull_ended`].
    Go,
    /// Wait for a pull under way to end (and its answer to say how many
    /// pulls are left), then ask again.
    Wait,
    /// Defer it: what is left, less the pulls under way, is at or under
    /// the reserve.
    Low(PullBudget),
}

/// Parses a `ratelimit-*` header value: `100;w=21600` → `(100, 6 h)`.
pub fn parse_rate_header(value: &str) -> Option<(u64, Option<std::time::Duration>)> {
    let mut parts = value.split(';');
    let n = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.parse().ok())
        .map(std::time::Duration::from_secs);
    Some((n, window))
}

/// Totals guarded together, so that a job's progress moves from "running"
/// to "finished" atomically with respect to a reading.
#[derive(Debug, Default)]
struct Finished {
    copied: ProgressSnapshot,
    jobs: [u64; 3],
    duration_buckets: [u64; JOB_DURATION_BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
}

/// The engine's counters. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    polls: [AtomicU64; 4],
    tags_unchanged: AtomicU64,
    tags_preexisting: AtomicU64,
    tags_failed: AtomicU64,
    rate_limited: AtomicU64,
    finished: Mutex<Finished>,
    /// Policy ID → last `SUCCESS` seen by this process.
    last_success: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Registry host → its last announced pull budget.
    pull_budgets: Mutex<HashMap<String, PullBudget>>,
    /// Pulls under way, by host (locked after `pull_budgets`).
    pulls_in_flight: Mutex<HashMap<String, u64>>,
    gc: Mutex<GcTotals>,
    cache: Mutex<CacheTotals>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// `a + b`, field by field.
pub(crate) fn sum(a: ProgressSnapshot, b: ProgressSnapshot) -> ProgressSnapshot {
    ProgressSnapshot {
        bytes_copied: a.bytes_copied + b.bytes_copied,
        blobs_copied: a.blobs_copied + b.blobs_copied,
        blobs_reused: a.blobs_reused + b.blobs_reused,
        tags_copied: a.tags_copied + b.tags_copied,
        tags_planned: a.tags_planned + b.tags_planned,
        retries: a.retries + b.retries,
        bandwidth_wait_ms: a.bandwidth_wait_ms + b.bandwidth_wait_ms,
    }
}

/// `after - before`, field by field (never negative).
pub(crate) fn delta(after: ProgressSnapshot, before: ProgressSnapshot) -> ProgressSnapshot {
    ProgressSnapshot {
        bytes_copied: after.bytes_copied.saturating_sub(before.bytes_copied),
        blobs_copied: after.blobs_copied.saturating_sub(before.blobs_copied),
        blobs_reused: after.blobs_reused.saturating_sub(before.blobs_reused),
        tags_copied: after.tags_copied.saturating_sub(before.tags_copied),
        tags_planned: after.tags_planned.saturating_sub(before.tags_planned),
        retries: after.retries.saturating_sub(before.retries),
        bandwidth_wait_ms: after
            .bandwidth_wait_ms
            .saturating_sub(before.bandwidth_wait_ms),
    }
}

impl Metrics {
    /// Counts one finished garbage collection.
    pub fn record_gc(&self, report: &crate::gc::GcReport) {
        let mut gc = self.gc.lock().unwrap_or_else(|p| p.into_inner());
        gc.runs += 1;
        if report.dry_run {
            gc.dry_runs += 1;
            gc.last_dry_run_bytes = report.bytes_freed;
        } else {
            gc.bytes_freed += report.bytes_freed;
            gc.blobs_removed += report.blobs_removed;
            gc.manifests_removed += report.manifests_removed;
        }
    }

    /// Counts what a pull through a cache did.
    pub fn record_cache(&self, f: impl FnOnce(&mut CacheTotals)) {
        f(&mut self.cache.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// What pull-through caches did so far.
    pub fn cache_totals(&self) -> CacheTotals {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What garbage collections did so far.
    pub fn gc_totals(&self) -> GcTotals {
        *self.gc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what `host` said of its pull budget in a response's
    /// `ratelimit-limit` / `ratelimit-remaining` headers (either may be
    /// absent).
    pub fn record_pull_budget(&self, host: &str, limit: Option<&str>, remaining: Option<&str>) {
        let limit = limit.and_then(parse_rate_header);
        let remaining = remaining.and_then(parse_rate_header);
        if limit.is_none() && remaining.is_none() {
            return;
        }
        let now = std::time::Instant::now();
        let mut budgets = self.pull_budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = budgets.entry(host.to_string()).or_insert(PullBudget {
            limit: None,
            remaining: None,
            window: None,
            observed: now,
        });
        if let Some((n, w)) = limit {
            b.limit = Some(n);
            b.window = w.or(b.window);
        }
        if let Some((n, w)) = remaining {
            b.remaining = Some(n);
            b.window = w.or(b.window);
            b.observed = now;
        }
    }

    /// Whether a pull (a manifest GET) from `host` may start now, keeping
    /// `floor_percent` of an announced budget in reserve: the pulls under
    /// way count as spent, and while the registry has announced a limit but
    /// not yet what is left, one pull at a time goes (its answer says).
    /// Without an announced limit (or with `floor_percent` 0), always
    /// [`PullGate::Go`]. A `Go` is counted until [`Metrics::pull_ended`].
    pub fn start_pull(&self, host: &str, floor_percent: u8) -> PullGate {
        let budgets = self.pull_budgets.lock().unwrap_or_else(|p| p.into_inner());
        let mut flying = self
            .pulls_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let under_way = flying.get(host).copied().unwrap_or(0);
        let gate = match budgets.get(host) {
            Some(b) if floor_percent > 0 && b.limit.is_some() => {
                let left = PullBudget {
                    remaining: b.remaining.map(|r| r.saturating_sub(under_way)),
                    ..*b
                };
                if left.is_low(floor_percent, std::time::Instant::now()) {
                    if under_way > 0 {
                        PullGate::Wait
                    } else {
                        PullGate::Low(*b)
                    }
                } else if b.remaining.is_none() && under_way > 0 {
                    PullGate::Wait
                } else {
                    PullGate::Go
                }
            }
            _ => PullGate::Go,
        };
        if gate == PullGate::Go {
            *flying.entry(host.to_string()).or_insert(0) += 1;
        }
        gate
    }

    /// Ends a pull [`Metrics::start_pull`] let start.
    pub fn pull_ended(&self, host: &str) {
        let mut flying = self
            .pulls_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = flying.get_mut(host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                flying.remove(host);
            }
        }
    }

    /// The last pull budget `host` announced.
    pub fn pull_budget(&self, host: &str) -> Option<PullBudget> {
        self.pull_budgets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .copied()
    }

    /// Counts one `429 Too Many Requests` from a remote registry.
    pub fn count_rate_limited(&self) {
        add(&self.rate_limited, 1);
    }

    /// Counts the end of one poll of `policy_id`; a success also records
    /// `at` as its last success.
    pub fn record_poll(&self, policy_id: &str, result: PollResult, at: DateTime<Utc>) {
        add(&self.polls[result.index()], 1);
        if result == PollResult::Success {
            self.last_success
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(policy_id.to_string(), at);
        }
    }

    /// Counts tags a finished poll left alone or failed to copy.
    pub fn record_tags(&self, unchanged: u64, preexisting: u64, failed: u64) {
        add(&self.tags_unchanged, unchanged);
        add(&self.tags_preexisting, preexisting);
        add(&self.tags_failed, failed);
    }

    /// Records a finished job: its final status, how long it ran and what
    /// it copied. The caller must stop counting the job's progress as
    /// running in the same critical section (see `Mirror::execute`).
    pub(crate) fn record_job(&self, status: JobStatus, ran: Duration, copied: ProgressSnapshot) {
        let mut f = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = FINAL_STATUSES.iter().position(|s| *s == status) {
            f.jobs[i] += 1;
        }
        let secs = ran.as_secs_f64();
        for (i, bound) in JOB_DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                f.duration_buckets[i] += 1;
            }
        }
        f.duration_sum += secs;
        f.duration_count += 1;
        f.copied = sum(f.copied, copied);
    }

    /// Reads every counter; `running` is the progress of jobs still
    /// running, added to the finished totals; `policies` are the stored
    /// policies, whose last success is this process's record or, when the
    /// last stored status is `SUCCESS`, its timestamp.
    pub(crate) fn snapshot(
        &self,
        running: &[ProgressSnapshot],
        policies: &[PollMirroringPolicy],
    ) -> MetricsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let f = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let copied = running.iter().fold(f.copied, |acc, p| sum(acc, *p));
        let known = self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        let mut policies: Vec<PolicySuccess> = policies
            .iter()
            .map(|p| {
                let stored = (p.last_status.code == PollResult::Success.code())
                    .then_some(p.last_status.timestamp);
                PolicySuccess {
                    policy_id: p.id.clone(),
                    local_repository: p.local_repository.to_string(),
                    last_success: stored.max(known.get(&p.id).copied()),
                }
            })
            .collect();
        policies.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
        MetricsSnapshot {
            polls: PollResult::ALL
                .iter()
                .map(|r| (*r, g(&self.polls[r.index()])))
                .collect(),
            jobs: FINAL_STATUSES.iter().copied().zip(f.jobs).collect(),
            jobs_running: running.len() as u64,
            job_durations: Histogram {
                buckets: JOB_DURATION_BUCKETS
                    .iter()
                    .copied()
                    .zip(f.duration_buckets)
                    .collect(),
                sum: f.duration_sum,
                count: f.duration_count,
            },
            copied,
            tags_unchanged: g(&self.tags_unchanged),
            tags_preexisting: g(&self.tags_preexisting),
            tags_failed: g(&self.tags_failed),
            rate_limited: g(&self.rate_limited),
            policies,
            pull_budgets: {
                let budgets = self.pull_budgets.lock().unwrap_or_else(|p| p.into_inner());
                let mut v: Vec<_> = budgets.iter().map(|(h, b)| (h.clone(), *b)).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            },
            gc: self.gc_totals(),
            cache: self.cache_totals(),
            // Set by `Mirror::metrics`, which knows the settings.
            bandwidth_limit: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_under_way_count_against_an_announced_budget() {
        let m = Metrics::default();
        let h = "hub.example";
        assert_eq!(m.start_pull(h, 10), PullGate::Go, "nothing announced");
        m.pull_ended(h);
        // A limit without what is left: one pull at a time.
        m.record_pull_budget(h, Some("100;w=21600"), None);
        assert_eq!(m.start_pull(h, 10), PullGate::Go);
        assert_eq!(m.start_pull(h, 10), PullGate::Wait);
        // Its answer: 12 left. With it still under way, 11: one more may go.
        m.record_pull_budget(h, None, Some("12;w=21600"));
        assert_eq!(m.start_pull(h, 10), PullGate::Go);
        assert_eq!(m.start_pull(h, 10), PullGate::Wait, "12 - 2 under way");
        m.pull_ended(h);
        m.pull_ended(h);
        m.record_pull_budget(h, None, Some("10;w=21600"));
        assert!(matches!(m.start_pull(h, 10), PullGate::Low(_)));
        assert_eq!(m.start_pull(h, 0), PullGate::Go, "no reserve kept");
    }

    fn progress(bytes: u64, retries: u64) -> ProgressSnapshot {
        ProgressSnapshot {
            bytes_copied: bytes,
            retries,
            ..Default::default()
        }
    }

    #[test]
    fn finished_and_running_jobs_add_up() {
        let m = Metrics::default();
        m.record_job(JobStatus::Done, Duration::from_secs(3), progress(100, 1));
        m.record_job(
            JobStatus::Errored,
            Duration::from_secs(4000),
            progress(5, 0),
        );
        m.count_rate_limited();
        m.record_poll("p1", PollResult::Success, Utc::now());
        m.record_poll("p1", PollResult::Failed, Utc::now());
        m.record_tags(2, 1, 0);
        let s = m.snapshot(&[progress(10, 2)], &[]);
        assert_eq!(s.copied.bytes_copied, 115);
        assert_eq!(s.copied.retries, 3);
        assert_eq!(s.jobs_running, 1);
        assert_eq!(
            s.jobs,
            [
                (JobStatus::Done, 1),
                (JobStatus::Errored, 1),
                (JobStatus::Canceled, 0)
            ]
        );
        let buckets: Vec<u64> = s.job_durations.buckets.iter().map(|b| b.1).collect();
        assert_eq!(buckets, [0, 1, 1, 1, 1, 1, 1, 2, 2]);
        assert_eq!(s.job_durations.count, 2);
        assert_eq!(s.job_durations.sum, 4003.0);
        assert_eq!(s.polls[0], (PollResult::Success, 1));
        assert_eq!(s.polls[2], (PollResult::Failed, 1));
        assert_eq!((s.tags_unchanged, s.tags_preexisting), (2, 1));
        assert_eq!(s.rate_limited, 1);
    }

    #[test]
    fn delta_never_goes_negative() {
        assert_eq!(delta(progress(5, 0), progress(7, 0)).bytes_copied, 0);
        assert_eq!(delta(progress(9, 3), progress(7, 1)), progress(2, 2));
    }

    #[test]
    fn a_pull_budget_is_low_at_the_floor_while_its_window_lasts() {
        assert_eq!(
            parse_rate_header("100;w=21600"),
            Some((100, Some(std::time::Duration::from_secs(21600))))
        );
        assert_eq!(parse_rate_header("76"), Some((76, None)));
        assert_eq!(parse_rate_header("many"), None);
        let m = Metrics::default();
        m.record_pull_budget("hub", Some("100;w=60"), None);
        m.record_pull_budget("hub", None, Some("11;w=60"));
        let now = std::time::Instant::now();
        let b = m.pull_budget("hub").unwrap();
        assert!(!b.is_low(10, now), "11 of 100 is above 10%");
        m.record_pull_budget("hub", None, Some("10;w=60"));
        let b = m.pull_budget("hub").unwrap();
        assert!(b.is_low(10, now));
        assert!(!b.is_low(0, now), "0% never defers");
        assert!(
            !b.is_low(10, now + std::time::Duration::from_secs(61)),
            "a reading older than its window is stale"
        );
        assert_eq!(m.snapshot(&[], &[]).pull_budgets.len(), 1);
    }
}
