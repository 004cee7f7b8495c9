//! The HTTP surface: the OCI registry API under `/v2`, the DTR management
//! API under `/api/v0` (guarded against cross-site requests by
//! [`same_origin`]) and DTR's `/auth/token`, Prometheus metrics at
//! `/metrics`, plus request logging.
//!
//! Handlers translate between HTTP and mirror-core / `accounts` /
//! `scheduler` calls; they hold no mirroring logic. Errors go through
//! `crate::error`.

pub mod dtr;
pub mod extract;
pub mod metrics;
pub mod same_origin;
pub mod v2;

use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(v2::router())
        .nest(
            "/api/v0",
            dtr::router().layer(middleware::from_fn(same_origin::guard)),
        )
        .merge(dtr::root_router())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .merge(crate::web::router())
        .fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such endpoint",
            )
        })
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Logs method, path, status and duration of each request. Never logs
/// headers or query strings, which may carry credentials.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = start.elapsed().as_millis() as u64;
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status, ms, "request");
    }
    resp
}
