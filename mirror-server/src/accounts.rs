//! Accounts: users, their access tokens and their per-repository access
//! levels, held by the server's stores (`crate::store`: `server.db` or
//! PostgreSQL).
//!
//! Passwords are stored as salted Argon2id hashes. Verifying one costs tens
//! of milliseconds on purpose, and registry clients send Basic credentials
//! with every request, so a successful verification is remembered for
//! [`VERIFIED_TTL`] keyed by `sha256(user, password)` (never the password
//! itself). Concurrent requests with the same credentials and no
//! remembered verification (the first pull, or every 60 s: docker fetches
//! layers in parallel) share one Argon2id run instead of starting one each.
//! Access tokens are 256-bit random strings; only their SHA-256 is
//! stored (a slow hash adds nothing to that much entropy), so they are
//! checked with one indexed lookup. Who a credential belongs to, and a
//! user's level on a repository, are then kept for [`RECENT_TTL`]
//! ([`recent`]), so requests do not go to the database. Revoking a token
//! (`delete_token`, or `update_token` to inactive), changing a password,
//! an account, a grant, a team or an organization forgets all of that
//! in this process, so the change takes effect at once here; other
//! replicas see it within [`RECENT_TTL`].
//!
//! Logins are counted by a [`LoginLimiter`] (per user and client address):
//! a password check takes a slot *before* Argon2id runs and gives it back
//! when the password was right, so concurrent guesses cannot outrun the
//! limit. At most [`argon2_permits`] Argon2id runs (each a 19 MiB block)
//! happen at once; others wait up to [`ARGON2_WAIT`], then are refused
//! ([`AccountError::Busy`]). An unknown or inactive user costs one Argon2id
//! run against a dummy hash, like a known one, so answer times do not tell
//! which user names exist.
//!
//! A token deactivated by an administrator records that
//! (`revoked_by_admin`): only an administrator can re-enable it.
//!
//! [`bearer`]: short-lived bearer tokens minted by `GET /auth/token`.
//!
//! This module knows nothing about HTTP; `auth.rs` turns headers into calls.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use mirror_core::{RepositoryName, Secret};
use sha2::{Digest as _, Sha256};

use crate::login_limit::{Limited, LoginLimiter};
use crate::store::records::AccessMap;
use crate::store::{AccountChange, DbError, ServerStores, TokenChange, TokenUpdate};

pub mod bearer;
mod recent;

pub use recent::RECENT_TTL;

/// How long a verified (user, password) pair is trusted without re-hashing.
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// The user created on first start.
pub const ADMIN_USER: &str = "admin";

/// Shortest password accepted for a new account.
pub const MIN_PASSWORD_LEN: usize = 8;

/// How long a password check (or hash) waits for one of the
/// [`argon2_permits`] before it is refused as [`AccountError::Busy`].
pub const ARGON2_WAIT: Duration = Duration::from_secs(10);

/// How many Argon2id runs may happen at once: one per core, at most 4
/// (each holds a 19 MiB block while it runs).
pub fn argon2_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The hash an unknown or inactive user's password is checked against, so
/// that a login costs the same whether the user exists or not. Made with
/// the same parameters as every stored hash, from a random password that
/// is thrown away (so nothing ever matches it).
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&random_alphanumeric(32)).unwrap_or_default());

pub use crate::store::records::{AccessLevel, Account, ApiToken, Credential};

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name.
    pub name: String,
    /// Initial password.
    pub password: Secret,
    /// Display name.
    pub full_name: String,
    /// Server administrator.
    pub is_admin: bool,
    /// Can log in.
    pub is_active: bool,
}

