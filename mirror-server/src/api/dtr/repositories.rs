//! Repositories: create, list, get, delete; their tags; and per-user access
//! grants (`userAccess`, a regmirror extension: DTR grants access through
//! teams, which this server does not have).

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mirror_core::store::{NewRepository, Repository, TagRecord, Visibility};
use mirror_core::{ErrorKind, RepositoryName};
use serde::{Deserialize, Serialize};

use super::super::extract::{JsonBody, QueryParams, User};
use crate::accounts::{AccessLevel, Account};
use crate::auth::{Caller, access_level, owns_namespace};
use crate::error::ApiError;
use crate::state::AppState;

/// Validates `namespace` and `name` separately (so the error names the
/// right field), then the whole name.
pub fn repository_name(
    namespace: &str,
    name: &str,
    name_field: &str,
) -> Result<RepositoryName, ApiError> {
    let bad = |field: &str, value: &str| {
        ApiError::field(
            "INVALID_REPOSITORY_NAME",
            field,
            format!(
                "{:?} is not valid: use lower-case letters and digits, separated by '.', '_', '__' or '-'",
                value.chars().take(100).collect::<String>()
            ),
        )
    };
    if namespace.contains('/') || RepositoryName::parse(namespace).is_err() {
        return Err(bad("namespace", namespace));
    }
    if name.contains('/') || RepositoryName::parse(name).is_err() {
        return Err(bad(name_field, name));
    }
    RepositoryName::parse(&format!("{namespace}/{name}"))
        .map_err(|e| ApiError::field("INVALID_REPOSITORY_NAME", name_field, e.reason))
}

/// The repository `namespace/reponame` if `account` has at least `need` on
/// it: `404 NO_SUCH_REPOSITORY` when it is missing or invisible to them,
/// `403 NOT_AUTHORIZED` when visible but the level is too low.
pub async fn authorize(
    state: &AppState,
    account: &Account,
    namespace: &str,
    reponame: &str,
    need: AccessLevel,
) -> Result<Repository, ApiError> {
    let name = repository_name(namespace, reponame, "reponame")?;
    let repo = state.mirror.stores().repos.repository(&name).await?;
    let caller = Caller::User(account.clone());
    let level = access_level(
        &state.accounts,
        &caller,
        &name,
        repo.as_ref().map(|r| r.visibility),
    )
    .await?;
    let (Some(repo), Some(level)) = (repo, level) else {
        return Err(ApiError::no_such_repository(name.as_str()));
    };
    if level < need {
        return Err(ApiError::not_authorized(format!(
            "this needs {} access to repository {name}; you have {}",
            need.as_str(),
            level.as_str()
        )));
    }
    Ok(repo)
}

/// DTR's repository shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryView {
    id: String,
    namespace: String,
    namespace_type: &'static str,
    name: String,
    short_description: String,
    visibility: Visibility,
    created_at: DateTime<Utc>,
}

fn view(repo: &Repository, users: &HashSet<String>) -> RepositoryView {
    let namespace = repo.name.namespace().to_string();
    RepositoryView {
        id: repo.id.clone(),
        namespace_type: if users.contains(&namespace) {
            "user"
        } else {
            "organization"
        },
        namespace,
        name: repo.name.short_name().to_string(),
        short_description: repo.short_description.clone(),
        visibility: repo.visibility,
        created_at: repo.created_at,
    }
}

async fn user_names(state: &AppState) -> Result<HashSet<String>, ApiError> {
    Ok(state
        .accounts
        .list()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect())
}

/// The create form (DTR's `createRepository`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRepository {
    name: String,
    /// Default `private`: a mirror of a private upstream must not become public by accident.
    #[serde(default)]
    visibility: Option<Visibility>,
    #[serde(default)]
    short_description: Option<String>,
    // Accepted for compatibility with DTR clients; not supported, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    long_description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    scan_on_push: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    immutable_tags: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    enable_manifest_lists: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    tag_limit: Option<u64>,
}

/// `POST /api/v0/repositories/{namespace}` → 201.
pub async fn create(
    State(state): State<AppState>,
    User(account): User,
    Path(namespace): Path<String>,
    JsonBody(form): JsonBody<CreateRepository>,
) -> Result<Response, ApiError> {
    let name = repository_name(&namespace, &form.name, "name")?;
    let short_description = form.short_description.unwrap_or_default();
    if short_description.chars().count() > 140 {
        return Err(ApiError::field(
            "INVALID_JSON",
            "shortDescription",
            "longer than 140 characters",
        ));
    }
    if !account.is_admin && !owns_namespace(&account, &name) {
        return Err(ApiError::not_authorized(format!(
            "only administrators can create repositories outside your namespace {:?}",
            account.name
        )));
    }
    let repo = state
        .mirror
        .create_repository(NewRepository {
            name: name.clone(),
            visibility: form.visibility.unwrap_or(Visibility::Private),
            short_description,
        })
        .await
        .map_err(|e| {
            ApiError::mirror_or(e, ErrorKind::Conflict, || {
                ApiError::repository_exists(name.as_str())
            })
        })?;
    tracing::info!(repository = %repo.name, by = %account.name, "repository created");
    let users = user_names(&state).await?;
    Ok((StatusCode::CREATED, Json(view(&repo, &users))).into_response())
}

/// Paging of repository lists (DTR: `pageStart`, `pageSize`, `count`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    /// The first repository (`namespace/name`) of the page, from `X-Next-Page-Start`.
    page_start: Option<String>,
    /// At most this many (default 10, at most 1000).
    page_size: Option<usize>,
    /// Also return the total in `X-Resource-Count`.
    count: Option<bool>,
}

