//! The `mirror-server` binary as an operator runs it: flags, the one-time
//! admin password on stdout, logs on stderr without secrets, graceful
//! SIGTERM, and state that survives a restart.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Running {
    child: Child,
    addr: String,
    /// The password line printed on stdout, if any.
    password: Option<String>,
    stderr: mpsc::Receiver<String>,
}

/// Starts the binary on a free port and waits for its "listening" log line.
fn start(data_dir: &std::path::Path, admin_password: Option<&str>) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("MIRROR_") {
            cmd.env_remove(k);
        }
    }
    if let Some(p) = admin_password {
        cmd.env("MIRROR_ADMIN_PASSWORD", p);
    }
    let mut child = cmd.spawn().expect("spawn mirror-server");
    let (tx, stderr) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    let mut log = String::new();
    while addr.is_none() {
        let line = stderr
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no 'listening' line; log so far:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("mirror-server listening") {
            let at = line.find("addr=").expect("addr field") + "addr=".len();
            addr = Some(line[at..].split_whitespace().next().unwrap().to_string());
        }
    }
    // The password line, if any, is printed before the server listens.
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let (otx, orx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = stdout.read(&mut buf) {
            let _ = otx.send(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    });
    if let Ok(s) = orx.recv_timeout(Duration::from_millis(500)) {
        out = s;
    }
    let password = out.lines().find(|l| l.contains("with password")).map(|l| {
        l.split("with password ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    });
    Running {
        child,
        addr: addr.unwrap(),
        password,
        stderr,
    }
}

/// SIGTERM, then the exit status and the rest of the log.
fn terminate(mut r: Running) -> (std::process::ExitStatus, String) {
    let status = Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log: Vec<String> = r.stderr.try_iter().collect();
    (exit, log.join("\n"))
}

async fn status(addr: &str, user: &str, password: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/v2/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn binary_first_start_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // First start without MIRROR_ADMIN_PASSWORD: a random password, once.
    let first = start(&data, None);
    let password = first
        .password
        .clone()
        .expect("password printed on first start");
    assert!(password.len() >= 16, "{password}");
    assert_eq!(status(&first.addr, "admin", &password).await, 200);
    assert_eq!(status(&first.addr, "admin", "wrong-password").await, 401);
    let (exit, log) = terminate(first);
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("mirror-server stopped"), "{log}");
    assert!(!log.contains(&password), "the password leaked into the log");

    // Owner-only state.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.clone()), 0o700);
    assert_eq!(mode(data.join("server.db")), 0o600);

    // Restart: the account persists; MIRROR_ADMIN_PASSWORD does not reset it.
    let second = start(&data, Some("another-password"));
    assert_eq!(second.password, None);
    assert_eq!(status(&second.addr, "admin", &password).await, 200);
    assert_eq!(status(&second.addr, "admin", "another-password").await, 401);
    let (exit, log) = terminate(second);
    assert!(exit.success(), "{exit:?}\n{log}");
}
