//! What happened in the registry, for whoever acts on it: webhooks, push
//! mirroring.
//!
//! The engine emits an [`Event`] through [`MirrorSettings::events`]
//! (crate::mirror::MirrorSettings) **after** the write it describes is
//! committed: a listener never hears of a tag that is not there. Emitting
//! never waits: a sink queues (or writes a row) and returns. Delivery is at
//! most once per emit; a process that dies between the commit and the
//! emit loses that event (a listener that must not miss a tag, such as
//! push mirroring, also re-evaluates on its own schedule).
//!
//! The types are DTR's webhook event types (`TAG_PUSH`, `POLL_MIRRORING`,
//! ...), [`EventKind::type_name`]; what each carries is in its variant.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::digest::Digest;
use crate::reference::RepositoryName;

/// One thing that happened to one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The repository it happened to.
    pub repository: RepositoryName,
    /// The account that did it (`None`: the engine itself, such as a poll
    /// or a garbage collection, or an engine without accounts).
    pub actor: Option<String>,
    /// When (the commit's time, as near as the emitter knows).
    pub at: DateTime<Utc>,
}

/// A repository's change of state, for [`EventKind::Repository`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryChange {
    /// Created.
    Created,
    /// Its settings changed.
    Updated,
    /// Deleted (with its tags).
    Deleted,
}

impl RepositoryChange {
    /// DTR's name: `REPO_CREATED`, `REPO_UPDATED`, `REPO_DELETED`.
    pub fn name(self) -> &'static str {
        match self {
            RepositoryChange::Created => "REPO_CREATED",
            RepositoryChange::Updated => "REPO_UPDATED",
            RepositoryChange::Deleted => "REPO_DELETED",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A tag was pushed (created or moved) by a client.
    TagPush {
        /// The tag.
        tag: String,
        /// The manifest it now names.
        digest: Digest,
        /// That manifest's media type.
        media_type: String,
    },
    /// A tag was deleted (by a client, or by a poll's deletion
    /// propagation: then `actor` is `None`).
    TagDelete {
        /// The tag.
        tag: String,
        /// The manifest it named.
        digest: Digest,
    },
    /// A manifest was pushed (by tag or by digest).
    ManifestPush {
        /// Its digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A manifest was deleted from the repository.
    ManifestDelete {
        /// Its digest.
        digest: Digest,
    },
    /// The repository was created, changed or deleted.
    Repository(RepositoryChange),
    /// A poll mirroring policy copied a tag into the repository.
    PollMirroring {
        /// The policy.
        policy_id: String,
        /// The local tag.
        tag: String,
        /// The local manifest it names.
        digest: Digest,
        /// `host/namespace/name` it came from.
        remote_repository: String,
        /// The remote tag.
        remote_tag: String,
    },
    /// A push mirroring policy pushed a tag of the repository to a remote.
    PushMirroring {
        /// The policy.
        policy_id: String,
        /// The local tag.
        tag: String,
        /// The manifest pushed.
        digest: Digest,
        /// `host/namespace/name` it went to.
        remote_repository: String,
        /// The tag on the remote.
        remote_tag: String,
    },
}

impl EventKind {
    /// DTR's webhook event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::TagPush { .. } => "TAG_PUSH",
            EventKind::TagDelete { .. } => "TAG_DELETE",
            EventKind::ManifestPush { .. } => "MANIFEST_PUSH",
            EventKind::ManifestDelete { .. } => "MANIFEST_DELETE",
            EventKind::Repository(_) => "REPO_EVENT",
            EventKind::PollMirroring { .. } => "POLL_MIRRORING",
            EventKind::PushMirroring { .. } => "PUSH_MIRRORING",
        }
    }

    /// Every type [`EventKind::type_name`] gives, in DTR's order.
    pub const TYPE_NAMES: [&'static str; 7] = [
        "TAG_PUSH",
        "TAG_DELETE",
        "MANIFEST_PUSH",
        "MANIFEST_DELETE",
        "REPO_EVENT",
        "POLL_MIRRORING",
        "PUSH_MIRRORING",
    ];
}

/// Where events go. `emit` must not block or fail: it queues.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Takes one event.
    fn emit(&self, event: Event);
}

/// The sink of an engine nobody listens to.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: Event) {}
}

/// Several sinks, each given every event.
#[derive(Debug, Default)]
pub struct FanOut(pub Vec<Arc<dyn EventSink>>);

impl EventSink for FanOut {
    fn emit(&self, event: Event) {
        for sink in &self.0 {
            sink.emit(event.clone());
        }
    }
}

impl Event {
    /// `kind` happening to `repository` now, done by `actor`.
    pub fn now(kind: EventKind, repository: &RepositoryName, actor: Option<&str>) -> Self {
        Event {
            kind,
            repository: repository.clone(),
            actor: actor.map(str::to_string),
            at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_dtr_type_listed() {
        let d = Digest::of(b"x");
        let kinds = [
            EventKind::TagPush {
                tag: "v1".into(),
                digest: d.clone(),
                media_type: String::new(),
            },
            EventKind::TagDelete {
                tag: "v1".into(),
                digest: d.clone(),
            },
            EventKind::ManifestPush {
                digest: d.clone(),
                media_type: String::new(),
            },
            EventKind::ManifestDelete { digest: d.clone() },
            EventKind::Repository(RepositoryChange::Created),
            EventKind::PollMirroring {
                policy_id: "p".into(),
                tag: "v1".into(),
                digest: d.clone(),
                remote_repository: "r".into(),
                remote_tag: "v1".into(),
            },
            EventKind::PushMirroring {
                policy_id: "p".into(),
                tag: "v1".into(),
                digest: d,
                remote_repository: "r".into(),
                remote_tag: "v1".into(),
            },
        ];
        let names: Vec<&str> = kinds.iter().map(EventKind::type_name).collect();
        assert_eq!(names, EventKind::TYPE_NAMES);
    }
}
