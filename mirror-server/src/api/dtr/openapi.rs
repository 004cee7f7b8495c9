//! `GET /api/v0/openapi.json`: the OpenAPI 3 document of `/api/v0` (and
//! `/auth/token`), checked in next to this file and served as is, without
//! authentication (it describes the API, not any data). DTR serves its
//! description at `/api/v0/docs.json`, where scripts read `.info.version`
//! (the DTR API version this one follows, `2.7.0`) to choose field
//! spellings: the same document is served there.
//!
//! It is kept in step with the code by `mirror-server/tests/openapi.rs`:
//! its paths are exactly `super::ROUTES` and `super::ROOT_ROUTES`, and each
//! path answers exactly the methods the document lists.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v0/openapi.json` and `GET /api/v0/docs.json`.
pub async fn document() -> Response {
    let mut resp = DOCUMENT.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_json() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    }
}
