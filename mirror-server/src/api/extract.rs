//! Request extractors for the DTR API whose rejections are DTR errors: a
//! JSON body and query parameters that name the offending field, and the
//! authenticated caller.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::accounts::{Account, Credential};
use crate::auth::{client_address, credentials};
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body; errors name the field: `INVALID_JSON` with
/// `detail.field`. Its `Content-Type` was checked before, for every
/// `/api/v0` write (`api::same_origin`).
///
/// Fields the form does not read are accepted and ignored, as DTR's server
/// does (scripts send back objects they read, with `id`, `namespaceType`,
/// ...); they are logged at debug level, here and nowhere else. Fields the
/// form reads are checked strictly: a wrong type is a 400 naming the field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let route = format!("{} {}", req.method(), req.uri().path());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?;
        let (form, ignored) = parse_json(&bytes)?;
        if !ignored.is_empty() {
            tracing::debug!(%route, fields = %ignored.join(", "), "ignored unknown JSON fields");
        }
        Ok(JsonBody(form))
    }
}

/// Parses `bytes` as `T`, naming the field that failed; also returns the
/// paths of the fields `T` does not read (`labels.extra`, `rules[0]`),
/// which are skipped.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Vec<String>), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("body", "the request body is empty"));
    }
    // JSON is UTF-8 throughout, also in the fields that are skipped (which
    // the parser does not decode).
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::invalid_json("body", format!("not UTF-8: {e}")))?;
    let mut ignored = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let mut record = |path: serde_ignored::Path| ignored.push(path.to_string());
    let tracking = serde_ignored::Deserializer::new(&mut de, &mut record);
    let value = serde_path_to_error::deserialize(tracking).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid_json(&path, e.inner().to_string())
    })?;
    de.end()
        .map_err(|e| ApiError::invalid_json("body", e.to_string()))?;
    Ok((value, ignored))
}

/// Query parameters; a bad value is `400 INVALID_PARAMETER` naming it.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|e| {
                let (field, reason) = split_query_error(&e.body_text());
                ApiError::invalid_parameter(&field, reason)
            })
    }
}

/// Splits axum's "Failed to deserialize query string: limit: invalid digit
/// found in string" into the field and the reason.
fn split_query_error(text: &str) -> (String, String) {
    let rest = text.split_once(": ").map_or(text, |(_, r)| r);
    match rest.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') => (field.to_string(), reason.to_string()),
        _ => ("query".to_string(), rest.to_string()),
    }
}

/// The client's address (see [`client_address`]).
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(&parts.extensions)))
    }
}

/// An authenticated caller; anonymous requests are refused with 401.
pub struct User(pub Account);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (account, _) = signed_in(parts, state).await?;
        Ok(User(account))
    }
}

/// The account and credential of a request; anonymous ones are refused.
async fn signed_in(parts: &Parts, state: &AppState) -> Result<(Account, Credential), ApiError> {
    let client = client_address(&parts.extensions);
    credentials(&state.accounts, &parts.headers, client)
        .await?
        .ok_or_else(|| {
            ApiError::not_authenticated(
                "authentication required: send HTTP Basic credentials (password or access token) or a bearer token",
            )
        })
}

/// A caller authenticated with their password, not an access token or a
/// bearer token: what a token could do to outlive its revocation (create
/// tokens, change the password) needs the password; token callers get 403.
pub struct PasswordUser(pub Account);

impl FromRequestParts<AppState> for PasswordUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match signed_in(parts, state).await? {
            (account, Credential::Password) => Ok(PasswordUser(account)),
            (_, Credential::Token | Credential::Bearer) => Err(ApiError::not_authorized(
                "an access token cannot create access tokens or change passwords; sign in with the password",
            )),
        }
    }
}

/// An authenticated server administrator; others get 401 or 403.
pub struct Admin(pub Account);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let User(account) = User::from_request_parts(parts, state).await?;
        if !account.is_admin {
            return Err(ApiError::not_authorized(
                "this endpoint needs a server administrator",
            ));
        }
        Ok(Admin(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Form {
        token_label: Option<String>,
        #[serde(default)]
        enabled: bool,
    }

    #[test]
    fn unknown_fields_are_skipped_and_named_read_ones_checked() {
        let body = br#"{"tokenLabel": "ci", "id": "x", "lastStatus": {"code": "OK"}, "rules": []}"#;
        let (form, ignored) = parse_json::<Form>(body).unwrap();
        assert_eq!(form.token_label.as_deref(), Some("ci"));
        assert!(!form.enabled);
        assert_eq!(ignored, ["id", "lastStatus", "rules"]);

        let field = |body: &[u8]| {
            let e = parse_json::<Form>(body).unwrap_err();
            assert_eq!(e.code(), "INVALID_JSON");
            e.detail()["field"].as_str().unwrap().to_string()
        };
        assert_eq!(field(br#"{"enabled": "yes", "id": 1}"#), "enabled");
        assert_eq!(field(br#"{"tokenLabel": "a"} {"enabled": true}"#), "body");
        assert_eq!(field(b"{\"id\": \"\xff\"}"), "body");
        assert_eq!(field(b"  "), "body");
    }
}
