//! End-to-end benchmark: regmirror against `skopeo`, on the same upstream
//! (Debian's `docker-registry`) in the same run, on loopback.
//!
//! ```text
//! cargo bench --bench e2e                 # full sizes (about 10 minutes)
//! REGMIRROR_BENCH_RUNS=5 cargo bench --bench e2e
//! ```
//!
//! Scenarios (issue "Performance"):
//! 1. one ~830 MiB image (layers of 512, 256 and 64 MiB of random data):
//!    regmirror without and with durable commits, `skopeo copy` into a second
//!    registry, and `dd conv=fdatasync` of the same bytes to the same disk;
//! 2. initial mirror of a repository with 50 small tags vs `skopeo sync`;
//! 3. a no-change poll of a repository with 5,000 tags (job requested to job
//!    done), counting the requests the upstream logged, vs `skopeo sync`;
//!    3b. the same from a regmirror upstream, whose tag API lists the
//!    digests (`REGMIRROR_BENCH_ONLY=3b`), counting requests through a
//!    `FaultProxy`;
//!    3c. the initial mirror of that repository into an empty data
//!    directory, vs `skopeo sync` into an empty docker-registry
//!    (`REGMIRROR_BENCH_ONLY=3c`);
//!    3d. the initial mirror and a no-change poll of it through
//!    mirror-server's API (a new in-process server per run), beside the
//!    library's (`REGMIRROR_BENCH_ONLY=3d`);
//! 4. serving from mirror-server vs docker-registry (`wrk`): 1 MiB blob GETs
//!    and manifest GETs, private repository, Basic credentials on every
//!    request;
//! 5. serving under load while a poll copies: 200 clients (own connection
//!    pools, in this process on a runtime of their own with 2 worker
//!    threads) pull 10 mirrored images (manifest and blobs, each hashed and
//!    checked against its digest, Basic credentials of a read-only user on
//!    every request) from mirror-server, in a loop: first for 10 s with
//!    nothing else running, then while a `poll_mirror` job copies a 768 MiB
//!    image (512 + 256 MiB random layers) into another repository of the
//!    same server (until the job is done, at least 10 s; each phase starts
//!    with 1 s for the clients to settle, not measured). Reports requests/s
//!    and p50 / p99 latency per request (baseline; during the copy), the
//!    copy's time under load vs the same copy with no clients (on a fresh
//!    server), and CPU seconds of the load generator (its threads, by name),
//!    the rest of this process (mirror-server) and the upstream, since on a
//!    small machine the clients take their share of the cores. Every failed
//!    pull is counted and fails the run.
//! 6. pull-through cache (`REGMIRROR_BENCH_ONLY=6`): scenario 1's image on
//!    a docker-registry, pulled with `skopeo copy` into a fresh `dir:` (a
//!    new scratch directory each run, removed after; `sync` before each
//!    pull, and the manifest pulled is checked against the pushed digest):
//!    directly from the upstream (the anchor); through the proxy cache of a
//!    new mirror-server (one per run) that has never seen the image, so
//!    every blob is fetched from the upstream while streamed to skopeo;
//!    through the same cache again (warm); and from an ordinary repository
//!    of the same server that a poll policy mirrored the image into (the
//!    warm pull and this one take turns going first). Then 100 concurrent
//!    GETs (reqwest, a task each, every body hashed and checked against the
//!    digest) of the largest layer through a fresh cache after one manifest
//!    GET, with a `FaultProxy` between server and upstream counting the
//!    blob GETs that reach the upstream (goal: one per blob). The server
//!    runs in this process, so no RSS is reported.
//!
//! `REGMIRROR_BENCH_HOLD=SECS` keeps scenario 1's or 3's upstream running
//! after seeding and prints the child command, for profiling it from outside
//! (`perf record -e cpu-clock -g -- COMMAND`).
//!
//! regmirror runs in a child process (this binary re-executed with
//! `--child`), so its peak RSS (`VmHWM`) is measured alone. Under `cargo test`
//! (no `--bench` argument) every scenario runs once with tiny sizes as a
//! smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/server_e2e/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::{Run, measure, measure_limited, median};
use mirror_core::store::FsOptions;
use mirror_core::{JobStatus, Mirror, MirrorSettings, PolicyForm, RepositoryName, Stores};
use support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;

struct Sizes {
    /// `cargo bench` (full sizes) rather than the `cargo test` smoke run.
    full: bool,
    layers: Vec<u64>,
    small_tags: usize,
    many_tags: usize,
    many_images: usize,
    runs: usize,
    /// Scenario 5: concurrent clients, the seconds each load phase lasts at
    /// least, the small images they pull, the large image's layers.
    load_clients: usize,
    load_secs: u64,
    load_images: usize,
    load_layers: Vec<u64>,
    /// Scenario 6: concurrent GETs of one blob through a fresh cache.
    cache_gets: usize,
}

fn sizes(full: bool) -> Sizes {
    let runs = std::env::var("REGMIRROR_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // REGMIRROR_BENCH_LAYERS_MIB=2048 (comma-separated) replaces scenario 1's
    // layers, e.g. to check that peak RSS does not grow with layer size.
    let layers = std::env::var("REGMIRROR_BENCH_LAYERS_MIB").ok().map(|v| {
        v.split(',')
            .map(|m| m.trim().parse::<u64>().expect("layer size in MiB") * MIB)
            .collect::<Vec<_>>()
    });
    if full {
        Sizes {
            layers: layers.unwrap_or_else(|| vec![512 * MIB, 256 * MIB, 64 * MIB]),
            small_tags: 50,
            many_tags: 5000,
            many_images: 50,
            full,
            runs,
            load_clients: 200,
            load_secs: 10,
            load_images: 10,
            load_layers: vec![512 * MIB, 256 * MIB],
            cache_gets: 100,
        }
    } else {
        Sizes {
            layers: vec![3 * MIB, MIB],
            small_tags: 3,
            many_tags: 20,
            many_images: 2,
            full,
            runs: 1,
            load_clients: 4,
            load_secs: 1,
            load_images: 2,
            load_layers: vec![2 * MIB],
            cache_gets: 10,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(sizes(full)));
}

/// `--child URL REPO DATA_DIR DURABLE(0|1) POLLS [USER PASSWORD]`: mirror
/// `REPO` into `DATA_DIR` with `POLLS` polls; prints the seconds of the
/// last poll.
fn child(args: &[String]) {
    let (url, repo, data, durable, polls, creds) = match args {
        [url, repo, data, durable, polls] => (url, repo, data, durable, polls, None),
        [url, repo, data, durable, polls, user, password] => {
            (url, repo, data, durable, polls, Some((user, password)))
        }
        _ => panic!("usage: --child URL REPO DATA_DIR DURABLE POLLS [USER PASSWORD]"),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let stores = Stores::embedded(
            Path::new(data),
            FsOptions {
                durable: durable == "1",
            },
        )
        .unwrap();
        let m = Mirror::new(
            stores,
            Arc::new(mirror_core::remote::HttpConnector::default()),
            MirrorSettings {
                // For experiments: REGMIRROR_HEAD_CONCURRENCY=64 cargo bench ...
                head_concurrency: std::env::var("REGMIRROR_HEAD_CONCURRENCY")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(MirrorSettings::default().head_concurrency),
                ..Default::default()
            },
        );
        let local = RepositoryName::parse("bench/mirror").unwrap();
        let policy = match m.policies(Some(&local)).await.unwrap().pop() {
            Some(p) => p,
            None => {
                let mut form = PolicyForm::new(url.clone(), repo.clone());
                if let Some((user, password)) = creds {
                    form.username = Some(user.clone());
                    form.password = Some(mirror_core::Secret::new(password.clone()));
                }
                m.add_policy(&local, &form, None).await.unwrap()
            }
        };
        let mut secs = 0.0;
        for _ in 0..polls.parse::<usize>().unwrap() {
            let start = Instant::now();
            let job = m.poll(&policy.id).await.unwrap();
            secs = start.elapsed().as_secs_f64();
            assert_eq!(job.status, JobStatus::Done);
        }
        println!("{secs}");
    });
}

/// User + system CPU seconds process `pid` has used (from `/proc`), 0 when
/// unknown.
fn process_cpu_secs(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |p| {
        stat_cpu_secs(Path::new(&format!("/proc/{p}/stat")))
    })
}

