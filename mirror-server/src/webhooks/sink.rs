//! [`WebhookSink`]: the engine's events into a bounded queue, never
//! waiting. A full queue (a burst far beyond what the matcher keeps up
//! with) drops the event with a warning: events are at most once
//! (`mirror_core::events`), and the engine must not slow down for them.

use mirror_core::events::{Event, EventSink};
use tokio::sync::mpsc;

/// Events waiting for the matcher, at most.
pub const QUEUE: usize = 4096;

/// The server's [`EventSink`] for webhooks: queues each event for
/// [`super::Webhooks::run_matcher`].
#[derive(Debug, Clone)]
pub struct WebhookSink {
    tx: mpsc::Sender<Event>,
}

/// A sink and the receiving end its matcher reads.
pub fn channel() -> (WebhookSink, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (WebhookSink { tx }, rx)
}

impl EventSink for WebhookSink {
    fn emit(&self, event: Event) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(e)) => tracing::warn!(
                repository = %e.repository,
                event = e.kind.type_name(),
                "webhook queue full: event dropped"
            ),
            // The matcher stopped (shutdown): nothing left to deliver to.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}
