//! Scale-out benchmark (issue 13, "Numbers"): the S3 blob store and
//! PostgreSQL-backed replicas, on loopback, in one run.
//!
//! ```text
//! cargo bench --bench scale_out           # full sizes
//! REGMIRROR_BENCH_RUNS=1 REGMIRROR_BENCH_ONLY=2,3 cargo bench --bench scale_out
//! ```
//!
//! Scenarios:
//! 1. a copy of the 832 MiB three-layer image (512 + 256 + 64 MiB of random
//!    data, as `benches/e2e.rs` scenario 1) from Debian's `docker-registry`
//!    into the filesystem store (durable, the default, and durable off) and
//!    into the S3 store (moto; metadata in SQLite, and in PostgreSQL as a
//!    replica keeps it), each by a child process (this binary re-executed
//!    with `--child`), so its wall time and peak RSS (`VmHWM`) are its own.
//!    moto is a Python server keeping objects in its own memory and temp
//!    files: the S3 rows time moto, not S3.
//! 2. the job queue on one PostgreSQL:
//!    - (a) claims per second through mirror-core's `JobStore::claim_job` on
//!      `PgStore`: N waiting jobs, claimed by 1 or 3 "replicas" (a
//!      `PgStore` each, with its own pool and worker ID), each claiming one
//!      job at a time as `Worker` does, until none is left. The claim
//!      alone (SELECT … FOR UPDATE SKIP LOCKED + UPDATE, one transaction);
//!      nothing runs the jobs.
//!    - (b) whole jobs per second through 1 or 3 in-process `mirror-server`
//!      replicas (PostgreSQL + one moto bucket, 2 worker slots each): N
//!      no-op `poll_mirror` jobs (no policies exist), all due at one
//!      instant; first job started → last job done (from the job rows:
//!      the claim sets `heartbeat_at`, finishing sets `last_updated`).
//!    - (c) scheduled-poll latency on the same replicas: a `poll_mirror` cron
//!      due every 2 s (1 s in the smoke run) (its runs claimed in the database); per run, the due
//!      second → the job submitted (`scheduled_at`) and → the job started
//!      (claimed: `heartbeat_at`). An idle worker looks at the queue every
//!      500 ms, which dominates.
//! 3. serving 1 MiB blob GETs and manifest GETs (Basic credentials on every
//!    request) from 3 in-process replicas on PostgreSQL + one moto bucket:
//!    `wrk` (16 connections) at one replica, then three `wrk` (6
//!    connections each) at the three at once; the same with `[s3]
//!    redirect_secs` (`307` answers per second: `wrk` does not follow them;
//!    and a client loop following them to moto); and a single server with
//!    the default SQLite + filesystem stores for reference. The replicas
//!    run in this process, on one tokio runtime, on a machine of 2 cores
//!    that `wrk` shares: three replicas cannot beat one here; the rows show
//!    what spreading the load costs, not what more machines would gain.
//!
//! `REGMIRROR_BENCH_RUNS` (default 3) repeats scenario 1 (medians);
//! `REGMIRROR_BENCH_ONLY=1,3` runs a subset. Under `cargo test` (no
//! `--bench` argument) every scenario runs once with tiny sizes as a smoke
//! test, with a client loop instead of `wrk`.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "support/measure.rs"]
#[allow(dead_code)]
mod measure;
#[path = "../tests/server_e2e/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use measure::{measure, median};
use mirror_core::store::{JobStore, PgOptions, PgStore, S3BlobStore, S3Options, SecretKeys};
use mirror_core::{
    Job, JobStatus, JobSubmission, Mirror, MirrorSettings, PolicyForm, RepositoryName, Stores,
};
use mirror_server::config::BlobStoreConfig;
use support::postgres::PgServer;
use support::s3::S3Server;
use support::{ImageSpec, LayerSpec, Registry};

const MIB: u64 = 1024 * 1024;

/// The key every replica seals secrets with (`MIRROR_SECRET_KEY` on a real
/// deployment), as hex in each data directory's `secret.key`.
const SHARED_KEY: [u8; 32] = [0x5e; 32];

