//! One attempt at posting a delivery: the client (the remote-host guard
//! on the URL and on every resolved address, the hook's certificate or no
//! verification, no redirects, no proxy, a total time limit), the headers
//! (`X-Regmirror-Event`, `X-Regmirror-Delivery`, and
//! `X-Regmirror-Signature: sha256=<hex>` when the hook has a secret), and
//! what the answer means: 2xx delivered; 429, 5xx, connection errors and
//! timeouts retried; anything else (another 4xx, a redirect) failed at
//! once.

use std::time::Duration;

use mirror_core::remote::{GuardedResolver, RemoteGuard};
use reqwest::Url;
use sha2::{Digest as _, Sha256};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Regmirror-Signature";
/// The event type header.
pub const EVENT_HEADER: &str = "X-Regmirror-Event";
/// The delivery ID header.
pub const DELIVERY_HEADER: &str = "X-Regmirror-Delivery";

/// At most this much of a receiver's answer is read (for the log).
pub const BODY_CAP: usize = 64 * 1024;
/// At most this much of it is kept in the delivery's error.
const ERROR_CAP: usize = 512;

/// HMAC-SHA256 of `body` with `key` (RFC 2104), hex.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(body);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner);
    hex::encode(outer.finalize())
}

/// Where the hook's endpoint is and how to reach it.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The endpoint.
    pub endpoint: &'a str,
    /// PEM certificates to trust besides the system's.
    pub tls_cert: &'a str,
    /// Accept any certificate.
    pub skip_tls_verification: bool,
}

/// One delivery's content.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The delivery ID.
    pub id: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// The exact body.
    pub body: &'a str,
    /// The signing secret, if any.
    pub secret: Option<&'a str>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Delivered {
        /// The status.
        code: u16,
    },
    /// Worth trying again later (429, 5xx, no answer).
    Retry {
        /// The status, if the receiver answered.
        code: Option<u16>,
        /// Why.
        error: String,
    },
    /// Not worth trying again (another 4xx, a redirect, a refused host, a
    /// bad certificate setting).
    Fail {
        /// The status, if the receiver answered.
        code: Option<u16>,
        /// Why.
        error: String,
    },
}

impl Attempt {
    /// The receiver's status, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Attempt::Delivered { code } => Some(*code),
            Attempt::Retry { code, .. } | Attempt::Fail { code, .. } => *code,
        }
    }
}

/// Checks that `endpoint` is an `http(s)` URL `guard` lets through (the
/// literal host; names are checked again on their addresses when sent).
pub fn check_endpoint(endpoint: &str, guard: &RemoteGuard) -> Result<Url, String> {
    let url = Url::parse(endpoint).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    guard
        .check_url(&url)
        .map_err(|e| format!("refused by the remote-host guard: {e}"))?;
    Ok(url)
}

fn client(
    target: &Target<'_>,
    guard: &RemoteGuard,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would connect for us, past the resolved-address check.
        .no_proxy()
        .user_agent(concat!("regmirror-webhooks/", env!("CARGO_PKG_VERSION")));
    if !target.tls_cert.trim().is_empty() {
        let certs = reqwest::Certificate::from_pem_bundle(target.tls_cert.as_bytes())
            .map_err(|e| format!("tlsCert is not PEM: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    if target.skip_tls_verification {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if guard.is_active() {
        builder = builder.dns_resolver(GuardedResolver::new(guard.clone()));
    }
    builder
        .build()
        .map_err(|e| format!("cannot build a client: {e}"))
}

/// The error text of `e` with its causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn cap(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Posts `message` to `target` once, within `timeout`.
pub async fn attempt(
    target: &Target<'_>,
    message: &Message<'_>,
    guard: &RemoteGuard,
    timeout: Duration,
) -> Attempt {
    let fail = |error: String| Attempt::Fail { code: None, error };
    let url = match check_endpoint(target.endpoint, guard) {
        Ok(url) => url,
        Err(e) => return fail(e),
    };
    // A name the allow-list exempts only on other ports: the resolver sees
    // no port, so this checks it with the port before connecting.
    if let Err(e) = guard.check_url_resolved(&url).await {
        return fail(format!("refused by the remote-host guard: {e}"));
    }
    let client = match client(target, guard, timeout) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, message.event_type)
        .header(DELIVERY_HEADER, message.id)
        .body(message.body.to_string());
    if let Some(secret) = message.secret {
        let sig = hmac_sha256_hex(secret.as_bytes(), message.body.as_bytes());
        request = request.header(SIGNATURE_HEADER, format!("sha256={sig}"));
    }
    let sent = tokio::time::timeout(timeout, async {
        let mut resp = request.send().await?;
        let code = resp.status().as_u16();
        let mut answer = Vec::new();
        while answer.len() < BODY_CAP {
            match resp.chunk().await? {
                Some(chunk) => answer.extend_from_slice(&chunk),
                None => break,
            }
        }
        answer.truncate(BODY_CAP);
        Ok::<_, reqwest::Error>((code, answer))
    })
    .await;
    let (code, answer) = match sent {
        Err(_) => {
            return Attempt::Retry {
                code: None,
                error: format!("no answer within {timeout:?}"),
            };
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Attempt::Retry {
                code: None,
                error: format!("no answer within {timeout:?}"),
            };
        }
        Ok(Err(e)) => {
            return Attempt::Retry {
                code: None,
                error: cap(chain(&e), ERROR_CAP),
            };
        }
        Ok(Ok(answered)) => answered,
    };
    let said = cap(String::from_utf8_lossy(&answer).into_owned(), ERROR_CAP);
    match code {
        200..=299 => Attempt::Delivered { code },
        429 | 500..=599 => Attempt::Retry {
            code: Some(code),
            error: format!("HTTP {code}: {said}"),
        },
        300..=399 => Attempt::Fail {
            code: Some(code),
            error: format!("HTTP {code}: redirects are not followed"),
        },
        _ => Attempt::Fail {
            code: Some(code),
            error: format!("HTTP {code}: {said}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test cases 1 and 2, and a key longer than a block (6).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn endpoints_must_be_plain_http_urls_the_guard_allows() {
        let open = RemoteGuard::default();
        assert!(check_endpoint("https://hooks.example.com/x", &open).is_ok());
        assert!(check_endpoint("ftp://hooks.example.com/x", &open).is_err());
        assert!(check_endpoint("not a url", &open).is_err());
        assert!(check_endpoint("https://u:p@hooks.example.com/", &open).is_err());
        let strict = RemoteGuard::new(Vec::<String>::new(), true).unwrap();
        assert!(check_endpoint("http://127.0.0.1:9/x", &strict).is_err());
        assert!(check_endpoint("http://169.254.169.254/latest", &strict).is_err());
    }
}
