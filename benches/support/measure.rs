//! Running a command as a benchmark measures it: wall time, peak RSS
//! (`VmHWM`, sampled every 10 ms), CPU time and stdout. Shared by the
//! benches that run regmirror in a child process (`e2e.rs`,
//! `scale_out.rs`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wall time and peak RSS of a command.
pub struct Run {
    pub secs: f64,
    pub peak_rss_mib: f64,
    /// CPU time (user + system) the command used.
    pub cpu_secs: f64,
    pub stdout: String,
}

/// User + system CPU seconds of all waited-for children so far.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// [`measure_limited`] without a limit.
pub fn measure(cmd: &mut Command) -> Run {
    measure_limited(cmd, Duration::MAX).expect("no time limit")
}

/// [`measure`], killing the command after `limit` (then `None`).
pub fn measure_limited(cmd: &mut Command, limit: Duration) -> Option<Run> {
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

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
