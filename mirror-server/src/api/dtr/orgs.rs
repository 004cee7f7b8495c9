//! Organizations and teams, in the shapes DTR + UCP scripts use: UCP's
//! eNZi account API (`/enzi/v0/accounts`, organizations' `members` and
//! `teams`, teams' `members`) and DTR's team grants
//! (`/api/v0/repositories/{ns}/{repo}/teamAccess/{team}`,
//! `/api/v0/repositoryNamespaces/{ns}/teamAccess/{team}`,
//! `/api/v0/accounts/{org}/teams/{team}/repositoryAccess`). Who may do
//! what is `crate::orgs`'s; these handlers translate.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mirror_core::RepositoryName;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::accounts::{
    self, AccountView, CreateForm, UpdateForm, account_view, org_view, update_user,
};
use super::paging::{EnziPageQuery, PageQuery};
use super::repositories::authorize;
use crate::accounts::{AccessLevel, Account};
use crate::api::extract::{Admin, JsonBody, QueryParams, User};
use crate::error::ApiError;
use crate::orgs::{OrgError, OrgRole};
use crate::state::AppState;
use crate::store::records::{GrantTarget, OrgMember, Team};

/// A team as eNZi and DTR show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Team)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    id: String,
    /// The organization's name.
    #[serde(rename = "orgID")]
    org_id: String,
    name: String,
    description: String,
    members_count: u64,
}

fn team_view(t: &Team) -> TeamView {
    TeamView {
        id: t.id.clone(),
        org_id: t.org.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        members_count: t.members,
    }
}

/// A member as eNZi shows one (`isPublic` is always true here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Member)]
#[serde(rename_all = "camelCase")]
pub struct MemberView<'a> {
    member: AccountView<'a>,
    is_admin: bool,
    is_public: bool,
}

/// The account `name`'s view in a member list.
fn member_view<'a>(accounts: &'a [Account], name: &str, is_admin: bool) -> Option<MemberView<'a>> {
    accounts
        .iter()
        .find(|a| a.name == name)
        .map(|a| MemberView {
            member: account_view(a),
            is_admin,
            is_public: true,
        })
}

/// `?filter=` of the account list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountsQuery {
    /// `all` (default), `users`, `orgs`, `admins`, `non-admins`,
    /// `active-users` or `inactive-users`.
    filter: Option<String>,
}

/// `GET /enzi/v0/accounts`: administrators see every account and
/// organization; others themselves and their organizations.
pub async fn list_accounts(
    State(state): State<AppState>,
    User(caller): User,
    QueryParams(q): QueryParams<AccountsQuery>,
    QueryParams(paging): QueryParams<EnziPageQuery>,
) -> Result<Response, ApiError> {
    let filter = q.filter.as_deref().unwrap_or("all");
    let user_filter: fn(&Account) -> bool = match filter {
        "all" | "users" => |_| true,
        "orgs" => |_| false,
        "admins" => |a| a.is_admin,
        "non-admins" => |a| !a.is_admin,
        "active-users" => |a| a.is_active,
        "inactive-users" => |a| !a.is_active,
        other => {
            return Err(ApiError::field(
                "INVALID_PARAMETER",
                "filter",
                format!(
                    "{other:?} is not one of all, users, orgs, admins, non-admins, active-users, inactive-users"
                ),
            ));
        }
    };
    let member_of: Vec<String> = state
        .orgs
        .memberships(&caller.name)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let users: Vec<Account> = state
        .accounts
        .list()
        .await?
        .into_iter()
        .filter(|a| caller.is_admin || a.name == caller.name)
        .filter(user_filter)
        .collect();
    let orgs = match filter {
        "all" | "orgs" => state.orgs.list().await?,
        _ => Vec::new(),
    };
    let mut views: Vec<AccountView<'_>> = users.iter().map(account_view).collect();
    views.extend(
        orgs.iter()
            .filter(|o| caller.is_admin || member_of.contains(&o.name))
            .map(org_view),
    );
    views.sort_by(|a, b| a.name.cmp(b.name));
    let (page, next) = paging.page(views, |v| v.name);
    Ok(Json(json!({"accounts": page, "nextPageStart": next})).into_response())
}

/// `POST /enzi/v0/accounts` (administrators) → 201 with the account:
/// eNZi's `createAccount` takes DTR's form (a user, or with `isOrg` an
/// organization).
pub async fn create_account(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(form): JsonBody<CreateForm>,
) -> Result<Response, ApiError> {
    accounts::create_account(&state, &admin, form).await
}

