//! `GET /api/v0/jobs/{id}/logs?stream=true`: a job's log lines as they are
//! written, as newline-delimited JSON (`{"lineNum", "data"}` per line),
//! until the job finishes.
//!
//! Lines reach the job store when the running job flushes them (every
//! heartbeat, 2 s by default, and at the end), so the stream reads the
//! store every [`POLL_INTERVAL`]; that also works for a job running on
//! another worker. It ends once the job is final (`done`, `errored`,
//! `canceled`) and every line is sent, after `limit` lines, when the job is
//! deleted, or when the server shuts down.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use mirror_core::Mirror;
use tokio_util::sync::CancellationToken;

/// How often the store is read for new lines.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Lines read from the store at once.
const PAGE: i64 = 500;

/// Where a stream stands.
struct Follow {
    mirror: Mirror,
    id: String,
    /// The next line number to send.
    next: i64,
    /// Lines still to send (`None`: no limit).
    remaining: Option<i64>,
    shutdown: CancellationToken,
    done: bool,
}

impl Follow {
    /// The next chunk of lines, waiting for them; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done || self.remaining == Some(0) || self.shutdown.is_cancelled() {
                return None;
            }
            // The status first: if it is final, every line was flushed
            // before it was recorded, so the lines read next are all of them.
            let finished = match self.mirror.job(&self.id).await {
                Ok(job) => job.status.is_final(),
                Err(_) => return None,
            };
            let want = self.remaining.map_or(PAGE, |r| r.min(PAGE));
            let lines = match self.mirror.job_logs(&self.id, self.next, want).await {
                Ok(lines) => lines,
                Err(e) => {
                    tracing::warn!(job = %self.id, "following a job log failed: {e}");
                    return None;
                }
            };
            let full_page = lines.len() as i64 == want;
            if finished && !full_page {
                self.done = true;
            }
            if !lines.is_empty() {
                let mut out = Vec::new();
                for line in &lines {
                    // A line is a number and a string: serializing cannot fail.
                    let _ = serde_json::to_writer(&mut out, line);
                    out.push(b'\n');
                }
                self.next = lines.last().map_or(self.next, |l| l.line_num + 1);
                if let Some(r) = &mut self.remaining {
                    *r -= lines.len() as i64;
                }
                return Some(Bytes::from(out));
            }
            if self.done {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }
}

/// The streaming response for job `id` from line `offset`, at most `limit`
/// lines (0: all). The caller has checked that the job exists.
pub fn follow(
    mirror: Mirror,
    id: String,
    offset: i64,
    limit: i64,
    shutdown: CancellationToken,
) -> Response {
    let state = Follow {
        mirror,
        id,
        next: offset,
        remaining: (limit > 0).then_some(limit),
        shutdown,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), s))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
