//! Bandwidth limits: how fast copies may read from remote registries, for
//! the whole server (`remote_limits.max_bytes_per_sec`) and per poll
//! mirroring policy (`maxBytesPerSec`).
//!
//! A [`Bandwidth`] is a token bucket refilled at its rate, holding at most
//! one second of it. A transfer [`Bandwidth::spend`]s each chunk after
//! reading it; when the bucket is short, the transfer sleeps for what it
//! owes before reading on. The remote is slowed by TCP itself: the bytes
//! not read wait in the socket buffers, which fill, and the sender's window
//! closes. Concurrent transfers spend from the same bucket, so together
//! they keep to the rate. [`Bandwidth::spend`] says how long it waited;
//! copies add that to their progress, which `/metrics` and job logs show.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock: the same as std's, but paused in tests.
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

/// One limit, shared by every transfer that spends from it.
#[derive(Debug)]
pub struct Bandwidth {
    rate: u64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may be read now without waiting (negative: owed).
    tokens: f64,
    refilled_at: Instant,
}

impl Bandwidth {
    /// A limit of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1);
        Bandwidth {
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate as f64,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// The limit, in bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        self.rate
    }

    /// Takes `bytes` from the bucket; how long the caller must wait before
    /// reading on (zero when the bucket held them).
    fn take(&self, bytes: u64) -> Duration {
        let mut b = self.bucket.lock().expect("bandwidth lock");
        let now = Instant::now();
        let rate = self.rate as f64;
        let refill = now.duration_since(b.refilled_at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(rate) - bytes as f64;
        b.refilled_at = now;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }

    /// Spends `bytes`: returns at once while the bucket holds them, else
    /// after the time they take at this rate (or when `cancel` fires);
    /// how long it waited.
    pub async fn spend(&self, bytes: u64, cancel: &CancellationToken) -> Duration {
        let wait = self.take(bytes);
        if wait.is_zero() {
            return Duration::ZERO;
        }
        let started = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => {}
        }
        started.elapsed()
    }
}

/// The limits one transfer keeps to: the server's and its policy's (either
/// may be absent), each with what it is (`server`, `policy`).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    limits: Vec<(Arc<Bandwidth>, &'static str)>,
}

impl Limits {
    /// No limit.
    pub fn none() -> Self {
        Limits::default()
    }

    /// `self` and `limit` too, called `label` in job logs.
    pub fn and(mut self, limit: Option<Arc<Bandwidth>>, label: &'static str) -> Self {
        self.limits.extend(limit.map(|l| (l, label)));
        self
    }

    /// Whether any limit applies.
    pub fn is_limited(&self) -> bool {
        !self.limits.is_empty()
    }

    /// Spends `bytes` from every limit in turn (the slowest sets the
    /// pace); how long that took.
    pub async fn spend(&self, bytes: u64, cancel: &CancellationToken) -> Duration {
        let mut waited = Duration::ZERO;
        for (limit, _) in &self.limits {
            waited += limit.spend(bytes, cancel).await;
        }
        waited
    }

    /// The limits, as job logs say them: `2.0 MiB/s (policy), 10.0 MiB/s
    /// (server)`.
    pub fn describe(&self) -> String {
        self.limits
            .iter()
            .map(|(l, label)| format!("{} ({label})", rate_text(l.bytes_per_sec())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A human form of a rate: `10.0 MiB/s`.
pub fn rate_text(bytes_per_sec: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes_per_sec >= 1024 * 1024 {
        format!("{:.1} MiB/s", bytes_per_sec as f64 / MIB)
    } else {
        format!("{:.1} KiB/s", bytes_per_sec as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_one_second_and_charges_the_rest() {
        let b = Bandwidth::new(1000);
        // A full second's worth is there at once.
        assert_eq!(b.take(1000), Duration::ZERO);
        // Then each byte owes its share of a second.
        let wait = b.take(500);
        assert!(
            wait > Duration::from_millis(450) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Debt adds up across callers.
        let wait = b.take(500);
        assert!(wait > Duration::from_millis(950), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn spending_past_the_burst_takes_the_time_the_rate_gives() {
        let b = Arc::new(Bandwidth::new(1024 * 1024));
        let cancel = CancellationToken::new();
        let start = tokio::time::Instant::now();
        // 4 MiB in 64 KiB chunks: one second of burst, three of waiting.
        let mut waited = Duration::ZERO;
        for _ in 0..64 {
            waited += b.spend(64 * 1024, &cancel).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2900), "{took:?}");
        assert!(waited >= Duration::from_millis(2900), "{waited:?}");
        let limits = Limits::none().and(Some(b), "policy").and(None, "server");
        assert_eq!(limits.describe(), "1.0 MiB/s (policy)");
    }
}
