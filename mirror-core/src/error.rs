//! The error kinds shared by every area, so that retries and the bindings'
//! mappings (HTTP status, Python exception class) key off a kind, not text.

/// What sort of failure an error is. Crosses the wire (the server's error
/// JSON, a failed job's `error`) as its stable [`ErrorKind::code`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::Unauthorized,
        ErrorKind::Denied,
        ErrorKind::Tls,
        ErrorKind::Unreachable,
        ErrorKind::Transient,
        ErrorKind::DigestMismatch,
        ErrorKind::Invalid,
        ErrorKind::Conflict,
        ErrorKind::Canceled,
        ErrorKind::Internal,
    ];

    /// The stable wire code (`not_found`, `digest_mismatch`, ...): what
    /// clients match on, never the Rust name.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Denied => "denied",
            ErrorKind::Tls => "tls",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Transient => "transient",
            ErrorKind::DigestMismatch => "digest_mismatch",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind with this wire code.
    pub fn from_code(code: &str) -> Option<Self> {
        ErrorKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An error and its sources on one line, each said once (a client's top
/// message is often vague: the cause is in its sources).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn codes_are_stable_and_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.code()));
        }
        assert_eq!(ErrorKind::DigestMismatch.code(), "digest_mismatch");
        assert_eq!(ErrorKind::from_code("DigestMismatch"), None);
    }
}
