//! Servers the tests start that cannot outlive the test binary: a `sh`
//! wrapper keeps a watcher reading a pipe from this process and then
//! `exec`s the server (so the child's pid *is* the server). When this
//! process goes away for any reason (SIGKILL, or a `static` server never
//! dropped), the pipe closes and the watcher kills the server.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Runs `body` with `sh` behind the watcher, `args` as `$1`, `$2`, ...,
/// stdout and stderr appended to `log`. `body` must end by `exec`ing the
/// server with `</dev/null 3<&-` (fd 3 is the pipe). `sh` is the shell's
/// command, for callers that set its user or environment. Returns the
/// child and the pipe's write end: the server lives as long as it does.
pub fn spawn_watched<I, S>(mut sh: Command, body: &str, args: I, log: &Path) -> (Child, ChildStdin)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    // fd 3 keeps the pipe from us; the background watcher blocks reading it
    // (background jobs get /dev/null as stdin, hence the dup) and kills
    // `$$`, the server after `exec`, on EOF.
    let script = format!("exec 3<&0\n( read -r _ <&3; kill -9 $$ 2>/dev/null ) &\n{body}");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
    let mut child = sh
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn sh: {e}"));
    let lifeline = child.stdin.take().unwrap();
    (child, lifeline)
}
