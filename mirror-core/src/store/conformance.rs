//! Conformance checks for store backends, shared by every backend (behind
//! the `conformance` feature). Each takes the trait object, so a new
//! backend (S3, PostgreSQL) runs the same checks by calling these from one
//! test that constructs it; they panic with the failed expectation.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::job::{Job, JobFilter, JobStatus, JobSubmission, PARAM_POLICY_ID, POLL_MIRROR};
use crate::policy::{MirroringStatus, PolicyForm, PollMirroringPolicy, RemoteEndpoint};
use crate::secret::Secret;
use crate::store::parts::UploadProgress;
use crate::store::{
    BlobEntry, BlobStore, JobLogStore, JobStore, LeaseStore, ManifestRecord, NewRepository,
    PolicyStore, RepositoryStore, StoreError, TagHistoryEntry, TagRecord, TagSource, Visibility,
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
    blob_listing(store).await;
    chunked_uploads(store).await;
}

/// The entries of `digests` in `store`'s listing, by digest.
async fn listed(store: &dyn BlobStore, digests: &[Digest]) -> HashMap<Digest, BlobEntry> {
    let mut out = HashMap::new();
    let mut listing = store.list();
    while let Some(entry) = listing.next().await {
        let entry = entry.unwrap();
        assert!(
            out.insert(entry.digest.clone(), entry.clone()).is_none()
                || !digests.contains(&entry.digest),
            "{} listed twice",
            entry.digest
        );
    }
    out.retain(|d, _| digests.contains(d));
    out
}

/// Checks [`BlobStore::list`]: every committed blob once, with its size
/// and a last-modified time of its commit; never an upload in progress or
/// a deleted blob.
pub async fn blob_listing(store: &dyn BlobStore) {
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let contents: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000 + i as usize]).collect();
    let digests: Vec<Digest> = contents.iter().map(|c| Digest::of(c)).collect();
    for (c, d) in contents.iter().zip(&digests) {
        store.put(Bytes::from(c.clone()), d).await.unwrap();
    }
    let mut pending = store.writer().await.unwrap();
    pending.write(Bytes::from_static(b"not yet")).await.unwrap();
    let unfinished = Digest::of(b"not yet");
    let after = chrono::Utc::now() + chrono::Duration::seconds(5);
    let mut wanted = digests.clone();
    wanted.push(unfinished.clone());
    let found = listed(store, &wanted).await;
    assert!(!found.contains_key(&unfinished), "an upload was listed");
    for (c, d) in contents.iter().zip(&digests) {
        let e = found.get(d).unwrap_or_else(|| panic!("{d} not listed"));
        assert_eq!(e.size, c.len() as u64, "size of {d}");
        assert!(
            e.modified >= before && e.modified <= after,
            "{d} modified at {}, committed between {before} and {after}",
            e.modified
        );
    }
    pending.cancel().await.unwrap();
    store.delete(&digests[0]).await.unwrap();
    let found = listed(store, &digests).await;
    assert!(
        !found.contains_key(&digests[0]),
        "a deleted blob was listed"
    );
    assert_eq!(found.len(), 2);
    for d in &digests[1..] {
        store.delete(d).await.unwrap();
    }
}