/// Errors of account operations.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The API field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The account already exists.
    #[error("account {name:?} already exists")]
    Exists {
        /// The name.
        name: String,
    },
    /// No such account.
    #[error("no account named {name:?}")]
    NoSuchAccount {
        /// The name.
        name: String,
    },
    /// Too many failed logins of this user from this address (or from this
    /// address): refused without checking the password.
    #[error("too many failed logins; try again in {} s", retry_after.as_secs().max(1))]
    TooManyFailures {
        /// Until the client may try again.
        retry_after: Duration,
    },
    /// Every Argon2id permit stayed taken for [`ARGON2_WAIT`].
    #[error("too many password checks are under way; try again in a moment")]
    Busy,
    /// A user tried to re-enable a token an administrator revoked.
    #[error("an administrator revoked this token; only an administrator can re-enable it")]
    RevokedByAdmin,
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The account store with its verification cache.
pub struct Accounts {
    stores: ServerStores,
    /// `sha256(user \0 secret)` of recently verified passwords → the user
    /// and the expiry (the user, so that a change forgets its entries).
    verified: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Password checks under way, by `sha256(user, password, stored hash)`
    /// (the stored hash, so a check against a replaced password is never
    /// joined): callers with the same credentials wait for one result.
    checking: Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<SharedCheck>>>>,
    /// Argon2id verifications run so far.
    password_checks: AtomicU64,
    /// Argon2id runs allowed at once ([`argon2_permits`]).
    argon2: Arc<tokio::sync::Semaphore>,
    /// Login attempts by user and address.
    limiter: LoginLimiter,
    /// Recent answers about credentials and access ([`recent`]).
    recent: recent::Recent,
}

/// Why a password was not checked.
#[derive(Debug, Clone, Copy)]
enum NotChecked {
    /// The user (or address) is locked out for this long.
    Limited(Duration),
    /// No Argon2id permit came free in time.
    Busy,
}

/// The result of one password check, shared by the callers that sent the
/// same credentials at once: whether the password matched.
type SharedCheck = Result<bool, NotChecked>;

impl From<NotChecked> for AccountError {
    fn from(n: NotChecked) -> Self {
        match n {
            NotChecked::Limited(retry_after) => AccountError::TooManyFailures { retry_after },
            NotChecked::Busy => AccountError::Busy,
        }
    }
}

