// A real `mirror-server` (the debug build) on a free loopback port with its
// data in a temp dir, plus a small client of its `/api/v0` API for setting
// up what the browser tests do not click through.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, startProcess, waitFor } from './procs.mjs';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The binary: `$MIRROR_SERVER_BIN`, else `target/debug/mirror-server` (honouring `$CARGO_TARGET_DIR`). */
export function serverBinary() {
  if (process.env.MIRROR_SERVER_BIN) return process.env.MIRROR_SERVER_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : join(REPO_ROOT, 'target');
  return join(target, 'debug', 'mirror-server');
}

export const ADMIN = { user: 'admin', password: 'admin-password-1' };

export async function startServer() {
  const bin = serverBinary();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build -p mirror-server`);
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-web-server-'));
  const env = { ...process.env, MIRROR_ADMIN_PASSWORD: ADMIN.password, RUST_LOG: process.env.RUST_LOG ?? 'info' };
  for (const k of Object.keys(env)) {
    if (k.startsWith('MIRROR_') && k !== 'MIRROR_ADMIN_PASSWORD') delete env[k];
  }
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePort();
    const logPath = join(dir, `server-${port}.log`);
    const proc = startProcess([bin, '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data')], { logPath, env });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (proc.exited) throw new Error(`mirror-server exited: ${proc.log()}`);
        const r = await fetch(`${url}/api/v0/repositories`).catch(() => null);
        return r && r.status === 401 && (await r.json()).errors?.[0]?.code === 'NOT_AUTHENTICATED';
      }, { timeoutMs: 20000, what: `mirror-server on ${url}` });
    } catch (e) {
      await proc.stop();
      if (/address already in use|Address in use/i.test(proc.log())) continue;
      throw e;
    }
    return new Server({ dir, url, proc });
  }
  throw new Error('mirror-server could not bind a free port after 8 attempts');
}

class Server {
  constructor({ dir, url, proc }) {
    Object.assign(this, { dir, url, proc });
  }

  log() { return this.proc.log(); }

  async stop() {
    await this.proc.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Calls `/api/v0/<path>` as `auth` (default: admin); resolves to `{status, body}`. */
  async api(method, path, body, auth = ADMIN) {
    return this.call('api/v0', method, path, body, auth);
  }

  /** Calls UCP's `/enzi/v0/<path>` (organizations, teams) like `api`. */
  async enzi(method, path, body, auth = ADMIN) {
    return this.call('enzi/v0', method, path, body, auth);
  }

  /** Like `enzi`, but throws unless the status is 2xx. */
  async enziOk(method, path, body, auth) {
    const r = await this.enzi(method, path, body, auth);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} /enzi/v0/${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async call(base, method, path, body, auth = ADMIN) {
    const r = await fetch(`${this.url}/${base}/${path}`, {
      method,
      headers: {
        Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: r.status, body: json };
  }

  /** Like `api`, but throws unless the status is 2xx. */
  async ok(method, path, body, auth) {
    const r = await this.api(method, path, body, auth);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}
