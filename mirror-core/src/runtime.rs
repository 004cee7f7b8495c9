//! The job runtime: how the engine runs a claimed job (heartbeat, cancel
//! and deadline watch, the `poll_mirror` action over its policies, the
//! final transition and log) and recovers jobs whose worker was lost.
//! [`crate::mirror`] is the engine's API; this module is what runs behind
//! `run_job`, `run_next_job` and the [`crate::worker::Worker`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::access::ReuseGate;
use crate::copy::CopyContext;
use crate::error::ErrorKind;
use crate::job::{Job, JobEvent, JobFailure, JobStatus, PARAM_POLICY_ID, transition};
use crate::metrics::PollResult;
use crate::mirror::{Mirror, MirrorError, Stores};
use crate::policy::{MirroringStatus, PollMirroringPolicy};
use crate::poll::{LogSink, PollEnv, PollError, PollReport, poll_policy};
use crate::progress::Progress;
use crate::store::{JobLogStore, StoreError};

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        JobFailure::new(ErrorKind::Internal, e.to_string())
    }
}

impl Mirror {
    pub(crate) async fn recover_jobs(&self, at_start: bool) -> Result<Vec<Job>, MirrorError> {
        let stale_before = Utc::now()
            - chrono::Duration::from_std(self.inner.settings.stale_after)
                .unwrap_or(chrono::Duration::seconds(30));
        let mut out = Vec::new();
        let stores = &self.inner.stores;
        let own = &self.inner.settings.worker_id;
        // At start, jobs still claimed by this worker are lost whatever their
        // heartbeat says, so ask for every running job (a cutoff in the
        // future) and keep the stale ones plus our own.
        let cutoff = if at_start {
            Utc::now() + chrono::Duration::days(1)
        } else {
            stale_before
        };
        let lost: Vec<Job> = stores
            .jobs
            .stale_jobs(cutoff)
            .await?
            .into_iter()
            .filter(|j| {
                (at_start && &j.worker_id == own) || j.heartbeat_at.is_none_or(|h| h < stale_before)
            })
            .collect();
        for mut job in lost {
            let why = if at_start && &job.worker_id == own {
                "worker lost (this worker restarted while running it)"
            } else {
                "worker lost (no heartbeat)"
            };
            // As found: recovered only if still so when written (another
            // engine may have recovered it, or a worker claimed or
            // heart-beated it, since it was read).
            let (found_worker, found_heartbeat) = (job.worker_id.clone(), job.heartbeat_at);
            let retry = job.retries_left > 0;
            job.status = transition(job.status, JobEvent::WorkerLost { retry })
                .unwrap_or(JobStatus::Errored);
            if retry {
                job.retries_left -= 1;
                job.worker_id.clear();
            } else {
                job.failure = Some(JobFailure::new(
                    ErrorKind::Transient,
                    format!("{why}: submit the job again"),
                ));
            }
            job.last_updated = crate::job::now();
            if !stores
                .jobs
                .replace_lost_job(&job, &found_worker, found_heartbeat)
                .await?
            {
                continue;
            }
            // Only the recovery that won gets here, once per loss.
            stores.leases.release_job_leases(&job.id).await?;
            stores
                .logs
                .append_log(
                    &job.id,
                    &[if retry {
                        format!("{why}: job requeued")
                    } else {
                        format!(
                            "{why}: job marked errored; nothing it had not finished was published"
                        )
                    }],
                )
                .await?;
            out.push(job);
        }
        Ok(out)
    }

