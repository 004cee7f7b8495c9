//! Webhooks (DTR 2.7's `/webhooks`, `/repositories/{ns}/{repo}/webhooks`,
//! `/accounts/{ns}/webhooks`), and regmirror's delivery log
//! (`/webhooks/{id}/deliveries`).
//!
//! Who may: a hook on `ns/repo` needs `admin` on that repository, a hook on
//! `ns` needs `admin` on the namespace (its owner, an organization's
//! admins, a team granted `admin` on it), a hook without a key (every
//! repository) needs a server administrator. A caller sees and changes
//! the hooks they could create; any other hook answers `404
//! NO_SUCH_WEBHOOK`, as a missing one does.
//!
//! The signing `secret` is write-only: sealed at rest, never in an answer
//! (`hasSecret` says whether there is one). Without one, deliveries are
//! unsigned. Unknown fields are ignored, as DTR's Go server does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use mirror_core::RepositoryName;
use serde::{Deserialize, Serialize};

use super::paging::PageQuery;
use super::repositories::authorize_name;
use crate::accounts::{AccessLevel, Account};
use crate::api::extract::{JsonBody, QueryParams, User};
use crate::auth::{Caller, namespace_level};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{DeliveryRecord, DeliveryStatus, WebhookRecord};
use crate::webhooks::{Attempt, check_endpoint, is_event_type};

/// The longest secret and certificate accepted.
const MAX_SECRET: usize = 1024;
const MAX_TLS_CERT: usize = 64 * 1024;
/// Deliveries kept readable per hook.
const DELIVERY_LOG: i64 = 1000;

/// `POST /webhooks`: DTR 2.7's form plus `secret`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CreateWebhook)]
#[serde(rename_all = "camelCase")]
pub struct CreateForm {
    /// The event type: `TAG_PUSH`, `TAG_DELETE`, `MANIFEST_PUSH`,
    /// `MANIFEST_DELETE`, `REPO_EVENT`, `POLL_MIRRORING`, `PUSH_MIRRORING`.
    #[serde(rename = "type")]
    kind: String,
    /// `namespace` or `namespace/repository`; left out or empty: every
    /// repository (server administrators only).
    #[serde(default)]
    key: Option<String>,
    /// The `http(s)` URL deliveries are posted to.
    endpoint: String,
    /// PEM certificates to trust for the endpoint.
    #[serde(default)]
    tls_cert: Option<String>,
    /// Accept any certificate from the endpoint.
    #[serde(default, rename = "skipTLSVerification")]
    skip_tls_verification: Option<bool>,
    /// regmirror's: deliveries carry `X-Regmirror-Signature: sha256=<hex
    /// HMAC-SHA256 of the body with this secret>`. Never returned.
    #[serde(default)]
    secret: Option<String>,
}

/// `POST /webhooks/update`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateWebhook)]
#[serde(rename_all = "camelCase")]
pub struct UpdateForm {
    /// The hook.
    id: String,
    /// Stop (true) or resume (false) deliveries.
    #[serde(default)]
    inactive: Option<bool>,
    /// PEM certificates to trust (empty: the system's).
    #[serde(default)]
    tls_cert: Option<String>,
    /// Accept any certificate.
    #[serde(default, rename = "skipTLSVerification")]
    skip_tls_verification: Option<bool>,
    /// A new endpoint.
    #[serde(default)]
    endpoint: Option<String>,
}

/// `POST /webhooks/test`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TestWebhook)]
#[serde(rename_all = "camelCase")]
pub struct TestForm {
    /// The event type whose sample is sent.
    #[serde(rename = "type")]
    kind: String,
    /// Where to send it.
    endpoint: String,
    /// The key the hook would have (left out: server administrators only).
    #[serde(default)]
    key: Option<String>,
    /// PEM certificates to trust.
    #[serde(default)]
    tls_cert: Option<String>,
    /// Accept any certificate.
    #[serde(default, rename = "skipTLSVerification")]
    skip_tls_verification: Option<bool>,
    /// Sign the sample with this secret.
    #[serde(default)]
    secret: Option<String>,
}

