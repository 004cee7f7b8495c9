//! The schemas of the answers a handler builds as JSON rather than from a
//! wire type (a job with its live progress, the list envelopes and eNZi's
//! pages, the bearer token, the features, user and team grants), and of the request bodies whose
//! required fields depend on the operation. They are only described, never
//! built: `mirror-server/tests/openapi.rs` checks real answers of a running
//! server against them, so they cannot drift unnoticed.

// Documentation-only types: read by the `ToSchema` derive, never built.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mirror_core::{Job, PolicyForm, ProgressSnapshot};
use serde::Serialize;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::super::accounts::{AccountView, TokenView};
use super::super::orgs::{MemberView, TeamView};
use super::super::paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageSize};
use super::super::repositories::RepositoryView;
use crate::accounts::AccessLevel;
use crate::scheduler::Cron;

/// A job as `/jobs` answers it (`jobs::job_json`): mirror-core's job
/// record, with DTR's `capacityMap` and, while it runs, its live counters.
#[derive(Serialize, ToSchema)]
#[schema(as = Job)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    #[serde(flatten)]
    #[schema(inline)]
    job: Job,
    /// DTR's capacity map: always `{}` (this server has no capacity model).
    capacity_map: BTreeMap<String, i64>,
    /// Only while the job runs in this server (read it every second or so
    /// to show progress).
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<ProgressSnapshot>,
}

/// `{"repositories": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct RepositoryList {
    repositories: Vec<RepositoryView>,
}

/// `{"jobs": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    jobs: Vec<JobView>,
}

/// `{"crons": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct CronList {
    crons: Vec<Cron>,
}

/// `{"accounts": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct AccountList {
    accounts: Vec<AccountView<'static>>,
}

/// eNZi's page of accounts: `{"accounts": [...], "nextPageStart": ""}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    accounts: Vec<AccountView<'static>>,
    /// The `start` of the next page; empty on the last one.
    next_page_start: String,
}

/// eNZi's page of members: `{"members": [...], "nextPageStart": ""}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberPage {
    members: Vec<MemberView<'static>>,
    /// The `start` of the next page; empty on the last one.
    next_page_start: String,
}

/// eNZi's page of teams: `{"teams": [...], "nextPageStart": ""}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamPage {
    teams: Vec<TeamView>,
    /// The `start` of the next page; empty on the last one.
    next_page_start: String,
}

/// A repository as a team grant names it.
#[derive(Serialize, ToSchema)]
pub struct RepositoryRef {
    namespace: String,
    name: String,
    /// The repository's ID (in `listTeamAccess` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

/// A namespace as a team grant names it.
#[derive(Serialize, ToSchema)]
pub struct NamespaceRef {
    name: String,
}

/// A team's access level (DTR's `TeamAccess`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamAccess {
    access_level: AccessLevel,
    team: TeamView,
}

/// A team's access level on a repository (DTR's `RepoTeamAccess`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoTeamAccess {
    access_level: AccessLevel,
    team: TeamView,
    #[schema(inline)]
    repository: RepositoryRef,
}

/// A team's access level on every repository of a namespace (DTR's
/// `NamespaceTeamAccess`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceTeamAccess {
    access_level: AccessLevel,
    team: TeamView,
    #[schema(inline)]
    namespace: NamespaceRef,
}

/// `{"repository": {...}, "teamAccessList": [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoTeamAccessList {
    #[schema(inline)]
    repository: RepositoryRef,
    team_access_list: Vec<TeamAccess>,
}

/// `{"namespace": {...}, "teamAccessList": [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceTeamAccessList {
    #[schema(inline)]
    namespace: NamespaceRef,
    team_access_list: Vec<TeamAccess>,
}

/// A team's access level on one repository, in a team's list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRepoAccess {
    access_level: AccessLevel,
    #[schema(inline)]
    repository: RepositoryRef,
}