    /// Runs a claimed job: heartbeat and cancel watch, the action, the final
    /// transition and log.
    pub(crate) async fn execute(
        &self,
        mut job: Job,
        cancel: CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> Job {
        let stores = self.inner.stores.clone();
        let progress = progress.unwrap_or_default();
        let started = std::time::Instant::now();
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id.clone(), (progress.clone(), progress.snapshot()));
        let log = Arc::new(JobLog::default());
        let job_cancel = cancel.child_token();
        let beat = Heartbeat::spawn(|stop| {
            heartbeat_loop(
                stores.clone(),
                job.clone(),
                self.inner.settings.heartbeat_interval,
                job_cancel.clone(),
                stop,
                log.clone(),
            )
        });
        log.line(format!(
            "job {} ({}) started on worker {}",
            job.id, job.action, self.inner.settings.worker_id
        ));
        let outcome = if job.action == crate::gc::ONLINE_GC {
            self.online_gc(&job, &job_cancel, log.as_ref()).await
        } else if job.action == crate::push_policy::PUSH_MIRROR_TAG {
            self.push_mirror_tag(&job, &job_cancel, &progress, log.as_ref())
                .await
        } else {
            self.poll_mirror(&job, &job_cancel, &progress, log.as_ref())
                .await
        };
        // Stopped between ticks and awaited, so a flush it started ends
        // (its lines written) before the last lines are flushed below.
        beat.stop().await;
        let event = match &outcome {
            Ok(()) => JobEvent::Succeed,
            Err(_) if job_cancel.is_cancelled() => JobEvent::Cancel,
            Err(_) => JobEvent::Fail,
        };
        match &outcome {
            Ok(()) => log.line("job done".into()),
            Err(e) if event == JobEvent::Cancel => log.line(format!("job canceled: {e}")),
            Err(e) => log.line(format!("job errored: {e}")),
        }
        job.status = transition(job.status, event).unwrap_or(JobStatus::Errored);
        job.failure = match outcome {
            Ok(()) => None,
            // Canceled from outside (a request, the deadline, shutdown),
            // whatever the poll itself was doing when it stopped.
            Err(e) if event == JobEvent::Cancel => {
                Some(JobFailure::new(ErrorKind::Canceled, e.message))
            }
            Err(e) => Some(e),
        };
        job.last_updated = crate::job::now();
        job.cancel_requested = false;
        if let Err(e) = log.flush(stores.logs.as_ref(), &job.id).await {
            tracing::error!(job = %job.id, "cannot write job log: {e}");
        }
        // Only while the job is still this worker's: one taken over after
        // this worker was thought lost keeps what happened to it since.
        match stores
            .jobs
            .finish_job(&job, &self.inner.settings.worker_id)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job = %job.id,
                "job was recovered from this worker while it ran (no heartbeat seen in time); its outcome here is not recorded"
            ),
            Err(e) => tracing::error!(job = %job.id, "cannot record job status: {e}"),
        }
        {
            // Under the lock, so a reading counts the job's progress once:
            // either as running or as finished.
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((p, start)) = running.remove(&job.id) {
                self.inner.settings.metrics.record_job(
                    job.status,
                    started.elapsed(),
                    crate::metrics::delta(p.snapshot(), start),
                );
            }
        }
        job
    }

    /// The `onlinegc` action: one garbage collection with the engine's
    /// settings, overridden by the job's parameters.
    async fn online_gc(
        &self,
        job: &Job,
        cancel: &CancellationToken,
        log: &JobLog,
    ) -> Result<(), JobFailure> {
        let settings = self
            .inner
            .settings
            .gc
            .with_parameters(&job.parameters)
            .map_err(|e| JobFailure::new(ErrorKind::Invalid, e.to_string()))?;
        let stores = &self.inner.stores;
        let started = std::time::Instant::now();
        // Proxy caches over their size limit lose their least recently
        // pulled images first; the collection below frees their bytes.
        let evicted = self
            .inner
            .pull_through
            .evict(settings.dry_run, &|line| log.line(line))
            .await?;
        if evicted.images > 0 {
            log.line(format!(
                "proxy caches: {} images ({} tags) {}",
                evicted.images,
                evicted.tags,
                if settings.dry_run {
                    "would be evicted"
                } else {
                    "evicted"
                }
            ));
        }
        let result = crate::gc::collect(
            stores.blobs.as_ref(),
            stores.repos.as_ref(),
            &settings,
            cancel,
            &|line| log.line(line),
        )
        .await;
        match result {
            Ok(report) => {
                log.line(format!(
                    "garbage collection {} in {:.1}s: {} manifests, {} blob links, {} blobs, {} bytes {}",
                    if report.dry_run { "dry run done" } else { "done" },
                    started.elapsed().as_secs_f64(),
                    report.manifests_removed,
                    report.links_removed,
                    report.blobs_removed,
                    report.bytes_freed,
                    if report.dry_run { "would be freed" } else { "freed" },
                ));
                self.inner.settings.metrics.record_gc(&report);
                Ok(())
            }
            Err(crate::gc::GcError::Canceled) => Err(JobFailure::canceled()),
            Err(e) => Err(JobFailure::new(e.kind(), e.to_string())),
        }
    }

    /// The `poll_mirror` action: every enabled policy, or the one named.
    async fn poll_mirror(
        &self,
        job: &Job,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        log: &JobLog,
    ) -> Result<(), JobFailure> {
        let stores = &self.inner.stores;
        let store = &stores.policies;
        let targets = match job.parameters.get(PARAM_POLICY_ID) {
            Some(id) => match store.policy(id).await? {
                Some(p) => vec![p],
                None => {
                    return Err(JobFailure::new(
                        ErrorKind::NotFound,
                        format!("poll mirroring policy {id} no longer exists"),
                    ));
                }
            },
            None => store
                .policies(None)
                .await?
                .into_iter()
                .filter(|p| p.enabled)
                .collect(),
        };
        log.line(format!(
            "evaluating {} poll mirroring policies",
            targets.len()
        ));
        let transfers = Arc::new(tokio::sync::Semaphore::new(
            self.inner.settings.blob_concurrency.max(1),
        ));
        let mut failed: Vec<JobFailure> = Vec::new();
        for policy in targets {
            if cancel.is_cancelled() {
                return Err(JobFailure::canceled());
            }
            self.lease_or_wait(&policy.id, &job.id, cancel, log).await?;
            let result = self
                .poll_one(&policy, cancel, progress, &transfers, log)
                .await;
            let _ = stores.leases.release_policy(&policy.id, &job.id).await;
            let now = crate::job::now();
            let (outcome, detail, mirrored_at) = match &result {
                Ok(r) if r.tags_failed == 0 => (
                    PollResult::Success,
                    format!(
                        "{} tags copied, {} unchanged",
                        r.tags_copied, r.tags_unchanged
                    ),
                    (r.tags_copied > 0).then_some(now),
                ),
                Ok(r) => (
                    if r.tags_copied > 0 {
                        PollResult::Partial
                    } else {
                        PollResult::Failed
                    },
                    r.errors.join("; "),
                    (r.tags_copied > 0).then_some(now),
                ),
                Err(PollError::Canceled) => {
                    (PollResult::Canceled, "the poll was canceled".into(), None)
                }
                Err(e) => (PollResult::Failed, e.to_string(), None),
            };
            let status = MirroringStatus {
                code: outcome.code().into(),
                detail,
                timestamp: now,
            };
            let metrics = &self.inner.settings.metrics;
            metrics.record_poll(&policy.id, outcome, now);
            if let Ok(r) = &result {
                metrics.record_tags(
                    r.tags_unchanged as u64,
                    r.tags_preexisting as u64,
                    r.tags_failed as u64,
                );
            }
            if let Err(e) = store.record_status(&policy.id, &status, mirrored_at).await {
                log.line(format!(
                    "cannot record the status of policy {}: {e}",
                    policy.id
                ));
            }
            match result {
                Err(PollError::Canceled) => return Err(JobFailure::canceled()),
                Err(e) => {
                    log.line(format!("policy {} failed: {e}", policy.id));
                    failed.push(JobFailure::new(
                        e.kind(),
                        format!("policy {}: {e}", policy.id),
                    ));
                }
                Ok(r) if r.tags_failed > 0 => {
                    failed.push(JobFailure::new(
                        r.failure_kind.unwrap_or(ErrorKind::Internal),
                        format!("policy {}: {} tags failed", policy.id, r.tags_failed),
                    ));
                }
                Ok(_) => {}
            }
        }
        match JobFailure::combine(failed) {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }

    /// Takes the policy's lease for `job_id`. While another job polls the
    /// policy, waits for it to finish (then this job polls too, so its
    /// `done` means "up to date as of when it was submitted"), logging
    /// which job it waits for; a cancel ends the wait.
    async fn lease_or_wait(
        &self,
        policy_id: &str,
        job_id: &str,
        cancel: &CancellationToken,
        log: &JobLog,
    ) -> Result<(), JobFailure> {
        let store = &self.inner.stores.leases;
        let mut waiting_for: Option<String> = None;
        loop {
            let until = Utc::now() + POLICY_LEASE;
            if store.lease_policy(policy_id, job_id, until).await? {
                if let Some(other) = waiting_for {
                    log.line(format!(
                        "job {other} finished with policy {policy_id}; polling it now"
                    ));
                }
                return Ok(());
            }
            let holder = store
                .policy_lease_holder(policy_id)
                .await?
                .unwrap_or_else(|| "another job".into());
            if waiting_for.as_deref() != Some(holder.as_str()) {
                log.line(format!(
                    "policy {policy_id} is being polled by job {holder}: waiting for it to finish, then polling it again"
                ));
                waiting_for = Some(holder);
            }
            tokio::select! {
                _ = tokio::time::sleep(LEASE_RETRY) => {}
                _ = cancel.cancelled() => return Err(JobFailure::canceled()),
            }
        }
    }

    async fn poll_one(
        &self,
        policy: &PollMirroringPolicy,
        cancel: &CancellationToken,
        progress: &Arc<Progress>,
        transfers: &Arc<tokio::sync::Semaphore>,
        log: &JobLog,
    ) -> Result<PollReport, PollError> {
        let stores = &self.inner.stores;
        let remote = self
            .inner
            .connector
            .connect(&policy.remote)
            .map_err(|source| PollError::Remote {
                context: format!("connecting to {}", policy.remote.host),
                source,
            })?;
        let baseline = if policy.initial_evaluation {
            None
        } else {
            Some(
                stores
                    .policies
                    .baseline(&policy.id)
                    .await
                    .map_err(|source| PollError::Store {
                        context: "reading the policy baseline".into(),
                        source,
                    })?,
            )
        };
        // The policy's own limit lasts for this poll; the server's is
        // shared by every copy.
        let own = (policy.max_bytes_per_sec > 0)
            .then(|| Arc::new(crate::bandwidth::Bandwidth::new(policy.max_bytes_per_sec)));
        let bandwidth = crate::bandwidth::Limits::none()
            .and(own, "policy")
            .and(self.inner.settings.bandwidth.clone(), "server");
        let env = PollEnv {
            remote,
            repos: stores.repos.as_ref(),
            copy: CopyContext {
                blobs: stores.blobs.clone(),
                transfers: transfers.clone(),
                retry: self.inner.settings.retry.clone(),
                cancel: cancel.clone(),
                progress: progress.clone(),
                reuse: Arc::new(ReuseGate::new(
                    stores.repos.clone(),
                    self.inner.settings.read_access.clone(),
                    policy.owner.clone(),
                    policy.local_repository.clone(),
                )),
                repos: stores.repos.clone(),
                bandwidth: bandwidth.clone(),
            },
            head_concurrency: self.inner.settings.head_concurrency,
            baseline,
            log,
            events: self.inner.settings.events.as_ref(),
        };
        log.line(format!(
            "policy {}: {}/{} -> {}",
            policy.id, policy.remote.host, policy.remote.repository, policy.local_repository
        ));
        if bandwidth.is_limited() {
            log.line(format!("bandwidth limit: {}", bandwidth.describe()));
        }
        let waited_before = progress
            .bandwidth_wait_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let report = poll_policy(&env, policy).await;
        let waited = progress
            .bandwidth_wait_ms
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(waited_before);
        if waited > 0 {
            log.line(format!(
                "transfers waited {:.1} s in all for the bandwidth limit",
                waited as f64 / 1000.0
            ));
        }
        report
    }
}

