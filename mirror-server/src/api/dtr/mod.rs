//! The DTR 2.7-compatible management API under `/api/v0` (JSON; HTTP
//! Basic credentials or a bearer token), and DTR's token endpoint
//! `/auth/token` beside it.
//!
//! One file per resource: repositories (and their tags and access grants),
//! poll mirroring policies, the remote-registry check, jobs (and
//! `log_stream`, a followed job log), crons, accounts with access tokens,
//! organizations and teams with their grants (`orgs`), webhooks and
//! their delivery log (`webhooks`), and `auth_token`;
//! at the root, DTR's `/ca` (`ca`) and UCP's eNZi account API
//! (`/enzi/v0/accounts`: organizations, members, teams). Lists page alike
//! (`paging`). Every route needs an authenticated caller, except the
//! OpenAPI document (also served as DTR's `docs.json`) and `/ca`; jobs,
//! crons and account creation need a server administrator, except that an
//! administrator of a repository may read (and cancel) the jobs that poll
//! its policies (`job_access`).
//!
//! [`ROUTES`] (under `/api/v0`) and [`ROOT_ROUTES`] (at the root) are the
//! one list of routes: [`router`] and [`root_router`] register exactly
//! them. The OpenAPI document ([`openapi_json`], served at
//! `/api/v0/openapi.json`) is generated from the handlers' wire types in
//! `openapi/`, and a test checks its paths and methods against these
//! tables, so the document cannot drift from the code.

mod accounts;
mod auth_token;
mod ca;
mod crons;
mod job_access;
mod jobs;
mod log_stream;
mod meta;
mod openapi;
mod orgs;
pub use openapi::json as openapi_json;
pub mod paging;
mod policies;
mod proxy_caches;
mod push_policies;
mod remote;
mod repositories;
mod tags;
mod webhooks;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::state::AppState;

/// A route's handlers, built when the router is.
type Handlers = fn() -> MethodRouter<AppState>;

/// Every `/api/v0` route (relative to `/api/v0`) with its handlers.
pub static ROUTES: &[(&str, Handlers)] = &[
    ("/openapi.json", || get(openapi::document)),
    ("/docs.json", || get(openapi::document)),
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
    (
        "/repositories/{namespace}/{reponame}/tags/{reference}",
        || get(tags::get_one).delete(tags::delete),
    ),
    (
        "/repositories/{namespace}/{reponame}/tags/{reference}/history",
        || get(tags::history),
    ),
    ("/repositories/{namespace}/{reponame}/userAccess", || {
        get(repositories::list_access)
    }),
    ("/repositories/{namespace}/{reponame}/teamAccess", || {
        get(orgs::list_repo_team_access)
    }),
    (
        "/repositories/{namespace}/{reponame}/teamAccess/{team}",
        || put(orgs::set_repo_team_access).delete(orgs::remove_repo_team_access),
    ),
    ("/repositoryNamespaces/{namespace}/teamAccess", || {
        get(orgs::list_namespace_team_access)
    }),
    (
        "/repositoryNamespaces/{namespace}/teamAccess/{team}",
        || {
            get(orgs::get_namespace_team_access)
                .put(orgs::set_namespace_team_access)
                .delete(orgs::remove_namespace_team_access)
        },
    ),
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
    ("/pollMirroringPolicies/{id}", || get(policies::get_by_id)),
    (
        "/repositories/{namespace}/{reponame}/pushMirroringPolicies",
        || get(push_policies::list).post(push_policies::create),
    ),
    (
        "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
        || {
            get(push_policies::get_one)
                .put(push_policies::update)
                .delete(push_policies::delete)
        },
    ),
    (
        "/repositories/{namespace}/{reponame}/mirroringPolicies",
        || get(push_policies::list_all),
    ),
    ("/proxyCaches", || {
        get(proxy_caches::list).post(proxy_caches::create)
    }),
    ("/proxyCaches/{namespace}", || {
        get(proxy_caches::get_one)
            .put(proxy_caches::update)
            .delete(proxy_caches::delete)
    }),
    ("/remote/registry", || post(remote::check)),
    ("/meta/settings", || {
        get(meta::settings).post(meta::update_settings)
    }),
    ("/meta/features", || get(meta::features)),
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
    ("/accounts/{org}/teams/{team}/repositoryAccess", || {
        get(orgs::team_repository_access)
    }),
    ("/api_tokens", || {
        get(accounts::list_tokens).post(accounts::create_token)
    }),
    ("/api_tokens/{hashedtoken}", || {
        delete(accounts::delete_token).patch(accounts::update_token)
    }),
    ("/webhooks", || get(webhooks::list).post(webhooks::create)),
    ("/webhooks/update", || post(webhooks::update)),
    ("/webhooks/test", || post(webhooks::test)),
    ("/webhooks/{id}", || delete(webhooks::delete)),
    ("/webhooks/{id}/deliveries", || get(webhooks::deliveries)),
    ("/repositories/{namespace}/{reponame}/webhooks", || {
        get(webhooks::list_repository)
    }),
    ("/accounts/{namespace}/webhooks", || {
        get(webhooks::list_namespace)
    }),
];

/// DTR's routes outside `/api/v0` (absolute paths), documented in the same
/// OpenAPI document with their own `servers` entry.
pub static ROOT_ROUTES: &[(&str, Handlers)] = &[
    ("/auth/token", || get(auth_token::issue)),
    ("/ca", || get(ca::get)),
    ("/enzi/v0/accounts", || {
        get(orgs::list_accounts).post(orgs::create_account)
    }),
    ("/enzi/v0/accounts/{name}", || {
        get(orgs::get_account)
            .patch(orgs::update_account)
            .delete(orgs::delete_account)
    }),
    ("/enzi/v0/accounts/{org}/members", || {
        get(orgs::list_members)
    }),
    ("/enzi/v0/accounts/{org}/members/{member}", || {
        get(orgs::get_member)
            .put(orgs::put_member)
            .delete(orgs::delete_member)
    }),
    ("/enzi/v0/accounts/{org}/teams", || {
        get(orgs::list_teams).post(orgs::create_team)
    }),
    ("/enzi/v0/accounts/{org}/teams/{team}", || {
        get(orgs::get_team)
            .patch(orgs::update_team)
            .delete(orgs::delete_team)
    }),
    ("/enzi/v0/accounts/{org}/teams/{team}/members", || {
        get(orgs::list_team_members)
    }),
    (
        "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
        || {
            get(orgs::get_team_member)
                .put(orgs::put_team_member)
                .delete(orgs::delete_team_member)
        },
    ),
];

/// The `/api/v0` routes (nested by the caller).
pub fn router() -> Router<AppState> {
    routes(ROUTES)
}

/// The [`ROOT_ROUTES`] (merged at the root by the caller).
pub fn root_router() -> Router<AppState> {
    routes(ROOT_ROUTES)
}

fn routes(table: &[(&str, Handlers)]) -> Router<AppState> {
    table
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
