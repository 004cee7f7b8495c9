//! Access to remote registries: the [`RemoteRegistry`] trait and its HTTP
//! implementation.
//!
//! A `RemoteRegistry` is bound to one endpoint (host + credentials + TLS
//! settings); a [`RemoteConnector`] makes one from a policy's
//! [`RemoteEndpoint`]. Retries, authentication and Docker Hub's quirks live
//! here, so the copy code only sees tags, manifests and byte streams.

pub(crate) mod auth;
mod guard;
mod http;
mod retry;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::digest::Digest;
use crate::error::ErrorKind;
use crate::policy::RemoteEndpoint;
use crate::reference::RepositoryName;
use crate::store::ByteStream;

pub use guard::{
    GuardedResolver, HostPattern, HostRefused, InvalidHostPattern, RemoteGuard, special_address,
};
pub use http::{HttpConnector, HttpRemote, HttpSettings, RemoteLimits};
pub use retry::RetryPolicy;

/// Errors from a remote registry.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// TLS handshake or certificate verification failed.
    #[error("TLS error talking to {host}: {reason}")]
    Tls {
        /// The registry host.
        host: String,
        /// What the TLS layer said.
        reason: String,
    },
    /// Could not connect.
    #[error("cannot reach {host}: {reason}")]
    Unreachable {
        /// The registry host.
        host: String,
        /// Why.
        reason: String,
    },
    /// 401: the credentials were refused or missing.
    #[error("authentication failed for {repository} on {host}: {reason}")]
    Unauthorized {
        /// The registry host.
        host: String,
        /// The repository being accessed.
        repository: String,
        /// What the registry or token server said.
        reason: String,
    },
    /// 403: authenticated but not allowed.
    #[error("access to {repository} on {host} denied: {reason}")]
    Denied {
        /// The registry host.
        host: String,
        /// The repository being accessed.
        repository: String,
        /// What the registry said.
        reason: String,
    },
    /// 404.
    #[error("{what} not found on {host}")]
    NotFound {
        /// The registry host.
        host: String,
        /// What was missing, e.g. `repository acme/app`, `manifest acme/app:v1`.
        what: String,
    },
    /// 429 or 5xx still failing after every retry.
    #[error("{url} kept failing with HTTP {status}{detail} after {attempts} attempts{}", retry_after.map(|d| format!(" (last Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    Unavailable {
        /// The request URL (no credentials).
        url: String,
        /// The last status.
        status: u16,
        /// The registry's first error of the last answer, as `: CODE
        /// message` (e.g. `: TOOMANYREQUESTS You have reached your pull rate
        /// limit`), or empty.
        detail: String,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A connection failed or dropped mid-response.
    #[error("transfer from {url} failed: {reason}")]
    Transfer {
        /// The request URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The remote answered something that is not valid for the request.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Content did not hash to the digest it was requested or announced by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest asked for or announced.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The manifest is larger than the limit.
    #[error("manifest {what} is {size} bytes, over the 4 MiB limit")]
    ManifestTooLarge {
        /// Which manifest.
        what: String,
        /// Its announced or received size.
        size: u64,
    },
    /// The remote's answer went past one of this server's limits (a body
    /// too large, too many tags, a transfer too slow, a request too long):
    /// a hostile or broken remote. Not retried.
    #[error("{what}: {limit} (setting {setting})")]
    LimitExceeded {
        /// What was being read.
        what: String,
        /// The limit, in words.
        limit: String,
        /// The setting that raises it.
        setting: &'static str,
    },
    /// Not sent, to spare the registry's pull budget (see
    /// `RemoteLimits::min_pulls_left_percent`); a later poll tries again.
    #[error("{what}: {reason} (setting {setting})")]
    Deferred {
        /// What was to be fetched.
        what: String,
        /// Why, with the numbers.
        reason: String,
        /// The setting that decides.
        setting: &'static str,
    },
    /// This server's [`RemoteGuard`] refuses the host: it is not in the
    /// allow-list, or it is (or resolves to, or redirects to) a private
    /// address. Nothing was sent to it.
    #[error("remote host {host} refused: {reason}")]
    HostRefused {
        /// The host (and port) as requested.
        host: String,
        /// Why, naming the setting.
        reason: String,
    },
    /// The endpoint's settings are unusable (e.g. an unparsable CA).
    #[error("invalid remote settings: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
}