/// User + system CPU seconds of this process's threads whose name starts
/// with `prefix` (live threads only: an exited thread's time is gone).
fn threads_cpu_secs(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| stat_cpu_secs(&t.path().join("stat")))
        .sum()
}

/// User + system CPU seconds in a `/proc/.../stat` file, 0 when unreadable.
fn stat_cpu_secs(path: &Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, in clock ticks.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn regmirror(reg: &Registry, repo: &str, data: &Path, durable: bool, polls: usize) -> Run {
    measure(Command::new(std::env::current_exe().unwrap()).args([
        "--child",
        &reg.url(),
        repo,
        data.to_str().unwrap(),
        if durable { "1" } else { "0" },
        &polls.to_string(),
    ]))
}

/// [`regmirror`] from the regmirror server at `url`, as its admin.
fn regmirror_admin(url: &str, repo: &str, data: &Path) -> Run {
    measure(Command::new(std::env::current_exe().unwrap()).args([
        "--child",
        url,
        repo,
        data.to_str().unwrap(),
        "1",
        "1",
        "admin",
        server::ADMIN_PASSWORD,
    ]))
}

/// `REGMIRROR_BENCH_HOLD=SECS`: keep the scenario's upstream running for
/// `SECS` seconds and print the child command that polls it, so a profiler
/// (`perf record`, `valgrind --tool=callgrind`) can run it from outside.
fn hold_for_profiling(reg: &Registry, repo: &str, data: &Path) {
    let Some(secs) = std::env::var("REGMIRROR_BENCH_HOLD")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!(
        "holding {secs} s; upstream pid {:?}\n  {} --child {} {repo} {} 1 1",
        reg.pid(),
        std::env::current_exe().unwrap().display(),
        reg.url(),
        data.display()
    );
    std::thread::sleep(Duration::from_secs(secs));
}

/// `skopeo sync` of every tag of `repo` on `up` into `dest`'s `mirror/`.
fn skopeo_sync(up: &Registry, repo: &str, dest: &Registry) -> Command {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("{}/{repo}", up.host_port()),
        &format!("{}/mirror", dest.host_port()),
    ]);
    cmd
}

fn skopeo(args: &[&str]) -> Run {
    measure(Command::new("skopeo").args(args))
}

