//! [`AppState`]: what every request handler shares.

use std::sync::Arc;

use mirror_core::Mirror;

use crate::accounts::Accounts;
use crate::scheduler::Scheduler;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The mirroring engine and its stores.
    pub mirror: Mirror,
    /// Users, tokens and access grants.
    pub accounts: Arc<Accounts>,
    /// Crons.
    pub scheduler: Arc<Scheduler>,
}
