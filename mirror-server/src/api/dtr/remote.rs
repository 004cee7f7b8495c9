//! `POST /api/v0/remote/registry`: DTR's "Connect" button. Checks that the
//! given credentials can read the remote repository, without saving
//! anything.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mirror_core::policy::is_docker_hub;
use mirror_core::{NewPolicy, Secret};
use serde::Deserialize;
use serde_json::json;

use crate::api::extract::{JsonBody, User};
use crate::error::ApiError;
use crate::state::AppState;

/// DTR's `CreateRemoteRegistryCheck`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckForm {
    remote_host: String,
    remote_repository: String,
    #[serde(default, rename = "remoteCA")]
    remote_ca: Option<String>,
    #[serde(default, rename = "skipTLSVerification")]
    skip_tls_verification: Option<bool>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    auth_token: Option<Secret>,
}

/// → 201 `{registryType, permissions: {read, write}}`, or 400 with the reason.
pub async fn check(
    State(state): State<AppState>,
    User(_account): User,
    JsonBody(form): JsonBody<CheckForm>,
) -> Result<Response, ApiError> {
    let endpoint = NewPolicy {
        remote_host: form.remote_host,
        remote_repository: form.remote_repository,
        username: form.username.unwrap_or_default(),
        password: form.password.unwrap_or_default(),
        auth_token: form.auth_token.unwrap_or_default(),
        remote_ca: form.remote_ca.unwrap_or_default(),
        skip_tls_verification: form.skip_tls_verification.unwrap_or(false),
        enabled: true,
        owner: None,
    }
    .endpoint()
    .map_err(mirror_core::MirrorError::from)?;
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
    Ok((
        StatusCode::CREATED,
        Json(json!({"registryType": registry_type, "permissions": permissions})),
    )
        .into_response())
}
