//! [`LoginLimiter`]: failed logins counted per (user, client address) and
//! per client address, so passwords cannot be guessed at speed.
//!
//! After [`LoginLimits::max_failures`] failures of one user from one
//! address within [`LoginLimits::window`], that user is refused from that
//! address (even with the right password, so the answer tells an attacker
//! nothing) until the window that began with the first failure ends; other
//! users and other addresses are unaffected. An address that fails
//! [`LoginLimits::max_failures_per_address`] times across all user names
//! (password spraying) is refused for every user. A success resets the
//! count of its user and address. A refused attempt is not verified and not
//! counted, so an attacker gets `max_failures` guesses per window, and
//! correct logins are never delayed: the check is a map lookup, with no
//! sleep.
//!
//! Memory is bounded: each map holds at most [`LoginLimits::max_entries`]
//! keys (expired ones are dropped first, then the oldest unlocked one), and
//! user names are truncated in keys.
//!
//! Time is passed in (`now`), so the rules are tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one user from one address before it is refused.
    pub max_failures: u32,
    /// Failures from one address, over all users, before it is refused.
    pub max_failures_per_address: u32,
    /// How long failures are remembered (from the first one).
    pub window: Duration,
    /// Keys kept per map.
    pub max_entries: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 10,
            max_failures_per_address: 100,
            window: Duration::from_secs(5 * 60),
            max_entries: 10_000,
        }
    }
}

/// Longest user name kept in a key (longer ones share a key).
const MAX_USER_KEY: usize = 128;

/// Failures of one key since `first`.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

impl Failures {
    fn expired(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.first) >= window
    }

    /// Time left until the window ends, when `limit` is reached.
    fn locked(&self, now: Instant, window: Duration, limit: u32) -> Option<Duration> {
        (self.count >= limit && !self.expired(now, window))
            .then(|| (self.first + window).saturating_duration_since(now))
    }
}

#[derive(Debug, Default)]
struct State {
    by_user: HashMap<(String, IpAddr), Failures>,
    by_address: HashMap<IpAddr, Failures>,
}

/// Counts failed logins; see the module docs.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    limits: LoginLimits,
    state: Mutex<State>,
}

/// A refused attempt: how long until the client may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Until the window ends (at least one second, as `Retry-After` says).
    pub retry_after: Duration,
}

fn user_key(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_KEY);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_string()
}

/// Adds a failure to `key` in `map`, making room first when full. Returns
/// whether this failure reached `limit`.
fn record<K: Eq + Hash + Clone>(
    map: &mut HashMap<K, Failures>,
    key: K,
    now: Instant,
    limits: &LoginLimits,
    limit: u32,
) -> bool {
    if !map.contains_key(&key) && map.len() >= limits.max_entries {
        map.retain(|_, f| !f.expired(now, limits.window));
        if map.len() >= limits.max_entries {
            // Evict the oldest entry that is not locked (else the oldest).
            let victim = map
                .iter()
                .filter(|(_, f)| f.count < limit)
                .min_by_key(|(_, f)| f.first)
                .or_else(|| map.iter().min_by_key(|(_, f)| f.first))
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                map.remove(&k);
            }
        }
    }
    let entry = map.entry(key).or_insert(Failures {
        count: 0,
        first: now,
    });
    if entry.expired(now, limits.window) {
        *entry = Failures {
            count: 0,
            first: now,
        };
    }
    entry.count = entry.count.saturating_add(1);
    entry.count == limit
}

impl LoginLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            state: Mutex::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// Whether `user` may try to log in from `addr` now.
    pub fn check(&self, user: &str, addr: IpAddr, now: Instant) -> Result<(), Limited> {
        let l = &self.limits;
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let by_user = state
            .by_user
            .get(&(user_key(user), addr))
            .and_then(|f| f.locked(now, l.window, l.max_failures));
        let by_address = state
            .by_address
            .get(&addr)
            .and_then(|f| f.locked(now, l.window, l.max_failures_per_address));
        match by_user.max(by_address) {
            None => Ok(()),
            Some(left) => Err(Limited {
                retry_after: left.max(Duration::from_secs(1)),
            }),
        }
    }

    /// Records a failed login. Returns whether it locked `user` (or the
    /// whole address) out, so the caller can log that once.
    pub fn failed(&self, user: &str, addr: IpAddr, now: Instant) -> bool {
        let l = self.limits;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let user_locked = record(
            &mut state.by_user,
            (user_key(user), addr),
            now,
            &l,
            l.max_failures,
        );
        let address_locked = record(
            &mut state.by_address,
            addr,
            now,
            &l,
            l.max_failures_per_address,
        );
        user_locked || address_locked
    }

    /// Records a successful login: `user`'s failures from `addr` are
    /// forgotten (the address's count over all users stays).
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.by_user.is_empty() {
            state.by_user.remove(&(user_key(user), addr));
        }
    }

    /// How many keys are held (for tests of the memory bound).
    pub fn entries(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.by_user.len(), state.by_address.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            max_failures: 3,
            max_failures_per_address: 5,
            window: Duration::from_secs(60),
            max_entries: 4,
        })
    }

    #[test]
    fn locks_one_user_on_one_address_for_the_window() {
        let l = limiter();
        let t0 = Instant::now();
        assert!(!l.failed("alice", A, t0));
        assert!(!l.failed("alice", A, t0 + Duration::from_secs(1)));
        assert!(l.check("alice", A, t0 + Duration::from_secs(2)).is_ok());
        assert!(l.failed("alice", A, t0 + Duration::from_secs(2)));
        let e = l
            .check("alice", A, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(50));
        // Others are unaffected.
        assert!(l.check("bob", A, t0).is_ok());
        assert!(l.check("alice", B, t0).is_ok());
        // The window ends.
        assert!(l.check("alice", A, t0 + Duration::from_secs(60)).is_ok());
        assert!(!l.failed("alice", A, t0 + Duration::from_secs(61)));
        assert!(l.check("alice", A, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_resets_and_retry_after_is_at_least_a_second() {
        let l = limiter();
        let t0 = Instant::now();
        l.failed("alice", A, t0);
        l.failed("alice", A, t0);
        l.succeeded("alice", A);
        l.failed("alice", A, t0);
        l.failed("alice", A, t0);
        assert!(l.check("alice", A, t0).is_ok());
        l.failed("alice", A, t0);
        let e = l
            .check("alice", A, t0 + Duration::from_millis(59_900))
            .unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(1));
    }

    #[test]
    fn spraying_many_users_locks_the_address() {
        let l = limiter();
        let t0 = Instant::now();
        for u in ["a", "b", "c", "d"] {
            assert!(!l.failed(u, A, t0));
        }
        assert!(l.failed("e", A, t0));
        assert!(l.check("f", A, t0).is_err());
        assert!(l.check("f", B, t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.failed(&format!("user{i}{}", "x".repeat(1000)), addr, t0);
        }
        assert_eq!(l.entries(), (4, 4));
        // A locked entry survives eviction by newcomers.
        let l = limiter();
        for _ in 0..3 {
            l.failed("alice", A, t0);
        }
        for i in 0..10u32 {
            l.failed(&format!("u{i}"), B, t0 + Duration::from_secs(1));
        }
        assert!(l.check("alice", A, t0 + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn long_user_names_share_a_key() {
        assert_eq!(user_key(&"é".repeat(100)).len(), 128);
        assert_eq!(user_key("alice"), "alice");
    }
}
