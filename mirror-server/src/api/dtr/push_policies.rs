//! Push mirroring policies of one repository (DTR's
//! `.../pushMirroringPolicies`), and DTR's union `.../mirroringPolicies`
//! (both kinds, each with its `mirroringType`). Reading needs visibility
//! of the repository; creating, changing and deleting need `admin` on it,
//! as for poll policies. Responses come from mirror-core's
//! `PushMirroringPolicy`, whose serialization never holds the password or
//! auth token. Saving checks that the credentials may *push* to the
//! remote repository.
//!
//! `initialEvaluation=true` (query or body) on create queues a
//! `push_mirror_tag` job for every current tag the rules keep; the first
//! job's ID is in [`JOB_ID_HEADER`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mirror_core::push_policy::{PushMirroringPolicy, PushPolicyForm};
use mirror_core::store::Repository;
use mirror_core::{ErrorKind, MirrorError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::repositories::authorize;
use crate::accounts::AccessLevel;
use crate::api::extract::{JsonBody, QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;

pub use mirror_core::api::JOB_ID_HEADER;

/// DTR's code for a bad push policy field.
const INVALID: &str = "INVALID_PUSH_MIRRORING_POLICY";

/// `?initialEvaluation=` of a create.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PushCreateQuery {
    /// `true`: push every current tag the rules keep now (one
    /// `push_mirror_tag` job each; the first's ID in `X-Job-ID`). Default
    /// false: only tags pushed or mirrored into the repository later.
    initial_evaluation: Option<bool>,
}

/// A 404 for a push policy that does not exist, or not here.
fn no_such(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NO_SUCH_PUSH_MIRRORING_POLICY",
        format!("push mirroring policy {id} does not exist, or not where you may see it"),
    )
}

/// The engine's error, a bad field named with the push policy code.
fn mapped(err: MirrorError) -> ApiError {
    match err {
        MirrorError::InvalidPolicy(e) => ApiError::field(INVALID, &e.field, e.reason),
        MirrorError::Remote(mirror_core::remote::RemoteError::HostRefused { reason, .. }) => {
            ApiError::field(INVALID, "remoteHost", reason)
        }
        other => other.into(),
    }
}

fn check_local(repo: &Repository, given: Option<&str>) -> Result<(), ApiError> {
    match given {
        Some(l) if !l.is_empty() && l != repo.name.as_str() => Err(ApiError::field(
            INVALID,
            "localRepository",
            format!(
                "{l:?} differs from the repository in the path ({}); leave it out",
                repo.name
            ),
        )),
        _ => Ok(()),
    }
}

/// The push policy `id` if it belongs to `repo`.
async fn policy_of(
    state: &AppState,
    repo: &Repository,
    id: &str,
) -> Result<PushMirroringPolicy, ApiError> {
    let policy = state
        .mirror
        .push_policy(id)
        .await
        .map_err(|e| ApiError::mirror_or(e, ErrorKind::NotFound, || no_such(id)))?;
    if policy.local_repository != repo.name {
        return Err(no_such(id));
    }
    Ok(policy)
}

/// `GET .../pushMirroringPolicies`.
pub async fn list(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let level = AccessLevel::ReadOnly;
    let repo = authorize(&state, &account, &namespace, &reponame, level).await?;
    let policies = state.mirror.push_policies(Some(&repo.name)).await?;
    Ok(Json(policies).into_response())
}

/// `POST .../pushMirroringPolicies?initialEvaluation=` → 201, after
/// checking that the credentials may push to the remote repository.
pub async fn create(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
    QueryParams(query): QueryParams<PushCreateQuery>,
    JsonBody(form): JsonBody<PushPolicyForm>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    check_local(&repo, form.local_repository.as_deref())?;
    let initial = match (query.initial_evaluation, form.initial_evaluation) {
        (Some(q), Some(b)) if q != b => {
            return Err(ApiError::field(
                INVALID,
                "initialEvaluation",
                "the query parameter and the body field disagree; give one",
            ));
        }
        (q, b) => b.or(q).unwrap_or(false),
    };
    let policy = state
        .mirror
        .add_push_policy(&repo.name, &form, Some(&account.name))
        .await
        .map_err(mapped)?;
    tracing::info!(
        policy = %policy.id,
        repository = %repo.name,
        remote = %policy.remote_name(),
        by = %account.name,
        "push mirroring policy created"
    );
    let mut resp = (StatusCode::CREATED, Json(&policy)).into_response();
    if initial && policy.enabled {
        match state.mirror.push_existing_tags(&policy).await {
            Ok(jobs) => {
                tracing::info!(policy = %policy.id, jobs = jobs.len(), "initial push evaluation submitted");
                if let Some(value) = jobs.first().and_then(|j| HeaderValue::from_str(&j.id).ok()) {
                    resp.headers_mut().insert(JOB_ID_HEADER, value);
                }
            }
            // Saved already: logged, not returned (pushes of new tags work).
            Err(e) => tracing::error!(policy = %policy.id, "cannot submit the initial pushes: {e}"),
        }
    }
    Ok(resp)
}

/// `GET .../pushMirroringPolicies/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let level = AccessLevel::ReadOnly;
    let repo = authorize(&state, &account, &namespace, &reponame, level).await?;
    Ok(Json(policy_of(&state, &repo, &id).await?).into_response())
}

/// `PUT .../pushMirroringPolicies/{id}`: a partial update → 200; a change
/// of how the remote is reached is checked for write access first.
pub async fn update(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
    JsonBody(form): JsonBody<PushPolicyForm>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    check_local(&repo, form.local_repository.as_deref())?;
    policy_of(&state, &repo, &id).await?;
    let policy = state
        .mirror
        .update_push_policy(&id, &form, Some(&account.name))
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound if matches!(e, MirrorError::NotFound { .. }) => no_such(&id),
            _ => mapped(e),
        })?;
    tracing::info!(policy = %policy.id, by = %account.name, "push mirroring policy updated");
    Ok(Json(policy).into_response())
}

/// `DELETE .../pushMirroringPolicies/{id}` → 204; what was pushed stays.
pub async fn delete(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    policy_of(&state, &repo, &id).await?;
    state.mirror.delete_push_policy(&id).await?;
    tracing::info!(policy = %id, by = %account.name, "push mirroring policy deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../mirroringPolicies`: DTR's list of both kinds, poll policies
/// first, each with `mirroringType` `poll` or `push`.
pub async fn list_all(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let level = AccessLevel::ReadOnly;
    let repo = authorize(&state, &account, &namespace, &reponame, level).await?;
    let mut all: Vec<Value> = Vec::new();
    for p in state.mirror.policies(Some(&repo.name)).await? {
        let mut v = json!(p);
        v["mirroringType"] = json!("poll");
        all.push(v);
    }
    for p in state.mirror.push_policies(Some(&repo.name)).await? {
        all.push(json!(p));
    }
    Ok(Json(all).into_response())
}
