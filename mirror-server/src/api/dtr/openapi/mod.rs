//! `GET /api/v0/openapi.json`: the OpenAPI document of `/api/v0` (and
//! `/auth/token`, `/ca`, UCP's eNZi account API `/enzi/v0`), generated from the wire types with `utoipa` and served
//! without authentication (it describes the API, not any data). DTR serves
//! its description at `/api/v0/docs.json`, where scripts read
//! `.info.version` (the DTR API version this one follows, `2.7.0`) to
//! choose field spellings: the same bytes are served there.
//!
//! The schemas are the types the handlers read and write: mirror-core's
//! `api` types, `Job` and the rest (its feature `openapi`), the server's
//! forms and views (`ToSchema` and `IntoParams` beside their definitions),
//! and [`schemas`], the shapes a handler builds as JSON. The operations are
//! the documentation-only functions of [`paths`], one per route and method.
//!
//! `mirror-server/tests/openapi.rs` keeps it in step with the code: its
//! paths are exactly `super::ROUTES` and `super::ROOT_ROUTES`, each path
//! answers exactly the methods the document lists, every `$ref` resolves,
//! and real answers (and serialized mirror-core values) fit their schemas.

mod paths;
mod schemas;

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Server};
use utoipa::{Modify, OpenApi};

use super::ROOT_ROUTES;
use super::paging::PageSize;

/// The document's operations and schemas; [`Finish`] adds what has no
/// attribute.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "regmirror management API",
        // The DTR API version this one follows, which scripts read.
        version = "2.7.0",
        description = include_str!("description.md"),
    ),
    servers((url = "/api/v0")),
    security(("basic" = []), ("bearer" = [])),
    tags(
        (name = "repositories", description = "Repositories and their tags."),
        (name = "access", description = "Access grants on repositories, to users and to \
                                         organizations' teams, and teams' grants on whole \
                                         namespaces."),
        (name = "policies", description = "Poll mirroring policies and the remote check."),
        (name = "jobs", description = "Jobs (`poll_mirror`, `onlinegc`) and their logs."),
        (name = "crons", description = "Crons that submit jobs."),
        (name = "accounts", description = "Accounts, access tokens and bearer tokens."),
        (name = "organizations", description = "UCP's eNZi account API, served at the root \
                                                (`/enzi/v0`): accounts, organizations, their \
                                                members and teams, and teams' members."),
        (name = "meta", description = "Settings, features and this document."),
        (name = "proxyCaches", description = "Pull-through caches: local namespaces bound to \
                                              remote registries, filled on demand."),
        (name = "webhooks", description = "Webhooks: event subscriptions of repositories and \
                                           namespaces, their test and delivery log."),
    ),
    paths(
        paths::get_openapi,
        paths::get_docs_json,
        paths::list_repositories,
        paths::list_namespace_repositories,
        paths::create_repository,
        paths::get_repository,
        paths::delete_repository,
        paths::list_tags,
        paths::get_tag,
        paths::delete_tag,
        paths::get_tag_history,
        paths::list_access,
        paths::set_access,
        paths::remove_access,
        paths::list_team_access,
        paths::set_team_access,
        paths::remove_team_access,
        paths::list_namespace_team_access,
        paths::get_namespace_team_access,
        paths::set_namespace_team_access,
        paths::remove_namespace_team_access,
        paths::list_policies,
        paths::create_policy,
        paths::get_policy,
        paths::get_policy_by_id,
        paths::update_policy,
        paths::delete_policy,
        paths::list_push_policies,
        paths::create_push_policy,
        paths::get_push_policy,
        paths::update_push_policy,
        paths::delete_push_policy,
        paths::list_mirroring_policies,
        paths::list_proxy_caches,
        paths::create_proxy_cache,
        paths::get_proxy_cache,
        paths::update_proxy_cache,
        paths::delete_proxy_cache,
        paths::check_remote_registry,
        paths::get_settings,
        paths::update_settings,
        paths::get_features,
        paths::list_jobs,
        paths::submit_job,
        paths::get_job,
        paths::delete_job,
        paths::cancel_job,
        paths::get_job_logs,
        paths::list_crons,
        paths::save_cron,
        paths::get_cron,
        paths::delete_cron,
        paths::list_accounts,
        paths::create_account,
        paths::get_account,
        paths::update_account,
        paths::change_password,
        paths::list_team_repository_access,
        paths::list_tokens,
        paths::create_token,
        paths::delete_token,
        paths::update_token,
        paths::get_bearer_token,
        paths::get_ca,
        paths::list_enzi_accounts,
        paths::create_enzi_account,
        paths::get_enzi_account,
        paths::update_enzi_account,
        paths::delete_enzi_account,
        paths::list_org_members,
        paths::get_org_member,
        paths::set_org_member,
        paths::remove_org_member,
        paths::list_teams,
        paths::create_team,
        paths::get_team,
        paths::update_team,
        paths::delete_team,
        paths::list_team_members,
        paths::get_team_member,
        paths::add_team_member,
        paths::remove_team_member,
        paths::list_webhooks,
        paths::create_webhook,
        paths::update_webhook,
        paths::test_webhook,
        paths::delete_webhook,
        paths::list_webhook_deliveries,
        paths::list_repository_webhooks,
        paths::list_namespace_webhooks,
    ),
    // Referenced from parameters, which do not collect their schemas.
    components(schemas(PageSize)),
    modifiers(&Finish),
)]
struct ApiDoc;

