//! Poll mirroring policies of one repository (DTR's
//! `.../pollMirroringPolicies`). Reading needs visibility of the repository;
//! creating, changing and deleting need `admin` on it. Responses come from
//! mirror-core's `PollMirroringPolicy`, whose serialization never contains
//! the password or auth token.
//!
//! Creating an enabled policy with `initialEvaluation=true` given
//! explicitly ("Save & Apply") also evaluates it at once, as DTR does: a
//! `poll_mirror` job for that policy is submitted and its ID returned in
//! the [`JOB_ID_HEADER`] header. Left out, `initialEvaluation` still
//! defaults to true (mirror every tag at the first poll), but nothing
//! starts until the next poll.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mirror_core::api::PolicyForm;
use mirror_core::store::Repository;
use mirror_core::{ErrorKind, PollMirroringPolicy};
use serde::Deserialize;

use super::repositories::{authorize, authorize_name};
use crate::accounts::AccessLevel;
use crate::api::extract::{JsonBody, QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;

/// The response header that carries the ID of the job a policy creation
/// started.
pub use mirror_core::api::JOB_ID_HEADER;

/// `?initialEvaluation=` (default true).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CreateQuery {
    /// `true` (default, "Save & Apply"): mirror every current remote tag;
    /// `false` ("Save"): only tags that appear or move later. Also accepted
    /// as a body field. Given explicitly as `true`, the policy (when
    /// enabled) is also evaluated right away by a `poll_mirror` job whose
    /// ID is returned in `X-Job-ID`; left out, the first poll is the next
    /// scheduled one.
    initial_evaluation: Option<bool>,
    /// `true`: check the form, reach the remote and answer 200 with which
    /// remote tags the rules would mirror (`{"tagsListed",
    /// "matchingTags"}`), saving nothing.
    dry_run: Option<bool>,
}

fn check_local(repo: &Repository, given: Option<&str>) -> Result<(), ApiError> {
    match given {
        Some(l) if !l.is_empty() && l != repo.name.as_str() => Err(ApiError::field(
            "INVALID_POLL_MIRRORING_POLICY",
            "localRepository",
            format!(
                "{l:?} differs from the repository in the path ({}); leave it out",
                repo.name
            ),
        )),
        _ => Ok(()),
    }
}

/// The policy `id` if it belongs to `repo`.
async fn policy_of(
    state: &AppState,
    repo: &Repository,
    id: &str,
) -> Result<PollMirroringPolicy, ApiError> {
    let policy = state.mirror.policy(id).await.map_err(|e| {
        ApiError::mirror_or(e, ErrorKind::NotFound, || ApiError::no_such_policy(id))
    })?;
    if policy.local_repository != repo.name {
        return Err(ApiError::no_such_policy(id));
    }
    Ok(policy)
}

/// `GET /pollMirroringPolicies/{id}` (regmirror's extension: DTR 2.7
/// reaches a policy only through its repository). The policy, for a caller
/// who may see its local repository; `NO_SUCH_POLL_MIRRORING_POLICY` for
/// anyone else, as for a policy that does not exist.
pub async fn get_by_id(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let policy = state.mirror.policy(&id).await.map_err(|e| {
        ApiError::mirror_or(e, ErrorKind::NotFound, || ApiError::no_such_policy(&id))
    })?;
    let local = &policy.local_repository;
    match authorize_name(&state, &account, local, AccessLevel::ReadOnly).await {
        Ok(_) => Ok(Json(policy).into_response()),
        Err(e) if matches!(e.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) => {
            Err(ApiError::no_such_policy(&id))
        }
        Err(e) => Err(e),
    }
}

/// `GET .../pollMirroringPolicies`.
pub async fn list(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let repo = authorize(
        &state,
        &account,
        &namespace,
        &reponame,
        AccessLevel::ReadOnly,
    )
    .await?;
    let policies = state.mirror.policies(Some(&repo.name)).await?;
    Ok(Json(policies).into_response())
}

/// `POST .../pollMirroringPolicies?initialEvaluation=` → 201, after checking
/// that the credentials can read the remote repository.
pub async fn create(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
    QueryParams(query): QueryParams<CreateQuery>,
    JsonBody(form): JsonBody<PolicyForm>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    check_local(&repo, form.local_repository.as_deref())?;
    if query.dry_run == Some(true) {
        let preview = state.mirror.preview_tags(&form).await?;
        return Ok(Json(preview).into_response());
    }
    let asked_to_apply = query.initial_evaluation.or(form.initial_evaluation) == Some(true);
    let initial_evaluation = match (query.initial_evaluation, form.initial_evaluation) {
        (Some(q), Some(b)) if q != b => {
            return Err(ApiError::field(
                "INVALID_POLL_MIRRORING_POLICY",
                "initialEvaluation",
                "the query parameter and the body field disagree; give one",
            ));
        }
        (q, b) => b.or(q),
    };
    let form = PolicyForm {
        initial_evaluation,
        ..form
    };
    let policy = state
        .mirror
        .add_policy(&repo.name, &form, Some(&account.name))
        .await?;
    tracing::info!(
        policy = %policy.id,
        repository = %repo.name,
        remote = %format!("{}/{}", policy.remote.host, policy.remote.repository),
        by = %account.name,
        "poll mirroring policy created"
    );
    let mut resp = (StatusCode::CREATED, Json(&policy)).into_response();
    if asked_to_apply
        && policy.enabled
        && let Some(job_id) = apply_now(&state, &policy).await
        && let Ok(value) = HeaderValue::from_str(&job_id)
    {
        resp.headers_mut().insert(JOB_ID_HEADER, value);
    }
    Ok(resp)
}

/// Submits the `poll_mirror` job that evaluates a new policy now; its ID.
/// The policy is saved already, so a failure here is logged, not
/// returned: the next scheduled poll applies the policy anyway.
async fn apply_now(state: &AppState, policy: &PollMirroringPolicy) -> Option<String> {
    match state.mirror.submit_poll(&policy.id).await {
        Ok(job) => {
            tracing::info!(policy = %policy.id, job = %job.id, "initial evaluation submitted");
            Some(job.id)
        }
        Err(e) => {
            tracing::error!(policy = %policy.id, "cannot submit the initial evaluation: {e}");
            None
        }
    }
}

/// `GET .../pollMirroringPolicies/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let repo = authorize(
        &state,
        &account,
        &namespace,
        &reponame,
        AccessLevel::ReadOnly,
    )
    .await?;
    Ok(Json(policy_of(&state, &repo, &id).await?).into_response())
}

/// `PUT .../pollMirroringPolicies/{id}`: a partial update → 200. A change
/// of how the remote is reached is checked before it is saved.
pub async fn update(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
    JsonBody(form): JsonBody<PolicyForm>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    check_local(&repo, form.local_repository.as_deref())?;
    policy_of(&state, &repo, &id).await?;
    let update = state.mirror.update_policy(&id, &form, Some(&account.name));
    let policy = update.await.map_err(|e| {
        ApiError::mirror_or(e, ErrorKind::NotFound, || ApiError::no_such_policy(&id))
    })?;
    tracing::info!(policy = %policy.id, by = %account.name, "poll mirroring policy updated");
    Ok(Json(policy).into_response())
}

/// `DELETE .../pollMirroringPolicies/{id}` → 204; mirrored tags stay.
pub async fn delete(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    policy_of(&state, &repo, &id).await?;
    state.mirror.delete_policy(&id).await?;
    tracing::info!(policy = %id, by = %account.name, "poll mirroring policy deleted");
    Ok(StatusCode::NO_CONTENT)
}
