//! A fault-injecting HTTP proxy in front of a real registry on loopback.
//!
//! ```ignore
//! let reg = Registry::plain().await;
//! let proxy = FaultProxy::start(&reg, 7);
//! // The next two blob GETs are cut after 1 MiB with a TCP reset.
//! let rule = proxy.add(Rule::new(Fault::Reset { after: 1 << 20 }).get().blobs().times(2));
//! // ... point the mirror at proxy.url() ...
//! assert_eq!(rule.hits(), 2);
//! ```
//!
//! Every request is forwarded to the registry (bodies streamed both ways,
//! never buffered whole) unless a [`Rule`] matches and fires, in which case
//! its [`Fault`] shapes the exchange: a canned answer (5xx, 429, 401,
//! redirect, a replacement manifest), a broken body (reset, truncation, a
//! stall, a flipped byte), a rewritten header, or a slowed-down body.
//!
//! Rules are tried in the order they were added; the first that matches
//! *and fires* wins. A rule fires at most `times` times, after letting
//! `skip` matching requests through, each time with `probability` drawn
//! from the proxy's seeded RNG, so a run with faults is repeatable given
//! the same request order.
//!
//! In token mode the proxy also fronts the token server: `WWW-Authenticate`
//! realms are rewritten to `PROXY/__token/...`, so rules can hit token
//! requests too (match paths starting with `/__token`).
//!
//! The proxy runs on its own thread and runtime (like the token server), so
//! it works whatever runtime the test uses; it stops on drop. Traffic goes
//! to loopback only.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::data::sha256_digest;
use super::registry::Registry;

/// Path prefix under which the proxy forwards to the token server.
pub const TOKEN_PREFIX: &str = "/__token";

/// What a firing rule does to one exchange.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward, then reset the TCP connection (RST) after `after` body bytes.
    Reset { after: u64 },
    /// Forward with the upstream `Content-Length`, then close the connection
    /// (FIN) after `after` body bytes: the client sees a short body.
    Truncate { after: u64 },
    /// Forward without `Content-Length` (chunked) and end the body cleanly
    /// after `after` bytes: a complete-looking but short response.
    EndEarly { after: u64 },
    /// Forward; after `after` body bytes send nothing for `pause`, then go
    /// on (if the client is still there).
    Stall { after: u64, pause: Duration },
    /// Send nothing at all (not even headers) for `pause`, then forward.
    Delay(Duration),
    /// Forward with the body byte at offset `at` inverted.
    FlipByte { at: u64 },
    /// Forward the body at about `bytes_per_sec`.
    Throttle { bytes_per_sec: u64 },
    /// Forward with a response header set to `value` (e.g. a wrong
    /// `Docker-Content-Digest`).
    SetResponseHeader { name: String, value: String },
    /// Forward with the request's `Authorization` replaced by `value`
    /// (an expired or forged token), or removed when `None`: the registry
    /// answers its own 401 with its challenge.
    SetAuthorization(Option<String>),
    /// Answer without contacting upstream.
    Respond(Canned),
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body chunked (no `Content-Length`).
    pub chunked: bool,
}

impl Fault {
    /// `status` with an OCI error body.
    pub fn status(status: u16) -> Fault {
        let body =
            format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"injected HTTP {status}"}}]}}"#);
        Fault::Respond(Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
            chunked: false,
        })
    }

    /// 429 with Docker Hub's `TOOMANYREQUESTS` body and, when given,
    /// `Retry-After: secs`.
    pub fn too_many_requests(retry_after: Option<u64>) -> Fault {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(s) = retry_after {
            headers.push(("retry-after".into(), s.to_string()));
        }
        Fault::Respond(Canned {
            status: 429,
            headers,
            body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#.to_vec(),
            chunked: false,
        })
    }

    /// 429 with neither `Retry-After` nor a body.
    pub fn bare_429() -> Fault {
        Fault::Respond(Canned {
            status: 429,
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        })
    }

    /// `307 Location: location`.
    pub fn redirect(location: &str) -> Fault {
        Fault::Respond(Canned {
            status: 307,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            chunked: false,
        })
    }

    /// 200 with these manifest bytes, `Content-Type: media_type` and the
    /// matching `Docker-Content-Digest` (so a HEAD or a GET by tag announces
    /// the replacement's digest).
    pub fn manifest(media_type: &str, body: Vec<u8>) -> Fault {
        Fault::Respond(Canned {
            status: 200,
            headers: vec![
                ("content-type".into(), media_type.into()),
                ("docker-content-digest".into(), sha256_digest(&body)),
            ],
            body,
            chunked: false,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Fault::Reset { .. } => "reset",
            Fault::Truncate { .. } => "truncate",
            Fault::EndEarly { .. } => "end-early",
            Fault::Stall { .. } => "stall",
            Fault::Delay(_) => "delay",
            Fault::FlipByte { .. } => "flip-byte",
            Fault::Throttle { .. } => "throttle",
            Fault::SetResponseHeader { .. } => "set-header",
            Fault::SetAuthorization(_) => "set-authorization",
            Fault::Respond(_) => "respond",
        }
    }
}

