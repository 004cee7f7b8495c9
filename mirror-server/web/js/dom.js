// Building DOM without innerHTML, and formatting values for people.
//
// Every string from the API goes through textContent or an attribute, never
// through HTML parsing, so a repository name or a log line can't inject
// markup (the Content-Security-Policy forbids inline scripts as well).

/**
 * Creates an element. `props`: `class`, `text`, `on<event>` handlers,
 * `dataset`, properties such as `value`, `checked`, `disabled`, `hidden`,
 * and everything else (`aria-*`, `for`, `role`, ...) as attributes.
 * `null`, `undefined` and `false` children are skipped; strings become
 * text nodes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (['value', 'checked', 'disabled', 'hidden', 'selected', 'required', 'readOnly', 'open'].includes(key)) el[key] = value;
    else if (value === true) el.setAttribute(key, '');
    else if (value !== false) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
/** A document-unique id with `prefix`. */
export function uid(prefix = 'id') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];
/** `1536` → `1.5 KB` (decimal units, as registries report sizes). */
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[i]}`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** "3 minutes ago" / "in 2 hours" for an RFC 3339 time. */
export function relativeTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const seconds = Math.round((t - now) / 1000);
  const steps = [[60, 'second'], [60, 'minute'], [24, 'hour'], [30, 'day'], [12, 'month'], [Infinity, 'year']];
  let v = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(v) < size) return relative.format(unit === 'second' && Math.abs(v) < 10 ? 0 : v, unit);
    v = Math.round(v / size);
  }
  return '';
}

/**
 * A `<time>` showing a relative time, with the exact local time as its
 * tooltip; `fallback` when `iso` is empty (the API's "never").
 */
export function timeEl(iso, fallback = 'never') {
  if (!iso || Number.isNaN(Date.parse(iso))) return h('span', { class: 'muted', text: fallback });
  return h('time', { datetime: iso, title: absolute.format(new Date(iso)), text: relativeTime(iso) });
}

/** `sha256:0123456789ab…` → the algorithm and the first 12 hex digits. */
export function shortDigest(digest) {
  if (typeof digest !== 'string') return '';
  const [alg, hex] = digest.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}` : digest;
}

/** A status pill; `kind` picks the colour (`ok`, `bad`, `busy`, `idle`, `warn`). */
export function badge(text, kind = 'idle', label) {
  return h('span', { class: `badge badge-${kind}`, 'aria-label': label }, text);
}

/** The badge colour of a job status or a policy's last status code. */
export function statusKind(status) {
  switch (String(status).toLowerCase()) {
    case 'done':
    case 'success':
      return 'ok';
    case 'errored':
    case 'error':
    case 'failed':
      return 'bad';
    case 'running':
      return 'busy';
    case 'partial':
    case 'canceled':
      return 'warn';
    default:
      return 'idle';
  }
}

/** Resolves after `ms`, or rejects when `signal` aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/**
 * A remote repository as people read it: `registry.example.com/team/app`,
 * or `Docker Hub: library/alpine`.
 */
export function remoteName(host, repository) {
  let shown = String(host ?? '');
  try {
    const url = new URL(shown);
    if (['index.docker.io', 'registry-1.docker.io', 'docker.io', 'registry.hub.docker.com'].includes(url.hostname)) {
      return `Docker Hub: ${repository}`;
    }
    shown = url.host + url.pathname.replace(/\/$/, '');
  } catch {
    // not a URL: show it as given
  }
  return `${shown}/${repository}`;
}