impl From<Limited> for AccountError {
    fn from(l: Limited) -> Self {
        AccountError::TooManyFailures {
            retry_after: l.retry_after,
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn cache_key(user: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Checks a user name: one lower-case path component of the OCI name
/// grammar, because it doubles as the user's namespace.
pub fn validate_username(name: &str) -> Result<(), AccountError> {
    if name.contains('/') || RepositoryName::parse(name).is_err() {
        return Err(AccountError::Invalid {
            field: "name",
            reason: format!(
                "{:?} is not a valid user name: use lower-case letters and digits, separated by '.', '_', '__' or '-'",
                name.chars().take(100).collect::<String>()
            ),
        });
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random secret of `len` alphanumeric characters.
fn random_alphanumeric(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Accounts {
    /// The accounts in `stores`, with the default login limits.
    pub fn new(stores: ServerStores) -> Self {
        Accounts::with_limiter(stores, LoginLimiter::default())
    }

    /// The accounts in `stores`, counting failed logins with `limiter`.
    pub fn with_limiter(stores: ServerStores, limiter: LoginLimiter) -> Self {
        Accounts {
            stores,
            verified: Mutex::new(HashMap::new()),
            checking: Mutex::new(HashMap::new()),
            password_checks: AtomicU64::new(0),
            argon2: Arc::new(tokio::sync::Semaphore::new(argon2_permits())),
            limiter,
            recent: recent::Recent::default(),
        }
    }

    /// Login attempts by user and address.
    pub fn limiter(&self) -> &LoginLimiter {
        &self.limiter
    }

    /// Runs `f` (one Argon2id hash or verification) on the blocking pool
    /// once an Argon2id permit is free, waiting at most [`ARGON2_WAIT`].
    /// The permit goes with the task, so a caller that gives up does not
    /// free it while Argon2id still runs.
    async fn argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = tokio::time::timeout(ARGON2_WAIT, self.argon2.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(AccountError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))
    }

    /// Checks `password` against `hash` for `user` from `client`. The
    /// attempt is counted by the login limiter *before* Argon2id runs
    /// (refused with [`AccountError::TooManyFailures`] when the user or
    /// address is locked out), and its slot given back when the password
    /// matches or could not be checked.
    async fn counted_check(
        &self,
        user: &str,
        client: IpAddr,
        password: String,
        hash: String,
    ) -> Result<bool, AccountError> {
        let locks = self.limiter.reserve(user, client, Instant::now())?;
        let matched = match self.argon2(move || verify_password(&password, &hash)).await {
            Ok(m) => m,
            Err(e) => {
                self.limiter.release(user, client);
                return Err(e);
            }
        };
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        if matched {
            self.limiter.release(user, client);
            self.limiter.succeeded(user, client);
        } else if locks {
            let limits = self.limiter.limits();
            tracing::warn!(
                user = %user.chars().take(64).collect::<String>(),
                %client,
                window_secs = limits.window.as_secs(),
                "too many failed logins: refusing this user (or address) for the rest of the window"
            );
        }
        Ok(matched)
    }

    /// [`Self::counted_check`], shared by the callers that send the same
    /// credentials at once (`key` is their [`cache_key`]): one Argon2id run
    /// and one counted attempt for all of them.
    async fn shared_check(
        &self,
        user: &str,
        client: IpAddr,
        key: [u8; 32],
        password: &str,
        hash: String,
    ) -> Result<bool, AccountError> {
        let check_key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(key);
            h.update(hash.as_bytes());
            h.finalize().into()
        };
        let cell = self
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(check_key)
            .or_default()
            .clone();
        let outcome = *cell
            .get_or_init(|| async {
                match self
                    .counted_check(user, client, password.to_string(), hash)
                    .await
                {
                    Ok(matched) => Ok(matched),
                    Err(AccountError::TooManyFailures { retry_after }) => {
                        Err(NotChecked::Limited(retry_after))
                    }
                    Err(AccountError::Busy) => Err(NotChecked::Busy),
                    Err(e) => {
                        tracing::error!("checking a password failed: {e}");
                        Ok(false)
                    }
                }
            })
            .await;
        // Done: later callers use the cache (or, after a failure, check
        // again). Removed only if it is still this check's entry.
        {
            let mut checking = self.checking.lock().unwrap_or_else(|p| p.into_inner());
            if checking
                .get(&check_key)
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
            {
                checking.remove(&check_key);
            }
        }
        Ok(outcome?)
    }

    /// Forgets the remembered verifications of `user` (after a change of
    /// its password or account).
    fn forget_verified(&self, user: &str) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (u, _)| u != user);
        self.access_changed();
    }

    /// Creates the `admin` account if it does not exist: with `password`
    /// when given, else with a random one that is returned so the caller
    /// can show it once. Returns `None` when nothing was generated.
    pub async fn bootstrap_admin(
        &self,
        password: Option<&Secret>,
    ) -> Result<Option<Secret>, AccountError> {
        // The dummy hash is made now, off the async threads, rather than
        // during the first login of an unknown user.
        self.argon2(|| LazyLock::force(&DUMMY_HASH).len()).await?;
        if self.get(ADMIN_USER).await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.clone(), false),
            None => (Secret::new(random_alphanumeric(24)), true),
        };
        let created = self
            .create(NewAccount {
                name: ADMIN_USER.into(),
                password: password.clone(),
                full_name: "Administrator".into(),
                is_admin: true,
                is_active: true,
            })
            .await;
        match created {
            Ok(_) => Ok(generated.then_some(password)),
            // Another process created it between our check and insert.
            Err(AccountError::Exists { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an account.
    pub async fn create(&self, new: NewAccount) -> Result<Account, AccountError> {
        validate_username(&new.name)?;
        if new.password.expose().chars().count() < MIN_PASSWORD_LEN {
            return Err(AccountError::Invalid {
                field: "password",
                reason: format!("must be at least {MIN_PASSWORD_LEN} characters"),
            });
        }
        if new.full_name.len() > 255 {
            return Err(AccountError::Invalid {
                field: "fullName",
                reason: "longer than 255 characters".into(),
            });
        }
        if self.stores.orgs.org(&new.name).await?.is_some() {
            return Err(AccountError::Exists { name: new.name });
        }
        let password = new.password.clone();
        let hash = self
            .argon2(move || hash_password(password.expose()))
            .await??;
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            name: new.name,
            full_name: new.full_name,
            is_admin: new.is_admin,
            is_active: new.is_active,
            created_at: Utc::now(),
        };
        if !self.stores.accounts.insert_account(&account, &hash).await? {
            return Err(AccountError::Exists { name: account.name });
        }
        self.access_changed();
        Ok(account)
    }

    /// One account, or `None`.
    pub async fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.stores.accounts.account(name).await?)
    }

    /// Every account, by name.
    pub async fn list(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.stores.accounts.accounts().await?)
    }

    /// The active account `user`, and which credential matched, if
    /// `secret` is its password or one of its active access tokens; `None`
    /// otherwise. Logins from `client` are limited (see the module docs):
    /// a locked-out user is refused with [`AccountError::TooManyFailures`]
    /// before anything is checked.
    pub async fn verify(
        &self,
        user: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<Option<(Account, Credential)>, AccountError> {
        self.limiter.check(user, client, Instant::now())?;
        let key = cache_key(user, secret);
        if let Some(known) = self.recent.owner(recent::Presented::Basic, &key) {
            self.limiter.succeeded(user, client);
            return Ok(Some(known));
        }
        let epoch = self.recent.epoch();
        let hashed_token = sha256_hex(secret.as_bytes());
        let found = self.stores.accounts.login(user, &hashed_token).await?;
        // Read after the lookup: a check that ended while it ran (queued
        // behind other requests' lookups) is remembered by now, and not
        // repeated.
        let cached = {
            let map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&key).is_some_and(|(_, exp)| *exp > Instant::now())
        };
        let Some((account, hash, is_token)) = found.filter(|(a, _, _)| a.is_active) else {
            // Unknown or inactive: the same Argon2id cost as a known user
            // (and counted the same), never a match.
            self.shared_check(user, client, key, secret, DUMMY_HASH.clone())
                .await?;
            return Ok(None);
        };
        if is_token {
            self.limiter.succeeded(user, client);
            self.recent.note_token_use(hashed_token.clone());
            let (how, token) = (recent::Presented::Basic, Some(hashed_token));
            let credential = Credential::Token;
            self.recent
                .keep_owner(epoch, how, key, &account, credential, token);
            return Ok(Some((account, credential)));
        }
        if !cached {
            if !self.shared_check(user, client, key, secret, hash).await? {
                return Ok(None);
            }
            let mut map = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 4096 {
                let now = Instant::now();
                map.retain(|_, (_, exp)| *exp > now);
            }
            map.insert(key, (account.name.clone(), Instant::now() + VERIFIED_TTL));
        } else {
            self.limiter.succeeded(user, client);
        }
        let credential = Credential::Password;
        self.recent.keep_owner(
            epoch,
            recent::Presented::Basic,
            key,
            &account,
            credential,
            None,
        );
        Ok(Some((account, credential)))
    }

    /// How many Argon2id password verifications have run (the rest were
    /// answered by the cache, by a check already under way, or were tokens).
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }

