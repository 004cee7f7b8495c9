//! One documentation-only function per operation, in the order of
//! `ROUTES`: `#[utoipa::path]` reads the operation from its attribute (the
//! handler it documents is named in its doc comment), and the parameter,
//! body and answer types are the handlers' own. The functions are never
//! called.

// The functions exist for their attributes.
#![allow(dead_code)]

use mirror_core::api::{ErrorBody, PolicyView, RegistryCheck, Tag};
use mirror_core::store::TagHistoryEntry;
use mirror_core::{LogLine, PolicyForm};
use utoipa::IntoParams;

use super::super::accounts::{
    AccountView, CreateForm as CreateAccount, PasswordForm, TokenForm, TokenQuery, TokenUpdateForm,
    TokenView, UpdateForm as UpdateAccount,
};
use super::super::crons::CreateForm as CronCreate;
use super::super::jobs::{ListQuery as JobsQuery, LogsQuery, SubmitForm};
use super::super::orgs::{
    AccountsQuery, MemberForm, MemberView, TeamAccessForm, TeamForm, TeamView,
};
use super::super::paging::{EnziPageQuery, PageQuery};
use super::super::policies::CreateQuery;
use super::super::repositories::{AccessForm, CreateRepository, RepositoryView};
use super::super::tags::ReferenceQuery;
use super::super::webhooks::{
    CreateForm as CreateWebhook, DeliveryView, TestForm as TestWebhook,
    TestResult as WebhookTestResult, TypeQuery as WebhookTypeQuery, UpdateForm as UpdateWebhook,
    WebhookView,
};
use super::schemas::{
    AccessGrant, AccountList, AccountPage, BearerToken, CreatePollMirroringPolicy, CronList,
    Features, JobList, JobView, MemberPage, NamespaceTeamAccess, NamespaceTeamAccessList,
    NewApiToken, RemoteRegistryForm, RepoTeamAccess, RepoTeamAccessList, RepositoryList, TeamPage,
    TeamRepoAccessList,
};
use crate::scheduler::Cron;
use crate::settings::{Settings, SettingsForm};

// The answers most operations share.
const UNAUTHENTICATED: &str = "Not authenticated (`NOT_AUTHENTICATED`): send Basic credentials or a bearer token. \
     No challenge is sent.";
const NOT_ADMIN: &str = "Authenticated, but not allowed (`NOT_AUTHORIZED`).";
const NEEDS_REPO_ADMIN: &str = "Needs `admin` on the repository (`NOT_AUTHORIZED`).";
const NO_SUCH_REPOSITORY: &str = "`NO_SUCH_REPOSITORY`: missing, or not visible to the caller.";
const NO_SUCH_POLICY: &str = "`NO_SUCH_REPOSITORY` or `NO_SUCH_POLL_MIRRORING_POLICY`.";
const JOB_DENIED: &str = "Authenticated, but not allowed (`NOT_AUTHORIZED`): also for a job that \
                          does not exist, unless the caller is a server administrator.";
const NO_SUCH_JOB: &str = "`NO_SUCH_JOB`.";
const NO_SUCH_CRON: &str = "`NO_SUCH_CRON`.";
const NO_SUCH_ACCOUNT: &str = "`NO_SUCH_ACCOUNT`.";
const NO_SUCH_TOKEN: &str = "`NO_SUCH_API_TOKEN`.";
const OTHER_USERS_TOKENS: &str = "Only administrators manage other users' tokens \
                                  (`NOT_AUTHORIZED`).";
const BAD_PAGING: &str =
    "A `pageSize` that is not an integer, or a bad `count` (`INVALID_PARAMETER`).";
const BAD_PROXY_CACHE: &str = "A field is invalid or missing (`INVALID_PARAMETER`), named in \
                               `detail.field`; or the remote-host guard refuses `remoteHost`.";
const NO_SUCH_PROXY_CACHE: &str = "`NOT_FOUND`: no cache on that namespace.";
const BAD_PARAMETER: &str = "A bad parameter (`INVALID_PARAMETER`), named in `detail.field`.";
const TOO_MANY_LOGINS: &str = "Too many failed logins (`TOO_MANY_REQUESTS`), with `Retry-After`.";
const NO_SUCH_ORG: &str = "`NO_SUCH_ACCOUNT`: no such organization, or the caller is neither \
                           its member nor a server administrator.";
const NO_SUCH_TEAM: &str = "`NO_SUCH_ACCOUNT` (no such organization, or not visible to the \
                            caller, as for `listOrgMembers`) or `NO_SUCH_TEAM`.";
const NEEDS_ORG_ADMIN: &str = "A member of the organization, but not its administrator \
                               (`NOT_AUTHORIZED`).";
const BAD_LIMIT: &str = "A `limit` that is not an integer (`INVALID_PARAMETER`).";
const ORG_MEMBERS: &str = "For the organization's members and server administrators; to anyone \
                           else the organization does not exist.";
const ORG_ADMINS: &str = "For the organization's administrators (members with `isAdmin`) and \
                          server administrators; other members get `403`, anyone else `404`.";
const REPOSITORY_ADMINS_TOO: &str = "Server administrators, and administrators of the \
                                     repository whose policy the job polls (a `poll_mirror` job \
                                     with `policyID`).";

/// `{namespace}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct NamespacePath {
    /// Namespace: a user name or organization.
    namespace: String,
}

/// `{namespace}/{reponame}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct RepoPath {
    /// Namespace: a user name or organization.
    namespace: String,
    /// Repository name within the namespace.
    reponame: String,
}

/// `{namespace}/{reponame}/tags/{reference}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct TagPath {
    /// Namespace: a user name or organization.
    namespace: String,
    /// Repository name within the namespace.
    reponame: String,
    /// A tag name, or (to read) a manifest digest (`sha256:...`).
    reference: String,
}

/// `{namespace}/{reponame}/userAccess/{username}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct GrantPath {
    /// Namespace: a user name or organization.
    namespace: String,
    /// Repository name within the namespace.
    reponame: String,
    /// The user.
    username: String,
}

/// `{namespace}/{reponame}/pollMirroringPolicies/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct PolicyPath {
    /// Namespace: a user name or organization.
    namespace: String,
    /// Repository name within the namespace.
    reponame: String,
    /// Policy ID.
    id: String,
}

/// `/pollMirroringPolicies/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct PolicyIdPath {
    /// Policy ID.
    id: String,
}

/// `/jobs/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct JobPath {
    /// Job ID.
    id: String,
}

/// `/crons/{action}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct CronPath {
    /// The action the cron submits, e.g. `poll_mirror`.
    action: String,
}

/// `/accounts/{name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct AccountPath {
    /// The user name.
    name: String,
}

/// `/accounts/{org}/teams/{team}` (and eNZi's).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct TeamPath {
    /// The organization's name.
    org: String,
    /// The team's name.
    team: String,
}

/// `{namespace}/{reponame}/teamAccess/{team}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct RepoTeamPath {
    /// Namespace: an organization (teams are granted only inside their
    /// organization's namespace).
    namespace: String,
    /// Repository name within the namespace.
    reponame: String,
    /// A team of the organization.
    team: String,
}

/// `/repositoryNamespaces/{namespace}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct OrgNamespacePath {
    /// Namespace: an organization.
    namespace: String,
}

/// `/repositoryNamespaces/{namespace}/teamAccess/{team}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct NamespaceTeamPath {
    /// Namespace: an organization.
    namespace: String,
    /// A team of the organization.
    team: String,
}

/// `/enzi/v0/accounts/{name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct EnziAccountPath {
    /// A user or organization name.
    name: String,
}

