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
//! An attempt is counted *before* its password is verified
//! ([`LoginLimiter::reserve`]: check and count in one step, under one lock),
//! so concurrent guesses cannot all pass the check before the first of them
//! fails: at most `max_failures` of them are ever verified. A success (or an
//! attempt that was not verified after all) gives its slot back
//! ([`LoginLimiter::release`]).
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

/// Whether the user and address of `key` are refused now, and for how long.
fn refusal(
    state: &State,
    key: &(String, IpAddr),
    now: Instant,
    l: &LoginLimits,
) -> Result<(), Limited> {
    let by_user = state
        .by_user
        .get(key)
        .and_then(|f| f.locked(now, l.window, l.max_failures));
    let by_address = state
        .by_address
        .get(&key.1)
        .and_then(|f| f.locked(now, l.window, l.max_failures_per_address));
    match by_user.max(by_address) {
        None => Ok(()),
        Some(left) => Err(Limited {
            retry_after: left.max(Duration::from_secs(1)),
        }),
    }
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
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        refusal(&state, &(user_key(user), addr), now, &self.limits)
    }

    /// Counts an attempt of `user` from `addr` before its password is
    /// verified, unless they are refused now: check and count happen under
    /// one lock, so concurrent attempts cannot all pass the check. Returns
    /// whether this attempt reached a limit (so the caller can log that
    /// once). A correct password gives the slot back with [`Self::release`]
    /// and resets the user's count with [`Self::succeeded`].
    pub fn reserve(&self, user: &str, addr: IpAddr, now: Instant) -> Result<bool, Limited> {
        let l = self.limits;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = (user_key(user), addr);
        refusal(&state, &key, now, &l)?;
        let user_locked = record(&mut state.by_user, key, now, &l, l.max_failures);
        let address_locked = record(
            &mut state.by_address,
            addr,
            now,
            &l,
            l.max_failures_per_address,
        );
        Ok(user_locked || address_locked)
    }

    /// Gives back a slot [`Self::reserve`] took, for an attempt that turned
    /// out not to be a failure (the password was right, or it was never
    /// verified).
    pub fn release(&self, user: &str, addr: IpAddr) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = state.by_user.get_mut(&(user_key(user), addr)) {
            f.count = f.count.saturating_sub(1);
        }
        if let Some(f) = state.by_address.get_mut(&addr) {
            f.count = f.count.saturating_sub(1);
        }
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

    /// A failed attempt that must not be refused: whether it locked.
    fn failed(l: &LoginLimiter, user: &str, addr: IpAddr, now: Instant) -> bool {
        l.reserve(user, addr, now).expect("not refused")
    }

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
        assert!(!failed(&l, "alice", A, t0));
        assert!(!failed(&l, "alice", A, t0 + Duration::from_secs(1)));
        assert!(l.check("alice", A, t0 + Duration::from_secs(2)).is_ok());
        assert!(failed(&l, "alice", A, t0 + Duration::from_secs(2)));
        let e = l
            .check("alice", A, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(50));
        // Others are unaffected.
        assert!(l.check("bob", A, t0).is_ok());
        assert!(l.check("alice", B, t0).is_ok());
        // The window ends.
        assert!(l.check("alice", A, t0 + Duration::from_secs(60)).is_ok());
        assert!(!failed(&l, "alice", A, t0 + Duration::from_secs(61)));
        assert!(l.check("alice", A, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_resets_and_retry_after_is_at_least_a_second() {
        let l = limiter();
        let t0 = Instant::now();
        failed(&l, "alice", A, t0);
        failed(&l, "alice", A, t0);
        l.succeeded("alice", A);
        failed(&l, "alice", A, t0);
        failed(&l, "alice", A, t0);
        assert!(l.check("alice", A, t0).is_ok());
        failed(&l, "alice", A, t0);
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
            assert!(!failed(&l, u, A, t0));
        }
        assert!(failed(&l, "e", A, t0));
        assert!(l.check("f", A, t0).is_err());
        assert!(l.check("f", B, t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            failed(&l, &format!("user{i}{}", "x".repeat(1000)), addr, t0);
        }
        assert_eq!(l.entries(), (4, 4));
        // A locked entry survives eviction by newcomers.
        let l = limiter();
        for _ in 0..3 {
            failed(&l, "alice", A, t0);
        }
        for i in 0..10u32 {
            let _ = l.reserve(&format!("u{i}"), B, t0 + Duration::from_secs(1));
        }
        assert!(l.check("alice", A, t0 + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_check_together() {
        let l = std::sync::Arc::new(limiter());
        let t0 = Instant::now();
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.reserve("alice", A, t0).is_ok())
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(admitted, 3, "max_failures attempts, not more");
        assert!(l.check("alice", A, t0).is_err());
    }

    #[test]
    fn release_gives_the_slot_back() {
        let l = limiter();
        let t0 = Instant::now();
        failed(&l, "alice", A, t0);
        failed(&l, "alice", A, t0);
        // Verified and right (or never verified): not a failure.
        l.reserve("alice", A, t0).unwrap();
        l.release("alice", A);
        assert!(l.check("alice", A, t0).is_ok());
        assert!(failed(&l, "alice", A, t0), "the third failure locks");
        // The address's count over all users went back too: 4 more
        // failures of others from A before it is locked (limit 5).
        let l = limiter();
        for _ in 0..10 {
            l.reserve("bob", A, t0).unwrap();
            l.release("bob", A);
        }
        for u in ["a", "b", "c", "d"] {
            assert!(!failed(&l, u, A, t0));
        }
    }

    #[test]
    fn long_user_names_share_a_key() {
        assert_eq!(user_key(&"é".repeat(100)).len(), 128);
        assert_eq!(user_key("alice"), "alice");
    }
}
