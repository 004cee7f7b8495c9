//! Webhooks (DTR's `/api/v0/webhooks`): what happened in the registry,
//! posted to the URLs repository and namespace administrators subscribe.
//!
//! The flow, from the engine's commit to the receiver:
//! 1. `sink.rs`: [`WebhookSink`], one of the engine's event sinks, puts
//!    each event in a bounded queue and returns (never blocks a push or a
//!    poll).
//! 2. [`Webhooks::run_matcher`] takes each event, finds the active hooks
//!    of its type whose key is its repository, its namespace or empty
//!    (every repository), and inserts one `pending` delivery row per hook
//!    (`payload.rs`: DTR's envelope, the exact bytes later signed).
//! 3. [`Webhooks::run_deliveries`] (one per replica) takes due rows, wins
//!    each with a compare-and-set lease (`WebhookStore::claim_delivery`,
//!    so replicas never send one attempt twice), posts it
//!    (`deliver.rs`), and writes the outcome: delivered, failed, or
//!    pending again after a backoff ([`WebhookSettings::retry_base`] ×
//!    1, 3, 12, 60, 180: 10 s, 30 s, 2 min, 10 min, 30 min by default).
//!
//! Rows outlive restarts, so a pending delivery is sent by whichever
//! replica runs next. Secrets are sealed with the engine's `SecretKeys`
//! and never leave the server except as signatures.

mod deliver;
mod payload;
mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use mirror_core::Mirror;
use mirror_core::events::{Event, EventKind};
use mirror_core::remote::RemoteGuard;
use mirror_core::store::SecretKeys;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub use deliver::{
    Attempt, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, check_endpoint, hmac_sha256_hex,
};
pub use payload::sample;
pub use sink::{WebhookSink, channel};

use crate::store::{
    AttemptOutcome, DbError, DeliveryRecord, DeliveryStatus, WebhookRecord, WebhookStore,
};

/// How deliveries are sent and retried.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The first retry's delay; later ones are 3, 12, 60 and 180 times it.
    pub retry_base: Duration,
    /// Attempts in all (the first and its retries), at most 6.
    pub max_attempts: u32,
    /// A whole attempt (connect, send, read the answer) takes at most this.
    pub timeout: Duration,
    /// How often the delivery loop looks for due rows (besides when the
    /// matcher wakes it).
    pub poll_interval: Duration,
    /// The registry's name in `imageName` (`host/ns/repo:tag`); `None`:
    /// the address the server listens on.
    pub registry_host: Option<String>,
    /// Delivered and failed rows older than this are pruned.
    pub keep: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_base: Duration::from_secs(10),
            max_attempts: 6,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(2),
            registry_host: None,
            keep: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl WebhookSettings {
    /// The delay before the attempt after `attempts` attempts.
    pub fn backoff(&self, attempts: u32) -> Duration {
        const FACTORS: [u32; 5] = [1, 3, 12, 60, 180];
        let i = (attempts.max(1) as usize - 1).min(FACTORS.len() - 1);
        self.retry_base * FACTORS[i]
    }
}

/// Delivery counts since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    /// Attempts the receiver accepted.
    pub delivered: AtomicU64,
    /// Attempts to be retried.
    pub retried: AtomicU64,
    /// Deliveries given up.
    pub failed: AtomicU64,
}

impl DeliveryCounts {
    /// `[delivered, retried, failed]`.
    pub fn snapshot(&self) -> [u64; 3] {
        [
            self.delivered.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        ]
    }
}

/// The webhook machinery one server runs.
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    keys: Arc<SecretKeys>,
    guard: RemoteGuard,
    settings: WebhookSettings,
    host: String,
    wake: Notify,
    /// Delivery counts (`regmirror_webhook_deliveries_total`).
    pub counts: DeliveryCounts,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

/// The sealing context of a hook's secret.
fn seal_context(hook_id: &str) -> String {
    format!("webhook:{hook_id}")
}