/// What a matcher sees of a request.
pub struct RequestInfo<'a> {
    pub method: &'a Method,
    /// Path and query, e.g. `/v2/team/app/blobs/sha256:..`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

type Matcher = Arc<dyn Fn(&RequestInfo<'_>) -> bool + Send + Sync>;

/// When to apply a [`Fault`].
#[derive(Clone)]
pub struct Rule {
    fault: Fault,
    matchers: Vec<Matcher>,
    times: Option<u64>,
    skip: u64,
    probability: f64,
}

impl Rule {
    /// A rule that applies `fault` to every request, every time.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            fault,
            matchers: Vec::new(),
            times: None,
            skip: 0,
            probability: 1.0,
        }
    }

    /// Also requires `f`.
    pub fn when(mut self, f: impl Fn(&RequestInfo<'_>) -> bool + Send + Sync + 'static) -> Rule {
        self.matchers.push(Arc::new(f));
        self
    }

    pub fn method(self, m: Method) -> Rule {
        self.when(move |r| *r.method == m)
    }

    pub fn get(self) -> Rule {
        self.method(Method::GET)
    }

    pub fn head(self) -> Rule {
        self.method(Method::HEAD)
    }

    /// The path (with query) contains `s`.
    pub fn path_contains(self, s: &str) -> Rule {
        let s = s.to_string();
        self.when(move |r| r.path.contains(&s))
    }

    /// Blob requests (`/blobs/sha256:`; not uploads).
    pub fn blobs(self) -> Rule {
        self.path_contains("/blobs/sha256:")
    }

    /// Manifest requests.
    pub fn manifests(self) -> Rule {
        self.path_contains("/manifests/")
    }

    /// Tag list requests.
    pub fn tag_list(self) -> Rule {
        self.path_contains("/tags/list")
    }

    /// Token server requests (token mode only).
    pub fn token(self) -> Rule {
        self.when(|r| r.path.starts_with(TOKEN_PREFIX))
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Rule {
        self.times = Some(n);
        self
    }

    pub fn once(self) -> Rule {
        self.times(1)
    }

    /// Lets the first `n` matching requests through untouched.
    pub fn skip(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    /// Fires on a matching request with probability `p` (seeded RNG).
    pub fn probability(mut self, p: f64) -> Rule {
        self.probability = p;
        self
    }
}

/// A rule added to a proxy: how often it matched and fired.
#[derive(Clone)]
pub struct RuleHandle {
    id: u64,
    matched: Arc<AtomicU64>,
    hits: Arc<AtomicU64>,
}

impl RuleHandle {
    /// Times the rule fired.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests the rule matched (fired or not).
    pub fn matched(&self) -> u64 {
        self.matched.load(Ordering::SeqCst)
    }
}

/// One request the proxy handled.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The `Range` request header, if any.
    pub range: Option<String>,
    /// Whether an `Authorization` header came with it.
    pub authorized: bool,
    /// The status answered (0 when upstream could not be reached).
    pub status: u16,
    /// The fault applied, if any.
    pub fault: Option<&'static str>,
    /// When the request arrived.
    pub at: std::time::Instant,
    /// Which upstream it went to (an index into the proxy's upstreams).
    pub upstream: usize,
}

struct Entry {
    rule: Rule,
    handle: RuleHandle,
}

struct Shared {
    /// Requests go to each in turn (one, unless a load balancer).
    upstreams: Vec<reqwest::Url>,
    turn: AtomicU64,
    token_upstream: Option<reqwest::Url>,
    /// `http://127.0.0.1:PORT` of the proxy itself.
    own_url: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
    rng: Mutex<StdRng>,
    log: Mutex<Vec<Logged>>,
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of `reg` (and of its token server, in token mode),
    /// with the RNG seeded by `seed`.
    pub fn start(reg: &Registry, seed: u64) -> FaultProxy {
        let ca = reg.is_tls().then(|| reg.ca_pem());
        FaultProxy::start_for(
            &reg.url(),
            reg.token_realm().as_deref(),
            ca.as_deref(),
            seed,
        )
    }

    /// A proxy in front of `upstream` (`http(s)://127.0.0.1:PORT`), and of
    /// the token server whose realm is `token_realm`, trusting `ca_pem`.
    pub fn start_for(
        upstream: &str,
        token_realm: Option<&str>,
        ca_pem: Option<&str>,
        seed: u64,
    ) -> FaultProxy {
        FaultProxy::balancing(&[upstream], token_realm, ca_pem, seed)
    }

    /// A round-robin load balancer: each request (not connection) goes to
    /// the next of `upstreams`, as a balancer without sticky sessions does
    /// to a client that reuses one connection. [`Logged::upstream`] says
    /// which served what.
    pub fn balancing(
        upstreams: &[&str],
        token_realm: Option<&str>,
        ca_pem: Option<&str>,
        seed: u64,
    ) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
        }
        let token_upstream = token_realm.map(|r| {
            let mut u = reqwest::Url::parse(r).expect("token realm URL");
            u.set_path("/");
            u.set_query(None);
            u
        });
        let shared = Arc::new(Shared {
            upstreams: upstreams
                .iter()
                .map(|u| reqwest::Url::parse(u).expect("upstream URL"))
                .collect(),
            turn: AtomicU64::new(0),
            token_upstream,
            own_url: format!("http://{addr}"),
            client: b.build().unwrap(),
            rules: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            log: Mutex::new(Vec::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<Conn>();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fault proxy runtime");
                rt.block_on(async move {
                    let listener =
                        ConnListener(tokio::net::TcpListener::from_std(listener).unwrap());
                    tokio::select! {
                        _ = axum::serve(listener, app).into_future() => {}
                        _ = rx => {}
                    }
                });
                // Open connections (stalled bodies too) die with the runtime.
                rt.shutdown_background();
            })
            .expect("spawn fault proxy thread");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.own_url.clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Adds a rule (after the existing ones).
    pub fn add(&self, rule: Rule) -> RuleHandle {
        let handle = RuleHandle {
            id: self.shared.next_id.fetch_add(1, Ordering::SeqCst),
            matched: Arc::default(),
            hits: Arc::default(),
        };
        self.shared.rules.lock().unwrap().push(Entry {
            rule,
            handle: handle.clone(),
        });
        handle
    }

    /// Removes one rule.
    pub fn remove(&self, handle: &RuleHandle) {
        self.shared
            .rules
            .lock()
            .unwrap()
            .retain(|e| e.handle.id != handle.id);
    }

    /// Removes every rule: the proxy forwards faithfully from now on.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Reseeds the RNG.
    pub fn reseed(&self, seed: u64) {
        *self.shared.rng.lock().unwrap() = StdRng::seed_from_u64(seed);
    }

    /// Every request handled so far, oldest first.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests so far for which `f` holds.
    pub fn count(&self, f: impl Fn(&Logged) -> bool) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| f(l))
            .count()
    }

    /// Forgets the request log.
    pub fn reset_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- connections that can be reset ----

