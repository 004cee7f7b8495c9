//! The OCI distribution API (read side): `/v2/`, manifests, blobs (with
//! `Range`), tag lists, the catalog and referrers.
//!
//! axum cannot route `/v2/{*name}/manifests/{ref}` (a catch-all must come
//! last), so one handler takes `/v2/{*rest}` and [`route::parse_route`]
//! splits it. Every response carries `Docker-Distribution-API-Version`.
//!
//! Authorization: a repository is readable by the callers `auth::access_level`
//! gives any level. Anonymous callers that may not read get `401` with a
//! Basic challenge (so clients retry with credentials); authenticated ones
//! get `403 DENIED`, also for repositories that do not exist, so names of
//! private repositories do not leak. Push (uploads, manifest PUT, DELETE) is
//! not implemented yet: `405 UNSUPPORTED`.

mod content;
mod listing;
pub mod range;
pub mod route;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use mirror_core::RepositoryName;
use mirror_core::store::Repository;

use crate::auth::{Caller, access_level, authenticate};
use crate::error::{API_VERSION_HEADER, RegistryError};
use crate::state::AppState;
use route::{Route, parse_route};

/// The `/v2` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
}

fn with_version(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    resp
}

/// `GET /v2/`: 200 for valid credentials, 401 with a challenge otherwise.
async fn base(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = match authenticate(&state.accounts, &headers).await {
        Ok(Caller::User(_)) => Ok(axum::Json(serde_json::json!({})).into_response()),
        Ok(Caller::Anonymous) => Err(RegistryError::unauthorized("credentials required")),
        Err(e) => Err(e.into()),
    };
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(rest): Path<String>,
) -> Response {
    let result = handle(&state, &method, &headers, &uri, &rest).await;
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

async fn handle(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    rest: &str,
) -> Result<Response, RegistryError> {
    let caller = authenticate(&state.accounts, headers).await?;
    let route = parse_route(rest);
    let read = method == Method::GET || method == Method::HEAD;
    let head = method == Method::HEAD;
    let name = match &route {
        Route::Unknown => return Err(RegistryError::not_found(uri.path())),
        Route::Catalog => {
            return if read {
                listing::catalog(state, &caller, uri).await
            } else {
                Err(RegistryError::unsupported("the catalog is read-only"))
            };
        }
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Upload { name }
        | Route::Tags { name }
        | Route::Referrers { name, .. } => *name,
    };
    let repo = readable_repository(state, &caller, name).await?;
    if !read || matches!(route, Route::Upload { .. }) {
        return Err(RegistryError::unsupported(
            "this server is a read-only mirror for now: push and delete are not implemented",
        ));
    }
    match route {
        Route::Manifest { reference, .. } => content::manifest(state, &repo, reference, head).await,
        Route::Blob { digest, .. } => content::blob(state, &repo, digest, head, headers).await,
        Route::Tags { .. } => listing::tags(state, &repo, uri).await,
        Route::Referrers { digest, .. } => listing::referrers(state, &repo, digest, uri).await,
        Route::Catalog | Route::Upload { .. } | Route::Unknown => unreachable!("handled above"),
    }
}

/// The repository `name` if the caller may read it; the right error if not.
async fn readable_repository(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Repository, RegistryError> {
    let name =
        RepositoryName::parse(name).map_err(|e| RegistryError::name_invalid(e.to_string()))?;
    let repo = state.mirror.stores().repos.repository(&name).await?;
    let level = access_level(
        &state.accounts,
        caller,
        &name,
        repo.as_ref().map(|r| r.visibility),
    )
    .await?;
    if level.is_none() {
        return Err(match caller {
            Caller::Anonymous => {
                RegistryError::unauthorized(format!("repository {name} is not public: log in"))
            }
            Caller::User(_) => RegistryError::denied(format!("no access to repository {name}")),
        });
    }
    repo.ok_or_else(|| RegistryError::name_unknown(name.as_str()))
}