/// `GET /enzi/v0/accounts/{name}`: oneself, one's organizations, or any
/// for administrators.
pub async fn get_account(
    State(state): State<AppState>,
    User(caller): User,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(org) = state.orgs.get(&name).await? {
        state.orgs.require(&caller, &name, OrgRole::Member).await?;
        return Ok(Json(org_view(&org)).into_response());
    }
    match state.accounts.get(&name).await? {
        Some(a) if caller.is_admin || caller.name == name => {
            Ok(Json(account_view(&a)).into_response())
        }
        _ => Err(ApiError::no_such_account(&name)),
    }
}

/// `PATCH /enzi/v0/accounts/{name}`: an organization (its administrators:
/// `fullName`) or a user (server administrators, as `PATCH
/// /api/v0/accounts/{name}`).
pub async fn update_account(
    State(state): State<AppState>,
    User(caller): User,
    Path(name): Path<String>,
    JsonBody(form): JsonBody<UpdateForm>,
) -> Result<Response, ApiError> {
    if state.orgs.get(&name).await?.is_some() {
        let org = state
            .orgs
            .update(&caller, &name, form.full_name.as_deref())
            .await?;
        return Ok(Json(org_view(&org)).into_response());
    }
    if !caller.is_admin {
        return Err(ApiError::not_authorized(
            "only administrators change accounts",
        ));
    }
    update_user(&state, &caller, &name, form).await
}

/// `DELETE /enzi/v0/accounts/{name}` (administrators) → 204: an
/// organization, with its teams and their grants (its repositories stay).
/// Users are deactivated, not deleted.
pub async fn delete_account(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.orgs.get(&name).await?.is_none() {
        if state.accounts.get(&name).await?.is_some() {
            return Err(ApiError::field(
                "INVALID_ACCOUNT",
                "name",
                "users are not deleted here: deactivate them (PATCH with {\"isActive\": false})",
            ));
        }
        return Err(ApiError::no_such_account(&name));
    }
    state.orgs.delete(&name).await?;
    tracing::info!(org = %name, by = %admin.name, "organization deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The views of `members`, with their accounts.
async fn members_json(
    state: &AppState,
    members: &[OrgMember],
) -> Result<Vec<serde_json::Value>, ApiError> {
    let accounts = state.accounts.list().await?;
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        if let Some(v) = member_view(&accounts, &m.name, m.is_admin) {
            out.push(serde_json::to_value(v).expect("plain fields serialize"));
        }
    }
    Ok(out)
}

/// `GET /enzi/v0/accounts/{org}/members` (its members).
pub async fn list_members(
    State(state): State<AppState>,
    User(caller): User,
    Path(org): Path<String>,
    QueryParams(paging): QueryParams<EnziPageQuery>,
) -> Result<Response, ApiError> {
    let members = state.orgs.members(&caller, &org).await?;
    let (page, next) = paging.page(members, |m| m.name.as_str());
    let members = members_json(&state, &page).await?;
    Ok(Json(json!({"members": members, "nextPageStart": next})).into_response())
}

/// `GET /enzi/v0/accounts/{org}/members/{member}`.
pub async fn get_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let members = state.orgs.members(&caller, &org).await?;
    let Some(m) = members.into_iter().find(|m| m.name == member) else {
        return Err(OrgError::NoSuchAccount(member).into());
    };
    let view = members_json(&state, std::slice::from_ref(&m)).await?;
    match view.into_iter().next() {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(OrgError::NoSuchAccount(m.name.clone()).into()),
    }
}

/// A membership: `{"isAdmin": bool, "isPublic": bool}` (`isPublic` is
/// accepted and ignored).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = SetMembership)]
#[serde(rename_all = "camelCase")]
pub struct MemberForm {
    /// An administrator of the organization (default false).
    #[serde(default)]
    is_admin: Option<bool>,
    /// Accepted, ignored.
    #[serde(default)]
    #[allow(dead_code)] // accepted for eNZi clients; every member is public here
    is_public: Option<bool>,
}

