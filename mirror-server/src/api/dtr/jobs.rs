//! Jobs: submit, list, get (with live progress while it runs here),
//! cancel, delete, logs. Server administrators only, except that reading
//! and canceling one job is also open to the administrators of the
//! repository its policy mirrors into (`job_access`). The worker in
//! `lib.rs` runs what is submitted here.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mirror_core::{ErrorKind, Job, JobFilter, JobStatus, JobSubmission, Mirror};
use serde::Deserialize;
use serde_json::{Value, json};

use super::job_access::visible_job;
use super::paging::PageSize;
use crate::api::extract::{Admin, JsonBody, QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;
use mirror_core::job::resolve_deadline;

/// DTR's job JSON: mirror-core's `Job` plus the `capacityMap` DTR clients
/// expect (this server has no capacity model: always `{}`), and while the
/// job runs in this server, its live counters as `progress`
/// (`bytesCopied`, `blobsCopied`, `blobsReused`, `tagsCopied`,
/// `tagsPlanned`, `retries`).
fn job_json(mirror: &Mirror, job: &Job) -> Value {
    let mut v = serde_json::to_value(job).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.entry("capacityMap").or_insert_with(|| json!({}));
        let live = (job.status == JobStatus::Running)
            .then(|| mirror.progress(&job.id))
            .flatten();
        if let Some(progress) = live {
            obj.insert("progress".into(), json!(progress));
        }
    }
    v
}

/// DTR's `JobSubmission`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = JobSubmission)]
#[serde(rename_all = "camelCase")]
pub struct SubmitForm {
    /// `poll_mirror`, or `onlinegc` (garbage collection).
    action: String,
    /// `poll_mirror`: `policyID` to poll one policy; none polls every
    /// enabled policy. `onlinegc`: `dryRun` (`true`: report only),
    /// `gracePeriod` (`30m`, `2h`; default the server's `[gc]`
    /// `grace_period`), `deleteUntagged` (`true`: remove manifests no tag
    /// reaches).
    #[serde(default)]
    parameters: Option<BTreeMap<String, String>>,
    /// Reruns allowed after a worker loss (default 0).
    #[serde(default)]
    retries: Option<i32>,
    /// RFC 3339; empty or absent = now.
    #[serde(default)]
    scheduled_at: Option<String>,
    /// RFC 3339 or a duration from now (`30m`); empty = none.
    #[serde(default)]
    deadline: Option<String>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)] // accepted for DTR clients; no capacity model
    capacity_map: Option<BTreeMap<String, i64>>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)] // accepted for DTR clients; jobs stop cooperatively
    stop_timeout: Option<String>,
}

/// `POST /api/v0/jobs` → 202 with the waiting job.
pub async fn submit(
    State(state): State<AppState>,
    Admin(account): Admin,
    JsonBody(form): JsonBody<SubmitForm>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let scheduled_at = match form.scheduled_at.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    ApiError::field(
                        "INVALID_JOB",
                        "scheduledAt",
                        format!("{s:?} is not RFC 3339: {e}"),
                    )
                })?
                .with_timezone(&Utc),
        ),
    };
    let deadline = resolve_deadline(form.deadline.as_deref().unwrap_or(""), now)
        .map_err(|reason| ApiError::field("INVALID_JOB", "deadline", reason))?;
    let job = state
        .mirror
        .submit_job(JobSubmission {
            action: form.action,
            parameters: form.parameters.unwrap_or_default(),
            retries: form.retries.unwrap_or(0),
            scheduled_at,
            deadline,
        })
        .await?;
    tracing::info!(job = %job.id, action = %job.action, by = %account.name, "job submitted");
    Ok((StatusCode::ACCEPTED, Json(job_json(&state.mirror, &job))).into_response())
}

