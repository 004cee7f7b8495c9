//! Accounts (`/api/v0/accounts`, administrators create and change them;
//! users change their own password) and access tokens
//! (`/api/v0/api_tokens`, each user manages their own; administrators can
//! act for another user with `?username=`). Deactivating an account or a
//! token, or changing a password, takes effect on the next request.
//!
//! So that revoking a stolen token evicts its holder: creating a token and
//! changing a password need the password (a request authenticated by a
//! token gets 403), and a token an administrator deactivated can only be
//! re-enabled by an administrator.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mirror_core::Secret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::{Account, ApiToken, NewAccount};
use crate::api::extract::{Admin, ClientAddr, JsonBody, PasswordUser, QueryParams, User};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::records::Organization;

/// DTR's account shape (no password, ever).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Account)]
#[serde(rename_all = "camelCase")]
pub struct AccountView<'a> {
    id: &'a str,
    pub(super) name: &'a str,
    full_name: &'a str,
    is_org: bool,
    is_admin: bool,
    is_active: bool,
    is_imported: bool,
    created_at: DateTime<Utc>,
}

/// An organization's account view (`isOrg`; never an administrator,
/// always active).
pub(super) fn org_view(o: &Organization) -> AccountView<'_> {
    AccountView {
        id: &o.id,
        name: &o.name,
        full_name: &o.full_name,
        is_org: true,
        is_admin: false,
        is_active: true,
        is_imported: false,
        created_at: o.created_at,
    }
}

pub(super) fn account_view(a: &Account) -> AccountView<'_> {
    AccountView {
        id: &a.id,
        name: &a.name,
        full_name: &a.full_name,
        is_org: false,
        is_admin: a.is_admin,
        is_active: a.is_active,
        is_imported: false,
        created_at: a.created_at,
    }
}

/// DTR's `createAccount` form: a user, or with `isOrg` an organization
/// (no password then).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateAccount)]
#[serde(rename_all = "camelCase")]
pub struct CreateForm {
    /// Lower-case letters and digits, separated by `.`, `_`, `__` or `-`;
    /// also the user's namespace.
    name: String,
    /// At least 8 characters (users only).
    #[schema(value_type = Option<String>, format = Password, write_only, min_length = 8)]
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    full_name: Option<String>,
    /// Server administrator (default false).
    #[serde(default)]
    is_admin: Option<bool>,
    /// Default true.
    #[serde(default)]
    is_active: Option<bool>,
    /// An organization (default false).
    #[serde(default)]
    is_org: Option<bool>,
    /// Accepted, ignored.
    #[serde(default, rename = "searchLDAP")]
    #[allow(dead_code)] // accepted for DTR clients; there is no LDAP
    search_ldap: Option<bool>,
}

/// `POST /api/v0/accounts` (administrators) → 201.
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(form): JsonBody<CreateForm>,
) -> Result<Response, ApiError> {
    create_account(&state, &admin, form).await
}

/// Creates the user or (with `isOrg`) the organization `form` describes,
/// as the server administrator `admin`: DTR's `createAccount` and eNZi's
/// alike → 201 with the account.
pub(super) async fn create_account(
    state: &AppState,
    admin: &Account,
    form: CreateForm,
) -> Result<Response, ApiError> {
    let full_name = form.full_name.clone().unwrap_or_default();
    if form.is_org == Some(true) {
        let org = state.orgs.create(&form.name, &full_name).await?;
        tracing::info!(org = %org.name, by = %admin.name, "organization created");
        return Ok((StatusCode::CREATED, Json(org_view(&org))).into_response());
    }
    let password = form
        .password
        .ok_or_else(|| ApiError::field("INVALID_ACCOUNT", "password", "a user needs a password"))?;
    let account = state
        .accounts
        .create(NewAccount {
            name: form.name,
            password,
            full_name,
            is_admin: form.is_admin.unwrap_or(false),
            is_active: form.is_active.unwrap_or(true),
        })
        .await?;
    tracing::info!(user = %account.name, admin = account.is_admin, by = %admin.name, "account created");
    Ok((StatusCode::CREATED, Json(account_view(&account))).into_response())
}

