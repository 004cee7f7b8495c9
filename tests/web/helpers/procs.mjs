// Child processes that cannot outlive the test run, and free loopback ports.
//
// Each child is started through a tiny `sh` wrapper: a watcher blocks reading
// a pipe from this Node process and then `exec`s the real program (so the
// child's pid *is* the program). When Node goes away for any reason, even
// SIGKILL, the pipe closes and the watcher kills the program.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, closeSync, readFileSync } from 'node:fs';

const WRAPPER = `exec 3<&0
( read -r _ <&3; kill -9 $$ 2>/dev/null ) &
exec "$@" </dev/null 3<&-`;

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `argv` with its output in `logPath`. Returns `{child, stop(), log()}`.
 * `env` replaces the environment entirely when given.
 */
export function startProcess(argv, { logPath, env, cwd } = {}) {
  const fd = openSync(logPath, 'a');
  const child = spawn('sh', ['-c', WRAPPER, 'sh', ...argv], {
    stdio: ['pipe', fd, fd],
    env: env ?? process.env,
    cwd,
  });
  closeSync(fd);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  return {
    child,
    get exited() { return exited; },
    log: () => { try { return readFileSync(logPath, 'utf8'); } catch { return ''; } },
    async stop() {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
      child.stdin.destroy();
    },
  };
}

/** Polls `check()` until it returns truthy or `timeoutMs` passes. */
export async function waitFor(check, { timeoutMs = 15000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