async fn list_filtered(
    state: &AppState,
    account: &Account,
    paging: Paging,
    namespace: Option<&str>,
) -> Result<Response, ApiError> {
    let size = paging.page_size.unwrap_or(10);
    if size == 0 || size > 1000 {
        return Err(ApiError::invalid_parameter(
            "pageSize",
            "must be between 1 and 1000",
        ));
    }
    let grants = if account.is_admin {
        Default::default()
    } else {
        state.accounts.grants_of(&account.name).await?
    };
    let mut visible: Vec<Repository> = state
        .mirror
        .stores()
        .repos
        .repositories()
        .await?
        .into_iter()
        .filter(|r| namespace.is_none_or(|ns| r.name.namespace() == ns))
        .filter(|r| {
            account.is_admin
                || r.visibility == Visibility::Public
                || owns_namespace(account, &r.name)
                || grants.contains_key(r.name.as_str())
        })
        .collect();
    visible.sort_by(|a, b| a.name.cmp(&b.name));
    let total = visible.len();
    let start = paging.page_start.unwrap_or_default();
    let mut page: Vec<Repository> = visible
        .into_iter()
        .filter(|r| r.name.as_str() >= start.as_str())
        .take(size + 1)
        .collect();
    let next = (page.len() > size).then(|| page.pop().expect("len > size").name.to_string());
    let users = user_names(state).await?;
    let repositories: Vec<_> = page.iter().map(|r| view(r, &users)).collect();
    let mut resp = Json(serde_json::json!({"repositories": repositories})).into_response();
    let headers: &mut HeaderMap = resp.headers_mut();
    if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        headers.insert("x-next-page-start", next);
    }
    if paging.count == Some(true) {
        headers.insert("x-resource-count", HeaderValue::from(total));
    }
    Ok(resp)
}

/// `GET /api/v0/repositories`: the repositories the caller can see.
pub async fn list_all(
    State(state): State<AppState>,
    User(account): User,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<Response, ApiError> {
    list_filtered(&state, &account, paging, None).await
}

/// `GET /api/v0/repositories/{namespace}`.
pub async fn list_namespace(
    State(state): State<AppState>,
    User(account): User,
    Path(namespace): Path<String>,
    QueryParams(paging): QueryParams<Paging>,
) -> Result<Response, ApiError> {
    if namespace.contains('/') || RepositoryName::parse(&namespace).is_err() {
        return Err(ApiError::field(
            "INVALID_REPOSITORY_NAME",
            "namespace",
            format!("{namespace:?} is not a valid namespace"),
        ));
    }
    list_filtered(&state, &account, paging, Some(&namespace)).await
}

/// `GET /api/v0/repositories/{namespace}/{reponame}`.
pub async fn get_one(
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
    let users = user_names(&state).await?;
    Ok(Json(view(&repo, &users)).into_response())
}

/// `DELETE /api/v0/repositories/{namespace}/{reponame}` → 204. Removes the
/// repository's tags, its policies and its access grants; blobs stay for
/// garbage collection.
pub async fn delete(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    for policy in state.mirror.policies(Some(&repo.name)).await? {
        state.mirror.delete_policy(&policy.id).await?;
    }
    state
        .mirror
        .stores()
        .repos
        .delete_repository(&repo.name)
        .await?;
    state.accounts.forget_repository(&repo.name).await?;
    tracing::info!(repository = %repo.name, by = %account.name, "repository deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A tag as listed (DTR's `ListTag`, reduced to what this server knows).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TagView {
    name: String,
    digest: String,
    media_type: String,
    size: u64,
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

fn tag_view(t: TagRecord) -> TagView {
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
        updated_at: t.updated_at,
        mirroring,
    }
}

/// `GET /api/v0/repositories/{namespace}/{reponame}/tags`.
pub async fn tags(
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
    let tags: Vec<TagView> = state
        .mirror
        .stores()
        .repos
        .tags(&repo.name)
        .await?
        .into_iter()
        .map(tag_view)
        .collect();
    Ok(Json(tags).into_response())
}

/// One grant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessForm {
    access_level: AccessLevel,
}

/// `GET .../userAccess` (repository admin): explicit grants.
pub async fn list_access(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    let grants: Vec<_> = state
        .accounts
        .grants_on(&repo.name)
        .await?
        .into_iter()
        .map(|(user, level)| serde_json::json!({"username": user, "accessLevel": level}))
        .collect();
    Ok(Json(grants).into_response())
}

/// `PUT .../userAccess/{username}` `{"accessLevel": "read-only"}` (repository admin).
pub async fn set_access(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, username)): Path<(String, String, String)>,
    JsonBody(form): JsonBody<AccessForm>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    state
        .accounts
        .set_grant(&username, &repo.name, form.access_level)
        .await?;
    tracing::info!(repository = %repo.name, user = %username, level = form.access_level.as_str(), by = %account.name, "access granted");
    Ok(
        Json(serde_json::json!({"username": username, "accessLevel": form.access_level}))
            .into_response(),
    )
}

/// `DELETE .../userAccess/{username}` → 204 (repository admin).
pub async fn remove_access(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame, username)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let repo = authorize(&state, &account, &namespace, &reponame, AccessLevel::Admin).await?;
    if !state.accounts.remove_grant(&username, &repo.name).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_ACCESS_GRANT",
            format!("{username:?} has no explicit access to {}", repo.name),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
