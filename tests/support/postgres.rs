//! A real PostgreSQL (Debian's `postgresql` package, which `scripts/test`
//! installs: `initdb` and `postgres` from `/usr/lib/postgresql/<version>/bin`)
//! on a free loopback port, started once per test binary; each test makes
//! a database of its own.
//!
//! ```ignore
//! let url = PgServer::shared().database().await;
//! let store = PgStore::connect(&url, PgOptions::default(), keys).await.unwrap();
//! ```
//!
//! The cluster is made by `initdb` in a temporary directory, password
//! authentication (SCRAM) on TCP, so URLs carry a password as a real one
//! would. PostgreSQL refuses to run as root: as root (CI), `initdb` and the
//! server run as the `postgres` user (`setpriv`), which owns the directory.
//!
//! Process hygiene as for `docker-registry` (`registry.rs`): a `sh` wrapper
//! keeps a watcher reading a pipe from this process and `exec`s the
//! server; when this process goes away, however it ends, the pipe closes
//! and the watcher stops the server (a fast shutdown) and then removes the
//! cluster's directory. The shared server is never dropped, so that pipe is
//! what ends it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::registry::free_port;

/// The superuser's password in every URL.
const PASSWORD: &str = "pg-test-secret";

/// A running PostgreSQL server.
pub struct PgServer {
    port: u16,
    dir: PathBuf,
    /// Where `initdb`, `postgres` and `psql` are.
    bin: PathBuf,
    /// Kept for the life of the process (see the module documentation).
    _child: Mutex<Child>,
    _lifeline: Mutex<ChildStdin>,
}

static SHARED: LazyLock<PgServer> = LazyLock::new(PgServer::start);

/// The directory of `initdb` and `postgres`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed: `apt-get install postgresql` (scripts/test does), \
             or set PG_BIN to the directory of initdb and postgres"
        )
    })
}

/// `(uid, gid)` of the `postgres` user when this process is root (the
/// server refuses to run as root), else `None`: run as ourselves.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: plain libc calls; getpwnam's result is read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        assert!(
            !pw.is_null(),
            "running as root, and there is no `postgres` user to run PostgreSQL as \
             (the Debian package creates it)"
        );
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// `program` with `args`, as the `postgres` user when we are root.
fn command(program: &Path, user: Option<(u32, u32)>) -> Command {
    match user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl PgServer {
    /// The server of this test binary, started at the first call.
    pub fn shared() -> &'static PgServer {
        &SHARED
    }

    fn start() -> PgServer {
        let bin = bin_dir();
        let user = run_as();
        let dir = tempfile::Builder::new()
            .prefix("regmirror-pg-")
            .tempdir()
            .expect("postgres tempdir")
            // Removed by the watcher once the server stopped.
            .keep();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let out = command(&bin.join("initdb"), user)
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // TLS on (plain connections still allowed): the test CA's server
        // certificate for 127.0.0.1, which `ca_file()` verifies.
        let certs = super::certs::material();
        let data = dir.join("data");
        for (name, pem) in [
            ("server.crt", &certs.server_cert_pem),
            ("server.key", &certs.server_key_pem),
        ] {
            let path = data.join(name);
            std::fs::write(&path, pem).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        std::fs::write(dir.join("ca.pem"), &certs.ca_cert_pem).unwrap();
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = free_port();
            let log_path = dir.join(format!("postgres-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("postgres log file");
            // fd 3 keeps the pipe from us; on EOF the watcher asks `$$`
            // (the server after `exec`) for a fast shutdown, waits for it
            // and removes the cluster.
            let script = r#"exec 3<&0
( read -r _ <&3; kill -INT $$ 2>/dev/null
  while kill -0 $$ 2>/dev/null; do sleep 0.1; done
  rm -rf "$3" ) &
exec "$1" -D "$3/data" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 \
    -c max_connections=300 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c ssl=on </dev/null 3<&-"#;
            let mut child = command(Path::new("sh"), user)
                .arg("-c")
                .arg(script)
                .arg("sh")
                .arg(bin.join("postgres"))
                .arg(port.to_string())
                .arg(&dir)
                .stdin(Stdio::piped())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn postgres via sh: {e}"));
            let lifeline = child.stdin.take().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = log;
                    if last_log.contains("already in use") {
                        break; // another port
                    }
                    panic!("postgres exited during startup ({status}); log:\n{last_log}");
                }
                if log.contains("ready to accept connections") {
                    return PgServer {
                        port,
                        dir,
                        bin,
                        _child: Mutex::new(child),
                        _lifeline: Mutex::new(lifeline),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("postgres did not start on port {port} within 30 s; log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("postgres could not bind a free port after 8 attempts; last log:\n{last_log}");
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The CA certificate (PEM file) the server's TLS certificate is
    /// signed by, for `sslrootcert=`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The password every URL carries.
    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("postgres-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// Runs `sql` with `psql` on the database at `url`; returns what it
    /// printed (unaligned, tuples only: one row a line, `|` between
    /// columns). Panics with psql's message when it fails.
    pub async fn psql(&self, url: &str, sql: &str) -> String {
        let out = tokio::process::Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .output()
            .await
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The URL of a new, empty database of its own.
    pub async fn database(&self) -> String {
        let name = format!("t_{}", hex::encode(rand::random::<[u8; 8]>()));
        self.psql(&self.url("postgres"), &format!("CREATE DATABASE {name}"))
            .await;
        self.url(&name)
    }
}
