//! [`serve`]: the accept loop. HTTP/1.1 on plain TCP, with `TCP_NODELAY`,
//! the peer address for each request (`ConnectInfo`, for the login limits),
//! a time limit on slow clients, and graceful shutdown.
//!
//! A client must send a request's whole head (request line and headers)
//! within [`ConnectionLimits::header_read_timeout`], else its connection is
//! closed: a client trickling headers cannot hold a connection (and its
//! task and buffers) forever. The clock starts whenever the server waits
//! for a request head, so a keep-alive connection left idle between
//! requests is closed after the same time. Bodies are not timed: pushes of
//! large layers and followed job logs may take as long as they take.
//!
//! A request answered before its body was read to the end (a `401` to a
//! `PUT` sent before the client had credentials, a `404` to a push to a
//! missing repository) is answered with `Connection: close`: the unread
//! rest of the body makes the connection unusable, and a client that
//! reused it (Go's, docker's) would fail with `EOF` instead of retrying.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a connection may take to send what it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's head; also how long a keep-alive
    /// connection may sit idle between requests.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is canceled, then stops
/// accepting and waits for the open connections to finish their requests
/// (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
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
        // Each request carries the peer address, as `ConnectInfo`.
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let (req, body_read) = track_body(req);
            let answer = tower_service::Service::call(&mut app.clone(), req);
            async move {
                let mut resp = answer.await?;
                if !body_read.load(Ordering::Acquire) {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
