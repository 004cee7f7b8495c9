//! Peak memory of the real `mirror-server` process while a poll copies an
//! image (issue "Performance", goal 1: at most 64 MiB, the same for a
//! 2 GiB layer as for a 64 MiB one).
//!
//! ```text
//! cargo bench -p mirror-server --bench server_rss
//! ```
//!
//! For each image, a fresh server (the binary, in a child process, durable
//! commits on as by default) mirrors it from Debian's `docker-registry` on
//! loopback with "Save & Apply"; the table gives the copy's wall time (job
//! submitted to done), the server's resident memory when idle before the
//! copy, and its peak (`VmHWM`, reset through `/proc/PID/clear_refs` just
//! before the copy, so the start's password hash is not counted), the
//! median of 3 runs (a fresh server each), and, in the same runs, the
//! anchors: `dd conv=fdatasync` of the same byte count
//! to the same disk and `skopeo copy` of the image into a second
//! docker-registry, with the server's copy time as a ratio of each.
//! Under `cargo test` it runs once with a 2 MiB layer as a smoke test.
//!
//! Then the pull-through cache (issue "Pull-through cache"): 100 clients
//! at once pull an image of 256 MiB (192 + 64 MiB layers) that a fresh
//! server's proxy cache has never seen, each through `/v2` (manifest, then
//! every blob, each hashed as it streams and checked against its digest).
//! A fault proxy between server and upstream counts the blob GETs that
//! reach the upstream (goal: one per blob), and the server's peak RSS
//! (reset just before the pulls) must stay under 64 MiB. Under `cargo
//! test`: 10 clients, a 2 MiB layer.

#[path = "../../tests/support/mod.rs"]
mod support;

#[path = "../tests/reliability/server.rs"]
#[allow(dead_code)]
mod server;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use server::{ADMIN_PASSWORD, Server};
use support::fault_proxy::FaultProxy;
use support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;

/// The median of `v` (not empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds `cmd` took; panics if it failed.
fn timed(cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().expect("run the anchor command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// `VmHWM` / `VmRSS` of `pid` in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kib / 1024.0
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let cases: Vec<(&str, Vec<u64>)> = if full {
        vec![
            ("one 64 MiB layer", vec![64 * MIB]),
            (
                "512+256+64 MiB layers",
                vec![512 * MIB, 256 * MIB, 64 * MIB],
            ),
            ("one 2 GiB layer", vec![2048 * MIB]),
        ]
    } else {
        vec![("one 2 MiB layer", vec![2 * MIB])]
    };
    // Median of 3 runs per image (1 under `cargo test`).
    let runs = if full { 3 } else { 1 };
    println!();
    println!(
        "| {:<24} | {:>8} | {:>9} | {:>16} | {:>17} | {:>15} | {:>17} |",
        "image",
        "MiB",
        "copy s",
        "idle RSS MiB",
        "copy peak RSS MiB",
        "dd s (ratio)",
        "skopeo s (ratio)"
    );
    println!(
        "|{:-<26}|{:->10}|{:->11}|{:->18}|{:->19}|{:->17}|{:->19}|",
        "", "", "", "", "", "", ""
    );
    for (i, (name, layers)) in cases.into_iter().enumerate() {
        let upstream = Registry::plain().await;
        let mut spec = ImageSpec::small(name);
        for (j, size) in layers.iter().enumerate() {
            spec = spec.layer(LayerSpec::Random {
                size: *size,
                seed: 7000 + 10 * i as u64 + j as u64,
            });
        }
        upstream.pusher().push_image("bench/rss", "v1", spec).await;
        // The upstream's fresh files out of the page cache's dirty list, so
        // the copy's fsyncs do not wait for them.
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };

        let total: u64 = layers.iter().sum();
        let (mut copies, mut dds, mut skopeos) = (vec![], vec![], vec![]);
        let (mut idle, mut peak, mut reset) = (0f64, 0f64, true);
        for _ in 0..runs {
            let dir = tempfile::tempdir().unwrap();
            let server = Server::start(&dir.path().join("data"), None);
            server.create_repo("bench", "rss").await;
            idle = idle.max(memory_mib(server.pid(), "VmRSS:"));
            // Peak from here on: the start's admin password hash (Argon2id,
            // 19 MiB for a moment) is not the copy's.
            reset &= std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").is_ok();
            let start = Instant::now();
            let job = server
                .create_policy("bench/rss", &upstream.url(), "bench/rss")
                .await;
            server.wait_done(&job, Duration::from_secs(600)).await;
            copies.push(start.elapsed().as_secs_f64());
            peak = peak.max(memory_mib(server.pid(), "VmHWM:"));
            drop(server);
            // The anchors, in the same run: the same byte count written and
            // flushed by `dd` to the same disk, and `skopeo copy` of the
            // same image into a second docker-registry.
            dds.push(timed(Command::new("dd").args([
                "if=/dev/zero",
                &format!("of={}", dir.path().join("dd.out").display()),
                "bs=4M",
                &format!("count={}", total.div_ceil(4 * MIB)),
                "conv=fdatasync",
            ])));
            let _ = std::fs::remove_file(dir.path().join("dd.out"));
            let dest = Registry::plain().await;
            skopeos.push(timed(Command::new("skopeo").args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{}/bench/rss:v1", upstream.host_port()),
                &format!("docker://{}/bench/rss:v1", dest.host_port()),
            ])));
        }
        let (secs, dd, skopeo) = (median(&copies), median(&dds), median(&skopeos));
        println!(
            "| {:<24} | {:>8} | {:>9.3} | {:>16.1} | {:>17} | {:>15} | {:>17} |",
            name,
            total / MIB,
            secs,
            idle,
            format!("{peak:.1}{}", if reset { "" } else { " (since start)" }),
            format!("{dd:.3} ({:.2}x)", secs / dd),
            format!("{skopeo:.3} ({:.2}x)", secs / skopeo),
        );
        println!("  {name}: copy {copies:.3?} s, dd {dds:.3?} s, skopeo {skopeos:.3?} s");
        assert!(
            peak < 64.0,
            "mirror-server peaked at {peak:.1} MiB copying {name} (goal: at most 64 MiB)"
        );
    }
    println!();
    concurrent_cache_pulls(full).await;
}

