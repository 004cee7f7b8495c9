// The client of the `/api/v0` API (and of UCP's `/enzi/v0` for organizations
// and teams): the page does nothing a script with curl could not do.
//
// Credentials are sent as HTTP Basic (a password or an access token), kept
// in sessionStorage for this tab only and dropped on logout. Requests use
// `credentials: 'omit'`: the browser never attaches cached HTTP
// credentials (and the API's 401s carry no `WWW-Authenticate`, so it never
// opens its own login prompt); the page handles 401 itself. Bodies are
// sent as `application/json`, which the API requires of every write.

const STORAGE_KEY = 'regmirror.session';
const API_BASE = 'api/v0';
/** UCP's eNZi account API (organizations, members, teams), beside `/api/v0`. */
export const ENZI = 'enzi/v0';

/** An error answer of the API (`{"errors":[{code, message, detail}]}`), or a network failure. */
export class ApiError extends Error {
  constructor({ status = 0, code = 'NETWORK', message, detail = {} }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail ?? {};
  }

  /** The input field the error names (`detail.field`), if any. */
  get field() {
    return typeof this.detail.field === 'string' ? this.detail.field : null;
  }

  /** The reason without the `field: ` prefix when a field is named. */
  get reason() {
    return typeof this.detail.reason === 'string' && this.detail.reason ? this.detail.reason : this.message;
  }
}

let session = null;

