//! # mirror-core
//!
//! The pull-mirroring engine of regmirror: it ties a local repository to a
//! remote one with a [`PollMirroringPolicy`], and a `poll_mirror` job copies
//! the remote tags that are new or moved (manifests byte for byte, blobs
//! streamed and verified) into local stores.
//!
//! - [`remote`]: [`RemoteRegistry`], reaching registries over HTTP with
//!   Basic/Bearer auth, retries and TLS settings.
//! - [`store`]: [`BlobStore`], [`RepositoryStore`], [`PolicyStore`] and their
//!   embedded backends (a directory and SQLite).
//! - [`diff`]: which tags to copy. [`copy`]: the streaming copy.
//!   [`poll`]: one poll of one policy. [`job`]: the job state machine.
//! - [`Mirror`]: the engine that the server and the Python module drive;
//!   [`metrics`]: the counters it keeps.
//!
//! See `ARCHITECTURE.md` at the repository root for how a poll flows.

#![warn(missing_docs)]

pub mod access;
pub mod api;
pub mod bandwidth;
mod cache_admin;
#[cfg(feature = "client")]
pub mod client;
pub mod copy;
pub mod created;
pub mod diff;
pub mod digest;
pub mod error;
pub mod events;
pub mod gc;
pub mod headers;
pub mod image_info;
pub mod job;
pub mod manifest;
pub mod metrics;
pub mod mirror;
pub mod policy;
pub mod policy_file;
pub mod poll;
pub mod progress;
#[cfg(test)]
mod proptests;
pub mod proxy_cache;
pub mod pull_through;
pub mod push;
pub mod push_policy;
pub mod reference;
pub mod remote;
pub mod rules;
pub mod runtime;
pub mod secret;
pub mod selection;
mod serde_fields;
pub mod store;
pub mod worker;
pub mod write;

pub use digest::{Digest, Hasher};
pub use error::ErrorKind;
pub use job::{Job, JobFilter, JobStatus, JobSubmission, LogLine};
pub use manifest::{Descriptor, Manifest};
pub use metrics::{Metrics, MetricsSnapshot};
pub use mirror::{Mirror, MirrorError, MirrorSettings, Stores};
pub use policy::{MirroringStatus, PolicyForm, PollMirroringPolicy, RemoteEndpoint};
pub use progress::{Progress, ProgressSnapshot};
pub use reference::RepositoryName;
pub use remote::{Permissions, RemoteConnector, RemoteError, RemoteRegistry};
pub use secret::Secret;
pub use store::{BlobStore, PolicyStore, RepositoryStore, StoreError};
