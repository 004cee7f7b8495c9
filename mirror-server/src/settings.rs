//! [`Settings`]: the server settings an administrator changes at run time
//! (DTR's `/api/v0/meta/settings`), kept in the server's [`MetaStore`]
//! and read from memory on every request that needs them (so a replica
//! sees another's change at its next start).
//!
//! Only the settings this server acts on are kept:
//! `createRepositoryOnPush` (a push to a missing repository in a namespace
//! the caller may write creates it, private; off by default, as in DTR).

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::store::{DbError, MetaStore};

/// The `meta` key the settings are stored under.
const KEY: &str = "settings";

/// The settings (DTR's `Settings`, the fields this server acts on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// A push to a missing repository in a namespace the caller may write
    /// creates it (private). Off by default.
    #[serde(default)]
    pub create_repository_on_push: bool,
}

/// A partial update (DTR's settings form; fields left out are kept, other
/// DTR fields are accepted and ignored).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = SettingsUpdate)]
#[serde(rename_all = "camelCase")]
pub struct SettingsForm {
    /// The new `createRepositoryOnPush` ([`Settings::create_repository_on_push`]);
    /// left out, it is kept.
    #[serde(default)]
    pub create_repository_on_push: Option<bool>,
}

/// The settings, stored and cached.
pub struct SettingsStore {
    db: Arc<dyn MetaStore>,
    current: RwLock<Settings>,
}

impl SettingsStore {
    /// Loads the settings from `db` (the defaults when none were saved).
    pub async fn open(db: Arc<dyn MetaStore>) -> Result<Self, DbError> {
        let stored = db.meta(KEY).await?;
        let current = stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Ok(SettingsStore {
            db,
            current: RwLock::new(current),
        })
    }

    /// The settings now.
    pub fn get(&self) -> Settings {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `form`, saves and returns the result.
    pub async fn update(&self, form: SettingsForm) -> Result<Settings, DbError> {
        let mut next = self.get();
        if let Some(v) = form.create_repository_on_push {
            next.create_repository_on_push = v;
        }
        let text = serde_json::to_string(&next).expect("settings serialize");
        self.db.set_meta(KEY, &text).await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        Ok(next)
    }
}
