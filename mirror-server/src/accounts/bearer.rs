//! Bearer tokens: what `GET /auth/token` hands out for HTTP Basic
//! credentials, as DTR's token endpoint does, to be sent as
//! `Authorization: Bearer <token>` on `/api/v0` and `/v2`.
//!
//! - A bearer token is a 256-bit random string, valid for [`BEARER_TTL`].
//!   Only its SHA-256 is stored ([`crate::store::BearerStore`]), like an
//!   access token's; its owner is looked up at most every
//!   [`super::RECENT_TTL`], so it stops working (at once through this
//!   process, within that time through another replica) when its account
//!   is deactivated, when the access token it was minted with is
//!   deactivated or deleted, or (minted with the password) when the
//!   password changes.
//! - It acts as its account, with the rights the account has at each
//!   request, but like an access token it cannot create access tokens or
//!   change the password, and it cannot mint another bearer token: it
//!   never outlives the credentials it came from by more than its TTL.
//! - At most [`MAX_LIVE_PER_USER`] are kept per user (the oldest go), and
//!   expired ones are deleted whenever one is minted.
//!
//! An access token sent as a bearer token is accepted too
//! ([`Accounts::verify_bearer`] falls back to the access tokens).

use std::time::Duration;

use chrono::{DateTime, Utc};
use mirror_core::Secret;

use super::recent::Presented;
use super::{Account, AccountError, Accounts, Credential, random_alphanumeric, sha256_hex};
use crate::store::BearerRecord;

/// How long a bearer token is valid: long enough for a script that walks
/// every repository with one token, short enough that a leaked one soon
/// stops working.
pub const BEARER_TTL: Duration = Duration::from_secs(15 * 60);

/// Bearer tokens kept per user at most; minting more drops the oldest.
/// Registry clients following the `/v2` Bearer challenge mint one per
/// pull session, so a cluster pulling with one account's credentials
/// mints thousands within [`BEARER_TTL`]: the cap bounds the rows a user
/// can make, far above that.
#[cfg(not(test))]
pub const MAX_LIVE_PER_USER: usize = 10_000;
/// The cap in unit tests, which mint past it.
#[cfg(test)]
pub const MAX_LIVE_PER_USER: usize = 100;

/// A freshly minted bearer token.
#[derive(Debug, Clone)]
pub struct BearerToken {
    /// The token: shown once, never stored.
    pub secret: Secret,
    /// When it was minted.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl Accounts {
    /// Mints a bearer token for `account`, which authenticated with
    /// `credential`: its password, or the access token `via_token` (whose
    /// revocation then revokes the bearer token too). A bearer token
    /// cannot mint another one ([`AccountError::Invalid`] names
    /// `Authorization`).
    pub async fn issue_bearer(
        &self,
        account: &Account,
        credential: Credential,
        via_token: Option<&str>,
    ) -> Result<BearerToken, AccountError> {
        let via = match (credential, via_token) {
            (Credential::Password, _) => None,
            (Credential::Token, Some(secret)) => Some(sha256_hex(secret.as_bytes())),
            (Credential::Token, None) | (Credential::Bearer, _) => {
                return Err(AccountError::Invalid {
                    field: "Authorization",
                    reason: "a bearer token is minted from a password or an access token, not from another bearer token".into(),
                });
            }
        };
        let secret = Secret::new(random_alphanumeric(43));
        let issued_at = Utc::now();
        let expires_at = issued_at
            + chrono::Duration::from_std(BEARER_TTL).unwrap_or(chrono::Duration::minutes(15));
        let record = BearerRecord {
            hashed_token: sha256_hex(secret.expose().as_bytes()),
            username: account.name.clone(),
            via_token: via,
            created_at: issued_at,
            expires_at,
        };
        self.stores
            .bearers
            .insert_bearer(&record, MAX_LIVE_PER_USER)
            .await?;
        Ok(BearerToken {
            secret,
            issued_at,
            expires_at,
        })
    }