impl Webhooks {
    /// Webhooks on `store`, sealing secrets with `keys`, sending only where
    /// `guard` allows; `host` names the registry in `imageName`.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        keys: Arc<SecretKeys>,
        guard: RemoteGuard,
        settings: WebhookSettings,
        host: String,
    ) -> Self {
        let host = settings.registry_host.clone().unwrap_or(host);
        Webhooks {
            store,
            keys,
            guard,
            settings,
            host,
            wake: Notify::new(),
            counts: DeliveryCounts::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn WebhookStore {
        self.store.as_ref()
    }

    /// The remote-host guard endpoints must pass.
    pub fn guard(&self) -> &RemoteGuard {
        &self.guard
    }

    /// `secret` sealed for hook `hook_id`.
    pub fn seal_secret(&self, hook_id: &str, secret: &str) -> String {
        self.keys.seal(secret, &seal_context(hook_id))
    }

    fn secret_of(&self, hook: &WebhookRecord) -> Result<Option<String>, String> {
        let Some(sealed) = &hook.sealed_secret else {
            return Ok(None);
        };
        self.keys
            .open(sealed, &seal_context(&hook.id))
            .map(Some)
            .map_err(|e| format!("cannot open the hook's secret: {e}"))
    }

    /// Turns queued events into delivery rows until the queue closes or
    /// `stop` is canceled.
    pub async fn run_matcher(
        self: Arc<Self>,
        mirror: Mirror,
        mut events: mpsc::Receiver<Event>,
        stop: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                e = events.recv() => match e {
                    Some(e) => e,
                    None => return,
                },
                () = stop.cancelled() => return,
            };
            if let Err(e) = self.enqueue(&mirror, &event).await {
                tracing::error!(
                    repository = %event.repository,
                    event = event.kind.type_name(),
                    "webhook deliveries not queued: {e}"
                );
            }
        }
    }

    /// Whether `hook` subscribes to events of `repository`.
    fn matches(hook: &WebhookRecord, repository: &str) -> bool {
        hook.key.is_empty()
            || hook.key == repository
            || repository
                .strip_prefix(hook.key.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    async fn enqueue(&self, mirror: &Mirror, event: &Event) -> Result<(), DbError> {
        let kind = event.kind.type_name();
        let hooks: Vec<WebhookRecord> = self
            .store
            .active_webhooks_of(kind)
            .await?
            .into_iter()
            .filter(|h| Self::matches(h, event.repository.as_str()))
            .collect();
        if hooks.is_empty() {
            return Ok(());
        }
        let info = match payload::wants_platform(&event.kind) {
            Some(digest) => Some(
                mirror_core::image_info::image_info(mirror.stores().blobs.as_ref(), digest).await,
            ),
            None => None,
        };
        let body = payload::body(event, &self.host, info.as_deref());
        let now = Utc::now();
        for hook in hooks {
            let delivery = DeliveryRecord {
                id: uuid::Uuid::new_v4().to_string(),
                hook_id: hook.id.clone(),
                event_type: kind.to_string(),
                body: body.clone(),
                attempts: 0,
                next_attempt_at: now,
                status: DeliveryStatus::Pending,
                last_status_code: None,
                last_error: None,
                created_at: now,
                delivered_at: None,
            };
            self.store.insert_delivery(&delivery).await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Sends due deliveries until `stop` is canceled.
    pub async fn run_deliveries(self: Arc<Self>, stop: CancellationToken) {
        let mut last_prune = None::<std::time::Instant>;
        loop {
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                last_prune = Some(std::time::Instant::now());
                let keep = chrono::Duration::from_std(self.settings.keep).unwrap_or_default();
                if let Err(e) = self.store.prune_deliveries(Utc::now() - keep).await {
                    tracing::warn!("pruning webhook deliveries failed: {e}");
                }
            }
            match self.deliver_due(&stop).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!("webhook deliveries: {e}"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Sends what is due now (a batch, concurrently); how many were sent.
    async fn deliver_due(&self, stop: &CancellationToken) -> Result<usize, DbError> {
        let now = Utc::now();
        let due = self.store.due_deliveries(now, 16).await?;
        // A lease outlasts an attempt: a replica that dies mid-attempt
        // leaves it to another after this.
        let lease = chrono::Duration::from_std(self.settings.timeout * 3).unwrap_or_default();
        let mut won = Vec::new();
        for d in due {
            if self
                .store
                .claim_delivery(&d.id, d.attempts, now, now + lease)
                .await?
            {
                won.push(d);
            }
        }
        let n = won.len();
        let sends = won.into_iter().map(|d| self.deliver_one(d));
        tokio::select! {
            () = async { futures_util::future::join_all(sends).await; } => {}
            // Unfinished attempts stay leased and pending: retried later.
            () = stop.cancelled() => {}
        }
        Ok(n)
    }

    async fn deliver_one(&self, d: DeliveryRecord) {
        let attempt = match self.store.webhook(&d.hook_id).await {
            Ok(Some(hook)) if !hook.inactive => self.send(&hook, &d).await,
            Ok(Some(_)) => Attempt::Fail {
                code: None,
                error: "the webhook is inactive".into(),
            },
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(delivery = %d.id, "reading its webhook failed: {e}");
                return;
            }
        };
        let attempts = d.attempts + 1;
        let now = Utc::now();
        let exhausted = attempts >= i64::from(self.settings.max_attempts);
        let (status, error) = match &attempt {
            Attempt::Delivered { .. } => (DeliveryStatus::Delivered, None),
            Attempt::Retry { error, .. } if !exhausted => {
                (DeliveryStatus::Pending, Some(error.clone()))
            }
            Attempt::Retry { error, .. } | Attempt::Fail { error, .. } => {
                (DeliveryStatus::Failed, Some(error.clone()))
            }
        };
        let counter = match status {
            DeliveryStatus::Delivered => &self.counts.delivered,
            DeliveryStatus::Pending => &self.counts.retried,
            DeliveryStatus::Failed => &self.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let delay =
            chrono::Duration::from_std(self.settings.backoff(attempts as u32)).unwrap_or_default();
        let outcome = AttemptOutcome {
            attempts,
            status,
            status_code: attempt.code().map(i64::from),
            error,
            next_attempt_at: now + delay,
            delivered_at: (status == DeliveryStatus::Delivered).then_some(now),
        };
        if status == DeliveryStatus::Failed {
            tracing::warn!(
                delivery = %d.id, hook = %d.hook_id, attempts,
                "webhook delivery failed: {}", outcome.error.as_deref().unwrap_or_default()
            );
        }
        if let Err(e) = self.store.finish_attempt(&d.id, &outcome).await {
            tracing::warn!(delivery = %d.id, "recording a webhook delivery failed: {e}");
        }
        if status == DeliveryStatus::Delivered
            && let Err(e) = self.store.webhook_succeeded(&d.hook_id, now).await
        {
            tracing::warn!(hook = %d.hook_id, "recording a webhook's success failed: {e}");
        }
    }

    async fn send(&self, hook: &WebhookRecord, d: &DeliveryRecord) -> Attempt {
        let secret = match self.secret_of(hook) {
            Ok(s) => s,
            Err(error) => return Attempt::Fail { code: None, error },
        };
        let target = deliver::Target {
            endpoint: &hook.endpoint,
            tls_cert: &hook.tls_cert,
            skip_tls_verification: hook.skip_tls_verification,
        };
        let message = deliver::Message {
            id: &d.id,
            event_type: &d.event_type,
            body: &d.body,
            secret: secret.as_deref(),
        };
        deliver::attempt(&target, &message, &self.guard, self.settings.timeout).await
    }

    /// Posts the fixed sample of `kind` to `endpoint` now (`POST
    /// /webhooks/test`), unsigned unless `secret` is given; what came of
    /// it. Nothing is recorded.
    pub async fn send_test(
        &self,
        kind: &str,
        actor: &str,
        endpoint: &str,
        tls_cert: &str,
        skip_tls_verification: bool,
        secret: Option<&str>,
    ) -> Option<Attempt> {
        let event = payload::sample(kind, actor)?;
        let body = payload::body(&event, &self.host, None);
        let id = uuid::Uuid::new_v4().to_string();
        let target = deliver::Target {
            endpoint,
            tls_cert,
            skip_tls_verification,
        };
        let message = deliver::Message {
            id: &id,
            event_type: event.kind.type_name(),
            body: &body,
            secret,
        };
        Some(deliver::attempt(&target, &message, &self.guard, self.settings.timeout).await)
    }
}

/// Whether `kind` is an event type this server delivers.
pub fn is_event_type(kind: &str) -> bool {
    EventKind::TYPE_NAMES.contains(&kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(key: &str) -> WebhookRecord {
        WebhookRecord {
            id: "h".into(),
            kind: "TAG_PUSH".into(),
            key: key.into(),
            endpoint: "http://x".into(),
            author_id: "a".into(),
            created_at: Utc::now(),
            last_successful_at: None,
            inactive: false,
            tls_cert: String::new(),
            skip_tls_verification: false,
            sealed_secret: None,
        }
    }

    #[test]
    fn a_hook_matches_its_repository_its_namespace_or_everything() {
        assert!(Webhooks::matches(&hook(""), "acme/app"));
        assert!(Webhooks::matches(&hook("acme"), "acme/app"));
        assert!(Webhooks::matches(&hook("acme/app"), "acme/app"));
        assert!(!Webhooks::matches(&hook("acme/app"), "acme/application"));
        assert!(!Webhooks::matches(&hook("acm"), "acme/app"));
        assert!(!Webhooks::matches(&hook("other"), "acme/app"));
    }

    #[test]
    fn backoff_grows_from_the_base() {
        let s = WebhookSettings::default();
        let secs: Vec<u64> = (1..=6).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(secs, [10, 30, 120, 600, 1800, 1800]);
    }
}