/// `/enzi/v0/accounts/{org}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct OrgPath {
    /// The organization's name.
    org: String,
}

/// `/enzi/v0/accounts/{org}/members/{member}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct OrgMemberPath {
    /// The organization's name.
    org: String,
    /// The member's user name.
    member: String,
}

/// `/enzi/v0/accounts/{org}/teams/{team}/members/{member}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct TeamMemberPath {
    /// The organization's name.
    org: String,
    /// The team's name.
    team: String,
    /// The member's user name.
    member: String,
}

/// `/api_tokens/{hashedtoken}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct TokenPath {
    /// The token's `hashedToken`.
    hashedtoken: String,
}

/// Documents `openapi::document` at `/openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "getOpenAPI", tag = "meta",
    summary = "This document.",
    security(),
    responses((status = 200, description = "The OpenAPI document.", body = Object)),
)]
fn get_openapi() {}

/// Documents `openapi::document` at `/docs.json`.
#[utoipa::path(
    get, path = "/docs.json", operation_id = "getDocsJson", tag = "meta",
    summary = "This document, where DTR serves its API description (scripts read \
               `.info.version`).",
    security(),
    responses((status = 200, description = "The OpenAPI document.", body = Object)),
)]
fn get_docs_json() {}

/// Documents `repositories::list_all`.
#[utoipa::path(
    get, path = "/repositories", operation_id = "listRepositories", tag = "repositories",
    summary = "List the repositories the caller can see, each with its tag count, whether a \
               mirror feeds it and the caller's access level.",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of repositories, sorted by name (`pageStart` is \
                                      a `namespace/name`).",
         body = inline(RepositoryList),
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn list_repositories() {}

/// Documents `repositories::list_namespace`.
#[utoipa::path(
    get, path = "/repositories/{namespace}", operation_id = "listNamespaceRepositories",
    tag = "repositories",
    summary = "List the repositories of a namespace that the caller can see (as \
               `listRepositories`).",
    params(NamespacePath, PageQuery),
    responses(
        (status = 200, description = "A page of repositories.",
         body = inline(RepositoryList),
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = "An invalid namespace (`INVALID_REPOSITORY_NAME`), a \
                                      `pageSize` that is not an integer or a bad `count` \
                                      (`INVALID_PARAMETER`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn list_namespace_repositories() {}

/// Documents `repositories::create`.
#[utoipa::path(
    post, path = "/repositories/{namespace}", operation_id = "createRepository",
    tag = "repositories",
    summary = "Create a repository.",
    description = "Users create repositories in their own namespace, and in an organization's \
                   namespace where they hold `read-write` on the whole namespace (its \
                   administrators, and the members of a team granted it: \
                   `setNamespaceTeamAccess`). Server administrators create them anywhere, also \
                   in namespaces no user or organization has (such as `mirrors`).",
    params(NamespacePath),
    request_body = CreateRepository,
    responses(
        (status = 201, description = "Created.", body = RepositoryView),
        (status = 400, description = "Invalid name or body (`INVALID_REPOSITORY_NAME`, \
                                      `INVALID_JSON`), or the repository exists \
                                      (`REPOSITORY_EXISTS`, as DTR answers it).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT`: a user named a namespace they may not \
                                      create repositories in (whether an account has that name \
                                      or not, so names cannot be probed).",
         body = ErrorBody),
    ),
)]
fn create_repository() {}

/// Documents `repositories::get_one`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}", operation_id = "getRepository",
    tag = "repositories",
    summary = "Get a repository, with its tag count, whether a mirror feeds it and the \
               caller's access level.",
    params(RepoPath),
    responses(
        (status = 200, description = "The repository.", body = RepositoryView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn get_repository() {}

/// Documents `repositories::delete`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}", operation_id = "deleteRepository",
    tag = "repositories",
    summary = "Delete a repository with its tags, policies and access grants.",
    params(RepoPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn delete_repository() {}

/// Documents `tags::list`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/tags", operation_id = "listTags",
    tag = "repositories",
    summary = "List a repository's tags, a page at a time, by name: DTR's `ListTag` (with the \
               `manifest` object and, for mirrored tags, `mirroring`) plus the image's \
               platforms and size.",
    params(
        RepoPath, PageQuery,
        ("includeManifests" = Option<bool>, Query,
         description = "Accepted for DTR clients and ignored: the `manifest` object is always \
                        included."),
    ),
    responses(
        (status = 200, description = "A page of tags, sorted by name (`pageStart` is a tag \
                                      name).",
         body = Vec<Tag>,
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_tags() {}

/// Documents `tags::get_one`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/tags/{reference}",
    operation_id = "getTag", tag = "repositories",
    summary = "One tag or digest, as DTR 2.7: an array of tags. For a tag name, the tag once \
               per image of its index (each with that image's `manifest`: digest, platform, \
               config, size, creation time), or once for an image; for a digest, every tag on \
               it.",
    params(TagPath, ReferenceQuery),
    responses(
        (status = 200, description = "The matching tags.", body = Vec<Tag>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "No such repository (`NO_SUCH_REPOSITORY`), or no such \
                                      tag or digest, or none for the platform asked \
                                      (`NO_SUCH_REF`).",
         body = ErrorBody),
    ),
)]
fn get_tag() {}

/// Documents `tags::delete`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}/tags/{reference}",
    operation_id = "deleteTag", tag = "repositories",
    summary = "Delete a tag (read-write access). Its manifest stays, reachable by digest.",
    params(TagPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = "Needs `read-write` on the repository \
                                      (`NOT_AUTHORIZED`).",
         body = ErrorBody),
        (status = 404, description = "No such repository (`NO_SUCH_REPOSITORY`) or tag \
                                      (`NO_SUCH_TAG`).",
         body = ErrorBody),
    ),
)]
fn delete_tag() {}

/// Documents `tags::history`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/tags/{reference}/history",
    operation_id = "getTagHistory", tag = "repositories",
    summary = "A tag's earlier values, newest first (regmirror's): each manifest the tag \
               pointed at before it moved or was deleted, when it was tagged and replaced, \
               the digest that replaced it (`null`: deleted), the policy that had mirrored \
               it (`null`: pushed), and whether the repository still holds it (`available`: \
               it pulls by digest until garbage collection removes it). At most 50 per tag.",
    params(TagPath),
    responses(
        (status = 200, description = "The tag's history, newest first (empty for a tag \
                                      that never moved).",
         body = Vec<TagHistoryEntry>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "No such repository (`NO_SUCH_REPOSITORY`), or a tag \
                                      with neither a current value nor a history \
                                      (`NO_SUCH_TAG`).",
         body = ErrorBody),
    ),
)]
fn get_tag_history() {}

/// Documents `repositories::list_access`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/userAccess", operation_id = "listAccess",
    tag = "access",
    summary = "List the explicit access grants on a repository.",
    params(RepoPath),
    responses(
        (status = 200, description = "Grants.", body = Vec<AccessGrant>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_access() {}

/// Documents `repositories::set_access`.
#[utoipa::path(
    put, path = "/repositories/{namespace}/{reponame}/userAccess/{username}",
    operation_id = "setAccess", tag = "access",
    summary = "Grant a user an access level on a repository.",
    params(GrantPath),
    request_body = AccessForm,
    responses(
        (status = 200, description = "The grant.", body = AccessGrant),
        (status = 400, description = "Invalid body or unknown user.", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_REPOSITORY` or `NO_SUCH_ACCOUNT`.",
         body = ErrorBody),
    ),
)]
fn set_access() {}

/// Documents `repositories::remove_access`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}/userAccess/{username}",
    operation_id = "removeAccess", tag = "access",
    summary = "Remove a user's explicit access to a repository.",
    params(GrantPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_REPOSITORY` or `NO_SUCH_ACCESS_GRANT`.",
         body = ErrorBody),
    ),
)]
fn remove_access() {}

