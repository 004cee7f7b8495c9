//! `GET /ca`: the CA certificate of the server's TLS certificate, in PEM,
//! as DTR serves it at `https://<dtr-domain>/ca`, for clients to trust
//! (docker's `certs.d/<host:port>/ca.crt`, skopeo's `--cert-dir`, a
//! policy's `remoteCA`). No authentication: a certificate is public. In
//! `tls = "auto"` mode it is the generated CA; with certificate files,
//! the last certificate of the chain (a self-signed certificate itself).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /ca` → 200 with the PEM certificate; 404 `TLS_NOT_ENABLED` on a
/// server that speaks plain HTTP.
pub async fn get(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tls = state.tls.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "TLS_NOT_ENABLED",
            "this server does not use TLS; /ca is served only over TLS",
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        tls.ca_pem().to_string(),
    )
        .into_response())
}
