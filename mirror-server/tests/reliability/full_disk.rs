//! A full disk: the job fails cleanly with a message, the store is not
//! corrupted, and the next poll completes once there is room.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::server::{MANIFEST_ACCEPT, Server};
use crate::support::store_checks::{assert_blobs_rehash, uploads};
use crate::support::{ImageSpec, LayerSpec, PushedManifest, Registry};

const MIB: u64 = 1024 * 1024;
use crate::server::ADMIN;

/// `team/disk`: `a-small` fits, `b-big` (a 24 MiB layer) does not.
async fn upstream() -> (Registry, PushedManifest, PushedManifest) {
    let reg = Registry::plain().await;
    let p = reg.pusher();
    let small = p
        .push_image("team/disk", "a-small", ImageSpec::small("fits"))
        .await;
    let big = p
        .push_image(
            "team/disk",
            "b-big",
            ImageSpec::small("does not fit").layer(LayerSpec::Random {
                size: 24 * MIB,
                seed: 24,
            }),
        )
        .await;
    (reg, small, big)
}

/// Runs the first poll into the wall and checks the failure; returns the
/// server, still running.
async fn first_poll_fails(
    data: &Path,
    limit: Option<u64>,
    reg: &Registry,
    small: &PushedManifest,
    big: &PushedManifest,
    cause: &[&str],
) -> Server {
    let mut s = Server::start(data, limit);
    s.create_repo("mirrors", "disk").await;
    let job = s
        .create_policy("mirrors/disk", &reg.url(), "team/disk")
        .await;
    let status = s.wait_job(&job, Duration::from_secs(120)).await;
    let log = s.job_log(&job).await;
    assert_eq!(status, "errored", "{log}");
    assert!(s.is_running(), "the server died; its log:\n{}", s.log());
    let line = log
        .lines()
        .find(|l| l.contains("team/disk:b-big") && l.contains(&big.digest))
        .unwrap_or_else(|| panic!("no line names the tag and digest:\n{log}"));
    eprintln!("failed as expected: {line}");
    for c in cause {
        assert!(line.contains(c), "the line does not say {c:?}: {line}");
    }
    // What fit is served, what did not is invisible, nothing is half-written.
    s.pull_verified(&s.client, ADMIN, "mirrors/disk", "a-small", &small.digest)
        .await
        .unwrap();
    let b = s
        .request(Method::GET, "/v2/mirrors/disk/manifests/b-big")
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::NOT_FOUND);
    assert!(uploads(data).is_empty(), "{:?}", uploads(data));
    assert_blobs_rehash(data);
    s
}

async fn next_poll_completes(s: &Server, big: &PushedManifest) {
    let next = s.poll_all().await;
    s.wait_done(&next, Duration::from_secs(120)).await;
    s.pull_verified(&s.client, ADMIN, "mirrors/disk", "b-big", &big.digest)
        .await
        .unwrap();
    assert!(uploads(&s.data_dir).is_empty());
    assert_blobs_rehash(&s.data_dir);
}

/// `RLIMIT_FSIZE` below the big layer: its write fails with `EFBIG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_fails_the_job_cleanly_and_lifting_it_lets_the_next_poll_complete() {
    let (reg, small, big) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = first_poll_fails(
        &data,
        Some(8 * MIB),
        &reg,
        &small,
        &big,
        &["out of space", "file size limit", "File too large"],
    )
    .await;
    // Lift the limit on the running server.
    let out = Command::new("prlimit")
        .args(["--pid", &s.pid().to_string(), "--fsize=unlimited"])
        .output()
        .expect("run prlimit");
    assert!(out.status.success(), "{out:?}");
    next_poll_completes(&s, &big).await;
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: u64) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: u64) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A data directory on a 12 MiB tmpfs: the big layer's write fails with
/// `ENOSPC` (and SQLite shares the full disk meanwhile). Skipped where this
/// process may not mount (not root, or no `CAP_SYS_ADMIN`); the file size
/// limit above covers the engine's side everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tmpfs_fails_the_job_cleanly_and_the_store_survives() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(dir.path(), 12 * MIB) else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the prlimit test covers a full disk"
        );
        return;
    };
    let (reg, small, big) = upstream().await;
    let data = mount.0.join("data");
    let s = first_poll_fails(
        &data,
        None,
        &reg,
        &small,
        &big,
        &["out of space", "No space left on device"],
    )
    .await;
    // Make room (a tmpfs grows in place) and poll again.
    assert!(mount.resize(64 * MIB), "cannot grow the tmpfs");
    next_poll_completes(&s, &big).await;
    drop(s);
}