/// `PUT /enzi/v0/accounts/{org}/members/{member}` (its administrators).
pub async fn put_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, member)): Path<(String, String)>,
    JsonBody(form): JsonBody<MemberForm>,
) -> Result<Response, ApiError> {
    let m = state
        .orgs
        .set_member(&caller, &org, &member, form.is_admin)
        .await?;
    tracing::info!(org = %org, member = %m.name, admin = m.is_admin, by = %caller.name, "organization member set");
    let view = members_json(&state, std::slice::from_ref(&m)).await?;
    match view.into_iter().next() {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(OrgError::NoSuchAccount(m.name.clone()).into()),
    }
}

/// `DELETE /enzi/v0/accounts/{org}/members/{member}` → 204: out of the
/// organization and its teams.
pub async fn delete_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.orgs.remove_member(&caller, &org, &member).await?;
    tracing::info!(org = %org, member = %member, by = %caller.name, "organization member removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /enzi/v0/accounts/{org}/teams` (its members).
pub async fn list_teams(
    State(state): State<AppState>,
    User(caller): User,
    Path(org): Path<String>,
    QueryParams(paging): QueryParams<EnziPageQuery>,
) -> Result<Response, ApiError> {
    let teams = state.orgs.teams(&caller, &org).await?;
    let (page, next) = paging.page(teams, |t| t.name.as_str());
    let teams: Vec<_> = page.iter().map(team_view).collect();
    Ok(Json(json!({"teams": teams, "nextPageStart": next})).into_response())
}

/// A team's form: `name` (required to create) and `description`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamForm {
    /// Required to create: lower-case letters and digits, separated by
    /// `.`, `_`, `__` or `-`; unique in the organization.
    #[serde(default)]
    name: Option<String>,
    /// At most 255 characters.
    #[serde(default)]
    description: Option<String>,
}

/// `POST /enzi/v0/accounts/{org}/teams` (its administrators) → 201.
pub async fn create_team(
    State(state): State<AppState>,
    User(caller): User,
    Path(org): Path<String>,
    JsonBody(form): JsonBody<TeamForm>,
) -> Result<Response, ApiError> {
    let name = form
        .name
        .ok_or_else(|| ApiError::field("INVALID_JSON", "name", "a team needs a name"))?;
    let team = state
        .orgs
        .create_team(
            &caller,
            &org,
            &name,
            form.description.as_deref().unwrap_or(""),
        )
        .await?;
    tracing::info!(org = %org, team = %team.name, by = %caller.name, "team created");
    Ok((StatusCode::CREATED, Json(team_view(&team))).into_response())
}

/// `GET /enzi/v0/accounts/{org}/teams/{team}` (its organization's members).
pub async fn get_team(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let team = state
        .orgs
        .team(&caller, &org, &team, OrgRole::Member)
        .await?;
    Ok(Json(team_view(&team)).into_response())
}

/// `PATCH /enzi/v0/accounts/{org}/teams/{team}` (its administrators).
pub async fn update_team(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team)): Path<(String, String)>,
    JsonBody(form): JsonBody<TeamForm>,
) -> Result<Response, ApiError> {
    let team = state
        .orgs
        .update_team(
            &caller,
            &org,
            &team,
            form.name.as_deref(),
            form.description.as_deref(),
        )
        .await?;
    Ok(Json(team_view(&team)).into_response())
}

