//! The one place where failures become HTTP responses.
//!
//! Two shapes, one per API, both `{"errors": [{"code", "message", "detail"}]}`:
//!
//! - [`ApiError`]: the DTR management API (`/api/v0`), with DTR's codes
//!   (`NO_SUCH_REPOSITORY`, `INVALID_JSON`, `NOT_AUTHENTICATED`, ...).
//! - [`RegistryError`]: the OCI distribution API (`/v2`), with the spec's
//!   codes (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `UNAUTHORIZED`, ...).
//!
//! Errors from mirror-core are mapped here from [`MirrorError::kind`] and
//! the specific variants; handlers never pick status codes for them. A
//! failure that is the server's fault is logged here and answered with a
//! generic 500, so internals never reach a client. Field errors carry
//! `detail: {"field": ..., "reason": ...}` so clients can tell which input
//! was wrong.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mirror_core::api::ErrorBody;
use mirror_core::manifest::{MAX_MANIFEST_SIZE, ManifestError};
use mirror_core::store::StoreError;
use mirror_core::write::WriteError;
use mirror_core::{ErrorKind, MirrorError, RemoteError};
use serde_json::{Value, json};

use crate::accounts::AccountError;
use crate::auth::AuthFailure;
use crate::orgs::OrgError;
use crate::scheduler::CronError;
use crate::store::DbError;
use crate::uploads::TooManyUploads;
use std::time::Duration;

/// `Retry-After` of a request refused because every password-check permit
/// stayed taken.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// The `Docker-Distribution-API-Version` header every `/v2` response carries.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// The error envelope of both APIs (`mirror_core::api::ErrorBody`): its
/// `detail.kind` is the stable kind clients key off.
fn body(status: StatusCode, code: &str, message: &str, detail: &Value) -> ErrorBody {
    ErrorBody::new(code, message, detail.clone(), status.as_u16())
}

fn log_internal(err: &dyn std::error::Error) {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!("internal error: {text}");
}

// ---------------------------------------------------------------- DTR ----