/// Documents `orgs::list_repo_team_access`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/teamAccess",
    operation_id = "listTeamAccess", tag = "access",
    summary = "List the teams granted an access level on a repository (repository \
               administrators), a page at a time, by team name.",
    description = "Only the grants on this repository: a team's level on its whole namespace is \
                   listed by `listNamespaceTeamAccess`.",
    params(RepoPath, PageQuery),
    responses(
        (status = 200, description = "A page of team grants, sorted by team name (`pageStart` \
                                      is a team name).",
         body = inline(RepoTeamAccessList),
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_team_access() {}

/// Documents `orgs::set_repo_team_access`.
#[utoipa::path(
    put, path = "/repositories/{namespace}/{reponame}/teamAccess/{team}",
    operation_id = "setTeamAccess", tag = "access",
    summary = "Grant a team an access level on a repository (repository administrators); the \
               team's members get it, with what they hold otherwise.",
    description = "The repository must be in an organization's namespace, and the team one of \
                   that organization's.",
    params(RepoTeamPath),
    request_body = TeamAccessForm,
    responses(
        (status = 200, description = "The grant.", body = RepoTeamAccess),
        (status = 400, description = "Invalid body (`INVALID_JSON`), or the repository is not \
                                      in an organization's namespace (`INVALID_JSON` with \
                                      `detail.field` `team`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_REPOSITORY` or `NO_SUCH_TEAM`.",
         body = ErrorBody),
    ),
)]
fn set_team_access() {}

/// Documents `orgs::remove_repo_team_access`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}/teamAccess/{team}",
    operation_id = "removeTeamAccess", tag = "access",
    summary = "Remove a team's access level on a repository (repository administrators); also \
               when it had none. Its level on the whole namespace stays.",
    params(RepoTeamPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "The repository is not in an organization's namespace \
                                      (`INVALID_JSON` with `detail.field` `team`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_REPOSITORY` or `NO_SUCH_TEAM`.",
         body = ErrorBody),
    ),
)]
fn remove_team_access() {}

/// Documents `orgs::list_namespace_team_access`.
#[utoipa::path(
    get, path = "/repositoryNamespaces/{namespace}/teamAccess",
    operation_id = "listNamespaceTeamAccess", tag = "access",
    summary = "List the teams granted an access level on every repository of an \
               organization's namespace, a page at a time, by team name.",
    description = ORG_MEMBERS,
    params(OrgNamespacePath, PageQuery),
    responses(
        (status = 200, description = "A page of team grants, sorted by team name (`pageStart` \
                                      is a team name).",
         body = inline(NamespaceTeamAccessList),
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_ORG, body = ErrorBody),
    ),
)]
fn list_namespace_team_access() {}

/// Documents `orgs::get_namespace_team_access`.
#[utoipa::path(
    get, path = "/repositoryNamespaces/{namespace}/teamAccess/{team}",
    operation_id = "getNamespaceTeamAccess", tag = "access",
    summary = "Get a team's access level on every repository of its organization's namespace.",
    description = ORG_MEMBERS,
    params(NamespaceTeamPath),
    responses(
        (status = 200, description = "The grant.", body = NamespaceTeamAccess),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (no such organization, or not visible \
                                      to the caller), `NO_SUCH_TEAM`, or the team has no level \
                                      on the namespace (`NO_SUCH_NAMESPACE_TEAM_ACCESS`).",
         body = ErrorBody),
    ),
)]
fn get_namespace_team_access() {}

/// Documents `orgs::set_namespace_team_access`.
#[utoipa::path(
    put, path = "/repositoryNamespaces/{namespace}/teamAccess/{team}",
    operation_id = "setNamespaceTeamAccess", tag = "access",
    summary = "Grant a team an access level on every repository of its organization's \
               namespace, present and future (`read-write` also lets its members create \
               repositories there).",
    description = ORG_ADMINS,
    params(NamespaceTeamPath),
    request_body = TeamAccessForm,
    responses(
        (status = 200, description = "The grant.", body = NamespaceTeamAccess),
        (status = 400, description = "Invalid body (`INVALID_JSON`).", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn set_namespace_team_access() {}

/// Documents `orgs::remove_namespace_team_access`.
#[utoipa::path(
    delete, path = "/repositoryNamespaces/{namespace}/teamAccess/{team}",
    operation_id = "removeNamespaceTeamAccess", tag = "access",
    summary = "Remove a team's access level on its organization's namespace; its grants on \
               single repositories stay.",
    description = ORG_ADMINS,
    params(NamespaceTeamPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (no such organization, or not visible \
                                      to the caller), `NO_SUCH_TEAM`, or the team had no level \
                                      on the namespace (`NO_SUCH_NAMESPACE_TEAM_ACCESS`).",
         body = ErrorBody),
    ),
)]
fn remove_namespace_team_access() {}

/// Documents `policies::list`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
    operation_id = "listPolicies", tag = "policies",
    summary = "List the poll mirroring policies of a repository.",
    params(RepoPath),
    responses(
        (status = 200, description = "Policies.", body = Vec<PolicyView>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_policies() {}

/// Documents `policies::create`.
#[utoipa::path(
    post, path = "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
    operation_id = "createPolicy", tag = "policies",
    summary = "Create a poll mirroring policy; the connection is checked first. With \
               `initialEvaluation=true` given explicitly, an enabled policy is also evaluated \
               at once: a `poll_mirror` job for it is submitted, its ID in `X-Job-ID`.",
    params(RepoPath, CreateQuery),
    request_body = CreatePollMirroringPolicy,
    responses(
        (status = 201, description = "Created.", body = PolicyView,
         headers(
             ("X-Job-ID" = String,
              description = "The `poll_mirror` job (parameters `{\"policyID\": id}`) that \
                             evaluates the new policy now; present when \
                             `initialEvaluation=true` was given (query or body) and the policy \
                             is enabled. The repository's administrators may read and cancel \
                             it (`/jobs/{id}`)."),
         )),
        (status = 200, description = "With `dryRun=true`: which remote tags the rules would \
                                      mirror; nothing is saved.",
         body = mirror_core::api::TagPreview),
        (status = 400, description = "Invalid field (`INVALID_POLL_MIRRORING_POLICY`, \
                                      `INVALID_JSON`) or the credentials cannot read the \
                                      remote repository (`REMOTE_REGISTRY_INVALID_PERMISSIONS`, \
                                      with the reason).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn create_policy() {}

/// Documents `policies::get_one`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
    operation_id = "getPolicy", tag = "policies",
    summary = "Get a poll mirroring policy.",
    params(PolicyPath),
    responses(
        (status = 200, description = "The policy.", body = PolicyView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_POLICY, body = ErrorBody),
    ),
)]
fn get_policy() {}

/// Documents `policies::get_by_id`.
#[utoipa::path(
    get, path = "/pollMirroringPolicies/{id}",
    operation_id = "getPolicyById", tag = "policies",
    summary = "Get a poll mirroring policy by its ID alone.",
    description = "A regmirror extension (DTR 2.7 reaches a policy only through its \
        repository), for clients that hold a policy's ID: a job's `policyID` \
        parameter, say. The policy is shown to whoever may see its local \
        repository; to anyone else it does not exist.",
    params(PolicyIdPath),
    responses(
        (status = 200, description = "The policy.", body = PolicyView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_POLICY, body = ErrorBody),
    ),
)]
fn get_policy_by_id() {}

