//! [`WebhookStore`] on any backend that runs the shared statements
//! ([`Exec`]): webhook subscriptions and their deliveries (SQLite
//! migration 6, PostgreSQL step 4).
//!
//! A delivery is a row from the moment its event matched a hook until it
//! is pruned: `pending` (waiting for its `next_attempt_at`), then
//! `delivered` or `failed`. Replicas share the rows: a replica sends a
//! delivery only after [`WebhookStore::claim_delivery`] won it (a
//! compare-and-set on its attempt count and lease), so two replicas never
//! send the same attempt, and a replica that dies mid-attempt leaves a
//! lease that expires and a row another replica retries. A restart keeps
//! every pending row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DbError;
use super::exec::{Exec, params};
use super::rows::{Field, Row};

/// A webhook subscription as held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Its ID (a UUID).
    pub id: String,
    /// The event type (`TAG_PUSH`, ...).
    pub kind: String,
    /// `namespace` or `namespace/repository`; empty: every repository.
    pub key: String,
    /// The `http(s)` URL deliveries are posted to.
    pub endpoint: String,
    /// The ID of the account that created it.
    pub author_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a delivery last succeeded.
    pub last_successful_at: Option<DateTime<Utc>>,
    /// No deliveries while set.
    pub inactive: bool,
    /// PEM certificates to trust for the endpoint (empty: the system's).
    pub tls_cert: String,
    /// Skip verifying the endpoint's certificate.
    pub skip_tls_verification: bool,
    /// The signing secret, sealed (`SecretKeys::seal`); `None`: deliveries
    /// are unsigned.
    pub sealed_secret: Option<String>,
}

/// What a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: a 4xx other than 429, or out of attempts.
    Failed,
}

impl DeliveryStatus {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status named `s` (an unknown name reads as failed).
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            _ => DeliveryStatus::Failed,
        }
    }
}

/// One event to deliver to one hook, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Its ID (a UUID), sent as `X-Regmirror-Delivery`.
    pub id: String,
    /// The hook.
    pub hook_id: String,
    /// The event type.
    pub event_type: String,
    /// The exact JSON body posted (and signed).
    pub body: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// Pending, delivered or failed.
    pub status: DeliveryStatus,
    /// The HTTP status of the last answer, if any.
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed (a connection error, a timeout, the
    /// start of the receiver's answer).
    pub last_error: Option<String>,
    /// When the event matched the hook.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The outcome of one attempt, written by [`WebhookStore::finish_attempt`].
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The attempt count after this attempt.
    pub attempts: i64,
    /// The new status.
    pub status: DeliveryStatus,
    /// The HTTP status, if the receiver answered.
    pub status_code: Option<i64>,
    /// The error, if it failed.
    pub error: Option<String>,
    /// When to try again (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Webhook subscriptions and their deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Inserts a hook.
    async fn insert_webhook(&self, hook: &WebhookRecord) -> Result<(), DbError>;
    /// The hook `id`.
    async fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>, DbError>;
    /// Every hook, oldest first.
    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, DbError>;
    /// The active hooks of event type `kind`, oldest first.
    async fn active_webhooks_of(&self, kind: &str) -> Result<Vec<WebhookRecord>, DbError>;
    /// Saves a hook's endpoint, flags and certificate (by ID); whether it
    /// exists.
    async fn update_webhook(&self, hook: &WebhookRecord) -> Result<bool, DbError>;
    /// Deletes a hook and its deliveries; whether it existed.
    async fn delete_webhook(&self, id: &str) -> Result<bool, DbError>;
    /// Deletes the hooks (and their deliveries) whose key is `key`: a
    /// deleted repository's.
    async fn delete_webhooks_of(&self, key: &str) -> Result<(), DbError>;
    /// Records a successful delivery of hook `id` at `at`.
    async fn webhook_succeeded(&self, id: &str, at: DateTime<Utc>) -> Result<(), DbError>;
    /// Inserts a pending delivery.
    async fn insert_delivery(&self, delivery: &DeliveryRecord) -> Result<(), DbError>;
    /// Up to `limit` pending deliveries due at `now` and not leased,
    /// oldest due first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, DbError>;
    /// Leases delivery `id` until `until` if it is still pending with
    /// `attempts` attempts and unleased at `now`: `true` for exactly one
    /// caller, which then sends it.
    async fn claim_delivery(
        &self,
        id: &str,
        attempts: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, DbError>;
    /// Writes the outcome of an attempt and drops the lease.
    async fn finish_attempt(&self, id: &str, outcome: &AttemptOutcome) -> Result<(), DbError>;
    /// The newest `limit` deliveries of hook `hook_id`, newest first.
    async fn deliveries(&self, hook_id: &str, limit: i64) -> Result<Vec<DeliveryRecord>, DbError>;
    /// Deletes delivered and failed deliveries created before `before`.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, DbError>;
}

macro_rules! hook_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, kind, hook_key, endpoint, author_id, created_at, last_successful_at, ",
            "inactive, tls_cert, skip_tls_verification, secret FROM webhooks ",
            $tail
        )
    };
}