impl RemoteError {
    /// The kind of failure, for retries and error mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RemoteError::Tls { .. } => ErrorKind::Tls,
            RemoteError::Unreachable { .. } => ErrorKind::Unreachable,
            RemoteError::Unauthorized { .. } => ErrorKind::Unauthorized,
            RemoteError::Denied { .. } => ErrorKind::Denied,
            RemoteError::NotFound { .. } => ErrorKind::NotFound,
            RemoteError::Unavailable { .. }
            | RemoteError::Transfer { .. }
            | RemoteError::Deferred { .. } => ErrorKind::Transient,
            RemoteError::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            RemoteError::Protocol { .. }
            | RemoteError::ManifestTooLarge { .. }
            | RemoteError::LimitExceeded { .. }
            | RemoteError::HostRefused { .. }
            | RemoteError::Config { .. } => ErrorKind::Invalid,
        }
    }
}

/// What a HEAD on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when the registry sent it.
    pub digest: Option<Digest>,
    /// `Content-Type`.
    pub media_type: Option<String>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

/// A fetched manifest, verified against its digest.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    /// The bytes exactly as served.
    pub bytes: Bytes,
    /// The served `Content-Type`.
    pub content_type: Option<String>,
    /// The SHA-256 of `bytes`.
    pub digest: Digest,
}

/// A blob response body.
pub struct BlobBody {
    /// The offset the body starts at (the requested one if the remote
    /// honoured the `Range`, else 0).
    pub offset: u64,
    /// The blob's total size, when the remote said.
    pub total: Option<u64>,
    /// The bytes from `offset`.
    pub stream: ByteStream<RemoteError>,
}

/// Read (and write) permission on a remote repository.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Permissions {
    /// Tags and manifests can be read.
    pub read: bool,
    /// Blobs can be pushed.
    pub write: bool,
}

/// One remote registry endpoint with its credentials.
#[async_trait]
pub trait RemoteRegistry: Send + Sync {
    /// Every tag of `repo`, following pagination.
    async fn list_tags(&self, repo: &RepositoryName) -> Result<Vec<String>, RemoteError>;

    /// HEAD on a manifest by tag or digest.
    async fn head_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<ManifestHead, RemoteError>;

    /// GET a manifest by tag or digest; by digest, the bytes are verified.
    async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
    ) -> Result<RemoteManifest, RemoteError>;

    /// GET a blob from `offset` (a `Range` request when `offset > 0`).
    async fn get_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobBody, RemoteError>;

    /// The manifests that refer to `digest` (OCI 1.1 referrers API), as
    /// the descriptors of the remote's referrers list; `None` when the
    /// remote has no referrers API (it answers 404 there).
    async fn referrers(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Vec<crate::manifest::Descriptor>>, RemoteError>;

    /// Every tag of `repo` with its digest, read in bulk from the remote's
    /// tag API (DTR's and regmirror's `/api/v0/.../tags`, Docker Hub's
    /// `hub.docker.com/v2/.../tags`) instead of one `HEAD` per tag; `None`
    /// when the remote has no such API (or answers it with something
    /// else). A hint, not a proof: a poll confirms with a `HEAD` every tag
    /// it is about to copy. By default `None`.
    async fn tag_digests(&self, repo: &RepositoryName) -> Result<Option<BulkDigests>, RemoteError> {
        let _ = repo;
        Ok(None)
    }

    /// Whether the credentials can read and write `repo`. Fails with the
    /// reason when the registry cannot be reached or the repository read.
    async fn check_access(&self, repo: &RepositoryName) -> Result<Permissions, RemoteError>;
}