/// Documents `policies::update`.
#[utoipa::path(
    put, path = "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
    operation_id = "updatePolicy", tag = "policies",
    summary = "Change a poll mirroring policy (partial update: the fields given; a change of \
               how the remote is reached is checked first). A new `remoteHost` or `username` \
               drops the stored secrets.",
    params(PolicyPath),
    request_body = PolicyForm,
    responses(
        (status = 200, description = "The updated policy.", body = PolicyView),
        (status = 400, description = "Invalid field or `REMOTE_REGISTRY_INVALID_PERMISSIONS`.",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_POLICY, body = ErrorBody),
    ),
)]
fn update_policy() {}

/// Documents `policies::delete`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
    operation_id = "deletePolicy", tag = "policies",
    summary = "Delete a poll mirroring policy (mirrored tags stay).",
    params(PolicyPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_POLICY, body = ErrorBody),
    ),
)]
fn delete_policy() {}

/// Documents `remote::check`.
#[utoipa::path(
    post, path = "/remote/registry", operation_id = "checkRemoteRegistry", tag = "policies",
    summary = "Check that credentials can read a remote repository (\"Connect\"); nothing is \
               saved.",
    request_body = RemoteRegistryForm,
    responses(
        (status = 201, description = "The remote answers and the credentials can read the \
                                      repository.",
         body = RegistryCheck),
        (status = 400, description = "Invalid field, or `REMOTE_REGISTRY_INVALID_PERMISSIONS` \
                                      with the reason (unreachable, TLS, refused \
                                      credentials).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn check_remote_registry() {}

/// Documents `proxy_caches::list`.
#[utoipa::path(
    get, path = "/proxyCaches", operation_id = "listProxyCaches", tag = "proxyCaches",
    summary = "Every pull-through cache (server administrators); passwords are never shown.",
    responses(
        (status = 200, description = "The caches, by namespace.",
         body = Vec<mirror_core::proxy_cache::ProxyCacheView>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn list_proxy_caches() {}

/// Documents `proxy_caches::create`.
#[utoipa::path(
    post, path = "/proxyCaches", operation_id = "createProxyCache", tag = "proxyCaches",
    summary = "Bind a local namespace to a remote registry (server administrators): pulls of \
               `<namespace>/<repository>` are served from the stores and fetched from the \
               remote on a miss. `namespace` and `remoteHost` are required.",
    request_body = mirror_core::proxy_cache::ProxyCacheForm,
    responses(
        (status = 201, description = "The cache.", body = mirror_core::proxy_cache::ProxyCacheView),
        (status = 400, description = BAD_PROXY_CACHE, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 409, description = "The namespace has a cache already, or holds repositories \
                                      (`CONFLICT`).", body = ErrorBody),
    ),
)]
fn create_proxy_cache() {}

/// Documents `proxy_caches::get_one`.
#[utoipa::path(
    get, path = "/proxyCaches/{namespace}", operation_id = "getProxyCache", tag = "proxyCaches",
    summary = "One pull-through cache (server administrators).",
    params(("namespace" = String, Path, description = "The cache's local namespace.")),
    responses(
        (status = 200, description = "The cache.", body = mirror_core::proxy_cache::ProxyCacheView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_PROXY_CACHE, body = ErrorBody),
    ),
)]
fn get_proxy_cache() {}

/// Documents `proxy_caches::update`.
#[utoipa::path(
    put, path = "/proxyCaches/{namespace}", operation_id = "updateProxyCache", tag = "proxyCaches",
    summary = "Change a pull-through cache (the fields given; server administrators). A new \
               `remoteHost` or `username` drops the stored password unless a new one is given.",
    params(("namespace" = String, Path, description = "The cache's local namespace.")),
    request_body = mirror_core::proxy_cache::ProxyCacheForm,
    responses(
        (status = 200, description = "The cache.", body = mirror_core::proxy_cache::ProxyCacheView),
        (status = 400, description = BAD_PROXY_CACHE, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_PROXY_CACHE, body = ErrorBody),
    ),
)]
fn update_proxy_cache() {}

/// Documents `proxy_caches::delete`.
#[utoipa::path(
    delete, path = "/proxyCaches/{namespace}", operation_id = "deleteProxyCache",
    tag = "proxyCaches",
    summary = "Delete a pull-through cache (server administrators); its repositories stay, no \
               longer filled.",
    params(("namespace" = String, Path, description = "The cache's local namespace.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_PROXY_CACHE, body = ErrorBody),
    ),
)]
fn delete_proxy_cache() {}

/// Documents `meta::settings`.
#[utoipa::path(
    get, path = "/meta/settings", operation_id = "getSettings", tag = "meta",
    summary = "The settings (server administrators).",
    responses(
        (status = 200, description = "The settings.", body = Settings),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn get_settings() {}

/// Documents `meta::update_settings`.
#[utoipa::path(
    post, path = "/meta/settings", operation_id = "updateSettings", tag = "meta",
    summary = "Change settings (server administrators): a partial body; fields left out are \
               kept.",
    request_body = SettingsForm,
    responses(
        (status = 202, description = "The settings now.", body = Settings),
        (status = 400, description = "A field of the wrong type (`INVALID_JSON`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn update_settings() {}

/// Documents `meta::features`.
#[utoipa::path(
    get, path = "/meta/features", operation_id = "getFeatures", tag = "meta",
    summary = "What this server offers, in DTR's fields (`mirroringLicensed` is true).",
    responses(
        (status = 200, description = "Features.", body = Features),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn get_features() {}

/// Documents `jobs::list`.
#[utoipa::path(
    get, path = "/jobs", operation_id = "listJobs", tag = "jobs",
    summary = "List jobs, most recently scheduled first (server administrators).",
    params(JobsQuery),
    responses(
        (status = 200, description = "Jobs.", body = inline(JobList)),
        (status = 400, description = BAD_PARAMETER, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn list_jobs() {}

/// Documents `jobs::submit`.
#[utoipa::path(
    post, path = "/jobs", operation_id = "submitJob", tag = "jobs",
    summary = "Submit a job (server administrators).",
    request_body = SubmitForm,
    responses(
        (status = 202, description = "Queued.", body = JobView),
        (status = 400, description = "Invalid submission (`INVALID_JOB`, `INVALID_JSON`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn submit_job() {}

/// Documents `jobs::get_one`.
#[utoipa::path(
    get, path = "/jobs/{id}", operation_id = "getJob", tag = "jobs",
    summary = "Get a job, with its live `progress` while it runs in this server.",
    description = REPOSITORY_ADMINS_TOO,
    params(JobPath),
    responses(
        (status = 200, description = "The job.", body = JobView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = JOB_DENIED, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
    ),
)]
fn get_job() {}

/// Documents `jobs::delete`.
#[utoipa::path(
    delete, path = "/jobs/{id}", operation_id = "deleteJob", tag = "jobs",
    summary = "Cancel a job if it runs and delete it with its log (server administrators).",
    params(JobPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
    ),
)]
fn delete_job() {}

/// Documents `jobs::cancel`.
#[utoipa::path(
    post, path = "/jobs/{id}/cancel", operation_id = "cancelJob", tag = "jobs",
    summary = "Cancel a job: a waiting one at once, a running one at its next check.",
    description = REPOSITORY_ADMINS_TOO,
    params(JobPath),
    responses(
        (status = 204, description = "Cancel requested."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = JOB_DENIED, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
    ),
)]
fn cancel_job() {}

/// Documents `jobs::logs` (and `log_stream::follow`).
#[utoipa::path(
    get, path = "/jobs/{id}/logs", operation_id = "getJobLogs", tag = "jobs",
    summary = "A job's log lines.",
    description = REPOSITORY_ADMINS_TOO,
    params(JobPath, LogsQuery),
    responses(
        (status = 200, description = "Without `stream`: a JSON array of lines. With \
                                      `stream=true`: one JSON line object per line \
                                      (`application/x-ndjson`), sent as the job writes them \
                                      (within a heartbeat, 2 s), until the job is finished.",
         content(
             (Vec<LogLine> = "application/json"),
             (LogLine = "application/x-ndjson"),
         )),
        (status = 400, description = BAD_PARAMETER, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = JOB_DENIED, body = ErrorBody),
        (status = 404, description = NO_SUCH_JOB, body = ErrorBody),
    ),
)]
fn get_job_logs() {}

/// Documents `crons::list`.
#[utoipa::path(
    get, path = "/crons", operation_id = "listCrons", tag = "crons",
    summary = "List crons (server administrators).",
    responses(
        (status = 200, description = "Crons.", body = inline(CronList)),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn list_crons() {}

/// Documents `crons::upsert`.
#[utoipa::path(
    post, path = "/crons", operation_id = "saveCron", tag = "crons",
    summary = "Create or replace the cron of an action (server administrators); the scheduler \
               picks it up at once.",
    request_body = CronCreate,
    responses(
        (status = 202, description = "Saved.", body = Cron),
        (status = 400, description = "Invalid schedule, action or parameters (`INVALID_CRON`, \
                                      `INVALID_JOB`, `INVALID_JSON`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn save_cron() {}

/// Documents `crons::get_one`.
#[utoipa::path(
    get, path = "/crons/{action}", operation_id = "getCron", tag = "crons",
    summary = "Get the cron of an action (server administrators).",
    params(CronPath),
    responses(
        (status = 200, description = "The cron.", body = Cron),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_CRON, body = ErrorBody),
    ),
)]
fn get_cron() {}

/// Documents `crons::delete`.
#[utoipa::path(
    delete, path = "/crons/{action}", operation_id = "deleteCron", tag = "crons",
    summary = "Delete the cron of an action; jobs it submitted are left alone (server \
               administrators).",
    params(CronPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_CRON, body = ErrorBody),
    ),
)]
fn delete_cron() {}

