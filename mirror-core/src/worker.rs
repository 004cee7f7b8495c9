//! [`Worker`]: the loop that takes queued jobs and runs them, as a server does.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mirror::Mirror;

/// Runs queued jobs until shut down.
pub struct Worker {
    mirror: Mirror,
    /// Jobs run at once.
    concurrency: usize,
    /// How often the queue is checked when idle.
    idle_poll: Duration,
    /// Jobs of one local namespace's policies running at once (see
    /// [`crate::store::PolicyStore::claim_job`]).
    per_namespace: Option<usize>,
}

impl Worker {
    /// A worker for `mirror` running up to `concurrency` jobs at once, of
    /// which at most half (at least one) poll policies of one namespace,
    /// so a namespace whose remotes are slow or hostile cannot hold every
    /// slot while other teams' mirrors wait.
    pub fn new(mirror: Mirror, concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Worker {
            mirror,
            concurrency,
            idle_poll: Duration::from_millis(500),
            per_namespace: (concurrency > 1).then_some((concurrency / 2).max(1)),
        }
    }

    /// Sets how many jobs of one namespace may run at once (`None`: no
    /// limit besides the worker's slots).
    pub fn with_namespace_share(mut self, per_namespace: Option<usize>) -> Self {
        self.per_namespace = per_namespace.map(|n| n.max(1));
        self
    }

    /// Recovers jobs lost by a crash, then claims and runs due jobs until
    /// `shutdown` is canceled. On shutdown, running jobs are canceled (they
    /// stop between or inside blob transfers and publish nothing partial)
    /// and awaited.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(e) = self.mirror.recover().await {
            tracing::error!("recovering jobs after a restart failed: {e}");
        }
        self.run_recovered(shutdown).await
    }

    /// [`Worker::run`] without the start-up [`Mirror::recover`], for a
    /// caller that ran it already (a server recovers before it serves).
    pub async fn run_recovered(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut last_recover = tokio::time::Instant::now();
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("never closed"),
                _ = shutdown.cancelled() => break,
            };
            if last_recover.elapsed() > self.mirror.settings().stale_after {
                last_recover = tokio::time::Instant::now();
                // Not `recover`: at start, it takes this worker's running
                // jobs as lost, and a purge of uploads is a start's work.
                let _ = self.mirror.recover_lost_jobs().await;
            }
            let mirror = self.mirror.clone();
            let cancel = shutdown.child_token();
            // Claim here so an idle queue is noticed before spawning.
            let claimed = mirror.claim_next_job(self.per_namespace).await;
            match claimed {
                Ok(Some(job)) => {
                    let id = job.id.clone();
                    tracker.spawn(async move {
                        let _permit = permit;
                        let _ = mirror.resume_claimed(job, cancel).await;
                        tracing::debug!(job = %id, "job finished");
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(self.idle_poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!("claiming a job failed: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        tracker.close();
        tracker.wait().await;
    }
}