/// `GET /api/v0/accounts` (administrators) → `{"accounts": [...]}`:
/// users and organizations, by name.
pub async fn list(State(state): State<AppState>, Admin(_): Admin) -> Result<Response, ApiError> {
    let accounts = state.accounts.list().await?;
    let orgs = state.orgs.list().await?;
    let mut views: Vec<_> = accounts.iter().map(account_view).collect();
    views.extend(orgs.iter().map(org_view));
    views.sort_by(|a, b| a.name.cmp(b.name));
    Ok(Json(json!({"accounts": views})).into_response())
}

/// `GET /api/v0/accounts/{name}`: oneself, or anyone for administrators.
pub async fn get_one(
    State(state): State<AppState>,
    User(caller): User,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !caller.is_admin && caller.name != name {
        return Err(ApiError::no_such_account(&name));
    }
    match state.accounts.get(&name).await? {
        Some(a) => Ok(Json(account_view(&a)).into_response()),
        None => Err(ApiError::no_such_account(&name)),
    }
}

/// DTR's `updateAccount` form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateAccount)]
#[serde(rename_all = "camelCase")]
pub struct UpdateForm {
    #[serde(default)]
    pub(super) full_name: Option<String>,
    #[serde(default)]
    is_admin: Option<bool>,
    #[serde(default)]
    is_active: Option<bool>,
}

/// `PATCH /api/v0/accounts/{name}` (administrators) → 200 with the account.
/// An inactive account is refused from its next request on, with its
/// password and its tokens alike.
pub async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
    JsonBody(form): JsonBody<UpdateForm>,
) -> Result<Response, ApiError> {
    update_user(&state, &admin, &name, form).await
}

/// Changes the user `name` as the server administrator `admin` (who may
/// not demote or deactivate themselves); the account.
pub(super) async fn update_user(
    state: &AppState,
    admin: &Account,
    name: &str,
    form: UpdateForm,
) -> Result<Response, ApiError> {
    if name == admin.name && (form.is_admin == Some(false) || form.is_active == Some(false)) {
        return Err(ApiError::field(
            "INVALID_ACCOUNT",
            if form.is_admin == Some(false) {
                "isAdmin"
            } else {
                "isActive"
            },
            "administrators cannot demote or deactivate themselves",
        ));
    }
    let account = state
        .accounts
        .update(name, form.full_name, form.is_admin, form.is_active)
        .await?;
    tracing::info!(user = %account.name, admin = account.is_admin, active = account.is_active, by = %admin.name, "account updated");
    Ok(Json(account_view(&account)).into_response())
}

/// `{"oldPassword", "newPassword"}` (the old one is not needed when an
/// administrator changes another user's password).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ChangePassword)]
#[serde(rename_all = "camelCase")]
pub struct PasswordForm {
    /// The current password (changing one's own).
    #[schema(value_type = Option<String>, format = Password, write_only)]
    #[serde(default)]
    old_password: Option<Secret>,
    /// At least 8 characters.
    #[schema(value_type = String, format = Password, write_only, min_length = 8)]
    new_password: Secret,
}

/// `POST /api/v0/accounts/{name}/changePassword` → 200 with the account:
/// oneself (with `oldPassword`), or anyone for administrators; signed in
/// with a password, not a token. The old password stops working at once.
/// A wrong `oldPassword` counts as a failed login.
pub async fn change_password(
    State(state): State<AppState>,
    PasswordUser(caller): PasswordUser,
    ClientAddr(client): ClientAddr,
    Path(name): Path<String>,
    JsonBody(form): JsonBody<PasswordForm>,
) -> Result<Response, ApiError> {
    if caller.name != name && !caller.is_admin {
        return Err(ApiError::no_such_account(&name));
    }
    if caller.name == name {
        let old = form.old_password.unwrap_or_default();
        if !state
            .accounts
            .check_password(&name, old.expose(), client)
            .await?
        {
            return Err(ApiError::field(
                "INVALID_ACCOUNT",
                "oldPassword",
                "is not the current password",
            ));
        }
    }
    state
        .accounts
        .change_password(&name, &form.new_password)
        .await?;
    let account = state
        .accounts
        .get(&name)
        .await?
        .ok_or_else(|| ApiError::no_such_account(&name))?;
    tracing::info!(user = %name, by = %caller.name, "password changed");
    Ok(Json(account_view(&account)).into_response())
}

/// `?username=`: whose tokens.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Whose tokens (administrators may name another user; default: the
    /// caller).
    username: Option<String>,
}