/// Documents `accounts::list`.
#[utoipa::path(
    get, path = "/accounts", operation_id = "listAccounts", tag = "accounts",
    summary = "List accounts, users and organizations (`isOrg`), by name (server \
               administrators).",
    responses(
        (status = 200, description = "Accounts, sorted by name.", body = inline(AccountList)),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
    ),
)]
fn list_accounts() {}

/// Documents `accounts::create`.
#[utoipa::path(
    post, path = "/accounts", operation_id = "createAccount", tag = "accounts",
    summary = "Create a user, or with `isOrg: true` an organization (server administrators).",
    description = "A user needs a `password`; an organization takes only `name` and \
                   `fullName` (its members and teams are managed at `/enzi/v0/accounts`). \
                   Names are unique among users and organizations.",
    request_body = CreateAccount,
    responses(
        (status = 201, description = "Created.", body = AccountView),
        (status = 400, description = "Invalid field, named in `detail.field` \
                                      (`INVALID_ACCOUNT`, `INVALID_JSON`), or a user without \
                                      `password` (`INVALID_ACCOUNT`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 409, description = "`ACCOUNT_EXISTS`: a user or organization has the name.",
         body = ErrorBody),
    ),
)]
fn create_account() {}

/// Documents `accounts::get_one`.
#[utoipa::path(
    get, path = "/accounts/{name}", operation_id = "getAccount", tag = "accounts",
    summary = "Get a user: oneself, or anyone for administrators (organizations: \
               `getEnziAccount`).",
    params(AccountPath),
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (also for another user's account, \
                                      unless the caller is an administrator).",
         body = ErrorBody),
    ),
)]
fn get_account() {}

/// Documents `accounts::update`.
#[utoipa::path(
    patch, path = "/accounts/{name}", operation_id = "updateAccount", tag = "accounts",
    summary = "Change an account's display name, administrator flag or active flag \
               (administrators). An inactive account is refused from its next request on, \
               with its password and its tokens alike.",
    params(AccountPath),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 400, description = "Invalid body (`INVALID_JSON`, `INVALID_ACCOUNT`; \
                                      administrators cannot demote or deactivate themselves).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = "Not an administrator (`NOT_AUTHORIZED`).",
         body = ErrorBody),
        (status = 404, description = NO_SUCH_ACCOUNT, body = ErrorBody),
    ),
)]
fn update_account() {}

/// Documents `accounts::change_password`.
#[utoipa::path(
    post, path = "/accounts/{name}/changePassword", operation_id = "changePassword",
    tag = "accounts",
    summary = "Change a password: one's own (with `oldPassword`), or anyone's for \
               administrators. The old password stops working at once; a wrong `oldPassword` \
               counts as a failed login.",
    description = "Needs the password: a request authenticated with an access token or a \
                   bearer token gets `403`.",
    params(AccountPath),
    request_body = PasswordForm,
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 400, description = "Invalid body, a wrong `oldPassword` or a too short \
                                      `newPassword` (`INVALID_JSON`, `INVALID_ACCOUNT` with \
                                      `detail.field`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = "Signed in with a token, not a password \
                                      (`NOT_AUTHORIZED`).",
         body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (also for another user's account, \
                                      unless the caller is an administrator).",
         body = ErrorBody),
        (status = 429, description = TOO_MANY_LOGINS, body = ErrorBody),
    ),
)]
fn change_password() {}

/// Documents `orgs::team_repository_access`.
#[utoipa::path(
    get, path = "/accounts/{org}/teams/{team}/repositoryAccess",
    operation_id = "listTeamRepositoryAccess", tag = "access",
    summary = "List the repositories a team is granted an access level on, a page at a time, \
               by repository name (its level on the whole namespace is not listed: see \
               `getNamespaceTeamAccess`).",
    description = ORG_MEMBERS,
    params(TeamPath, PageQuery),
    responses(
        (status = 200, description = "The team and a page of its grants, sorted by repository \
                                      (`pageStart` is a `namespace/name`).",
         body = inline(TeamRepoAccessList),
         headers(
             ("X-Next-Page-Start" = String,
              description = "The `pageStart` of the next page, when there is one."),
             ("X-Resource-Count" = i64,
              description = "How many items the whole list has (with `count=true`)."),
         )),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn list_team_repository_access() {}

/// Documents `accounts::list_tokens`.
#[utoipa::path(
    get, path = "/api_tokens", operation_id = "listTokens", tag = "accounts",
    summary = "List access tokens (never the secrets).",
    params(TokenQuery),
    responses(
        (status = 200, description = "Tokens.", body = Vec<TokenView>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = OTHER_USERS_TOKENS, body = ErrorBody),
    ),
)]
fn list_tokens() {}

/// Documents `accounts::create_token`.
#[utoipa::path(
    post, path = "/api_tokens", operation_id = "createToken", tag = "accounts",
    summary = "Create an access token; the token is in this answer only, and works wherever a \
               password does.",
    description = "Needs the password: a request authenticated with an access token or a \
                   bearer token gets `403`.",
    params(TokenQuery),
    request_body = TokenForm,
    responses(
        (status = 200, description = "The new token.", body = NewApiToken),
        (status = 400, description = "Invalid body.", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = "Signed in with a token, or another user's tokens and not \
                                      an administrator (`NOT_AUTHORIZED`).",
         body = ErrorBody),
    ),
)]
fn create_token() {}

/// Documents `accounts::delete_token`.
#[utoipa::path(
    delete, path = "/api_tokens/{hashedtoken}", operation_id = "deleteToken", tag = "accounts",
    summary = "Revoke an access token.",
    params(TokenPath, TokenQuery),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = OTHER_USERS_TOKENS, body = ErrorBody),
        (status = 404, description = NO_SUCH_TOKEN, body = ErrorBody),
    ),
)]
fn delete_token() {}

