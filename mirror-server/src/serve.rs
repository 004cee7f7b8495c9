//! [`serve`]: the accept loop. HTTP/1.1 on plain TCP, or with TLS
//! HTTP/1.1 and HTTP/2 (chosen by ALPN), with `TCP_NODELAY`, the peer
//! address for each request (`ConnectInfo`, for the login limits), a time
//! limit on slow clients, and graceful shutdown.
//!
//! A client must send a request's whole head (request line and headers)
//! within [`ConnectionLimits::header_read_timeout`], else its connection is
//! closed: a client trickling headers cannot hold a connection (and its
//! task and buffers) forever. The clock starts whenever the server waits
//! for a request head, so a keep-alive connection left idle between
//! requests is closed after the same time. With TLS the handshake must
//! finish within the same time (a client that connects and never sends a
//! `ClientHello` is dropped). Bodies are not timed: pushes of large layers
//! and followed job logs may take as long as they take. HTTP/2 has no
//! request-head timer in hyper; its connections are bounded by the
//! handshake limit and hyper's stream limits.
//!
//! A request answered before its body was read to the end (a `401` to a
//! `PUT` sent before the client had credentials, a `404` to a push to a
//! missing repository) is answered with `Connection: close` over HTTP/1:
//! the unread rest of the body makes the connection unusable, and a client
//! that reused it (Go's, docker's) would fail with `EOF` instead of
//! retrying. HTTP/2 resets just that stream, and forbids the header.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Version, header};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a connection may take to send what it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's head (and to finish a TLS handshake);
    /// also how long a keep-alive HTTP/1 connection may sit idle between
    /// requests.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// hyper's HTTP/1 buffer limit (its default is ~400 KiB): the largest
/// request head, and how much of an answer is queued for the socket.
const HTTP1_MAX_BUF: usize = 64 * 1024;

/// The connection builders: one per protocol, so the protocol is known
/// before the first byte (plain TCP: HTTP/1; TLS: what ALPN chose).
struct Protocols {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Protocols {
    fn new(limits: ConnectionLimits) -> Self {
        let mut both = auto::Builder::new(TokioExecutor::new());
        both.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // What a connection buffers: a request head must fit, and an
            // answer's body is not read further ahead of the socket than
            // this (one blob read chunk queued at a time, so 100 clients
            // pulling blobs hold ~25 MiB, not ~100).
            .max_buf_size(HTTP1_MAX_BUF);
        // Pings find HTTP/2 peers that went away without closing.
        both.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(limits.header_read_timeout);
        Protocols {
            http1: both.clone().http1_only(),
            http2: both.http2_only(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is canceled, then stops
/// accepting and waits for the open connections to finish their requests
/// (the caller bounds that wait). With `tls`, every connection is TLS.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let protocols = Arc::new(Protocols::new(limits));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // No Nagle delay: small responses (manifests, HEADs, errors) would
        // otherwise wait up to 40 ms for the client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let conn = Connection {
            app: app.clone(),
            peer,
            protocols: protocols.clone(),
            watcher: graceful.watcher(),
        };
        match &tls {
            None => {
                tokio::spawn(conn.serve(TokioIo::new(stream), false));
            }
            Some(acceptor) => {
                let handshake = Handshake {
                    acceptor: acceptor.clone(),
                    timeout: limits.header_read_timeout,
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(handshake.then_serve(stream, conn));
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A TLS handshake, bounded in time and given up on shutdown.
struct Handshake {
    acceptor: TlsAcceptor,
    timeout: Duration,
    shutdown: CancellationToken,
}

impl Handshake {
    async fn then_serve(self, stream: TcpStream, conn: Connection) {
        let peer = conn.peer;
        let done = tokio::select! {
            done = tokio::time::timeout(self.timeout, self.acceptor.accept(stream)) => done,
            () = self.shutdown.cancelled() => return,
        };
        match done {
            Ok(Ok(tls)) => {
                let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                conn.serve(TokioIo::new(tls), http2).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake not done within {:?}", self.timeout),
        }
    }
}

/// One accepted connection, before its protocol runs.
struct Connection {
    app: Router,
    peer: SocketAddr,
    protocols: Arc<Protocols>,
    /// Graceful shutdown reaches the connection through it.
    watcher: Watcher,
}

impl Connection {
    /// Serves HTTP/1 (or HTTP/2) requests on `io` until the connection ends.
    async fn serve<I>(self, io: I, http2: bool)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Connection {
            app,
            peer,
            protocols,
            watcher,
        } = self;
        // Each request carries the peer address, as `ConnectInfo`.
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            // Connection-specific headers are HTTP/1 only.
            let http1 = req.version() < Version::HTTP_2;
            let (req, body_read) = track_body(req);
            let answer = tower_service::Service::call(&mut app.clone(), req);
            async move {
                let mut resp = answer.await?;
                if http1 && !body_read.load(Ordering::Acquire) {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let builder = if http2 {
            &protocols.http2
        } else {
            &protocols.http1
        };
        if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
            tracing::debug!(%peer, "connection closed: {e}");
        }
    }
}

/// `req` with a body that records when it has been read to the end (or
/// had none), and that record.
fn track_body(req: hyper::Request<Incoming>) -> (Request<Body>, Arc<AtomicBool>) {
    let (parts, body) = req.into_parts();
    let read = Arc::new(AtomicBool::new(body.is_end_stream()));
    let tracked = Body::new(TrackedBody {
        inner: body,
        read: read.clone(),
    });
    (Request::from_parts(parts, tracked), read)
}

/// A request body that sets `read` when its last frame has been taken.
struct TrackedBody {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// After a failed `accept`: a connection that broke before it was
/// accepted is not worth a pause; anything else (out of file descriptors)
/// is logged and retried a second later instead of spinning.
async fn pause_after_accept_error(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
