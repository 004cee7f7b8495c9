//! Repositories: create, list (paged, see `paging`), get, delete; and
//! per-user access grants (`userAccess`, a regmirror extension: DTR grants
//! access through teams, which this server does not have). A repository
//! has every field of DTR 2.7's (so one read can be POSTed back to create
//! it) and also says how many tags it has, whether a poll mirroring policy
//! feeds it, and the caller's access level on it. Tags are in `tags.rs`.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mirror_core::store::{NewRepository, Repository, Visibility};
use mirror_core::{ErrorKind, RepositoryName};
use serde::{Deserialize, Serialize};

use super::paging::PageQuery;
use mirror_core::events::{EventKind, RepositoryChange};

use crate::accounts::{AccessLevel, Account};
use crate::api::extract::{JsonBody, QueryParams, User};
use crate::auth::{Caller, access_level, level_from, namespace_level};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::records::AccessMap;

/// Validates `namespace` and `name` separately (so the error names the
/// right field), then the whole name. The name may have several
/// components (`library/alpine`, as a proxy cache's repositories and
/// names pushed through `/v2` do); in a URL its slashes are
/// percent-encoded (`/api/v0/repositories/hub/library%2Falpine`).
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
    if RepositoryName::parse(name).is_err() {
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
    Ok(authorize_name(state, account, &name, need).await?.0)
}

/// [`authorize`] by name; also returns the caller's level.
pub async fn authorize_name(
    state: &AppState,
    account: &Account,
    name: &RepositoryName,
    need: AccessLevel,
) -> Result<(Repository, AccessLevel), ApiError> {
    let repo = state.mirror.stores().repos.repository(name).await?;
    let caller = Caller::User(account.clone());
    let level = access_level(
        &state.accounts,
        &caller,
        name,
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
    Ok((repo, level))
}

/// DTR's repository shape (every field DTR 2.7's `Repository` has), so
/// that what a script reads can be sent back to create a repository.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Repository)]
#[serde(rename_all = "camelCase")]
pub(super) struct RepositoryView {
    id: String,
    namespace: String,
    /// `user` (an account's namespace) or `organization`.
    namespace_type: &'static str,
    name: String,
    short_description: String,
    visibility: Visibility,
    created_at: DateTime<Utc>,
    #[serde(flatten)]
    #[schema(inline)]
    unsupported: Unsupported,
    #[serde(flatten)]
    #[schema(inline)]
    facts: Facts,
}

/// DTR repository settings this server does not have, with the values
/// that mean "off": no long description, no scanning, mutable tags, no tag
/// limit; pulls and pushes are not counted.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Unsupported {
    /// Not supported: always empty.
    long_description: &'static str,
    /// Not supported: always false.
    scan_on_push: bool,
    /// Not supported: always false.
    immutable_tags: bool,
    /// Not supported: always false.
    enable_manifest_lists: bool,
    /// Not counted: always 0.
    pulls: u64,
    /// Not counted: always 0.
    pushes: u64,
    /// Not supported: always 0 (no limit).
    tag_limit: u64,
}

/// What a repository view adds to DTR's shape (regmirror extensions).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Facts {
    /// How many tags it has.
    tag_count: u64,
    /// Whether an enabled poll mirroring policy feeds it.
    mirrored: bool,
    /// The caller's level on it: `admin` may manage its mirror policies
    /// and access.
    access_level: AccessLevel,
    /// When a proxy cache fills it on demand (pull-through): that cache's
    /// remote registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_from: Option<String>,
}

/// The facts of `repo` for a caller with `access_level`; `mirrored` is
/// the set of repositories an enabled policy feeds.
async fn facts(
    state: &AppState,
    repo: &Repository,
    mirrored: &HashSet<String>,
    access_level: AccessLevel,
) -> Result<Facts, ApiError> {
    Ok(Facts {
        tag_count: state.mirror.stores().repos.tag_count(&repo.name).await?,
        mirrored: mirrored.contains(repo.name.as_str()),
        access_level,
        cached_from: state
            .mirror
            .pull_through()
            .cache_of(&repo.name)
            .await?
            .map(|c| c.host),
    })
}

/// Repositories an enabled poll mirroring policy feeds (`local`: only
/// this one's policies are read).
async fn mirrored_set(
    state: &AppState,
    local: Option<&RepositoryName>,
) -> Result<HashSet<String>, ApiError> {
    Ok(state
        .mirror
        .policies(local)
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| p.local_repository.to_string())
        .collect())
}