/// Tag digests read in bulk ([`RemoteRegistry::tag_digests`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkDigests {
    /// Each tag the API listed with a valid digest.
    pub digests: std::collections::HashMap<String, Digest>,
    /// Requests (pages) it took.
    pub requests: usize,
    /// Tags the API listed, with a digest or not.
    pub listed: usize,
    /// Which API answered, for the log: `DTR`, `Docker Hub`.
    pub api: &'static str,
}

/// What pushing one blob took ([`RemoteWriter::push_blob`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobUpload {
    /// Bytes sent (the blob's size, unless a retry sent some twice).
    pub bytes_sent: u64,
    /// `PATCH` requests made (0 for a monolithic upload).
    pub chunks: u32,
    /// The remote refused chunks, so the blob went in one `PUT`.
    pub monolithic: bool,
}

/// Writing to one remote registry endpoint (push mirroring): the OCI
/// distribution push API. Each call follows the same retry rules as
/// reads (429 and 5xx with backoff and `Retry-After`) and checks every
/// URL it requests, upload `Location`s included, with the remote guard.
#[async_trait]
pub trait RemoteWriter: Send + Sync {
    /// Whether the credentials may push to `repo` (which need not exist
    /// yet): an upload is opened and canceled at once. Fails with the
    /// remote's reason (refused credentials, no push permission).
    async fn check_push(&self, repo: &RepositoryName) -> Result<(), RemoteError>;

    /// Whether `repo` on the remote has the blob (`HEAD`).
    async fn blob_exists(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, RemoteError>;

    /// Asks the remote to link the blob from its repository `from` into
    /// `repo` without sending it (`POST …/uploads/?mount=&from=`); `false`
    /// when it would not (then nothing was changed).
    async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: &RepositoryName,
    ) -> Result<bool, RemoteError>;

    /// Uploads the blob `digest` of `size` bytes, streamed from `source`:
    /// `POST`, then `PATCH`es of at most the chunk size with
    /// `Content-Range`, then `PUT ?digest=`; one streamed `PUT` when the
    /// remote refuses chunks. Memory: one chunk.
    async fn push_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        source: &dyn crate::store::BlobStore,
    ) -> Result<BlobUpload, RemoteError>;

    /// `PUT`s a manifest under `reference` (a tag or its digest) and
    /// returns the digest the remote answered with, which must equal the
    /// SHA-256 of `bytes` (else [`RemoteError::DigestMismatch`]).
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, RemoteError>;
}

/// Makes a [`RemoteRegistry`] for an endpoint.
pub trait RemoteConnector: Send + Sync + 'static {
    /// Builds (or reuses) a client for `endpoint`.
    fn connect(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<std::sync::Arc<dyn RemoteRegistry>, RemoteError>;

    /// A client for a check someone waits for (the Connect button, saving
    /// a policy): no retries, short time limits, so an error that retrying
    /// cannot fix (refused, DNS, TLS, 401/403/404) answers at once and any
    /// other within seconds. By default the same as [`RemoteConnector::connect`].
    fn connect_interactive(
        &self,
        endpoint: &RemoteEndpoint,
    ) -> Result<std::sync::Arc<dyn RemoteRegistry>, RemoteError> {
        self.connect(endpoint)
    }

    /// A client that pushes to `endpoint` (push mirroring); `interactive`:
    /// for a check someone waits for, as [`RemoteConnector::connect_interactive`].
    /// By default none: a connector that only reads refuses.
    fn connect_writer(
        &self,
        endpoint: &RemoteEndpoint,
        interactive: bool,
    ) -> Result<std::sync::Arc<dyn RemoteWriter>, RemoteError> {
        let _ = interactive;
        Err(RemoteError::Config {
            reason: format!("this engine cannot push to {}", endpoint.host),
        })
    }
}
