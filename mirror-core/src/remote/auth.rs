//! Registry authentication: `WWW-Authenticate` challenges, Basic
//! credentials, and the Docker token flow with a per-scope token cache.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::secret::Secret;

/// The credentials of one endpoint.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// No credentials.
    Anonymous,
    /// A user name and a password or access token.
    Basic { username: String, password: Secret },
    /// A ready bearer token, sent as is.
    Token(Secret),
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            )),
            _ => None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm=...`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `key="value", key=value` pairs; quoted values may contain commas
/// (scopes like `repository:a:pull,push`).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) token: Secret,
    pub(crate) expires: Instant,
}

/// Tokens by scope, plus what the registry told us about how it authenticates.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// The challenge from the last 401: lets later requests authenticate
    /// up front instead of taking a 401 each.
    pub(crate) challenge: Option<Challenge>,
    pub(crate) tokens: HashMap<String, CachedToken>,
    /// One lock per scope, held while a token for it is fetched, so that
    /// requests answered 401 together (a token expiring under 16 HEADs in
    /// flight) make one token request, not one each.
    pub(crate) fetching: HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl AuthState {
    /// The lock that serializes token fetches for `scope`.
    pub(crate) fn fetch_lock(&mut self, scope: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.fetching.entry(scope.to_string()).or_default().clone()
    }

    /// A cached, unexpired token for `scope`.
    pub(crate) fn token(&self, scope: &str) -> Option<Secret> {
        self.tokens
            .get(scope)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.token.clone())
    }
}

/// The token server's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) token: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long to use it: `expires_in` (default 60 s, the
    /// spec's minimum) less a margin so it does not expire in flight.
    pub(crate) fn into_cached(self) -> Option<CachedToken> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let ttl = self.expires_in.unwrap_or(60).max(1);
        let margin = (ttl / 10).clamp(1, 30);
        Some(CachedToken {
            token: Secret::new(token),
            expires: Instant::now() + Duration::from_secs(ttl.saturating_sub(margin).max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }
}
