// A small upstream registry whose one image takes as long to copy as a test
// needs: `slow/big:v1` (linux/arm64/v8) has a big layer that is sent in
// small chunks with a pause between them until `finish()` is called; then
// the rest goes at once. It speaks just enough of the Distribution API for
// a pull mirror: `/v2/`, the tag list, manifests (GET and HEAD) and blobs.
// Anonymous, read-only (an upload is refused, so Connect reports "Write:
// no").

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const sha256 = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;

/**
 * Starts the registry on a free loopback port. `layerSize` bytes are sent
 * `chunk` bytes every `delayMs` until `finish()`.
 */
export async function startSlowRegistry({ layerSize = 16 * 1024 * 1024, chunk = 64 * 1024, delayMs = 100 } = {}) {
  const layer = Buffer.alloc(layerSize);
  for (let i = 0; i < layerSize; i++) layer[i] = (i * 7919) % 251;
  const config = Buffer.from(JSON.stringify({
    architecture: 'arm64',
    variant: 'v8',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha256(layer) }],
  }));
  const blobs = new Map([[sha256(config), config], [sha256(layer), layer]]);
  let finished = false;
  const wakers = new Set();

  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Length': body.length, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const json = (status, value) => send(status, Buffer.from(JSON.stringify(value)), { 'Content-Type': 'application/json' });
    if (path === '/v2/' || path === '/v2') return json(200, {});
    if (path === '/v2/slow/big/tags/list') return json(200, { name: 'slow/big', tags: ['v1'] });
    if (path.startsWith('/v2/slow/big/manifests/')) {
      const ref = decodeURIComponent(path.slice('/v2/slow/big/manifests/'.length));
      if (ref !== 'v1' && ref !== sha256(manifest)) return json(404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      return send(200, manifest, { 'Content-Type': MANIFEST, 'Docker-Content-Digest': sha256(manifest) });
    }
    const blob = path.startsWith('/v2/slow/big/blobs/') ? blobs.get(decodeURIComponent(path.slice('/v2/slow/big/blobs/'.length))) : null;
    if (!blob) return json(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    if (blob !== layer || req.method === 'HEAD') return send(200, blob, { 'Content-Type': 'application/octet-stream' });
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': layer.length });
    let at = 0;
    while (at < layer.length && !res.destroyed) {
      if (finished) {
        res.write(layer.subarray(at));
        at = layer.length;
        break;
      }
      res.write(layer.subarray(at, at + chunk));
      at += chunk;
      await new Promise((resolve) => {
        const timer = setTimeout(done, delayMs);
        function done() {
          clearTimeout(timer);
          wakers.delete(done);
          resolve();
        }
        wakers.add(done);
      });
    }
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    digest: sha256(manifest),
    /** Config plus layer: what the Tags tab shows as the size. */
    imageSize: config.length + layer.length,
    /** Sends the rest of the layer at once (and all of it from now on). */
    finish() {
      finished = true;
      for (const wake of [...wakers]) wake();
    },
    async stop() {
      this.finish();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
