//! A repository's tags (`GET .../tags`): DTR's `ListTag`, with where a
//! mirrored tag came from, and the image's platforms and size (see
//! `image_info`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use mirror_core::store::TagRecord;
use serde::Serialize;

use super::image_info::image_info;
use super::repositories::authorize;
use crate::accounts::AccessLevel;
use crate::api::extract::User;
use crate::error::ApiError;
use crate::state::AppState;

/// Manifests summarized at once.
const CONCURRENCY: usize = 8;

/// A tag as listed (DTR's `ListTag`, reduced to what this server knows).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TagView {
    name: String,
    digest: String,
    media_type: String,
    /// The manifest's size.
    size: u64,
    /// `os/arch[/variant]` of the image, or of each image of an index.
    platforms: Vec<String>,
    /// Config plus layers (an index: the sum over its images); absent
    /// when the stored manifest cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_size: Option<u64>,
    updated_at: DateTime<Utc>,
    /// Where the tag was mirrored from, when a policy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    mirroring: Option<MirroringView>,
}

/// DTR's `responses.Mirroring`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MirroringView {
    #[serde(rename = "mirroringPolicyID")]
    mirroring_policy_id: String,
    digest: String,
    /// `host/namespace/name` of the source.
    remote_repository: String,
    remote_tag: String,
}

async fn tag_view(state: &AppState, t: TagRecord) -> TagView {
    let info = image_info(state.mirror.stores().blobs.as_ref(), &t.digest).await;
    let mirroring = t.mirrored_by.map(|policy| {
        let from = t.mirrored_from.unwrap_or_default();
        let (repo, tag) = from
            .rsplit_once(':')
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or((from.clone(), String::new()));
        MirroringView {
            mirroring_policy_id: policy,
            digest: t.digest.to_string(),
            remote_repository: repo,
            remote_tag: tag,
        }
    });
    TagView {
        name: t.name,
        digest: t.digest.to_string(),
        media_type: t.media_type,
        size: t.size,
        platforms: info.platforms.clone(),
        image_size: info.image_size,
        updated_at: t.updated_at,
        mirroring,
    }
}

/// `GET /api/v0/repositories/{namespace}/{reponame}/tags`.
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
    let records = state.mirror.stores().repos.tags(&repo.name).await?;
    let tags: Vec<TagView> = futures_util::stream::iter(records)
        .map(|t| tag_view(&state, t))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    Ok(Json(tags).into_response())
}
