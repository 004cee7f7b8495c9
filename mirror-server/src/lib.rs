//! # mirror-server
//!
//! regmirror's reference server: an OCI registry that real clients pull
//! mirrored images from and push to (`/v2`), the Docker Trusted Registry
//! 2.7 management API that creates repositories, poll mirroring policies,
//! jobs and crons (`/api/v0`, described by `/api/v0/openapi.json`),
//! Prometheus metrics (`/metrics`), the mirror-core
//! [`Worker`] that runs `poll_mirror` jobs,
//! and the [`scheduler`] that submits them.
//!
//! - `main.rs`: flags, logging, signals; calls [`run`].
//! - [`config`]: settings from flags, `MIRROR_*` and a TOML file.
//! - [`apply`]: policies as code (`mirror-server apply FILE`,
//!   `--policies FILE`), on mirror-core's `policy_file`.
//! - [`api`]: the routes; [`error`]: the only place errors become HTTP.
//! - [`auth`] and [`accounts`]: who calls and what they may do.
//! - [`store`]: the server's own state (accounts, tokens, grants, crons,
//!   uploads, organizations, settings) behind one trait each, in
//!   `server.db` or PostgreSQL.
//! - [`orgs`]: organizations, teams and team grants (DTR's model).
//! - [`uploads`]: blob pushes in progress, kept between requests.
//! - [`webhooks`]: the engine's events posted to subscribed endpoints
//!   (DTR's webhooks), signed, retried, logged.
//! - [`serve`]: the accept loop, with its limits on slow clients.
//! - [`tls`]: HTTPS (an operator's certificate, reloaded, or a generated
//!   one), HTTP/2, and the CA certificate `/ca` serves.
//!
//! Everything about mirroring itself lives in mirror-core; this crate only
//! speaks HTTP, authenticates and schedules.

#![warn(missing_docs)]

pub mod accounts;
pub mod api;
pub mod apply;
pub mod auth;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod login_limit;
pub mod manifest_bytes;
mod open;
pub mod orgs;
pub mod read_access;
pub mod scheduler;
pub mod serve;
pub mod settings;
pub mod state;
pub mod store;
pub mod tls;
pub mod uploads;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

use mirror_core::MirrorError;
use mirror_core::worker::Worker;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

pub use config::Config;
/// Re-exported so embedders and tests can stop [`run`] without a
/// tokio-util dependency of their own.
pub use tokio_util::sync::CancellationToken;

