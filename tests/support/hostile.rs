//! A registry that lies on purpose, for the tests of what a hostile remote
//! cannot do to the server (`tests/security/hostile_remote.rs`, and the
//! memory test against the real binary). Real registries do not send
//! endless bodies, so this one is made here; what it does depends on the
//! repository's namespace:
//!
//! - `bigtoken/*`: `401` with a Bearer challenge whose token server answers
//!   an endless (1.5 GB and more) JSON body;
//! - `bigpage/*`: a tag page without end (400 MiB and more);
//! - `endless/*`: one new tag per page, each with a `Link` to the next;
//! - `drip/*`: a tag page that sends one byte a second, forever;
//! - anything else: an empty tag list.
//!
//! It runs on the caller's runtime until the test ends.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::json;

/// An endless body: `head`, then `chunk` forever, each after `every`.
fn endless(head: &'static [u8], chunk: Bytes, every: Option<Duration>) -> Body {
    let first =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(Bytes::from_static(head)) },
        );
    let rest = futures_util::stream::unfold(chunk, move |chunk| async move {
        if let Some(d) = every {
            tokio::time::sleep(d).await;
        }
        Some((Ok(chunk.clone()), chunk))
    });
    Body::from_stream(futures_util::StreamExt::chain(first, rest))
}

/// The hostile registry: what it does depends on the repository's
/// namespace (`bigtoken/*`, `bigpage/*`, `endless/*`, `drip/*`).
pub async fn start_hostile() -> SocketAddr {
    async fn tags(
        State(addr): State<SocketAddr>,
        Path((ns, _name)): Path<(String, String)>,
        Query(q): Query<std::collections::HashMap<String, String>>,
        headers: HeaderMap,
    ) -> Response {
        match ns.as_str() {
            "bigtoken" if headers.get(header::AUTHORIZATION).is_none() => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"http://{addr}/token\",service=\"hostile\""),
                )],
            )
                .into_response(),
            // A page that never ends (400 MiB and more).
            "bigpage" => (
                [(header::CONTENT_TYPE, "application/json")],
                endless(
                    br#"{"name":"bigpage/app","tags":[""#,
                    Bytes::from(vec![b'a'; 1 << 20]),
                    None,
                ),
            )
                .into_response(),
            "endless" => {
                let n: u64 = q.get("last").and_then(|l| l.parse().ok()).unwrap_or(0) + 1;
                (
                    [
                        (header::CONTENT_TYPE, "application/json".to_string()),
                        (
                            header::LINK,
                            format!("</v2/endless/app/tags/list?last={n}>; rel=\"next\""),
                        ),
                    ],
                    json!({"name": "endless/app", "tags": [format!("t{n}")]}).to_string(),
                )
                    .into_response()
            }
            "drip" => (
                [(header::CONTENT_TYPE, "application/json")],
                endless(
                    br#"{"name":"drip/app","tags":["#,
                    Bytes::from_static(b" "),
                    Some(Duration::from_secs(1)),
                ),
            )
                .into_response(),
            _ => (
                [(header::CONTENT_TYPE, "application/json")],
                json!({"name": format!("{ns}/app"), "tags": []}).to_string(),
            )
                .into_response(),
        }
    }
    async fn token() -> Response {
        // 1.5 GB of token, if anyone kept reading.
        (
            [(header::CONTENT_TYPE, "application/json")],
            endless(br#"{"token":""#, Bytes::from(vec![b'a'; 1 << 20]), None),
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/{ns}/{name}/tags/list", get(tags))
        .route("/token", get(token))
        .with_state(addr);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