function encodeBasic(username, secret) {
  const bytes = new TextEncoder().encode(`${username}:${secret}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** The signed-in user `{username, authorization, account}`, or null. */
export function currentSession() {
  return session;
}

/** Restores the session of this tab, if there is one (not yet verified). */
export function restoreSession() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw) {
      const { username, authorization } = JSON.parse(raw);
      if (typeof username === 'string' && typeof authorization === 'string') {
        session = { username, authorization, account: null };
      }
    }
  } catch {
    session = null;
  }
  return session;
}

/**
 * Checks `username` and `secret` (password or access token) against the
 * API and keeps them for this tab. Resolves to the account
 * (`GET /api/v0/accounts/{name}`: `isAdmin`, `fullName`, ...).
 */
export async function signIn(username, secret) {
  const authorization = encodeBasic(username, secret);
  const account = await request('GET', `accounts/${encodeURIComponent(username)}`, { authorization });
  session = { username, authorization, account };
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ username, authorization }));
  } catch {
    // Storage may be disabled; the session then lasts until a reload.
  }
  return account;
}

/** Re-reads the account of a restored session; throws when the credentials stopped working. */
export async function verifySession() {
  const account = await get(`accounts/${encodeURIComponent(session.username)}`, {
    authorization: session.authorization,
  });
  session.account = account;
  return account;
}

/** Forgets the credentials. */
export function signOut() {
  session = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}

function errorFrom(status, statusText, body) {
  const first = body && Array.isArray(body.errors) ? body.errors[0] : null;
  if (first && typeof first.message === 'string') {
    return new ApiError({ status, code: String(first.code ?? 'ERROR'), message: first.message, detail: first.detail });
  }
  return new ApiError({ status, code: `HTTP_${status}`, message: `The server answered ${status} ${statusText}`.trim() });
}

/**
 * Sends one request to `/api/v0/<path>` (`/<base>/<path>` with `base`) and
 * resolves to the Response once it is known to be a success; rejects with
 * an ApiError otherwise. `query`
 * values that are undefined or empty are left out. A 401 on a signed-in
 * session fires `regmirror:unauthenticated` on `window`, so the app can
 * ask for credentials again.
 */
async function open(method, path, { query, body, signal, authorization, base = API_BASE } = {}) {
  const url = new URL(`${base}/${path}`, document.baseURI);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = { Accept: 'application/json' };
  const auth = authorization ?? session?.authorization;
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError({ message: 'Cannot reach the server. Check your connection and try again.' });
  }
  if (!resp.ok) {
    const err = errorFrom(resp.status, resp.statusText, await readJson(resp));
    if (resp.status === 401 && !authorization && session) {
      window.dispatchEvent(new CustomEvent('regmirror:unauthenticated', { detail: err }));
    }
    throw err;
  }
  return resp;
}

async function readJson(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Sends one request; resolves to `{data, headers, status}` (see `open`). */
export async function send(method, path, options) {
  const resp = await open(method, path, options);
  return { data: await readJson(resp), headers: resp.headers, status: resp.status };
}

/**
 * Reads a newline-delimited JSON response (a followed job log) and calls
 * `onItems(batch)` as items arrive; resolves when the server ends it. A
 * plain JSON array (a server that does not stream) is delivered at once.
 */
export async function stream(path, { query, signal } = {}, onItems) {
  const resp = await open('GET', path, { query, signal });
  if (!(resp.headers.get('content-type') ?? '').includes('ndjson') || !resp.body) {
    const data = await readJson(resp);
    if (Array.isArray(data) && data.length) onItems(data);
    return;
  }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const complete = pending.split('\n');
    pending = complete.pop();
    const batch = complete.filter((l) => l.trim()).map((l) => JSON.parse(l));
    if (batch.length) onItems(batch);
  }
  if (pending.trim()) onItems([JSON.parse(pending)]);
}

/** The request's result, or an ApiError. */
export async function request(method, path, options) {
  return (await send(method, path, options)).data;
}

/** The most pages `getAll` follows (at 1000 items each). */
const MAX_PAGES = 1000;

/**
 * Every item of a paged list (a JSON array, such as a repository's tags),
 * following `X-Next-Page-Start` at the largest page size.
 */
export async function getAll(path, { signal } = {}) {
  const items = [];
  let pageStart;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { data, headers } = await send('GET', path, { query: { pageSize: 1000, pageStart }, signal });
    items.push(...(Array.isArray(data) ? data : []));
    const next = headers.get('x-next-page-start');
    if (!next || next === pageStart) break;
    pageStart = next;
  }
  return items;
}

/**
 * Every item of a paged list wrapped in an object under `key`: an eNZi
 * list (`{"<key>": [...], "nextPageStart": "..."}`, with `base: ENZI`) or
 * an `/api/v0` one (`X-Next-Page-Start`), such as `teamAccessList`.
 */
export async function getAllIn(path, key, { signal, base = API_BASE, query = {} } = {}) {
  const enzi = base === ENZI;
  const items = [];
  let start;
  for (let page = 0; page < MAX_PAGES; page++) {
    const paging = enzi ? { limit: 1000, start } : { pageSize: 1000, pageStart: start };
    const { data, headers } = await send('GET', path, { query: { ...query, ...paging }, signal, base });
    items.push(...(Array.isArray(data?.[key]) ? data[key] : []));
    const next = enzi ? data?.nextPageStart : headers.get('x-next-page-start');
    if (!next || next === start) break;
    start = next;
  }
  return items;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options) => request('POST', path, { ...options, body });
export const put = (path, body, options) => request('PUT', path, { ...options, body });
export const del = (path, options) => request('DELETE', path, options);

/** The eNZi API (`/enzi/v0/<path>`): organizations, their members and teams. */
export const enzi = {
  get: (path, options) => request('GET', path, { ...options, base: ENZI }),
  post: (path, body, options) => request('POST', path, { ...options, body, base: ENZI }),
  put: (path, body, options) => request('PUT', path, { ...options, body, base: ENZI }),
  del: (path, options) => request('DELETE', path, { ...options, base: ENZI }),
  all: (path, key, options) => getAllIn(path, key, { ...options, base: ENZI }),
};

/** `accounts/{name}` of the eNZi API, the name encoded. */
export function orgPath(org) {
  return `accounts/${encodeURIComponent(org)}`;
}

/** `namespace/name` as two encoded path segments. */
export function repoPath(namespace, name) {
  return `repositories/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}
