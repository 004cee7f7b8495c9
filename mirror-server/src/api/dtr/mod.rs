//! The DTR 2.7-compatible management API under `/api/v0` (JSON, Basic auth).
//!
//! One file per resource: repositories (and their tags and access grants),
//! poll mirroring policies, the remote-registry check, jobs (and
//! `log_stream`, a followed job log), crons, and accounts with access
//! tokens. Every route needs an authenticated caller, except the OpenAPI
//! document; jobs, crons and account creation need a server administrator,
//! except that an administrator of a repository may read (and cancel) the
//! jobs that poll its policies (`job_access`).
//!
//! [`ROUTES`] is the one list of routes: [`router`] registers exactly it,
//! and a test checks it against `openapi.json` (paths and methods), so the
//! document cannot drift from the code.

mod accounts;
mod crons;
mod image_info;
mod job_access;
mod jobs;
mod log_stream;
mod openapi;
mod policies;
mod remote;
mod repositories;
mod tags;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::state::AppState;

/// A route's handlers, built when the router is.
type Handlers = fn() -> MethodRouter<AppState>;

/// Every `/api/v0` route (relative to `/api/v0`) with its handlers.
pub static ROUTES: &[(&str, Handlers)] = &[
    ("/openapi.json", || get(openapi::document)),
    ("/repositories", || get(repositories::list_all)),
    ("/repositories/{namespace}", || {
        get(repositories::list_namespace).post(repositories::create)
    }),
    ("/repositories/{namespace}/{reponame}", || {
        get(repositories::get_one).delete(repositories::delete)
    }),
    ("/repositories/{namespace}/{reponame}/tags", || {
        get(tags::list)
    }),
    ("/repositories/{namespace}/{reponame}/userAccess", || {
        get(repositories::list_access)
    }),
    (
        "/repositories/{namespace}/{reponame}/userAccess/{username}",
        || put(repositories::set_access).delete(repositories::remove_access),
    ),
    (
        "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
        || get(policies::list).post(policies::create),
    ),
    (
        "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
        || {
            get(policies::get_one)
                .put(policies::update)
                .delete(policies::delete)
        },
    ),
    ("/remote/registry", || post(remote::check)),
    ("/jobs", || get(jobs::list).post(jobs::submit)),
    ("/jobs/{id}", || get(jobs::get_one).delete(jobs::delete)),
    ("/jobs/{id}/cancel", || post(jobs::cancel)),
    ("/jobs/{id}/logs", || get(jobs::logs)),
    ("/crons", || get(crons::list).post(crons::upsert)),
    ("/crons/{action}", || {
        get(crons::get_one).delete(crons::delete)
    }),
    ("/accounts", || get(accounts::list).post(accounts::create)),
    ("/accounts/{name}", || {
        get(accounts::get_one).patch(accounts::update)
    }),
    ("/accounts/{name}/changePassword", || {
        post(accounts::change_password)
    }),
    ("/api_tokens", || {
        get(accounts::list_tokens).post(accounts::create_token)
    }),
    ("/api_tokens/{hashedtoken}", || {
        delete(accounts::delete_token).patch(accounts::update_token)
    }),
];

/// The `/api/v0` routes (nested by the caller).
pub fn router() -> Router<AppState> {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers())
        })
        .method_not_allowed_fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this endpoint does not support the method",
            )
        })
}