/// `GET /api/v0/jobs` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An action, or `any` (default).
    action: Option<String>,
    /// `any` (default); filtering by worker is not supported.
    worker: Option<String>,
    /// `true` (waiting or running), `false` (finished) or `any` (default).
    running: Option<String>,
    /// One status (`waiting`, `running`, `done`, `errored`, `canceled`;
    /// DTR's spellings such as `error` too) or `any` (default).
    status: Option<String>,
    /// Skip this many (default 0).
    start: Option<usize>,
    /// At most this many: 10 when absent or 0, at most 1000 (larger
    /// values are clamped, like DTR's page sizes).
    limit: Option<PageSize>,
}

/// `GET /api/v0/jobs` → `{"jobs": [...]}`, most recently scheduled first.
pub async fn list(
    State(state): State<AppState>,
    Admin(_): Admin,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let any = |v: &Option<String>| v.as_deref().is_none_or(|s| s.is_empty() || s == "any");
    if !any(&q.worker) {
        return Err(ApiError::invalid_parameter(
            "worker",
            "filtering by worker is not supported; this server has one worker",
        ));
    }
    let running = match q.running.as_deref() {
        None | Some("") | Some("any") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "running",
                format!("{other:?} is not true, false or any"),
            ));
        }
    };
    let status = match q.status.as_deref() {
        None | Some("") | Some("any") => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_parameter(
                "status",
                format!(
                    "{:?} is not waiting, running, done, errored, canceled or any",
                    s.chars().take(50).collect::<String>()
                ),
            )
        })?),
    };
    let filter = JobFilter {
        action: (!any(&q.action)).then(|| q.action.clone().unwrap_or_default()),
        running,
        status,
        start: q.start.unwrap_or(0),
        limit: q.limit.unwrap_or_default().get(),
    };
    let jobs: Vec<Value> = state
        .mirror
        .jobs(&filter)
        .await?
        .iter()
        .map(|job| job_json(&state.mirror, job))
        .collect();
    Ok(Json(json!({"jobs": jobs})).into_response())
}

fn no_such_job(id: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::no_such_job(id)
}

/// `GET /api/v0/jobs/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible_job(&state, &account, &id).await?;
    Ok(Json(job_json(&state.mirror, &job)).into_response())
}

/// `POST /api/v0/jobs/{id}/cancel` → 204. A waiting job is canceled at
/// once; a running one stops at its next check.
pub async fn cancel(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    visible_job(&state, &account, &id).await?;
    state
        .mirror
        .cancel_job(&id)
        .await
        .map_err(|e| ApiError::mirror_or(e, ErrorKind::NotFound, no_such_job(&id)))?;
    tracing::info!(job = %id, by = %account.name, "job cancel requested");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v0/jobs/{id}` → 204: cancels it if running and deletes it
/// with its log.
pub async fn delete(
    State(state): State<AppState>,
    Admin(account): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.mirror.delete_job(&id).await? {
        return Err(ApiError::no_such_job(&id));
    }
    tracing::info!(job = %id, by = %account.name, "job deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v0/jobs/{id}/logs` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Follow the log until the job finishes (newline-delimited JSON).
    stream: Option<bool>,
    /// First line (default 0).
    offset: Option<i64>,
    /// At most this many lines (default 0 = all).
    limit: Option<i64>,
}

/// `GET /api/v0/jobs/{id}/logs` → `[{"lineNum", "data"}]`; with
/// `stream=true`, one `{"lineNum", "data"}` per line (`application/x-ndjson`)
/// as the lines are written, until the job finishes (see `log_stream`).
pub async fn logs(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<LogsQuery>,
) -> Result<Response, ApiError> {
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(0));
    if offset < 0 {
        return Err(ApiError::invalid_parameter(
            "offset",
            "must not be negative",
        ));
    }
    if limit < 0 {
        return Err(ApiError::invalid_parameter("limit", "must not be negative"));
    }
    visible_job(&state, &account, &id).await?;
    if q.stream == Some(true) {
        return Ok(super::log_stream::follow(
            state.mirror.clone(),
            id,
            offset,
            limit,
            state.shutdown.clone(),
        ));
    }
    let lines = state
        .mirror
        .job_logs(&id, offset, limit)
        .await
        .map_err(|e| ApiError::mirror_or(e, ErrorKind::NotFound, no_such_job(&id)))?;
    Ok(Json(lines).into_response())
}
