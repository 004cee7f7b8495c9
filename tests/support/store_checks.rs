//! What every test of a mirror's store checks in the end: nothing partial
//! is visible, every stored blob re-hashes to its name, and every tag's
//! manifests and blobs are there; and what it compares: local and upstream
//! tags, a job's log.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use futures_util::StreamExt;
use mirror_core::{Digest, Mirror, RepositoryName};
use sha2::Digest as _;

use super::Registry;

/// Local tag -> digest of `repo` in `m`.
pub async fn local_tags(m: &Mirror, repo: &str) -> BTreeMap<String, String> {
    m.stores()
        .repos
        .tags(&RepositoryName::parse(repo).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.digest.to_string()))
        .collect()
}

/// Upstream tag -> digest of `repo` on `reg`, read with the harness's own
/// client.
pub async fn upstream_tags(reg: &Registry, repo: &str) -> BTreeMap<String, String> {
    let p = reg.pusher();
    let mut out = BTreeMap::new();
    for t in p.tags(repo).await {
        out.insert(t.clone(), p.manifest_digest(repo, &t).await.unwrap());
    }
    out
}

/// A job's log lines, one text.
pub async fn log_text(m: &Mirror, job: &str) -> String {
    let lines = m.job_logs(job, 0, 0).await.unwrap();
    lines
        .into_iter()
        .map(|l| l.data)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sha256:<hex>` of the file at `path`, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> String {
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Every file under `<data_dir>/blobs` re-hashes to its name (no store yet:
/// nothing to check).
pub fn assert_blobs_rehash(data_dir: &Path) {
    let Ok(prefixes) = std::fs::read_dir(data_dir.join("blobs/sha256")) else {
        return;
    };
    for prefix in prefixes {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = blob.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                sha256_file(&path),
                format!("sha256:{name}"),
                "stored blob {} does not re-hash to its name",
                path.display()
            );
        }
    }
}

/// The files in `<data_dir>/uploads` (unfinished blob writes): name and size.
pub fn uploads(data_dir: &Path) -> Vec<(String, u64)> {
    match std::fs::read_dir(data_dir.join("uploads")) {
        Ok(entries) => entries
            .map_while(Result::ok)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every manifest and blob a tag of `repo` references is linked, stored,
/// and re-hashes to its name when read through the store.
pub async fn assert_complete(m: &Mirror, repo: &str) {
    let repo = RepositoryName::parse(repo).unwrap();
    let mut pending: Vec<Digest> = m
        .stores()
        .repos
        .tags(&repo)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.digest)
        .collect();
    while let Some(d) = pending.pop() {
        let rec = m.stores().repos.manifest(&repo, &d).await.unwrap();
        let rec = rec.unwrap_or_else(|| panic!("manifest {d} of a tag is not linked in {repo}"));
        for blob in rec.blobs.iter().chain(std::iter::once(&d)) {
            let mut r = m
                .stores()
                .blobs
                .reader(blob, 0, None)
                .await
                .unwrap_or_else(|e| panic!("{blob} referenced by a tag of {repo}: {e}"));
            let mut h = mirror_core::Hasher::new();
            while let Some(c) = r.stream.next().await {
                h.update(&c.unwrap());
            }
            assert_eq!(
                &h.finish(),
                blob,
                "stored blob does not re-hash to its name"
            );
        }
        pending.extend(rec.children);
    }
}

/// The store in `data_dir` holds nothing partial: `uploads/` is empty, every
/// blob file re-hashes to its name, and every tag of every repository is
/// complete ([`assert_complete`]): nothing was published before its content.
pub async fn assert_sound(m: &Mirror, data_dir: &Path) {
    let left = uploads(data_dir);
    assert!(left.is_empty(), "left in uploads/: {left:?}");
    assert_blobs_rehash(data_dir);
    for repo in m.stores().repos.repositories().await.unwrap() {
        assert_complete(m, repo.name.as_str()).await;
    }
}
