//! Conformance checks for store backends, shared by every backend (behind
//! the `conformance` feature). Each takes the trait object, so a new
//! backend (S3, PostgreSQL) runs the same checks by calling these from one
//! test that constructs it; they panic with the failed expectation.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::job::{Job, JobFilter, JobStatus, JobSubmission};
use crate::store::{
    BlobStore, ManifestRecord, NewRepository, PolicyStore, RepositoryStore, StoreError, TagRecord,
    Visibility,
};
use crate::{Digest, RepositoryName};

async fn read_all(store: &dyn BlobStore, d: &Digest, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut r = store.reader(d, offset, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = r.stream.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Checks a [`BlobStore`]: writes invisible until committed, commits
/// checked, reads by range, concurrent writers, deletes.
pub async fn blob_store(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::of(&data);
    assert_eq!(store.stat(&d).await.unwrap(), None);

    // Written in chunks, invisible until committed.
    let mut w = store.writer().await.unwrap();
    for chunk in data.chunks(70_000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.written(), data.len() as u64);
    assert_eq!(store.stat(&d).await.unwrap(), None, "visible before commit");
    w.commit(&d, Some(data.len() as u64)).await.unwrap();
    assert_eq!(store.stat(&d).await.unwrap(), Some(data.len() as u64));
    assert_eq!(read_all(store, &d, 0, None).await, data);
    assert_eq!(read_all(store, &d, 1000, Some(10)).await, &data[1000..1010]);
    assert_eq!(
        read_all(store, &d, 2_999_990, None).await,
        &data[2_999_990..]
    );

    // Many small and empty chunks (more per batch than one write takes)
    // land in order.
    let mut w = store.writer().await.unwrap();
    let sizes = [0usize, 1, 7, 100, 4096, 3, 65_536, 0, 511];
    let mut at = 0;
    for i in 0.. {
        if at == data.len() {
            break;
        }
        let n = sizes[i % sizes.len()].min(data.len() - at);
        w.write(Bytes::copy_from_slice(&data[at..at + n]))
            .await
            .unwrap();
        at += n;
    }
    w.commit(&d, Some(data.len() as u64)).await.unwrap();
    assert_eq!(read_all(store, &d, 0, None).await, data);

    // A wrong digest is refused and nothing becomes visible.
    let other = Digest::of(b"something else");
    let mut w = store.writer().await.unwrap();
    w.write(Bytes::from_static(b"not that")).await.unwrap();
    match w.commit(&other, None).await {
        Err(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, other);
            assert_eq!(actual, Digest::of(b"not that"));
        }
        r => panic!("expected a digest mismatch, got {r:?}"),
    }
    assert_eq!(store.stat(&other).await.unwrap(), None);

    // A wrong size is refused.
    let small = Digest::of(b"abc");
    let mut w = store.writer().await.unwrap();
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    assert!(matches!(
        w.commit(&small, Some(4)).await,
        Err(StoreError::SizeMismatch { .. })
    ));
    assert_eq!(store.stat(&small).await.unwrap(), None);

    // Canceled and dropped writes leave nothing behind.
    let mut w = store.writer().await.unwrap();
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    w.cancel().await.unwrap();
    let mut w = store.writer().await.unwrap();
    w.write(Bytes::from(vec![1u8; 2 * 1024 * 1024]))
        .await
        .unwrap();
    drop(w);
    assert_eq!(
        store.purge_uploads().await.unwrap(),
        0,
        "uploads left behind"
    );

    // put / read_small / delete.
    store.put(Bytes::from_static(b"abc"), &small).await.unwrap();
    assert_eq!(&store.read_small(&small, 10).await.unwrap()[..], b"abc");
    assert!(
        store.read_small(&d, 10).await.is_err(),
        "size limit ignored"
    );
    store.delete(&small).await.unwrap();
    store.delete(&small).await.unwrap();
    assert!(matches!(
        store.reader(&small, 0, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Checks a [`RepositoryStore`]: repositories, publishing (all or
/// nothing), links, tags, referrers, holders, deletes.
pub async fn repository_store(store: &dyn RepositoryStore) {
    let name = RepositoryName::parse("acme/app").unwrap();
    let missing = RepositoryName::parse("acme/none").unwrap();
    let repo = store
        .create_repository(&NewRepository {
            name: name.clone(),
            visibility: Visibility::Public,
            short_description: "d".into(),
        })
        .await
        .unwrap();
    assert_eq!(store.repository(&name).await.unwrap(), Some(repo.clone()));
    assert!(matches!(
        store
            .create_repository(&NewRepository {
                name: name.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let (layer, config, image, index) = (
        Digest::of(b"layer"),
        Digest::of(b"config"),
        Digest::of(b"image"),
        Digest::of(b"index"),
    );
    let records = vec![
        ManifestRecord {
            digest: image.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 5,
            blobs: vec![config.clone(), layer.clone()],
            children: vec![],
            subject: None,
            artifact_type: None,
        },
        ManifestRecord {
            digest: index.clone(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 5,
            blobs: vec![],
            children: vec![image.clone()],
            subject: None,
            artifact_type: None,
        },
    ];
    let tag = TagRecord {
        name: "v1".into(),
        digest: index.clone(),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        size: 5,
        mirrored_by: Some("p1".into()),
        mirrored_from: Some("https://r/x:v1".into()),
        updated_at: chrono::Utc::now(),
    };
    assert!(matches!(
        store
            .publish(&missing, &records, std::slice::from_ref(&tag))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .publish(&name, &records, std::slice::from_ref(&tag))
        .await
        .unwrap();
    let tags = store.tags(&name).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(store.tag_count(&name).await.unwrap(), 1);
    assert_eq!(store.tag_count(&missing).await.unwrap(), 0);
    assert_eq!(tags[0].digest, index);
    assert_eq!(tags[0].mirrored_by.as_deref(), Some("p1"));
    let rec = store.manifest(&name, &index).await.unwrap().unwrap();
    assert_eq!(rec.children, vec![image.clone()]);
    let rec = store.manifest(&name, &image).await.unwrap().unwrap();
    assert_eq!(rec.blobs, vec![config.clone(), layer.clone()]);
    assert!(store.has_blob(&name, &layer).await.unwrap());
    assert_eq!(
        store.holders(&layer).await.unwrap(),
        std::slice::from_ref(&name)
    );
    assert_eq!(
        store.holders(&image).await.unwrap(),
        std::slice::from_ref(&name)
    );
    assert!(store.has_blob(&name, &image).await.unwrap());
    assert!(!store.has_blob(&missing, &layer).await.unwrap());
    assert!(store.delete_tag(&name, "v1").await.unwrap());
    assert!(store.tag(&name, "v1").await.unwrap().is_none());

    // A blob pushed or mounted without a manifest, then unlinked.
    let pushed = Digest::of(b"pushed");
    assert!(!store.has_blob(&name, &pushed).await.unwrap());
    store.link_blob(&name, &pushed).await.unwrap();
    store.link_blob(&name, &pushed).await.unwrap();
    assert!(store.has_blob(&name, &pushed).await.unwrap());
    assert!(matches!(
        store.link_blob(&missing, &pushed).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.unlink_blob(&name, &pushed).await.unwrap());
    assert!(!store.unlink_blob(&name, &pushed).await.unwrap());
    assert!(!store.has_blob(&name, &pushed).await.unwrap());

    // Deleting a manifest takes the tags pointing at it, not its children
    // or blobs, and not other tags.
    let on_image = TagRecord {
        name: "image".into(),
        digest: image.clone(),
        ..tag.clone()
    };
    let on_index = TagRecord {
        name: "v2".into(),
        ..tag.clone()
    };
    store
        .publish(&name, &[], &[on_image, on_index, tag.clone()])
        .await
        .unwrap();
    assert!(store.delete_manifest(&name, &index).await.unwrap());
    assert!(!store.delete_manifest(&name, &index).await.unwrap());
    assert!(store.manifest(&name, &index).await.unwrap().is_none());
    assert!(!store.has_blob(&name, &index).await.unwrap());
    let left: Vec<String> = store
        .tags(&name)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(left, ["image"]);
    assert!(store.manifest(&name, &image).await.unwrap().is_some());
    assert!(store.has_blob(&name, &layer).await.unwrap());
    assert!(!store.delete_manifest(&missing, &image).await.unwrap());
    assert!(store.delete_repository(&name).await.unwrap());
    assert!(store.manifest(&name, &image).await.unwrap().is_none());
}

/// Checks a [`PolicyStore`]'s job queue: claims (one winner), heartbeats,
/// cancel, stale recovery, logs, baselines.
pub async fn job_queue(store: &dyn PolicyStore) {
    let mk = |secs: i64| {
        let mut j = Job::new(&JobSubmission {
            action: "poll_mirror".into(),
            ..Default::default()
        });
        j.scheduled_at = chrono::Utc::now() + chrono::Duration::seconds(secs);
        j
    };
    let (old, new, future) = (mk(-10), mk(-5), mk(3600));
    for j in [&old, &new, &future] {
        store.insert_job(j).await.unwrap();
    }
    let now = chrono::Utc::now();
    let claimed = store
        .claim_job("w1", None, now, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, old.id, "oldest due job first");
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.worker_id, "w1");
    let claimed2 = store
        .claim_job("w2", None, now, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed2.id, new.id);
    assert!(
        store
            .claim_job("w3", None, now, None)
            .await
            .unwrap()
            .is_none(),
        "future job claimed"
    );
    assert!(
        store
            .claim_job("w3", Some(&old.id), now, None)
            .await
            .unwrap()
            .is_none(),
        "claimed twice"
    );
    let running = store
        .jobs(&JobFilter {
            running: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 3);
    let c = store.request_cancel(&future.id).await.unwrap().unwrap();
    assert_eq!(
        c.status,
        JobStatus::Canceled,
        "a waiting job cancels at once"
    );
    let c = store.request_cancel(&old.id).await.unwrap().unwrap();
    assert!(c.cancel_requested && c.status == JobStatus::Running);
    store
        .append_log(&old.id, &["a".into(), "b".into()])
        .await
        .unwrap();
    store.append_log(&old.id, &["c".into()]).await.unwrap();
    let logs = store.logs(&old.id, 1, 0).await.unwrap();
    assert_eq!(
        logs.iter()
            .map(|l| (l.line_num, l.data.as_str()))
            .collect::<Vec<_>>(),
        [(1, "b"), (2, "c")]
    );
    let stale = store
        .stale_jobs(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(stale.len(), 2);
    assert!(store.delete_job(&old.id).await.unwrap());
    assert!(store.logs(&old.id, 0, 0).await.unwrap().is_empty());

    // Policy leases.
    assert!(store.baseline("nope").await.unwrap().is_empty());
    store
        .set_baseline("p", &HashMap::from([("t".to_string(), Digest::of(b"x"))]))
        .await
        .unwrap();
    assert_eq!(store.baseline("p").await.unwrap().len(), 1);
}