/// `DELETE /enzi/v0/accounts/{org}/teams/{team}` → 204, with its grants.
pub async fn delete_team(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.orgs.delete_team(&caller, &org, &team).await?;
    tracing::info!(org = %org, team = %team, by = %caller.name, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /enzi/v0/accounts/{org}/teams/{team}/members`.
pub async fn list_team_members(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team)): Path<(String, String)>,
    QueryParams(paging): QueryParams<EnziPageQuery>,
) -> Result<Response, ApiError> {
    let names = state.orgs.team_members(&caller, &org, &team).await?;
    let (page, next) = paging.page(names, |n| n.as_str());
    let members: Vec<OrgMember> = page
        .into_iter()
        .map(|name| OrgMember {
            name,
            is_admin: false,
        })
        .collect();
    let members = members_json(&state, &members).await?;
    Ok(Json(json!({"members": members, "nextPageStart": next})).into_response())
}

/// `GET /enzi/v0/accounts/{org}/teams/{team}/members/{member}`.
pub async fn get_team_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let names = state.orgs.team_members(&caller, &org, &team).await?;
    if !names.contains(&member) {
        return Err(OrgError::NoSuchAccount(member).into());
    }
    let m = OrgMember {
        name: member,
        is_admin: false,
    };
    let view = members_json(&state, std::slice::from_ref(&m)).await?;
    match view.into_iter().next() {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(OrgError::NoSuchAccount(m.name.clone()).into()),
    }
}

/// `PUT /enzi/v0/accounts/{org}/teams/{team}/members/{member}` (the
/// organization's administrators): adds the member (to the organization
/// too). A body is accepted and ignored.
pub async fn put_team_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    state
        .orgs
        .add_team_member(&caller, &org, &team, &member)
        .await?;
    tracing::info!(org = %org, team = %team, member = %member, by = %caller.name, "team member added");
    let m = OrgMember {
        name: member,
        is_admin: false,
    };
    let view = members_json(&state, std::slice::from_ref(&m)).await?;
    match view.into_iter().next() {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(OrgError::NoSuchAccount(m.name.clone()).into()),
    }
}

/// `DELETE /enzi/v0/accounts/{org}/teams/{team}/members/{member}` → 204.
pub async fn delete_team_member(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .orgs
        .remove_team_member(&caller, &org, &team, &member)
        .await?;
    tracing::info!(org = %org, team = %team, member = %member, by = %caller.name, "team member removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A team grant's body (`{"accessLevel": "read-write"}`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SetTeamAccess)]
#[serde(rename_all = "camelCase")]
pub struct TeamAccessForm {
    access_level: AccessLevel,
}

fn team_access_json(team: &Team, level: AccessLevel) -> serde_json::Value {
    json!({"accessLevel": level, "team": team_view(team)})
}

/// `GET /api/v0/repositories/{ns}/{repo}/teamAccess` (repository admins).
pub async fn list_repo_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, reponame)): Path<(String, String)>,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let repo = authorize(&state, &caller, &namespace, &reponame, AccessLevel::Admin).await?;
    let target = GrantTarget::Repository(repo.name.as_str().into());
    let access = state.orgs.access_on(&target).await?;
    let page = paging.page(access, |(t, _)| t.name.as_str());
    let list: Vec<_> = page
        .items
        .iter()
        .map(|(t, l)| team_access_json(t, *l))
        .collect();
    Ok(page.headers.respond(json!({
        "repository": {"namespace": namespace, "name": reponame, "id": repo.id},
        "teamAccessList": list,
    })))
}

/// The repository `ns/repo` (the caller its admin) and the team `team` of
/// its organization.
async fn repo_and_team(
    state: &AppState,
    caller: &Account,
    namespace: &str,
    reponame: &str,
    team: &str,
) -> Result<(RepositoryName, Team), ApiError> {
    let repo = authorize(state, caller, namespace, reponame, AccessLevel::Admin).await?;
    let team = state.orgs.repository_team(&repo.name, team).await?;
    Ok((repo.name, team))
}

/// `PUT /api/v0/repositories/{ns}/{repo}/teamAccess/{team}` (repository
/// admins; the team must be of the organization owning the repository).
pub async fn set_repo_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, reponame, team)): Path<(String, String, String)>,
    JsonBody(form): JsonBody<TeamAccessForm>,
) -> Result<Response, ApiError> {
    let (repo, team) = repo_and_team(&state, &caller, &namespace, &reponame, &team).await?;
    let target = GrantTarget::Repository(repo.as_str().into());
    state
        .orgs
        .set_access(&team, &target, form.access_level)
        .await?;
    tracing::info!(repository = %repo, team = %team.name, level = form.access_level.as_str(), by = %caller.name, "team access granted");
    let mut body = team_access_json(&team, form.access_level);
    body["repository"] = json!({"namespace": namespace, "name": reponame});
    Ok(Json(body).into_response())
}

/// `DELETE /api/v0/repositories/{ns}/{repo}/teamAccess/{team}` → 204.
pub async fn remove_repo_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, reponame, team)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (repo, team) = repo_and_team(&state, &caller, &namespace, &reponame, &team).await?;
    let target = GrantTarget::Repository(repo.as_str().into());
    state.orgs.remove_access(&team, &target).await?;
    tracing::info!(repository = %repo, team = %team.name, by = %caller.name, "team access removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The team `team` of the organization `namespace`, for a caller holding
/// `need` in it.
async fn namespace_team(
    state: &AppState,
    caller: &Account,
    namespace: &str,
    team: &str,
    need: OrgRole,
) -> Result<Team, ApiError> {
    Ok(state.orgs.team(caller, namespace, team, need).await?)
}

/// `GET /api/v0/repositoryNamespaces/{ns}/teamAccess` (the
/// organization's members).
pub async fn list_namespace_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path(namespace): Path<String>,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    state
        .orgs
        .require(&caller, &namespace, OrgRole::Member)
        .await?;
    let target = GrantTarget::Namespace(namespace.clone());
    let access = state.orgs.access_on(&target).await?;
    let page = paging.page(access, |(t, _)| t.name.as_str());
    let list: Vec<_> = page
        .items
        .iter()
        .map(|(t, l)| team_access_json(t, *l))
        .collect();
    Ok(page.headers.respond(json!({
        "namespace": {"name": namespace},
        "teamAccessList": list,
    })))
}

/// A team's level on the whole namespace, or 404
/// `NO_SUCH_NAMESPACE_TEAM_ACCESS`.
fn namespace_access_json(
    namespace: &str,
    team: &Team,
    level: Option<AccessLevel>,
) -> Result<Response, ApiError> {
    let Some(level) = level else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_NAMESPACE_TEAM_ACCESS",
            format!(
                "team {:?} has no access to namespace {namespace:?}",
                team.name
            ),
        ));
    };
    let mut body = team_access_json(team, level);
    body["namespace"] = json!({"name": namespace});
    Ok(Json(body).into_response())
}

/// `GET /api/v0/repositoryNamespaces/{ns}/teamAccess/{team}`.
pub async fn get_namespace_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, team)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let team = namespace_team(&state, &caller, &namespace, &team, OrgRole::Member).await?;
    let target = GrantTarget::Namespace(namespace.clone());
    let level = state
        .orgs
        .access_on(&target)
        .await?
        .into_iter()
        .find(|(t, _)| t.id == team.id)
        .map(|(_, l)| l);
    namespace_access_json(&namespace, &team, level)
}

/// `PUT /api/v0/repositoryNamespaces/{ns}/teamAccess/{team}` (the
/// organization's administrators): the team's level on every repository
/// of the namespace, present and future.
pub async fn set_namespace_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, team)): Path<(String, String)>,
    JsonBody(form): JsonBody<TeamAccessForm>,
) -> Result<Response, ApiError> {
    let team = namespace_team(&state, &caller, &namespace, &team, OrgRole::Admin).await?;
    let target = GrantTarget::Namespace(namespace.clone());
    state
        .orgs
        .set_access(&team, &target, form.access_level)
        .await?;
    tracing::info!(namespace = %namespace, team = %team.name, level = form.access_level.as_str(), by = %caller.name, "team namespace access granted");
    namespace_access_json(&namespace, &team, Some(form.access_level))
}

/// `DELETE /api/v0/repositoryNamespaces/{ns}/teamAccess/{team}` → 204.
pub async fn remove_namespace_team_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((namespace, team)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let team = namespace_team(&state, &caller, &namespace, &team, OrgRole::Admin).await?;
    let target = GrantTarget::Namespace(namespace.clone());
    if !state.orgs.remove_access(&team, &target).await? {
        return namespace_access_json(&namespace, &team, None);
    }
    tracing::info!(namespace = %namespace, team = %team.name, by = %caller.name, "team namespace access removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v0/accounts/{org}/teams/{team}/repositoryAccess` (the
/// organization's members): the repositories the team has a level on.
pub async fn team_repository_access(
    State(state): State<AppState>,
    User(caller): User,
    Path((org, team)): Path<(String, String)>,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let (team, access) = state.orgs.team_access(&caller, &org, &team).await?;
    let repos: Vec<(String, AccessLevel)> = access
        .into_iter()
        .filter_map(|(target, level)| match target {
            GrantTarget::Repository(name) => Some((name, level)),
            GrantTarget::Namespace(_) => None,
        })
        .collect();
    let page = paging.page(repos, |(name, _)| name.as_str());
    let list: Vec<_> = page
        .items
        .iter()
        .map(|(name, level)| {
            let (namespace, short) = name.split_once('/').unwrap_or(("", name.as_str()));
            json!({"accessLevel": level, "repository": {"namespace": namespace, "name": short}})
        })
        .collect();
    Ok(page.headers.respond(json!({
        "team": team_view(&team),
        "repositoryAccessList": list,
    })))
}