/// Lists the tags and HEADs each manifest, 16 requests in flight, with a
/// plain reqwest client: what the upstream itself needs for a no-change poll.
async fn head_floor(reg: &Registry, repo: &str, runs: usize) -> Vec<f64> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    for _ in 0..runs {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let start = Instant::now();
        let list: serde_json::Value = client
            .get(format!("{}/v2/{repo}/tags/list", reg.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tags: Vec<String> = list["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        let accept = mirror_core::manifest::ACCEPT_MANIFESTS;
        futures_util::stream::iter(tags)
            .map(|t| {
                let c = client.clone();
                let url = format!("{}/v2/{repo}/manifests/{t}", reg.url());
                async move {
                    let r = c.head(url).header("Accept", accept).send().await.unwrap();
                    assert!(r.status().is_success());
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        out.push(start.elapsed().as_secs_f64());
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let ok = Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", from.display()),
            &to.display().to_string(),
        ])
        .status()
        .unwrap()
        .success()
        || Command::new("cp")
            .args(["-a", &from.display().to_string(), &to.display().to_string()])
            .status()
            .unwrap()
            .success();
    assert!(ok, "copying {} to {}", from.display(), to.display());
}

/// A scratch directory on the same disk as the registries' storage.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

struct Row {
    scenario: String,
    tool: String,
    secs: f64,
    extra: String,
}

fn print_header() {
    println!();
    println!(
        "| {:<34} | {:<34} | {:>9} | {:<40} |",
        "scenario", "tool", "median s", "notes"
    );
    println!("|{:-<36}|{:-<36}|{:->11}|{:-<42}|", "", "", "", "");
}

fn print_rows(rows: &[Row]) {
    for r in rows {
        println!(
            "| {:<34} | {:<34} | {:>9.3} | {:<40} |",
            r.scenario, r.tool, r.secs, r.extra
        );
    }
}

async fn run(s: Sizes) {
    print_header();
    let only = std::env::var("REGMIRROR_BENCH_ONLY").unwrap_or_default();
    let wanted = |n: &str| only.is_empty() || only.split(',').any(|o| o == n);
    // Rows are printed as each scenario ends, so a long run shows progress.
    if wanted("1") {
        let mut rows = Vec::new();
        large_image(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("2") {
        let mut rows = Vec::new();
        small_tags(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("3") {
        let mut rows = Vec::new();
        many_tags(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("3b") {
        let mut rows = Vec::new();
        many_tags_bulk(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("3c") {
        let mut rows = Vec::new();
        many_tags_initial(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("3d") {
        let mut rows = Vec::new();
        many_tags_through_server(&s, &mut rows).await;
        print_rows(&rows);
    }
    if wanted("4") {
        serving(&s).await;
    }
    if wanted("5") {
        serving_under_load(&s).await;
    }
    if wanted("6") {
        let mut rows = Vec::new();
        pull_through(&s, &mut rows).await;
        print_rows(&rows);
    }
    println!();
}

async fn large_image(s: &Sizes, rows: &mut Vec<Row>) {
    let up = Registry::plain().await;
    let mut spec = ImageSpec::small("large");
    for (i, size) in s.layers.iter().enumerate() {
        spec = spec.layer(LayerSpec::Random {
            size: *size,
            seed: 1000 + i as u64,
        });
    }
    up.pusher().push_image("bench/large", "v1", spec).await;
    hold_for_profiling(&up, "bench/large", &scratch().path().join("profile"));
    let total: u64 = s.layers.iter().sum();
    let total_mib = total as f64 / MIB as f64;
    let (mut fast, mut durable, mut sk, mut dd) = (vec![], vec![], vec![], vec![]);
    let (mut rss_fast, mut rss_durable, mut rss_skopeo) = (0.0f64, 0.0f64, 0.0f64);
    // CPU seconds per run: regmirror (durable off), the upstream while it
    // served that run, skopeo.
    let (mut cpu_ours, mut cpu_up, mut cpu_skopeo) = (vec![], vec![], vec![]);
    for _ in 0..s.runs {
        let dir = scratch();
        let up_before = process_cpu_secs(up.pid());
        let r = regmirror(&up, "bench/large", &dir.path().join("a"), false, 1);
        cpu_up.push(process_cpu_secs(up.pid()) - up_before);
        cpu_ours.push(r.cpu_secs);
        rss_fast = rss_fast.max(r.peak_rss_mib);
        fast.push(r.secs);
        let r = regmirror(&up, "bench/large", &dir.path().join("b"), true, 1);
        rss_durable = rss_durable.max(r.peak_rss_mib);
        durable.push(r.secs);
        drop(dir);

        let dest = Registry::plain().await;
        let r = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}/bench/large:v1", up.host_port()),
            &format!("docker://{}/bench/large:v1", dest.host_port()),
        ]);
        rss_skopeo = rss_skopeo.max(r.peak_rss_mib);
        cpu_skopeo.push(r.cpu_secs);
        sk.push(r.secs);
        drop(dest);

        let dir = scratch();
        let out: PathBuf = dir.path().join("dd.out");
        let r = measure(Command::new("dd").args([
            "if=/dev/zero",
            &format!("of={}", out.display()),
            "bs=4M",
            &format!("count={}", total.div_ceil(4 * MIB)),
            "conv=fdatasync",
        ]));
        dd.push(r.secs);
    }
    let (f, d, k, z) = (median(fast), median(durable), median(sk), median(dd));
    let name = format!("1. {total_mib:.0} MiB image");
    rows.push(Row {
        scenario: name.clone(),
        tool: "regmirror (durable off)".into(),
        secs: f,
        extra: format!(
            "{:.0} MiB/s, RSS {:.0} MiB, {:.2}x skopeo (goal 0.5)",
            total_mib / f,
            rss_fast,
            f / k
        ),
    });
    rows.push(Row {
        scenario: name.clone(),
        tool: "regmirror (durable, default)".into(),
        secs: d,
        extra: format!(
            "{:.0} MiB/s, RSS {:.0} MiB, {:.2}x dd (goal 1.15)",
            total_mib / d,
            rss_durable,
            d / z
        ),
    });
    rows.push(Row {
        scenario: name.clone(),
        tool: "skopeo copy (to docker-registry)".into(),
        secs: k,
        extra: format!("{:.0} MiB/s, RSS {:.0} MiB", total_mib / k, rss_skopeo),
    });
    rows.push(Row {
        scenario: name.clone(),
        tool: "dd conv=fdatasync (same bytes)".into(),
        secs: z,
        extra: format!("{:.0} MiB/s", total_mib / z),
    });
    rows.push(Row {
        scenario: name,
        tool: "CPU s: regmirror (durable off)".into(),
        secs: median(cpu_ours),
        extra: format!(
            "upstream {:.2} s; skopeo {:.2} s",
            median(cpu_up),
            median(cpu_skopeo)
        ),
    });
}

async fn small_tags(s: &Sizes, rows: &mut Vec<Row>) {
    let up = Registry::plain().await;
    let p = up.pusher();
    for i in 0..s.small_tags {
        p.push_image(
            "bench/small",
            &format!("t{i}"),
            ImageSpec::small(&format!("small image {i}")),
        )
        .await;
    }
    let (mut ours, mut theirs) = (vec![], vec![]);
    for _ in 0..s.runs {
        let dir = scratch();
        ours.push(regmirror(&up, "bench/small", dir.path(), true, 1).secs);
        let dest = Registry::plain().await;
        theirs.push(measure(&mut skopeo_sync(&up, "bench/small", &dest)).secs);
    }
    let (o, t) = (median(ours), median(theirs));
    let name = format!("2. initial mirror, {} tags", s.small_tags);
    rows.push(Row {
        scenario: name.clone(),
        tool: "regmirror".into(),
        secs: o,
        extra: format!("{:.2}x skopeo sync (goal 0.5)", o / t),
    });
    rows.push(Row {
        scenario: name,
        tool: "skopeo sync".into(),
        secs: t,
        extra: String::new(),
    });
}

/// The upstream of scenarios 3 and 3c: `bench/many` with
/// `s.many_tags` tags over `s.many_images` small images (the extra tags
/// point at the same manifests).
async fn many_tags_upstream(s: &Sizes) -> Registry {
    let up = Registry::builder()
        .log_level("info")
        .blob_descriptor_cache(true)
        .start()
        .await;
    let p = up.pusher();
    let mut images = Vec::new();
    for i in 0..s.many_images {
        images.push(
            p.push_image(
                "bench/many",
                &format!("base{i}"),
                ImageSpec::small(&format!("many {i}")),
            )
            .await,
        );
    }
    // Extra tags point at the same manifests: a tag costs the mirror one HEAD.
    let per_image = s.many_tags / s.many_images;
    let mut tasks = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let (client, img) = (up.pusher(), img.clone());
        tasks.push(tokio::spawn(async move {
            for j in 1..per_image {
                client
                    .push_manifest_raw(
                        "bench/many",
                        &format!("v{i}.{j}"),
                        &img.media_type,
                        img.bytes.clone(),
                    )
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    up
}

/// 3c. Initial mirror of scenario 3's repository (5,000 tags) into an
/// empty data directory each run, vs one `skopeo sync` into an empty
/// docker-registry.
async fn many_tags_initial(s: &Sizes, rows: &mut Vec<Row>) {
    let up = many_tags_upstream(s).await;
    let n_tags = up.pusher().tags("bench/many").await.len();
    let name = format!(
        "3c. initial mirror, {n_tags} tags ({} images)",
        s.many_images
    );
    let (mut ours, mut cpu_ours) = (vec![], vec![]);
    for _ in 0..s.runs {
        let dir = scratch();
        let r = regmirror(&up, "bench/many", dir.path(), true, 1);
        ours.push(r.stdout.trim().parse::<f64>().unwrap());
        cpu_ours.push(r.cpu_secs);
    }
    let o = median(ours);
    // One `skopeo sync`, stopped after SYNC_LIMIT: here it goes idle part
    // way (as in scenario 3), so what it copied by then is counted.
    const SYNC_LIMIT: Duration = Duration::from_secs(300);
    let (t, sync_note) = if std::env::var("REGMIRROR_BENCH_SKIP_SKOPEO_SYNC").is_err() {
        let dest = Registry::plain().await;
        match measure_limited(&mut skopeo_sync(&up, "bench/many", &dest), SYNC_LIMIT) {
            Some(r) => (r.secs, String::new()),
            None => {
                let copied = dest.pusher().tags("mirror/many").await.len();
                (
                    f64::NAN,
                    format!(
                        "stopped after {} s with {copied} of {n_tags} tags copied",
                        SYNC_LIMIT.as_secs()
                    ),
                )
            }
        }
    } else {
        (f64::NAN, "skipped".into())
    };
    let ratio = if t.is_nan() {
        format!("< {:.3}x", o / SYNC_LIMIT.as_secs_f64())
    } else {
        format!("{:.3}x", o / t)
    };
    rows.push(Row {
        scenario: name.clone(),
        tool: "regmirror (durable; job requested to done)".into(),
        secs: o,
        extra: format!(
            "{ratio} skopeo sync (goal <= 0.1x, <= 8 s); CPU {:.2} s",
            median(cpu_ours)
        ),
    });
    rows.push(Row {
        scenario: name,
        tool: "skopeo sync".into(),
        secs: t,
        extra: sync_note,
    });
}

/// 3d. Scenario 3c's initial mirror and scenario 3's no-change poll
/// through `mirror-server`'s API (in this process, embedded stores): a new
/// server per run, the policy saved, `POST /api/v0/jobs` → done, then
/// once more with nothing changed; beside the same polls through the
/// library (the child process of 3 and 3c) in the same run.
async fn many_tags_through_server(s: &Sizes, rows: &mut Vec<Row>) {
    use reqwest::Method;
    use server::ADMIN;
    let up = many_tags_upstream(s).await;
    let n_tags = up.pusher().tags("bench/many").await.len();
    let (mut initial, mut again, mut lib_initial, mut lib_again) = (vec![], vec![], vec![], vec![]);
    for _ in 0..s.runs {
        let srv = server::TestServer::start().await;
        srv.create_repo("bench", "mirror", "private").await;
        let form = serde_json::json!({
            "remoteHost": up.url(), "remoteRepository": "bench/many", "enabled": true
        });
        support::policies::add_policy(&srv.admin(), "bench/mirror", &form).await;
        for times in [&mut initial, &mut again] {
            let start = Instant::now();
            let job = srv.submit_poll(None).await;
            srv.wait_done(&job).await;
            times.push(start.elapsed().as_secs_f64());
        }
        let (_, listed) = srv
            .call(Method::GET, "/v2/bench/mirror/tags/list", ADMIN, None)
            .await;
        let mirrored = listed["tags"].as_array().map_or(0, Vec::len);
        assert_eq!(mirrored, n_tags, "every tag mirrored");
        srv.stop().await;
        let dir = scratch();
        let r = regmirror(&up, "bench/many", dir.path(), true, 2);
        lib_again.push(r.stdout.trim().parse::<f64>().unwrap());
        let dir = scratch();
        let r = regmirror(&up, "bench/many", dir.path(), true, 1);
        lib_initial.push(r.stdout.trim().parse::<f64>().unwrap());
    }
    let name = format!("3d. {n_tags} tags through mirror-server's API");
    for (what, ours, lib) in [
        ("initial mirror", initial, lib_initial),
        ("no-change poll", again, lib_again),
    ] {
        let (o, l) = (median(ours), median(lib));
        rows.push(Row {
            scenario: name.clone(),
            tool: format!("{what}: job requested → done"),
            secs: o,
            extra: format!("{:.2}x the library's {l:.3} s (same run)", o / l),
        });
    }
}

async fn many_tags(s: &Sizes, rows: &mut Vec<Row>) {
    let up = many_tags_upstream(s).await;
    let p = up.pusher();
    let n_tags = p.tags("bench/many").await.len();
    let dir = scratch();
    regmirror(&up, "bench/many", dir.path(), true, 1);
    hold_for_profiling(&up, "bench/many", dir.path());
    let (mut ours, mut cpu_ours, mut cpu_up) = (vec![], vec![], vec![]);
    let requests_before = up.logs().lines().count();
    for _ in 0..s.runs {
        let up_before = process_cpu_secs(up.pid());
        let r = regmirror(&up, "bench/many", dir.path(), true, 1);
        cpu_up.push(process_cpu_secs(up.pid()) - up_before);
        cpu_ours.push(r.cpu_secs);
        ours.push(r.stdout.trim().parse::<f64>().unwrap());
    }
    let log = up.logs();
    let new: Vec<&str> = log.lines().skip(requests_before).collect();
    let count = |m: &str, what: &str| {
        new.iter()
            .filter(|l| l.contains(&format!("http.request.method={m}")) && l.contains(what))
            .count()
    };
    let (heads, gets, blobs) = (
        count("HEAD", "/manifests/"),
        count("GET", "/manifests/"),
        count("GET", "/blobs/"),
    );
    // skopeo's destination starts as an exact copy of the upstream's
    // storage (the repository renamed to where `skopeo sync` puts it), so
    // its sync below is a no-change sync without first copying 5,000 tags
    // one by one.
    let dest = Registry::plain().await;
    let v2 = |r: &Registry| r.storage_dir().join("docker/registry/v2");
    copy_dir(&v2(&up).join("blobs"), &v2(&dest).join("blobs"));
    copy_dir(
        &v2(&up).join("repositories/bench/many"),
        &v2(&dest).join("repositories/mirror/many"),
    );
    let sync = |dest: &Registry, limit: Duration| {
        measure_limited(&mut skopeo_sync(&up, "bench/many", dest), limit)
    };
    let o = median(ours);
    let name = format!("3. no-change poll, {n_tags} tags");
    // The floor: the same HEADs from a bare client, no job, no store.
    let floor = median(head_floor(&up, "bench/many", s.runs).await);
    // REGMIRROR_BENCH_HEAD_SWEEP=8,16,32,64: the same poll at other HEAD
    // concurrencies.
    if let Ok(sweep) = std::env::var("REGMIRROR_BENCH_HEAD_SWEEP") {
        for c in sweep.split(',') {
            // SAFETY: single-threaded at this point of the bench's main task;
            // the variable is only read by child processes.
            unsafe { std::env::set_var("REGMIRROR_HEAD_CONCURRENCY", c) };
            let runs: Vec<f64> = (0..s.runs)
                .map(|_| {
                    let r = regmirror(&up, "bench/many", dir.path(), true, 1);
                    r.stdout.trim().parse::<f64>().unwrap()
                })
                .collect();
            print_rows(&[Row {
                scenario: name.clone(),
                tool: format!("regmirror, {c} HEADs in flight"),
                secs: median(runs),
                extra: String::new(),
            }]);
        }
        unsafe { std::env::remove_var("REGMIRROR_HEAD_CONCURRENCY") };
    }
    print_rows(&[Row {
        scenario: name.clone(),
        tool: "regmirror (job requested to done)".into(),
        secs: o,
        extra: format!(
            "{:.1} HEAD/run, {gets} manifest GET, {blobs} blob GET (goal < 2 s)",
            heads as f64 / s.runs as f64
        ),
    }]);
    print_rows(&[Row {
        scenario: name.clone(),
        tool: "CPU s: regmirror (whole process)".into(),
        secs: median(cpu_ours),
        extra: format!("upstream {:.2} s for the same poll", median(cpu_up)),
    }]);
    print_rows(&[Row {
        scenario: name.clone(),
        tool: "bare HEADs, 16 in flight (floor)".into(),
        secs: floor,
        extra: format!("regmirror = floor + {:.3} s", o - floor),
    }]);
    if std::env::var("REGMIRROR_BENCH_SKIP_SKOPEO_SYNC").is_ok() {
        return;
    }
    let limit = Duration::from_secs(180);
    let (secs, extra) = match sync(&dest, limit) {
        Some(r) => (r.secs, String::new()),
        None => (f64::NAN, format!("did not finish in {} s", limit.as_secs())),
    };
    rows.push(Row {
        scenario: name,
        tool: "skopeo sync (no change)".into(),
        secs,
        extra,
    });
}

/// 3b. The no-change poll of scenario 3 from a regmirror upstream, whose
/// tag API (`/api/v0/repositories/{ns}/{repo}/tags`) lists the digests a
/// page at a time: read there instead of one HEAD per tag (issue 17). A
/// `FaultProxy` in front of the upstream counts the requests.
async fn many_tags_bulk(s: &Sizes, rows: &mut Vec<Row>) {
    use support::fault_proxy::FaultProxy;
    use support::images::Pusher;
    let up = server::TestServer::start().await;
    up.create_repo("bench", "many", "public").await;
    let pusher = || {
        Pusher::from_parts(
            &up.url,
            Some(("admin".into(), server::ADMIN_PASSWORD.into())),
            None,
        )
    };
    let mut images = Vec::new();
    for i in 0..s.many_images {
        let spec = ImageSpec::small(&format!("bulk {i}"));
        images.push(
            pusher()
                .push_image("bench/many", &format!("base{i}"), spec)
                .await,
        );
    }
    let per_image = s.many_tags / s.many_images;
    let mut tasks = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let (client, img) = (pusher(), img.clone());
        tasks.push(tokio::spawn(async move {
            for j in 1..per_image {
                client
                    .push_manifest_raw(
                        "bench/many",
                        &format!("v{i}.{j}"),
                        &img.media_type,
                        img.bytes.clone(),
                    )
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n_tags = pusher().tags("bench/many").await.len();
    let proxy = FaultProxy::start_for(&up.url, None, None, 3);
    let dir = scratch();
    regmirror_admin(&proxy.url(), "bench/many", dir.path());
    proxy.reset_log();
    let (mut ours, mut cpu_ours) = (vec![], vec![]);
    for _ in 0..s.runs {
        let r = regmirror_admin(&proxy.url(), "bench/many", dir.path());
        cpu_ours.push(r.cpu_secs);
        ours.push(r.stdout.trim().parse::<f64>().unwrap());
    }
    let requests = proxy.requests();
    let per_run = |n: usize| n as f64 / s.runs as f64;
    let heads = requests
        .iter()
        .filter(|l| l.method == reqwest::Method::HEAD && l.path.contains("/manifests/"))
        .count();
    let api = requests
        .iter()
        .filter(|l| l.path.contains("/api/v0/"))
        .count();
    // The anchor: the same poll with the tag API hidden (the proxy answers
    // 404 there, as a plain registry does), so one HEAD per tag.
    proxy.add(
        support::fault_proxy::Rule::new(support::fault_proxy::Fault::status(404))
            .path_contains("/api/v0/"),
    );
    proxy.reset_log();
    let mut anchor = vec![];
    for _ in 0..s.runs {
        let r = regmirror_admin(&proxy.url(), "bench/many", dir.path());
        anchor.push(r.stdout.trim().parse::<f64>().unwrap());
    }
    let anchor_requests = proxy.requests().len();
    let (o, a) = (median(ours), median(anchor));
    rows.push(Row {
        scenario: format!("3b. no-change poll, {n_tags} tags, regmirror upstream"),
        tool: "regmirror, tag API (job requested to done)".into(),
        secs: o,
        extra: format!(
            "{:.1} requests/run ({:.1} tag API pages, {:.1} HEADs); CPU {:.3} s; {:.2}x the HEAD path (goal < 0.5 s, <= 60 requests)",
            per_run(requests.len()),
            per_run(api),
            per_run(heads),
            median(cpu_ours),
            o / a
        ),
    });
    rows.push(Row {
        scenario: format!("3b. no-change poll, {n_tags} tags, regmirror upstream"),
        tool: "regmirror, HEAD per tag (tag API hidden)".into(),
        secs: a,
        extra: format!("{:.1} requests/run", per_run(anchor_requests)),
    });
}

/// Requests/s that `wrk` (16 connections, 2 threads) gets for `url` with
/// Basic credentials on every request, as `docker` sends them. `None`
/// when `wrk` is not installed.
fn wrk(url: &str, user: &str, password: &str, accept: &str, secs: u64) -> Option<f64> {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            &format!("-d{secs}s"),
            "-H",
            &format!("Authorization: Basic {auth}"),
            "-H",
            &format!("Accept: {accept}"),
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw errors for {url}: {text}"
    );
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Scenario 4, serving: 1 MiB blob GETs and manifest GETs from mirror-server
/// vs docker-registry, private repositories, Basic credentials on every
/// request.
async fn serving(s: &Sizes) {
    use reqwest::Method;
    use server::{ADMIN, ADMIN_PASSWORD};
    let (user, password) = ("bench", "bench-pa55");
    let up = Registry::builder()
        .auth(support::Auth::htpasswd(user, password))
        .start()
        .await;
    let img = up
        .pusher()
        .push_image(
            "bench/serve",
            "v1",
            ImageSpec::small("serve").layer(LayerSpec::Random { size: MIB, seed: 9 }),
        )
        .await;
    let blob = img.layers.last().unwrap().digest.clone();
    let srv = server::TestServer::start().await;
    srv.create_repo("bench", "serve", "private").await;
    let (status, _) = srv
        .call(
            Method::POST,
            "/api/v0/repositories/bench/serve/pollMirroringPolicies?initialEvaluation=true",
            ADMIN,
            Some(serde_json::json!({
                "remoteHost": up.url(), "remoteRepository": "bench/serve",
                "username": user, "password": password, "enabled": true
            })),
        )
        .await;
    assert!(status.is_success(), "policy: {status}");
    srv.wait_done(&srv.submit_poll(None).await).await;

    let secs = if s.full { 10 } else { 1 };
    let accept = &img.media_type;
    let mut rows = Vec::new();
    for (what, path) in [
        ("1 MiB blob GET", format!("/v2/bench/serve/blobs/{blob}")),
        ("manifest GET", "/v2/bench/serve/manifests/v1".to_string()),
    ] {
        // Median of `runs` rounds, each server in turn.
        let (mut ours, mut theirs) = (vec![], vec![]);
        for _ in 0..s.runs {
            let o = wrk(
                &format!("{}{path}", srv.url),
                "admin",
                ADMIN_PASSWORD,
                accept,
                secs,
            );
            let t = wrk(&format!("{}{path}", up.url()), user, password, accept, secs);
            ours.extend(o);
            theirs.extend(t);
        }
        let (ours, theirs) = (
            (!ours.is_empty()).then(|| median(ours)),
            (!theirs.is_empty()).then(|| median(theirs)),
        );
        let (Some(o), Some(t)) = (ours, theirs) else {
            println!(
                "| 4. serving                          | (wrk not installed: apt-get install wrk) |"
            );
            return;
        };
        rows.push(Row {
            scenario: format!("4. serving, {what}"),
            tool: "mirror-server".into(),
            secs: f64::NAN,
            extra: format!("{o:.0} req/s, {:.2}x docker-registry", o / t),
        });
        rows.push(Row {
            scenario: format!("4. serving, {what}"),
            tool: "docker-registry (htpasswd)".into(),
            secs: f64::NAN,
            extra: format!("{t:.0} req/s"),
        });
    }
    print_rows(&rows);
}

/// Scenario 5's clients: a read-only account, whose Basic credentials go
/// with every request, as `docker pull` sends them.
const PULLER: (&str, &str) = ("puller", "puller-pa55word");

/// Name (prefix) of the load generator's threads, whose CPU time is read
/// by name from `/proc/self/task`.
const LOAD_THREADS: &str = "bench-load";

/// One request of a scenario 5 client: when it ended and how long it took
/// (manifest or blob GET, body read and hashed), in seconds, the end from
/// the start of its load phase.
type Sample = (f64, f64);

/// What the clients of one load phase saw.
#[derive(Default)]
struct LoadResult {
    samples: Vec<Sample>,
    pulls: u64,
    errors: u64,
    /// The first few errors, for the report.
    examples: Vec<String>,
    /// Seconds from the phase's start to when the clients were told to stop.
    stopped: f64,
    /// CPU seconds the load generator's threads used.
    cpu_secs: f64,
}

/// A load phase under way: `clients` tasks, each with its own connection
/// pool, pulling one small image after another until told to stop, on a
/// runtime of their own (2 worker threads, named [`LOAD_THREADS`]) so that
/// they do not share the server's worker threads (they share its cores).
struct LoadPhase {
    start: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<LoadResult>,
}

impl LoadPhase {
    /// `images` are `(tag, manifest digest)` of `repo` on the server at
    /// `url`.
    fn start(url: &str, repo: &str, images: &Arc<Vec<(String, String)>>, clients: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let start = Instant::now();
        let (url, repo, images, flag) = (
            url.to_string(),
            repo.to_string(),
            images.clone(),
            stop.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(LOAD_THREADS.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(LOAD_THREADS)
                    .enable_all()
                    .build()
                    .unwrap();
                let mut result = rt.block_on(async {
                    let tasks: Vec<_> = (0..clients)
                        .map(|i| {
                            let (url, repo, images, stop) =
                                (url.clone(), repo.clone(), images.clone(), flag.clone());
                            tokio::spawn(async move {
                                pull_until(i, &url, &repo, &images, &stop, start).await
                            })
                        })
                        .collect();
                    let mut all = LoadResult::default();
                    for t in tasks {
                        let r = t.await.unwrap();
                        all.samples.extend(r.samples);
                        all.pulls += r.pulls;
                        all.errors += r.errors;
                        all.examples.extend(r.examples);
                    }
                    all.examples.truncate(5);
                    all
                });
                // Before the runtime (and its threads) goes away.
                result.cpu_secs = threads_cpu_secs(LOAD_THREADS);
                result
            })
            .unwrap();
        LoadPhase {
            start,
            stop,
            thread,
        }
    }

    /// Seconds since the phase started.
    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Tells the clients to stop after their current pull; what they saw.
    async fn finish(self) -> LoadResult {
        let stopped = self.elapsed();
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let thread = self.thread;
        let mut r = tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        r.stopped = stopped;
        r
    }
}

/// One client of a load phase: verified pulls of `images` in turn, starting
/// with the `first`th, until `stop`.
async fn pull_until(
    first: usize,
    url: &str,
    repo: &str,
    images: &[(String, String)],
    stop: &std::sync::atomic::AtomicBool,
    start: Instant,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut r = LoadResult::default();
    let mut next = first;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let (tag, digest) = &images[next % images.len()];
        next += 1;
        match verified_pull(&client, url, repo, tag, digest, start, &mut r.samples).await {
            Ok(()) => r.pulls += 1,
            Err(e) => {
                r.errors += 1;
                if r.examples.len() < 5 {
                    r.examples.push(e);
                }
                // No busy loop against a server that refuses.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    r
}

/// A pull as a client does one: `GET` the manifest of `repo:tag` (it must
/// hash to `digest`), then `GET` its config and each layer, each hashed as
/// it streams and compared with its digest. Every request goes with
/// [`PULLER`]'s Basic credentials; each one's latency goes to `samples`.
async fn verified_pull(
    client: &reqwest::Client,
    url: &str,
    repo: &str,
    tag: &str,
    digest: &str,
    start: Instant,
    samples: &mut Vec<Sample>,
) -> Result<(), String> {
    use futures_util::StreamExt;
    use sha2::Digest as _;
    let sample = |began: Instant| {
        let now = Instant::now();
        ((now - start).as_secs_f64(), (now - began).as_secs_f64())
    };
    let began = Instant::now();
    let resp = client
        .get(format!("{url}/v2/{repo}/manifests/{tag}"))
        .basic_auth(PULLER.0, Some(PULLER.1))
        .header("accept", support::images::MANIFEST_ACCEPT)
        .send()
        .await
        .map_err(|e| format!("GET manifest {tag}: {e}"))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("GET manifest {tag}: HTTP {}", resp.status()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("reading manifest {tag}: {e}"))?;
    let got = support::data::sha256_digest(&body);
    if got != digest {
        return Err(format!("manifest {tag} is {got}, expected {digest}"));
    }
    samples.push(sample(began));
    let m: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("manifest {tag}: {e}"))?;
    let blobs: Vec<String> = m["config"]["digest"]
        .as_str()
        .into_iter()
        .chain(
            m["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["digest"].as_str()),
        )
        .map(String::from)
        .collect();
    for blob in blobs {
        let began = Instant::now();
        let resp = client
            .get(format!("{url}/v2/{repo}/blobs/{blob}"))
            .basic_auth(PULLER.0, Some(PULLER.1))
            .send()
            .await
            .map_err(|e| format!("GET blob {blob}: {e}"))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("GET blob {blob}: HTTP {}", resp.status()));
        }
        let mut hash = sha2::Sha256::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            hash.update(&chunk.map_err(|e| format!("reading blob {blob}: {e}"))?);
        }
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if got != blob {
            return Err(format!("blob {blob} served as {got}"));
        }
        samples.push(sample(began));
    }
    Ok(())
}

/// Requests per second and p50 / p99 latency (ms) of the requests that
/// ended between `from` and `to` seconds; NaN when there were none.
fn load_stats(samples: &[Sample], from: f64, to: f64) -> (f64, f64, f64) {
    let mut lat: Vec<f64> = samples
        .iter()
        .filter(|(end, _)| (from..=to).contains(end))
        .map(|(_, l)| l * 1000.0)
        .collect();
    if lat.is_empty() {
        return (0.0, f64::NAN, f64::NAN);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    (lat.len() as f64 / (to - from), pct(0.50), pct(0.99))
}

/// A [`server::TestServer`] without its default `poll_mirror` cron, so no
/// scheduled poll runs during a measurement.
async fn bench_server() -> server::TestServer {
    bench_server_with(|_| {}).await
}

/// [`bench_server`] with settings `configure` adjusts.
async fn bench_server_with(
    configure: impl FnOnce(&mut mirror_server::Config),
) -> server::TestServer {
    let srv = server::TestServer::start_with(configure).await;
    let (status, body) = srv
        .call(
            reqwest::Method::DELETE,
            "/api/v0/crons/poll_mirror",
            server::ADMIN,
            None,
        )
        .await;
    assert!(status.is_success(), "deleting the cron: {status} {body}");
    srv
}

/// Waits for a job to be done, looking every 20 ms; its seconds from when
/// the worker claimed it (`lastUpdated` while it runs) to done
/// (`lastUpdated` then), by the server's clock. Not from submission: an
/// idle worker looks at the queue only every 500 ms. From `scheduledAt`
/// if it never was seen running.
async fn job_run_secs(srv: &server::TestServer, id: &str) -> f64 {
    let at = |job: &serde_json::Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(job[field].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{field} of {job}: {e}"))
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut running = None;
    loop {
        let (status, job) = srv
            .call(
                reqwest::Method::GET,
                &format!("/api/v0/jobs/{id}"),
                server::ADMIN,
                None,
            )
            .await;
        assert!(status.is_success(), "job {id}: {status} {job}");
        match job["status"].as_str().unwrap() {
            "waiting" => {}
            "running" => {
                running.get_or_insert(at(&job, "lastUpdated"));
            }
            "done" => {
                let from = running.unwrap_or_else(|| at(&job, "scheduledAt"));
                return (at(&job, "lastUpdated") - from).as_seconds_f64();
            }
            // Panics with the job's log.
            _ => {
                srv.wait_done(id).await;
            }
        }
        assert!(Instant::now() < deadline, "job {id} still not done: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scenario 5, serving under load while a poll copies: clients pull small
/// mirrored images from mirror-server, first alone (baseline), then while a
/// poll copies a large image into another repository of the same server.
async fn serving_under_load(s: &Sizes) {
    let up = Registry::plain().await;
    let p = up.pusher();
    let mut images = Vec::new();
    for i in 0..s.load_images {
        let tag = format!("t{i}");
        let spec = ImageSpec::small(&format!("pulled under load {i}")).layer(LayerSpec::Random {
            size: MIB,
            seed: 500 + i as u64,
        });
        images.push((
            tag.clone(),
            p.push_image("bench/pulled", &tag, spec).await.digest,
        ));
    }
    let images = Arc::new(images);
    let mut spec = ImageSpec::small("copied under load");
    for (i, size) in s.load_layers.iter().enumerate() {
        spec = spec.layer(LayerSpec::Random {
            size: *size,
            seed: 2000 + i as u64,
        });
    }
    p.push_image("bench/copied", "v1", spec).await;
    // The upstream's just-written layers reach the disk now, not during a
    // measured copy's fsyncs.
    // SAFETY: sync has no preconditions.
    tokio::task::spawn_blocking(|| unsafe { libc::sync() })
        .await
        .unwrap();
    let large_mib = s.load_layers.iter().sum::<u64>() as f64 / MIB as f64;

    // The same copy with nothing else going on, on a server of its own
    // (the blobs would be there already on the one under load).
    let alone = {
        let srv = bench_server().await;
        let policy = srv
            .add_policy("mirrors/copied", &up.url(), "bench/copied")
            .await;
        let job = srv.submit_poll(Some(&policy)).await;
        job_run_secs(&srv, &job).await
    };

    let srv = bench_server().await;
    srv.create_user(PULLER.0, PULLER.1).await;
    let pulled = srv
        .add_policy("mirrors/pulled", &up.url(), "bench/pulled")
        .await;
    srv.grant("mirrors/pulled", PULLER.0, "read-only").await;
    srv.wait_done(&srv.submit_poll(Some(&pulled)).await).await;
    let copied = srv
        .add_policy("mirrors/copied", &up.url(), "bench/copied")
        .await;
    // One pull of each image first: checks the setup, and verifies the
    // credentials once (then cached for 60 s, longer than both phases).
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (tag, digest) in images.iter() {
        verified_pull(
            &client,
            &srv.url,
            "mirrors/pulled",
            tag,
            digest,
            Instant::now(),
            &mut Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("setup pull: {e}"));
    }

    let secs = s.load_secs as f64;
    // Clients connect and settle before anything is measured.
    let settle = (secs / 4.0).min(1.0);
    let me = Some(std::process::id());
    let cpu = || (process_cpu_secs(me), process_cpu_secs(up.pid()));

    // Baseline: the load alone.
    let cpu_before = cpu();
    let phase = LoadPhase::start(&srv.url, "mirrors/pulled", &images, s.load_clients);
    tokio::time::sleep(Duration::from_secs_f64(settle + secs)).await;
    let base = phase.finish().await;
    let cpu_base = (cpu().0 - cpu_before.0, cpu().1 - cpu_before.1);

    // The same load while a poll copies the large image; until the copy is
    // done, and at least as long as the baseline.
    let cpu_before = cpu();
    let phase = LoadPhase::start(&srv.url, "mirrors/pulled", &images, s.load_clients);
    tokio::time::sleep(Duration::from_secs_f64(settle)).await;
    let job = srv.submit_poll(Some(&copied)).await;
    let copy = job_run_secs(&srv, &job).await;
    // The copy ran from about `copied_at - copy` to `copied_at` (seen done
    // within 20 ms).
    let copied_at = phase.elapsed();
    let left = settle + secs - phase.elapsed();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
    let loaded = phase.finish().await;
    let cpu_loaded = (cpu().0 - cpu_before.0, cpu().1 - cpu_before.1);

    let name = format!("5. serving, {} clients", s.load_clients);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (b_rps, b50, b99) = load_stats(&base.samples, settle, base.stopped);
    let (l_rps, l50, l99) = load_stats(&loaded.samples, copied_at - copy, copied_at);
    let cpu_row = |phase: &str, r: &LoadResult, (me, up): (f64, f64)| Row {
        scenario: name.clone(),
        tool: format!("CPU s, {phase}: load generator"),
        secs: r.cpu_secs,
        extra: format!(
            "mirror-server {:.2} s, upstream {up:.2} s; {:.1} s x {cores} cores",
            me - r.cpu_secs,
            r.stopped
        ),
    };
    print_rows(&[
        Row {
            scenario: name.clone(),
            tool: "pulls, no copy running".into(),
            secs: base.stopped - settle,
            extra: format!(
                "{b_rps:.0} req/s, p50 {b50:.1} ms, p99 {b99:.1} ms, {} pulls, {} errors",
                base.pulls, base.errors
            ),
        },
        Row {
            scenario: name.clone(),
            tool: format!("pulls while a poll copies {large_mib:.0} MiB"),
            secs: copy,
            extra: format!(
                "{l_rps:.0} req/s, p50 {l50:.1} ms, p99 {l99:.1} ms during the copy; \
                 {} pulls, {} errors in the {:.1} s phase",
                loaded.pulls, loaded.errors, loaded.stopped
            ),
        },
        Row {
            scenario: name.clone(),
            tool: "the copy under load (job)".into(),
            secs: copy,
            extra: format!(
                "{:.0} MiB/s, {:.2}x the copy alone",
                large_mib / copy,
                copy / alone
            ),
        },
        Row {
            scenario: name.clone(),
            tool: "the copy alone (job, no clients)".into(),
            secs: alone,
            extra: format!("{:.0} MiB/s", large_mib / alone),
        },
        cpu_row("no copy", &base, cpu_base),
        cpu_row("copy", &loaded, cpu_loaded),
    ]);
    let errors = base.errors + loaded.errors;
    assert_eq!(
        errors,
        0,
        "scenario 5: {errors} failed pulls, e.g. {:?}",
        base.examples
            .iter()
            .chain(&loaded.examples)
            .collect::<Vec<_>>()
    );
}

/// `skopeo copy` of `docker://{host_port}/{reference}` (as admin of the
/// server when `admin`) into a fresh `dir:` in a scratch directory, removed
/// after; its seconds. The disks are synced first, so writeback of an
/// earlier pull does not land in this one; the pulled manifest must hash to
/// `digest`.
async fn skopeo_pull(host_port: &str, reference: &str, admin: bool, digest: &str) -> f64 {
    let mut args = vec!["copy".to_string(), "--src-tls-verify=false".into()];
    if admin {
        args.push(format!("--src-creds=admin:{}", server::ADMIN_PASSWORD));
    }
    args.push(format!("docker://{host_port}/{reference}"));
    let digest = digest.to_string();
    tokio::task::spawn_blocking(move || {
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        let dir = scratch();
        let out = dir.path().join("image");
        args.push(format!("dir:{}", out.display()));
        let r = measure(Command::new("skopeo").args(&args));
        let manifest = std::fs::read(out.join("manifest.json")).unwrap();
        assert_eq!(server::sha256(&manifest), digest, "skopeo {args:?}");
        r.secs
    })
    .await
    .unwrap()
}

/// Scenario 6, the pull-through cache: skopeo pulls of scenario 1's image
/// from the upstream, through a cache that has never seen it, through the
/// same cache again, and from a mirrored repository of the same server;
/// then concurrent GETs of one missing blob through a fresh cache, counting
/// the fetches that reach the upstream.
async fn pull_through(s: &Sizes, rows: &mut Vec<Row>) {
    use mirror_core::proxy_cache::ProxyCacheForm;
    use support::fault_proxy::FaultProxy;
    let up = Registry::plain().await;
    let mut spec = ImageSpec::small("large");
    for (i, size) in s.layers.iter().enumerate() {
        spec = spec.layer(LayerSpec::Random {
            size: *size,
            seed: 1000 + i as u64,
        });
    }
    let pushed = up.pusher().push_image("bench/large", "v1", spec).await;
    let digest = pushed.digest.as_str();
    let cache = |remote: String| {
        vec![ProxyCacheForm {
            namespace: Some("hub".into()),
            remote_host: Some(remote),
            ..Default::default()
        }]
    };
    let total: u64 = s.layers.iter().sum();
    let total_mib = total as f64 / MIB as f64;
    let (mut direct, mut cold, mut warm, mut mirrored) = (vec![], vec![], vec![], vec![]);
    for run in 0..s.runs {
        direct.push(skopeo_pull(&up.host_port(), "bench/large:v1", false, digest).await);
        // A new server per run: its cache has never seen the image.
        let srv = bench_server_with(|c| c.proxy_caches = cache(up.url())).await;
        let cached = "hub/bench/large:v1";
        cold.push(skopeo_pull(&srv.host_port, cached, true, digest).await);
        let policy = srv
            .add_policy("mirrors/large", &up.url(), "bench/large")
            .await;
        srv.wait_done(&srv.submit_poll(Some(&policy)).await).await;
        // The warm pull and the mirrored one take turns going first.
        let mirror = "mirrors/large:v1";
        if run % 2 == 0 {
            warm.push(skopeo_pull(&srv.host_port, cached, true, digest).await);
            mirrored.push(skopeo_pull(&srv.host_port, mirror, true, digest).await);
        } else {
            mirrored.push(skopeo_pull(&srv.host_port, mirror, true, digest).await);
            warm.push(skopeo_pull(&srv.host_port, cached, true, digest).await);
        }
        srv.stop().await;
    }
    // Each row's runs, for the notes: `min-max s`.
    let spread = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{min:.3}-{max:.3} s")
    };
    let spreads = [&direct, &cold, &warm, &mirrored].map(|v| spread(v));
    let (a, b, c, d) = (median(direct), median(cold), median(warm), median(mirrored));
    let name = format!("6. pull-through cache, {total_mib:.0} MiB image");
    let row = |tool: &str, secs: f64, spread: &str, extra: String| Row {
        scenario: name.clone(),
        tool: tool.into(),
        secs,
        extra: format!("{:.0} MiB/s ({spread}){extra}", total_mib / secs),
    };
    rows.push(row(
        "skopeo copy from the upstream",
        a,
        &spreads[0],
        String::new(),
    ));
    rows.push(row(
        "skopeo, first pull through the cache",
        b,
        &spreads[1],
        format!(", {:.2}x the direct pull (goal <= 1.2x)", b / a),
    ));
    rows.push(row(
        "skopeo, warm pull through the cache",
        c,
        &spreads[2],
        format!(", {:.2}x the mirrored repo (goal <= 1.05x)", c / d),
    ));
    rows.push(row(
        "skopeo, mirrored repo (poll policy)",
        d,
        &spreads[3],
        String::new(),
    ));
    print_rows(rows);
    rows.clear();

    // Concurrent GETs of the largest layer, missing from a fresh cache.
    let proxy = FaultProxy::start(&up, 6);
    let srv = bench_server_with(|c| c.proxy_caches = cache(proxy.url())).await;
    let resp = srv
        .request(
            reqwest::Method::GET,
            "/v2/hub/bench/large/manifests/v1",
            server::ADMIN,
        )
        .header("accept", support::images::MANIFEST_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let layer = pushed.layers.iter().max_by_key(|l| l.size).unwrap().clone();
    let blob_gets = |r: &support::fault_proxy::Logged| {
        r.method == reqwest::Method::GET && r.path.contains("/blobs/")
    };
    let before = proxy.count(blob_gets);
    let start = Instant::now();
    let gets: Vec<_> = (0..s.cache_gets)
        .map(|_| {
            let req = srv.request(
                reqwest::Method::GET,
                &format!("/v2/hub/bench/large/blobs/{}", layer.digest),
                server::ADMIN,
            );
            let digest = layer.digest.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                use sha2::Digest as _;
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), reqwest::StatusCode::OK);
                let mut hash = sha2::Sha256::new();
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    hash.update(chunk.unwrap());
                }
                let got = format!("sha256:{}", hex::encode(hash.finalize()));
                assert_eq!(got, digest);
            })
        })
        .collect();
    for g in gets {
        g.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let fetches = proxy.count(blob_gets) - before;
    let layer_mib = layer.size as f64 / MIB as f64;
    rows.push(Row {
        scenario: name,
        tool: format!("{} concurrent GETs, {layer_mib:.0} MiB blob", s.cache_gets),
        secs: wall,
        extra: format!(
            "fresh cache; {fetches} blob GET(s) reached the upstream (goal 1); \
             {:.0} MiB/s served in all",
            layer_mib * s.cache_gets as f64 / wall
        ),
    });
    srv.stop().await;
}
