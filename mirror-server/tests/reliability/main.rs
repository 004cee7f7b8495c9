//! Crashes, a full disk and load (issue 5), against the real
//! `mirror-server` binary in a child process, with Debian's
//! `docker-registry` upstream (behind `support::fault_proxy` where the
//! transfer must be slowed down or stopped).
//!
//! - `crash`: `kill -9` mid-copy of a 256 MiB layer, and after an index's
//!   first child is stored but before the tag is published; restart on the
//!   same data directory: the job is found and marked errored at once,
//!   `uploads/` is empty, nothing unpublished is visible, the next poll
//!   completes and every blob pulled through `/v2` hashes to its digest.
//!   And two replicas on PostgreSQL and a moto bucket: `kill -9` of the
//!   one copying a 256 MiB image; the other finishes the job within one
//!   lease period, and the bucket holds exactly the image's blobs.
//! - `full_disk`: a file size limit (`prlimit`, always) and a small tmpfs
//!   (when this process may mount one): the job fails with a message that
//!   says so, the store stays sound, and once there is room the next poll
//!   completes.
//! - `hostile_memory`: a hostile remote's endless token and tag page, and
//!   200 racing logins, keep the binary's peak RSS under 100 MiB.
//! - `load`: 50 clients pull an already-mirrored image through `/v2` with
//!   Basic credentials while a poll copies a large image, slowed down.
//!
//! The shared harness lives in the workspace's `tests/support`.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod crash;
mod full_disk;
mod hostile_memory;
mod load;
mod server;
