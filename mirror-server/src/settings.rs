//! [`Settings`]: the server settings an administrator changes at run time
//! (DTR's `/api/v0/meta/settings`), kept in `server.db` and read from
//! memory on every request that needs them.
//!
//! Only the settings this server acts on are kept:
//! `createRepositoryOnPush` (a push to a missing repository in a namespace
//! the caller may write creates it, private; off by default, as in DTR).

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::db::{DbError, ServerDb};

/// The `meta` key the settings are stored under.
const KEY: &str = "settings";

/// The settings (DTR's `Settings`, the fields this server acts on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// A push to a missing repository creates it.
    #[serde(default)]
    pub create_repository_on_push: bool,
}

/// A partial update (DTR's settings form; fields left out are kept).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsForm {
    /// New value of [`Settings::create_repository_on_push`].
    #[serde(default)]
    pub create_repository_on_push: Option<bool>,
}

/// The settings, stored and cached.
pub struct SettingsStore {
    db: ServerDb,
    current: RwLock<Settings>,
}

impl SettingsStore {
    /// Loads the settings from `db` (the defaults when none were saved).
    pub async fn open(db: ServerDb) -> Result<Self, DbError> {
        let stored: Option<String> = db
            .with("reading the settings", |c| {
                use rusqlite::OptionalExtension;
                c.query_row("SELECT value FROM meta WHERE key=?1", [KEY], |r| r.get(0))
                    .optional()
            })
            .await?;
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
        self.db
            .with("saving the settings", move |c| {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [KEY, text.as_str()],
                )
            })
            .await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        Ok(next)
    }
}
