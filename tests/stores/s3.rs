//! `S3BlobStore` (mirror-core's feature `s3`) against a real S3-compatible
//! server (moto, `support::s3`): the conformance checks, and what only a
//! bucket can show: multipart writes with bounded memory, nothing left by a
//! refused, canceled or dropped write, ranged reads, the purge grace,
//! presigned URLs, errors, and a mirror polling into it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use mirror_core::store::{
    BlobStore, FsBlobStore, FsOptions, MIN_PART_SIZE, PARTS_IN_FLIGHT, S3BlobStore, S3Options,
    StoreError, conformance,
};
use mirror_core::{Digest, JobStatus, Mirror, PolicyForm, RepositoryName, Stores};

use crate::support::s3::{S3Bucket, S3Server};
use crate::support::{ImageSpec, LayerSpec, Registry};

const MIB: usize = 1024 * 1024;

async fn bucket() -> S3Bucket {
    S3Server::shared().bucket().await
}

fn open(options: &S3Options) -> S3BlobStore {
    S3BlobStore::new(options).unwrap()
}

/// Options with the smallest parts S3 allows, so a few MiB take several.
fn small_parts(bucket: &S3Bucket, prefix: &str) -> S3Options {
    S3Options {
        part_size: MIN_PART_SIZE,
        ..bucket.options(prefix)
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

async fn read(store: &dyn BlobStore, d: &Digest, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut r = store.reader(d, offset, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = r.stream.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out.len() as u64, r.length, "length announced");
    out
}

async fn write(
    store: &dyn BlobStore,
    data: &[u8],
    chunk: usize,
) -> Box<dyn mirror_core::store::BlobWriter> {
    let mut w = store.writer().await.unwrap();
    for c in data.chunks(chunk) {
        w.write(Bytes::copy_from_slice(c)).await.unwrap();
    }
    w
}

/// Waits (bounded) until no multipart upload is left in `bucket`: a dropped
/// writer aborts its upload from a task it spawns.
async fn no_multipart_uploads_left(bucket: &S3Bucket) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = bucket.multipart_uploads().await;
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "multipart uploads left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn s3_blob_store_conformance() {
    let bucket = bucket().await;
    for prefix in ["", "team/regmirror"] {
        let store = open(&bucket.options(prefix));
        conformance::blob_store(&store).await;
    }
    // The conformance checks cannot see a bucket: nothing but blobs is left.
    let keys = bucket.keys("").await;
    assert!(
        keys.iter().all(|k| k.contains("blobs/sha256/")),
        "not a blob: {keys:?}"
    );
    no_multipart_uploads_left(&bucket).await;
}

/// Bytes of chunks handed to a writer that are still alive somewhere (the
/// writer's part buffer, parts being sent).
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counted(Vec<u8>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.0.len(), Ordering::SeqCst);
    }
}

fn counted(bytes: &[u8]) -> Bytes {
    LIVE.fetch_add(bytes.len(), Ordering::SeqCst);
    Bytes::from_owner(Counted(bytes.to_vec()))
}

