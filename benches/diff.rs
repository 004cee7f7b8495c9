//! The tag diff over 100,000 tags: must scale linearly (run with
//! `cargo bench --bench diff`; compare the times per tag). From 10k to 100k
//! tags the maps outgrow the CPU caches, so the time per tag rises once;
//! 100k to 1M shows the linear growth beyond that.

use std::collections::HashMap;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mirror_core::Digest;
use mirror_core::diff::plan;

fn tags(n: usize, salt: u8) -> HashMap<String, Digest> {
    (0..n)
        .map(|i| {
            // Every 10th tag differs between remote and local.
            let s = if i % 10 == 0 { salt } else { 0 };
            (
                format!("v{i}"),
                Digest::of(&[(i % 251) as u8, (i / 251 % 251) as u8, s]),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff");
    g.sample_size(10);
    for n in [10_000, 100_000, 1_000_000] {
        let remote = tags(n, 1);
        let local = tags(n - n / 20, 2);
        g.bench_with_input(BenchmarkId::new("plan", n), &n, |b, _| {
            b.iter(|| plan(&remote, &local, None))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