macro_rules! delivery_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, hook_id, event_type, body, attempts, next_attempt_at, status, ",
            "last_status_code, last_error, created_at, delivered_at FROM webhook_deliveries ",
            $tail
        )
    };
}

const INSERT_WEBHOOK: &str = "INSERT INTO webhooks (id, kind, hook_key, endpoint, author_id, \
    created_at, last_successful_at, inactive, tls_cert, skip_tls_verification, secret) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const WEBHOOK: &str = hook_select!("WHERE id = $1");
const WEBHOOKS: &str = hook_select!("ORDER BY created_at, id");
const ACTIVE_WEBHOOKS_OF: &str =
    hook_select!("WHERE kind = $1 AND inactive = $2 ORDER BY created_at, id");
const UPDATE_WEBHOOK: &str = "UPDATE webhooks SET endpoint = $1, inactive = $2, tls_cert = $3, \
    skip_tls_verification = $4 WHERE id = $5";
const DELETE_HOOK_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE hook_id = $1";
const DELETE_WEBHOOK: &str = "DELETE FROM webhooks WHERE id = $1";
const HOOKS_OF: &str = "SELECT id FROM webhooks WHERE hook_key = $1";
const WEBHOOK_SUCCEEDED: &str = "UPDATE webhooks SET last_successful_at = $1 WHERE id = $2";
const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries (id, hook_id, event_type, body, \
    attempts, next_attempt_at, status, last_status_code, last_error, created_at, delivered_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const DUE_DELIVERIES: &str = delivery_select!(
    "WHERE status = 'pending' AND next_attempt_at <= $1 \
     AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, id LIMIT $2"
);
const CLAIM_DELIVERY: &str = "UPDATE webhook_deliveries SET lease_until = $1 \
    WHERE id = $2 AND status = 'pending' AND attempts = $3 \
    AND (lease_until IS NULL OR lease_until <= $4)";
const FINISH_ATTEMPT: &str = "UPDATE webhook_deliveries SET attempts = $1, status = $2, \
    last_status_code = $3, last_error = $4, next_attempt_at = $5, delivered_at = $6, \
    lease_until = NULL WHERE id = $7";
const DELIVERIES: &str =
    delivery_select!("WHERE hook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2");
const PRUNE_DELIVERIES: &str =
    "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1";

/// Every statement, for the placeholder-order check.
#[cfg(test)]
const ALL: [&str; 14] = [
    INSERT_WEBHOOK,
    WEBHOOK,
    WEBHOOKS,
    ACTIVE_WEBHOOKS_OF,
    UPDATE_WEBHOOK,
    DELETE_HOOK_DELIVERIES,
    DELETE_WEBHOOK,
    HOOKS_OF,
    WEBHOOK_SUCCEEDED,
    INSERT_DELIVERY,
    DUE_DELIVERIES,
    CLAIM_DELIVERY,
    FINISH_ATTEMPT,
    DELIVERIES,
];

fn hook(r: &dyn Row) -> Field<WebhookRecord> {
    Ok(WebhookRecord {
        id: r.text(0)?,
        kind: r.text(1)?,
        key: r.text(2)?,
        endpoint: r.text(3)?,
        author_id: r.text(4)?,
        created_at: r.time(5)?,
        last_successful_at: r.opt_time(6)?,
        inactive: r.flag(7)?,
        tls_cert: r.text(8)?,
        skip_tls_verification: r.flag(9)?,
        sealed_secret: r.opt_text(10)?,
    })
}

fn delivery(r: &dyn Row) -> Field<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.text(0)?,
        hook_id: r.text(1)?,
        event_type: r.text(2)?,
        body: r.text(3)?,
        attempts: r.int(4)?,
        next_attempt_at: r.time(5)?,
        status: DeliveryStatus::parse(&r.text(6)?),
        last_status_code: r.opt_int(7)?,
        last_error: r.opt_text(8)?,
        created_at: r.time(9)?,
        delivered_at: r.opt_time(10)?,
    })
}

