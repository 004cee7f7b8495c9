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

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::accounts::Credential;
use crate::accounts::bearer::BEARER_TTL;
use crate::api::extract::ClientAddr;
use crate::auth::{AuthFailure, Authorization, parse_authorization};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /auth/token` → 200 `{"token", "access_token", "expires_in",
/// "issued_at"}`; 401 without Basic credentials or with wrong ones (429
/// after too many failures, like any login).
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
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(basic_only)?
        .to_str()
        .map_err(|_| AuthFailure::Malformed("not ASCII"))?;
    let mut decoded = String::new();
    let Authorization::Basic { user, secret } = parse_authorization(value, &mut decoded)? else {
        return Err(basic_only());
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
    let mut resp = Json(json!({
        "token": bearer.secret.expose(),
        "access_token": bearer.secret.expose(),
        "expires_in": BEARER_TTL.as_secs(),
        "issued_at": bearer.issued_at,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
