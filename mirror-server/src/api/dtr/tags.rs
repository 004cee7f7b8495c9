//! A repository's tags: the list (`GET .../tags`, paged like every DTR
//! list) and one reference (`GET .../tags/{reference}`, a tag or a digest).
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
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use mirror_core::Digest;
use mirror_core::manifest::Platform;
use mirror_core::store::TagRecord;
use serde::{Deserialize, Serialize};

use super::image_info::{ImageConfig, ImageInfo, IndexImage, image_info};
use super::paging::PageQuery;
use super::repositories::authorize;
use crate::accounts::{AccessLevel, Account};
use crate::api::extract::{QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;

/// Manifests summarized at once.
const CONCURRENCY: usize = 8;

/// A tag (DTR's `ListTag`, plus regmirror's fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TagView {
    name: String,
    digest: String,
    /// Not recorded: always empty.
    author: &'static str,
    /// When the tag got its current manifest.
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// No signatures are kept: always false.
    hash_mismatch: bool,
    /// No Notary: always false.
    in_notary: bool,
    manifest: ManifestView,
    /// Where the tag was mirrored from, when a policy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    mirroring: Option<MirroringView>,
    /// The media type of the tag's own manifest.
    media_type: String,
    /// The size of the tag's own manifest.
    size: u64,
    /// `os/arch[/variant]` of the image, or of each image of an index.
    platforms: Vec<String>,
    /// Config plus layers (an index: the sum over its images); absent
    /// when the stored manifest cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_size: Option<u64>,
}

/// DTR's `Manifest`: one image (or, in a list, the tag's index itself,
/// without a config or platform).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestView {
    digest: String,
    media_type: String,
    config_media_type: String,
    config_digest: String,
    /// The image's size: config plus layers (an index: the sum over its
    /// images); 0 when the stored manifest cannot be read.
    size: u64,
    /// When the image was built, as its config says (an index: its newest
    /// image); absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    author: String,
    os: String,
    os_version: String,
    architecture: String,
    /// Dockerfile lines are not kept: always empty.
    dockerfile: [(); 0],
}

impl ManifestView {
    /// The manifest `digest` of `media_type`, whose image is `image_size`
    /// bytes, with `config` and `platform` when it is an image.
    fn new(
        digest: String,
        media_type: String,
        image_size: Option<u64>,
        config: Option<&ImageConfig>,
        platform: Option<&Platform>,
    ) -> Self {
        let text = |f: fn(&ImageConfig) -> &Option<String>| {
            config.and_then(|c| f(c).clone()).unwrap_or_default()
        };
        ManifestView {
            digest,
            media_type,
            config_media_type: config.map(|c| c.media_type.clone()).unwrap_or_default(),
            config_digest: config.map(|c| c.digest.clone()).unwrap_or_default(),
            size: image_size.unwrap_or(0),
            created_at: config.and_then(|c| c.created.clone()),
            author: text(|c| &c.author),
            os: platform.map(|p| p.os.clone()).unwrap_or_default(),
            os_version: text(|c| &c.os_version),
            architecture: platform.map(|p| p.architecture.clone()).unwrap_or_default(),
            dockerfile: [],
        }
    }

    /// The tag's own manifest: an image, or an index (whose `createdAt` is
    /// its newest image's).
    fn of_tag(t: &TagRecord, info: &ImageInfo) -> Self {
        let config = info.config.as_ref();
        let mut view = ManifestView::new(
            t.digest.to_string(),
            t.media_type.clone(),
            info.image_size,
            config,
            config.and_then(|c| c.platform.as_ref()),
        );
        if config.is_none() {
            view.created_at = info
                .images
                .iter()
                .filter_map(|i| i.config.as_ref()?.created.as_deref())
                .filter_map(|c| DateTime::parse_from_rfc3339(c).ok())
                .max()
                .map(|c| c.to_rfc3339());
        }
        view
    }

    /// One image of the tag's index.
    fn of_image(image: &IndexImage) -> Self {
        ManifestView::new(
            image.digest.clone(),
            image.media_type.clone(),
            image.image_size,
            image.config.as_ref(),
            image.platform.as_ref(),
        )
    }
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

fn mirroring_view(t: &TagRecord) -> Option<MirroringView> {
    let policy = t.mirrored_by.clone()?;
    let from = t.mirrored_from.clone().unwrap_or_default();
    let (repo, tag) = from
        .rsplit_once(':')
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .unwrap_or((from.clone(), String::new()));
    Some(MirroringView {
        mirroring_policy_id: policy,
        digest: t.digest.to_string(),
        remote_repository: repo,
        remote_tag: tag,
    })
}

/// The view of `t` whose `manifest` is `manifest`.
fn tag_view(t: &TagRecord, info: &ImageInfo, manifest: ManifestView) -> TagView {
    TagView {
        name: t.name.clone(),
        digest: t.digest.to_string(),
        author: "",
        created_at: t.updated_at,
        updated_at: t.updated_at,
        hash_mismatch: false,
        in_notary: false,
        manifest,
        mirroring: mirroring_view(t),
        media_type: t.media_type.clone(),
        size: t.size,
        platforms: info.platforms.clone(),
        image_size: info.image_size,
    }
}

/// The tag as listed: its `manifest` is its own (an index for a
/// multi-platform tag).
async fn listed(state: &AppState, t: TagRecord) -> TagView {
    let info = image_info(state.mirror.stores().blobs.as_ref(), &t.digest).await;
    tag_view(&t, &info, ManifestView::of_tag(&t, &info))
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
    let tags: Vec<TagView> = futures_util::stream::iter(page.items)
        .map(|t| listed(&state, t))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    Ok(page.headers.respond(tags))
}

/// `GET .../tags/{reference}` query: keep only the images of this platform.
#[derive(Debug, Default, Deserialize)]
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
                views.push(tag_view(&t, &info, ManifestView::of_tag(&t, &info)));
            }
            continue;
        }
        for image in info
            .images
            .iter()
            .filter(|i| query.matches(i.platform.as_ref()))
        {
            views.push(tag_view(&t, &info, ManifestView::of_image(image)));
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