#[tokio::test]
async fn s3_large_blob_streams_in_parts_with_bounded_memory() {
    let bucket = bucket().await;
    let store = open(&small_parts(&bucket, "big"));
    let bound = store.writer_memory_bound() as usize;
    assert_eq!(bound, (PARTS_IN_FLIGHT + 1) * MIN_PART_SIZE);
    // Eight full parts and a short one: twice what a writer may hold.
    let data = pattern(8 * MIN_PART_SIZE + MIB + 7, 1);
    assert!(data.len() > 2 * bound);
    let d = Digest::of(&data);

    let mut w = store.writer().await.unwrap();
    let mut most = 0;
    for c in data.chunks(64 * 1024 + 3) {
        w.write(counted(c)).await.unwrap();
        // However fast the server is, a returned write leaves at most the
        // bound referenced: the writer waits for parts in flight before it
        // takes more. The slack of one part is the HTTP client's: it may
        // not have dropped the last pieces of a part it just sent.
        let live = LIVE.load(Ordering::SeqCst);
        most = most.max(live);
        assert!(
            live <= bound + MIN_PART_SIZE,
            "{live} bytes held, over {bound}"
        );
    }
    assert!(most > MIN_PART_SIZE, "parts were never buffered: {most}");
    // The blob is streaming into a multipart upload, and nothing is visible.
    assert_eq!(bucket.multipart_uploads().await.len(), 1);
    assert!(bucket.keys("big/blobs/").await.is_empty());
    assert_eq!(store.stat(&d).await.unwrap(), None);
    w.commit(&d, Some(data.len() as u64)).await.unwrap();
    // Nothing keeps the bytes (the HTTP client drops its last ones soon).
    let deadline = Instant::now() + Duration::from_secs(10);
    while LIVE.load(Ordering::SeqCst) != 0 {
        assert!(Instant::now() < deadline, "bytes kept after the commit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(store.stat(&d).await.unwrap(), Some(data.len() as u64));
    assert_eq!(Digest::of(&read(&store, &d, 0, None).await), d);
    assert_eq!(
        bucket.keys("big/").await,
        [format!("big/blobs/sha256/{}", d.hex())],
        "the upload object was removed"
    );
    assert!(bucket.multipart_uploads().await.is_empty());

    // Committing the same blob again keeps the object in place.
    write(&store, &data, 3 * MIB)
        .await
        .commit(&d, Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(bucket.keys("big/").await.len(), 1);
}

#[tokio::test]
async fn s3_refused_commits_leave_no_object_and_no_upload() {
    let bucket = bucket().await;
    let store = open(&small_parts(&bucket, "bad"));
    let wrong = Digest::of(b"something else");
    // In memory (one part) and streamed (a multipart upload).
    for len in [1000, MIN_PART_SIZE + 10] {
        let data = pattern(len, 2);
        let w = write(&store, &data, 256 * 1024).await;
        match w.commit(&wrong, None).await {
            Err(StoreError::DigestMismatch { expected, actual }) => {
                assert_eq!((expected, actual), (wrong.clone(), Digest::of(&data)));
            }
            r => panic!("expected a digest mismatch, got {r:?}"),
        }
        let d = Digest::of(&data);
        let w = write(&store, &data, 256 * 1024).await;
        assert!(matches!(
            w.commit(&d, Some(len as u64 + 1)).await,
            Err(StoreError::SizeMismatch { .. })
        ));
        assert_eq!(store.stat(&d).await.unwrap(), None);
        assert_eq!(bucket.keys("").await, Vec::<String>::new(), "{len} bytes");
        assert_eq!(bucket.multipart_uploads().await, Vec::<String>::new());
    }
}

#[tokio::test]
async fn s3_canceled_and_dropped_writers_abort_their_multipart_uploads() {
    let bucket = bucket().await;
    let store = open(&small_parts(&bucket, "gone"));
    let data = pattern(MIN_PART_SIZE + MIB, 3);
    let w = write(&store, &data, MIB).await;
    assert_eq!(bucket.multipart_uploads().await.len(), 1);
    w.cancel().await.unwrap();
    assert!(bucket.multipart_uploads().await.is_empty());

    let w = write(&store, &data, MIB).await;
    assert_eq!(bucket.multipart_uploads().await.len(), 1);
    drop(w);
    no_multipart_uploads_left(&bucket).await;
    assert!(bucket.keys("").await.is_empty());
}

#[tokio::test]
async fn s3_ranged_reads_match_the_filesystem_store() {
    let bucket = bucket().await;
    let s3 = open(&bucket.options("ranges"));
    let dir = tempfile::tempdir().unwrap();
    let fs = FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap();
    let data = pattern(MIB + 17, 4);
    let empty: &[u8] = b"";
    for blob in [&data[..], empty] {
        let d = Digest::of(blob);
        for store in [&s3 as &dyn BlobStore, &fs] {
            store.put(Bytes::copy_from_slice(blob), &d).await.unwrap();
        }
        let size = blob.len() as u64;
        let ranges = [
            (0, None),
            (0, Some(0)),
            (0, Some(10)),
            (5, Some(10)),
            (1, None),
            (size.saturating_sub(3), None),
            (size.saturating_sub(3), Some(100)),
            (size, None),
            (size, Some(5)),
            (size + 10, None),
            (size + 10, Some(5)),
            (7, Some(u64::MAX)),
        ];
        for (offset, length) in ranges {
            let got = s3.reader(&d, offset, length).await.unwrap();
            let want = fs.reader(&d, offset, length).await.unwrap();
            assert_eq!(
                (got.size, got.offset, got.length),
                (want.size, want.offset, want.length),
                "{size}-byte blob from {offset} for {length:?}"
            );
            assert_eq!(
                read(&s3, &d, offset, length).await,
                read(&fs, &d, offset, length).await,
                "{size}-byte blob from {offset} for {length:?}"
            );
        }
    }
    let absent = Digest::of(b"absent");
    for (offset, length) in [(0, None), (3, Some(2)), (0, Some(0))] {
        assert!(matches!(
            s3.reader(&absent, offset, length).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn s3_purge_uploads_spares_fresh_uploads() {
    let bucket = bucket().await;
    let store = open(&bucket.options("p"));
    // Another replica's upload object, between completion and its copy.
    bucket.put("p/uploads/other-replica", "in flight").await;
    let d = Digest::of(b"kept");
    store.put(Bytes::from_static(b"kept"), &d).await.unwrap();
    assert_eq!(store.purge_uploads().await.unwrap(), 0);
    assert_eq!(bucket.keys("p/uploads/").await, ["p/uploads/other-replica"]);

    // Past the grace (none here), it goes; blobs never do.
    let impatient = open(&S3Options {
        purge_grace: Duration::ZERO,
        ..bucket.options("p")
    });
    assert_eq!(impatient.purge_uploads().await.unwrap(), 1);
    assert!(bucket.keys("p/uploads/").await.is_empty());
    assert_eq!(store.stat(&d).await.unwrap(), Some(4));
}

#[tokio::test]
async fn s3_streaming_copy_above_the_server_copy_limit() {
    let bucket = bucket().await;
    let store = open(&S3Options {
        server_copy_limit: 0,
        ..small_parts(&bucket, "copy")
    });
    let data = pattern(2 * MIN_PART_SIZE + 5, 5);
    let d = Digest::of(&data);
    write(&store, &data, MIB)
        .await
        .commit(&d, Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(read(&store, &d, 0, None).await, data);
    assert_eq!(
        bucket.keys("copy/").await,
        [format!("copy/blobs/sha256/{}", d.hex())]
    );
    assert!(bucket.multipart_uploads().await.is_empty());
}

#[tokio::test]
async fn s3_presigned_get_serves_the_blob() {
    let bucket = bucket().await;
    let store = open(&bucket.options("signed"));
    let d = Digest::of(b"presigned bytes");
    store
        .put(Bytes::from_static(b"presigned bytes"), &d)
        .await
        .unwrap();
    let url = store
        .presigned_get(&d, Duration::from_secs(300))
        .await
        .expect("a presigned URL");
    assert_eq!(
        bucket.fetch(url.as_str()).await,
        (200, b"presigned bytes".to_vec())
    );
}

#[tokio::test]
async fn s3_errors_name_bucket_and_key_and_hide_the_secret() {
    let bucket = bucket().await;
    let store = open(&S3Options {
        bucket: "no-such-bucket-here".into(),
        ..bucket.options("x")
    });
    let d = Digest::of(b"nowhere");
    let err = store
        .put(Bytes::from_static(b"nowhere"), &d)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(
        msg.contains(&format!(
            "s3://no-such-bucket-here/x/blobs/sha256/{}",
            d.hex()
        )),
        "{msg}"
    );
    assert!(msg.contains("NoSuchBucket"), "the cause: {msg}");
    assert!(!msg.contains("testing-secret"), "{msg}");
}

/// A mirror whose blobs live in the bucket polls a real registry: every
/// blob and manifest it stored reads back with its digest.
#[tokio::test]
async fn s3_mirror_polls_an_image_into_the_bucket() {
    let reg = Registry::plain().await;
    let pusher = reg.pusher();
    let big = ImageSpec::small("s3 big").layer(LayerSpec::Random {
        size: (MIN_PART_SIZE + MIB) as u64,
        seed: 7,
    });
    let images = [
        pusher
            .push_image("team/app", "v1", ImageSpec::small("s3 one"))
            .await,
        pusher.push_image("team/app", "big", big).await,
    ];

    let bucket = bucket().await;
    let blobs = Arc::new(open(&small_parts(&bucket, "mirror")));
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores {
        blobs: blobs.clone(),
        ..Stores::embedded(dir.path(), FsOptions { durable: false }).unwrap()
    };
    let mirror = Mirror::new(
        stores,
        Arc::new(mirror_core::remote::HttpConnector::default()),
        mirror_core::MirrorSettings::default(),
    );
    let local = RepositoryName::parse("mirror/app").unwrap();
    let policy = mirror
        .add_policy(&local, &PolicyForm::new(reg.url(), "team/app"), None)
        .await
        .unwrap();
    let job = mirror.poll(&policy.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Done, "{job:?}");

    let tags = mirror.stores().repos.tags(&local).await.unwrap();
    assert_eq!(tags.len(), 2);
    for img in &images {
        let tag = tags.iter().find(|t| t.digest.to_string() == img.digest);
        assert!(tag.is_some(), "{} not mirrored: {tags:?}", img.digest);
        let mut digests = img.blob_digests();
        digests.push(img.digest.clone());
        for digest in digests {
            let d = Digest::parse(&digest).unwrap();
            assert_eq!(Digest::of(&read(&*blobs, &d, 0, None).await), d);
        }
    }
    assert!(bucket.keys("mirror/uploads/").await.is_empty());
    no_multipart_uploads_left(&bucket).await;
}