/// The user whose tokens the caller acts on.
fn token_owner(caller: &Account, q: &TokenQuery) -> Result<String, ApiError> {
    match q.username.as_deref() {
        None | Some("") => Ok(caller.name.clone()),
        Some(u) if u == caller.name => Ok(u.to_string()),
        Some(u) if caller.is_admin => Ok(u.to_string()),
        Some(_) => Err(ApiError::not_authorized(
            "only administrators can manage other users' tokens",
        )),
    }
}

/// DTR's `APIToken` (never the token itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = APIToken)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenView<'a> {
    hashed_token: &'a str,
    token_label: &'a str,
    is_active: bool,
    last_used: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    generated_by: &'a str,
    creator_ua: &'a str,
}

fn token_view(t: &ApiToken) -> TokenView<'_> {
    TokenView {
        hashed_token: &t.hashed_token,
        token_label: &t.label,
        is_active: t.is_active,
        last_used: t.last_used,
        created_at: t.created_at,
        generated_by: &t.username,
        creator_ua: "",
    }
}

/// `GET /api/v0/api_tokens` → `[APIToken]` (never the secrets).
pub async fn list_tokens(
    State(state): State<AppState>,
    User(caller): User,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Result<Response, ApiError> {
    let owner = token_owner(&caller, &q)?;
    let tokens = state.accounts.tokens(&owner).await?;
    let views: Vec<_> = tokens.iter().map(token_view).collect();
    Ok(Json(views).into_response())
}

/// `{"tokenLabel": "..."}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateAPIToken)]
#[serde(rename_all = "camelCase")]
pub struct TokenForm {
    #[serde(default)]
    token_label: Option<String>,
}

/// `POST /api/v0/api_tokens` → 200 `NewAPIToken`: the only time the token
/// itself is shown. Needs the password: a token cannot mint tokens.
pub async fn create_token(
    State(state): State<AppState>,
    PasswordUser(caller): PasswordUser,
    QueryParams(q): QueryParams<TokenQuery>,
    JsonBody(form): JsonBody<TokenForm>,
) -> Result<Response, ApiError> {
    let owner = token_owner(&caller, &q)?;
    let (token, secret) = state
        .accounts
        .create_token(&owner, form.token_label.as_deref().unwrap_or(""))
        .await?;
    tracing::info!(user = %owner, token = %token.hashed_token, by = %caller.name, "access token created");
    let mut body = serde_json::to_value(token_view(&token)).unwrap_or_else(|_| json!({}));
    body["token"] = json!(secret.expose());
    Ok(Json(body).into_response())
}

/// DTR's `updateAPIToken` form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateAPIToken)]
#[serde(rename_all = "camelCase")]
pub struct TokenUpdateForm {
    #[serde(default)]
    token_label: Option<String>,
    /// `false` refuses the token from the next request on.
    #[serde(default)]
    is_active: Option<bool>,
}

/// `PATCH /api/v0/api_tokens/{hashedtoken}` → 200 `APIToken`;
/// `{"isActive": false}` revokes the token from the next request on. A
/// token an administrator revoked is re-enabled only by an administrator
/// (403 for its owner).
pub async fn update_token(
    State(state): State<AppState>,
    User(caller): User,
    Path(hashed): Path<String>,
    QueryParams(q): QueryParams<TokenQuery>,
    JsonBody(form): JsonBody<TokenUpdateForm>,
) -> Result<Response, ApiError> {
    let owner = token_owner(&caller, &q)?;
    let token = state
        .accounts
        .update_token(
            &owner,
            &hashed,
            form.token_label,
            form.is_active,
            caller.is_admin,
        )
        .await?
        .ok_or_else(ApiError::no_such_token)?;
    tracing::info!(user = %owner, token = %token.hashed_token, active = token.is_active, by = %caller.name, "access token updated");
    Ok(Json(token_view(&token)).into_response())
}

/// `DELETE /api/v0/api_tokens/{hashedtoken}` → 204.
pub async fn delete_token(
    State(state): State<AppState>,
    User(caller): User,
    Path(hashed): Path<String>,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Result<StatusCode, ApiError> {
    let owner = token_owner(&caller, &q)?;
    if !state.accounts.delete_token(&owner, &hashed).await? {
        return Err(ApiError::no_such_token());
    }
    Ok(StatusCode::NO_CONTENT)
}
