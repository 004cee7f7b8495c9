//! The OCI distribution API: `/v2/`, manifests, blobs (with `Range`), tag
//! lists, the catalog and referrers; and, for callers with write access,
//! push (blob uploads, monolithic and chunked, cross-repository mount;
//! manifest PUT) and delete (manifests, tags, blob links).
//!
//! axum cannot route `/v2/{*name}/manifests/{ref}` (a catch-all must come
//! last), so one handler takes `/v2/{*rest}` and [`route::parse_route`]
//! splits it. Every response carries `Docker-Distribution-API-Version`.
//!
//! Authorization: reading a repository needs any level `auth::access_level`
//! gives; pushing and deleting need `read-write` (or `admin`). Anonymous
//! callers that lack the level get `401` with a Basic challenge (so clients
//! retry with credentials); authenticated ones get `403 DENIED`, also for
//! repositories that do not exist, so names of private repositories do not
//! leak. Pushing needs the repository to exist (create it with the
//! management API first), as in DTR without "create repository on push".

mod cache;
mod content;
mod delete;
mod listing;
mod push;
pub mod range;
pub mod route;
mod upload;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use mirror_core::RepositoryName;
use mirror_core::store::Repository;

use crate::accounts::AccessLevel;
use crate::api::extract::ClientAddr;
use crate::auth::{Caller, access_level, authenticate};
use crate::client_ip::RequestOrigin;
use crate::error::{API_VERSION_HEADER, RegistryError};
use crate::state::AppState;
use route::{Route, parse_route};

/// The `/v2` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .layer(axum::middleware::from_fn(challenge))
}

/// Middleware: every `/v2` 401 carries the challenge
/// ([`crate::auth::challenge`]) for the origin the client used.
async fn challenge(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let origin = req.extensions().get::<RequestOrigin>().cloned();
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&crate::auth::challenge(origin.as_ref()))
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    resp
}

fn with_version(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    resp
}