    /// The active account whose live bearer token `secret` is
    /// ([`Credential::Bearer`]), or whose active access token it is
    /// ([`Credential::Token`], its use noted); `None` otherwise. An answer
    /// is kept for [`super::RECENT_TTL`], so on another replica than the
    /// one that revoked it, a token works at most that long after.
    pub async fn verify_bearer(
        &self,
        secret: &str,
    ) -> Result<Option<(Account, Credential)>, AccountError> {
        use sha2::Digest as _;
        let key: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        if let Some(known) = self.recent.owner(Presented::Bearer, &key) {
            return Ok(Some(known));
        }
        let epoch = self.recent.epoch();
        let hashed = hex::encode(key);
        let found = self
            .stores
            .bearers
            .bearer_account(&hashed, Utc::now())
            .await?;
        if let Some((account, credential)) = &found {
            let token = (*credential == Credential::Token).then_some(hashed);
            if let Some(t) = &token {
                self.recent.note_token_use(t.clone());
            }
            self.recent
                .keep_owner(epoch, Presented::Bearer, key, account, *credential, token);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::test_user;
    use crate::store::ServerStores;

    async fn store(dir: &std::path::Path) -> (Accounts, Account) {
        let accounts = Accounts::new(ServerStores::sqlite(dir).unwrap());
        let alice = accounts.create(test_user("alice")).await.unwrap();
        (accounts, alice)
    }

    #[tokio::test]
    async fn bearers_follow_what_they_were_minted_with() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, alice) = store(dir.path()).await;
        let bearer = |b: &BearerToken| b.secret.expose().to_string();
        let check = |secret: String| {
            let accounts = &accounts;
            async move { accounts.verify_bearer(&secret).await.unwrap().map(|f| f.1) }
        };

        // From the password: valid until the password changes.
        let from_password = accounts
            .issue_bearer(&alice, Credential::Password, None)
            .await
            .unwrap();
        assert!(
            from_password.expires_at - from_password.issued_at <= chrono::Duration::minutes(15)
        );
        assert_eq!(
            check(bearer(&from_password)).await,
            Some(Credential::Bearer)
        );
        assert_eq!(check("not-a-token".into()).await, None);

        // From an access token: follows the token; the token itself works
        // as a bearer token.
        let (token, token_secret) = accounts.create_token("alice", "ci").await.unwrap();
        let from_token = accounts
            .issue_bearer(&alice, Credential::Token, Some(token_secret.expose()))
            .await
            .unwrap();
        assert_eq!(check(bearer(&from_token)).await, Some(Credential::Bearer));
        assert_eq!(
            check(token_secret.expose().to_string()).await,
            Some(Credential::Token)
        );
        accounts
            .update_token("alice", &token.hashed_token, None, Some(false), false)
            .await
            .unwrap();
        assert_eq!(check(bearer(&from_token)).await, None);
        assert_eq!(check(token_secret.expose().to_string()).await, None);
        assert_eq!(
            check(bearer(&from_password)).await,
            Some(Credential::Bearer)
        );

        // A bearer token mints nothing.
        assert!(matches!(
            accounts
                .issue_bearer(&alice, Credential::Bearer, None)
                .await,
            Err(AccountError::Invalid { .. })
        ));

        // A password change ends the password's bearer tokens.
        accounts
            .change_password("alice", &Secret::new("battery-staple".to_string()))
            .await
            .unwrap();
        assert_eq!(check(bearer(&from_password)).await, None);

        // A deactivated account's bearer tokens stop at once.
        let again = accounts
            .issue_bearer(&alice, Credential::Password, None)
            .await
            .unwrap();
        accounts
            .update("alice", None, None, Some(false))
            .await
            .unwrap();
        assert_eq!(check(bearer(&again)).await, None);
    }

    #[tokio::test]
    async fn old_bearers_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let (accounts, alice) = store(dir.path()).await;
        let mut minted = Vec::new();
        for _ in 0..MAX_LIVE_PER_USER + 5 {
            minted.push(
                accounts
                    .issue_bearer(&alice, Credential::Password, None)
                    .await
                    .unwrap(),
            );
            // Distinct creation times, so "oldest" is well defined.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let live = accounts.stores.bearers.bearer_count("alice").await.unwrap();
        assert_eq!(live as usize, MAX_LIVE_PER_USER);
        let first = minted[0].secret.expose().to_string();
        let last = minted.last().unwrap().secret.expose().to_string();
        assert!(accounts.verify_bearer(&first).await.unwrap().is_none());
        assert!(accounts.verify_bearer(&last).await.unwrap().is_some());
    }
}
