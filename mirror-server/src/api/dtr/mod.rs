//! The DTR 2.7-compatible management API under `/api/v0` (JSON, Basic auth).
//!
//! One file per resource: repositories (and their tags and access grants),
//! poll mirroring policies, the remote-registry check, jobs, crons, and
//! accounts with access tokens. Every route needs an authenticated caller;
//! jobs, crons and account creation need a server administrator.

mod accounts;
mod crons;
mod jobs;
mod policies;
mod remote;
mod repositories;

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// The `/api/v0` routes (nested by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/repositories", get(repositories::list_all))
        .route(
            "/repositories/{namespace}",
            get(repositories::list_namespace).post(repositories::create),
        )
        .route(
            "/repositories/{namespace}/{reponame}",
            get(repositories::get_one).delete(repositories::delete),
        )
        .route(
            "/repositories/{namespace}/{reponame}/tags",
            get(repositories::tags),
        )
        .route(
            "/repositories/{namespace}/{reponame}/userAccess",
            get(repositories::list_access),
        )
        .route(
            "/repositories/{namespace}/{reponame}/userAccess/{username}",
            put(repositories::set_access).delete(repositories::remove_access),
        )
        .route(
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
            get(policies::list).post(policies::create),
        )
        .route(
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
            get(policies::get_one)
                .put(policies::update)
                .delete(policies::delete),
        )
        .route("/remote/registry", post(remote::check))
        .route("/jobs", get(jobs::list).post(jobs::submit))
        .route("/jobs/{id}", get(jobs::get_one).delete(jobs::delete))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/logs", get(jobs::logs))
        .route("/crons", get(crons::list).post(crons::upsert))
        .route("/crons/{action}", get(crons::get_one).delete(crons::delete))
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route("/accounts/{name}", get(accounts::get_one))
        .route(
            "/api_tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route(
            "/api_tokens/{hashedtoken}",
            axum::routing::delete(accounts::delete_token),
        )
        .method_not_allowed_fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this endpoint does not support the method",
            )
        })
}
