//! Exponential backoff with full jitter, honouring `Retry-After`.

use std::time::Duration;

/// How often and how long to retry transient failures.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff.
    pub initial: Duration,
    /// The largest backoff (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): the server's
    /// `Retry-After` when given (capped at `max`), else a random duration up
    /// to `initial * 2^(attempt-1)`, capped at `max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = mirror_core::remote::RetryPolicy::default();
    /// assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
    /// assert!(p.delay(3, None) <= Duration::from_secs(2));
    /// ```
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(r) = retry_after {
            return r.min(self.max);
        }
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max);
        // Full jitter: spreads retries of many clients hitting the same limit.
        let frac: f64 = rand::random();
        cap.mul_f64(0.5 + frac / 2.0)
    }
}

/// Parses `Retry-After` given in seconds (HTTP dates are rare from
/// registries and treated as absent).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let s = value?.to_str().ok()?.trim();
    s.parse::<u64>().ok().map(Duration::from_secs)
}