/// Documents `accounts::update_token`.
#[utoipa::path(
    patch, path = "/api_tokens/{hashedtoken}", operation_id = "updateToken", tag = "accounts",
    summary = "Change an access token's label, or deactivate it (`isActive: false`), which \
               refuses it from the next request on.",
    description = "A token an administrator deactivated is re-enabled only by an \
                   administrator (`403` for its owner).",
    params(TokenPath, TokenQuery),
    request_body = TokenUpdateForm,
    responses(
        (status = 200, description = "The token (never its secret).", body = TokenView),
        (status = 400, description = "Invalid body.", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = OTHER_USERS_TOKENS, body = ErrorBody),
        (status = 404, description = NO_SUCH_TOKEN, body = ErrorBody),
    ),
)]
fn update_token() {}

/// Documents `auth_token::issue` (a root route: its path item gets its own
/// `servers`).
#[utoipa::path(
    get, path = "/auth/token", operation_id = "getBearerToken", tag = "accounts",
    summary = "DTR's token endpoint: Basic credentials (a password or an access token) in, a \
               bearer token out, to send as `Authorization: Bearer` on `/api/v0` and `/v2`.",
    description = "It acts as the account, with its rights at each request, for 15 minutes; it \
                   stops at once when the account is deactivated, the access token it came \
                   from is revoked, or (minted with the password) the password changes. Like an \
                   access token it cannot create access tokens or change the password, and it \
                   cannot mint another bearer token. `service` and `scope` are accepted and \
                   ignored. It is also the realm of the `/v2` Bearer challenge: without \
                   credentials it answers the anonymous token `anonymous`, which stands for \
                   no credentials (a Docker daemon using this server as a registry mirror \
                   pulls public repositories and anonymous caches with it).",
    security((), ("basic" = [])),
    params(
        ("service" = Option<String>, Query, description = "Ignored."),
        ("scope" = Option<String>, Query,
         description = "Ignored: the token carries the account's rights."),
    ),
    responses(
        (status = 200, description = "A bearer token, or the anonymous one without \
                                      credentials (`Cache-Control: no-store`).",
         body = BearerToken),
        (status = 401, description = "Wrong Basic credentials (`NOT_AUTHENTICATED`); bearer \
                                      tokens are refused here.",
         body = ErrorBody),
        (status = 429, description = TOO_MANY_LOGINS, body = ErrorBody),
    ),
)]
fn get_bearer_token() {}

/// Documents `ca::get` (a root route, like `/auth/token`).
#[utoipa::path(
    get, path = "/ca", operation_id = "getCA", tag = "meta",
    summary = "The CA certificate of the server's TLS certificate (PEM), as DTR serves it: \
               trust it to pull and push (`/etc/docker/certs.d/<host:port>/ca.crt`, skopeo's \
               `--cert-dir`) or to mirror from this server (a policy's `remoteCA`).",
    description = "With `tls = \"auto\"` the CA the server generated; with certificate files, \
                   the last certificate of the chain (a self-signed certificate itself).",
    security(),
    responses(
        (status = 200, description = "The certificate.", body = String,
         content_type = "application/x-pem-file"),
        (status = 404, description = "The server speaks plain HTTP (`TLS_NOT_ENABLED`).",
         body = ErrorBody),
    ),
)]
fn get_ca() {}

/// Documents `orgs::list_accounts` (a root route, like `/auth/token`: UCP's
/// eNZi account API).
#[utoipa::path(
    get, path = "/enzi/v0/accounts", operation_id = "listEnziAccounts", tag = "organizations",
    summary = "List accounts, users and organizations (`isOrg`), a page at a time, by name: \
               server administrators see every one, other users themselves and their \
               organizations.",
    params(AccountsQuery, EnziPageQuery),
    responses(
        (status = 200, description = "A page of accounts, sorted by name (`start` is a name).",
         body = inline(AccountPage)),
        (status = 400, description = "An unknown `filter`, or a `limit` that is not an integer \
                                      (`INVALID_PARAMETER`, named in `detail.field`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn list_enzi_accounts() {}

/// Documents `orgs::create_account`.
#[utoipa::path(
    post, path = "/enzi/v0/accounts", operation_id = "createEnziAccount",
    tag = "organizations",
    summary = "Create an organization (`isOrg: true`) or a user (server administrators), as \
               `createAccount` does.",
    description = "An organization's name is a namespace: unique among users and \
                   organizations, with the user-name grammar. It starts with no members; its \
                   repositories are created by server administrators, its administrators and \
                   the members of teams granted `read-write` on its namespace.",
    request_body = CreateAccount,
    responses(
        (status = 201, description = "Created.", body = AccountView),
        (status = 400, description = "Invalid field: a bad name or password, a user without \
                                      `password` (`INVALID_ACCOUNT`), a too long `fullName` or \
                                      a field of the wrong type (`INVALID_JSON`); named in \
                                      `detail.field`.",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 409, description = "`ACCOUNT_EXISTS`: a user or organization has the name.",
         body = ErrorBody),
    ),
)]
fn create_enzi_account() {}

/// Documents `orgs::get_account`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{name}", operation_id = "getEnziAccount",
    tag = "organizations",
    summary = "Get an account: oneself, one's organizations, or any for server \
               administrators.",
    params(EnziAccountPath),
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (also for another user, or an \
                                      organization the caller is not a member of, unless the \
                                      caller is a server administrator).",
         body = ErrorBody),
    ),
)]
fn get_enzi_account() {}

/// Documents `orgs::update_account`.
#[utoipa::path(
    patch, path = "/enzi/v0/accounts/{name}", operation_id = "updateEnziAccount",
    tag = "organizations",
    summary = "Change an organization's display name (its administrators), or a user as \
               `updateAccount` does (server administrators).",
    description = "For an organization only `fullName` is read, and it replaces the display \
                   name: left out, the name becomes empty. Its other members get `403`, anyone \
                   else `404`.",
    params(EnziAccountPath),
    request_body = UpdateAccount,
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 400, description = "Invalid body (`INVALID_JSON`, `INVALID_ACCOUNT`, named in \
                                      `detail.field`; administrators cannot demote or \
                                      deactivate themselves).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = "Not an administrator of the organization, or (a user) \
                                      not a server administrator (`NOT_AUTHORIZED`).",
         body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (also for an organization the caller \
                                      is not a member of).",
         body = ErrorBody),
    ),
)]
fn update_enzi_account() {}

/// Documents `orgs::delete_account`.
#[utoipa::path(
    delete, path = "/enzi/v0/accounts/{name}", operation_id = "deleteEnziAccount",
    tag = "organizations",
    summary = "Delete an organization with its teams, memberships and team grants (server \
               administrators). Its repositories stay. Users are not deleted: deactivate them \
               (`isActive: false`).",
    params(EnziAccountPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "The name is a user's (`INVALID_ACCOUNT`).",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NOT_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_ACCOUNT, body = ErrorBody),
    ),
)]
fn delete_enzi_account() {}

/// Documents `orgs::list_members`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/members", operation_id = "listOrgMembers",
    tag = "organizations",
    summary = "List an organization's members, a page at a time, by name.",
    description = ORG_MEMBERS,
    params(OrgPath, EnziPageQuery),
    responses(
        (status = 200, description = "A page of members, sorted by name (`start` is a user \
                                      name).",
         body = inline(MemberPage)),
        (status = 400, description = BAD_LIMIT, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_ORG, body = ErrorBody),
    ),
)]
fn list_org_members() {}

