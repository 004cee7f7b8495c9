//! Shared integration-test harness for the regmirror workspace.
//!
//! Test binaries include it with
//!
//! ```ignore
//! #[path = "../support/mod.rs"]
//! mod support;
//! ```
//!
//! It gives tests *real* upstream registries on loopback (Debian's
//! `docker-registry`, i.e. distribution 2.8) in every auth mode the mirror has
//! to speak — none, htpasswd Basic, Docker token (Bearer) — optionally behind
//! TLS with a harness-made CA, plus an HTTP client ([`images::Pusher`]) that
//! seeds real images into them without docker or skopeo; and, once per test
//! binary, the stores' real servers: an S3-compatible one ([`s3::S3Server`])
//! and PostgreSQL ([`postgres::PgServer`], a database per test).
//!
//! Everything here panics with a descriptive message instead of returning
//! errors: these are test fixtures, and a panic with context is the most
//! useful failure a test can produce.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod certs;
pub mod containerd;
pub mod data;
pub mod dockerd;
pub mod fault_proxy;
pub mod hostile;
pub mod http;
pub mod images;
pub mod policies;
pub mod postgres;
pub mod process;
pub mod registry;
pub mod s3;
pub mod store_checks;
pub mod tarball;
pub mod token;

// Convenience re-exports; not every test binary uses all of them.
#[allow(unused_imports)]
pub use images::{Descriptor, ImageSpec, LayerSpec, ManifestKind, PushedManifest, Pusher};
#[allow(unused_imports)]
pub use registry::{Auth, Registry, RegistryOptions};