fn view(repo: &Repository, users: &HashSet<String>, facts: Facts) -> RepositoryView {
    let namespace = repo.name.namespace().to_string();
    RepositoryView {
        id: repo.id.clone(),
        namespace_type: if users.contains(&namespace) {
            "user"
        } else {
            "organization"
        },
        namespace,
        name: repo.name.name_in_namespace().to_string(),
        short_description: repo.short_description.clone(),
        visibility: repo.visibility,
        created_at: repo.created_at,
        unsupported: Unsupported::default(),
        facts,
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

/// The create form (DTR's `createRepository`). A repository as `GET`
/// shows it is a valid form: the fields read here are DTR's, the others
/// (`id`, `namespace`, `accessLevel`, ...) are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepository {
    name: String,
    /// Default `private`: a mirror of a private upstream must not become public by accident.
    #[serde(default)]
    visibility: Option<Visibility>,
    /// At most 140 characters.
    #[serde(default)]
    #[schema(max_length = 140)]
    short_description: Option<String>,
    // Accepted for compatibility with DTR clients; not supported, ignored.
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    long_description: Option<String>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    scan_on_push: Option<bool>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    immutable_tags: Option<bool>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    enable_manifest_lists: Option<bool>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    tag_limit: Option<u64>,
}

/// `POST /api/v0/repositories/{namespace}` → 201.
///
/// Users create repositories in their own namespace. Server administrators
/// create them anywhere, also in namespaces no account has (DTR would
/// answer `NO_SUCH_ACCOUNT` there, but this server has no organizations:
/// an administrator's namespace such as `mirrors/` takes their place). Any
/// other namespace answers `404 NO_SUCH_ACCOUNT` to a user, whether an
/// account has that name or not, as `GET /accounts/{name}` does for other
/// users' accounts: user names cannot be probed.
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
    let caller = Caller::User(account.clone());
    let level = namespace_level(&state.accounts, &caller, name.owner_namespace()).await?;
    if level.is_none_or(|l| l < AccessLevel::ReadWrite) {
        return Err(ApiError::no_such_namespace(&namespace, &account.name));
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
    let created = EventKind::Repository(RepositoryChange::Created);
    state.mirror.emit(created, &repo.name, Some(&account.name));
    let users = user_names(&state).await?;
    // The creator is a server admin or owns the namespace: admin either way.
    let facts = Facts {
        tag_count: 0,
        mirrored: false,
        access_level: AccessLevel::Admin,
        cached_from: None,
    };
    Ok((StatusCode::CREATED, Json(view(&repo, &users, facts))).into_response())
}

async fn list_filtered(
    state: &AppState,
    account: &Account,
    paging: PageQuery,
    namespace: Option<&str>,
) -> Result<Response, ApiError> {
    let held = if account.is_admin {
        AccessMap::default()
    } else {
        state.accounts.access_map(&account.name).await?
    };
    let level_of = |r: &Repository| {
        let held = held.level(r.name.as_str(), r.name.owner_namespace());
        level_from(Some(account), &r.name, Some(r.visibility), held)
    };
    let mut visible: Vec<Repository> = state
        .mirror
        .stores()
        .repos
        .repositories()
        .await?
        .into_iter()
        .filter(|r| namespace.is_none_or(|ns| r.name.namespace() == ns))
        .filter(|r| level_of(r).is_some())
        .collect();
    visible.sort_by(|a, b| a.name.cmp(&b.name));
    let page = paging.page(visible, |r| r.name.as_str());
    let users = user_names(state).await?;
    let mirrored = mirrored_set(state, None).await?;
    let mut repositories = Vec::with_capacity(page.items.len());
    for repo in &page.items {
        let level = level_of(repo).unwrap_or(AccessLevel::ReadOnly);
        let facts = facts(state, repo, &mirrored, level).await?;
        repositories.push(view(repo, &users, facts));
    }
    Ok(page
        .headers
        .respond(serde_json::json!({"repositories": repositories})))
}

/// `GET /api/v0/repositories`: the repositories the caller can see.
pub async fn list_all(
    State(state): State<AppState>,
    User(account): User,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    list_filtered(&state, &account, paging, None).await
}

/// `GET /api/v0/repositories/{namespace}`.
pub async fn list_namespace(
    State(state): State<AppState>,
    User(account): User,
    Path(namespace): Path<String>,
    QueryParams(paging): QueryParams<PageQuery>,
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
    let name = repository_name(&namespace, &reponame, "reponame")?;
    let (repo, level) = authorize_name(&state, &account, &name, AccessLevel::ReadOnly).await?;
    let users = user_names(&state).await?;
    let mirrored = mirrored_set(&state, Some(&repo.name)).await?;
    let facts = facts(&state, &repo, &mirrored, level).await?;
    Ok(Json(view(&repo, &users, facts)).into_response())
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
    state.orgs.forget_repository(&repo.name).await?;
    // Its own webhooks go with it (before the event: a repository made
    // later under the name must not reach them); namespace and global
    // hooks hear REPO_DELETED.
    state
        .webhooks
        .store()
        .delete_webhooks_of(repo.name.as_str())
        .await?;
    tracing::info!(repository = %repo.name, by = %account.name, "repository deleted");
    let deleted = EventKind::Repository(RepositoryChange::Deleted);
    state.mirror.emit(deleted, &repo.name, Some(&account.name));
    Ok(StatusCode::NO_CONTENT)
}

/// One grant.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SetAccess)]
#[serde(rename_all = "camelCase")]
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