/// An error of the DTR management API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Value,
    /// `Retry-After` seconds (a 429).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with an empty detail.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: json!({}),
            retry_after: None,
        }
    }

    /// A 400 about one input field.
    pub fn field(code: &'static str, field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: format!("{field}: {reason}"),
            detail: json!({"field": field, "reason": reason}),
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The detail (`{"field", "reason"}` for a field error).
    pub fn detail(&self) -> &Value {
        &self.detail
    }

    /// A body that is not valid JSON or does not fit the form; `path` is
    /// the offending field (`.` when it is the whole body).
    pub fn invalid_json(path: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let field = if path.is_empty() || path == "." {
            "body"
        } else {
            path
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_JSON",
            message: format!("invalid JSON body: {field}: {reason}"),
            detail: json!({"field": field, "reason": reason}),
            retry_after: None,
        }
    }

    /// A body that could not be read at all (too large, connection error).
    pub fn unreadable_body(status: StatusCode, reason: impl Into<String>) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "REQUEST_TOO_LARGE", reason)
        } else {
            ApiError::invalid_json("body", reason)
        }
    }

    /// A query parameter that cannot be parsed.
    pub fn invalid_parameter(field: &str, reason: impl Into<String>) -> Self {
        ApiError::field("INVALID_PARAMETER", field, reason)
    }

    /// 429 with `Retry-After` (at least a second).
    pub fn too_many_requests(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message);
        e.retry_after = Some(retry_after.as_secs().max(1));
        e
    }

    /// 415 for a request body that is not declared `application/json`.
    pub fn unsupported_media_type(got: &str) -> Self {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: format!(
                "request bodies must be sent with Content-Type: application/json, not {got:?}"
            ),
            detail: json!({"field": "Content-Type", "reason": "must be application/json"}),
            retry_after: None,
        }
    }

    /// 403 for a request a browser sent on behalf of another site.
    pub fn foreign_origin(origin: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "FOREIGN_ORIGIN",
            format!("requests from another site ({origin}) may not change anything here"),
        )
    }

    /// 401 without (valid) credentials.
    pub fn not_authenticated(reason: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "NOT_AUTHENTICATED", reason)
    }

    /// 403 for an authenticated caller lacking the right.
    pub fn not_authorized(needed: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "NOT_AUTHORIZED", needed)
    }

    /// 404 for an unknown (or invisible) repository.
    pub fn no_such_repository(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_REPOSITORY",
            format!("repository {name} does not exist"),
        )
    }

    /// 404 for a tag or digest `repository` does not have (or not for the
    /// platform asked).
    pub fn no_such_ref(repository: &str, reference: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_REF",
            format!(
                "{repository} has no tag or digest {:?} (for the platform asked, if any)",
                reference.chars().take(200).collect::<String>()
            ),
        )
    }

    /// 404 for a tag the repository does not have (DTR's `NO_SUCH_TAG`).
    pub fn no_such_tag(repository: &str, tag: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_TAG",
            format!(
                "{repository} has no tag {:?}",
                tag.chars().take(200).collect::<String>()
            ),
        )
    }

    /// 404 for an unknown poll mirroring policy.
    pub fn no_such_policy(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_POLL_MIRRORING_POLICY",
            format!("poll mirroring policy {id} does not exist, or not where you may see it"),
        )
    }

    /// 404 for an unknown job.
    pub fn no_such_job(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_JOB",
            format!("job {id} does not exist"),
        )
    }

    /// 404 for an unknown cron.
    pub fn no_such_cron(action: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_CRON",
            format!("no cron for action {action:?}"),
        )
    }

    /// 404 for an unknown account.
    pub fn no_such_account(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_ACCOUNT",
            format!("no account named {name:?}"),
        )
    }

    /// 404 for a namespace a user may not create repositories in: none of
    /// their own, whether an account has that name or not (so user names
    /// cannot be probed); `own` is the caller's namespace.
    pub fn no_such_namespace(namespace: &str, own: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_ACCOUNT",
            format!(
                "no account named {namespace:?} that you can create repositories in; yours is {own:?} (only administrators create repositories in other namespaces)"
            ),
        )
    }

    /// 404 for an unknown access token.
    pub fn no_such_token() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_SUCH_API_TOKEN",
            "no such access token",
        )
    }

    /// 500; `err` is logged, never sent.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        log_internal(err);
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal server error; see the server log",
        )
    }

    /// 400 when a remote registry answers but the credentials cannot read
    /// the repository.
    pub fn remote_cannot_read(repository: &str, host: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "REMOTE_REGISTRY_INVALID_PERMISSIONS",
            format!("the credentials cannot read {repository} on {host}"),
        )
    }

    /// 400 for a repository that already exists (DTR's status for it;
    /// scripts that copy repositories treat 400 as "exists").
    pub fn repository_exists(name: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "REPOSITORY_EXISTS",
            format!("repository {name} already exists"),
        )
    }

    /// `err`, but `alt()` when its kind is `kind`: lets a handler name the
    /// specific DTR code for its resource (`NO_SUCH_JOB`,
    /// `REPOSITORY_EXISTS`, ...) while every other failure maps as usual.
    pub fn mirror_or(err: MirrorError, kind: ErrorKind, alt: impl FnOnce() -> ApiError) -> Self {
        if err.kind() == kind {
            alt()
        } else {
            err.into()
        }
    }
}

impl From<MirrorError> for ApiError {
    fn from(err: MirrorError) -> Self {
        match err {
            MirrorError::InvalidPolicy(e) => {
                ApiError::field("INVALID_POLL_MIRRORING_POLICY", &e.field, e.reason)
            }
            MirrorError::InvalidName(e) => {
                let field = if e.what == "tag" { "tag" } else { "name" };
                ApiError::field("INVALID_REPOSITORY_NAME", field, e.to_string())
            }
            MirrorError::InvalidJob { field, reason } => {
                ApiError::field("INVALID_JOB", field, reason)
            }
            // The operator's guard refused the host: the input's fault.
            MirrorError::Remote(RemoteError::HostRefused { reason, .. }) => {
                ApiError::field("INVALID_POLL_MIRRORING_POLICY", "remoteHost", reason)
            }
            // Every remote failure the API can meet comes from a connection
            // check (policy create/update, "Connect"): DTR answers all of
            // them with this code, and the message says why.
            MirrorError::Remote(e) => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "REMOTE_REGISTRY_INVALID_PERMISSIONS",
                message: e.to_string(),
                detail: json!({"reason": e.to_string(), "kind": e.kind().code()}),
                retry_after: None,
            },
            other => match other.kind() {
                ErrorKind::NotFound => {
                    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", other.to_string())
                }
                ErrorKind::Conflict => {
                    ApiError::new(StatusCode::CONFLICT, "CONFLICT", other.to_string())
                }
                _ => ApiError::internal(&other),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        MirrorError::Store(err).into()
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Invalid { field, reason } => {
                ApiError::field("INVALID_ACCOUNT", field, reason)
            }
            AccountError::Exists { name } => ApiError::new(
                StatusCode::CONFLICT,
                "ACCOUNT_EXISTS",
                format!("account {name:?} already exists"),
            ),
            AccountError::NoSuchAccount { name } => ApiError::no_such_account(&name),
            e @ AccountError::TooManyFailures { retry_after } => {
                ApiError::too_many_requests(e.to_string(), retry_after)
            }
            e @ AccountError::Busy => ApiError::too_many_requests(e.to_string(), BUSY_RETRY),
            e @ AccountError::RevokedByAdmin => ApiError::not_authorized(e.to_string()),
            e @ (AccountError::Hash(_) | AccountError::Db(_)) => ApiError::internal(&e),
        }
    }
}

