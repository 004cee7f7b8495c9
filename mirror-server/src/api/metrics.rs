//! `GET /metrics`: mirror-core's counters ([`mirror_core::metrics`]), the
//! server's open uploads and its password checks, in the Prometheus text
//! format (0.0.4).
//!
//! Server administrators only (Basic auth, as everywhere): the labels name
//! policies and private repositories. Point Prometheus at it with
//! `basic_auth` (an access token works as the password). The counters
//! start at zero when the server starts; the last success of a policy
//! survives restarts through the stored policy status.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mirror_core::MetricsSnapshot;
use mirror_core::metrics::PullBudget;

use super::extract::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// The media type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let snapshot = state.mirror.metrics().await?;
    let server = ServerCounts {
        uploads: state.uploads.open_count().await?,
        password_checks: state.accounts.password_checks(),
        webhook_deliveries: state.webhooks.counts.snapshot(),
    };
    let text = render(&snapshot, server);
    let mut resp = text.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(resp)
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Writes one metric family: `HELP`, `TYPE` and its samples
/// (`(labels, value)`, labels already formatted as `{k="v"}` or empty).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn one(value: u64) -> Vec<(String, String)> {
    vec![(String::new(), value.to_string())]
}

/// The server's own numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCounts {
    /// Chunked blob push sessions open now (on every replica).
    pub uploads: u64,
    /// Argon2id password verifications since start.
    pub password_checks: u64,
    /// Webhook delivery attempts by this process since start: delivered,
    /// to be retried, given up.
    pub webhook_deliveries: [u64; 3],
}