use crate::accounts::{AccountError, Accounts};
use crate::open::{open_mirror, open_stores};
use crate::orgs::Organizations;
use crate::scheduler::{CronError, Scheduler};
use crate::settings::SettingsStore;
use crate::state::AppState;
use crate::store::DbError;
use crate::uploads::UploadSessions;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be prepared.
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// mirror-core's stores could not be opened.
    #[error("cannot open the mirror stores: {0}")]
    Mirror(#[from] MirrorError),
    /// A store's settings are invalid.
    #[error("cannot open the blob store: {0}")]
    BlobStore(#[from] mirror_core::store::S3ConfigError),
    /// The server's stores (`server.db` or PostgreSQL) could not be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The admin account could not be created.
    #[error("cannot create the admin account: {0}")]
    Accounts(#[from] AccountError),
    /// The default cron could not be created.
    #[error("cannot create the default cron: {0}")]
    Crons(#[from] CronError),
    /// The TLS certificate could not be loaded or generated.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// A `[[proxy_cache]]` table is invalid or could not be applied.
    #[error("cannot set up the proxy caches of the configuration file: {0}")]
    ProxyCaches(mirror_core::MirrorError),
    /// The `--policies` file is invalid or could not be applied.
    #[error("cannot apply the policies file: {0}")]
    Policies(#[from] mirror_core::policy_file::PolicyFileError),
}

fn prepare_data_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    let fail = |source| ServerError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

/// Runs the server on `listener` until `shutdown` is canceled.
///
/// Opens the stores in `config.data_dir`, creates the `admin` account on
/// first start (printing a generated password once to stdout when
/// `config.admin_password` is unset), recovers jobs left running by a crash
/// (and deletes the leftovers of blob writes that never committed), starts
/// the job worker, the cron scheduler and the upload sweeper, and serves
/// HTTP. On shutdown it stops accepting connections (followed job logs
/// end), cancels the worker (running jobs are canceled and publish nothing
/// partial) and the scheduler, waits up to `config.shutdown_grace` for open
/// requests, and returns once the worker has finished. Chunked uploads
/// outlive it: they are in the shared stores.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    prepare_data_dir(&config.data_dir)?;
    // First: a bad certificate stops the server before anything else runs.
    let tls = tls::ServerTls::load(&config.tls, &config.data_dir)?;
    let (server_stores, stores) = open_stores(&config).await?;
    let accounts = Arc::new(Accounts::new(server_stores.clone()));
    // The engine's event sinks: webhooks (`webhooks`), fed by a queue
    // that a matcher task started below reads.
    let (webhook_sink, webhook_events) = webhooks::channel();
    let events: Vec<Arc<dyn mirror_core::events::EventSink>> = vec![Arc::new(webhook_sink)];
    let events = Arc::new(mirror_core::events::FanOut(events));
    let mirror = open_mirror(&config, stores, accounts.clone(), events)?;
    let webhooks = Arc::new(webhooks::Webhooks::new(
        server_stores.webhooks.clone(),
        Arc::new(
            mirror_core::store::SecretKeys::load(&config.data_dir).map_err(MirrorError::from)?,
        ),
        config.remote_guard.clone(),
        config.webhooks.clone(),
        listener
            .local_addr()
            .map_or_else(|_| config.listen.to_string(), |a| a.to_string()),
    ));
    if config.remote_guard.is_active() {
        let allow: Vec<String> = config
            .remote_guard
            .allow()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            remote_hosts_allow = %allow.join(","),
            forbid_private_remotes = config.remote_guard.forbids_private(),
            "remote hosts restricted"
        );
    }
    if let Some(generated) = accounts
        .bootstrap_admin(config.admin_password.as_ref())
        .await?
    {
        // Deliberately not through `tracing`: logs are kept and shipped,
        // this line is meant to be read once by the operator.
        println!(
            "created user {:?} with password {} (shown only once; set MIRROR_ADMIN_PASSWORD to choose it)",
            accounts::ADMIN_USER,
            generated.expose()
        );
    }
    // `[[proxy_cache]]` tables, then `--policies` (which may target cached
    // repositories): before serving, so a bad one stops the start.
    mirror
        .apply_proxy_caches(&config.proxy_caches)
        .await
        .map_err(ServerError::ProxyCaches)?;
    apply::apply_at_start(&config, &mirror).await?;
    let settings = Arc::new(SettingsStore::open(server_stores.meta.clone()).await?);
    let scheduler = Arc::new(Scheduler::new(server_stores.crons.clone(), mirror.clone()));
    scheduler.seed_default().await?;

    // Background tasks stop on `shutdown`.
    let background = shutdown.child_token();
    let tasks = TaskTracker::new();
    // Before serving: recovery deletes unfinished uploads, which must not
    // include the first pushes.
    if let Err(e) = mirror.recover().await {
        tracing::error!("recovering jobs after a restart failed: {e}");
    }
    let worker = Worker::new(mirror.clone(), config.worker_concurrency);
    tasks.spawn(worker.run_recovered(background.child_token()));
    {
        let scheduler = scheduler.clone();
        let stop = background.child_token();
        tasks.spawn(async move { scheduler.run(stop).await });
    }
    let uploads = Arc::new(UploadSessions::new(
        config.uploads,
        server_stores.uploads.clone(),
        mirror.stores().blobs.clone(),
    ));
    tasks.spawn(uploads.clone().run_sweeper(background.child_token()));
    tasks.spawn(flush_noted_uses(
        mirror.clone(),
        accounts.clone(),
        background.child_token(),
    ));
    tasks.spawn(webhooks.clone().run_matcher(
        mirror.clone(),
        webhook_events,
        background.child_token(),
    ));
    tasks.spawn(webhooks.clone().run_deliveries(background.child_token()));
    let tls = tls.map(|(tls, watcher)| {
        tasks.spawn(watcher.run(background.child_token()));
        Arc::new(tls)
    });
    tasks.close();

    let worker_id = mirror.settings().worker_id.clone();
    let orgs = Arc::new(Organizations::new(server_stores.clone(), accounts.clone()));
    let state = AppState {
        mirror,
        accounts,
        orgs,
        scheduler,
        uploads,
        settings,
        shutdown: shutdown.clone(),
        tls: tls.clone(),
        blob_redirect: config.blob_redirect,
        webhooks,
        manifest_bytes: Default::default(),
    };
    // The client address of each request, for the login limits.
    if !config.trusted_proxies.is_empty() {
        let nets: Vec<String> = config
            .trusted_proxies
            .networks()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(trusted_proxies = %nets.join(","), "X-Forwarded-For believed from these peers");
    }
    let trusted = Arc::new(config.trusted_proxies.clone());
    let terminates_tls = tls.is_some();
    let app = api::router(state).layer(axum::middleware::from_fn(move |req, next| {
        client_ip::resolve(trusted.clone(), terminates_tls, req, next)
    }));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            data_dir = %config.data_dir.display(),
            tls = config.tls.mode_name(),
            worker = %worker_id,
            "mirror-server listening"
        );
    }
    let grace = config.shutdown_grace;
    tokio::select! {
        () = serve::serve(listener, app, config.connections, tls.map(|t| t.acceptor()), shutdown.clone()) => {}
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("requests still open {grace:?} after shutdown began; closing them");
        }
    }
    background.cancel();
    tracing::info!("waiting for running jobs to stop");
    tasks.wait().await;
    tracing::info!("mirror-server stopped");
    Ok(())
}

/// Writes what requests noted instead of writing it themselves, every
/// few seconds and once more at shutdown: the pull times proxy caches
/// noted (for least-recently-pulled eviction) and access token uses.
async fn flush_noted_uses(
    mirror: mirror_core::Mirror,
    accounts: Arc<Accounts>,
    stop: tokio_util::sync::CancellationToken,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(EVERY) => false,
            _ = stop.cancelled() => true,
        };
        if let Err(e) = mirror.pull_through().flush_pulls().await {
            tracing::warn!("recording proxy cache pull times failed (kept for the next try): {e}");
        }
        if let Err(e) = accounts.flush_token_uses().await {
            tracing::warn!("recording access token uses failed (kept for the next try): {e}");
        }
        if stopping {
            return;
        }
    }
}
