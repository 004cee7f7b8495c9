//! A repository's tags: the list (`GET .../tags`, paged like every DTR
//! list), one reference (`GET .../tags/{reference}`, a tag or a digest),
//! and a tag's earlier values (`GET .../tags/{tag}/history`, regmirror's).
//!
//! A tag is DTR 2.7's `ListTag`: `name`, `digest`, `author`, `createdAt`,
//! `updatedAt`, `hashMismatch`, `inNotary`, the `manifest` object (digest,
//! media type, config, image size, platform, creation time, as the image's
//! config says; see `image_info`) and, for a mirrored tag, `mirroring`
//! (DTR's `responses.Mirroring`). The regmirror fields the web page and the
//! Python client read stay beside them: `mediaType` and `size` of the
//! tag's own manifest, `platforms` and `imageSize`.
//!
//! What this server does not record has fixed values: `author` is empty,
//! `hashMismatch` and `inNotary` are false, and `createdAt` is when the tag
//! got its current manifest (as `updatedAt`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use mirror_core::Digest;
use mirror_core::api::{Tag, TagManifest};
use mirror_core::image_info::image_info;
use mirror_core::manifest::Platform;
use mirror_core::store::{TagHistoryEntry, TagRecord};
use serde::Deserialize;

use super::paging::PageQuery;
use super::repositories::authorize;
use crate::accounts::{AccessLevel, Account};
use crate::api::extract::{QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;

/// Manifests summarized at once.
const CONCURRENCY: usize = 8;

/// The tag as listed: its `manifest` is its own (an index for a
/// multi-platform tag).
async fn listed(state: &AppState, t: TagRecord) -> Tag {
    let info = image_info(state.mirror.stores().blobs.as_ref(), &t.digest).await;
    Tag::new(&t, &info, TagManifest::of_tag(&t, &info))
}

/// The tags of `namespace/reponame`, sorted by name, if `account` may read it.
async fn readable_tags(
    state: &AppState,
    account: &Account,
    namespace: &str,
    reponame: &str,
) -> Result<Vec<TagRecord>, ApiError> {
    let repo = authorize(state, account, namespace, reponame, AccessLevel::ReadOnly).await?;
    let mut records = state.mirror.stores().repos.tags(&repo.name).await?;
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// `GET /api/v0/repositories/{namespace}/{reponame}/tags`: a page of the
/// tags, by name (`pageStart` is a tag name). DTR's `includeManifests` and
/// `domain` are ignored: the manifest is always included, and there is no
/// Notary.
pub async fn list(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let records = readable_tags(&state, &account, &namespace, &reponame).await?;
    let page = paging.page(records, |t| t.name.as_str());
    let tags: Vec<Tag> = futures_util::stream::iter(page.items)
        .map(|t| listed(&state, t))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    Ok(page.headers.respond(tags))
}

/// `GET .../tags/{reference}` query: keep only the images of this platform.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferenceQuery {
    /// An OS, such as `linux`.
    os: Option<String>,
    /// An architecture, such as `arm64`.
    arch: Option<String>,
}

impl ReferenceQuery {
    fn matches(&self, platform: Option<&Platform>) -> bool {
        let wanted = |want: &Option<String>, got: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| w.is_empty() || Some(w) == got)
        };
        wanted(&self.os, platform.map(|p| p.os.as_str()))
            && wanted(&self.arch, platform.map(|p| p.architecture.as_str()))
    }
}

/// `GET /api/v0/repositories/{namespace}/{reponame}/tags/{reference}`: as
/// DTR 2.7, an array of tags: for a tag name, the tag, once per image of
/// its index (each with that image's `manifest`) or once for an image; for
/// a digest, every tag on it. `?os=` and `?arch=` keep one platform.
/// `404 NO_SUCH_REF` when nothing matches.
pub async fn get_one(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, reference)): Path<(String, String, String)>,
    QueryParams(query): QueryParams<ReferenceQuery>,
) -> Result<Response, ApiError> {
    let records = readable_tags(&state, &account, &namespace, &reponame).await?;
    let digest = reference.parse::<Digest>().ok();
    let blobs = state.mirror.stores().blobs.clone();
    let mut views = Vec::new();
    for t in records.into_iter().filter(|t| match &digest {
        Some(d) => &t.digest == d,
        None => t.name == reference,
    }) {
        let info = image_info(blobs.as_ref(), &t.digest).await;
        let own = info.config.as_ref().and_then(|c| c.platform.as_ref());
        if info.images.is_empty() {
            if query.matches(own) {
                views.push(Tag::new(&t, &info, TagManifest::of_tag(&t, &info)));
            }
            continue;
        }
        for image in info
            .images
            .iter()
            .filter(|i| query.matches(i.platform.as_ref()))
        {
            views.push(Tag::new(&t, &info, TagManifest::of_image(image)));
        }
    }
    if views.is_empty() {
        return Err(ApiError::no_such_ref(
            &format!("{namespace}/{reponame}"),
            &reference,
        ));
    }
    Ok(Json(views).into_response())
}

/// `DELETE /api/v0/repositories/{namespace}/{reponame}/tags/{tag}` (DTR:
/// write access) → `204`: the tag goes, its manifest stays (reachable by
/// digest until garbage collection); `404 NO_SUCH_TAG` when there is none.
pub async fn delete(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, tag)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let repo = authorize(
        &state,
        &account,
        &namespace,
        &reponame,
        AccessLevel::ReadWrite,
    )
    .await?;
    if !state
        .mirror
        .delete_tag(&repo.name, &tag, Some(&account.name))
        .await?
    {
        return Err(ApiError::no_such_tag(repo.name.as_str(), &tag));
    }
    tracing::info!(repository = %repo.name, tag, by = %account.name, "tag deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v0/repositories/{namespace}/{reponame}/tags/{tag}/history`
/// (read access, as the tag list): the tag's earlier values, newest first
/// (mirror-core's `TagHistoryEntry`: each with when it was tagged and
/// replaced, by what, and whether the repository still holds it, so
/// `@digest` still pulls). `404 NO_SUCH_TAG` for a tag with neither a
/// current value nor a history.
pub async fn history(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, tag)): Path<(String, String, String)>,
) -> Result<Json<Vec<TagHistoryEntry>>, ApiError> {
    let repo = authorize(
        &state,
        &account,
        &namespace,
        &reponame,
        AccessLevel::ReadOnly,
    )
    .await?;
    let repos = &state.mirror.stores().repos;
    let history = repos.tag_history(&repo.name, &tag).await?;
    if history.is_empty() && repos.tag(&repo.name, &tag).await?.is_none() {
        return Err(ApiError::no_such_tag(repo.name.as_str(), &tag));
    }
    Ok(Json(history))
}
