//! The store conformance checks (`mirror_core::store::conformance`, the
//! `conformance` feature) run against the embedded backends, in `s3.rs`
//! against the S3 blob store on a real S3-compatible server, and in
//! `postgres.rs` against the PostgreSQL metadata store on a real
//! PostgreSQL (with engines polling, and replicas sharing one queue, on
//! it); plus checks of the embedded data directory itself.

#[path = "../support/mod.rs"]
mod support;

mod postgres;
mod s3;

use bytes::Bytes;
use mirror_core::store::{
    BlobStore, FsBlobStore, FsOptions, NewRepository, SqliteStore, Visibility, conformance,
};
use mirror_core::{Digest, RepositoryName};

#[tokio::test]
async fn fs_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    for durable in [true, false] {
        let store = FsBlobStore::open(&dir.path().join(durable.to_string()), FsOptions { durable })
            .unwrap();
        conformance::blob_store(&store).await;
    }
}

#[tokio::test]
async fn sqlite_repository_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance::repository_store(&store).await;
    conformance::publish_is_atomic(&store).await;
    conformance::publish_cached(&store).await;
}

#[tokio::test]
async fn sqlite_job_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance::job_queue(&store, &store).await;
    conformance::lost_job_recovery(&store).await;
    conformance::leases(&store).await;
    conformance::policy_baselines(&store).await;
}

#[tokio::test]
async fn sqlite_policies_and_namespace_share() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance::policies(&store).await;
    conformance::namespace_share(&store, &store, &store).await;
}

#[tokio::test]
async fn sqlite_proxy_caches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance::proxy_caches(&store).await;
    conformance::cache_pulls(&store, &store).await;
}

#[cfg(unix)]
#[tokio::test]
async fn data_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mirror = mirror_core::Mirror::open(&data).unwrap();
    // A write, so SQLite's -wal and -shm files exist too.
    mirror
        .stores()
        .repos
        .create_repository(&NewRepository {
            name: RepositoryName::parse("team/app").unwrap(),
            visibility: Visibility::Private,
            short_description: String::new(),
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut dirs = vec![data.clone()];
    while let Some(d) = dirs.pop() {
        seen.push(d.clone());
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                seen.push(p);
            }
        }
    }
    for p in &seen {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
    }
    for name in [
        "regmirror.db",
        "regmirror.db-wal",
        "regmirror.db-shm",
        "blobs",
        "uploads",
    ] {
        assert!(seen.contains(&data.join(name)), "{name} missing: {seen:?}");
    }
}

/// A worker re-checks for lost jobs while it runs; that must not delete the
/// upload files of blobs being written (by running jobs, or pushes).
#[tokio::test]
async fn blob_writes_survive_periodic_recovery() {
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let stores = mirror_core::Stores::embedded(dir.path(), FsOptions { durable: false }).unwrap();
    let mirror = mirror_core::Mirror::new(
        stores,
        Arc::new(mirror_core::remote::HttpConnector::default()),
        mirror_core::MirrorSettings {
            stale_after: Duration::from_millis(50),
            ..Default::default()
        },
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let worker =
        tokio::spawn(mirror_core::worker::Worker::new(mirror.clone(), 1).run(stop.clone()));
    // Past the start-up recovery, which purges uploads on purpose.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut w = mirror.stores().blobs.writer().await.unwrap();
    w.write(Bytes::from_static(b"in progress")).await.unwrap();
    // The worker loop wakes every 500 ms and re-checks after `stale_after`.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    w.write(Bytes::from_static(b" and done")).await.unwrap();
    let d = Digest::of(b"in progress and done");
    w.commit(&d, None).await.unwrap();
    assert_eq!(mirror.stores().blobs.stat(&d).await.unwrap(), Some(20));
    stop.cancel();
    worker.await.unwrap();
}

/// Replicas sharing one blob directory: a purge (another replica's start)
/// spares the upload a live writer holds, in any process, and removes one
/// whose writer is gone (a crash's leftover, which holds no lock).
#[tokio::test]
async fn fs_purge_spares_live_uploads_of_a_shared_directory() {
    let dir = tempfile::tempdir().unwrap();
    let options = || FsOptions { durable: false };
    let a = FsBlobStore::open(dir.path(), options()).unwrap();
    let b = FsBlobStore::open(dir.path(), options()).unwrap();
    let mut w = a.writer().await.unwrap();
    w.write(Bytes::from_static(b"in progress")).await.unwrap();
    let leftover = dir.path().join("uploads").join("crashed");
    std::fs::write(&leftover, b"partial").unwrap();
    assert_eq!(b.purge_uploads().await.unwrap(), 1);
    assert!(!leftover.exists());
    w.write(Bytes::from_static(b" and done")).await.unwrap();
    let d = Digest::of(b"in progress and done");
    w.commit(&d, None).await.unwrap();
    assert_eq!(b.stat(&d).await.unwrap(), Some(20));
    assert_eq!(a.purge_uploads().await.unwrap(), 0);
}
