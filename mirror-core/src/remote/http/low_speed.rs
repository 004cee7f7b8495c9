//! A blob body's low-speed limit ([`LowSpeed`]) and the stream that applies
//! it ([`WatchedBody`]).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;

use super::human_bytes;
use crate::error::error_chain;
use crate::remote::RemoteError;

/// A blob body's low-speed limit: fewer than `rate` bytes per second over
/// a `window` fails the transfer (as curl's `--speed-limit`), so a remote
/// cannot hold a transfer open by dripping bytes just often enough to beat
/// the idle timeout. Checked as chunks arrive; total silence is the idle
/// timeout's job. Only time spent waiting for the remote counts
/// ([`LowSpeed::pause`]).
pub(super) struct LowSpeed {
    rate: u64,
    window: Duration,
    what: String,
    started: Instant,
    bytes: u64,
}

impl LowSpeed {
    pub(super) fn new(rate: u64, window: Duration, what: String) -> Self {
        LowSpeed {
            rate,
            window,
            what,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Leaves `idle` out of the window: time the reader spent elsewhere
    /// (writing to the store, keeping to a bandwidth limit) is not the
    /// remote's slowness.
    fn pause(&mut self, idle: Duration) {
        self.started = (self.started + idle).min(Instant::now());
    }

    pub(super) fn received(&mut self, n: u64) -> Result<(), RemoteError> {
        self.bytes += n;
        let elapsed = self.started.elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        if self.bytes < self.rate.saturating_mul(elapsed.as_secs()) {
            return Err(RemoteError::LimitExceeded {
                what: self.what.clone(),
                limit: format!(
                    "{} bytes in {} s, slower than {}/s",
                    self.bytes,
                    elapsed.as_secs(),
                    human_bytes(self.rate)
                ),
                setting: "remote_limits.min_transfer_rate",
            });
        }
        self.started = Instant::now();
        self.bytes = 0;
        Ok(())
    }
}

/// A blob body under a [`LowSpeed`] watch. The time between handing out a
/// chunk and being asked for the next one is the reader's, and is left
/// out of the watch: a copy that sleeps for its bandwidth limit does not
/// make the remote look slow (the remote is kept waiting by TCP, and its
/// bytes are there at once when reading resumes).
pub(super) struct WatchedBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    watch: LowSpeed,
    url: String,
    handed_out: Option<Instant>,
}

impl WatchedBody {
    pub(super) fn new(
        inner: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
        watch: LowSpeed,
        url: String,
    ) -> Self {
        WatchedBody {
            inner: Box::pin(inner),
            watch,
            url,
            handed_out: None,
        }
    }
}

impl Stream for WatchedBody {
    type Item = Result<Bytes, RemoteError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(at) = this.handed_out.take() {
            this.watch.pause(at.elapsed());
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Err(e) = this.watch.received(chunk.len() as u64) {
                    return Poll::Ready(Some(Err(e)));
                }
                this.handed_out = Some(Instant::now());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(RemoteError::Transfer {
                url: this.url.clone(),
                reason: error_chain(&e),
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// `n` chunks of 1 KiB, each `delay` after the one before (the
    /// remote's pace).
    fn remote(n: usize, delay: Duration) -> impl Stream<Item = reqwest::Result<Bytes>> + Send {
        futures_util::stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(delay).await;
            Ok(Bytes::from(vec![0u8; 1024]))
        })
    }

    fn watch() -> LowSpeed {
        // 1 MiB/s over a second: a 1 KiB chunk per 300 ms is far too slow.
        LowSpeed::new(1024 * 1024, Duration::from_secs(1), "blob".into())
    }

    #[tokio::test]
    async fn a_remote_that_drips_is_cut_off() {
        let mut body = WatchedBody::new(remote(5, Duration::from_millis(300)), watch(), "u".into());
        let mut failed = None;
        while let Some(next) = body.next().await {
            if let Err(e) = next {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("cut off");
        assert!(e.to_string().contains("min_transfer_rate"), "{e}");
    }

    #[tokio::test]
    async fn time_the_reader_spends_elsewhere_is_not_the_remotes() {
        // The remote answers at once; the reader pauses 300 ms after each
        // chunk (as a bandwidth limit makes it): 1.5 s in all.
        let mut body = WatchedBody::new(remote(5, Duration::ZERO), watch(), "u".into());
        let mut chunks = 0;
        while let Some(next) = body.next().await {
            next.expect("not the remote's slowness");
            chunks += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(chunks, 5);
    }
}