/// How long a poll's lease on its policy lasts past the job's last
/// heartbeat, which renews it: a crashed poll's lease lapses after this (or
/// sooner, through crash recovery), whichever worker or replica finds it.
const POLICY_LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// How often a job waiting for another job's lease on a policy looks again.
const LEASE_RETRY: Duration = Duration::from_millis(500);

/// The heartbeat task of a running job. [`Heartbeat::stop`] ends it
/// between two ticks and waits for it, so whatever it was writing (a log
/// flush) completes; dropped without `stop` (the job's own future was
/// dropped, its task aborted), it aborts the task, so the heartbeats stop
/// and the job shows up as lost and is recovered.
struct Heartbeat {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Heartbeat {
    fn spawn<F>(make: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(make(stop.clone()));
        Heartbeat {
            stop,
            task: Some(task),
        }
    }

    /// Ends the loop at its next wait between ticks, and waits for it.
    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // Dropped while waiting here, the task is detached, not
            // aborted: it sees the stop token and ends by itself.
            if let Err(e) = task.await
                && e.is_panic()
            {
                tracing::error!("a job's heartbeat task panicked: {e}");
            }
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Records heartbeats, flushes log lines, and turns a stored cancel request
/// or a passed deadline into a cancel of the running job, until `stop`,
/// which is looked at only between ticks: a tick's writes are never cut
/// short.
async fn heartbeat_loop(
    stores: Stores,
    claimed: Job,
    every: Duration,
    cancel: CancellationToken,
    stop: CancellationToken,
    log: Arc<JobLog>,
) {
    let (job_id, worker_id, deadline) = (claimed.id, claimed.worker_id, claimed.deadline);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let _ = log.flush(stores.logs.as_ref(), &job_id).await;
        let _ = stores
            .leases
            .renew_leases(&job_id, Utc::now() + POLICY_LEASE)
            .await;
        match stores.jobs.heartbeat(&job_id, Utc::now()).await {
            // Recovered from this worker (its heartbeats were thought
            // lost) and requeued or running elsewhere: stop this run, whose
            // end `finish_job` would not record anyway.
            Ok(Some(job)) if job.status != JobStatus::Running || job.worker_id != worker_id => {
                log.line(format!(
                    "job taken over (now {} on worker {:?}): stopping this run",
                    job.status, job.worker_id
                ));
                cancel.cancel();
            }
            Ok(Some(job)) if job.cancel_requested => {
                log.line("cancel requested".into());
                cancel.cancel();
            }
            Ok(None) => {
                // Deleted while running.
                cancel.cancel();
            }
            _ => {}
        }
        if deadline.is_some_and(|d| Utc::now() > d) {
            log.line("deadline passed".into());
            cancel.cancel();
        }
    }
}

/// Log lines buffered in memory and flushed to the store by the heartbeat
/// (and at the end), so logging never waits on the database.
#[derive(Default)]
struct JobLog {
    pending: Mutex<Vec<String>>,
    flush_lock: tokio::sync::Mutex<()>,
}

impl JobLog {
    async fn flush(&self, store: &dyn JobLogStore, job_id: &str) -> Result<(), StoreError> {
        let _guard = self.flush_lock.lock().await;
        let lines = std::mem::take(&mut *self.pending());
        if lines.is_empty() {
            return Ok(());
        }
        let written = store.append_log(job_id, &lines).await;
        if written.is_err() {
            // Kept for the next flush, before the lines logged meanwhile.
            let mut pending = self.pending();
            let newer = std::mem::replace(&mut *pending, lines);
            pending.extend(newer);
        }
        written
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogSink for JobLog {
    fn line(&self, text: String) {
        tracing::info!(target: "regmirror::job", "{text}");
        self.pending().push(text);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::JobLog;
    use crate::job::LogLine;
    use crate::poll::LogSink;
    use crate::store::{JobLogStore, StoreError};

    /// A log store whose next `fail` appends fail.
    #[derive(Default)]
    struct Flaky {
        fail: Mutex<usize>,
        lines: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl JobLogStore for Flaky {
        async fn append_log(&self, _: &str, lines: &[String]) -> Result<(), StoreError> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(StoreError::Corrupt {
                    reason: "down".into(),
                });
            }
            self.lines.lock().unwrap().extend_from_slice(lines);
            Ok(())
        }

        async fn logs(&self, _: &str, _: i64, _: i64) -> Result<Vec<LogLine>, StoreError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_its_lines_in_order_for_the_next() {
        let store = Flaky {
            fail: Mutex::new(2),
            ..Default::default()
        };
        let log = JobLog::default();
        log.line("a".into());
        log.line("b".into());
        assert!(log.flush(&store, "j").await.is_err());
        log.line("c".into());
        assert!(log.flush(&store, "j").await.is_err());
        log.line("d".into());
        log.flush(&store, "j").await.unwrap();
        log.flush(&store, "j").await.unwrap();
        assert_eq!(*store.lines.lock().unwrap(), ["a", "b", "c", "d"]);
    }
}
