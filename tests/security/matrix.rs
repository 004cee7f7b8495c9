//! The authorization matrix: every `/api/v0` route (from `ROUTES`, and
//! `/auth/token` from `ROOT_ROUTES`; each method `openapi.json` documents
//! for it, so a new route or method fails here until it has expectations)
//! and the main `/v2` forms, called by seven
//! roles — anonymous, a user with no access, read-only, read-write, a
//! member of a team granted read-write, repository admin (by grant) and
//! server admin — against the private `acme/app`, with the status class
//! each role must get. `acme` is an organization; its team `builders`
//! (member: `teammate`) holds read-write on `acme/app` and read-only on
//! the whole namespace; `teammate` has no grant of its own.
//!
//! Path parameters are real: `acme/app`, its poll mirroring policy, a job
//! polling that policy, the `poll_mirror` cron, the user `victim` (another
//! account, read-only on `acme/app`) and one of victim's tokens. After a
//! request that succeeds and changes something, the fixtures are restored
//! ([`ensure_world`]), so every role meets the same state.
//!
//! A second private repository, `other/secret`, is never granted: nobody
//! but the server admin can read it, and the listings (`/api/v0/repositories`
//! and `/v2/_catalog`) of the others never name it.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server::{ADMIN, Creds, TestServer};
use crate::support::images::ImageSpec;
use crate::support::registry::Registry;

/// The roles, in the order requests are made (least privileged first, so a
/// successful delete by a later role does not hide a refusal of an earlier
/// one; fixtures are restored after each success anyway).
const ROLES: [(&str, Creds<'static>); 7] = [
    ("anonymous", None),
    ("nobody", Some(("nobody", "nobody-pa55word"))),
    ("reader", Some(("reader", "reader-pa55word"))),
    ("writer", Some(("writer", "writer-pa55word"))),
    ("teammate", Some(("teammate", "teammate-pa55word"))),
    ("repoadmin", Some(("repoadmin", "repoadmin-pa55word"))),
    ("admin", ADMIN),
];

const VICTIM_PASSWORD: &str = "victim-pa55word";
/// The namespace of the world's proxy cache.
const MATRIX_CACHE: &str = "matrixcache";
/// The password of the world's policy: no answer to anyone may contain it.
const UPSTREAM_SECRET: &str = "upstream-secret-pw";
const CRON_SCHEDULE: &str = "0 */30 * * * *";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// What one role must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Exp {
    /// 2xx.
    Ok,
    /// 401 (with a Basic challenge).
    Unauth,
    /// 403.
    Denied,
    /// 404: the thing is hidden (or, for another's account or token, not
    /// the caller's to see).
    Hidden,
}

/// Expectations of the seven roles, in [`ROLES`] order, from a spec such
/// as `"401 404 2xx 2xx 2xx 2xx 2xx"`.
fn exp(spec: &str) -> [Exp; 7] {
    let v: Vec<Exp> = spec
        .split_whitespace()
        .map(|t| match t {
            "2xx" => Exp::Ok,
            "401" => Exp::Unauth,
            "403" => Exp::Denied,
            "404" => Exp::Hidden,
            other => panic!("bad expectation {other:?}"),
        })
        .collect();
    v.try_into().expect("seven expectations")
}

/// The fixtures whose identities change when they are recreated.
#[derive(Debug, Clone)]
struct World {
    policy: String,
    /// A push mirroring policy of `acme/app` whose rules keep no tag.
    push_policy: String,
    /// A webhook on `acme/app`.
    webhook: String,
    job: String,
    token: String,
    blob: String,
    manifest: Vec<u8>,
    media_type: String,
}

/// One request of the matrix.
struct Case {
    method: Method,
    /// The `ROUTES` template (for `/api/v0`), or the full `/v2` path.
    template: &'static str,
    /// Appended to the path (`?username=victim`).
    query: &'static str,
    body: Option<Value>,
    expect: [Exp; 7],
}

