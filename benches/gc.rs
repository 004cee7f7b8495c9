//! Garbage collection over 10,000 blobs and 1,000 manifests (issue 14's
//! benchmark row): `cargo bench --bench gc`. The data is made in this
//! process (10 repositories of 100 image manifests, each of its own 10
//! one-KiB layers; 30 tags per repository deleted, so 300 manifests and
//! 3,000 layers are garbage), then a child process runs a dry run and a
//! real collection (untagged manifests removed, grace period 1 s) on the
//! embedded stores, so its peak RSS is its own. `REGMIRROR_BENCH_GC_SCALE=10`
//! makes it ten times larger.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mirror_core::gc::{GcSettings, collect};
use mirror_core::store::{
    BlobStore, FsBlobStore, FsOptions, ManifestRecord, NewRepository, RepositoryStore, SqliteStore,
    TagRecord, Visibility,
};
use mirror_core::{Digest, RepositoryName};
use tokio_util::sync::CancellationToken;

const REPOS: usize = 10;
const LAYERS_PER_IMAGE: usize = 10;
const UNTAGGED_PER_REPO: usize = 30;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(Path::new(&args[2]));
        return;
    }
    let scale: usize = std::env::var("REGMIRROR_BENCH_GC_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let images_per_repo = 100 * scale;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let start = Instant::now();
    rt.block_on(populate(dir.path(), images_per_repo));
    let images = REPOS * images_per_repo;
    eprintln!(
        "made {} blobs and {images} manifests in {:.1}s",
        images * (LAYERS_PER_IMAGE + 1),
        start.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(1100)); // past the grace period
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--child", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let peak_mib = usage.ru_maxrss as f64 / 1024.0;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!("gc child peak RSS {peak_mib:.1} MiB");
}

async fn populate(dir: &Path, images_per_repo: usize) {
    let blobs = FsBlobStore::open(dir, FsOptions { durable: false }).unwrap();
    let repos = SqliteStore::open(dir).unwrap();
    for r in 0..REPOS {
        let name = RepositoryName::parse(&format!("bench/repo{r}")).unwrap();
        repos
            .create_repository(&NewRepository {
                name: name.clone(),
                visibility: Visibility::Private,
                short_description: String::new(),
            })
            .await
            .unwrap();
        let mut records = Vec::new();
        let mut tags = Vec::new();
        for i in 0..images_per_repo {
            let mut layers = Vec::new();
            for l in 0..LAYERS_PER_IMAGE {
                let mut bytes = vec![0u8; 1024];
                bytes[..24].copy_from_slice(
                    &[
                        (r as u64).to_le_bytes(),
                        (i as u64).to_le_bytes(),
                        (l as u64).to_le_bytes(),
                    ]
                    .concat(),
                );
                let d = Digest::of(&bytes);
                blobs.put(Bytes::from(bytes), &d).await.unwrap();
                layers.push(d);
            }
            let manifest = format!("{{\"repo\":{r},\"image\":{i},\"layers\":{layers:?}}}");
            let digest = Digest::of(manifest.as_bytes());
            blobs
                .put(Bytes::from(manifest.clone()), &digest)
                .await
                .unwrap();
            records.push(ManifestRecord {
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: manifest.len() as u64,
                blobs: layers,
                children: vec![],
                subject: None,
                artifact_type: None,
            });
            tags.push(TagRecord {
                name: format!("t{i}"),
                digest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: manifest.len() as u64,
                mirrored: None,
                updated_at: mirror_core::job::now(),
            });
        }
        repos.publish(&name, &records, &tags).await.unwrap();
        for i in 0..UNTAGGED_PER_REPO * images_per_repo / 100 {
            repos.delete_tag(&name, &format!("t{i}")).await.unwrap();
        }
    }
}

/// A dry run, then a real collection; prints each one's seconds and report.
fn child(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repos = Arc::new(SqliteStore::open(dir).unwrap());
        let blobs: Arc<dyn BlobStore> =
            Arc::new(FsBlobStore::open(dir, FsOptions { durable: false }).unwrap());
        let settings = GcSettings {
            grace: Duration::from_secs(1),
            delete_untagged: true,
            dry_run: true,
        };
        for dry_run in [true, false] {
            let start = Instant::now();
            let report = collect(
                blobs.as_ref(),
                repos.as_ref() as &dyn RepositoryStore,
                &GcSettings {
                    dry_run,
                    ..settings.clone()
                },
                &CancellationToken::new(),
                &|_| {},
            )
            .await
            .unwrap();
            println!(
                "gc {}: {:.3}s, {} manifests and {} blobs ({} bytes) {}, {} blobs kept",
                if dry_run { "dry run" } else { "real run" },
                start.elapsed().as_secs_f64(),
                report.manifests_removed,
                report.blobs_removed,
                report.bytes_freed,
                if dry_run { "would go" } else { "removed" },
                report.blobs_kept
            );
        }
    });
}
