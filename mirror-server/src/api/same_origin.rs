//! [`guard`]: `/api/v0` requests that change state must come from this
//! server's own pages or from a program, never from a browser acting for
//! another site (cross-site request forgery).
//!
//! A request whose method is not safe (anything but `GET`, `HEAD`,
//! `OPTIONS`, `TRACE`):
//!
//! - is refused (`403 FOREIGN_ORIGIN`) when it carries an `Origin` that is
//!   not this server (browsers send one with every cross-origin write; the
//!   web page is served from the same host and port, so its own is
//!   accepted), or `Sec-Fetch-Site: cross-site`;
//! - when it has a body, must declare it `Content-Type: application/json`
//!   (parameters such as `charset` allowed), else `415`: a page of another
//!   site can send `text/plain`, form and multipart bodies without asking,
//!   but not JSON.
//!
//! "This server" is the `Host` the request was sent to, or the
//! `X-Forwarded-Host` a reverse proxy that rewrites `Host` sets (a page
//! cannot add that header to a cross-site request without the server's
//! consent, which it never gives). Programs (curl, docker, the Python
//! client) send no `Origin`. Reads are not guarded: a browser does not let
//! another site read the answers.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The middleware; see the module docs.
pub async fn guard(req: Request, next: Next) -> Response {
    if !req.method().is_safe() {
        if let Some(origin) = foreign_origin(req.headers()) {
            return ApiError::foreign_origin(&origin).into_response();
        }
        let has_body = req.body().size_hint().exact() != Some(0);
        if has_body && !declares_json(req.headers()) {
            let got = req
                .headers()
                .get(header::CONTENT_TYPE)
                .map_or("no Content-Type".into(), |v| {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                });
            return ApiError::unsupported_media_type(&got).into_response();
        }
    }
    next.run(req).await
}

/// Whether the body is declared `application/json`.
fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The site a browser sent the request for, when it is not this server.
fn foreign_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return Some(text("origin").unwrap_or("another site").to_string());
    }
    let origin = headers.get(header::ORIGIN)?;
    let Some(origin) = origin.to_str().ok() else {
        return Some(String::from_utf8_lossy(origin.as_bytes()).into_owned());
    };
    let own = [text("host"), text("x-forwarded-host")];
    let authority = origin_authority(origin);
    let same = authority.is_some_and(|a| {
        own.into_iter()
            .flatten()
            .filter_map(|h| h.split(',').next())
            .any(|h| without_default_port(h.trim()).eq_ignore_ascii_case(a))
    });
    (!same).then(|| origin.to_string())
}

/// `host[:port]` of an `Origin` (`scheme://host[:port]`), without the
/// scheme's default port; `None` for `null` and anything malformed.
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        || rest.is_empty()
        || rest.contains(['/', '@', '?', '#'])
    {
        return None;
    }
    Some(without_default_port(rest))
}

/// `host` without a `:80` or `:443` suffix (browsers leave the default
/// port out of `Host` and `Origin` alike).
fn without_default_port(host: &str) -> &str {
    host.strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_servers_own_origin_is_accepted() {
        let host = ("host", "127.0.0.1:5000");
        for own in [
            vec![host],
            vec![host, ("origin", "http://127.0.0.1:5000")],
            vec![
                ("host", "Reg.Example.com"),
                ("origin", "https://reg.example.com"),
            ],
            vec![
                ("host", "reg.example.com:443"),
                ("origin", "https://reg.example.com"),
            ],
            vec![
                ("host", "127.0.0.1:5000"),
                ("x-forwarded-host", "reg.example.com"),
                ("origin", "https://reg.example.com"),
            ],
            vec![host, ("sec-fetch-site", "same-origin")],
        ] {
            assert_eq!(foreign_origin(&headers(&own)), None, "{own:?}");
        }
        for foreign in [
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "http://127.0.0.1:5001")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:5000/x")],
            vec![host, ("origin", "file://127.0.0.1:5000")],
            vec![("origin", "http://127.0.0.1:5000")],
            vec![host, ("sec-fetch-site", "cross-site")],
        ] {
            assert!(foreign_origin(&headers(&foreign)).is_some(), "{foreign:?}");
        }
    }

    #[test]
    fn json_with_parameters_is_json() {
        for ok in ["application/json", "Application/JSON; charset=utf-8"] {
            assert!(declares_json(&headers(&[("content-type", ok)])), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            assert!(!declares_json(&headers(&[("content-type", bad)])), "{bad}");
        }
        assert!(!declares_json(&HeaderMap::new()));
    }
}
