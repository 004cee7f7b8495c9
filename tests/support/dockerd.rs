//! A Docker daemon (Debian's `docker.io`, `dockerd`) for tests where the
//! `docker` command is the client, configured as a node would be to use a
//! registry as its Docker Hub mirror (`registry-mirrors`, with the mirror
//! listed in `insecure-registries` because it speaks plain HTTP on
//! loopback).
//!
//! The daemon runs with the `vfs` storage driver, no bridge and no iptables
//! rules (it only pulls; nothing is run), its own data and exec roots in a
//! temporary directory, and the shared containerd of this test binary
//! ([`Containerd::shared`]) instead of one of its own, so killing it leaves
//! no process behind. Process hygiene: `process::spawn_watched` (the daemon
//! dies with its [`Dockerd`] or the test binary). `scripts/test` installs
//! Debian's `docker.io`.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output};
use std::time::{Duration, Instant};

use super::containerd::Containerd;
use super::process::spawn_watched;

/// A running Docker daemon; stopped when dropped.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
    _lifeline: ChildStdin,
}

impl Dockerd {
    /// Starts a daemon whose Docker Hub mirror is `mirror`
    /// (`http://127.0.0.1:PORT`).
    pub fn start_with_mirror(mirror: &str) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("regmirror-dockerd-")
            .tempdir()
            .expect("dockerd tempdir");
        let root = dir.path();
        let host_port = mirror
            .split_once("://")
            .map_or(mirror, |(_, rest)| rest)
            .trim_end_matches('/');
        let config = root.join("daemon.json");
        std::fs::write(
            &config,
            serde_json::json!({
                "registry-mirrors": [mirror],
                "insecure-registries": [host_port],
            })
            .to_string(),
        )
        .unwrap();
        let log = root.join("dockerd.log");
        let body = r#"exec dockerd --config-file "$1" --data-root "$2/data" --exec-root "$2/exec" \
            --host "unix://$2/docker.sock" --pidfile "$2/docker.pid" --containerd "$3" \
            --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
            </dev/null 3<&-"#;
        let mut sh = Command::new("sh");
        // Debian puts dockerd in /usr/sbin, which a test's PATH may lack.
        let path = std::env::var("PATH").unwrap_or_default();
        sh.env("PATH", format!("{path}:/usr/sbin:/sbin"));
        let (mut child, lifeline) = spawn_watched(
            sh,
            body,
            [
                config.display().to_string(),
                root.display().to_string(),
                Containerd::shared().socket().display().to_string(),
            ],
            &log,
        );
        let socket = root.join("docker.sock");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "dockerd exited during startup ({status}); install Debian's docker.io \
                     (scripts/test does). Log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let info = Command::new("docker")
                .arg("--host")
                .arg(format!("unix://{}", socket.display()))
                .args(["info", "--format", "{{.ServerVersion}}"])
                .output();
            if info.is_ok_and(|o| o.status.success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Dockerd {
            dir,
            child,
            _lifeline: lifeline,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Runs `docker` with `args` against this daemon (off the async
    /// runtime).
    pub async fn docker(&self, args: &[&str]) -> Output {
        let host = format!("unix://{}", self.socket().display());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new("docker")
                .arg("--host")
                .arg(&host)
                .args(&args)
                .output()
                .expect("run docker")
        })
        .await
        .unwrap()
    }

    /// Runs `docker` with `args` and panics, with the daemon's last log
    /// lines, unless it succeeds; returns its stdout.
    pub async fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args).await;
        assert!(
            out.status.success(),
            "docker {}: {}\n{}\ndockerd: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
