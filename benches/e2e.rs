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
//!    done), counting the requests the upstream logged, vs `skopeo sync`.
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

#[path = "../tests/server_e2e/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_core::store::FsOptions;
use mirror_core::{JobStatus, Mirror, MirrorSettings, NewPolicy, RepositoryName, Stores};
use support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;

struct Sizes {
    layers: Vec<u64>,
    small_tags: usize,
    many_tags: usize,
    many_images: usize,
    runs: usize,
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
            runs,
        }
    } else {
        Sizes {
            layers: vec![3 * MIB, MIB],
            small_tags: 3,
            many_tags: 20,
            many_images: 2,
            runs: 1,
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

/// `--child URL REPO DATA_DIR DURABLE(0|1) POLLS`: mirror `REPO` into
/// `DATA_DIR` with `POLLS` polls; prints the seconds of the last poll.
fn child(args: &[String]) {
    let [url, repo, data, durable, polls] = args else {
        panic!("usage: --child URL REPO DATA_DIR DURABLE POLLS")
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
            None => m
                .add_policy(
                    &local,
                    NewPolicy {
                        remote_host: url.clone(),
                        remote_repository: repo.clone(),
                        enabled: true,
                        ..Default::default()
                    },
                    true,
                )
                .await
                .unwrap(),
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

/// Wall time and peak RSS of a command.
struct Run {
    secs: f64,
    peak_rss_mib: f64,
    /// CPU time (user + system) the command used.
    cpu_secs: f64,
    stdout: String,
}

/// User + system CPU seconds of all waited-for children so far.
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// User + system CPU seconds process `pid` has used (from `/proc`), 0 when
/// unknown.
fn process_cpu_secs(pid: Option<u32>) -> f64 {
    let Some(stat) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
    else {
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

fn measure(cmd: &mut Command) -> Run {
    measure_limited(cmd, Duration::MAX).expect("no time limit")
}

/// [`measure`], killing the command after `limit` (then `None`).
fn measure_limited(cmd: &mut Command, limit: Duration) -> Option<Run> {
    let cpu_before = children_cpu_secs();
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start command");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Run {
        secs,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        cpu_secs: children_cpu_secs() - cpu_before,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
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
    if wanted("4") {
        serving(&s).await;
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

async fn many_tags(s: &Sizes, rows: &mut Vec<Row>) {
    let up = Registry::builder().log_level("info").start().await;
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
    let (_, job) = srv
        .call(
            Method::POST,
            "/api/v0/jobs",
            ADMIN,
            Some(serde_json::json!({"action": "poll_mirror"})),
        )
        .await;
    srv.wait_done(job["id"].as_str().unwrap()).await;

    let secs = if s.runs > 1 { 10 } else { 1 };
    let accept = &img.media_type;
    let mut rows = Vec::new();
    for (what, path) in [
        ("1 MiB blob GET", format!("/v2/bench/serve/blobs/{blob}")),
        ("manifest GET", "/v2/bench/serve/manifests/v1".to_string()),
    ] {
        let ours = wrk(
            &format!("{}{path}", srv.url),
            "admin",
            ADMIN_PASSWORD,
            accept,
            secs,
        );
        let theirs = wrk(&format!("{}{path}", up.url()), user, password, accept, secs);
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