    /// Sets the password of `user` (checked like a new account's). Every
    /// remembered verification of the old one is forgotten.
    pub async fn change_password(&self, user: &str, password: &Secret) -> Result<(), AccountError> {
        if password.expose().chars().count() < MIN_PASSWORD_LEN {
            return Err(AccountError::Invalid {
                field: "newPassword",
                reason: format!("must be at least {MIN_PASSWORD_LEN} characters"),
            });
        }
        let p = password.clone();
        let hash = self.argon2(move || hash_password(p.expose())).await??;
        // Also ends the bearer tokens minted with the old password.
        let changed = self.stores.accounts.set_password_hash(user, &hash).await?;
        // After the update: a verification racing with it cannot be
        // remembered past this point with the old password.
        self.forget_verified(user);
        if !changed {
            return Err(AccountError::NoSuchAccount { name: user.into() });
        }
        Ok(())
    }

    /// Whether `password` is `user`'s password (not an access token),
    /// checked from `client` like a login: limited, counted before
    /// Argon2id runs, and as costly for an unknown user.
    pub async fn check_password(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<bool, AccountError> {
        let hash = self.stores.accounts.password_hash(user).await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let matched = self
            .counted_check(user, client, password.to_string(), hash)
            .await?;
        Ok(known && matched)
    }

    /// Changes the display name, administrator flag or active flag of
    /// `user` (`None` keeps a field). Returns the account as changed.
    pub async fn update(
        &self,
        user: &str,
        full_name: Option<String>,
        is_admin: Option<bool>,
        is_active: Option<bool>,
    ) -> Result<Account, AccountError> {
        if full_name.as_ref().is_some_and(|f| f.len() > 255) {
            return Err(AccountError::Invalid {
                field: "fullName",
                reason: "longer than 255 characters".into(),
            });
        }
        let change = AccountChange {
            full_name,
            is_admin,
            is_active,
        };
        let changed = self.stores.accounts.update_account(user, &change).await?;
        self.forget_verified(user);
        if !changed {
            return Err(AccountError::NoSuchAccount { name: user.into() });
        }
        self.get(user)
            .await?
            .ok_or_else(|| AccountError::NoSuchAccount { name: user.into() })
    }

    /// Changes the label or active flag of a token of `user` (`None` keeps
    /// a field); an inactive token is refused from the next request on.
    /// `by_admin`: a server administrator asks. A token an administrator
    /// deactivated can be re-enabled only by an administrator
    /// ([`AccountError::RevokedByAdmin`]). Returns the token, or `None`
    /// when `user` has no such token.
    pub async fn update_token(
        &self,
        user: &str,
        hashed_token: &str,
        label: Option<String>,
        is_active: Option<bool>,
        by_admin: bool,
    ) -> Result<Option<ApiToken>, AccountError> {
        if label.as_ref().is_some_and(|l| l.len() > 255) {
            return Err(AccountError::Invalid {
                field: "tokenLabel",
                reason: "longer than 255 characters".into(),
            });
        }
        let change = TokenChange {
            label,
            is_active,
            by_admin,
        };
        let found = self
            .stores
            .tokens
            .update_token(user, hashed_token, &change)
            .await?;
        self.access_changed();
        match found {
            TokenUpdate::Missing => return Ok(None),
            TokenUpdate::RevokedByAdmin => return Err(AccountError::RevokedByAdmin),
            TokenUpdate::Updated => {}
        }
        Ok(self
            .tokens(user)
            .await?
            .into_iter()
            .find(|t| t.hashed_token == hashed_token))
    }

    /// Creates an access token for `user`; returns it with its secret, which
    /// is shown once and never stored.
    pub async fn create_token(
        &self,
        user: &str,
        label: &str,
    ) -> Result<(ApiToken, Secret), AccountError> {
        if label.len() > 255 {
            return Err(AccountError::Invalid {
                field: "tokenLabel",
                reason: "longer than 255 characters".into(),
            });
        }
        if self.get(user).await?.is_none() {
            return Err(AccountError::NoSuchAccount { name: user.into() });
        }
        let secret = Secret::new(random_alphanumeric(43));
        let token = ApiToken {
            hashed_token: sha256_hex(secret.expose().as_bytes()),
            label: label.to_string(),
            is_active: true,
            username: user.to_string(),
            created_at: Utc::now(),
            last_used: None,
        };
        self.stores.tokens.insert_token(&token).await?;
        Ok((token, secret))
    }

    /// The tokens of `user`, newest first.
    pub async fn tokens(&self, user: &str) -> Result<Vec<ApiToken>, AccountError> {
        if let Err(e) = self.flush_token_uses().await {
            tracing::warn!("recording access token uses failed (kept for the next try): {e}");
        }
        Ok(self.stores.tokens.tokens(user).await?)
    }

    /// Deletes a token of `user`. Returns whether it existed.
    pub async fn delete_token(&self, user: &str, hashed_token: &str) -> Result<bool, AccountError> {
        let deleted = self.stores.tokens.delete_token(user, hashed_token).await?;
        self.access_changed();
        Ok(deleted)
    }

    /// The highest level `user` holds on `repo` through their own grant,
    /// their teams and their organizations, if any.
    pub async fn levels(
        &self,
        user: &str,
        repo: &RepositoryName,
    ) -> Result<Option<AccessLevel>, AccountError> {
        if let Some(level) = self.recent.level(user, repo.as_str()) {
            return Ok(level);
        }
        let epoch = self.recent.epoch();
        let level = self
            .stores
            .orgs
            .levels(user, repo.as_str(), repo.owner_namespace())
            .await?;
        self.recent.keep_level(epoch, user, repo.as_str(), level);
        Ok(level)
    }

    /// Every level `user` holds (own grants, teams, organizations), by
    /// repository and by namespace.
    pub async fn access_map(&self, user: &str) -> Result<AccessMap, AccountError> {
        Ok(self.stores.orgs.access_map(user).await?)
    }

    /// Every explicit grant on `repo`: (user, level), by user.
    pub async fn grants_on(
        &self,
        repo: &RepositoryName,
    ) -> Result<Vec<(String, AccessLevel)>, AccountError> {
        Ok(self.stores.grants.grants_on(repo.as_str()).await?)
    }

    /// Grants `level` on `repo` to `user` (replacing an earlier grant).
    pub async fn set_grant(
        &self,
        user: &str,
        repo: &RepositoryName,
        level: AccessLevel,
    ) -> Result<(), AccountError> {
        if self.get(user).await?.is_none() {
            return Err(AccountError::NoSuchAccount { name: user.into() });
        }
        self.stores
            .grants
            .set_grant(user, repo.as_str(), level)
            .await?;
        self.access_changed();
        Ok(())
    }

    /// Removes the grant of `user` on `repo`. Returns whether it existed.
    pub async fn remove_grant(
        &self,
        user: &str,
        repo: &RepositoryName,
    ) -> Result<bool, AccountError> {
        let removed = self.stores.grants.remove_grant(user, repo.as_str()).await?;
        self.access_changed();
        Ok(removed)
    }

    /// Removes every grant on `repo` (when the repository is deleted, so a
    /// later repository of the same name does not inherit them).
    pub async fn forget_repository(&self, repo: &RepositoryName) -> Result<(), AccountError> {
        self.stores.grants.remove_grants_on(repo.as_str()).await?;
        self.access_changed();
        Ok(())
    }
}

/// An active, non-admin account named `name` with the password
/// `correct-horse`, for unit tests.
#[cfg(test)]
pub(crate) fn test_user(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        password: Secret::new("correct-horse".to_string()),
        full_name: String::new(),
        is_admin: false,
        is_active: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login_limit::LoginLimits;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// An account store in `dir` with `alice` (password `correct-horse`)
    /// and login limits of `max_failures`.
    async fn store(dir: &std::path::Path, max_failures: u32) -> Arc<Accounts> {
        let limiter = LoginLimiter::new(LoginLimits {
            max_failures,
            max_failures_per_address: 10 * max_failures,
            ..LoginLimits::default()
        });
        let accounts = Arc::new(Accounts::with_limiter(
            ServerStores::sqlite(dir).unwrap(),
            limiter,
        ));
        accounts.create(test_user("alice")).await.unwrap();
        accounts
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_share_one_password_check() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = store(dir.path(), 1000).await;
        let many = |password: &'static str| {
            let accounts = accounts.clone();
            async move {
                let tasks: Vec<_> = (0..50)
                    .map(|_| {
                        let a = accounts.clone();
                        tokio::spawn(
                            async move { a.verify("alice", password, CLIENT).await.unwrap() },
                        )
                    })
                    .collect();
                let mut found = Vec::new();
                for t in tasks {
                    found.push(t.await.unwrap().is_some());
                }
                found
            }
        };
        // 50 parallel requests with no remembered verification: one hash.
        assert!(many("correct-horse").await.into_iter().all(|ok| ok));
        assert_eq!(accounts.password_checks(), 1);
        // Remembered now: no more hashing.
        assert!(many("correct-horse").await.into_iter().all(|ok| ok));
        assert_eq!(accounts.password_checks(), 1);
        // Wrong passwords are refused; sharing a check never lets a wrong
        // one through.
        assert!(many("wrong-guess").await.into_iter().all(|ok| !ok));
        let after_wrong = accounts.password_checks();
        assert!((2..=51).contains(&after_wrong), "{after_wrong}");
        // A new password is checked against the new hash, the old one fails.
        accounts
            .change_password("alice", &Secret::new("battery-staple".to_string()))
            .await
            .unwrap();
        assert!(many("battery-staple").await.into_iter().all(|ok| ok));
        assert!(many("correct-horse").await.into_iter().all(|ok| !ok));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_guesses_are_counted_before_they_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = store(dir.path(), 10).await;
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let a = accounts.clone();
                tokio::spawn(async move { a.verify("alice", &format!("guess-{i}"), CLIENT).await })
            })
            .collect();
        let (mut wrong, mut limited) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(None) => wrong += 1,
                Err(AccountError::TooManyFailures { .. }) => limited += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((wrong, limited), (10, 90));
        assert_eq!(accounts.password_checks(), 10);
        // Locked now, even with the right password, which is not checked.
        let e = accounts.verify("alice", "correct-horse", CLIENT).await;
        assert!(
            matches!(e, Err(AccountError::TooManyFailures { .. })),
            "{e:?}"
        );
        assert_eq!(accounts.password_checks(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_and_inactive_users_cost_a_check_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = store(dir.path(), 2).await;
        assert!(
            accounts
                .verify("nobody", "x", CLIENT)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(accounts.password_checks(), 1);
        accounts
            .update("alice", None, None, Some(false))
            .await
            .unwrap();
        let right = accounts.verify("alice", "correct-horse", CLIENT).await;
        assert!(right.unwrap().is_none(), "inactive");
        assert_eq!(accounts.password_checks(), 2);
        // Unknown users are limited like known ones.
        assert!(
            accounts
                .verify("nobody", "y", CLIENT)
                .await
                .unwrap()
                .is_none()
        );
        let e = accounts.verify("nobody", "z", CLIENT).await;
        assert!(
            matches!(e, Err(AccountError::TooManyFailures { .. })),
            "{e:?}"
        );
        assert!(
            !accounts
                .check_password("nobody2", "x", CLIENT)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_right_password_gives_its_slot_back() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = store(dir.path(), 3).await;
        for _ in 0..2 {
            assert!(
                accounts
                    .verify("alice", "bad", CLIENT)
                    .await
                    .unwrap()
                    .is_none()
            );
            let (_, how) = accounts
                .verify("alice", "correct-horse", CLIENT)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(how, Credential::Password);
            assert!(
                accounts
                    .check_password("alice", "correct-horse", CLIENT)
                    .await
                    .unwrap()
            );
        }
        // Two failures only, each reset by a success: still not locked.
        for _ in 0..2 {
            assert!(
                !accounts
                    .check_password("alice", "bad", CLIENT)
                    .await
                    .unwrap()
            );
        }
        assert!(
            accounts
                .verify("alice", "correct-horse", CLIENT)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn only_an_admin_re_enables_what_an_admin_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = store(dir.path(), 10).await;
        let (token, secret) = accounts.create_token("alice", "ci").await.unwrap();
        let h = token.hashed_token.as_str();
        let (_, how) = accounts
            .verify("alice", secret.expose(), CLIENT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(how, Credential::Token);
        let set = |active: bool, by_admin: bool| {
            let accounts = accounts.clone();
            let h = h.to_string();
            async move {
                accounts
                    .update_token("alice", &h, None, Some(active), by_admin)
                    .await
            }
        };
        // Revoked and re-enabled by the user: fine.
        assert!(!set(false, false).await.unwrap().unwrap().is_active);
        assert!(set(true, false).await.unwrap().unwrap().is_active);
        // Revoked by an administrator: the user cannot undo it, not even
        // by revoking it again first; relabelling is still allowed.
        set(false, true).await.unwrap();
        assert!(matches!(
            set(true, false).await,
            Err(AccountError::RevokedByAdmin)
        ));
        set(false, false).await.unwrap();
        assert!(matches!(
            set(true, false).await,
            Err(AccountError::RevokedByAdmin)
        ));
        let relabelled = accounts
            .update_token("alice", h, Some("old".into()), None, false)
            .await
            .unwrap()
            .unwrap();
        assert!(!relabelled.is_active);
        assert!(
            accounts
                .verify("alice", secret.expose(), CLIENT)
                .await
                .unwrap()
                .is_none()
        );
        // An administrator can; after that the user's own rules apply again.
        assert!(set(true, true).await.unwrap().unwrap().is_active);
        set(false, false).await.unwrap();
        assert!(set(true, false).await.unwrap().unwrap().is_active);
        assert!(
            accounts
                .update_token("alice", "nope", None, Some(true), false)
                .await
                .unwrap()
                .is_none()
        );
    }
}
