//! [`AccountReadAccess`]: the engine's [`ReadAccess`] on this server's
//! accounts, so a poll links stored content without downloading it only
//! where its policy's owner could already pull it (see
//! `mirror_core::access`).

use std::sync::Arc;

use async_trait::async_trait;
use mirror_core::access::ReadAccess;
use mirror_core::store::{Repository, StoreError, Visibility};

use crate::accounts::Accounts;
use crate::auth::{Caller, access_level};

/// Reads access levels as `/v2` does: a policy owner may read what its
/// account may pull. An unknown or inactive owner (a policy saved before
/// owners were recorded, or whose account was removed) may read public
/// repositories only.
pub struct AccountReadAccess {
    accounts: Arc<Accounts>,
}

impl AccountReadAccess {
    /// Access decided by `accounts`.
    pub fn new(accounts: Arc<Accounts>) -> Self {
        AccountReadAccess { accounts }
    }
}

impl std::fmt::Debug for AccountReadAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountReadAccess")
    }
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database {
        context: "reading an account's access".into(),
        source: Box::new(e),
    }
}

#[async_trait]
impl ReadAccess for AccountReadAccess {
    async fn can_read(&self, owner: Option<&str>, repo: &Repository) -> Result<bool, StoreError> {
        let public = repo.visibility == Visibility::Public;
        let Some(name) = owner else {
            return Ok(public);
        };
        let caller = match self.accounts.get(name).await.map_err(store_error)? {
            Some(account) if account.is_active => Caller::User(account),
            _ => return Ok(public),
        };
        let level = access_level(&self.accounts, &caller, &repo.name, Some(repo.visibility))
            .await
            .map_err(store_error)?;
        Ok(level.is_some())
    }
}
