//! `GET /auth/token`: DTR's token endpoint, which scripts call with HTTP
//! Basic credentials (a password or an access token) to get a token they
//! then send as `Authorization: Bearer` on `/api/v0` (and `/v2`).
//!
//! The answer is docker's token-server shape: `token` (and the same value
//! as `access_token`), `expires_in` seconds and `issued_at`. The token is
//! a short-lived bearer token of the caller's account (see
//! `accounts::bearer`): it carries the account's rights at each request,
//! whatever `service` or `scope` the query names (they are accepted and
//! ignored). Bearer tokens cannot mint bearer tokens: this endpoint takes
//! Basic credentials only.
//!
//! It is also the realm of the `/v2` Bearer challenge (`auth::challenge`).
//! A caller without credentials (or with empty Basic ones) gets
//! `auth::ANONYMOUS_BEARER`, which acts as no credentials: a Docker daemon
//! pulls through it from public repositories and anonymous caches.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::accounts::Credential;
use crate::accounts::bearer::BEARER_TTL;
use crate::api::extract::ClientAddr;
use crate::auth::{ANONYMOUS_BEARER, AuthFailure, Authorization, parse_authorization};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /auth/token` → 200 `{"token", "access_token", "expires_in",
/// "issued_at"}` (the anonymous token without credentials); 401 with wrong
/// Basic credentials or a bearer token (429 after too many failures, like
/// any login).
pub async fn issue(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let basic_only = || {
        ApiError::not_authenticated(
            "send HTTP Basic credentials (a password or an access token) to get a bearer token",
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(anonymous());
    };
    let value = value
        .to_str()
        .map_err(|_| AuthFailure::Malformed("not ASCII"))?;
    let mut decoded = String::new();
    let (user, secret) = match parse_authorization(value, &mut decoded)? {
        // What containers/image sends when it has no credentials.
        Authorization::Basic {
            user: "",
            secret: "",
        } => return Ok(anonymous()),
        Authorization::Basic { user, secret } => (user, secret),
        Authorization::Bearer(_) => return Err(basic_only()),
    };
    let (account, credential) = state
        .accounts
        .verify(user, secret, client)
        .await?
        .ok_or(AuthFailure::BadCredentials)?;
    let via_token = (credential == Credential::Token).then_some(secret);
    let bearer = state
        .accounts
        .issue_bearer(&account, credential, via_token)
        .await?;
    tracing::info!(user = %account.name, expires_at = %bearer.expires_at, "bearer token issued");
    Ok(token_answer(bearer.secret.expose(), bearer.issued_at))
}

/// The answer to a caller without credentials (a registry client that
/// follows the `/v2` Bearer challenge anonymously): [`ANONYMOUS_BEARER`],
/// which stands for no credentials.
fn anonymous() -> Response {
    token_answer(ANONYMOUS_BEARER, chrono::Utc::now())
}

/// Docker's token-server answer, never cached.
fn token_answer(token: &str, issued_at: chrono::DateTime<chrono::Utc>) -> Response {
    let mut resp = Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": BEARER_TTL.as_secs(),
        "issued_at": issued_at,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