fn case(
    method: Method,
    template: &'static str,
    query: &'static str,
    body: Option<Value>,
    spec: &str,
) -> Case {
    Case {
        method,
        template,
        query,
        body,
        expect: exp(spec),
    }
}

/// The `/api/v0` expectations: the code's rules (see `api/dtr/mod.rs`,
/// `repositories::authorize`, `job_access`, `accounts::token_owner`).
fn api_cases(upstream: &str) -> Vec<Case> {
    use Method as M;
    let remote = json!({"remoteHost": upstream, "remoteRepository": "team/app"});
    vec![
        case(
            M::GET,
            "/openapi.json",
            "",
            None,
            "2xx 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::GET,
            "/docs.json",
            "",
            None,
            "2xx 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // DTR's token endpoint (a root route): any account gets a bearer
        // token acting as itself, an anonymous caller the anonymous one.
        case(
            M::GET,
            "/auth/token",
            "",
            None,
            "2xx 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // The CA certificate (a root route, anonymous as DTR's): this
        // server speaks plain HTTP, so there is none to give anyone.
        case(M::GET, "/ca", "", None, "404 404 404 404 404 404 404"),
        case(
            M::GET,
            "/repositories",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // Listing a namespace is filtered (checked below), not refused.
        case(
            M::GET,
            "/repositories/{namespace}",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // Only server admins create repositories outside their own
        // namespace; to users another namespace has no account, as DTR
        // answers (`NO_SUCH_ACCOUNT`).
        case(
            M::POST,
            "/repositories/{namespace}",
            "",
            Some(json!({"name": "made-by-matrix"})),
            "401 404 404 404 404 404 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/tags",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/tags/{reference}",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/tags/{reference}/history",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}/tags/{reference}",
            "",
            None,
            "401 404 403 2xx 2xx 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/userAccess",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::PUT,
            "/repositories/{namespace}/{reponame}/userAccess/{username}",
            "",
            Some(json!({"accessLevel": "read-only"})),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}/userAccess/{username}",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::POST,
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies",
            "",
            Some(remote.clone()),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::PUT,
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
            "",
            Some(json!({"enabled": true})),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}/pollMirroringPolicies/{id}",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        // Push mirroring policies: as poll policies.
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/pushMirroringPolicies",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::POST,
            "/repositories/{namespace}/{reponame}/pushMirroringPolicies",
            "",
            Some(push_remote(upstream)),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::PUT,
            "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
            "",
            Some(json!({"enabled": true})),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}/pushMirroringPolicies/{id}",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/mirroringPolicies",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        // By ID alone: the same visibility as through the repository
        // (to a caller who cannot see `acme/app`, the policy does not exist).
        case(
            M::GET,
            "/pollMirroringPolicies/{id}",
            "",
            None,
            "401 404 2xx 2xx 2xx 2xx 2xx",
        ),
        // Settings: server admins; features: anyone logged in.
        case(
            M::GET,
            "/meta/settings",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::POST,
            "/meta/settings",
            "",
            Some(json!({"createRepositoryOnPush": false})),
            "401 403 403 403 403 403 2xx",
        ),
        // Proxy caches: server admins only.
        case(
            M::GET,
            "/proxyCaches",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::POST,
            "/proxyCaches",
            "",
            Some(json!({"namespace": "madecache", "remoteHost": "https://ghcr.io"})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/proxyCaches/{namespace}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::PUT,
            "/proxyCaches/{namespace}",
            "",
            Some(json!({"tagTTLSecs": 60})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::DELETE,
            "/proxyCaches/{namespace}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/meta/features",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // Any user may check a remote (the SSRF guard applies to everyone).
        case(
            M::POST,
            "/remote/registry",
            "",
            Some(remote),
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        // Jobs: server admins; a repository admin may see and cancel a job
        // polling their repository's policy, but not list, submit or delete.
        case(M::GET, "/jobs", "", None, "401 403 403 403 403 403 2xx"),
        case(
            M::POST,
            "/jobs",
            "",
            Some(json!({"action": "poll_mirror", "parameters": {"policyID": "{id}"}})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/jobs/{id}",
            "",
            None,
            "401 403 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/jobs/{id}/logs",
            "",
            None,
            "401 403 403 403 403 2xx 2xx",
        ),
        case(
            M::POST,
            "/jobs/{id}/cancel",
            "",
            None,
            "401 403 403 403 403 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/jobs/{id}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        // Crons and accounts: server admins.
        case(M::GET, "/crons", "", None, "401 403 403 403 403 403 2xx"),
        case(
            M::POST,
            "/crons",
            "",
            Some(json!({"action": "poll_mirror", "schedule": CRON_SCHEDULE})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/crons/{action}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::DELETE,
            "/crons/{action}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(M::GET, "/accounts", "", None, "401 403 403 403 403 403 2xx"),
        case(
            M::POST,
            "/accounts",
            "",
            Some(json!({"name": "mallory", "password": "mallory-pa55word"})),
            "401 403 403 403 403 403 2xx",
        ),
        // Another user's account is not found (existence not told).
        case(
            M::GET,
            "/accounts/{name}",
            "",
            None,
            "401 404 404 404 404 404 2xx",
        ),
        case(
            M::PATCH,
            "/accounts/{name}",
            "",
            Some(json!({"fullName": "Victim"})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::POST,
            "/accounts/{name}/changePassword",
            "",
            Some(json!({"newPassword": VICTIM_PASSWORD})),
            "401 404 404 404 404 404 2xx",
        ),
        // Tokens: one's own (any user); another's only for server admins.
        case(
            M::GET,
            "/api_tokens",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::POST,
            "/api_tokens",
            "",
            Some(json!({"tokenLabel": "own"})),
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::GET,
            "/api_tokens",
            "?username=victim",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::POST,
            "/api_tokens",
            "?username=victim",
            Some(json!({"tokenLabel": "planted"})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::PATCH,
            "/api_tokens/{hashedtoken}",
            "?username=victim",
            Some(json!({"tokenLabel": "victim-token"})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::DELETE,
            "/api_tokens/{hashedtoken}",
            "?username=victim",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        // Victim's token by hash, as one's own: never found, not even by
        // the admin (tokens are looked up among the caller's).
        case(
            M::PATCH,
            "/api_tokens/{hashedtoken}",
            "",
            Some(json!({"tokenLabel": "stolen"})),
            "401 404 404 404 404 404 404",
        ),
        case(
            M::DELETE,
            "/api_tokens/{hashedtoken}",
            "",
            None,
            "401 404 404 404 404 404 404",
        ),
        // Team grants on the repository: its administrators.
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/teamAccess",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::PUT,
            "/repositories/{namespace}/{reponame}/teamAccess/{team}",
            "",
            Some(json!({"accessLevel": "read-write"})),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/{namespace}/{reponame}/teamAccess/{team}",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        // The organization's members see its teams and their grants; its
        // administrators (here only the server admin) change them; to
        // anyone else the organization's insides do not exist.
        case(
            M::GET,
            "/repositoryNamespaces/{namespace}/teamAccess",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::GET,
            "/repositoryNamespaces/{namespace}/teamAccess/{team}",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::PUT,
            "/repositoryNamespaces/{namespace}/teamAccess/{team}",
            "",
            Some(json!({"accessLevel": "read-only"})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::DELETE,
            "/repositoryNamespaces/{namespace}/teamAccess/{team}",
            "",
            None,
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::GET,
            "/accounts/{org}/teams/{team}/repositoryAccess",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        // UCP's account API (root routes): a user sees themselves and
        // their organizations; server admins create and delete them.
        case(
            M::GET,
            "/enzi/v0/accounts",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        case(
            M::POST,
            "/enzi/v0/accounts",
            "",
            Some(json!({"name": "made-org", "isOrg": true})),
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{name}",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::PATCH,
            "/enzi/v0/accounts/{name}",
            "",
            Some(json!({"fullName": "Acme"})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::DELETE,
            "/enzi/v0/accounts/{name}",
            "",
            None,
            "401 403 403 403 403 403 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/members",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/members/{member}",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::PUT,
            "/enzi/v0/accounts/{org}/members/{member}",
            "",
            Some(json!({"isAdmin": false, "isPublic": true})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::DELETE,
            "/enzi/v0/accounts/{org}/members/{member}",
            "",
            None,
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/teams",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::POST,
            "/enzi/v0/accounts/{org}/teams",
            "",
            Some(json!({"name": "made-team"})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/teams/{team}",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::PATCH,
            "/enzi/v0/accounts/{org}/teams/{team}",
            "",
            Some(json!({"description": "builds"})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::DELETE,
            "/enzi/v0/accounts/{org}/teams/{team}",
            "",
            None,
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/teams/{team}/members",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::GET,
            "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
            "",
            None,
            "401 404 404 404 2xx 404 2xx",
        ),
        case(
            M::PUT,
            "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
            "",
            Some(json!({})),
            "401 404 404 404 403 404 2xx",
        ),
        case(
            M::DELETE,
            "/enzi/v0/accounts/{org}/teams/{team}/members/{member}",
            "",
            None,
            "401 404 404 404 403 404 2xx",
        ),
        // other/secret is admin-only, whatever one holds on acme/app.
        case(
            M::GET,
            "/repositories/other/secret",
            "",
            None,
            "401 404 404 404 404 404 2xx",
        ),
        case(
            M::GET,
            "/repositories/other/secret/pollMirroringPolicies",
            "",
            None,
            "401 404 404 404 404 404 2xx",
        ),
        case(
            M::DELETE,
            "/repositories/other/secret/userAccess/victim",
            "",
            None,
            "401 404 404 404 404 404 404",
        ),
        // Webhooks: a hook on `acme/app` is its administrators' (and the
        // server admin's); to anyone else it does not exist. Lists are
        // filtered, not refused.
        case(M::GET, "/webhooks", "", None, "401 2xx 2xx 2xx 2xx 2xx 2xx"),
        case(
            M::POST,
            "/webhooks",
            "",
            Some(webhook_form()),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::POST,
            "/webhooks/update",
            "",
            Some(json!({"id": "{id}", "inactive": false})),
            "401 404 404 404 404 2xx 2xx",
        ),
        case(
            M::POST,
            "/webhooks/test",
            "",
            Some(webhook_form()),
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/webhooks/{id}/deliveries",
            "",
            None,
            "401 404 404 404 404 2xx 2xx",
        ),
        case(
            M::DELETE,
            "/webhooks/{id}",
            "",
            None,
            "401 404 404 404 404 2xx 2xx",
        ),
        case(
            M::GET,
            "/repositories/{namespace}/{reponame}/webhooks",
            "",
            None,
            "401 404 403 403 403 2xx 2xx",
        ),
        case(
            M::GET,
            "/accounts/{namespace}/webhooks",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
    ]
}

/// The `/v2` expectations: reading needs any level, pushing and deleting
/// read-write; authenticated callers without access get 403 (missing
/// repositories too), anonymous ones 401.
fn v2_cases() -> Vec<Case> {
    use Method as M;
    let read = "401 403 2xx 2xx 2xx 2xx 2xx";
    let write = "401 403 403 2xx 2xx 2xx 2xx";
    let secret = "401 403 403 403 403 403 2xx";
    vec![
        case(M::GET, "/v2/", "", None, "401 2xx 2xx 2xx 2xx 2xx 2xx"),
        // The catalog challenges anonymous callers (as distribution with auth).
        case(
            M::GET,
            "/v2/_catalog",
            "",
            None,
            "401 2xx 2xx 2xx 2xx 2xx 2xx",
        ),
        case(M::GET, "/v2/acme/app/tags/list", "", None, read),
        case(M::GET, "/v2/acme/app/manifests/v1", "", None, read),
        case(M::HEAD, "/v2/acme/app/manifests/v1", "", None, read),
        case(M::GET, "/v2/acme/app/blobs/{blob}", "", None, read),
        case(M::HEAD, "/v2/acme/app/blobs/{blob}", "", None, read),
        case(M::POST, "/v2/acme/app/blobs/uploads/", "", None, write),
        case(M::PUT, "/v2/acme/app/manifests/v1", "", None, write),
        case(M::DELETE, "/v2/acme/app/manifests/del", "", None, write),
        case(M::GET, "/v2/other/secret/tags/list", "", None, secret),
        case(
            M::GET,
            "/v2/other/secret/manifests/v1",
            "",
            None,
            "401 403 403 403 403 403 404",
        ),
        case(M::POST, "/v2/other/secret/blobs/uploads/", "", None, secret),
    ]
}

/// A webhook on `acme/app` whose endpoint never answers (the discard
/// port: refused at once).
fn webhook_form() -> Value {
    json!({"type": "TAG_PUSH", "key": "acme/app", "endpoint": "http://127.0.0.1:9/matrix"})
}

/// `template` with its parameters filled from `world` (a tag `DELETE`
/// takes `del`, which `ensure_world` recreates).
fn fill(method: &Method, template: &str, world: &World) -> String {
    let reference = if method == Method::DELETE {
        "del"
    } else {
        "v1"
    };
    // UCP's `{name}` is the organization; DTR's the victim account.
    let template = if template.starts_with("/enzi/") {
        template.replace("{name}", "acme")
    } else {
        template.to_string()
    };
    let template = if template.starts_with("/proxyCaches") {
        template.replace("{namespace}", MATRIX_CACHE)
    } else {
        template
    };
    template
        .replace("{namespace}", "acme")
        .replace("{org}", "acme")
        .replace("{team}", "builders")
        .replace("{member}", "teammate")
        .replace("{reponame}", "app")
        .replace("{username}", "victim")
        .replace("{name}", "victim")
        .replace("{action}", "poll_mirror")
        .replace("{reference}", reference)
        .replace("{hashedtoken}", &world.token)
        .replace("{blob}", &world.blob)
        .replace(
            "{id}",
            if template.starts_with("/jobs") {
                &world.job
            } else if template.starts_with("/webhooks") {
                &world.webhook
            } else if template.contains("/pushMirroringPolicies/") {
                &world.push_policy
            } else {
                &world.policy
            },
        )
}

/// A push mirroring policy's form for the matrix: to `upstream`'s
/// `matrix/pushed`, keeping no tag (so nothing is ever pushed).
fn push_remote(upstream: &str) -> Value {
    json!({
        "remoteHost": upstream,
        "remoteRepository": "matrix/pushed",
        "rules": [{"field": "tag", "operator": "eq", "values": ["never-pushed"]}],
    })
}

/// Sends one case as `creds`: status and body text.
async fn send(
    server: &TestServer,
    case: &Case,
    creds: Creds<'_>,
    world: &World,
) -> (StatusCode, String) {
    let root = mirror_server::api::dtr::ROOT_ROUTES
        .iter()
        .any(|(t, _)| *t == case.template);
    let path = if case.template.starts_with("/v2") || root {
        fill(&case.method, case.template, world)
    } else {
        format!(
            "/api/v0{}{}",
            fill(&case.method, case.template, world),
            case.query
        )
    };
    let mut rb = server.request(case.method.clone(), &path, creds);
    if case.template.contains("/manifests/") {
        rb = rb.header("accept", MANIFEST_ACCEPT);
        if case.method == Method::PUT {
            rb = rb
                .header("content-type", &world.media_type)
                .body(world.manifest.clone());
        }
    }
    if let Some(body) = &case.body {
        let id = if case.template.starts_with("/webhooks") {
            &world.webhook
        } else {
            &world.policy
        };
        let text = body.to_string().replace("{id}", id);
        rb = rb.header("content-type", "application/json").body(text);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let challenge = resp.headers().contains_key("www-authenticate");
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned();
    // `/v2` challenges docker; `/api/v0` never makes a browser prompt.
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(
            challenge,
            path.starts_with("/v2/"),
            "{} {path}: 401 with a challenge: {challenge}",
            case.method
        );
    }
    (status, text)
}

fn matches(status: StatusCode, e: Exp) -> bool {
    match e {
        Exp::Ok => status.is_success(),
        Exp::Unauth => status == StatusCode::UNAUTHORIZED,
        Exp::Denied => status == StatusCode::FORBIDDEN,
        Exp::Hidden => status == StatusCode::NOT_FOUND,
    }
}

async fn admin_status(server: &TestServer, method: Method, path: &str) -> StatusCode {
    server
        .request(method, path, ADMIN)
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap()
        .status()
}

/// Creates (or restores) the fixtures a request may have deleted or
/// changed, and returns their current identities.
async fn ensure_world(server: &TestServer, upstream: &str, old: Option<&World>) -> World {
    let app = "/api/v0/repositories/acme/app";
    ensure_org(server).await;
    if admin_status(server, Method::GET, app).await == StatusCode::NOT_FOUND {
        server.create_repo("acme", "app", "private").await;
    }
    for (user, level) in [
        ("reader", "read-only"),
        ("writer", "read-write"),
        ("repoadmin", "admin"),
        ("victim", "read-only"),
    ] {
        server.grant("acme/app", user, level).await;
    }
    // What admin may have created.
    for made in [
        "/api/v0/repositories/acme/made-by-matrix",
        "/enzi/v0/accounts/made-org",
        "/enzi/v0/accounts/acme/teams/made-team",
        "/api/v0/proxyCaches/madecache",
    ] {
        admin_status(server, Method::DELETE, made).await;
    }
    // The proxy cache (an admin may have deleted it).
    if admin_status(
        server,
        Method::GET,
        &format!("/api/v0/proxyCaches/{MATRIX_CACHE}"),
    )
    .await
        == StatusCode::NOT_FOUND
    {
        let form = json!({"namespace": MATRIX_CACHE, "remoteHost": upstream});
        let (s, b) = server
            .call(Method::POST, "/api/v0/proxyCaches", ADMIN, Some(form))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    // The team's grants (a deleted repository took its own along).
    for (path, level) in [
        (
            "/api/v0/repositories/acme/app/teamAccess/builders",
            "read-write",
        ),
        (
            "/api/v0/repositoryNamespaces/acme/teamAccess/builders",
            "read-only",
        ),
    ] {
        let (s, b) = server
            .call(
                Method::PUT,
                path,
                ADMIN,
                Some(json!({"accessLevel": level})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }

    // The policy, and a (finished) job polling it, which mirrors `v1`.
    let (s, policies) = server
        .call(
            Method::GET,
            &format!("{app}/pollMirroringPolicies"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{policies}");
    let ids: Vec<String> = policies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let policy = match old.map(|w| w.policy.clone()) {
        Some(p) if ids.contains(&p) => p,
        _ => match ids.first() {
            Some(p) => p.clone(),
            None => {
                let (s, b) = server
                    .call(
                        Method::POST,
                        &format!("{app}/pollMirroringPolicies"),
                        ADMIN,
                        Some(json!({
                            "remoteHost": upstream,
                            "remoteRepository": "team/app",
                            "username": "mirror-bot",
                            "password": UPSTREAM_SECRET,
                        })),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
                b["id"].as_str().unwrap().to_string()
            }
        },
    };
    let (s, pushes) = server
        .call(
            Method::GET,
            &format!("{app}/pushMirroringPolicies"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pushes}");
    let push_ids: Vec<String> = pushes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let push_policy = match old.map(|w| w.push_policy.clone()) {
        Some(p) if push_ids.contains(&p) => p,
        _ => match push_ids.first() {
            Some(p) => p.clone(),
            None => {
                let (s, b) = server
                    .call(
                        Method::POST,
                        &format!("{app}/pushMirroringPolicies"),
                        ADMIN,
                        Some(push_remote(upstream)),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
                b["id"].as_str().unwrap().to_string()
            }
        },
    };
    let job = match old {
        Some(w)
            if w.policy == policy
                && admin_status(server, Method::GET, &format!("/api/v0/jobs/{}", w.job)).await
                    == StatusCode::OK =>
        {
            w.job.clone()
        }
        _ => {
            let (s, b) = server
                .call(
                    Method::POST,
                    "/api/v0/jobs",
                    ADMIN,
                    Some(json!({"action": "poll_mirror", "parameters": {"policyID": policy}})),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{b}");
            let id = b["id"].as_str().unwrap().to_string();
            server.wait_done(&id).await;
            id
        }
    };

    // The image: `v1` (mirrored) and `del` (the same manifest, to delete).
    let resp = server
        .request(Method::GET, "/v2/acme/app/manifests/v1", ADMIN)
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let media_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    let manifest = resp.bytes().await.unwrap().to_vec();
    let parsed: Value = serde_json::from_slice(&manifest).unwrap();
    let blob = parsed["config"]["digest"].as_str().unwrap().to_string();
    if admin_status(server, Method::HEAD, "/v2/acme/app/manifests/del").await != StatusCode::OK {
        let resp = server
            .request(Method::PUT, "/v2/acme/app/manifests/del", ADMIN)
            .header("content-type", &media_type)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
    }

    // The cron and victim's token.
    let (s, b) = server
        .call(
            Method::POST,
            "/api/v0/crons",
            ADMIN,
            Some(json!({"action": "poll_mirror", "schedule": CRON_SCHEDULE})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (s, tokens) = server
        .call(
            Method::GET,
            "/api/v0/api_tokens?username=victim",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    let hashes: Vec<String> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["hashedToken"].as_str().unwrap().to_string())
        .collect();
    let token = match old.map(|w| w.token.clone()) {
        Some(t) if hashes.contains(&t) => t,
        _ => match hashes.first() {
            Some(t) => t.clone(),
            None => {
                let (s, b) = server
                    .call(
                        Method::POST,
                        "/api/v0/api_tokens?username=victim",
                        ADMIN,
                        Some(json!({"tokenLabel": "victim-token"})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{b}");
                b["hashedToken"].as_str().unwrap().to_string()
            }
        },
    };
    // A webhook on `acme/app`, made by the server admin.
    let (s, hooks) = server
        .call(Method::GET, "/api/v0/webhooks", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{hooks}");
    let hook_ids: Vec<String> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    let webhook = match old.map(|w| w.webhook.clone()) {
        Some(h) if hook_ids.contains(&h) => h,
        _ => {
            let form = webhook_form();
            let (s, b) = server
                .call(Method::POST, "/api/v0/webhooks", ADMIN, Some(form))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            b["id"].as_str().unwrap().to_string()
        }
    };
    World {
        policy,
        push_policy,
        webhook,
        job,
        token,
        blob,
        manifest,
        media_type,
    }
}

/// The organization `acme` with its team `builders`, whose only member
/// is `teammate` (a plain member of `acme`), as a request may have
/// changed or deleted them.
async fn ensure_org(server: &TestServer) {
    let calls: [(Method, &str, Option<Value>); 4] = [
        (
            Method::POST,
            "/enzi/v0/accounts",
            Some(json!({"name": "acme", "isOrg": true})),
        ),
        (
            Method::POST,
            "/enzi/v0/accounts/acme/teams",
            Some(json!({"name": "builders"})),
        ),
        (
            Method::PUT,
            "/enzi/v0/accounts/acme/members/teammate",
            Some(json!({"isAdmin": false})),
        ),
        (
            Method::PUT,
            "/enzi/v0/accounts/acme/teams/builders/members/teammate",
            Some(json!({})),
        ),
    ];
    for (method, path, body) in calls {
        let (s, b) = server.call(method, path, ADMIN, body).await;
        // Created, or already there.
        assert!(
            s.is_success() || s == StatusCode::CONFLICT || s == StatusCode::BAD_REQUEST,
            "{path}: {s} {b}"
        );
    }
}

/// `namespace/name` of every repository `creds` is shown by the management
/// API and by the catalog.
async fn listings(server: &TestServer, creds: Creds<'_>) -> (Vec<String>, Vec<String>) {
    let (s, b) = server
        .call(
            Method::GET,
            "/api/v0/repositories?pageSize=1000",
            creds,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let mut api: Vec<String> = b["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    for ns in ["acme", "other"] {
        let (s, b) = server
            .call(
                Method::GET,
                &format!("/api/v0/repositories/{ns}"),
                creds,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for r in b["repositories"].as_array().unwrap() {
            let name = format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            );
            if !api.contains(&name) {
                api.push(name);
            }
        }
    }
    let (s, b) = server
        .call(Method::GET, "/v2/_catalog?n=1000", creds, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let catalog = b["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    (api, catalog)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let up = Registry::plain().await;
    up.pusher()
        .push_image("team/app", "v1", ImageSpec::small("matrix"))
        .await;
    let upstream = up.url();

    let server = TestServer::start().await;
    for (role, creds) in ROLES {
        if let Some((user, password)) = creds
            && role != "admin"
        {
            server.create_user(user, password).await;
        }
    }
    server.create_user("victim", VICTIM_PASSWORD).await;
    server.create_repo("other", "secret", "private").await;
    let mut world = ensure_world(&server, &upstream, None).await;

    let api = api_cases(&upstream);
    // Coverage: every documented method of every route has a row.
    let doc: Value = serde_json::from_str(mirror_server::api::dtr::openapi_json()).unwrap();
    let covered: BTreeSet<(String, &str)> = api
        .iter()
        .map(|c| (c.method.as_str().to_string(), c.template))
        .collect();
    let mut routes = 0;
    let tables = [
        mirror_server::api::dtr::ROUTES,
        mirror_server::api::dtr::ROOT_ROUTES,
    ];
    for (template, _) in tables.into_iter().flatten() {
        let methods = doc["paths"][*template]
            .as_object()
            .unwrap_or_else(|| panic!("{template} is not in openapi.json"));
        for method in methods.keys() {
            let method = method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                covered.contains(&(method.clone(), *template)),
                "{method} /api/v0{template} has no row in the authorization matrix"
            );
            routes += 1;
        }
    }
    assert!(routes >= 35, "only {routes} route methods found");

    let mut failures = Vec::new();
    let mut requests = 0;
    for case in api.iter().chain(v2_cases().iter()) {
        for ((role, creds), expect) in ROLES.iter().zip(case.expect) {
            let (status, body) = send(&server, case, *creds, &world).await;
            requests += 1;
            if !matches(status, expect) {
                failures.push(format!(
                    "{role}: {} {}{} → {status}, expected {expect:?}: {}",
                    case.method,
                    case.template,
                    case.query,
                    body.chars().take(200).collect::<String>()
                ));
            }
            assert!(
                !body.contains(UPSTREAM_SECRET),
                "{role}: {}: {body}",
                case.template
            );
            // A refusal never names the other private repository.
            if !status.is_success() {
                assert!(
                    !body.contains("other/secret") || case.template.contains("other"),
                    "{body}"
                );
            }
            if status.is_success() && !matches!(case.method, Method::GET | Method::HEAD) {
                world = ensure_world(&server, &upstream, Some(&world)).await;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} answers differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Listings: granted repositories only; other/secret never.
    for (role, creds) in &ROLES[1..] {
        let (api, catalog) = listings(&server, *creds).await;
        let granted = *role != "nobody";
        for list in [&api, &catalog] {
            assert_eq!(
                list.contains(&"acme/app".to_string()),
                granted,
                "{role}: {list:?}"
            );
            assert_eq!(
                list.contains(&"other/secret".to_string()),
                *role == "admin",
                "{role}: {list:?}"
            );
        }
    }
    let (s, b) = server.call(Method::GET, "/v2/_catalog", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "anonymous catalog: {b}");

    server.stop().await;
}
