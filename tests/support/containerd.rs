//! containerd, started once per test binary (`Containerd::shared`), for
//! tests where `ctr` is the client: its own root, state and socket in a
//! temporary directory, the CRI plugin off. `ctr` pulls with a hosts
//! directory naming the registry to use as a mirror, as a node's
//! `/etc/containerd/certs.d` does.
//!
//! Process hygiene: `process::spawn_watched` (the daemon dies with the
//! test binary). `scripts/test` installs Debian's `containerd`.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::process::spawn_watched;

/// A running containerd.
pub struct Containerd {
    dir: tempfile::TempDir,
    /// Kept for the life of the process.
    _child: Mutex<Child>,
    _lifeline: Mutex<ChildStdin>,
}

static SHARED: LazyLock<Containerd> = LazyLock::new(Containerd::start);

impl Containerd {
    /// The daemon of this test binary, started at the first call.
    pub fn shared() -> &'static Containerd {
        &SHARED
    }

    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("regmirror-containerd-")
            .tempdir()
            .expect("containerd tempdir");
        let root = dir.path();
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{0}/containerd.sock\"\n",
                root.display()
            ),
        )
        .unwrap();
        let log = root.join("containerd.log");
        let body = r#"exec containerd --config "$1" </dev/null 3<&-"#;
        let (mut child, lifeline) = spawn_watched(
            Command::new("sh"),
            body,
            [config.display().to_string()],
            &log,
        );
        let socket = root.join("containerd.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "containerd exited during startup ({status}); install Debian's containerd \
                     (scripts/test does). Log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let version = Command::new("ctr")
                .arg("--address")
                .arg(&socket)
                .arg("version")
                .output();
            if version.is_ok_and(|o| o.status.success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 30 s; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Containerd {
            dir,
            _child: Mutex::new(child),
            _lifeline: Mutex::new(lifeline),
        }
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr` with `args` against this daemon (off the async runtime),
    /// in a namespace of the caller's (so tests do not see each other's
    /// images).
    pub async fn ctr(&self, namespace: &str, args: Vec<String>) -> std::process::Output {
        let socket = self.socket();
        let namespace = namespace.to_string();
        tokio::task::spawn_blocking(move || {
            Command::new("ctr")
                .arg("--address")
                .arg(&socket)
                .arg("--namespace")
                .arg(&namespace)
                .args(&args)
                .output()
                .expect("run ctr")
        })
        .await
        .unwrap()
    }
}

/// Writes a hosts directory (`<dir>/<registry>/hosts.toml`) that sends
/// pulls of `registry` to `mirror` (`http://127.0.0.1:PORT`) first.
pub fn mirror_hosts(dir: &Path, registry: &str, mirror: &str) {
    let d = dir.join(registry);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("hosts.toml"),
        format!(
            "server = \"https://{registry}\"\n\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
}
