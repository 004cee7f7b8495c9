// A poll_mirror job's progress as people read it. While the job runs in
// the server, `GET /api/v0/jobs/{id}` carries live counters (`progress`:
// bytes copied, also inside a layer still being copied, and tags planned
// and copied); the log says which tags were unchanged or failed, and is
// all there is once the job has finished.

import * as api from './api.js';
import { formatBytes, sleep } from './dom.js';

export const FINAL = new Set(['done', 'errored', 'canceled']);

/** What a poll's log lines say so far. */
export function logProgress(lines) {
  const p = { planned: 0, unchanged: 0, copied: 0, failed: 0, bytes: 0, seen: false };
  for (const { data } of lines) {
    let m = /^(\d+) tags to copy, (\d+) unchanged/.exec(data);
    if (m) {
      p.planned += Number(m[1]);
      p.unchanged += Number(m[2]);
      p.seen = true;
      continue;
    }
    m = /^copied (?:new|moved) tag .*, (\d+) bytes\)$/.exec(data);
    if (m) {
      p.copied += 1;
      p.bytes += Number(m[1]);
      continue;
    }
    if (/^failed \S+:\S+ \(/.test(data)) p.failed += 1;
  }
  return p;
}

/**
 * The progress of `job` (its log `lines` so far, possibly none):
 * `{text, value, max, bytes}`; `max` 0 means unknown (an indeterminate
 * bar), `bytes` the bytes copied so far.
 */
export function describeProgress(job, lines = []) {
  const log = logProgress(lines);
  const live = job.progress ?? null;
  const planned = live ? Math.max(live.tagsPlanned, log.planned) : log.planned;
  const copied = live ? Math.max(live.tagsCopied, log.copied) : log.copied;
  const bytes = live ? live.bytesCopied : log.bytes;
  const seen = log.seen || planned > 0;
  const final = FINAL.has(job.status);
  const unchanged = log.unchanged ? ` (${log.unchanged} unchanged)` : '';
  const failed = log.failed ? `, ${log.failed} failed` : '';
  let text = '';
  if (seen && planned === 0) {
    text = `Nothing to copy: no new or moved tags${unchanged}.`;
  } else if (seen) {
    text = `${copied} of ${planned} ${planned === 1 ? 'tag' : 'tags'} copied${failed} · ${formatBytes(bytes)}${unchanged}`;
  } else if (job.status === 'waiting') {
    text = 'Waiting for a worker…';
  } else if (!final) {
    text = bytes > 0 ? `Listing remote tags… · ${formatBytes(bytes)}` : 'Listing remote tags…';
  }
  let value = 0;
  let max = 0;
  if (seen && planned > 0) {
    max = planned;
    value = Math.min(copied + log.failed, planned);
  } else if (final) {
    max = 1;
    value = 1;
  }
  return { text, value, max, bytes, seen };
}

/**
 * Reads job `id` every `intervalMs` until it has finished, calling
 * `onUpdate(job)` with each answer; resolves to the finished job. A
 * network or server failure is retried at the next tick (`onError(e)` is
 * told); a 4xx answer (the job is gone or hidden) rejects.
 */
export async function followJob(id, { signal, intervalMs = 1000, onUpdate, onError } = {}) {
  const path = `jobs/${encodeURIComponent(id)}`;
  for (;;) {
    try {
      const job = await api.get(path, { signal });
      onUpdate?.(job);
      if (FINAL.has(job.status)) return job;
    } catch (e) {
      // Gone, or not ours to see: no use asking again.
      if (signal?.aborted || (e.status >= 400 && e.status < 500)) throw e;
      onError?.(e);
    }
    await sleep(intervalMs, signal);
  }
}
