//! What this process recently learned from the account store, so that a
//! registry request (a client sends its credentials with every one) is
//! answered from memory: who a credential belongs to, and a user's level
//! on a repository, each for [`RECENT_TTL`].
//!
//! - A change made through this process (a password, an account, a
//!   token, a grant, a team or an organization) forgets everything at
//!   once. An answer looked up while such a change ran is not kept: each
//!   change bumps an epoch, and an answer is kept only under the epoch it
//!   was looked up in.
//! - A change made through another replica reaches this one within
//!   [`RECENT_TTL`].
//! - Access token uses are noted here and written in batches
//!   ([`Accounts::flush_token_uses`]), so no request writes to the
//!   database.
//!
//! Keys are SHA-256 digests of the credentials, never the credentials.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{AccessLevel, Account, AccountError, Accounts, Credential};

/// How long a looked-up answer is used before it is looked up again: how
/// long a change made through another replica can take to reach this one.
pub const RECENT_TTL: Duration = Duration::from_secs(5);

/// Answers kept at most per map; past that, expired ones are dropped, and
/// if none expired, all of them.
const MAX_KEPT: usize = 16_384;

/// How a credential was presented: the same secret as a Basic password
/// and as a bearer token are different questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Presented {
    /// `Basic user:secret`.
    Basic,
    /// `Bearer secret`.
    Bearer,
}

/// A credential's owner as last looked up.
#[derive(Debug, Clone)]
struct Owner {
    account: Account,
    credential: Credential,
    /// The access token's hash, to note its use.
    token: Option<String>,
    until: Instant,
}

/// A user's level on a repository (`None`: no access) and until when it
/// is used.
type KeptLevel = (Option<AccessLevel>, Instant);

/// The recent answers (see the module docs).
#[derive(Default)]
pub(super) struct Recent {
    epoch: AtomicU64,
    owners: Mutex<HashMap<(Presented, [u8; 32]), Owner>>,
    levels: Mutex<HashMap<(String, String), KeptLevel>>,
    token_uses: Mutex<HashMap<String, DateTime<Utc>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Inserts into a map bounded by [`MAX_KEPT`].
fn bounded_insert<K: Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    expired: impl Fn(&V) -> bool,
) {
    if map.len() >= MAX_KEPT {
        map.retain(|_, v| !expired(v));
        if map.len() >= MAX_KEPT {
            map.clear();
        }
    }
    map.insert(key, value);
}

impl Recent {
    /// The epoch to look an answer up under.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Forgets every answer: something changed through this process.
    pub(super) fn forget(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        lock(&self.owners).clear();
        lock(&self.levels).clear();
    }

    /// The owner of credential `key`, if looked up within [`RECENT_TTL`];
    /// notes an access token's use.
    pub(super) fn owner(&self, how: Presented, key: &[u8; 32]) -> Option<(Account, Credential)> {
        let owner = {
            let owners = lock(&self.owners);
            let o = owners.get(&(how, *key))?;
            if o.until <= Instant::now() {
                return None;
            }
            o.clone()
        };
        if let Some(token) = owner.token {
            self.note_token_use(token);
        }
        Some((owner.account, owner.credential))
    }

    /// Keeps `account` as the owner of credential `key`, looked up under
    /// `epoch` (dropped if anything changed since).
    pub(super) fn keep_owner(
        &self,
        epoch: u64,
        how: Presented,
        key: [u8; 32],
        account: &Account,
        credential: Credential,
        token: Option<String>,
    ) {
        let mut owners = lock(&self.owners);
        if self.epoch() != epoch {
            return;
        }
        let now = Instant::now();
        let owner = Owner {
            account: account.clone(),
            credential,
            token,
            until: now + RECENT_TTL,
        };
        bounded_insert(&mut owners, (how, key), owner, |o| o.until <= now);
    }

    /// `user`'s level on repository `repo`, if looked up within
    /// [`RECENT_TTL`].
    pub(super) fn level(&self, user: &str, repo: &str) -> Option<Option<AccessLevel>> {
        let levels = lock(&self.levels);
        let (level, until) = levels.get(&(user.to_string(), repo.to_string()))?;
        (*until > Instant::now()).then_some(*level)
    }