/// DTR's `Webhook`, plus `hasSecret`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    /// `namespace`, `namespace/repository`, or empty (every repository).
    key: String,
    endpoint: String,
    /// The ID of the account that created it.
    #[serde(rename = "authorID")]
    author_id: String,
    created_at: DateTime<Utc>,
    last_successful_at: Option<DateTime<Utc>>,
    inactive: bool,
    tls_cert: String,
    #[serde(rename = "skipTLSVerification")]
    skip_tls_verification: bool,
    /// Whether deliveries are signed (the secret itself is never shown).
    has_secret: bool,
}

impl From<&WebhookRecord> for WebhookView {
    fn from(h: &WebhookRecord) -> Self {
        WebhookView {
            id: h.id.clone(),
            kind: h.kind.clone(),
            key: h.key.clone(),
            endpoint: h.endpoint.clone(),
            author_id: h.author_id.clone(),
            created_at: h.created_at,
            last_successful_at: h.last_successful_at,
            inactive: h.inactive,
            tls_cert: h.tls_cert.clone(),
            skip_tls_verification: h.skip_tls_verification,
            has_secret: h.sealed_secret.is_some(),
        }
    }
}

/// One delivery of a hook, as the log shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    id: String,
    #[serde(rename = "webhookID")]
    webhook_id: String,
    #[serde(rename = "type")]
    kind: String,
    /// `pending`, `delivered` or `failed`.
    status: String,
    attempts: i64,
    /// The receiver's last HTTP status.
    status_code: Option<i64>,
    /// Why the last attempt failed.
    error: Option<String>,
    created_at: DateTime<Utc>,
    /// When the next attempt is due (pending only).
    next_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryView {
            id: d.id.clone(),
            webhook_id: d.hook_id.clone(),
            kind: d.event_type.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            status_code: d.last_status_code,
            error: d.last_error.clone(),
            created_at: d.created_at,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
        }
    }
}

/// What `POST /webhooks/test` came to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookTestResult)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// The receiver answered 2xx.
    delivered: bool,
    /// The receiver's HTTP status, if it answered.
    status_code: Option<u16>,
    /// Why it was not delivered.
    error: Option<String>,
}

fn no_such_webhook(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NO_SUCH_WEBHOOK",
        format!("no webhook {id:?}"),
    )
}

/// What a key names, checked.
enum Key {
    Everything,
    Namespace(String),
    Repository(RepositoryName),
}

fn parse_key(key: Option<&str>) -> Result<Key, ApiError> {
    let key = key.map(str::trim).unwrap_or_default();
    if key.is_empty() {
        return Ok(Key::Everything);
    }
    let bad = |reason: &str| ApiError::invalid_parameter("key", reason);
    let name =
        RepositoryName::parse(key).map_err(|_| bad("not a namespace or namespace/repository"))?;
    match key.matches('/').count() {
        0 => Ok(Key::Namespace(key.to_string())),
        _ => Ok(Key::Repository(name)),
    }
}