/// Renders a snapshot and the server's counts (pure).
pub fn render(m: &MetricsSnapshot, server: ServerCounts) -> String {
    let mut out = String::new();
    let polls: Vec<_> = m
        .polls
        .iter()
        .map(|(r, n)| (format!("{{result=\"{}\"}}", r.as_str()), n.to_string()))
        .collect();
    family(
        &mut out,
        "regmirror_polls_total",
        "counter",
        "Polls of one policy that finished, by result.",
        &polls,
    );
    family(
        &mut out,
        "regmirror_gc_runs_total",
        "counter",
        "Garbage collections (onlinegc jobs) that finished, by mode.",
        &[
            (
                "{mode=\"real\"}".into(),
                (m.gc.runs - m.gc.dry_runs).to_string(),
            ),
            ("{mode=\"dry_run\"}".into(), m.gc.dry_runs.to_string()),
        ],
    );
    family(
        &mut out,
        "regmirror_gc_bytes_freed_total",
        "counter",
        "Bytes garbage collection deleted from the blob store.",
        &one(m.gc.bytes_freed),
    );
    family(
        &mut out,
        "regmirror_gc_blobs_removed_total",
        "counter",
        "Blobs garbage collection deleted from the blob store.",
        &one(m.gc.blobs_removed),
    );
    family(
        &mut out,
        "regmirror_gc_manifests_removed_total",
        "counter",
        "Untagged manifests garbage collection removed from repositories.",
        &one(m.gc.manifests_removed),
    );
    family(
        &mut out,
        "regmirror_gc_dry_run_reclaimable_bytes",
        "gauge",
        "Bytes the last dry run found it would free.",
        &one(m.gc.last_dry_run_bytes),
    );
    for (name, help, value) in [
        (
            "regmirror_cache_hits_total",
            "Pulls through proxy caches served from the stores.",
            m.cache.hits,
        ),
        (
            "regmirror_cache_misses_total",
            "Manifests and blobs proxy caches fetched from their upstreams.",
            m.cache.misses,
        ),
        (
            "regmirror_cache_joined_total",
            "Blob pulls that joined an upstream fetch already under way.",
            m.cache.joined,
        ),
        (
            "regmirror_cache_stale_served_total",
            "Cached tags served because the upstream failed (stale-if-error).",
            m.cache.stale_served,
        ),
        (
            "regmirror_cache_upstream_bytes_total",
            "Blob bytes proxy caches read from their upstreams.",
            m.cache.upstream_bytes,
        ),
    ] {
        family(&mut out, name, "counter", help, &one(value));
    }
    family(
        &mut out,
        "regmirror_tags_copied_total",
        "counter",
        "Tags copied and published.",
        &one(m.copied.tags_copied),
    );
    family(
        &mut out,
        "regmirror_tags_skipped_total",
        "counter",
        "Tags a finished poll left alone: unchanged, or older than a policy saved without initial evaluation.",
        &[
            (
                "{reason=\"unchanged\"}".into(),
                m.tags_unchanged.to_string(),
            ),
            (
                "{reason=\"preexisting\"}".into(),
                m.tags_preexisting.to_string(),
            ),
        ],
    );
    family(
        &mut out,
        "regmirror_tags_failed_total",
        "counter",
        "Tags whose copy failed.",
        &one(m.tags_failed),
    );
    family(
        &mut out,
        "regmirror_bytes_copied_total",
        "counter",
        "Blob and manifest bytes written to the store by polls (running ones included).",
        &one(m.copied.bytes_copied),
    );
    family(
        &mut out,
        "regmirror_blobs_copied_total",
        "counter",
        "Blobs copied from remote registries.",
        &one(m.copied.blobs_copied),
    );
    family(
        &mut out,
        "regmirror_blobs_reused_total",
        "counter",
        "Blobs a poll needed that were already stored (not fetched).",
        &one(m.copied.blobs_reused),
    );
    family(
        &mut out,
        "regmirror_blob_retries_total",
        "counter",
        "Blob transfers resumed or retried after a failure.",
        &one(m.copied.retries),
    );
    family(
        &mut out,
        "regmirror_bandwidth_wait_seconds_total",
        "counter",
        "Time poll transfers waited for a bandwidth limit (the server's or a policy's), summed over concurrent transfers.",
        &[(
            String::new(),
            format!("{:.3}", m.copied.bandwidth_wait_ms as f64 / 1000.0),
        )],
    );
    family(
        &mut out,
        "regmirror_bandwidth_limit_bytes_per_second",
        "gauge",
        "The server's bandwidth limit for copies from remote registries (0: none).",
        &one(m.bandwidth_limit),
    );
    family(
        &mut out,
        "regmirror_remote_rate_limited_total",
        "counter",
        "429 Too Many Requests answers received from remote registries.",
        &one(m.rate_limited),
    );
    let budget = |value: fn(&PullBudget) -> Option<u64>| -> Vec<(String, String)> {
        m.pull_budgets
            .iter()
            .filter_map(|(host, b)| {
                value(b).map(|n| (format!("{{registry=\"{}\"}}", label(host)), n.to_string()))
            })
            .collect()
    };
    family(
        &mut out,
        "regmirror_remote_pulls_remaining",
        "gauge",
        "Pulls a registry last said were left in its window (ratelimit-remaining).",
        &budget(|b| b.remaining),
    );
    family(
        &mut out,
        "regmirror_remote_pulls_limit",
        "gauge",
        "Pulls a registry allows per window (ratelimit-limit).",
        &budget(|b| b.limit),
    );
    let jobs: Vec<_> = m
        .jobs
        .iter()
        .map(|(s, n)| (format!("{{status=\"{}\"}}", s.as_str()), n.to_string()))
        .collect();
    family(
        &mut out,
        "regmirror_jobs_total",
        "counter",
        "Jobs this server ran to the end, by final status.",
        &jobs,
    );
    family(
        &mut out,
        "regmirror_jobs_running",
        "gauge",
        "Jobs running on this server now.",
        &one(m.jobs_running),
    );
    let h = &m.job_durations;
    let _ = writeln!(
        out,
        "# HELP regmirror_job_duration_seconds How long finished jobs ran.\n# TYPE regmirror_job_duration_seconds histogram"
    );
    for (le, n) in &h.buckets {
        let _ = writeln!(
            out,
            "regmirror_job_duration_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "regmirror_job_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "regmirror_job_duration_seconds_sum {}", h.sum);
    let _ = writeln!(out, "regmirror_job_duration_seconds_count {}", h.count);
    let successes: Vec<_> = m
        .policies
        .iter()
        .filter_map(|p| {
            let at = p.last_success?;
            Some((
                format!(
                    "{{policy=\"{}\",repository=\"{}\"}}",
                    label(&p.policy_id),
                    label(&p.local_repository)
                ),
                format!("{:.3}", at.timestamp_millis() as f64 / 1000.0),
            ))
        })
        .collect();
    family(
        &mut out,
        "regmirror_policy_last_success_timestamp_seconds",
        "gauge",
        "When a poll of the policy last succeeded (Unix time); policies that never succeeded are absent.",
        &successes,
    );
    family(
        &mut out,
        "regmirror_upload_sessions",
        "gauge",
        "Chunked blob push sessions open now, on every replica sharing the database.",
        &one(server.uploads),
    );
    family(
        &mut out,
        "regmirror_password_checks_total",
        "counter",
        "Argon2id password verifications (logins not answered from the 60 s cache, or by a token).",
        &one(server.password_checks),
    );
    let [delivered, retried, failed] = server.webhook_deliveries;
    let deliveries: Vec<_> = [
        ("delivered", delivered),
        ("retried", retried),
        ("failed", failed),
    ]
    .into_iter()
    .map(|(r, n)| (format!("{{result=\"{r}\"}}"), n.to_string()))
    .collect();
    family(
        &mut out,
        "regmirror_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts by this replica: delivered (2xx), retried (429, 5xx, no answer; tried again later), failed (given up).",
        &deliveries,
    );
    out
}

#[cfg(test)]
mod tests {
    use mirror_core::metrics::{Histogram, PolicySuccess, PollResult};
    use mirror_core::{JobStatus, ProgressSnapshot};

    use super::*;

    #[test]
    fn renders_the_text_format() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
        let m = MetricsSnapshot {
            polls: vec![(PollResult::Success, 2), (PollResult::Failed, 1)],
            jobs: vec![(JobStatus::Done, 3)],
            jobs_running: 1,
            job_durations: Histogram {
                buckets: vec![(1.0, 1), (5.0, 3)],
                sum: 7.5,
                count: 3,
            },
            copied: ProgressSnapshot {
                bytes_copied: 1234,
                tags_copied: 4,
                retries: 2,
                ..Default::default()
            },
            tags_unchanged: 5,
            rate_limited: 6,
            policies: vec![
                PolicySuccess {
                    policy_id: "p\"1".into(),
                    local_repository: "a/b".into(),
                    last_success: Some(at),
                },
                PolicySuccess {
                    policy_id: "p-none".into(),
                    local_repository: "a/c".into(),
                    last_success: None,
                },
            ],
            pull_budgets: vec![(
                "https://index.docker.io".into(),
                PullBudget {
                    limit: Some(100),
                    remaining: Some(42),
                    window: None,
                    observed: std::time::Instant::now(),
                },
            )],
            ..Default::default()
        };
        let text = render(
            &m,
            ServerCounts {
                uploads: 7,
                password_checks: 3,
                webhook_deliveries: [4, 2, 1],
            },
        );
        for line in [
            "# TYPE regmirror_polls_total counter",
            "regmirror_polls_total{result=\"success\"} 2",
            "regmirror_polls_total{result=\"failed\"} 1",
            "regmirror_tags_copied_total 4",
            "regmirror_tags_skipped_total{reason=\"unchanged\"} 5",
            "regmirror_bytes_copied_total 1234",
            "regmirror_blob_retries_total 2",
            "regmirror_remote_rate_limited_total 6",
            "regmirror_jobs_total{status=\"done\"} 3",
            "regmirror_jobs_running 1",
            "# TYPE regmirror_job_duration_seconds histogram",
            "regmirror_job_duration_seconds_bucket{le=\"5\"} 3",
            "regmirror_job_duration_seconds_bucket{le=\"+Inf\"} 3",
            "regmirror_job_duration_seconds_sum 7.5",
            "regmirror_policy_last_success_timestamp_seconds{policy=\"p\\\"1\",repository=\"a/b\"} 1700000000.500",
            "regmirror_upload_sessions 7",
            "regmirror_password_checks_total 3",
            "regmirror_webhook_deliveries_total{result=\"retried\"} 2",
            "regmirror_remote_pulls_remaining{registry=\"https://index.docker.io\"} 42",
            "regmirror_remote_pulls_limit{registry=\"https://index.docker.io\"} 100",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(!text.contains("p-none"), "{text}");
        // Every sample line is `name{labels} value` with a numeric value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