/// Documents `orgs::get_member`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/members/{member}", operation_id = "getOrgMember",
    tag = "organizations",
    summary = "Get an organization's member.",
    description = ORG_MEMBERS,
    params(OrgMemberPath),
    responses(
        (status = 200, description = "The membership.", body = MemberView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT`: no such organization (or not visible \
                                      to the caller), or the user is not its member.",
         body = ErrorBody),
    ),
)]
fn get_org_member() {}

/// Documents `orgs::put_member`.
#[utoipa::path(
    put, path = "/enzi/v0/accounts/{org}/members/{member}", operation_id = "setOrgMember",
    tag = "organizations",
    summary = "Add an active user to an organization, or change whether they are its \
               administrator (`isAdmin`, default false: a `PUT` without it makes an \
               administrator a plain member).",
    description = ORG_ADMINS,
    params(OrgMemberPath),
    request_body = MemberForm,
    responses(
        (status = 200, description = "The membership.", body = MemberView),
        (status = 400, description = "Invalid body (`INVALID_JSON`).", body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT`: no such organization (or not visible \
                                      to the caller), or no such active user.",
         body = ErrorBody),
    ),
)]
fn set_org_member() {}

/// Documents `orgs::delete_member`.
#[utoipa::path(
    delete, path = "/enzi/v0/accounts/{org}/members/{member}", operation_id = "removeOrgMember",
    tag = "organizations",
    summary = "Remove a member from an organization and its teams.",
    description = ORG_ADMINS,
    params(OrgMemberPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT`: no such organization (or not visible \
                                      to the caller), or the user is not its member.",
         body = ErrorBody),
    ),
)]
fn remove_org_member() {}

/// Documents `orgs::list_teams`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/teams", operation_id = "listTeams",
    tag = "organizations",
    summary = "List an organization's teams, a page at a time, by name.",
    description = ORG_MEMBERS,
    params(OrgPath, EnziPageQuery),
    responses(
        (status = 200, description = "A page of teams, sorted by name (`start` is a team \
                                      name).",
         body = inline(TeamPage)),
        (status = 400, description = BAD_LIMIT, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_ORG, body = ErrorBody),
    ),
)]
fn list_teams() {}

/// Documents `orgs::create_team`.
#[utoipa::path(
    post, path = "/enzi/v0/accounts/{org}/teams", operation_id = "createTeam",
    tag = "organizations",
    summary = "Create a team in an organization (`name` required).",
    description = ORG_ADMINS,
    params(OrgPath),
    request_body = TeamForm,
    responses(
        (status = 201, description = "Created.", body = TeamView),
        (status = 400, description = "Invalid field, named in `detail.field` (`INVALID_JSON`): \
                                      no `name`, a bad one or one the organization has, a too \
                                      long `description`.",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_ORG, body = ErrorBody),
    ),
)]
fn create_team() {}

/// Documents `orgs::get_team`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/teams/{team}", operation_id = "getTeam",
    tag = "organizations",
    summary = "Get a team.",
    description = ORG_MEMBERS,
    params(TeamPath),
    responses(
        (status = 200, description = "The team.", body = TeamView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn get_team() {}

/// Documents `orgs::update_team`.
#[utoipa::path(
    patch, path = "/enzi/v0/accounts/{org}/teams/{team}", operation_id = "updateTeam",
    tag = "organizations",
    summary = "Rename a team or change its description (the fields given; its members and \
               grants stay).",
    description = ORG_ADMINS,
    params(TeamPath),
    request_body = TeamForm,
    responses(
        (status = 200, description = "The team.", body = TeamView),
        (status = 400, description = "Invalid field, named in `detail.field` (`INVALID_JSON`): \
                                      a bad `name` or one the organization has, a too long \
                                      `description`.",
         body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn update_team() {}

/// Documents `orgs::delete_team`.
#[utoipa::path(
    delete, path = "/enzi/v0/accounts/{org}/teams/{team}", operation_id = "deleteTeam",
    tag = "organizations",
    summary = "Delete a team with its memberships and grants (its members stay in the \
               organization).",
    description = ORG_ADMINS,
    params(TeamPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn delete_team() {}

/// Documents `orgs::list_team_members`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/teams/{team}/members",
    operation_id = "listTeamMembers", tag = "organizations",
    summary = "List a team's members, a page at a time, by name (`isAdmin` is false here: \
               teams have no administrators).",
    description = ORG_MEMBERS,
    params(TeamPath, EnziPageQuery),
    responses(
        (status = 200, description = "A page of members, sorted by name (`start` is a user \
                                      name).",
         body = inline(MemberPage)),
        (status = 400, description = BAD_LIMIT, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_TEAM, body = ErrorBody),
    ),
)]
fn list_team_members() {}

/// Documents `orgs::get_team_member`.
#[utoipa::path(
    get, path = "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
    operation_id = "getTeamMember", tag = "organizations",
    summary = "Get a team's member (`isAdmin` is false here).",
    description = ORG_MEMBERS,
    params(TeamMemberPath),
    responses(
        (status = 200, description = "The membership.", body = MemberView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (no such organization, not visible to \
                                      the caller, or the user is not the team's member) or \
                                      `NO_SUCH_TEAM`.",
         body = ErrorBody),
    ),
)]
fn get_team_member() {}

/// Documents `orgs::put_team_member`.
#[utoipa::path(
    put, path = "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
    operation_id = "addTeamMember", tag = "organizations",
    summary = "Add an active user to a team, and to its organization when not a member yet. A \
               body is accepted and ignored.",
    description = ORG_ADMINS,
    params(TeamMemberPath),
    responses(
        (status = 200, description = "The team membership (`isAdmin` is false here).",
         body = MemberView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (no such organization, not visible to \
                                      the caller, or no such active user) or `NO_SUCH_TEAM`.",
         body = ErrorBody),
    ),
)]
fn add_team_member() {}

/// Documents `orgs::delete_team_member`.
#[utoipa::path(
    delete, path = "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
    operation_id = "removeTeamMember", tag = "organizations",
    summary = "Remove a member from a team (they stay in the organization).",
    description = ORG_ADMINS,
    params(TeamMemberPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_ORG_ADMIN, body = ErrorBody),
        (status = 404, description = "`NO_SUCH_ACCOUNT` (no such organization, not visible to \
                                      the caller, or the user is not the team's member) or \
                                      `NO_SUCH_TEAM`.",
         body = ErrorBody),
    ),
)]
fn remove_team_member() {}

// ---- webhooks ----

/// `/webhooks/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
struct WebhookPath {
    /// The webhook's ID.
    id: String,
}

const NO_SUCH_WEBHOOK: &str = "`NO_SUCH_WEBHOOK`: missing, or not one the caller may manage.";
const BAD_WEBHOOK: &str = "A bad field (`INVALID_PARAMETER`, named in `detail.field`): \
                           `type` not an event type, `endpoint` not an http(s) URL or refused \
                           by the remote-host guard, `key` not an existing namespace or \
                           repository, `tlsCert` not PEM; or invalid JSON (`INVALID_JSON`).";
const WEBHOOK_DENIED: &str = "The key needs more (`NOT_AUTHORIZED`): `admin` on the repository \
                              or namespace, or a server administrator for no key.";

/// Documents `webhooks::list`.
#[utoipa::path(
    get, path = "/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    summary = "The webhooks the caller may manage: all for an administrator, else those on \
               the repositories and namespaces the caller administers. Never the secrets.",
    params(PageQuery, WebhookTypeQuery),
    responses(
        (status = 200, description = "Webhooks, by ID.", body = Vec<WebhookView>),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn list_webhooks() {}

/// Documents `webhooks::create`.
#[utoipa::path(
    post, path = "/webhooks", operation_id = "createWebhook", tag = "webhooks",
    summary = "Subscribe an endpoint to one event type of a repository (`key` = \
               `namespace/repository`, repository admins), a namespace (`key` = `namespace`, \
               its admins) or everything (no key, server administrators). With a `secret`, \
               deliveries are signed (`X-Regmirror-Signature: sha256=<hex HMAC-SHA256 of the \
               body>`).",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook.", body = WebhookView),
        (status = 400, description = BAD_WEBHOOK, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = WEBHOOK_DENIED, body = ErrorBody),
    ),
)]
fn create_webhook() {}