/// Whether `account` may create (and so see and change) hooks with `key`:
/// `Ok(false)` when not; for a missing repository or namespace, an error
/// when `strict` (creating), else `false`. The error is `400` naming `key`
/// for a caller who would see it if it existed (a server administrator,
/// the namespace's owner), else the `404 NO_SUCH_REPOSITORY` every
/// repository route answers for what the caller cannot see.
async fn may_manage(
    state: &AppState,
    account: &Account,
    key: &Key,
    strict: bool,
) -> Result<bool, ApiError> {
    match key {
        Key::Everything => Ok(account.is_admin),
        Key::Repository(name) => {
            match authorize_name(state, account, name, AccessLevel::Admin).await {
                Ok(_) => Ok(true),
                Err(e) if e.status() == StatusCode::NOT_FOUND && strict => {
                    if account.is_admin || name.owner_namespace() == account.name {
                        Err(ApiError::invalid_parameter(
                            "key",
                            format!("no repository {name}"),
                        ))
                    } else {
                        Err(e)
                    }
                }
                Err(e) if matches!(e.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
        Key::Namespace(ns) => {
            let caller = Caller::User(account.clone());
            let level = namespace_level(&state.accounts, &caller, ns).await?;
            if level != Some(AccessLevel::Admin) {
                return Ok(false);
            }
            if strict && !namespace_exists(state, ns).await? {
                return Err(ApiError::invalid_parameter(
                    "key",
                    format!("no namespace {ns:?}"),
                ));
            }
            Ok(true)
        }
    }
}

/// Whether `ns` is an account's, an organization's, a proxy cache's (which
/// fills it on demand), or holds a repository (an administrator's
/// namespace such as `mirrors`).
async fn namespace_exists(state: &AppState, ns: &str) -> Result<bool, ApiError> {
    if state.accounts.get(ns).await?.is_some() || state.orgs.get(ns).await?.is_some() {
        return Ok(true);
    }
    let stores = state.mirror.stores();
    if stores.proxy_caches.proxy_cache(ns).await?.is_some() {
        return Ok(true);
    }
    let repos = state.mirror.stores().repos.repositories().await?;
    Ok(repos.iter().any(|r| r.name.owner_namespace() == ns))
}

/// Checks a key for a form: the caller may manage it (403 if not).
async fn require_key(
    state: &AppState,
    account: &Account,
    key: Option<&str>,
) -> Result<Key, ApiError> {
    let key = parse_key(key)?;
    if !may_manage(state, account, &key, true).await? {
        let what = match &key {
            Key::Everything => "a webhook on every repository needs a server administrator",
            Key::Namespace(_) => "a webhook on a namespace needs admin access to it",
            Key::Repository(_) => "a webhook on a repository needs admin access to it",
        };
        return Err(ApiError::not_authorized(what));
    }
    Ok(key)
}

fn check_type(kind: &str) -> Result<(), ApiError> {
    if is_event_type(kind) {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(
        "type",
        format!(
            "{:?} is not one of {}",
            kind.chars().take(50).collect::<String>(),
            mirror_core::events::EventKind::TYPE_NAMES.join(", ")
        ),
    ))
}

fn check_url(state: &AppState, endpoint: &str) -> Result<(), ApiError> {
    if endpoint.len() > 2048 {
        return Err(ApiError::invalid_parameter(
            "endpoint",
            "longer than 2048 characters",
        ));
    }
    check_endpoint(endpoint, state.webhooks.guard())
        .map(drop)
        .map_err(|e| ApiError::invalid_parameter("endpoint", e))
}

fn check_tls(tls_cert: &str) -> Result<(), ApiError> {
    if tls_cert.len() > MAX_TLS_CERT {
        return Err(ApiError::invalid_parameter("tlsCert", "longer than 64 KiB"));
    }
    if !tls_cert.trim().is_empty() && !tls_cert.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ApiError::invalid_parameter(
            "tlsCert",
            "not a PEM certificate",
        ));
    }
    Ok(())
}

fn check_secret(secret: Option<&str>) -> Result<Option<&str>, ApiError> {
    match secret {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_SECRET => Err(ApiError::invalid_parameter(
            "secret",
            "longer than 1024 bytes",
        )),
        Some(s) => Ok(Some(s)),
    }
}

/// `POST /webhooks` → 201 `Webhook`.
pub async fn create(
    State(state): State<AppState>,
    User(account): User,
    JsonBody(form): JsonBody<CreateForm>,
) -> Result<Response, ApiError> {
    check_type(&form.kind)?;
    let endpoint = form.endpoint.trim().to_string();
    check_url(&state, &endpoint)?;
    let tls_cert = form.tls_cert.unwrap_or_default();
    check_tls(&tls_cert)?;
    let secret = check_secret(form.secret.as_deref())?;
    let key = require_key(&state, &account, form.key.as_deref()).await?;
    let key = match key {
        Key::Everything => String::new(),
        Key::Namespace(ns) => ns,
        Key::Repository(name) => name.as_str().to_string(),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let hook = WebhookRecord {
        sealed_secret: secret.map(|s| state.webhooks.seal_secret(&id, s)),
        id,
        kind: form.kind,
        key,
        endpoint,
        author_id: account.id.clone(),
        created_at: Utc::now(),
        last_successful_at: None,
        inactive: false,
        tls_cert,
        skip_tls_verification: form.skip_tls_verification.unwrap_or(false),
    };
    state.webhooks.store().insert_webhook(&hook).await?;
    tracing::info!(hook = %hook.id, kind = %hook.kind, key = %hook.key, by = %account.name, "webhook created");
    Ok((StatusCode::CREATED, Json(WebhookView::from(&hook))).into_response())
}

/// The hooks `account` may see, among `hooks`.
async fn visible(
    state: &AppState,
    account: &Account,
    hooks: Vec<WebhookRecord>,
) -> Result<Vec<WebhookRecord>, ApiError> {
    let mut out = Vec::new();
    for h in hooks {
        let key = parse_key(Some(&h.key))?;
        if may_manage(state, account, &key, false).await? {
            out.push(h);
        }
    }
    Ok(out)
}

fn listing(paging: &PageQuery, hooks: Vec<WebhookRecord>) -> Response {
    let page = paging.page(hooks, |h| h.id.as_str());
    let views: Vec<WebhookView> = page.items.iter().map(WebhookView::from).collect();
    page.headers.respond(views)
}

/// `?webhookType=` (besides the paging).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TypeQuery {
    /// Only hooks of this event type (`any`, the default: all).
    webhook_type: Option<String>,
}

fn sorted(mut hooks: Vec<WebhookRecord>, kind: Option<&str>) -> Vec<WebhookRecord> {
    if let Some(kind) = kind.filter(|k| !k.is_empty() && *k != "any") {
        hooks.retain(|h| h.kind == kind);
    }
    hooks.sort_by(|a, b| a.id.cmp(&b.id));
    hooks
}

/// `GET /webhooks`: the hooks the caller may manage.
pub async fn list(
    State(state): State<AppState>,
    User(account): User,
    QueryParams(paging): QueryParams<PageQuery>,
    QueryParams(q): QueryParams<TypeQuery>,
) -> Result<Response, ApiError> {
    let all = state.webhooks.store().webhooks().await?;
    let hooks = visible(&state, &account, all).await?;
    Ok(listing(&paging, sorted(hooks, q.webhook_type.as_deref())))
}

/// `GET /repositories/{namespace}/{reponame}/webhooks` (repository admins).
pub async fn list_repository(
    State(state): State<AppState>,
    User(account): User,
    Path((namespace, reponame)): Path<(String, String)>,
    QueryParams(paging): QueryParams<PageQuery>,
    QueryParams(q): QueryParams<TypeQuery>,
) -> Result<Response, ApiError> {
    let name = super::repositories::repository_name(&namespace, &reponame, "reponame")?;
    authorize_name(&state, &account, &name, AccessLevel::Admin).await?;
    let all = state.webhooks.store().webhooks().await?;
    let hooks = all.into_iter().filter(|h| h.key == name.as_str()).collect();
    Ok(listing(&paging, sorted(hooks, q.webhook_type.as_deref())))
}

/// `GET /accounts/{namespace}/webhooks`: the hooks on the namespace and on
/// its repositories that the caller may manage.
pub async fn list_namespace(
    State(state): State<AppState>,
    User(account): User,
    Path(namespace): Path<String>,
    QueryParams(paging): QueryParams<PageQuery>,
    QueryParams(q): QueryParams<TypeQuery>,
) -> Result<Response, ApiError> {
    let all = state.webhooks.store().webhooks().await?;
    let prefix = format!("{namespace}/");
    let in_ns = all
        .into_iter()
        .filter(|h| h.key == namespace || h.key.starts_with(&prefix))
        .collect();
    let hooks = visible(&state, &account, in_ns).await?;
    Ok(listing(&paging, sorted(hooks, q.webhook_type.as_deref())))
}

/// The hook `id` if `account` may manage it, else `NO_SUCH_WEBHOOK`.
async fn managed(state: &AppState, account: &Account, id: &str) -> Result<WebhookRecord, ApiError> {
    let hook = state
        .webhooks
        .store()
        .webhook(id)
        .await?
        .ok_or_else(|| no_such_webhook(id))?;
    let key = parse_key(Some(&hook.key))?;
    if !may_manage(state, account, &key, false).await? {
        return Err(no_such_webhook(id));
    }
    Ok(hook)
}

/// `POST /webhooks/update` → 200 `Webhook`.
pub async fn update(
    State(state): State<AppState>,
    User(account): User,
    JsonBody(form): JsonBody<UpdateForm>,
) -> Result<Response, ApiError> {
    let mut hook = managed(&state, &account, &form.id).await?;
    if let Some(endpoint) = form.endpoint {
        let endpoint = endpoint.trim().to_string();
        check_url(&state, &endpoint)?;
        hook.endpoint = endpoint;
    }
    if let Some(cert) = form.tls_cert {
        check_tls(&cert)?;
        hook.tls_cert = cert;
    }
    if let Some(skip) = form.skip_tls_verification {
        hook.skip_tls_verification = skip;
    }
    if let Some(inactive) = form.inactive {
        hook.inactive = inactive;
    }
    if !state.webhooks.store().update_webhook(&hook).await? {
        return Err(no_such_webhook(&form.id));
    }
    tracing::info!(hook = %hook.id, by = %account.name, "webhook changed");
    Ok(Json(WebhookView::from(&hook)).into_response())
}

/// `DELETE /webhooks/{id}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    managed(&state, &account, &id).await?;
    if !state.webhooks.store().delete_webhook(&id).await? {
        return Err(no_such_webhook(&id));
    }
    tracing::info!(hook = %id, by = %account.name, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /webhooks/test` → 200 `WebhookTestResult`: the sample of `type`
/// posted to `endpoint` now. Needs the rights a hook with `key` needs.
pub async fn test(
    State(state): State<AppState>,
    User(account): User,
    JsonBody(form): JsonBody<TestForm>,
) -> Result<Response, ApiError> {
    check_type(&form.kind)?;
    let endpoint = form.endpoint.trim().to_string();
    check_url(&state, &endpoint)?;
    let tls_cert = form.tls_cert.unwrap_or_default();
    check_tls(&tls_cert)?;
    let secret = check_secret(form.secret.as_deref())?;
    require_key(&state, &account, form.key.as_deref()).await?;
    let attempt = state
        .webhooks
        .send_test(
            &form.kind,
            &account.name,
            &endpoint,
            &tls_cert,
            form.skip_tls_verification.unwrap_or(false),
            secret,
        )
        .await
        .ok_or_else(|| ApiError::invalid_parameter("type", "no sample"))?;
    let result = match attempt {
        Attempt::Delivered { code } => TestResult {
            delivered: true,
            status_code: Some(code),
            error: None,
        },
        Attempt::Retry { code, error } | Attempt::Fail { code, error } => TestResult {
            delivered: false,
            status_code: code,
            error: Some(error),
        },
    };
    Ok(Json(result).into_response())
}

/// `GET /webhooks/{id}/deliveries`: the hook's deliveries, newest first
/// (the newest 1000), paged by ID order within them.
pub async fn deliveries(
    State(state): State<AppState>,
    User(account): User,
    Path(id): Path<String>,
    QueryParams(paging): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    managed(&state, &account, &id).await?;
    let rows = state.webhooks.store().deliveries(&id, DELIVERY_LOG).await?;
    // Page keys must sort as the list does: newest first is the order of
    // `created_at` descending, so the key is the position.
    let keyed: Vec<(String, DeliveryRecord)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("{i:06}"), d))
        .collect();
    let page = paging.page(keyed, |(k, _)| k.as_str());
    let views: Vec<DeliveryView> = page.items.iter().map(|(_, d)| d.into()).collect();
    Ok(page.headers.respond(views))
}
