//! The error kinds shared by every area, so that retries and the bindings'
//! mappings (HTTP status, Python exception class) key off a kind, not text.

/// What sort of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something named does not exist (repository, tag, blob, policy, job).
    NotFound,
    /// The remote refused the credentials (401) or the token fetch failed.
    Unauthorized,
    /// Authenticated but not allowed (403).
    Denied,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The host could not be reached.
    Unreachable,
    /// A temporary failure (5xx, 429, dropped connection) that outlived retries.
    Transient,
    /// Content did not match its digest or size.
    DigestMismatch,
    /// Input or remote content is malformed or unsupported.
    Invalid,
    /// The state does not allow the operation (e.g. already exists).
    Conflict,
    /// The operation was canceled.
    Canceled,
    /// A local storage or internal failure.
    Internal,
}
