//! [`AppState`]: what every request handler shares.

use std::sync::Arc;

use mirror_core::Mirror;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::orgs::Organizations;
use crate::scheduler::Scheduler;
use crate::settings::SettingsStore;
use crate::tls::ServerTls;
use crate::uploads::UploadSessions;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The mirroring engine and its stores.
    pub mirror: Mirror,
    /// Users, tokens and access grants.
    pub accounts: Arc<Accounts>,
    /// Organizations, teams and team grants.
    pub orgs: Arc<Organizations>,
    /// Crons.
    pub scheduler: Arc<Scheduler>,
    /// Blob uploads in progress (`/v2` push).
    pub uploads: Arc<UploadSessions>,
    /// Settings changed at run time (`/api/v0/meta/settings`).
    pub settings: Arc<SettingsStore>,
    /// Canceled when the server shuts down: long-lived responses (a
    /// followed job log) end then, so graceful shutdown does not wait on
    /// them.
    pub shutdown: CancellationToken,
    /// The server's TLS certificate (`None`: plain HTTP), for `/ca`.
    pub tls: Option<Arc<ServerTls>>,
    /// Blob `GET`s redirect to presigned URLs valid this long, when the
    /// blob store makes them (`[s3] redirect_secs`).
    pub blob_redirect: Option<std::time::Duration>,
    /// Webhook subscriptions and deliveries.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Recently served manifests' bytes, by digest.
    pub manifest_bytes: Arc<crate::manifest_bytes::ManifestBytes>,
}
