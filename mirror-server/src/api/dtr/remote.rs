//! `POST /api/v0/remote/registry`: DTR's "Connect" button. Checks that the
//! given credentials can read the remote repository, without saving
//! anything; with `rules`, also lists the remote's tags and answers which
//! the rules would mirror (`preview`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mirror_core::api::{PolicyForm, RegistryCheck};
use mirror_core::policy::is_docker_hub;

use crate::api::extract::{JsonBody, User};
use crate::error::ApiError;
use crate::state::AppState;

/// → 201 `{registryType, permissions: {read, write}}`, or 400 with the reason.
pub async fn check(
    State(state): State<AppState>,
    User(_account): User,
    JsonBody(form): JsonBody<PolicyForm>,
) -> Result<Response, ApiError> {
    let endpoint = form.endpoint().map_err(mirror_core::MirrorError::from)?;
    let permissions = state.mirror.check_connection(&endpoint).await?;
    if !permissions.read {
        return Err(ApiError::remote_cannot_read(
            endpoint.repository.as_str(),
            &endpoint.host,
        ));
    }
    let registry_type = if is_docker_hub(&endpoint.host) {
        "dockerhub"
    } else {
        "registry"
    };
    // With rules, which tags they would mirror (nothing is saved).
    let preview = match form.rules {
        Some(_) => Some(state.mirror.preview_tags(&form).await?),
        None => None,
    };
    let answer = RegistryCheck {
        registry_type: registry_type.into(),
        permissions,
        preview,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
