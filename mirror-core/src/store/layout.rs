//! The filesystem layout of the embedded stores and the object keys of the S3
//! blob store: the only place that builds paths and keys.
//!
//! ```text
//! <data>/
//!   regmirror.db                   SQLite: repositories, tags, policies, jobs
//!   worker-id                      the worker ID of the engine on this directory
//!   secret.key                     the key sealing remote secrets (unless
//!                                  MIRROR_SECRET_KEY is set)
//!   blobs/sha256/<2 hex>/<64 hex>  committed blobs (layers, configs, manifests)
//!   uploads/<uuid>                 blob writes in progress (never read)
//!   upload-parts/<upload>/<uuid>   parts of chunked uploads (see `parts.rs`)
//! ```
//!
//! A blob path is derived only from a validated [`Digest`], and an upload's
//! from a checked upload ID, so no input can escape the data directory.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Paths under one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub(crate) fn database(root: &Path) -> PathBuf {
        root.join("regmirror.db")
    }

    pub(crate) fn worker_id(root: &Path) -> PathBuf {
        root.join("worker-id")
    }

    pub(crate) fn secret_key(root: &Path) -> PathBuf {
        root.join("secret.key")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs_dir().join(&hex[..2]).join(hex)
    }

    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub(crate) fn upload(&self, id: &str) -> PathBuf {
        self.uploads_dir().join(id)
    }

    pub(crate) fn parts_dir(&self) -> PathBuf {
        self.root.join("upload-parts")
    }

    /// The parts of the chunked upload `upload` (a checked ID).
    pub(crate) fn upload_parts(&self, upload: &str) -> PathBuf {
        self.parts_dir().join(upload)
    }
}

/// The object keys of the S3 blob store in its bucket, under an optional
/// prefix (the bucket's counterpart of [`Layout`]):
///
/// ```text
/// <prefix>/blobs/sha256/<64 hex>   committed blobs
/// <prefix>/uploads/<uuid>          multipart uploads being moved into place
///                                  (never read by a reader)
/// <prefix>/upload-parts/<upload>/<uuid>  parts of chunked uploads
/// ```
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    /// Without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
}

#[cfg(feature = "s3")]
impl KeyLayout {
    pub(crate) fn new(prefix: &str) -> Self {
        KeyLayout {
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    pub(crate) fn blob(&self, digest: &Digest) -> String {
        self.key(&format!("blobs/sha256/{}", digest.hex()))
    }

    pub(crate) fn blobs_dir(&self) -> String {
        self.key("blobs/sha256")
    }

    pub(crate) fn uploads_dir(&self) -> String {
        self.key("uploads")
    }

    pub(crate) fn upload(&self, id: &str) -> String {
        self.key(&format!("uploads/{id}"))
    }

    pub(crate) fn parts_dir(&self) -> String {
        self.key("upload-parts")
    }

    /// The prefix of the parts of the chunked upload `upload` (a checked ID).
    pub(crate) fn upload_parts(&self, upload: &str) -> String {
        self.key(&format!("upload-parts/{upload}"))
    }
}
