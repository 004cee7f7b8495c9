//! DTR's `/api/v0/meta`: the settings an administrator changes at run time
//! (`GET`/`POST /meta/settings`, partial bodies, `202` on update as DTR
//! answers) and the features scripts check before they mirror
//! (`GET /meta/features`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::extract::{Admin, JsonBody, User};
use crate::error::ApiError;
use crate::settings::SettingsForm;
use crate::state::AppState;

/// `GET /meta/settings` (administrators).
pub async fn settings(State(state): State<AppState>, Admin(_): Admin) -> Json<serde_json::Value> {
    Json(json!(state.settings.get()))
}

/// `POST /meta/settings` (administrators): a partial update → `202` with
/// the settings now.
pub async fn update_settings(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(form): JsonBody<SettingsForm>,
) -> Result<Response, ApiError> {
    let settings = state.settings.update(form).await?;
    tracing::info!(by = %admin.name, ?settings, "settings changed");
    Ok((StatusCode::ACCEPTED, Json(settings)).into_response())
}

/// `GET /meta/features`: what this server offers, in DTR's fields (scripts
/// check `mirroringLicensed` before they create policies).
pub async fn features(User(_): User) -> Json<serde_json::Value> {
    Json(json!({
        "mirroringLicensed": true,
        "promotionLicensed": false,
        "scanningLicensed": false,
        "scanningEnabled": false,
        "onlineGCEnabled": false,
    }))
}
