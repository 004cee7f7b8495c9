//! `/api/v0/proxyCaches`: the pull-through caches (administrators only;
//! passwords are write-only). Each is a local namespace bound to a remote
//! registry (mirror-core's `proxy_cache`); the `/v2` side is
//! `api/v2/cache.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mirror_core::MirrorError;
use mirror_core::proxy_cache::{ProxyCacheForm, ProxyCacheView};

use crate::api::extract::{Admin, JsonBody};
use crate::error::ApiError;
use crate::state::AppState;

/// The API error of a failed cache call: a bad field is
/// `INVALID_PARAMETER` naming it.
fn api_error(e: MirrorError) -> ApiError {
    match e {
        MirrorError::InvalidPolicy(p) => ApiError::field("INVALID_PARAMETER", &p.field, p.reason),
        e => e.into(),
    }
}

/// `GET /proxyCaches`: every cache.
pub async fn list(
    State(state): State<AppState>,
    Admin(_): Admin,
) -> Result<Json<Vec<ProxyCacheView>>, ApiError> {
    let caches = state.mirror.proxy_caches().await?;
    Ok(Json(caches.iter().map(|c| c.view()).collect()))
}

/// `POST /proxyCaches`: creates one → `201`.
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(form): JsonBody<ProxyCacheForm>,
) -> Result<Response, ApiError> {
    if let Some(ns) = &form.namespace
        && (state.accounts.get(ns).await?.is_some() || state.orgs.get(ns).await?.is_some())
    {
        return Err(ApiError::field(
            "INVALID_PARAMETER",
            "namespace",
            format!("{ns} is an account or organization's namespace"),
        ));
    }
    let cache = state
        .mirror
        .add_proxy_cache(&form)
        .await
        .map_err(api_error)?;
    tracing::info!(by = %admin.name, namespace = %cache.namespace, "proxy cache created");
    Ok((StatusCode::CREATED, Json(cache.view())).into_response())
}

/// `GET /proxyCaches/{namespace}`.
pub async fn get_one(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(namespace): Path<String>,
) -> Result<Json<ProxyCacheView>, ApiError> {
    Ok(Json(state.mirror.proxy_cache(&namespace).await?.view()))
}

/// `PUT /proxyCaches/{namespace}`: a partial update (absent fields keep
/// their values; a new remote host or user name drops the password).
pub async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(namespace): Path<String>,
    JsonBody(form): JsonBody<ProxyCacheForm>,
) -> Result<Json<ProxyCacheView>, ApiError> {
    let cache = state
        .mirror
        .update_proxy_cache(&namespace, &form)
        .await
        .map_err(api_error)?;
    tracing::info!(by = %admin.name, namespace = %cache.namespace, "proxy cache changed");
    Ok(Json(cache.view()))
}

/// `DELETE /proxyCaches/{namespace}` → `204`; the cached repositories
/// stay, no longer filled.
pub async fn delete(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(namespace): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.mirror.delete_proxy_cache(&namespace).await? {
        return Err(ApiError::from(MirrorError::NotFound {
            what: format!("proxy cache {namespace}"),
        }));
    }
    tracing::info!(by = %admin.name, %namespace, "proxy cache deleted");
    Ok(StatusCode::NO_CONTENT)
}