struct Sizes {
    full: bool,
    runs: usize,
    layers: Vec<u64>,
    /// 2a: jobs claimed per measurement.
    claims: usize,
    /// 2b: no-op jobs run per measurement.
    jobs: usize,
    /// 2c: cron runs observed, seconds between them.
    cron_runs: usize,
    cron_period: u64,
    /// 3: seconds of each load.
    load_secs: u64,
}

fn sizes(full: bool) -> Sizes {
    let runs = std::env::var("REGMIRROR_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    if full {
        Sizes {
            full,
            runs,
            layers: vec![512 * MIB, 256 * MIB, 64 * MIB],
            claims: 3000,
            jobs: 600,
            cron_runs: 15,
            cron_period: 2,
            load_secs: 10,
        }
    } else {
        Sizes {
            full,
            runs: 1,
            // Over one 8 MiB part: the S3 store's multipart path runs too.
            layers: vec![9 * MIB, MIB],
            claims: 40,
            jobs: 10,
            cron_runs: 1,
            cron_period: 1,
            load_secs: 0,
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

/// `--child URL REPO DATA_DIR STORE [BUCKET ENDPOINT [DATABASE_URL]]`:
/// mirrors `REPO` once into `DATA_DIR` with blobs in `STORE` (`fs`,
/// `fs-fast`: durable commits off, `s3`: the bucket, metadata in SQLite in
/// `DATA_DIR` or in PostgreSQL at `DATABASE_URL`); prints the poll's seconds.
fn child(args: &[String]) {
    let (url, repo, data, store) = match args {
        [url, repo, data, store, ..] => (url, repo, Path::new(data), store.as_str()),
        _ => panic!("usage: --child URL REPO DATA_DIR STORE [BUCKET ENDPOINT [DATABASE_URL]]"),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        std::fs::create_dir_all(data).unwrap();
        let stores = match store {
            "fs" | "fs-fast" => Stores::embedded(
                data,
                mirror_core::store::FsOptions {
                    durable: store == "fs",
                },
            )
            .unwrap(),
            "s3" => {
                let blobs = Arc::new(S3BlobStore::new(&s3_options(&args[4], &args[5])).unwrap());
                match args.get(6) {
                    Some(db) => Stores::postgres(
                        db,
                        PgOptions::default(),
                        SecretKeys::from_key(SHARED_KEY),
                        blobs,
                    )
                    .await
                    .unwrap(),
                    None => Stores::sqlite_with(data, blobs).unwrap(),
                }
            }
            other => panic!("unknown store {other}"),
        };
        let m = Mirror::new(
            stores,
            Arc::new(mirror_core::remote::HttpConnector::default()),
            MirrorSettings::default(),
        );
        let local = RepositoryName::parse("bench/mirror").unwrap();
        let policy = m
            .add_policy(&local, &PolicyForm::new(url.clone(), repo.clone()), None)
            .await
            .unwrap();
        let start = Instant::now();
        let job = m.poll(&policy.id).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(job.status, JobStatus::Done, "{job:?}");
        println!("{secs}");
    });
}

/// The bench's bucket on moto, as `S3Bucket::options` makes them.
fn s3_options(bucket: &str, endpoint: &str) -> S3Options {
    S3Options {
        bucket: bucket.into(),
        prefix: "bench".into(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        allow_http: true,
        access_key_id: Some("testing".into()),
        secret_access_key: Some(mirror_core::Secret::new("testing-secret")),
        // For experiments: REGMIRROR_BENCH_S3_PART_MIB=5 (the store's
        // memory is about parts in flight + 1, times the blobs copied at once).
        part_size: std::env::var("REGMIRROR_BENCH_S3_PART_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(mirror_core::store::DEFAULT_PART_SIZE, |m| m * MIB as usize),
        ..Default::default()
    }
}

/// The `p` quantile (0..=1) of `v`.
fn quantile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    scenario: String,
    setup: String,
    secs: f64,
    notes: String,
}

fn row(scenario: &str, setup: impl Into<String>, secs: f64, notes: impl Into<String>) -> Row {
    Row {
        scenario: scenario.into(),
        setup: setup.into(),
        secs,
        notes: notes.into(),
    }
}

fn print_rows(rows: &[Row]) {
    for r in rows {
        let secs = if r.secs.is_nan() {
            "—".to_string()
        } else {
            format!("{:.3}", r.secs)
        };
        println!(
            "| {:<30} | {:<44} | {:>8} | {} |",
            r.scenario, r.setup, secs, r.notes
        );
    }
}

async fn run(s: Sizes) {
    println!();
    println!(
        "| {:<30} | {:<44} | {:>8} | notes |",
        "scenario", "setup", "median s"
    );
    println!("|{:-<32}|{:-<46}|{:->10}|---|", "", "", "");
    let only = std::env::var("REGMIRROR_BENCH_ONLY").unwrap_or_default();
    let wanted = |n: &str| only.is_empty() || only.split(',').any(|o| o == n);
    if wanted("1") {
        print_rows(&large_image(&s).await);
    }
    if wanted("2") {
        print_rows(&claims(&s).await);
        for replicas in [1, 3] {
            print_rows(&jobs_and_crons(&s, replicas).await);
        }
    }
    if wanted("3") {
        print_rows(&serving(&s).await);
    }
    println!();
}

/// Empties moto (every bucket and object) so a copy's objects do not pile
/// up in its memory and temp files; buckets are made anew after.
async fn reset_moto() {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/moto-api/reset", S3Server::shared().endpoint()))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "moto reset: {resp:?}");
}

/// Scenario 1: the large image into the filesystem store and into S3.
async fn large_image(s: &Sizes) -> Vec<Row> {
    let up = Registry::plain().await;
    let mut spec = ImageSpec::small("large");
    for (i, size) in s.layers.iter().enumerate() {
        spec = spec.layer(LayerSpec::Random {
            size: *size,
            seed: 1000 + i as u64,
        });
    }
    up.pusher().push_image("bench/large", "v1", spec).await;
    let total_mib = s.layers.iter().sum::<u64>() as f64 / MIB as f64;
    // (name, store, metadata in PostgreSQL)
    let setups = [
        ("fs store, durable (default), SQLite", "fs", false),
        ("fs store, durable off, SQLite", "fs-fast", false),
        ("S3 store (moto), SQLite", "s3", false),
        ("S3 store (moto), PostgreSQL (replica setup)", "s3", true),
    ];
    let mut secs = vec![Vec::new(); setups.len()];
    let mut poll_secs = vec![Vec::new(); setups.len()];
    let mut rss = vec![0.0f64; setups.len()];
    let exe = std::env::current_exe().unwrap();
    for _ in 0..s.runs {
        for (i, (_, store, pg)) in setups.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let mut args = vec![
                "--child".to_string(),
                up.url(),
                "bench/large".into(),
                data.display().to_string(),
                store.to_string(),
            ];
            if *store == "s3" {
                let bucket = S3Server::shared().bucket().await;
                args.push(bucket.name.clone());
                args.push(S3Server::shared().endpoint());
                if *pg {
                    args.push(PgServer::shared().database().await);
                }
            }
            let r = measure(Command::new(&exe).args(&args));
            secs[i].push(r.secs);
            poll_secs[i].push(r.stdout.trim().parse::<f64>().unwrap());
            rss[i] = rss[i].max(r.peak_rss_mib);
            if *store == "s3" {
                reset_moto().await;
            }
        }
    }
    let name = format!("1. copy {total_mib:.0} MiB image");
    let fs_poll = median(poll_secs[0].clone());
    setups
        .iter()
        .enumerate()
        .map(|(i, (setup, store, _))| {
            let poll = median(poll_secs[i].clone());
            let moto = if *store == "s3" {
                "; moto (Python, in-memory) is the bottleneck, not S3"
            } else {
                ""
            };
            row(
                &name,
                *setup,
                median(secs[i].clone()),
                format!(
                    "poll {poll:.3} s, {:.0} MiB/s, {:.2}x fs durable, peak RSS {:.1} MiB \
                     (goal ≤ 64){moto}",
                    total_mib / poll,
                    poll / fs_poll,
                    rss[i]
                ),
            )
        })
        .collect()
}

/// Scenario 2a: claims per second through `JobStore::claim_job` on
/// `PgStore`, 1 and 3 claimers with a store (pool, worker ID) each.
async fn claims(s: &Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    for replicas in [1usize, 3] {
        let url = PgServer::shared().database().await;
        let mut stores = Vec::new();
        for _ in 0..replicas {
            let options = PgOptions {
                pool_size: 4,
                ..Default::default()
            };
            stores.push(Arc::new(
                PgStore::connect(&url, options, SecretKeys::from_key(SHARED_KEY))
                    .await
                    .unwrap(),
            ));
        }
        insert_jobs(&stores[0], s.claims, None).await;
        let start = Instant::now();
        let tasks: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let store = store.clone();
                tokio::spawn(async move {
                    let worker = format!("bench-claimer-{i}");
                    let mut latencies = Vec::new();
                    loop {
                        let t = Instant::now();
                        // As `Worker` claims (its namespace share does not
                        // apply to jobs of every policy).
                        let claimed = store
                            .claim_job(&worker, None, Utc::now(), Some(1))
                            .await
                            .unwrap();
                        if claimed.is_none() {
                            return latencies;
                        }
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut per = Vec::new();
        for t in tasks {
            let l = t.await.unwrap();
            per.push(l.len().to_string());
            latencies.extend(l);
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(latencies.len(), s.claims, "every job claimed exactly once");
        rows.push(row(
            "2a. claims, JobStore::claim_job",
            format!("{replicas} claimer(s), PgStore each"),
            secs,
            format!(
                "{:.0} claims/s ({} jobs; per claimer {}), p50 {:.2} ms, p99 {:.2} ms per claim",
                s.claims as f64 / secs,
                s.claims,
                per.join("/"),
                quantile(&latencies, 0.5),
                quantile(&latencies, 0.99)
            ),
        ));
    }
    rows
}

/// Inserts `n` waiting no-op `poll_mirror` jobs (of every policy), due at
/// `at` (now if `None`), 8 at a time.
async fn insert_jobs(store: &Arc<PgStore>, n: usize, at: Option<DateTime<Utc>>) {
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(|_| {
            let store = store.clone();
            async move {
                let job = Job::new(&JobSubmission {
                    action: "poll_mirror".into(),
                    scheduled_at: at,
                    ..Default::default()
                });
                store.insert_job(&job).await.unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

/// Writes the shared key where a replica's `SecretKeys::load` finds it.
fn share_key(data_dir: &Path) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(data_dir.join("secret.key"))
        .unwrap();
    std::io::Write::write_all(&mut f, hex::encode(SHARED_KEY).as_bytes()).unwrap();
}

/// `n` in-process replicas on the database at `url` and one bucket (prefix
/// `p`), blob GETs redirected to presigned URLs when `redirect`.
async fn replicas(
    n: usize,
    url: &str,
    bucket: &support::s3::S3Bucket,
    redirect: bool,
) -> Vec<server::TestServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (url, options) = (url.to_string(), bucket.options("p"));
        out.push(
            server::TestServer::start_with(move |c| {
                share_key(&c.data_dir);
                c.database_url = Some(url.into());
                c.database_pool_size = 8;
                c.blob_store = BlobStoreConfig::S3(Box::new(options));
                c.blob_redirect = redirect.then_some(Duration::from_secs(600));
            })
            .await,
        );
    }
    // The default cron (every 30 minutes) is shared: no run of it during a
    // measurement.
    let (status, body) = out[0]
        .call(
            reqwest::Method::DELETE,
            "/api/v0/crons/poll_mirror",
            server::ADMIN,
            None,
        )
        .await;
    assert!(
        status.is_success() || status == reqwest::StatusCode::NOT_FOUND,
        "deleting the cron: {status} {body}"
    );
    out
}

/// Rows of `psql` output, each split at `|`.
async fn psql_rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    PgServer::shared()
        .psql(url, sql)
        .await
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(String::from).collect())
        .collect()
}

/// Scenarios 2b and 2c on `n` replicas.
async fn jobs_and_crons(s: &Sizes, n: usize) -> Vec<Row> {
    let url = PgServer::shared().database().await;
    let bucket = S3Server::shared().bucket().await;
    let servers = replicas(n, &url, &bucket, false).await;
    let store = Arc::new(
        PgStore::connect(
            &url,
            PgOptions {
                pool_size: 4,
                ..Default::default()
            },
            SecretKeys::from_key(SHARED_KEY),
        )
        .await
        .unwrap(),
    );
    let mut rows = Vec::new();

    // 2b: N jobs due at one instant, after all are inserted.
    let lead = if s.full { 2.0 } else { 0.5 };
    let due = Utc::now() + chrono::Duration::milliseconds((lead * 1000.0) as i64);
    insert_jobs(&store, s.jobs, Some(due)).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = psql_rows(
            &url,
            "SELECT count(*) FROM jobs WHERE status IN ('waiting', 'running')",
        )
        .await;
        if left[0][0] == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "{} jobs left", left[0][0]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = psql_rows(
        &url,
        "SELECT count(*) FILTER (WHERE status = 'done'),
                extract(epoch FROM max(last_updated) - min(heartbeat_at)),
                extract(epoch FROM min(heartbeat_at) - min(scheduled_at))
         FROM jobs",
    )
    .await;
    let done: usize = summary[0][0].parse().unwrap();
    assert_eq!(done, s.jobs, "every no-op job done");
    let secs: f64 = summary[0][1].parse().unwrap();
    let first: f64 = summary[0][2].parse().unwrap();
    let per = psql_rows(
        &url,
        "SELECT count(*) FROM jobs GROUP BY worker_id ORDER BY 1 DESC",
    )
    .await;
    let per: Vec<&str> = per.iter().map(|r| r[0].as_str()).collect();
    rows.push(row(
        "2b. whole no-op poll_mirror jobs",
        format!("{n} replica(s), 2 worker slots each"),
        secs,
        format!(
            "{:.0} jobs/s ({} jobs, first started → last done; per replica {}); \
             first claim {:.0} ms after due",
            s.jobs as f64 / secs,
            s.jobs,
            per.join("/"),
            first * 1000.0
        ),
    ));

    // 2c: a cron due every 2 s, saved through every replica so each
    // scheduler wakes for it at once.
    let since = Utc::now();
    let period = s.cron_period as f64;
    let schedule = format!("*/{} * * * * *", s.cron_period);
    let cron = serde_json::json!({"action": "poll_mirror", "schedule": schedule});
    for srv in &servers {
        let (status, body) = srv
            .call(
                reqwest::Method::POST,
                "/api/v0/crons",
                server::ADMIN,
                Some(cron.clone()),
            )
            .await;
        assert!(status.is_success(), "saving the cron: {status} {body}");
    }
    let since_sql = format!("to_timestamp({:.6})", since.timestamp_micros() as f64 / 1e6);
    let deadline = Instant::now() + Duration::from_secs(s.cron_period * s.cron_runs as u64 + 30);
    let fired = loop {
        let fired = psql_rows(
            &url,
            &format!(
                "SELECT extract(epoch FROM scheduled_at), extract(epoch FROM heartbeat_at)
                 FROM jobs WHERE scheduled_at > {since_sql} AND heartbeat_at IS NOT NULL
                 ORDER BY scheduled_at"
            ),
        )
        .await;
        if fired.len() >= s.cron_runs {
            break fired;
        }
        assert!(
            Instant::now() < deadline,
            "only {} cron runs started",
            fired.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, _) = servers[0]
        .call(
            reqwest::Method::DELETE,
            "/api/v0/crons/poll_mirror",
            server::ADMIN,
            None,
        )
        .await;
    assert!(status.is_success());
    let (mut submitted, mut started) = (Vec::new(), Vec::new());
    for r in fired.iter().take(s.cron_runs) {
        let (at, claimed): (f64, f64) = (r[0].parse().unwrap(), r[1].parse().unwrap());
        // Runs are due at whole multiples of the period; the job is
        // submitted after.
        let due = (at / period).floor() * period;
        submitted.push((at - due) * 1000.0);
        started.push((claimed - due) * 1000.0);
    }
    let total = psql_rows(
        &url,
        &format!("SELECT count(*) FROM jobs WHERE scheduled_at > {since_sql}"),
    )
    .await;
    rows.push(row(
        "2c. scheduled poll latency",
        format!("{n} replica(s), cron every {} s", s.cron_period),
        f64::NAN,
        format!(
            "due → started p50 {:.0} ms, max {:.0} ms; due → submitted p50 {:.0} ms \
             ({} runs; {} jobs while the cron was on: one per run)",
            quantile(&started, 0.5),
            quantile(&started, 1.0),
            quantile(&submitted, 0.5),
            started.len(),
            total[0][0]
        ),
    ));
    for srv in servers {
        srv.stop().await;
    }
    rows
}

/// Requests per second of `wrk` (2 threads, 16 connections) at each of
/// `urls` at once (each `wrk` then 1 thread, 6 connections), Basic
/// credentials on every request; the sum. A client loop of this process
/// for 0.3 s instead when `secs` is 0 (the smoke run).
async fn load(urls: &[String], accept: &str, secs: u64) -> f64 {
    // Credentials verified (and cached) by each replica before measuring.
    let _ = client_loop(urls, accept, urls.len(), Duration::ZERO, false).await;
    if secs == 0 {
        return client_loop(urls, accept, 16, Duration::from_millis(300), false).await;
    }
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("admin:{}", server::ADMIN_PASSWORD));
    let (threads, conns) = if urls.len() == 1 {
        ("-t2", "-c16")
    } else {
        ("-t1", "-c6")
    };
    let children: Vec<_> = urls
        .iter()
        .map(|url| {
            tokio::process::Command::new("wrk")
                .args([
                    threads,
                    conns,
                    &format!("-d{secs}s"),
                    "-H",
                    &format!("Authorization: Basic {auth}"),
                    "-H",
                    &format!("Accept: {accept}"),
                    url,
                ])
                .output()
        })
        .collect();
    let mut total = 0.0;
    for out in futures_util::future::join_all(children).await {
        let out = out.expect("wrk (apt-get install wrk)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Non-2xx"), "wrk saw errors: {text}");
        total += text
            .lines()
            .find(|l| l.starts_with("Requests/sec:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no Requests/sec from wrk: {text}"));
    }
    total
}

/// Requests per second of `clients` tasks of this process GETting `urls`
/// round-robin for `secs`, bodies read whole; redirects followed unless
/// `!follow` (then `307` counts as success).
async fn client_loop(
    urls: &[String],
    accept: &str,
    clients: usize,
    secs: Duration,
    follow: bool,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let policy = if follow {
        reqwest::redirect::Policy::limited(2)
    } else {
        reqwest::redirect::Policy::none()
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(policy)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, stop, count) = (client.clone(), stop.clone(), count.clone());
            let (urls, accept) = (urls.to_vec(), accept.to_string());
            tokio::spawn(async move {
                let mut n = i;
                loop {
                    let resp = client
                        .get(&urls[n % urls.len()])
                        .basic_auth("admin", Some(server::ADMIN_PASSWORD))
                        .header("accept", &accept)
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    assert!(
                        status.is_success() || status.is_redirection(),
                        "GET: {status}"
                    );
                    resp.bytes().await.unwrap();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let start = Instant::now();
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / elapsed
}

/// Mirrors `bench/serve:v1` of `up` into `mirrors/serve` of `srv`.
async fn mirror_into(srv: &server::TestServer, up: &Registry) {
    let policy = srv
        .add_policy("mirrors/serve", &up.url(), "bench/serve")
        .await;
    srv.wait_done(&srv.submit_poll(Some(&policy)).await).await;
}

/// Scenario 3: serving from one vs three replicas, with and without
/// presigned redirects, and from a single default server.
async fn serving(s: &Sizes) -> Vec<Row> {
    let up = Registry::plain().await;
    let img = up
        .pusher()
        .push_image(
            "bench/serve",
            "v1",
            ImageSpec::small("serve").layer(LayerSpec::Random { size: MIB, seed: 9 }),
        )
        .await;
    let blob = img.layers.last().unwrap().digest.clone();
    let paths = [
        ("1 MiB blob GET", format!("/v2/mirrors/serve/blobs/{blob}")),
        ("manifest GET", "/v2/mirrors/serve/manifests/v1".to_string()),
    ];
    let accept = img.media_type.clone();
    let secs = s.load_secs;
    let mut rows = Vec::new();

    // Reference: one server, SQLite + filesystem (e2e scenario 4's setup).
    {
        let srv = server::TestServer::start().await;
        mirror_into(&srv, &up).await;
        for (what, path) in &paths {
            let rps = load(&[format!("{}{path}", srv.url)], &accept, secs).await;
            rows.push(row(
                &format!("3. serving, {what}"),
                "1 server, SQLite + fs (default)",
                f64::NAN,
                format!("{rps:.0} req/s"),
            ));
        }
        srv.stop().await;
    }

    let url = PgServer::shared().database().await;
    let bucket = S3Server::shared().bucket().await;
    let servers = replicas(3, &url, &bucket, false).await;
    mirror_into(&servers[0], &up).await;
    for (what, path) in &paths {
        let one = load(&[format!("{}{path}", servers[0].url)], &accept, secs).await;
        let urls: Vec<String> = servers.iter().map(|s| format!("{}{path}", s.url)).collect();
        let three = load(&urls, &accept, secs).await;
        let bound = if what.contains("blob") {
            "; every GET reads the blob from moto"
        } else {
            ""
        };
        rows.push(row(
            &format!("3. serving, {what}"),
            "1 of 3 replicas, PostgreSQL + S3 (moto)",
            f64::NAN,
            format!("{one:.0} req/s{bound}"),
        ));
        rows.push(row(
            &format!("3. serving, {what}"),
            "3 replicas at once (wrk at each)",
            f64::NAN,
            format!(
                "{three:.0} req/s, {:.2}x one (2 cores, one process: no gain possible)",
                three / one
            ),
        ));
    }
    for srv in servers {
        srv.stop().await;
    }

    // Presigned redirects: the same database and bucket, replicas with
    // `[s3] redirect_secs = 600`.
    let servers = replicas(3, &url, &bucket, true).await;
    let (_, blob_path) = &paths[0];
    let one = load(&[format!("{}{blob_path}", servers[0].url)], &accept, secs).await;
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}{blob_path}", s.url))
        .collect();
    let three = load(&urls, &accept, secs).await;
    let followed = client_loop(
        &urls,
        &accept,
        16,
        Duration::from_secs(secs.max(1) / 2).max(Duration::from_millis(300)),
        true,
    )
    .await;
    rows.push(row(
        "3. serving, 1 MiB blob GET",
        "1 of 3 replicas, redirect_secs = 600",
        f64::NAN,
        format!("{one:.0} 307 answers/s (wrk does not follow them)"),
    ));
    rows.push(row(
        "3. serving, 1 MiB blob GET",
        "3 replicas at once, redirect_secs = 600",
        f64::NAN,
        format!("{three:.0} 307 answers/s, {:.2}x one", three / one.max(1.0)),
    ));
    rows.push(row(
        "3. serving, 1 MiB blob GET",
        "3 replicas, redirects followed to moto",
        f64::NAN,
        format!(
            "{followed:.0} blobs/s (16 client tasks in this process, round-robin; \
             the bytes come from moto)"
        ),
    ));
    // moto's own floor: the objects fetched by presigned URL (what a
    // replica's manifest GET and blob `stat` wait for), no server between.
    let mut floors = Vec::new();
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for digest in [blob.as_str(), img.digest.as_str()] {
        let resp = no_follow
            .get(format!(
                "{}/v2/mirrors/serve/blobs/{digest}",
                servers[0].url
            ))
            .basic_auth("admin", Some(server::ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        floors.push(
            client_loop(
                &[location],
                &accept,
                16,
                Duration::from_secs(secs.max(1) / 2).max(Duration::from_millis(300)),
                false,
            )
            .await,
        );
    }
    rows.push(row(
        "3. serving, moto alone",
        "GET by presigned URL, 16 client tasks",
        f64::NAN,
        format!(
            "{:.0} req/s for the 1 MiB blob, {:.0} req/s for the manifest object: \
             the floor under every S3 row (a manifest GET is one moto GET, a blob \
             GET one moto HEAD first)",
            floors[0], floors[1]
        ),
    ));
    for srv in servers {
        srv.stop().await;
    }
    rows
}