/// The security schemes, and the root routes' own `servers` entry.
struct Finish;

impl Modify for Finish {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A password or an access token."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A bearer token from `GET /auth/token` (valid 15 minutes), or an \
                         access token.",
                    ))
                    .build(),
            ),
        );
        // The root routes are served at `/`, not under `/api/v0`.
        for (path, _) in ROOT_ROUTES {
            if let Some(item) = doc.paths.paths.get_mut(*path) {
                item.servers = Some(vec![Server::new("/")]);
            }
        }
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    prose(&json)
});

/// `json` with its strings read as API prose rather than Rust doc
/// comments: a line break inside a paragraph becomes a space (a blank line
/// stays a paragraph break, a line starting a list item stays), a trailing
/// one goes, and a link to a Rust item, "[`Item`]", is just "`Item`".
fn prose(json: &str) -> String {
    let b = json.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        let rest = &b[i..];
        if !in_string {
            in_string = b[i] == b'"';
            out.push(b[i]);
            i += 1;
        } else if rest.starts_with(b"\\n") {
            // A line break: "\n" in the JSON text.
            let mut j = i + 2;
            while b[j..].starts_with(b"\\n") {
                j += 2;
            }
            let next = &b[j..];
            if j - i > 2 {
                out.extend_from_slice(b"\\n\\n");
            } else if next.starts_with(b"- ") || next.starts_with(b"* ") {
                out.extend_from_slice(b"\\n");
            } else if !next.starts_with(b"\"") {
                out.push(b' ');
            }
            i = j;
        } else if b[i] == b'\\' {
            out.extend_from_slice(&rest[..2.min(rest.len())]);
            i += 2;
        } else if b[i] == b'"' {
            in_string = false;
            out.push(b'"');
            i += 1;
        } else if let Some(len) = rust_link(rest) {
            out.extend_from_slice(&rest[1..len - 1]);
            i += len;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII was replaced")
}

/// The length of the intra-doc link "[`Item`]" that `s` starts with (one
/// not followed by a URL or reference), if it does.
fn rust_link(s: &[u8]) -> Option<usize> {
    let inner = s.strip_prefix(b"[`")?;
    let end = inner.iter().position(|&c| c == b'`')?;
    let item = &inner[..end];
    let valid = item
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':');
    let len = 2 + end + 2;
    let closed = inner.get(end + 1) == Some(&b']');
    let bare = !matches!(s.get(len), Some(b'(' | b'['));
    (valid && !item.is_empty() && closed && bare).then_some(len)
}

/// The document's JSON, as served.
pub fn json() -> &'static str {
    &DOCUMENT
}

/// `GET /api/v0/openapi.json` and `GET /api/v0/docs.json`.
pub async fn document() -> Response {
    let mut resp = json().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_openapi_json() {
        let doc: serde_json::Value = serde_json::from_str(super::json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(doc["info"]["version"], "2.7.0");
    }

    #[test]
    fn doc_comments_read_as_prose() {
        let cases = [
            (r#"{"a": "one\nline"}"#, r#"{"a": "one line"}"#),
            (r#"{"a": "para\n\nnext\n"}"#, r#"{"a": "para\n\nnext"}"#),
            (r#"{"a": "list:\n- item"}"#, r#"{"a": "list:\n- item"}"#),
            (
                r#"{"a": "an [`ErrorBody`], [`a::b`]"}"#,
                r#"{"a": "an `ErrorBody`, `a::b`"}"#,
            ),
            (
                r#"{"a": "[`x`](u) [`y z`] [not]"}"#,
                r#"{"a": "[`x`](u) [`y z`] [not]"}"#,
            ),
            (r#"{"k": "q\"[`v`]\\n"}"#, r#"{"k": "q\"`v`\\n"}"#),
        ];
        for (json, want) in cases {
            assert_eq!(super::prose(json), want, "{json}");
        }
        let doc: serde_json::Value = serde_json::from_str(super::json()).unwrap();
        assert!(!super::json().contains("[`"), "a Rust link is left");
        assert!(doc["components"]["schemas"]["Job"].is_object());
    }
}
