// A real upstream registry for the browser tests: Debian's
// `docker-registry serve` (distribution 2.8) on a free loopback port, with
// filesystem storage in a temp dir, optionally behind htpasswd (Basic), and
// a pusher that uploads small real images over the Distribution HTTP API.

import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { freePort, startProcess, waitFor } from './procs.mjs';

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

const sha256 = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;

/**
 * Starts a registry. `auth`: `{user, password}` for htpasswd (bcrypt via
 * `htpasswd -Bbn`), or undefined for an open registry.
 */
export async function startRegistry({ auth } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-web-registry-'));
  mkdirSync(join(dir, 'storage'));
  const nonce = randomBytes(8).toString('hex');
  let authYaml = '';
  if (auth) {
    const line = execFileSync('htpasswd', ['-Bbn', auth.user, auth.password]);
    writeFileSync(join(dir, 'htpasswd'), line);
    authYaml = `auth:\n  htpasswd:\n    realm: regmirror-web-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  // distribution lets REGISTRY_* variables override the config: drop them.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));

  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    writeFileSync(config, `version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'storage')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: ${nonce}-secret
  headers:
    X-Regmirror-Instance: ["${nonce}"]
${authYaml}`);
    const logPath = join(dir, `registry-${port}.log`);
    const proc = startProcess(['docker-registry', 'serve', config], { logPath, env });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (proc.exited) throw new Error(`exited: ${proc.log()}`);
        const r = await fetch(`${url}/v2/`).catch(() => null);
        return r && r.headers.get('x-regmirror-instance') === nonce && (r.status === 200 || r.status === 401);
      }, { timeoutMs: 10000, what: `docker-registry on ${url}` });
    } catch (e) {
      await proc.stop();
      if (proc.log().includes('address already in use')) continue;
      throw e;
    }
    return new Registry({ dir, url, port, auth, proc });
  }
  throw new Error('docker-registry could not bind a free port after 8 attempts');
}

class Registry {
  constructor({ dir, url, port, auth, proc }) {
    Object.assign(this, { dir, url, port, auth, proc });
  }

  /** `127.0.0.1:PORT`. */
  get hostPort() { return `127.0.0.1:${this.port}`; }

  async stop() {
    await this.proc.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #fetch(path, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.auth) {
      headers.Authorization = `Basic ${Buffer.from(`${this.auth.user}:${this.auth.password}`).toString('base64')}`;
    }
    const url = path.startsWith('http') ? path : `${this.url}${path}`;
    return fetch(url, { ...init, headers });
  }

  /** Uploads `bytes` as a blob of `repo` (monolithic POST + PUT). */
  async pushBlob(repo, bytes) {
    const digest = sha256(bytes);
    const start = await this.#fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`blob upload start: ${start.status} ${await start.text()}`);
    const location = new URL(start.headers.get('location'), this.url);
    location.searchParams.set('digest', digest);
    const put = await this.#fetch(location.toString(), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
    return { digest, size: bytes.length };
  }

  /**
   * Pushes a small real image (one gzipped tar layer holding `hello.txt`
   * with `content`, a config with the layer's diff ID, a Docker schema 2
   * manifest) as `repo:tag`. Returns the manifest digest the registry
   * reports in `Docker-Content-Digest`, the manifest's size and the
   * image's (config plus layer).
   */
  async pushImage(repo, tag, content = `hello from ${repo}:${tag}\n`) {
    const tar = tarball({ 'hello.txt': content });
    const layer = gzipSync(tar, { level: 9 });
    const layerDesc = await this.pushBlob(repo, layer);
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      history: [{ created_by: 'regmirror web test' }],
    }));
    const configDesc = await this.pushBlob(repo, config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: configDesc.size, digest: configDesc.digest },
      layers: [{ mediaType: DOCKER_LAYER, size: layerDesc.size, digest: layerDesc.digest }],
    }));
    const put = await this.#fetch(`/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'Content-Type': DOCKER_MANIFEST },
      body: manifest,
    });
    if (put.status !== 201) throw new Error(`manifest put: ${put.status} ${await put.text()}`);
    const digest = put.headers.get('docker-content-digest');
    if (digest !== sha256(manifest)) throw new Error(`registry digest ${digest} != ${sha256(manifest)}`);
    return { digest, size: manifest.length, imageSize: configDesc.size + layerDesc.size };
  }

  /** `Docker-Content-Digest` of `repo:tag`, from a HEAD. */
  async digestOf(repo, tag) {
    const r = await this.#fetch(`/v2/${repo}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { Accept: DOCKER_MANIFEST },
    });
    if (r.status !== 200) throw new Error(`HEAD ${repo}:${tag}: ${r.status}`);
    return r.headers.get('docker-content-digest');
  }
}

/** A ustar archive of regular files `{name: content}`. */
export function tarball(files) {
  const blocks = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    const header = Buffer.alloc(512);
    const field = (offset, length, value) => header.write(value, offset, length, 'ascii');
    const octal = (offset, length, n) => field(offset, length, n.toString(8).padStart(length - 1, '0') + '\0');
    field(0, 100, name);
    octal(100, 8, 0o644); // mode
    octal(108, 8, 0); // uid
    octal(116, 8, 0); // gid
    octal(124, 12, data.length);
    octal(136, 12, 1700000000); // mtime
    field(148, 8, '        '); // checksum placeholder
    field(156, 1, '0'); // regular file
    field(257, 6, 'ustar\0');
    field(263, 2, '00');
    let sum = 0;
    for (const b of header) sum += b;
    field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