/// 100 concurrent pulls (10 under `cargo test`) of an image a fresh proxy
/// cache has never seen: wall time, blob GETs that reached the upstream,
/// and the server's peak RSS during the pulls.
async fn concurrent_cache_pulls(full: bool) {
    let (clients, layers) = if full {
        (100, vec![192 * MIB, 64 * MIB])
    } else {
        (10, vec![2 * MIB])
    };
    let upstream = Registry::plain().await;
    let mut spec = ImageSpec::small("cached");
    for (j, size) in layers.iter().enumerate() {
        spec = spec.layer(LayerSpec::Random {
            size: *size,
            seed: 7100 + j as u64,
        });
    }
    let pushed = upstream.pusher().push_image("bench/cold", "v1", spec).await;
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let proxy = FaultProxy::start(&upstream, 11);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v0/proxyCaches",
            Some(serde_json::json!({"namespace": "hub", "remoteHost": proxy.url()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let idle = memory_mib(server.pid(), "VmRSS:");
    let reset = std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").is_ok();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let start = Instant::now();
    let pulls = (0..clients).map(|_| {
        server.pull_verified(
            &client,
            ("admin", ADMIN_PASSWORD),
            "hub/bench/cold",
            "v1",
            &pushed.digest,
        )
    });
    let pulled = futures_util::future::join_all(pulls).await;
    let secs = start.elapsed().as_secs_f64();
    let mut bytes = 0;
    for p in pulled {
        bytes += p.unwrap_or_else(|e| panic!("a pull through the cache failed: {e}"));
    }
    let peak = memory_mib(server.pid(), "VmHWM:");
    let blob_gets = proxy.count(|r| r.method == Method::GET && r.path.contains("/blobs/"));
    let blobs = pushed.layers.len() + 1; // and the config
    let total: u64 = layers.iter().sum();
    println!(
        "| {:<40} | {:>9} | {:>12} | {:>14} | {:>12} | {:>17} |",
        "pull-through cache, cold", "image MiB", "pulls", "wall s", "upstream GETs", "peak RSS MiB"
    );
    println!(
        "|{:-<42}|{:->11}|{:->14}|{:->16}|{:->14}|{:->19}|",
        "", "", "", "", "", ""
    );
    println!(
        "| {:<40} | {:>9} | {:>12} | {:>14.3} | {:>12} | {:>17} |",
        format!(
            "{clients} concurrent pulls, {:.0} MiB/s served",
            bytes as f64 / MIB as f64 / secs
        ),
        total / MIB,
        clients,
        secs,
        format!("{blob_gets} ({blobs} blobs)"),
        format!(
            "{peak:.1}{} (idle {idle:.1})",
            if reset { "" } else { " since start" }
        )
    );
    println!();
    assert_eq!(
        blob_gets,
        blobs,
        "each blob is fetched from the upstream once: {:?}",
        proxy.requests()
    );
    assert!(
        peak < 64.0,
        "mirror-server peaked at {peak:.1} MiB serving {clients} cold pulls (goal: under 64 MiB)"
    );
}