    /// Keeps `user`'s `level` on `repo`, looked up under `epoch`.
    pub(super) fn keep_level(
        &self,
        epoch: u64,
        user: &str,
        repo: &str,
        level: Option<AccessLevel>,
    ) {
        let mut levels = lock(&self.levels);
        if self.epoch() != epoch {
            return;
        }
        let now = Instant::now();
        let key = (user.to_string(), repo.to_string());
        bounded_insert(&mut levels, key, (level, now + RECENT_TTL), |(_, until)| {
            *until <= now
        });
    }

    /// Notes that access token `hashed` was used now.
    pub(super) fn note_token_use(&self, hashed: String) {
        let mut uses = lock(&self.token_uses);
        // Tokens are few (each made by hand); the bound only guards memory.
        if uses.len() < MAX_KEPT || uses.contains_key(&hashed) {
            uses.insert(hashed, Utc::now());
        }
    }

    /// Takes the noted token uses.
    fn take_token_uses(&self) -> Vec<(String, DateTime<Utc>)> {
        lock(&self.token_uses).drain().collect()
    }

    /// Puts back uses that could not be written (newer ones win).
    fn restore_token_uses(&self, uses: Vec<(String, DateTime<Utc>)>) {
        let mut noted = lock(&self.token_uses);
        for (hashed, at) in uses {
            let e = noted.entry(hashed).or_insert(at);
            *e = (*e).max(at);
        }
    }
}

impl Accounts {
    /// Writes the access token uses noted since the last call (kept for
    /// the next call if the write fails). The server calls it every few
    /// seconds, at shutdown, and before it lists tokens.
    pub async fn flush_token_uses(&self) -> Result<usize, AccountError> {
        let uses = self.recent.take_token_uses();
        if uses.is_empty() {
            return Ok(0);
        }
        match self.stores.tokens.touch_tokens(&uses).await {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                self.recent.restore_token_uses(uses);
                Err(e.into())
            }
        }
    }

    /// Forgets every recent answer about credentials and access: call
    /// after any change to accounts, tokens, grants, teams or
    /// organizations.
    pub fn access_changed(&self) {
        self.recent.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Account {
        Account {
            id: format!("id-{name}"),
            name: name.into(),
            full_name: String::new(),
            is_admin: false,
            is_active: true,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn answers_expire_and_a_change_forgets_them() {
        let r = Recent::default();
        let key = [7u8; 32];
        let epoch = r.epoch();
        r.keep_owner(
            epoch,
            Presented::Basic,
            key,
            &account("a"),
            Credential::Password,
            None,
        );
        assert!(r.owner(Presented::Basic, &key).is_some());
        assert!(r.owner(Presented::Bearer, &key).is_none(), "kept per kind");
        r.keep_level(epoch, "a", "a/b", Some(AccessLevel::ReadOnly));
        assert_eq!(r.level("a", "a/b"), Some(Some(AccessLevel::ReadOnly)));

        r.forget();
        assert!(r.owner(Presented::Basic, &key).is_none());
        assert_eq!(r.level("a", "a/b"), None);
        // Looked up before the change: not kept.
        r.keep_owner(
            epoch,
            Presented::Basic,
            key,
            &account("a"),
            Credential::Password,
            None,
        );
        r.keep_level(epoch, "a", "a/b", None);
        assert!(r.owner(Presented::Basic, &key).is_none());
        assert_eq!(r.level("a", "a/b"), None);
    }

    #[test]
    fn token_uses_are_noted_and_put_back() {
        let r = Recent::default();
        let epoch = r.epoch();
        let key = [1u8; 32];
        let tok = Some("h".to_string());
        r.keep_owner(
            epoch,
            Presented::Bearer,
            key,
            &account("a"),
            Credential::Token,
            tok,
        );
        r.owner(Presented::Bearer, &key).unwrap();
        let uses = r.take_token_uses();
        assert_eq!(uses.len(), 1);
        assert!(r.take_token_uses().is_empty());
        r.restore_token_uses(uses);
        assert_eq!(r.take_token_uses().len(), 1);
    }

    #[test]
    fn the_maps_are_bounded() {
        let r = Recent::default();
        let epoch = r.epoch();
        for i in 0..(MAX_KEPT + 10) {
            r.keep_level(epoch, &format!("u{i}"), "n/r", None);
        }
        assert!(lock(&r.levels).len() <= MAX_KEPT);
    }
}
