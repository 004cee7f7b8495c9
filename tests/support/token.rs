//! In-process Docker token server (the `auth.token.realm` of a registry).
//!
//! Implements the parts of the Docker Registry v2 token spec that clients
//! exercise:
//!
//! * `GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]` with
//!   optional Basic credentials;
//! * `POST /token` (OAuth2 form, `grant_type=password`, space-separated
//!   `scope`), which containerd-style clients use;
//!
//! and answers `{"token", "access_token", "expires_in", "issued_at"}`. Right
//! credentials get every action they ask for, wrong credentials get a 401, and
//! no credentials get an anonymous token with no access (or `pull` only, when
//! `anonymous_pull` is set) — the registry then answers 401 on use, exactly
//! like Docker Hub for a private repository.
//!
//! The JWT is RS256-signed by the harness key whose self-signed certificate is
//! both the registry's `rootcertbundle` and the JWT header's `x5c`: that is the
//! path distribution 2.8 verifies (`kid` would need a libtrust key id).
//!
//! The server runs on its own thread with its own single-threaded runtime so
//! it keeps working whatever runtime (or none) the test that owns the
//! [`crate::support::Registry`] uses, including registries shared across tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

/// distribution 2.8 accepts a token until `exp + 60 s` (and from `nbf - 60 s`).
/// The server backdates `exp` by this much so that the registry's *effective*
/// validity equals the advertised `expires_in`; see [`TokenConfig::ttl`].
pub const REGISTRY_LEEWAY: Duration = Duration::from_secs(60);

/// Configuration of a token server.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    pub user: String,
    pub password: String,
    /// `service` the registry expects as `aud`.
    pub service: String,
    /// `issuer` the registry expects as `iss`.
    pub issuer: String,
    /// PEM RSA private key used to sign (written by the registry harness).
    pub key_path: PathBuf,
    /// Base64 DER of the signing certificate, sent as the only `x5c` entry.
    pub x5c: String,
    /// Lifetime advertised as `expires_in` and enforced by the registry
    /// (whole seconds, at least 1). The JWT `exp` claim is
    /// `iat + ttl - REGISTRY_LEEWAY`, so with a TTL under 60 s the claim is
    /// already in the past: clients must go by `expires_in` (as the spec
    /// says), not by decoding the token.
    pub ttl: Duration,
    /// Grant `pull` to anonymous (credential-less) token requests.
    pub anonymous_pull: bool,
    /// When false, `exp` is not backdated (registry accepts tokens for
    /// `ttl + 60 s`, the JWT claims are "honest").
    pub compensate_leeway: bool,
}

/// One request the token server answered, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// User name from Basic credentials or the OAuth2 form, if any.
    pub user: Option<String>,
    /// The raw `scope` values requested.
    pub scopes: Vec<String>,
    /// Whether a token was issued (false: 401 for bad credentials).
    pub issued: bool,
}

struct Shared {
    cfg: TokenConfig,
    ttl: Mutex<Duration>,
    count: AtomicUsize,
    log: Mutex<Vec<TokenRequest>>,
}

/// A running token server; shut down on drop.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TokenServer {
    /// Binds `127.0.0.1:0` (no port race: the listener is kept) and serves.
    pub fn start(cfg: TokenConfig) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind token server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            ttl: Mutex::new(cfg.ttl),
            cfg,
            count: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/token", get(get_token).post(post_token))
            .with_state(shared.clone());
        std::thread::Builder::new()
            .name(format!("token-server-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("token server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .expect("spawn token server thread");
        TokenServer {
            addr,
            shared,
            shutdown: Some(tx),
        }
    }

    /// The realm URL, e.g. `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Number of `/token` requests served (including rejected ones).
    pub fn requests(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Every request served so far, oldest first.
    pub fn log(&self) -> Vec<TokenRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Resets the counter and the log.
    pub fn reset(&self) {
        self.shared.count.store(0, Ordering::SeqCst);
        self.shared.log.lock().unwrap().clear();
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        *self.shared.ttl.lock().unwrap() = ttl;
    }

    pub fn service(&self) -> &str {
        &self.shared.cfg.service
    }

    pub fn issuer(&self) -> &str {
        &self.shared.cfg.issuer
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Credentials presented by a client.
enum Presented {
    None,
    Basic(String, String),
    Malformed,
}

fn basic_from_headers(headers: &HeaderMap) -> Presented {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Some(b64) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return Presented::Malformed;
    };
    let Some(decoded) = STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
    else {
        return Presented::Malformed;
    };
    match decoded.split_once(':') {
        Some((u, p)) => Presented::Basic(u.to_owned(), p.to_owned()),
        None => Presented::Malformed,
    }
}

async fn get_token(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned))
        .filter(|s| !s.is_empty())
        .collect();
    let presented = basic_from_headers(&headers);
    respond(&shared, presented, scopes).await
}

