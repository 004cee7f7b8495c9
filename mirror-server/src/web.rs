//! The web interface: a page at `/` and its assets, compiled into the binary
//! (`mirror-server/web/`, plain HTML, CSS and JavaScript modules; no build
//! step, nothing fetched from the network at run time).
//!
//! The page only calls the `/api/v0` API (and UCP's `/enzi/v0` account API
//! for organizations and teams) with the user's HTTP Basic credentials, so this module knows nothing about accounts, repositories
//! or mirroring: it serves bytes with the right headers.
//!
//! - Assets live under `/assets/<version>/…`, where `<version>` is a hash of
//!   all of them: the page links them with that prefix (the JavaScript
//!   modules import each other by relative paths, so they stay under it), and
//!   they are cached for a year as immutable. A new build gets a new prefix.
//! - `/` is revalidated on every load (`no-cache` with an `ETag`).
//! - Every response carries a strict `Content-Security-Policy`: scripts,
//!   styles, images and API calls from this origin only, no inline code, no
//!   framing, no form posts.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

/// The policy for every response of this module. `connect-src 'self'` is
/// what lets the page call `/api/v0`; `style-src 'self'` forbids inline
/// styles, which the page never uses.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// Path below the version prefix, e.g. `js/app.js`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Everything under `web/` except `index.html`.
static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/forms.js", JS),
    asset!("js/progress.js", JS),
    asset!("js/views/login.js", JS),
    asset!("js/views/repositories.js", JS),
    asset!("js/views/repository.js", JS),
    asset!("js/views/policy-form.js", JS),
    asset!("js/views/tag-rules.js", JS),
    asset!("js/views/jobs.js", JS),
    asset!("js/views/access.js", JS),
    asset!("js/views/orgs.js", JS),
    asset!("js/views/webhooks.js", JS),
];

const INDEX_TEMPLATE: &str = include_str!("../web/index.html");

/// The placeholder in `index.html` replaced by the assets' prefix.
const ASSETS_PLACEHOLDER: &str = "__ASSETS__";

/// A hash of every asset and the page (16 hex digits).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for a in ASSETS {
        h.update(a.path.as_bytes());
        h.update([0]);
        h.update((a.body.len() as u64).to_le_bytes());
        h.update(a.body);
    }
    h.update(INDEX_TEMPLATE.as_bytes());
    hex::encode(h.finalize())[..16].to_string()
});

/// `index.html` with its asset links pointing at this build's prefix
/// (relative, so the page also works behind a path prefix).
static INDEX: LazyLock<String> =
    LazyLock::new(|| INDEX_TEMPLATE.replace(ASSETS_PLACEHOLDER, &format!("assets/{}", *VERSION)));

/// The routes: `/` and `/assets/{version}/{*path}` (merged by the caller).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{version}/{*path}", get(asset))
}

/// The headers every response of this module carries.
fn with_security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// Whether `If-None-Match` lists `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn respond(
    headers: &HeaderMap,
    content_type: &'static str,
    cache_control: &'static str,
    etag: String,
    body: &'static [u8],
) -> Response {
    let etag_value = HeaderValue::from_str(&etag).expect("hex ETag");
    let resp = if not_modified(headers, &etag) {
        (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag_value),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(cache_control),
                ),
            ],
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::ETAG, etag_value),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(cache_control),
                ),
            ],
            body,
        )
            .into_response()
    };
    with_security_headers(resp)
}

/// `GET /`: the page.
async fn index(headers: HeaderMap) -> Response {
    respond(
        &headers,
        "text/html; charset=utf-8",
        "no-cache",
        format!("\"{}\"", *VERSION),
        INDEX.as_bytes(),
    )
}

/// `GET /assets/{version}/{*path}`. Another version than this build's (a
/// page loaded before an upgrade) still gets today's file, but not cached.
async fn asset(headers: HeaderMap, Path((version, path)): Path<(String, String)>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return with_security_headers(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "not found\n",
            )
                .into_response(),
        );
    };
    let cache = if version == *VERSION {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(
        &headers,
        a.content_type,
        cache,
        format!("\"{}\"", *VERSION),
        a.body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_file_is_embedded() {
        // A file added to web/ but not to ASSETS would 404 in the browser.
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut files = Vec::new();
        walk(&base, &base, &mut files);
        for f in files.iter().filter(|f| *f != "index.html") {
            assert!(
                ASSETS.iter().any(|a| a.path == f),
                "web/{f} is not listed in web.rs ASSETS"
            );
        }
    }

    #[test]
    fn index_links_the_versioned_assets() {
        assert!(!INDEX.contains(ASSETS_PLACEHOLDER));
        assert!(INDEX.contains(&format!("assets/{}/js/app.js", *VERSION)));
    }

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(not_modified(&h, "\"b\""));
        assert!(!not_modified(&h, "\"c\""));
    }
}