/// Writes `chunks` as the next parts of `upload`, one part each, with the
/// progress saved and read back between parts (as requests on different
/// replicas would).
async fn append_parts(
    store: &dyn BlobStore,
    upload: &str,
    mut progress: UploadProgress,
    chunks: &[&[u8]],
) -> UploadProgress {
    for chunk in chunks {
        progress = UploadProgress::decode(&progress.encode()).unwrap();
        let mut part = progress.next_part(store, upload).await.unwrap();
        for piece in chunk.chunks(100_000) {
            part.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        assert_eq!(part.written(), chunk.len() as u64);
        let (name, hasher) = part.finish().await.unwrap();
        progress = progress.with_part(name, hasher);
    }
    progress
}

/// Checks a [`BlobStore`]'s parts of chunked uploads ([`super::parts`]):
/// parts continue each other's hash across saved progress, a completed
/// upload is the blob (one part moved, several copied), a wrong digest
/// leaves nothing visible, and `delete_parts` removes them.
pub async fn chunked_uploads(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 241) as u8).collect();
    let d = Digest::of(&data);
    let upload = uuid::Uuid::new_v4().to_string();

    // Three parts, then a wrong digest: refused, nothing visible.
    let progress = append_parts(
        store,
        &upload,
        UploadProgress::new(),
        &[&data[..1], &data[1..300_000], &[]],
    )
    .await;
    let progress = append_parts(store, &upload, progress, &[&data[300_000..]]).await;
    assert_eq!(progress.size, data.len() as u64);
    assert_eq!(progress.parts.len(), 3, "an empty part is left out");
    let wrong = Digest::of(b"not it");
    match progress.complete(store, &upload, &wrong).await {
        Err(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (wrong.clone(), d.clone()));
        }
        r => panic!("expected a digest mismatch, got {r:?}"),
    }
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    assert_eq!(
        store.stat(&d).await.unwrap(),
        None,
        "visible before complete"
    );
    // Several parts: copied, whole.
    progress.complete(store, &upload, &d).await.unwrap();
    assert_eq!(read_all(store, &d, 0, None).await, data);
    store.delete_parts(&upload).await.unwrap();
    store.delete_parts(&upload).await.unwrap();
    assert!(matches!(
        store.part_reader(&upload, &progress.parts[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    store.delete(&d).await.unwrap();

    // One part: moved into place.
    let upload = uuid::Uuid::new_v4().to_string();
    let progress = append_parts(store, &upload, UploadProgress::new(), &[&data]).await;
    let mut read = Vec::new();
    let mut stream = store
        .part_reader(&upload, &progress.parts[0])
        .await
        .unwrap();
    while let Some(c) = stream.next().await {
        read.extend_from_slice(&c.unwrap());
    }
    assert_eq!(read, data, "a part reads back whole");
    progress.complete(store, &upload, &d).await.unwrap();
    assert_eq!(read_all(store, &d, 0, None).await, data);
    store.delete_parts(&upload).await.unwrap();
    store.delete(&d).await.unwrap();

    // No bytes at all: the empty blob.
    let empty = Digest::of(b"");
    UploadProgress::new()
        .complete(store, &uuid::Uuid::new_v4().to_string(), &empty)
        .await
        .unwrap();
    assert_eq!(store.stat(&empty).await.unwrap(), Some(0));

    // A part dropped unfinished is not an error and leaves the upload as
    // it was; upload IDs that could escape the store are refused.
    let upload = uuid::Uuid::new_v4().to_string();
    let mut part = UploadProgress::new()
        .next_part(store, &upload)
        .await
        .unwrap();
    part.write(Bytes::from_static(b"lost")).await.unwrap();
    drop(part);
    store.delete_parts(&upload).await.unwrap();
    for bad in ["../x", "", "a/b", "a.b"] {
        assert!(
            store.part_writer(bad, crate::Hasher::new()).await.is_err(),
            "{bad:?} accepted"
        );
        assert!(store.delete_parts(bad).await.is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        store.purge_uploads().await.unwrap(),
        0,
        "fresh parts purged"
    );
}

/// The names of `repo`'s tags, in the order the store lists them.
async fn tag_names(store: &dyn RepositoryStore, repo: &RepositoryName) -> Vec<String> {
    let tags = store.tags(repo).await.unwrap();
    tags.into_iter().map(|t| t.name).collect()
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
        mirrored: Some(TagSource {
            policy_id: "p1".into(),
            remote_repository: "https://r/x".into(),
            remote_tag: "v1".into(),
            remote_digest: None,
        }),
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
    let source = tags[0]
        .mirrored
        .as_ref()
        .expect("where it was mirrored from");
    assert_eq!(
        (source.policy_id.as_str(), source.remote_repository.as_str()),
        ("p1", "https://r/x")
    );
    assert_eq!(source.remote_tag, "v1");
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
    assert_eq!(tag_names(store, &name).await, ["image"]);
    assert!(store.manifest(&name, &image).await.unwrap().is_some());
    assert!(store.has_blob(&name, &layer).await.unwrap());
    assert!(!store.delete_manifest(&missing, &image).await.unwrap());

    // Tags sort byte by byte, whatever the backend's locale.
    let names = ["v1.0", "B", "a", "a.b", "a-b", "ab", "_x"];
    let named: Vec<TagRecord> = names
        .iter()
        .map(|n| TagRecord {
            name: n.to_string(),
            ..tag.clone()
        })
        .collect();
    store.publish(&name, &records, &named).await.unwrap();
    let mut sorted = names.to_vec();
    sorted.push("image");
    sorted.sort_unstable();
    assert_eq!(tag_names(store, &name).await, sorted);

    assert!(store.delete_repository(&name).await.unwrap());
    assert!(!store.delete_repository(&name).await.unwrap());
    assert!(store.manifest(&name, &image).await.unwrap().is_none());
    assert!(store.tags(&name).await.unwrap().is_empty());
    assert!(!store.has_blob(&name, &layer).await.unwrap());
    assert!(store.holders(&layer).await.unwrap().is_empty());
    assert!(store.repositories().await.unwrap().is_empty());
    gc_holds_and_claims(store).await;
    tag_history(store).await;
}

/// Checks garbage collection's part of a [`RepositoryStore`]: `content`,
/// holds (taken by `publish`, `link_blob` and `hold_digests`), claims
/// refused for what is linked, referenced or held, a claim seen by a hold
/// until released or stale, and conditional removals.
pub async fn gc_holds_and_claims(store: &dyn RepositoryStore) {
    use chrono::{Duration, Utc};
    let name = RepositoryName::parse("gc/app").unwrap();
    store
        .create_repository(&NewRepository {
            name: name.clone(),
            visibility: Visibility::Private,
            short_description: String::new(),
        })
        .await
        .unwrap();
    let (layer, image, index, pushed, loose) = (
        Digest::of(b"gc layer"),
        Digest::of(b"gc image"),
        Digest::of(b"gc index"),
        Digest::of(b"gc pushed"),
        Digest::of(b"gc loose"),
    );
    let record = |digest: &Digest, blobs: Vec<Digest>, children: Vec<Digest>| ManifestRecord {
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 5,
        blobs,
        children,
        subject: None,
        artifact_type: None,
    };
    let start = Utc::now() - Duration::seconds(1);
    store
        .publish(
            &name,
            &[
                record(&image, vec![layer.clone()], vec![]),
                record(&index, vec![], vec![image.clone()]),
            ],
            &[TagRecord {
                name: "v1".into(),
                digest: index.clone(),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                size: 5,
                mirrored: None,
                updated_at: crate::job::now(),
            }],
        )
        .await
        .unwrap();
    store.link_blob(&name, &pushed).await.unwrap();

    let content = store.content(&name).await.unwrap();
    assert_eq!(content.tags, vec![("v1".to_string(), index.clone())]);
    let mut manifests = content.manifests.clone();
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut want = vec![
        record(&image, vec![layer.clone()], vec![]),
        record(&index, vec![], vec![image.clone()]),
    ];
    want.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(manifests, want);
    let mut links = content.blobs.clone();
    links.sort();
    let mut want = vec![layer.clone(), pushed.clone()];
    want.sort();
    assert_eq!(links, want);
    assert_eq!(
        store
            .content(&RepositoryName::parse("gc/none").unwrap())
            .await
            .unwrap(),
        Default::default()
    );

    // Publish and link held what they linked.
    let held = store.held_since(start).await.unwrap();
    for d in [&layer, &image, &index, &pushed] {
        assert!(held.contains(d), "{d} not held after publish/link");
    }

    // Nothing linked or referenced is claimed, even with no hold counting.
    let later = Utc::now() + Duration::hours(1);
    let all = vec![
        layer.clone(),
        image.clone(),
        index.clone(),
        pushed.clone(),
        loose.clone(),
    ];
    assert_eq!(
        store
            .claim_unreferenced(&all, later, Utc::now())
            .await
            .unwrap(),
        vec![loose.clone()]
    );
    // A live claim is not claimed again (by another collector).
    assert!(
        store
            .claim_unreferenced(std::slice::from_ref(&loose), later, Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "a live claim was taken twice"
    );
    // A hold sees the claim until it is released.
    let now = Utc::now();
    assert_eq!(
        store
            .hold_digests(&[loose.clone(), layer.clone()], now)
            .await
            .unwrap(),
        vec![loose.clone()]
    );
    store
        .release_claims(std::slice::from_ref(&loose))
        .await
        .unwrap();
    assert!(
        store
            .hold_digests(std::slice::from_ref(&loose), now)
            .await
            .unwrap()
            .is_empty()
    );
    // A held digest is not claimed; one held before `held_since` is.
    assert!(
        store
            .claim_unreferenced(std::slice::from_ref(&loose), start, Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "a held digest was claimed"
    );
    let claimed_at = Utc::now();
    assert_eq!(
        store
            .claim_unreferenced(std::slice::from_ref(&loose), later, claimed_at)
            .await
            .unwrap(),
        vec![loose.clone()]
    );
    // A claim older than CLAIM_TTL is a dead collector's: ignored.
    let stale =
        claimed_at + Duration::from_std(crate::store::CLAIM_TTL).unwrap() + Duration::seconds(1);
    assert!(
        store
            .hold_digests(std::slice::from_ref(&loose), stale)
            .await
            .unwrap()
            .is_empty()
    );
    // And another collector may take it over.
    assert_eq!(
        store
            .claim_unreferenced(std::slice::from_ref(&loose), later, stale)
            .await
            .unwrap(),
        vec![loose.clone()],
        "a stale claim was not taken over"
    );
    store
        .release_claims(std::slice::from_ref(&loose))
        .await
        .unwrap();

    // Conditional removals: nothing tagged, referenced or held goes.
    let (m, l) = store
        .remove_unreferenced(
            &name,
            &[index.clone(), image.clone()],
            &[layer.clone(), pushed.clone()],
            later,
        )
        .await
        .unwrap();
    assert!(
        m.is_empty() && l == vec![pushed.clone()],
        "removed {m:?} {l:?}"
    );
    assert!(store.delete_tag(&name, "v1").await.unwrap());
    let (m, l) = store
        .remove_unreferenced(
            &name,
            &[index.clone(), image.clone()],
            std::slice::from_ref(&layer),
            start,
        )
        .await
        .unwrap();
    assert!(
        m.is_empty() && l.is_empty(),
        "held content removed: {m:?} {l:?}"
    );
    let (m, l) = store
        .remove_unreferenced(
            &name,
            &[index.clone(), image.clone()],
            std::slice::from_ref(&layer),
            later,
        )
        .await
        .unwrap();
    assert_eq!(m, vec![index.clone(), image.clone()]);
    assert_eq!(l, vec![layer.clone()]);
    assert_eq!(store.content(&name).await.unwrap(), Default::default());
    assert_eq!(
        store
            .claim_unreferenced(&all, later, Utc::now())
            .await
            .unwrap()
            .len(),
        all.len(),
        "unreferenced once removed"
    );
    store.release_claims(&all).await.unwrap();

    assert!(store.prune_holds(later).await.unwrap() >= 4);
    assert!(store.held_since(start).await.unwrap().is_empty());
    assert!(store.delete_repository(&name).await.unwrap());
}

/// Checks [`RepositoryStore::tag_history`]: a move or a delete records the
/// earlier value (a publish at the same digest does not), newest first,
/// with whether the manifest is still held; at most
/// [`crate::store::TAG_HISTORY_LIMIT`] per tag; gone with the repository.
pub async fn tag_history(store: &dyn RepositoryStore) {
    use crate::store::TAG_HISTORY_LIMIT;
    let name = RepositoryName::parse("hist/app").unwrap();
    let missing = RepositoryName::parse("hist/none").unwrap();
    let new = NewRepository {
        name: name.clone(),
        visibility: Visibility::Private,
        short_description: String::new(),
    };
    store.create_repository(&new).await.unwrap();
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = |d: &Digest| ManifestRecord {
        digest: d.clone(),
        media_type: media_type.into(),
        size: 7,
        blobs: vec![],
        children: vec![],
        subject: None,
        artifact_type: None,
    };
    let (a, b, c) = (
        Digest::of(b"history a"),
        Digest::of(b"history b"),
        Digest::of(b"history c"),
    );
    let at = |secs: i64| chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap();
    let tag = |tag: &str, d: &Digest, policy: Option<&str>, secs: i64| TagRecord {
        name: tag.into(),
        digest: d.clone(),
        media_type: media_type.into(),
        size: 7,
        mirrored: policy.map(|p| TagSource {
            policy_id: p.into(),
            remote_repository: "https://r/x".into(),
            remote_tag: tag.into(),
            remote_digest: None,
        }),
        updated_at: at(secs),
    };
    let history = |t: &'static str| {
        let name = name.clone();
        async move { store.tag_history(&name, t).await.unwrap() }
    };
    store
        .publish(
            &name,
            &[manifest(&a), manifest(&b), manifest(&c)],
            &[tag("v1", &a, None, 0)],
        )
        .await
        .unwrap();
    assert!(history("v1").await.is_empty(), "a new tag has no history");
    // The same digest again (a poll re-publishing it) is no move.
    store
        .publish(&name, &[], &[tag("v1", &a, Some("p1"), 5)])
        .await
        .unwrap();
    assert!(history("v1").await.is_empty(), "same digest: no history");
    store
        .publish(&name, &[], &[tag("v1", &b, Some("p2"), 10)])
        .await
        .unwrap();
    let first = TagHistoryEntry {
        digest: a.clone(),
        media_type: media_type.into(),
        size: 7,
        tagged_at: at(5),
        replaced_at: at(10),
        replaced_by: Some(b.clone()),
        mirrored_by: Some("p1".into()),
        available: true,
    };
    assert_eq!(history("v1").await, std::slice::from_ref(&first));
    assert!(history("v2").await.is_empty());
    assert!(store.tag_history(&missing, "v1").await.unwrap().is_empty());

    // A delete: replaced by nothing, at the time of the delete.
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    assert!(store.delete_tag(&name, "v1").await.unwrap());
    assert!(!store.delete_tag(&name, "v1").await.unwrap());
    let h = history("v1").await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(
        (&h[0].digest, &h[0].replaced_by, h[0].mirrored_by.as_deref()),
        (&b, &None, Some("p2"))
    );
    assert_eq!(h[0].tagged_at, at(10));
    assert!(h[0].replaced_at >= before, "{h:?}");
    assert!(h[0].available);
    assert_eq!(h[1], first);

    // Deleting a manifest deletes its tags: recorded, and no longer held.
    store
        .publish(&name, &[], &[tag("v1", &c, None, 20)])
        .await
        .unwrap();
    assert!(store.delete_manifest(&name, &c).await.unwrap());
    let h = history("v1").await;
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!((&h[0].digest, &h[0].replaced_by), (&c, &None));
    assert!(!h[0].available, "the manifest is gone: {h:?}");
    assert!(h[1].available && h[2].available);

    // At most TAG_HISTORY_LIMIT per tag: the oldest go.
    let moves = TAG_HISTORY_LIMIT + 3;
    for i in 0..=moves {
        let d = if i % 2 == 0 { &a } else { &b };
        store
            .publish(&name, &[], &[tag("v2", d, None, 100 + i as i64)])
            .await
            .unwrap();
    }
    let h = history("v2").await;
    assert_eq!(h.len(), TAG_HISTORY_LIMIT);
    assert_eq!(h[0].replaced_at, at(100 + moves as i64));
    assert_eq!(h[0].tagged_at, at(100 + moves as i64 - 1));
    assert_eq!(
        h[TAG_HISTORY_LIMIT - 1].tagged_at,
        at(100 + (moves - TAG_HISTORY_LIMIT) as i64)
    );
    assert_eq!(history("v1").await.len(), 3, "other tags keep theirs");

    // The history goes with the repository.
    assert!(store.delete_repository(&name).await.unwrap());
    store.create_repository(&new).await.unwrap();
    assert!(history("v1").await.is_empty());
    assert!(history("v2").await.is_empty());
    assert!(store.delete_repository(&name).await.unwrap());
}

/// Checks that [`RepositoryStore::publish`] is one transaction: a reader
/// running alongside sees none of a publish's tags or all of them, and a
/// repository re-created after a delete starts empty.
pub async fn publish_is_atomic(store: &dyn RepositoryStore) {
    let name = RepositoryName::parse("acme/atomic").unwrap();
    let new = NewRepository {
        name: name.clone(),
        visibility: Visibility::Private,
        short_description: String::new(),
    };
    store.create_repository(&new).await.unwrap();
    const ROUNDS: usize = 5;
    const TAGS: usize = 40;
    let batch = |round: usize| -> (Vec<ManifestRecord>, Vec<TagRecord>) {
        (0..TAGS)
            .map(|i| {
                let digest = Digest::of(format!("manifest {round} {i}").as_bytes());
                let manifest = ManifestRecord {
                    digest: digest.clone(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    size: 10,
                    blobs: vec![Digest::of(format!("layer {round} {i}").as_bytes())],
                    children: vec![],
                    subject: None,
                    artifact_type: None,
                };
                let tag = TagRecord {
                    name: format!("t{i:03}"),
                    digest,
                    media_type: manifest.media_type.clone(),
                    size: 10,
                    mirrored: None,
                    updated_at: chrono::Utc::now(),
                };
                (manifest, tag)
            })
            .unzip()
    };
    // Which round's publish wrote tag `t{i}` pointing at `digest`.
    let round_of = |tag: &str, digest: &Digest| -> Option<usize> {
        let i: usize = tag[1..].parse().ok()?;
        (0..ROUNDS).find(|r| *digest == Digest::of(format!("manifest {r} {i}").as_bytes()))
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let writer = async {
        for round in 0..ROUNDS {
            let (manifests, tags) = batch(round);
            store.publish(&name, &manifests, &tags).await.unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let reader = async {
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
            let tags = store.tags(&name).await.unwrap();
            // No tag yet, or every tag of one publish.
            let rounds: std::collections::HashSet<Option<usize>> =
                tags.iter().map(|t| round_of(&t.name, &t.digest)).collect();
            assert!(
                tags.is_empty() || (tags.len() == TAGS && rounds.len() == 1),
                "a publish seen half done: {} of {TAGS} tags, of rounds {rounds:?}",
                tags.len()
            );
            reads += 1;
            tokio::task::yield_now().await;
        }
    };
    futures_util::future::join(writer, reader).await;
    let (manifests, _) = batch(ROUNDS - 1);
    for m in &manifests {
        assert_eq!(
            store.manifest(&name, &m.digest).await.unwrap().as_ref(),
            Some(m)
        );
        assert!(store.has_blob(&name, &m.blobs[0]).await.unwrap());
    }
    // Deleting the repository takes everything it held.
    assert!(store.delete_repository(&name).await.unwrap());
    store.create_repository(&new).await.unwrap();
    assert_eq!(store.tag_count(&name).await.unwrap(), 0);
    assert!(
        store
            .manifest(&name, &manifests[0].digest)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.has_blob(&name, &manifests[0].blobs[0]).await.unwrap());
    assert!(store.delete_repository(&name).await.unwrap());
}

/// Checks [`RepositoryStore::publish_cached`]: manifests and tags are
/// recorded as [`RepositoryStore::publish`] records them, but none of the
/// manifests' blobs is linked until [`RepositoryStore::link_blob`] links
/// it.
pub async fn publish_cached(store: &dyn RepositoryStore) {
    let name = RepositoryName::parse("cache/app").unwrap();
    let missing = RepositoryName::parse("cache/none").unwrap();
    store
        .create_repository(&NewRepository {
            name: name.clone(),
            visibility: Visibility::Private,
            short_description: String::new(),
        })
        .await
        .unwrap();
    let (config, layer) = (Digest::of(b"cached config"), Digest::of(b"cached layer"));
    let manifest = ManifestRecord {
        digest: Digest::of(b"cached image"),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 12,
        blobs: vec![config.clone(), layer.clone()],
        children: vec![],
        subject: None,
        artifact_type: None,
    };
    let tag = TagRecord {
        name: "latest".into(),
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.size,
        mirrored: None,
        updated_at: crate::job::now(),
    };
    assert!(matches!(
        store
            .publish_cached(
                &missing,
                std::slice::from_ref(&manifest),
                std::slice::from_ref(&tag)
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .publish_cached(
            &name,
            std::slice::from_ref(&manifest),
            std::slice::from_ref(&tag),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .manifest(&name, &manifest.digest)
            .await
            .unwrap()
            .as_ref(),
        Some(&manifest)
    );
    assert_eq!(store.tag(&name, "latest").await.unwrap(), Some(tag.clone()));
    assert!(store.has_blob(&name, &manifest.digest).await.unwrap());
    for b in [&config, &layer] {
        assert!(!store.has_blob(&name, b).await.unwrap(), "{b} linked");
    }
    let content = store.content(&name).await.unwrap();
    assert_eq!(content.manifests, std::slice::from_ref(&manifest));
    assert_eq!(
        content.tags,
        [("latest".to_string(), manifest.digest.clone())]
    );
    assert!(content.blobs.is_empty(), "{:?}", content.blobs);

    // Blobs are linked one by one as they are fetched.
    store.link_blob(&name, &layer).await.unwrap();
    assert!(store.has_blob(&name, &layer).await.unwrap());
    assert!(!store.has_blob(&name, &config).await.unwrap());
    store.link_blob(&name, &config).await.unwrap();
    assert!(store.has_blob(&name, &config).await.unwrap());
    let mut linked = store.content(&name).await.unwrap().blobs;
    linked.sort_by_key(|d| d.to_string());
    let mut expected = vec![config, layer];
    expected.sort_by_key(|d| d.to_string());
    assert_eq!(linked, expected);
    assert!(store.delete_repository(&name).await.unwrap());
}

/// A proxy cache of `namespace` on `host`, with `password` (and a user
/// name when there is one), created `age_secs` seconds ago.
fn sample_proxy_cache(
    namespace: &str,
    host: &str,
    password: &str,
    age_secs: i64,
) -> crate::proxy_cache::ProxyCache {
    let at = crate::job::now() - chrono::Duration::seconds(age_secs);
    crate::proxy_cache::ProxyCache {
        namespace: namespace.into(),
        host: host.into(),
        username: if password.is_empty() {
            String::new()
        } else {
            "robot".into()
        },
        password: Secret::new(password),
        remote_ca: String::new(),
        skip_tls_verification: false,
        tag_ttl_secs: crate::proxy_cache::DEFAULT_TAG_TTL_SECS,
        max_bytes: 0,
        anonymous_pull: false,
        is_default: false,
        created_at: at,
        updated_at: at,
    }
}

/// Checks a [`crate::store::ProxyCacheStore`]: every field and the
/// password read back as written (an empty password too), one cache per
/// namespace, listing by namespace, updates (never of the namespace or
/// `created_at`), deletes.
pub async fn proxy_caches(store: &dyn crate::store::ProxyCacheStore) {
    let hub = sample_proxy_cache("docker.io", "https://index.docker.io", "hub pw", 30);
    let quay = sample_proxy_cache("quay", "https://quay.io", "", 20);
    let ghcr = sample_proxy_cache("ghcr", "https://ghcr.io", "ghcr token", 10);
    assert!(store.proxy_caches().await.unwrap().is_empty());
    for c in [&quay, &hub, &ghcr] {
        store.insert_proxy_cache(c).await.unwrap();
    }
    let again = crate::proxy_cache::ProxyCache {
        host: "https://elsewhere.example".into(),
        ..hub.clone()
    };
    assert!(
        matches!(
            store.insert_proxy_cache(&again).await,
            Err(StoreError::Conflict { .. })
        ),
        "a namespace has one cache"
    );
    let read = store.proxy_cache("docker.io").await.unwrap();
    assert_eq!(read.as_ref(), Some(&hub));
    assert_eq!(read.unwrap().password.expose(), "hub pw");
    assert_eq!(
        store.proxy_cache("quay").await.unwrap().as_ref(),
        Some(&quay)
    );
    assert!(store.proxy_cache("nope").await.unwrap().is_none());
    assert_eq!(
        store.proxy_caches().await.unwrap(),
        [hub.clone(), ghcr.clone(), quay.clone()],
        "by namespace"
    );

    // An update replaces every field but the namespace and created_at.
    let mut updated = hub.clone();
    updated.host = "https://registry-1.docker.io".into();
    updated.username = "someone".into();
    updated.password = Secret::new("new pw");
    updated.remote_ca = "PEM".into();
    updated.skip_tls_verification = true;
    updated.tag_ttl_secs = 0;
    updated.max_bytes = 5 << 40;
    updated.anonymous_pull = true;
    updated.is_default = true;
    updated.updated_at = crate::job::now() + chrono::Duration::seconds(5);
    let mut sent = updated.clone();
    sent.created_at = crate::job::now() + chrono::Duration::seconds(60);
    assert!(store.update_proxy_cache(&sent).await.unwrap());
    assert_eq!(
        store.proxy_cache("docker.io").await.unwrap().as_ref(),
        Some(&updated)
    );
    // A password set, then dropped.
    let mut with = quay.clone();
    with.username = "u".into();
    with.password = Secret::new("quay pw");
    assert!(store.update_proxy_cache(&with).await.unwrap());
    assert_eq!(
        store.proxy_cache("quay").await.unwrap().as_ref(),
        Some(&with)
    );
    assert!(
        store
            .update_proxy_cache(&without_password(&ghcr))
            .await
            .unwrap()
    );
    assert_eq!(
        store.proxy_cache("ghcr").await.unwrap(),
        Some(without_password(&ghcr))
    );
    let ghost = sample_proxy_cache("ghost", "https://r.example", "", 0);
    assert!(!store.update_proxy_cache(&ghost).await.unwrap());
    assert!(store.proxy_cache("ghost").await.unwrap().is_none());

    assert!(store.delete_proxy_cache("docker.io").await.unwrap());
    assert!(!store.delete_proxy_cache("docker.io").await.unwrap());
    assert!(!store.delete_proxy_cache("nope").await.unwrap());
    assert!(store.proxy_cache("docker.io").await.unwrap().is_none());
    assert_eq!(
        store.proxy_caches().await.unwrap(),
        [without_password(&ghcr), with.clone()]
    );
    // The namespace is free again.
    store.insert_proxy_cache(&hub).await.unwrap();
    assert_eq!(store.proxy_cache("docker.io").await.unwrap(), Some(hub));
}

/// `c` without its password and user name.
fn without_password(c: &crate::proxy_cache::ProxyCache) -> crate::proxy_cache::ProxyCache {
    crate::proxy_cache::ProxyCache {
        username: String::new(),
        password: Secret::default(),
        ..c.clone()
    }
}

/// Checks [`crate::store::ProxyCacheStore`]'s pull times (`repos` is the
/// same database's [`RepositoryStore`]; the check creates and deletes the
/// repositories `hub`, `hub/library/a`, `hub/b` and `hubx/b`): a batch
/// keeps each manifest's latest time, a later pull replaces an earlier
/// one and never the reverse, `pulls` lists one namespace's repositories
/// (least recently pulled first), a pull of a repository that does not
/// exist is ignored, `forget_pull` forgets one, and a deleted
/// repository's pulls go with it.
pub async fn cache_pulls(store: &dyn crate::store::ProxyCacheStore, repos: &dyn RepositoryStore) {
    use crate::store::CachePull;
    let name = |s: &str| RepositoryName::parse(s).unwrap();
    let (top, a, b, x) = (
        name("hub"),
        name("hub/library/a"),
        name("hub/b"),
        name("hubx/b"),
    );
    for r in [&top, &a, &b, &x] {
        repos
            .create_repository(&NewRepository {
                name: r.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await
            .unwrap();
    }
    let (d1, d2) = (Digest::of(b"pulled one"), Digest::of(b"pulled two"));
    let t0 = crate::job::now() - chrono::Duration::seconds(600);
    let pull = |r: &RepositoryName, d: &Digest, secs: i64| CachePull {
        repository: r.clone(),
        digest: d.clone(),
        // Microseconds too: stores keep them.
        pulled_at: t0 + chrono::Duration::seconds(secs) + chrono::Duration::microseconds(7),
    };
    assert!(store.pulls("hub").await.unwrap().is_empty());
    store.record_pulls(&[]).await.unwrap();

    // One batch; the latest time of a manifest pulled twice in it wins.
    store
        .record_pulls(&[
            pull(&a, &d1, 10),
            pull(&b, &d1, 5),
            pull(&a, &d2, 20),
            pull(&x, &d1, 1),
            pull(&a, &d1, 3),
            pull(&top, &d2, 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.pulls("hub").await.unwrap(),
        [
            pull(&top, &d2, 2),
            pull(&b, &d1, 5),
            pull(&a, &d1, 10),
            pull(&a, &d2, 20)
        ],
        "least recently pulled first, never hubx's"
    );
    assert_eq!(store.pulls("hubx").await.unwrap(), [pull(&x, &d1, 1)]);
    for other in ["hu", "library", "hub/library", ""] {
        assert!(store.pulls(other).await.unwrap().is_empty(), "{other:?}");
    }

    // A later pull replaces the time; an earlier one (a replica flushing
    // late) does not.
    store
        .record_pulls(&[pull(&a, &d1, 30), pull(&a, &d2, 15)])
        .await
        .unwrap();
    assert_eq!(
        store.pulls("hub").await.unwrap(),
        [
            pull(&top, &d2, 2),
            pull(&b, &d1, 5),
            pull(&a, &d2, 20),
            pull(&a, &d1, 30)
        ]
    );

    // A pull of a repository that does not exist is ignored, not the batch.
    store
        .record_pulls(&[pull(&name("hub/gone"), &d1, 40), pull(&b, &d2, 40)])
        .await
        .unwrap();
    assert_eq!(
        store.pulls("hub").await.unwrap(),
        [
            pull(&top, &d2, 2),
            pull(&b, &d1, 5),
            pull(&a, &d2, 20),
            pull(&a, &d1, 30),
            pull(&b, &d2, 40)
        ]
    );

    // An evicted manifest is forgotten (twice is not an error).
    store.forget_pull(&a, &d1).await.unwrap();
    store.forget_pull(&a, &d1).await.unwrap();
    store.forget_pull(&x, &d2).await.unwrap();
    assert_eq!(
        store.pulls("hub").await.unwrap(),
        [
            pull(&top, &d2, 2),
            pull(&b, &d1, 5),
            pull(&a, &d2, 20),
            pull(&b, &d2, 40)
        ]
    );
    assert_eq!(store.pulls("hubx").await.unwrap(), [pull(&x, &d1, 1)]);

    // A deleted repository's pulls go with it, and do not come back with
    // a repository of the same name.
    assert!(repos.delete_repository(&b).await.unwrap());
    repos
        .create_repository(&NewRepository {
            name: b.clone(),
            visibility: Visibility::Private,
            short_description: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.pulls("hub").await.unwrap(),
        [pull(&top, &d2, 2), pull(&a, &d2, 20)]
    );
    for r in [&top, &a, &b, &x] {
        assert!(repos.delete_repository(r).await.unwrap());
    }
    assert!(store.pulls("hub").await.unwrap().is_empty());
    assert!(store.pulls("hubx").await.unwrap().is_empty());
}

/// Checks a [`JobStore`] (claims: one winner, oldest due first; cancel;
/// stale recovery) with its [`JobLogStore`] (appends, reads from an offset,
/// a deleted job's log goes with it).
pub async fn job_queue(jobs: &dyn JobStore, logs: &dyn JobLogStore) {
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
        jobs.insert_job(j).await.unwrap();
    }
    let now = chrono::Utc::now();
    let claimed = jobs
        .claim_job("w1", None, now, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, old.id, "oldest due job first");
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.worker_id, "w1");
    let claimed2 = jobs
        .claim_job("w2", None, now, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed2.id, new.id);
    assert!(
        jobs.claim_job("w3", None, now, None)
            .await
            .unwrap()
            .is_none(),
        "future job claimed"
    );
    assert!(
        jobs.claim_job("w3", Some(&old.id), now, None)
            .await
            .unwrap()
            .is_none(),
        "claimed twice"
    );
    let running = jobs
        .jobs(&JobFilter {
            running: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 3);
    let c = jobs.request_cancel(&future.id).await.unwrap().unwrap();
    assert_eq!(
        c.status,
        JobStatus::Canceled,
        "a waiting job cancels at once"
    );
    let c = jobs.request_cancel(&old.id).await.unwrap().unwrap();
    assert!(c.cancel_requested && c.status == JobStatus::Running);
    logs.append_log(&old.id, &["a".into(), "b".into()])
        .await
        .unwrap();
    logs.append_log(&old.id, &["c".into()]).await.unwrap();
    let lines = logs.logs(&old.id, 1, 0).await.unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.line_num, l.data.as_str()))
            .collect::<Vec<_>>(),
        [(1, "b"), (2, "c")]
    );
    let stale = jobs
        .stale_jobs(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(stale.len(), 2);
    assert!(jobs.delete_job(&old.id).await.unwrap());
    assert!(logs.logs(&old.id, 0, 0).await.unwrap().is_empty());
}

/// Checks [`JobStore::replace_lost_job`], the compare-and-set of crash
/// recovery: of two recoveries of one stale job at once exactly one wins,
/// and a job heart-beated, or recovered and claimed again, after it was
/// found stale is left alone; and [`JobStore::finish_job`]: a worker that
/// lost its job cannot write its end over the new run.
pub async fn lost_job_recovery(jobs: &dyn JobStore) {
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stale_cutoff = chrono::Utc::now() - chrono::Duration::minutes(1);
    // A job claimed by `w1` long ago, as recovery finds it.
    let lost = async || {
        let mut j = Job::new(&JobSubmission {
            action: POLL_MIRROR.into(),
            retries: 1,
            ..Default::default()
        });
        j.scheduled_at = long_ago;
        jobs.insert_job(&j).await.unwrap();
        jobs.claim_job("w1", Some(&j.id), long_ago, None)
            .await
            .unwrap()
            .unwrap();
        let found = jobs.stale_jobs(stale_cutoff).await.unwrap();
        let found = found.into_iter().find(|f| f.id == j.id);
        found.expect("a job whose heartbeat stopped is stale")
    };
    // The recovery of a job as found: requeued.
    let requeued = |found: &Job| {
        let mut j = found.clone();
        j.status = JobStatus::Waiting;
        j.worker_id.clear();
        j.retries_left -= 1;
        j.last_updated = crate::job::now();
        j
    };
    let replace = async |found: &Job| {
        jobs.replace_lost_job(&requeued(found), &found.worker_id, found.heartbeat_at)
            .await
            .unwrap()
    };

    // A stored job's status, worker and retries left.
    let state = async |id: &str| {
        let j = jobs.job(id).await.unwrap().unwrap();
        (j.status, j.worker_id, j.retries_left)
    };

    // Two recoveries at once: one winner.
    let found = lost().await;
    let (a, b) = futures_util::future::join(replace(&found), replace(&found)).await;
    assert!(a ^ b, "two recoveries of one job: {a}, {b}");
    assert_eq!(state(&found.id).await, (JobStatus::Waiting, "".into(), 0));
    // Its next claim is not undone by a recovery that read it stale before.
    let now = chrono::Utc::now();
    let claimed = jobs.claim_job("w2", Some(&found.id), now, None).await;
    assert!(claimed.unwrap().is_some());
    assert!(!replace(&found).await, "a claimed job requeued");
    assert_eq!(state(&found.id).await, (JobStatus::Running, "w2".into(), 0));
    // The first worker, only slow, ends the job late: its outcome is not
    // written over the new run; the new run's own end is.
    let mut late = found.clone();
    late.status = JobStatus::Errored;
    assert!(
        !jobs.finish_job(&late, "w1").await.unwrap(),
        "a late end written"
    );
    assert_eq!(state(&found.id).await, (JobStatus::Running, "w2".into(), 0));
    let mut done = jobs.job(&found.id).await.unwrap().unwrap();
    done.status = JobStatus::Done;
    assert!(jobs.finish_job(&done, "w2").await.unwrap());
    assert_eq!(state(&found.id).await, (JobStatus::Done, "w2".into(), 0));

    // Heart-beated after it was found stale (its worker was only slow).
    let found = lost().await;
    jobs.heartbeat(&found.id, chrono::Utc::now()).await.unwrap();
    assert!(!replace(&found).await, "a live job requeued");
    assert_eq!(state(&found.id).await, (JobStatus::Running, "w1".into(), 1));
    // Found stale with no heartbeat at all (NULL), then recovered.
    let mut never = found.clone();
    never.heartbeat_at = None;
    jobs.update_job(&never).await.unwrap();
    assert!(
        replace(&never).await,
        "a job that never beat is not recovered"
    );
    assert!(!replace(&never).await, "recovered twice");
}

/// Checks a [`LeaseStore`]: one holder per policy until it releases or
/// its lease expires; releasing another's lease does nothing; a lost job's
/// leases all go at once.
pub async fn leases(store: &dyn LeaseStore) {
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::seconds(60);
    assert!(store.lease_policy("p1", "j1", later).await.unwrap());
    assert!(
        !store.lease_policy("p1", "j2", later).await.unwrap(),
        "two holders"
    );
    assert_eq!(
        store.policy_lease_holder("p1").await.unwrap().as_deref(),
        Some("j1")
    );
    store.release_policy("p1", "j2").await.unwrap();
    assert_eq!(
        store.policy_lease_holder("p1").await.unwrap().as_deref(),
        Some("j1"),
        "released by a job that did not hold it"
    );
    store.release_policy("p1", "j1").await.unwrap();
    assert!(store.policy_lease_holder("p1").await.unwrap().is_none());
    assert!(store.lease_policy("p1", "j2", later).await.unwrap());

    // An expired lease is free to take.
    let past = now - chrono::Duration::seconds(1);
    assert!(store.lease_policy("p2", "j3", past).await.unwrap());
    assert!(store.policy_lease_holder("p2").await.unwrap().is_none());
    assert!(store.lease_policy("p2", "j4", later).await.unwrap());

    // A heartbeat renews every lease of its job, and only those.
    let soon = now + chrono::Duration::milliseconds(300);
    assert!(store.lease_policy("p4", "j5", soon).await.unwrap());
    store.renew_leases("j5", later).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!store.lease_policy("p4", "j6", later).await.unwrap());
    assert_eq!(
        store.policy_lease_holder("p4").await.unwrap().as_deref(),
        Some("j5")
    );

    // Every lease of a lost job goes at once.
    assert!(store.lease_policy("p3", "j4", later).await.unwrap());
    store.release_job_leases("j4").await.unwrap();
    for p in ["p2", "p3"] {
        assert!(store.policy_lease_holder(p).await.unwrap().is_none(), "{p}");
    }
    assert_eq!(
        store.policy_lease_holder("p1").await.unwrap().as_deref(),
        Some("j2")
    );
}

/// Checks a [`PolicyStore`]'s baselines: replaced whole, kept per policy.
pub async fn policy_baselines(store: &dyn PolicyStore) {
    assert!(store.baseline("nope").await.unwrap().is_empty());
    store
        .set_baseline("p", &HashMap::from([("t".to_string(), Digest::of(b"x"))]))
        .await
        .unwrap();
    assert_eq!(store.baseline("p").await.unwrap().len(), 1);
    let next = HashMap::from([
        ("u".to_string(), Digest::of(b"y")),
        ("v".to_string(), Digest::of(b"z")),
    ]);
    store.set_baseline("p", &next).await.unwrap();
    assert_eq!(
        store.baseline("p").await.unwrap(),
        next,
        "replaced, not merged"
    );
    store.set_baseline("p", &HashMap::new()).await.unwrap();
    assert!(store.baseline("p").await.unwrap().is_empty());
}

/// A policy feeding `local` from `https://r.example` with a password and
/// a token, created `age_secs` seconds ago.
pub fn sample_policy(local: &str, age_secs: i64) -> PollMirroringPolicy {
    let endpoint = RemoteEndpoint {
        password: Secret::new(format!("pw of {local}")),
        auth_token: Secret::new(format!("token of {local}")),
        username: "robot".into(),
        ..RemoteEndpoint::anonymous("https://r.example", "team/app").unwrap()
    };
    let mut policy = PollMirroringPolicy::new(
        RepositoryName::parse(local).unwrap(),
        endpoint,
        &PolicyForm::new("https://r.example", "team/app"),
        Some("alice"),
    )
    .expect("a valid form");
    policy.created_at -= chrono::Duration::seconds(age_secs);
    policy
}

/// Checks a [`PolicyStore`]'s policies: every field and both secrets read
/// back as written, listing per repository oldest first, updates (secrets
/// included), statuses, deletes (with the baseline).
pub async fn policies(store: &dyn PolicyStore) {
    let (a, b, c) = (
        sample_policy("team/a", 30),
        sample_policy("team/b", 20),
        sample_policy("team/a", 10),
    );
    for p in [&b, &c, &a] {
        store.insert_policy(p).await.unwrap();
    }
    assert!(store.insert_policy(&a).await.is_err(), "inserted twice");
    assert_eq!(store.policy(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store
            .policy(&a.id)
            .await
            .unwrap()
            .unwrap()
            .remote
            .password
            .expose(),
        "pw of team/a"
    );
    assert!(store.policy("nope").await.unwrap().is_none());
    assert_eq!(
        store.policies(None).await.unwrap(),
        [a.clone(), b.clone(), c.clone()]
    );
    let team_a = RepositoryName::parse("team/a").unwrap();
    assert_eq!(
        store.policies(Some(&team_a)).await.unwrap(),
        [a.clone(), c.clone()]
    );

    // An update replaces the remote, its secrets, the flags and the rules.
    let mut updated = a.clone();
    updated.rules = vec![crate::rules::TagRule {
        field: "tag".into(),
        operator: crate::rules::RuleOperator::Semver,
        values: vec![">=1.2 <2".into()],
        exclude: true,
        by: None,
    }];
    updated.delete_removed = crate::policy::DeleteRemoved {
        enabled: true,
        dry_run: true,
        max_percent: 25,
    };
    updated.remote.host = "https://other.example".into();
    updated.remote.username = "someone".into();
    updated.remote.password = Secret::new("new pw");
    updated.remote.auth_token = Secret::default();
    updated.remote.skip_tls_verification = true;
    updated.remote.remote_ca = "PEM".into();
    updated.enabled = false;
    updated.owner = None;
    updated.max_bytes_per_sec = 5 * 1024 * 1024;
    assert!(store.update_policy(&updated).await.unwrap());
    assert_eq!(store.policy(&a.id).await.unwrap().as_ref(), Some(&updated));
    let mut ghost = updated.clone();
    ghost.id = "ghost".into();
    assert!(!store.update_policy(&ghost).await.unwrap());

    // A status keeps the last time something was mirrored when nothing was.
    let t1 = crate::job::now();
    let status = |code: &str| MirroringStatus {
        code: code.into(),
        detail: format!("{code} detail"),
        timestamp: t1,
    };
    store
        .record_status(&a.id, &status("SUCCESS"), Some(t1))
        .await
        .unwrap();
    store
        .record_status(&a.id, &status("FAILED"), None)
        .await
        .unwrap();
    let read = store.policy(&a.id).await.unwrap().unwrap();
    assert_eq!(read.last_status, status("FAILED"));
    assert_eq!(read.last_mirrored_at, Some(t1));

    // Deleting a policy takes its baseline.
    store
        .set_baseline(&a.id, &HashMap::from([("t".to_string(), Digest::of(b"x"))]))
        .await
        .unwrap();
    assert!(store.delete_policy(&a.id).await.unwrap());
    assert!(!store.delete_policy(&a.id).await.unwrap());
    assert!(store.policy(&a.id).await.unwrap().is_none());
    assert!(store.baseline(&a.id).await.unwrap().is_empty());
    assert_eq!(store.policies(None).await.unwrap(), [b, c]);
}

/// Checks [`JobStore::claim_job`]'s namespace share: with `per_namespace`,
/// a job polling a policy of a namespace that already runs that many jobs
/// is passed over for the next one; jobs polling every policy, and claims
/// without a share, are not limited. A `push_mirror_tag` job counts in the
/// namespace of its push policy.
pub async fn namespace_share(
    jobs: &dyn JobStore,
    policies: &dyn PolicyStore,
    push: &dyn crate::store::PushPolicyStore,
) {
    let busy = [
        sample_policy("busy/a", 0),
        sample_policy("busy/b", 0),
        sample_policy("busy/c", 0),
    ];
    let quiet = sample_policy("quiet/x", 0);
    for p in busy.iter().chain([&quiet]) {
        policies.insert_policy(p).await.unwrap();
    }
    let mut age = 100;
    let mut job_for = |policy: Option<&PollMirroringPolicy>| {
        let mut j = Job::new(&JobSubmission {
            action: POLL_MIRROR.into(),
            parameters: policy
                .map(|p| [(PARAM_POLICY_ID.to_string(), p.id.clone())].into())
                .unwrap_or_default(),
            ..Default::default()
        });
        j.scheduled_at = chrono::Utc::now() - chrono::Duration::seconds(age);
        age -= 1;
        j
    };
    // Oldest first: busy/a, busy/b, busy/c, every policy, quiet/x, busy/a.
    let queued = [
        job_for(Some(&busy[0])),
        job_for(Some(&busy[1])),
        job_for(Some(&busy[2])),
        job_for(None),
        job_for(Some(&quiet)),
        job_for(Some(&busy[0])),
    ];
    for j in &queued {
        jobs.insert_job(j).await.unwrap();
    }
    let now = chrono::Utc::now();
    let claim = async |share: Option<usize>| {
        jobs.claim_job("w", None, now, share)
            .await
            .unwrap()
            .map(|j| j.id)
    };
    let id = |i: usize| Some(queued[i].id.clone());
    assert_eq!(claim(Some(2)).await, id(0));
    assert_eq!(claim(Some(2)).await, id(1));
    assert_eq!(claim(Some(2)).await, id(3), "busy/ holds its share");
    assert_eq!(claim(Some(2)).await, id(4));
    assert_eq!(claim(Some(2)).await, None, "only busy/ jobs are left");
    assert_eq!(claim(None).await, id(2), "no share, no limit");
    assert_eq!(claim(Some(3)).await, None, "busy/ runs three");
    // A finished job frees its slot.
    let mut first = jobs.job(&queued[0].id).await.unwrap().unwrap();
    first.status = JobStatus::Done;
    jobs.update_job(&first).await.unwrap();
    assert_eq!(claim(Some(3)).await, id(5));

    // A push job of a busy/ policy waits for busy/'s share too.
    let pusher = crate::push_policy::PushPolicyForm::new("https://r.example", "team/app")
        .create(RepositoryName::parse("busy/p").unwrap(), None)
        .unwrap();
    push.insert_push_policy(&pusher).await.unwrap();
    let mut push_job = Job::new(&JobSubmission {
        action: crate::push_policy::PUSH_MIRROR_TAG.into(),
        parameters: [
            (
                crate::push_policy::PARAM_PUSH_POLICY_ID.to_string(),
                pusher.id.clone(),
            ),
            (crate::push_policy::PARAM_TAG.to_string(), "v1".to_string()),
        ]
        .into(),
        ..Default::default()
    });
    push_job.scheduled_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    jobs.insert_job(&push_job).await.unwrap();
    assert_eq!(
        claim(Some(3)).await,
        None,
        "busy/ runs three: the push waits"
    );
    assert_eq!(claim(Some(4)).await, Some(push_job.id.clone()));
}
