//! Crons (server administrators only), keyed by action: list, create or
//! replace, get, delete. Changes reach the running scheduler at once.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::extract::{Admin, JsonBody};
use crate::error::ApiError;
use crate::scheduler::CronForm;
use crate::state::AppState;

/// DTR's `CronCreate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CronCreate)]
#[serde(rename_all = "camelCase")]
pub struct CreateForm {
    /// The action of the jobs it submits (the key): `poll_mirror`, or
    /// `onlinegc` (garbage collection; no cron until an administrator
    /// creates one).
    action: String,
    /// 6-field cron spec, seconds first (`0 */30 * * * *`), or
    /// `@hourly`-style.
    schedule: String,
    #[serde(default)]
    retries: Option<i32>,
    #[serde(default)]
    parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    deadline: Option<String>,
    #[serde(default)]
    stop_timeout: Option<String>,
    #[serde(default)]
    capacity_map: Option<BTreeMap<String, i64>>,
}

/// `GET /api/v0/crons` → `{"crons": [...]}`.
pub async fn list(State(state): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let crons = state.scheduler.list().await?;
    Ok(Json(json!({"crons": crons})).into_response())
}

/// `POST /api/v0/crons` → 202 with the cron (created or replaced).
pub async fn upsert(
    State(state): State<AppState>,
    Admin(account): Admin,
    JsonBody(form): JsonBody<CreateForm>,
) -> Result<Response, ApiError> {
    let cron = state
        .scheduler
        .upsert(CronForm {
            action: form.action,
            schedule: form.schedule,
            retries: form.retries.unwrap_or(0),
            parameters: form.parameters.unwrap_or_default(),
            deadline: form.deadline.unwrap_or_default(),
            stop_timeout: form.stop_timeout.unwrap_or_default(),
            capacity_map: form.capacity_map.unwrap_or_default(),
        })
        .await?;
    tracing::info!(action = %cron.action, schedule = %cron.schedule, by = %account.name, "cron saved");
    Ok((StatusCode::ACCEPTED, Json(cron)).into_response())
}

/// `GET /api/v0/crons/{action}`.
pub async fn get_one(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(action): Path<String>,
) -> Result<Response, ApiError> {
    match state.scheduler.get(&action).await? {
        Some(cron) => Ok(Json(cron).into_response()),
        None => Err(ApiError::no_such_cron(&action)),
    }
}

/// `DELETE /api/v0/crons/{action}` → 204; jobs it created are left alone.
pub async fn delete(
    State(state): State<AppState>,
    Admin(account): Admin,
    Path(action): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.scheduler.delete(&action).await? {
        return Err(ApiError::no_such_cron(&action));
    }
    tracing::info!(action = %action, by = %account.name, "cron deleted");
    Ok(StatusCode::NO_CONTENT)
}
