//! Poll mirroring policies through `/api/v0`, for the harnesses of both
//! kinds of server: in-process (`tests/server_e2e/server.rs`) and the real
//! binary (`mirror-server/tests/reliability/server.rs`).

use reqwest::StatusCode;
use serde_json::Value;

use super::http::Api;

/// `/api/v0/repositories/{repo}/pollMirroringPolicies`, where `repo` is
/// `namespace/name`.
pub fn policies(repo: &str) -> String {
    format!("/api/v0/repositories/{repo}/pollMirroringPolicies")
}

/// Creates a policy on `repo` from `form` as `api`'s caller; its ID. It
/// waits for the next poll.
pub async fn add_policy(api: &Api, repo: &str, form: &Value) -> String {
    let created = api.post(policies(repo)).json(form).await;
    let policy = created.expect(StatusCode::CREATED).json();
    policy["id"].as_str().unwrap().to_string()
}

/// Creates a policy on `repo` from `form` as `api`'s caller with "Save &
/// Apply" (`?initialEvaluation=true`); the ID of the poll it started
/// (its `X-Job-ID`).
pub async fn apply_policy(api: &Api, repo: &str, form: &Value) -> String {
    let post = api.post(policies(repo)).query("initialEvaluation=true");
    let created = post.json(form).await.expect(StatusCode::CREATED);
    created.header("x-job-id").to_string()
}