impl From<OrgError> for ApiError {
    fn from(err: OrgError) -> Self {
        match err {
            OrgError::Invalid { field, reason } => ApiError::field("INVALID_JSON", field, reason),
            OrgError::Exists(name) => AccountError::Exists { name }.into(),
            OrgError::NoSuchOrg(name) | OrgError::NoSuchAccount(name) => {
                ApiError::no_such_account(&name)
            }
            e @ OrgError::NoSuchTeam { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NO_SUCH_TEAM", e.to_string())
            }
            OrgError::NotAuthorized(why) => ApiError::not_authorized(why),
            OrgError::Account(e) => e.into(),
            e @ OrgError::Db(_) => ApiError::internal(&e),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        ApiError::internal(&err)
    }
}

impl From<CronError> for ApiError {
    fn from(err: CronError) -> Self {
        match err {
            CronError::Invalid { field, reason } => ApiError::field("INVALID_CRON", field, reason),
            CronError::Job(e) => e.into(),
            CronError::Db(e) => e.into(),
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(err: AuthFailure) -> Self {
        match err {
            AuthFailure::Store(e) => e.into(),
            e => ApiError::not_authenticated(e.to_string()),
        }
    }
}

/// No `WWW-Authenticate` on a 401: a challenge makes browsers prompt for
/// credentials and then attach them to any request, also one another site
/// makes them send. API clients send credentials without being asked.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(body(self.status, self.code, &self.message, &self.detail)),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

// ---------------------------------------------------------------- OCI ----

/// An error of the OCI registry API.
#[derive(Debug)]
pub struct RegistryError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Value,
    /// Extra response headers (`Content-Range` of a 416 blob read; the
    /// upload's `Location` and `Range` of a 416 upload chunk).
    headers: Vec<(HeaderName, String)>,
}

impl RegistryError {
    fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        detail: Value,
    ) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
            detail,
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 401; the `/v2` router adds the challenge.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        RegistryError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
            json!({"reason": reason}),
        )
    }

    /// 403: authenticated, but no access.
    pub fn denied(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        RegistryError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "requested access to the resource is denied",
            json!({"reason": reason}),
        )
    }

    /// 503: a proxy cache's upstream failed and nothing cached stands in
    /// (a client may retry).
    pub fn upstream_unavailable(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        RegistryError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            reason.clone(),
            json!({"reason": reason}),
        )
    }

    /// 404: the repository does not exist.
    pub fn name_unknown(name: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            json!({"name": name}),
        )
    }

    /// 400: the repository name breaks the grammar.
    pub fn name_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
            json!({"reason": reason.into()}),
        )
    }

    /// 404: no such manifest (tag or digest) in the repository.
    pub fn manifest_unknown(reference: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
            json!({"reference": reference}),
        )
    }

    /// 404: a manifest by digest the repository does not hold, in a
    /// repository whose policies copy only some platforms of an index (so
    /// a client asking for another platform's child is told why).
    pub fn platform_not_mirrored(reference: &str, platforms: &[String]) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!(
                "manifest unknown: this repository mirrors only platforms {} of its images; other platforms are not held here",
                platforms.join(", ")
            ),
            json!({"reference": reference, "platforms": platforms}),
        )
    }

    /// 404: the repository does not hold this blob.
    pub fn blob_unknown(digest: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!({"digest": digest}),
        )
    }

    /// 400: a malformed digest.
    pub fn digest_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            json!({"reason": reason.into()}),
        )
    }

    /// 400: a malformed tag in a manifest reference.
    pub fn tag_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            "invalid tag",
            json!({"reason": reason.into()}),
        )
    }

    /// 400: `n` is not a non-negative integer.
    pub fn pagination_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
            "invalid number of results requested",
            json!({"reason": reason.into()}),
        )
    }

    /// 405: an operation this server does not implement.
    pub fn unsupported(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
            json!({"reason": reason.into()}),
        )
    }

    /// 404 for paths outside the API.
    pub fn not_found(path: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such registry endpoint",
            json!({"path": path}),
        )
    }

    /// 416 for a `Range` outside the blob.
    pub fn range_not_satisfiable(size: u64) -> Self {
        let e = RegistryError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_INVALID",
            "requested range not satisfiable",
            json!({"size": size}),
        );
        e.with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
    }

    /// 404: no upload session with this ID in this repository (finished,
    /// canceled, expired, or lost in a restart).
    pub fn blob_upload_unknown(id: &str) -> Self {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
            json!({"uuid": id}),
        )
    }

    /// 400: the upload cannot go on (its body broke off, bad parameters).
    pub fn blob_upload_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
            json!({"reason": reason.into()}),
        )
    }

    /// 416: a chunk that does not start where the upload stands. The
    /// caller adds `Location` and `Range` so the client can resume.
    pub fn chunk_out_of_order(expected: u64, got: u64) -> Self {
        RegistryError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
            json!({"reason": format!("the chunk starts at byte {got}; the upload has {expected} bytes, so the next chunk must start at {expected}")}),
        )
    }

    /// 400: a pushed manifest is malformed or of an unsupported type.
    pub fn manifest_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
            json!({"reason": reason.into()}),
        )
    }

    /// 413: a pushed manifest over the size limit.
    pub fn manifest_too_large(limit: u64) -> Self {
        RegistryError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            "manifest invalid",
            json!({"reason": format!("manifests may be at most {limit} bytes")}),
        )
    }

    /// 400: a pushed manifest references a blob or manifest the repository
    /// does not hold.
    pub fn manifest_blob_unknown(digest: &str) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "manifest references a manifest or blob unknown to registry",
            json!({"digest": digest}),
        )
    }

    /// 400: the uploaded length is not the announced one.
    pub fn size_invalid(reason: impl Into<String>) -> Self {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            "provided length did not match content length",
            json!({"reason": reason.into()}),
        )
    }

    /// 500; `err` is logged, never sent.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        log_internal(err);
        RegistryError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error",
            json!({}),
        )
    }
}

impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            // A blob commit that checked what the client sent.
            StoreError::DigestMismatch { expected, actual } => RegistryError::digest_invalid(
                format!("the content has digest {actual}, not {expected}; nothing was stored"),
            ),
            StoreError::SizeMismatch {
                expected, actual, ..
            } => RegistryError::size_invalid(format!(
                "{actual} bytes were uploaded, not {expected}; nothing was stored"
            )),
            other => RegistryError::internal(&other),
        }
    }
}

impl From<WriteError> for RegistryError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::InvalidReference {
                digest: true,
                reason,
            } => RegistryError::digest_invalid(reason),
            WriteError::InvalidReference { reason, .. } => RegistryError::tag_invalid(reason),
            WriteError::Manifest(ManifestError::TooLarge { .. }) => {
                RegistryError::manifest_too_large(MAX_MANIFEST_SIZE)
            }
            WriteError::Manifest(other) => RegistryError::manifest_invalid(other.to_string()),
            e @ WriteError::DigestMismatch { .. } => RegistryError::digest_invalid(e.to_string()),
            WriteError::MissingReference { digest } => {
                RegistryError::manifest_blob_unknown(&digest.to_string())
            }
            WriteError::NoSuchRepository { repository } => {
                RegistryError::name_unknown(repository.as_str())
            }
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<TooManyUploads> for RegistryError {
    fn from(err: TooManyUploads) -> Self {
        RegistryError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many requests",
            json!({"reason": err.to_string()}),
        )
    }
}

impl From<AccountError> for RegistryError {
    fn from(err: AccountError) -> Self {
        let retry_after = match &err {
            AccountError::TooManyFailures { retry_after } => *retry_after,
            AccountError::Busy => BUSY_RETRY,
            _ => return RegistryError::internal(&err),
        };
        RegistryError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many requests",
            json!({"reason": err.to_string()}),
        )
        .with_header(
            header::RETRY_AFTER,
            retry_after.as_secs().max(1).to_string(),
        )
    }
}

impl From<AuthFailure> for RegistryError {
    fn from(err: AuthFailure) -> Self {
        match err {
            AuthFailure::Store(e) => e.into(),
            e => RegistryError::unauthorized(e.to_string()),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(body(self.status, self.code, &self.message, &self.detail)),
        )
            .into_response();
        let h = resp.headers_mut();
        // A 401's challenge is added by the `/v2` router, which knows the
        // origin the client used (`api::v2::challenge`).
        h.insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
