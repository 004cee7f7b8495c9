//! Who may see one job. Server administrators see every job. An
//! administrator of a repository also sees (and may cancel) a job that
//! polls one of its policies (`poll_mirror` with `policyID`), such as the
//! one "Save & Apply" starts, so they can follow it. Listing jobs, deleting
//! them and crons stay with server administrators.

use mirror_core::job::PARAM_POLICY_ID;
use mirror_core::push::PARAM_PUSH_POLICY_ID;
use mirror_core::{ErrorKind, Job};

use super::repositories::authorize_name;
use crate::accounts::{AccessLevel, Account};
use crate::error::ApiError;
use crate::state::AppState;

/// What a caller who may not see the job is told, whether it exists or
/// not (job IDs of other repositories are not revealed).
fn refused() -> ApiError {
    ApiError::not_authorized(
        "this job is visible to server administrators and to administrators of the repository its policy mirrors into",
    )
}

/// Job `id`, if `account` may see it: `404 NO_SUCH_JOB` for an
/// administrator when it does not exist, `403 NOT_AUTHORIZED` for anyone
/// else who may not see it.
pub async fn visible_job(state: &AppState, account: &Account, id: &str) -> Result<Job, ApiError> {
    let job = match state.mirror.job(id).await {
        Ok(job) => job,
        Err(e) if e.kind() == ErrorKind::NotFound && !account.is_admin => return Err(refused()),
        Err(e) => {
            return Err(ApiError::mirror_or(e, ErrorKind::NotFound, || {
                ApiError::no_such_job(id)
            }));
        }
    };
    if account.is_admin || administers_policy_of(state, account, &job).await? {
        Ok(job)
    } else {
        Err(refused())
    }
}

/// Whether `account` is an administrator of the repository whose policy
/// `job` runs: the one a `poll_mirror` job's policy mirrors into, or the
/// one a `push_mirror_tag` job's policy pushes from.
async fn administers_policy_of(
    state: &AppState,
    account: &Account,
    job: &Job,
) -> Result<bool, ApiError> {
    let repository = if let Some(id) = job.parameters.get(PARAM_POLICY_ID) {
        state.mirror.policy(id).await.map(|p| p.local_repository)
    } else if let Some(id) = job.parameters.get(PARAM_PUSH_POLICY_ID) {
        state
            .mirror
            .push_policy(id)
            .await
            .map(|p| p.local_repository)
    } else {
        return Ok(false);
    };
    let repository = match repository {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    match authorize_name(state, account, &repository, AccessLevel::Admin).await {
        Ok(_) => Ok(true),
        Err(e) if e.status().is_client_error() => Ok(false),
        Err(e) => Err(e),
    }
}
