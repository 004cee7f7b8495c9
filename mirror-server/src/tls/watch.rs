//! [`CertWatcher`]: looks at the certificate's files every
//! `reload_interval` and at once on `SIGHUP`, and swaps in the certificate
//! they make when they changed. A file that does not make a usable
//! certificate (not PEM, a key of another certificate, half written) is
//! logged and the current certificate kept; the next change is tried
//! again. In `auto` mode each look also renews a certificate near its end.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::resolver::ReloadingCert;
use super::source::{Material, Source};

/// The task that reloads the certificate; see [`CertWatcher::run`].
#[derive(Debug)]
pub struct CertWatcher {
    pub(super) source: Arc<Source>,
    /// What the last look found.
    pub(super) last: Material,
    pub(super) cert: Arc<ReloadingCert>,
    pub(super) interval: Duration,
}

impl CertWatcher {
    /// Watches until `stop` is canceled.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(
                    "cannot listen for SIGHUP ({e}); the TLS certificate is reloaded every {:?}",
                    self.interval
                );
                None
            }
        };
        let mut tick = tokio::time::interval_at(Instant::now() + self.interval, self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The last read error logged, so a missing file is logged once.
        let mut last_error = None;
        loop {
            let on_signal = tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => false,
                () = next(&mut hangup) => true,
            };
            let source = self.source.clone();
            let read = match tokio::task::spawn_blocking(move || source.read()).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!("reading the TLS certificate failed: {e}");
                    continue;
                }
            };
            let material = match read {
                Ok(m) => m,
                Err(e) => {
                    let message = e.to_string();
                    if on_signal || last_error.as_ref() != Some(&message) {
                        tracing::error!(
                            "cannot reload the TLS certificate, keeping the current one: {message}"
                        );
                    }
                    last_error = Some(message);
                    continue;
                }
            };
            last_error = None;
            if material == self.last {
                if on_signal {
                    tracing::info!("SIGHUP: {} unchanged", self.source.describe());
                }
                continue;
            }
            match material.load() {
                Ok(loaded) => {
                    self.cert.set(loaded);
                    tracing::info!(
                        "TLS certificate reloaded from {}{}",
                        self.source.describe(),
                        if on_signal { " (SIGHUP)" } else { "" }
                    );
                }
                Err(e) => tracing::error!(
                    "the new TLS certificate is not usable, keeping the current one: {e}"
                ),
            }
            self.last = material;
        }
    }
}

/// The next `SIGHUP`; never, without a handler.
async fn next(hangup: &mut Option<Signal>) {
    if let Some(s) = hangup.as_mut()
        && s.recv().await.is_some()
    {
        return;
    }
    std::future::pending::<()>().await
}
