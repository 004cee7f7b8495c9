//! Opening every store a server runs on, from its [`Config`]: without a
//! database URL, `server.db` and mirror-core's `regmirror.db` in the data
//! directory; with one, both the server's stores and mirror-core's in
//! PostgreSQL (replicas share them). Blobs come from `blob_store` either way.

use std::sync::Arc;

use mirror_core::remote::HttpSettings;
use mirror_core::store::{BlobStore, FsBlobStore, FsOptions, PgOptions, S3BlobStore, SecretKeys};
use mirror_core::{Mirror, MirrorError, Stores};

use crate::accounts::Accounts;
use crate::config::{BlobStoreConfig, Config};
use crate::store::ServerStores;
use crate::{ServerError, read_access};

/// The server's pool: a quarter of `database_pool_size`, at least 2 (its
/// queries are short lookups; the engine's pool gets the full size).
pub fn server_pool_size(database_pool_size: usize) -> usize {
    (database_pool_size / 4).max(2)
}

/// The server's stores and mirror-core's, as `config` says.
pub(crate) async fn open_stores(config: &Config) -> Result<(ServerStores, Stores), ServerError> {
    let blobs: Arc<dyn BlobStore> = match &config.blob_store {
        BlobStoreConfig::DataDir => Arc::new(
            FsBlobStore::open(&config.data_dir, FsOptions::default()).map_err(MirrorError::from)?,
        ),
        BlobStoreConfig::S3(options) => {
            let blobs = S3BlobStore::new(options)?;
            tracing::info!(blobs = ?blobs, "blobs in an S3 bucket");
            Arc::new(blobs)
        }
    };
    let Some(url) = &config.database_url else {
        let server = ServerStores::sqlite(&config.data_dir)?;
        let core = Stores::sqlite_with(&config.data_dir, blobs).map_err(MirrorError::from)?;
        return Ok((server, core));
    };
    // Replicas must share the key: MIRROR_SECRET_KEY (else the data
    // directory's `secret.key`, which each replica would make its own).
    let keys = SecretKeys::load(&config.data_dir).map_err(MirrorError::from)?;
    let options = PgOptions {
        pool_size: config.database_pool_size,
        ..PgOptions::default()
    };
    let core = Stores::postgres(url.expose(), options, keys, blobs)
        .await
        .map_err(MirrorError::from)?;
    let server =
        ServerStores::postgres(url.expose(), server_pool_size(config.database_pool_size)).await?;
    Ok((server, core))
}

/// The engine on `stores`. With a database URL its worker ID is this
/// process's own (random), not the data directory's `worker-id`: replicas
/// may share a directory, and must never share a worker ID. What the engine
/// writes is reported to `events` (a `FanOut` of the server's sinks).
pub(crate) fn open_mirror(
    config: &Config,
    stores: Stores,
    accounts: Arc<Accounts>,
    events: Arc<dyn mirror_core::events::EventSink>,
) -> Result<Mirror, ServerError> {
    let http = HttpSettings {
        guard: config.remote_guard.clone(),
        limits: config.remote_limits.clone(),
        ..Default::default()
    };
    let read_access = Arc::new(read_access::AccountReadAccess::new(accounts));
    let worker_dir = config
        .database_url
        .is_none()
        .then_some(config.data_dir.as_path());
    Ok(Mirror::open_on_with_events(
        stores,
        worker_dir,
        http,
        read_access,
        config.gc.clone(),
        events,
    )?)
}