/// Documents `webhooks::update`.
#[utoipa::path(
    post, path = "/webhooks/update", operation_id = "updateWebhook", tag = "webhooks",
    summary = "Change a webhook's `endpoint`, `inactive`, `tlsCert` or `skipTLSVerification` \
               (fields left out stay).",
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The webhook.", body = WebhookView),
        (status = 400, description = BAD_WEBHOOK, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_WEBHOOK, body = ErrorBody),
    ),
)]
fn update_webhook() {}

/// Documents `webhooks::test`.
#[utoipa::path(
    post, path = "/webhooks/test", operation_id = "testWebhook", tag = "webhooks",
    summary = "Post the fixed sample of `type` to `endpoint` now (signed with `secret` when \
               given) and answer what the receiver said. Needs the rights a webhook with \
               `key` needs. Nothing is recorded.",
    request_body = TestWebhook,
    responses(
        (status = 200, description = "What came of it.", body = WebhookTestResult),
        (status = 400, description = BAD_WEBHOOK, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = WEBHOOK_DENIED, body = ErrorBody),
    ),
)]
fn test_webhook() {}

/// Documents `webhooks::delete`.
#[utoipa::path(
    delete, path = "/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks",
    summary = "Delete a webhook with its delivery log (pending deliveries are dropped).",
    params(WebhookPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_WEBHOOK, body = ErrorBody),
    ),
)]
fn delete_webhook() {}

/// Documents `webhooks::deliveries`.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    summary = "A webhook's delivery log (regmirror's), newest first: status (`pending`, \
               `delivered`, `failed`), attempts, the receiver's last status code, the last \
               error, and times. Kept 7 days, at most the newest 1000 shown.",
    params(WebhookPath, PageQuery),
    responses(
        (status = 200, description = "Deliveries, newest first.", body = Vec<DeliveryView>),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_WEBHOOK, body = ErrorBody),
    ),
)]
fn list_webhook_deliveries() {}

/// Documents `webhooks::list_repository`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/webhooks",
    operation_id = "listRepositoryWebhooks", tag = "webhooks",
    summary = "The webhooks on one repository (repository admins).",
    params(RepoPath, PageQuery, WebhookTypeQuery),
    responses(
        (status = 200, description = "Webhooks, by ID.", body = Vec<WebhookView>),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_repository_webhooks() {}

/// Documents `webhooks::list_namespace`.
#[utoipa::path(
    get, path = "/accounts/{namespace}/webhooks", operation_id = "listNamespaceWebhooks",
    tag = "webhooks",
    summary = "The webhooks on a namespace and its repositories that the caller may manage.",
    params(NamespacePath, PageQuery, WebhookTypeQuery),
    responses(
        (status = 200, description = "Webhooks, by ID.", body = Vec<WebhookView>),
        (status = 400, description = BAD_PAGING, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
    ),
)]
fn list_namespace_webhooks() {}

// ---- push mirroring policies (`push_policies.rs`) ----

const NO_SUCH_PUSH_POLICY: &str = "`NO_SUCH_REPOSITORY` or `NO_SUCH_PUSH_MIRRORING_POLICY`.";
const BAD_PUSH_POLICY: &str = "Invalid field (`INVALID_PUSH_MIRRORING_POLICY`, `INVALID_JSON`), \
    named in `detail.field`, or the credentials cannot push to the remote repository \
    (`REMOTE_REGISTRY_INVALID_PERMISSIONS`, with the reason).";

/// Documents `push_policies::list`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/pushMirroringPolicies",
    operation_id = "listPushPolicies", tag = "policies",
    summary = "List the push mirroring policies of a repository.",
    params(RepoPath),
    responses(
        (status = 200, description = "Policies.", body = Vec<mirror_core::push_policy::PushPolicyView>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_push_policies() {}

/// Documents `push_policies::create`.
#[utoipa::path(
    post, path = "/repositories/{namespace}/{reponame}/pushMirroringPolicies",
    operation_id = "createPushPolicy", tag = "policies",
    summary = "Create a push mirroring policy; write access to the remote is checked first. \
               Tags pushed to the repository, or mirrored into it by a poll, that the rules \
               keep are then pushed by `push_mirror_tag` jobs. `tagTemplate` codes: `%n` the \
               tag, `%D` the digest's first 12 hex characters, and `%Y %y %m %d %j %H %M %S \
               %s %b` (UTC, strftime's meaning).",
    params(RepoPath, super::super::push_policies::PushCreateQuery),
    request_body = mirror_core::push_policy::PushPolicyForm,
    responses(
        (status = 201, description = "Created.", body = mirror_core::push_policy::PushPolicyView,
         headers(
             ("X-Job-ID" = String,
              description = "With `initialEvaluation=true`: the first `push_mirror_tag` job \
                             (parameters `pushPolicyID`, `tag`) of the current tags."),
         )),
        (status = 400, description = BAD_PUSH_POLICY, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn create_push_policy() {}

/// Documents `push_policies::get_one`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
    operation_id = "getPushPolicy", tag = "policies",
    summary = "Get a push mirroring policy.",
    params(PolicyPath),
    responses(
        (status = 200, description = "The policy.", body = mirror_core::push_policy::PushPolicyView),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_PUSH_POLICY, body = ErrorBody),
    ),
)]
fn get_push_policy() {}

/// Documents `push_policies::update`.
#[utoipa::path(
    put, path = "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
    operation_id = "updatePushPolicy", tag = "policies",
    summary = "Change a push mirroring policy (the fields given); a change of the remote is \
               checked for write access first. A new `remoteHost` or `username` drops the \
               stored password and token unless new ones are given.",
    params(PolicyPath),
    request_body = mirror_core::push_policy::PushPolicyForm,
    responses(
        (status = 200, description = "The policy.", body = mirror_core::push_policy::PushPolicyView),
        (status = 400, description = BAD_PUSH_POLICY, body = ErrorBody),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_PUSH_POLICY, body = ErrorBody),
    ),
)]
fn update_push_policy() {}

/// Documents `push_policies::delete`.
#[utoipa::path(
    delete, path = "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
    operation_id = "deletePushPolicy", tag = "policies",
    summary = "Delete a push mirroring policy; what it pushed stays on the remote.",
    params(PolicyPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 403, description = NEEDS_REPO_ADMIN, body = ErrorBody),
        (status = 404, description = NO_SUCH_PUSH_POLICY, body = ErrorBody),
    ),
)]
fn delete_push_policy() {}

/// Documents `push_policies::list_all`.
#[utoipa::path(
    get, path = "/repositories/{namespace}/{reponame}/mirroringPolicies",
    operation_id = "listMirroringPolicies", tag = "policies",
    summary = "List both kinds of mirroring policies of a repository (DTR's union list): each \
               poll or push policy with its `mirroringType` (`poll`, `push`).",
    params(RepoPath),
    responses(
        (status = 200, description = "Poll policies, then push policies.", body = Vec<serde_json::Value>),
        (status = 401, description = UNAUTHENTICATED, body = ErrorBody),
        (status = 404, description = NO_SUCH_REPOSITORY, body = ErrorBody),
    ),
)]
fn list_mirroring_policies() {}