async fn post_token(
    State(shared): State<Arc<Shared>>,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = get("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let presented = match get("grant_type").as_deref() {
        Some("password") => match (get("username"), get("password")) {
            (Some(u), Some(p)) => Presented::Basic(u, p),
            _ => Presented::Malformed,
        },
        _ => {
            shared.count.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "unsupported_grant_type"})),
            )
                .into_response();
        }
    };
    respond(&shared, presented, scopes).await
}

async fn respond(shared: &Arc<Shared>, presented: Presented, scopes: Vec<String>) -> Response {
    shared.count.fetch_add(1, Ordering::SeqCst);
    let cfg = &shared.cfg;
    let (user, authenticated) = match presented {
        Presented::None => (None, false),
        Presented::Basic(u, p) => {
            let ok = u == cfg.user && p == cfg.password;
            (Some(u), ok)
        }
        Presented::Malformed => (Some(String::new()), false),
    };
    let issued = user.is_none() || authenticated;
    shared.log.lock().unwrap().push(TokenRequest {
        user: user.clone(),
        scopes: scopes.clone(),
        issued,
    });
    if !issued {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"regmirror-token\"")],
            axum::Json(
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}),
            ),
        )
            .into_response();
    }

    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| parse_scope(s))
        .filter_map(|(typ, name, actions)| {
            let granted: Vec<&str> = if authenticated {
                actions
            } else if cfg.anonymous_pull {
                actions.into_iter().filter(|a| *a == "pull").collect()
            } else {
                Vec::new()
            };
            (!granted.is_empty()).then(|| json!({"type": typ, "name": name, "actions": granted}))
        })
        .collect();

    let ttl_secs = shared.ttl.lock().unwrap().as_secs().max(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let leeway = if cfg.compensate_leeway {
        REGISTRY_LEEWAY.as_secs() as i64
    } else {
        0
    };
    let claims = json!({
        "iss": cfg.issuer,
        "sub": if authenticated { user.clone().unwrap_or_default() } else { String::new() },
        "aud": cfg.service,
        "exp": now + ttl_secs as i64 - leeway,
        "nbf": now - 1,
        "iat": now,
        "jti": hex::encode(rand::random::<[u8; 16]>()),
        "access": access,
    });
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [cfg.x5c]});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key_path = cfg.key_path.clone();
    let input = signing_input.clone();
    let sig = tokio::task::spawn_blocking(move || sign_rs256(&key_path, input.as_bytes()))
        .await
        .expect("signing task");
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    axum::Json(json!({
        "token": jwt,
        "access_token": jwt,
        "expires_in": ttl_secs,
        "issued_at": issued_at,
    }))
    .into_response()
}

/// `repository:foo/bar:pull,push` → `("repository", "foo/bar", ["pull", "push"])`.
/// The name may itself contain `:` (e.g. `host:5000/foo`), so split on the
/// first and the last colon.
pub fn parse_scope(scope: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some((typ, name, actions))
}

/// RS256 signature: `openssl dgst -sha256 -sign` prints the raw PKCS#1 v1.5
/// signature, which is exactly the JWS signature bytes.
fn sign_rs256(key_path: &std::path::Path, input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl dgst");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl dgst -sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
