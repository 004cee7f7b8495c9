//! The streaming write path: SHA-256 alone, and a 64 MiB blob through the
//! filesystem store's hashing writer (durable off, so the disk's sync speed
//! does not hide the code's cost). `cargo bench --bench hashing`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mirror_core::store::{FsBlobStore, FsOptions};
use mirror_core::{BlobStore, Digest, Hasher};

const SIZE: usize = 64 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    let chunks: Vec<Bytes> = data.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    let digest = Digest::of(&data);
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function("sha256", |b| {
        b.iter(|| {
            let mut h = Hasher::new();
            for ch in &chunks {
                h.update(ch);
            }
            h.finish()
        })
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path(), FsOptions { durable: false }).unwrap();
    g.bench_function("fs_writer_commit", |b| {
        b.iter(|| {
            rt.block_on(async {
                store.delete(&digest).await.unwrap();
                let mut w = store.writer().await.unwrap();
                for ch in &chunks {
                    w.write(ch.clone()).await.unwrap();
                }
                w.commit(&digest, Some(SIZE as u64)).await.unwrap();
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