/// A connection's handle: setting `reset` makes the socket close with RST
/// when hyper drops it (after a body error).
#[derive(Clone, Debug)]
struct Conn {
    reset: Arc<AtomicBool>,
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, ConnListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, ConnListener>) -> Self {
        stream.remote_addr().clone()
    }
}

struct ConnListener(tokio::net::TcpListener);

impl Listener for ConnListener {
    type Io = ConnIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (ConnIo, Conn) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let reset = Arc::new(AtomicBool::new(false));
                    return (
                        ConnIo {
                            stream,
                            reset: reset.clone(),
                        },
                        Conn { reset },
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Conn> {
        self.0.local_addr().map(|_| Conn {
            reset: Arc::default(),
        })
    }
}

struct ConnIo {
    stream: tokio::net::TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0: close() sends RST and drops unsent data.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// ---- the handler ----

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

fn pick(shared: &Shared, info: &RequestInfo<'_>) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap();
    let mut rng = shared.rng.lock().unwrap();
    for e in rules.iter_mut() {
        if !e.rule.matchers.iter().all(|m| m(info)) {
            continue;
        }
        let seen = e.handle.matched.fetch_add(1, Ordering::SeqCst) + 1;
        if seen <= e.rule.skip {
            continue;
        }
        if e.rule.times.is_some_and(|t| e.handle.hits() >= t) {
            continue;
        }
        if e.rule.probability < 1.0 && !rng.random_bool(e.rule.probability.clamp(0.0, 1.0)) {
            continue;
        }
        e.handle.hits.fetch_add(1, Ordering::SeqCst);
        return Some(e.rule.fault.clone());
    }
    None
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let fault = pick(
        &shared,
        &RequestInfo {
            method: &method,
            path: &path,
            headers: req.headers(),
        },
    );
    let mut logged = Logged {
        method: method.clone(),
        path: path.clone(),
        range: req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        authorized: req.headers().contains_key(header::AUTHORIZATION),
        status: 0,
        fault: fault.as_ref().map(Fault::name),
        at: std::time::Instant::now(),
        upstream: 0,
    };
    let turn = shared.turn.fetch_add(1, Ordering::SeqCst);
    logged.upstream = (turn % shared.upstreams.len() as u64) as usize;
    let resp = respond(&shared, &conn, req, &path, fault, logged.upstream).await;
    logged.status = resp.status().as_u16();
    shared.log.lock().unwrap().push(logged);
    resp
}

async fn respond(
    shared: &Shared,
    conn: &Conn,
    req: Request,
    path: &str,
    fault: Option<Fault>,
    upstream: usize,
) -> Response<Body> {
    match &fault {
        Some(Fault::Respond(c)) => return canned(c),
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    // Where to: the token server, or the registry.
    let target = match (&shared.token_upstream, path.strip_prefix(TOKEN_PREFIX)) {
        (Some(t), Some(rest)) => t.join(rest.trim_start_matches('/')),
        _ => shared.upstreams[upstream].join(path.trim_start_matches('/')),
    };
    let Ok(target) = target else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    let (parts, body) = req.into_parts();
    let mut out = shared.client.request(parts.method.clone(), target);
    for (name, value) in &parts.headers {
        if HOP_BY_HOP.contains(&name.as_str()) || name == header::CONTENT_LENGTH {
            continue;
        }
        if name == header::AUTHORIZATION && matches!(fault, Some(Fault::SetAuthorization(_))) {
            continue;
        }
        out = out.header(name, value);
    }
    if let Some(Fault::SetAuthorization(Some(v))) = &fault {
        out = out.header(header::AUTHORIZATION, v);
    }
    let has_body = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "0")
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
            out = out.header(header::CONTENT_LENGTH, len);
        }
        out = out.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream = match out.send().await {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, &format!("upstream: {e}")),
    };
    let status = upstream.status();
    let mut headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let value = if name == header::WWW_AUTHENTICATE {
            rewrite_realm(shared, value)
        } else {
            value.clone()
        };
        headers.append(name.clone(), value);
    }
    if let Some(Fault::SetResponseHeader { name, value }) = &fault {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    if matches!(fault, Some(Fault::EndEarly { .. })) {
        headers.remove(header::CONTENT_LENGTH);
    }
    let body_fault = match fault {
        Some(Fault::Reset { after }) => BodyFault::Reset(after),
        Some(Fault::Truncate { after }) => BodyFault::Truncate(after),
        Some(Fault::EndEarly { after }) => BodyFault::EndEarly(after),
        Some(Fault::Stall { after, pause }) => BodyFault::Stall(after, pause),
        Some(Fault::FlipByte { at }) => BodyFault::Flip(at),
        Some(Fault::Throttle { bytes_per_sec }) => BodyFault::Throttle(bytes_per_sec.max(1)),
        _ => BodyFault::None,
    };
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(faulty_body(
            upstream.bytes_stream(),
            body_fault,
            conn.reset.clone(),
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

fn rewrite_realm(shared: &Shared, value: &HeaderValue) -> HeaderValue {
    let (Some(t), Ok(v)) = (&shared.token_upstream, value.to_str()) else {
        return value.clone();
    };
    let origin = t.as_str().trim_end_matches('/');
    let rewritten = v.replace(origin, &format!("{}{TOKEN_PREFIX}", shared.own_url));
    HeaderValue::from_str(&rewritten).unwrap_or_else(|_| value.clone())
}

fn canned(c: &Canned) -> Response<Body> {
    let body = if c.chunked {
        // One chunk per 64 KiB, so no Content-Length is announced.
        let chunks: Vec<Result<Bytes, std::io::Error>> = c
            .body
            .chunks(64 * 1024)
            .map(|b| Ok(Bytes::copy_from_slice(b)))
            .collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(c.body.clone())
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(c.status).unwrap();
    for (k, v) in &c.headers {
        resp.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    resp
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text.to_string()));
    *resp.status_mut() = status;
    resp
}

// ---- faulty bodies ----

#[derive(Clone, Copy)]
enum BodyFault {
    None,
    Reset(u64),
    Truncate(u64),
    EndEarly(u64),
    Stall(u64, Duration),
    Flip(u64),
    Throttle(u64),
}

impl BodyFault {
    /// The offset where the body is cut or paused.
    fn cut_at(self) -> Option<u64> {
        match self {
            BodyFault::Reset(n)
            | BodyFault::Truncate(n)
            | BodyFault::EndEarly(n)
            | BodyFault::Stall(n, _) => Some(n),
            _ => None,
        }
    }
}

struct BodyState {
    upstream: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    fault: BodyFault,
    /// Bytes sent so far.
    pos: u64,
    /// Part of an upstream chunk not sent yet.
    pending: Option<Bytes>,
    reset: Arc<AtomicBool>,
    /// The cut or pause happened.
    acted: bool,
    done: bool,
}

fn faulty_body(
    upstream: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    fault: BodyFault,
    reset: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let state = BodyState {
        upstream: Box::pin(upstream),
        fault,
        pos: 0,
        pending: None,
        reset,
        acted: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        // The cut or pause, once the body reached its offset.
        if !st.acted
            && let Some(at) = st.fault.cut_at()
            && st.pos >= at
        {
            st.acted = true;
            match st.fault {
                BodyFault::Reset(_) => {
                    st.reset.store(true, Ordering::SeqCst);
                    st.done = true;
                    return Some((Err(std::io::ErrorKind::ConnectionReset.into()), st));
                }
                BodyFault::Truncate(_) => {
                    st.done = true;
                    return Some((Err(std::io::ErrorKind::UnexpectedEof.into()), st));
                }
                BodyFault::EndEarly(_) => return None,
                BodyFault::Stall(_, pause) => tokio::time::sleep(pause).await,
                _ => {}
            }
        }
        let mut chunk = match st.pending.take() {
            Some(c) => c,
            None => match st.upstream.next().await {
                None => return None,
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(std::io::Error::other(e)), st));
                }
                Some(Ok(c)) => c,
            },
        };
        // Never send past the cut offset in one piece.
        if !st.acted
            && let Some(at) = st.fault.cut_at()
            && st.pos + chunk.len() as u64 > at
        {
            let head = (at - st.pos) as usize;
            st.pending = Some(chunk.split_off(head));
        }
        if let BodyFault::Throttle(rate) = st.fault {
            const PIECE: usize = 16 * 1024;
            if chunk.len() > PIECE {
                let rest = chunk.split_off(PIECE);
                st.pending = Some(match st.pending.take() {
                    // Cannot happen (throttle has no cut), but keep order.
                    Some(p) => [rest, p].concat().into(),
                    None => rest,
                });
            }
            let wait = Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
            tokio::time::sleep(wait).await;
        }
        if let BodyFault::Flip(at) = st.fault
            && at >= st.pos
            && at < st.pos + chunk.len() as u64
        {
            let mut v = chunk.to_vec();
            v[(at - st.pos) as usize] ^= 0xff;
            chunk = Bytes::from(v);
        }
        st.pos += chunk.len() as u64;
        Some((Ok(chunk), st))
    })
}