/// `GET /v2/`: 200 for valid credentials, 401 with a challenge otherwise.
async fn base(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Response {
    let result = match authenticate(&state.accounts, &headers, client).await {
        Ok(Caller::User(_)) => Ok(axum::Json(serde_json::json!({})).into_response()),
        Ok(Caller::Anonymous) => Err(RegistryError::unauthorized("credentials required")),
        Err(e) => Err(e.into()),
    };
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

async fn dispatch(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(rest): Path<String>,
    body: Body,
) -> Response {
    let query = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let request = Request {
        state: &state,
        method: &method,
        headers: &headers,
        uri: &uri,
        query,
        client,
    };
    let result = handle(&request, &rest, body).await;
    with_version(result.unwrap_or_else(IntoResponse::into_response))
}

/// What every endpoint may look at besides its body.
pub(crate) struct Request<'a> {
    pub state: &'a AppState,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
    /// Decoded query parameters (an unparsable query counts as none).
    pub query: HashMap<String, String>,
    /// The client's address.
    pub client: std::net::IpAddr,
}

impl Request<'_> {
    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// A header as text.
    pub fn header(&self, name: axum::http::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn handle(req: &Request<'_>, rest: &str, body: Body) -> Result<Response, RegistryError> {
    let (state, method, uri) = (req.state, req.method, req.uri);
    let caller = authenticate(&state.accounts, req.headers, req.client).await?;
    let route = parse_route(rest);
    let read = method == Method::GET || method == Method::HEAD;
    let head = method == Method::HEAD;
    let name = match &route {
        Route::Unknown => return Err(RegistryError::not_found(uri.path())),
        Route::Catalog => {
            // As distribution with auth: the catalog needs credentials, so
            // clients that authenticate only when challenged list what
            // they may read instead of an empty list.
            return if matches!(caller, Caller::Anonymous) {
                Err(RegistryError::unauthorized(
                    "the catalog lists what the caller may read: log in",
                ))
            } else if read {
                listing::catalog(state, &caller, uri).await
            } else {
                Err(not_allowed(method, "the catalog"))
            };
        }
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Upload { name, .. }
        | Route::Tags { name }
        | Route::Referrers { name, .. } => *name,
    };
    // What the method needs; decided before anything about the repository
    // is looked at or told.
    let need = match (&route, method.as_str()) {
        (
            Route::Manifest { .. }
            | Route::Blob { .. }
            | Route::Tags { .. }
            | Route::Referrers { .. },
            "GET" | "HEAD",
        ) => AccessLevel::ReadOnly,
        (Route::Manifest { .. }, "PUT" | "DELETE")
        | (Route::Blob { .. }, "DELETE")
        | (Route::Upload { id: None, .. }, "POST")
        | (Route::Upload { id: Some(_), .. }, "GET" | "PATCH" | "PUT" | "DELETE") => {
            AccessLevel::ReadWrite
        }
        _ => return Err(not_allowed(method, uri.path())),
    };
    // A push may create its repository (the `createRepositoryOnPush`
    // setting); a delete never does.
    let creates = matches!(
        (&route, method.as_str()),
        (Route::Upload { id: None, .. }, "POST") | (Route::Manifest { .. }, "PUT")
    );
    if let Some(served) = cache::serve(req, &caller, &route, name, need).await? {
        return Ok(served);
    }
    let repo = authorized_repository(state, &caller, name, need, creates).await?;
    match route {
        Route::Manifest { reference, .. } if read => {
            content::manifest(state, &repo, reference, head).await
        }
        Route::Manifest { reference, .. } if method == Method::PUT => {
            let actor = caller.account().map(|a| a.name.as_str());
            push::put_manifest(req, &repo, reference, body, actor).await
        }
        Route::Manifest { reference, .. } => {
            let actor = caller.account().map(|a| a.name.as_str());
            delete::manifest(state, &repo, reference, actor).await
        }
        Route::Blob { digest, .. } if read => {
            content::blob(state, &repo, digest, head, req.headers).await
        }
        Route::Blob { digest, .. } => delete::blob(state, &repo, digest).await,
        Route::Upload { id: None, .. } => upload::start(req, &caller, &repo, body).await,
        Route::Upload { id: Some(id), .. } => upload::session(req, &repo, id, body).await,
        Route::Tags { .. } => listing::tags(state, &repo, uri).await,
        Route::Referrers { digest, .. } => listing::referrers(state, &repo, digest, uri).await,
        Route::Catalog | Route::Unknown => unreachable!("handled above"),
    }
}

fn not_allowed(method: &Method, what: &str) -> RegistryError {
    RegistryError::unsupported(format!("{method} is not supported on {what}"))
}

/// The repository `name` if the caller has at least `need` on it; the
/// right error if not. With `creates` (a push) and the
/// `createRepositoryOnPush` setting on, a missing `namespace/name` the
/// caller may write (its own namespace, or any for an administrator) is
/// created, private.
async fn authorized_repository(
    state: &AppState,
    caller: &Caller,
    name: &str,
    need: AccessLevel,
    creates: bool,
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
    if level.is_none_or(|l| l < need) {
        let what = match need {
            AccessLevel::ReadOnly => "read",
            _ => "push to or delete from",
        };
        return Err(match (caller, level) {
            (Caller::Anonymous, _) => {
                RegistryError::unauthorized(format!("log in to {what} repository {name}"))
            }
            (Caller::User(_), Some(l)) => RegistryError::denied(format!(
                "you have {} access to repository {name}; it takes read-write to {what} it",
                l.as_str()
            )),
            (Caller::User(_), None) => {
                RegistryError::denied(format!("no access to repository {name}"))
            }
        });
    }
    match repo {
        Some(repo) => Ok(repo),
        None if creates
            && name.as_str().contains('/')
            && state.settings.get().create_repository_on_push =>
        {
            let repo = state
                .mirror
                .ensure_repository(&name)
                .await
                .map_err(|e| match e {
                    mirror_core::MirrorError::Store(e) => RegistryError::from(e),
                    _ => RegistryError::name_unknown(name.as_str()),
                })?;
            tracing::info!(repository = %name, by = ?caller.account().map(|a| &a.name), "repository created on push");
            let created = mirror_core::events::EventKind::Repository(
                mirror_core::events::RepositoryChange::Created,
            );
            let actor = caller.account().map(|a| a.name.as_str());
            state.mirror.emit(created, &name, actor);
            Ok(repo)
        }
        None => Err(RegistryError::name_unknown(name.as_str())),
    }
}

/// Whether `caller` may read the repository `name`, without telling why
/// not (a cross-repository mount falls back to an upload instead).
pub(crate) async fn can_read(
    state: &AppState,
    caller: &Caller,
    name: &RepositoryName,
) -> Result<bool, RegistryError> {
    let Some(repo) = state.mirror.stores().repos.repository(name).await? else {
        return Ok(false);
    };
    let level = access_level(&state.accounts, caller, name, Some(repo.visibility)).await?;
    Ok(level.is_some())
}