/// `{"team": {...}, "repositoryAccessList": [...]}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRepoAccessList {
    team: TeamView,
    repository_access_list: Vec<TeamRepoAccess>,
}

/// A new access token (DTR's `NewAPIToken`): the token's record and the
/// token itself.
#[derive(Serialize, ToSchema)]
#[schema(as = NewAPIToken)]
pub struct NewApiToken {
    #[serde(flatten)]
    record: TokenView<'static>,
    /// The token itself, shown only here.
    token: String,
}

/// An explicit access grant on a repository.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessGrant {
    username: String,
    access_level: AccessLevel,
}

/// Docker's token-server answer (`auth_token::issue`). `token` and
/// `access_token` are the same bearer token.
#[derive(Serialize, ToSchema)]
pub struct BearerToken {
    token: String,
    access_token: String,
    /// Seconds it stays valid (900).
    expires_in: u64,
    issued_at: DateTime<Utc>,
}

/// What this server offers, in DTR's fields (`meta::features`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// Always true.
    mirroring_licensed: bool,
    /// Always false.
    promotion_licensed: bool,
    /// Always false.
    scanning_licensed: bool,
    /// Always false.
    scanning_enabled: bool,
    /// Always false.
    #[serde(rename = "onlineGCEnabled")]
    online_gc_enabled: bool,
}

/// A page size: [`PageSize`] reads the query text, clamping instead of
/// refusing.
impl PartialSchema for PageSize {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some(format!(
                "Items per page (default {DEFAULT_PAGE_SIZE}). 0 or less means the default; \
                 more than {MAX_PAGE_SIZE} means {MAX_PAGE_SIZE}, as DTR clamps. Only a value \
                 that is not an integer is refused (`400 INVALID_PARAMETER`)."
            )))
            .into()
    }
}

impl ToSchema for PageSize {}

/// [`PolicyForm`] with the fields `required` names required: the body of
/// an operation that needs them.
fn form_requiring(required: &[&str], description: &str) -> RefOr<Schema> {
    let needs = required
        .iter()
        .fold(ObjectBuilder::new(), |o, field| o.required(*field));
    AllOfBuilder::new()
        .item(Ref::from_schema_name(PolicyForm::name()))
        .item(needs)
        .description(Some(description))
        .into()
}

/// Adds [`PolicyForm`] (and what it references) to `schemas`.
fn policy_form_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((PolicyForm::name().into_owned(), PolicyForm::schema()));
    PolicyForm::schemas(schemas);
}

/// The body of `createPolicy`: a [`PolicyForm`] with `remoteHost` and
/// `remoteRepository`.
pub struct CreatePollMirroringPolicy;

impl PartialSchema for CreatePollMirroringPolicy {
    fn schema() -> RefOr<Schema> {
        form_requiring(
            &["remoteHost", "remoteRepository"],
            "A new policy: `remoteHost` and `remoteRepository` are required; `enabled` \
             defaults to true, `initialEvaluation` as the query parameter; `localRepository`, \
             when given, must name the repository of the path.",
        )
    }
}

impl ToSchema for CreatePollMirroringPolicy {
    fn name() -> Cow<'static, str> {
        "CreatePollMirroringPolicy".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        policy_form_schemas(schemas);
    }
}

/// The body of `checkRemoteRegistry`: the remote fields of a
/// [`PolicyForm`], `remoteHost` and `remoteRepository` required.
pub struct RemoteRegistryForm;

impl PartialSchema for RemoteRegistryForm {
    fn schema() -> RefOr<Schema> {
        form_requiring(
            &["remoteHost", "remoteRepository"],
            "The remote to check: `remoteHost` and `remoteRepository` are required, with the \
             credentials and TLS settings to try; the other fields are ignored.",
        )
    }
}

impl ToSchema for RemoteRegistryForm {
    fn name() -> Cow<'static, str> {
        "RemoteRegistryForm".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        policy_form_schemas(schemas);
    }
}