fn text(r: &dyn Row) -> Field<String> {
    r.text(0)
}

#[async_trait]
impl<T: Exec> WebhookStore for T {
    async fn insert_webhook(&self, h: &WebhookRecord) -> Result<(), DbError> {
        let p = params![
            h.id.as_str(),
            h.kind.as_str(),
            h.key.as_str(),
            h.endpoint.as_str(),
            h.author_id.as_str(),
            h.created_at,
            h.last_successful_at,
            h.inactive,
            h.tls_cert.as_str(),
            h.skip_tls_verification,
            h.sealed_secret.clone()
        ];
        self.exec("creating a webhook", INSERT_WEBHOOK, p)
            .await
            .map(drop)
    }

    async fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>, DbError> {
        self.query_one("reading a webhook", WEBHOOK, params![id], hook)
            .await
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, DbError> {
        self.query("listing webhooks", WEBHOOKS, params![], hook)
            .await
    }

    async fn active_webhooks_of(&self, kind: &str) -> Result<Vec<WebhookRecord>, DbError> {
        let p = params![kind, false];
        self.query("matching webhooks", ACTIVE_WEBHOOKS_OF, p, hook)
            .await
    }

    async fn update_webhook(&self, h: &WebhookRecord) -> Result<bool, DbError> {
        let p = params![
            h.endpoint.as_str(),
            h.inactive,
            h.tls_cert.as_str(),
            h.skip_tls_verification,
            h.id.as_str()
        ];
        Ok(self.exec("changing a webhook", UPDATE_WEBHOOK, p).await? > 0)
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, DbError> {
        const CTX: &str = "deleting a webhook";
        self.exec(CTX, DELETE_HOOK_DELIVERIES, params![id]).await?;
        Ok(self.exec(CTX, DELETE_WEBHOOK, params![id]).await? > 0)
    }

    async fn delete_webhooks_of(&self, key: &str) -> Result<(), DbError> {
        let ids = self
            .query("listing webhooks to delete", HOOKS_OF, params![key], text)
            .await?;
        for id in ids {
            self.delete_webhook(&id).await?;
        }
        Ok(())
    }

    async fn webhook_succeeded(&self, id: &str, at: DateTime<Utc>) -> Result<(), DbError> {
        let p = params![at, id];
        self.exec("recording a delivered webhook", WEBHOOK_SUCCEEDED, p)
            .await
            .map(drop)
    }

    async fn insert_delivery(&self, d: &DeliveryRecord) -> Result<(), DbError> {
        let p = params![
            d.id.as_str(),
            d.hook_id.as_str(),
            d.event_type.as_str(),
            d.body.as_str(),
            d.attempts,
            d.next_attempt_at,
            d.status.as_str(),
            d.last_status_code,
            d.last_error.clone(),
            d.created_at,
            d.delivered_at
        ];
        self.exec("queueing a webhook delivery", INSERT_DELIVERY, p)
            .await
            .map(drop)
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, DbError> {
        let p = params![now, limit];
        self.query(
            "listing due webhook deliveries",
            DUE_DELIVERIES,
            p,
            delivery,
        )
        .await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        attempts: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let p = params![until, id, attempts, now];
        Ok(self
            .exec("claiming a webhook delivery", CLAIM_DELIVERY, p)
            .await?
            > 0)
    }

    async fn finish_attempt(&self, id: &str, o: &AttemptOutcome) -> Result<(), DbError> {
        let p = params![
            o.attempts,
            o.status.as_str(),
            o.status_code,
            o.error.clone(),
            o.next_attempt_at,
            o.delivered_at,
            id
        ];
        self.exec("recording a webhook delivery", FINISH_ATTEMPT, p)
            .await
            .map(drop)
    }

    async fn deliveries(&self, hook_id: &str, limit: i64) -> Result<Vec<DeliveryRecord>, DbError> {
        let p = params![hook_id, limit];
        self.query("listing webhook deliveries", DELIVERIES, p, delivery)
            .await
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, DbError> {
        let p = params![before];
        self.exec("pruning webhook deliveries", PRUNE_DELIVERIES, p)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite numbers `$N` by first appearance: each must come in order.
    #[test]
    fn placeholders_appear_in_order() {
        for sql in ALL {
            let mut seen = 0;
            for part in sql.split('$').skip(1) {
                let n: usize = part
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap();
                assert!(n <= seen + 1, "${n} before ${} in {sql}", seen + 1);
                seen = seen.max(n);
            }
        }
    }
}
