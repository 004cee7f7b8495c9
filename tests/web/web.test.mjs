// End-to-end tests of mirror-server's web interface: headless Chromium
// (Debian's) against a real mirror-server and a real upstream registry
// (Debian's docker-registry, htpasswd auth), all on loopback.
//
// The tests run in order and build on each other, like a user's session:
// log in, create a repository, connect to the upstream (first with a wrong
// password), Save & Apply, follow the job, check the mirrored tags against
// the upstream's digests, manage the policy and jobs, then look at it all
// as a user without admin rights, as a repository administrator who
// mirrors a big image from a slow upstream (watching the bytes move), and
// at phone width; then an organization with members and a team, granted
// access to a repository of its namespace, as its administrators and as a
// member see it.
//
// REGMIRROR_SCREENSHOTS=DIR saves the main screens as PNG files in DIR
// (scripts/test-web --screenshots writes them to docs/).

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, watchProblems } from './helpers/browser.mjs';
import { startRegistry } from './helpers/registry.mjs';
import { waitFor } from './helpers/procs.mjs';
import { ADMIN, startServer } from './helpers/server.mjs';
import { startSlowRegistry } from './helpers/slow-registry.mjs';

const UPSTREAM_USER = { user: 'puller', password: 'pull-secret-1' };
const READER = { user: 'reader', password: 'reader-password-1' };
const ORG = 'acme';
const TEAM = 'devs';
const ORG_MEMBER = { user: 'dana', password: 'dana-password-1' };
const TEAM_MEMBER = { user: 'erin', password: 'erin-password-1' };
const TAGS = ['1.0', '1.1', 'latest'];
// Tags of the upstream's team/ruled, for the tag rules tests.
const RULED_TAGS = ['1.19', '1.20', '1.20.3', '1.21-alpine', 'latest', '2.0'];
const SHOTS = process.env.REGMIRROR_SCREENSHOTS ? resolve(process.env.REGMIRROR_SCREENSHOTS) : null;

let upstream;
let slow;
let server;
let browser;
let page;
let problems;
const upstreamDigests = {};
const upstreamSizes = {};

/** Requests of `p` to `/api/v0` whose path (and query) matches `pattern`, from now on. */
function recordApiRequests(p, pattern) {
  const seen = [];
  const listener = (r) => {
    const url = new URL(r.url());
    if (url.pathname.includes('/api/v0/') && pattern.test(url.pathname + url.search)) seen.push(url.pathname + url.search);
  };
  p.on('request', listener);
  return { seen, stop: () => p.off('request', listener) };
}

/** The number in `selector`'s `data-bytes-copied`, once it is above `above`. */
async function bytesAbove(p, selector, above) {
  const handle = await p.waitForFunction(({ sel, min }) => {
    const n = Number(document.querySelector(sel)?.dataset.bytesCopied ?? 'NaN');
    return n > min ? n : null;
  }, { sel: selector, min: above }, { timeout: 20000 });
  return handle.jsonValue();
}

async function screenshot(name, { target = page, fullPage = false } = {}) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  // Relative times ("3 seconds ago") make every run differ a little; the
  // pictures are for people, not compared. No focus ring, top of the page.
  await target.evaluate(() => {
    document.activeElement?.blur();
    window.scrollTo(0, 0);
  });
  await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

async function logIn(p, { user, password }) {
  await p.getByLabel('Username').fill(user);
  await p.getByLabel('Password or access token').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
}

/** Fills the new policy form with the upstream's `team/<name>` and its credentials. */
async function fillUpstream(form, name) {
  await form.getByLabel('Registry URL').fill(upstream.url);
  await form.getByLabel('Username').fill(UPSTREAM_USER.user);
  await form.getByLabel('Password or access token').fill(UPSTREAM_USER.password);
  await form.getByLabel('Namespace').fill('team');
  await form.getByLabel('Repository name').fill(name);
}

describe('web interface', { concurrency: false }, () => {
  before(async () => {
    upstream = await startRegistry({ auth: UPSTREAM_USER });
    for (const tag of TAGS) {
      const { digest, imageSize } = await upstream.pushImage('team/hello', tag, `hello ${tag}\n`);
      upstreamDigests[tag] = digest;
      upstreamSizes[tag] = imageSize;
    }
    slow = await startSlowRegistry();
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    problems = watchProblems(page);
  });

  after(async () => {
    await browser?.close();
    if (server && process.env.REGMIRROR_KEEP_LOGS) console.log(server.log());
    await server?.stop();
    await upstream?.stop();
    await slow?.stop();
  });

  test('serves the page and its assets with a strict Content-Security-Policy', async () => {
    const index = await fetch(`${server.url}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const csp = index.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    const html = await index.text();
    const app = /src="(assets\/[0-9a-f]+\/js\/app\.js)"/.exec(html);
    assert.ok(app, 'the page loads a versioned app.js');
    const js = await fetch(`${server.url}/${app[1]}`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(js.headers.get('cache-control'), /immutable/);
    const again = await fetch(`${server.url}/`, { headers: { 'If-None-Match': index.headers.get('etag') } });
    assert.equal(again.status, 304);
    const missing = await fetch(`${server.url}/${app[1].replace('app.js', 'nope.js')}`);
    assert.equal(missing.status, 404);
  });

  test('a wrong password is refused, then logging in with the keyboard works', async () => {
    await page.goto(`${server.url}/`);
    await screenshot('web-login');
    await page.getByLabel('Username').fill(ADMIN.user);
    await page.getByLabel('Password or access token').fill('not-the-password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'wrong' }).waitFor();
    assert.equal(await page.getByLabel('Username').inputValue(), ADMIN.user);

    await page.getByLabel('Password or access token').fill(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).waitFor();
    assert.match(page.url(), /#\/repositories$/);

    // The session survives a reload in the same tab.
    await page.reload();
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
  });

  test('a refused login never opens the browser\'s own login dialog', async () => {
    // A 401 with `WWW-Authenticate: Basic` makes browsers prompt for
    // credentials (and then send them with any request, also one another
    // site makes). `/api/v0` sends no challenge, `/v2` a Bearer one (DTR's,
    // for docker), which browsers do not prompt for, and the page's
    // requests use `credentials: 'omit'` besides, so Chromium must not
    // even ask. Fetch.authRequired (CDP) fires exactly when it would ask.
    const control = createServer((req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="control"' });
      res.end('control');
    });
    await new Promise((done) => control.listen(0, '127.0.0.1', done));
    const controlUrl = `http://127.0.0.1:${control.address().port}/control`;
    const probe = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(probe);
    const challenged = [];
    cdp.on('Fetch.requestPaused', (e) => cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {}));
    cdp.on('Fetch.authRequired', (e) => {
      challenged.push(e.request.url);
      cdp.send('Fetch.continueWithAuth', { requestId: e.requestId, authChallengeResponse: { response: 'CancelAuth' } }).catch(() => {});
    });
    await cdp.send('Fetch.enable', {
      handleAuthRequests: true,
      patterns: [{ urlPattern: '*/api/v0/*' }, { urlPattern: '*/v2/*' }, { urlPattern: '*/control' }],
    });

    // Control: a Basic challenge is seen...
    await probe.goto(controlUrl);
    assert.equal(challenged.length, 1, 'the control page is challenged');
    control.close();
    await probe.goto(`${server.url}/`);
    // ...`/v2` (a Bearer challenge) and `/api/v0` (none) are not, even
    // when credentials are allowed.
    const wrong = { headers: { Authorization: `Basic ${btoa('admin:wrong')}` } };
    const status = await probe.evaluate(async (init) => (await fetch('v2/', init)).status, wrong);
    assert.equal(status, 401);
    assert.equal(challenged.length, 1, 'a /v2 401 is not a browser challenge');
    const apiStatus = await probe.evaluate(async (init) => (await fetch('api/v0/repositories', init)).status, wrong);
    assert.equal(apiStatus, 401);
    assert.equal(challenged.length, 1, 'an /api/v0 401 is not challenged');

    await probe.getByLabel('Username').fill(ADMIN.user);
    await probe.getByLabel('Password or access token').fill('still-wrong');
    await probe.getByRole('button', { name: 'Log in' }).click();
    await probe.getByRole('alert').filter({ hasText: 'wrong' }).waitFor();
    assert.equal(challenged.length, 1, 'the page\'s login request is not challenged');
    await cdp.detach();
    await probe.close();
  });

  test('creating a repository shows API errors next to the field, then opens it', async () => {
    await page.getByRole('button', { name: 'New repository' }).click();
    const form = page.getByRole('form', { name: 'New repository' });
    await form.getByLabel('Name', { exact: true }).fill('Not Valid');
    await form.getByRole('button', { name: 'Create' }).click();
    // INVALID_REPOSITORY_NAME with detail.field = "name": under the Name field.
    const nameError = form.locator('.field-name .field-error');
    await nameError.waitFor();
    assert.match(await nameError.textContent(), /not valid/);
    assert.equal(await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');

    await form.getByLabel('Name', { exact: true }).fill('hello');
    await form.getByLabel('Description (optional)').fill('Mirror of team/hello');
    await form.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'admin/hello', level: 1 }).waitFor();
    await page.getByText('No tags yet.').waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Repositories' }).click();
    const row = page.locator('tr[data-repository="admin/hello"]');
    await row.waitFor();
    assert.match(await row.textContent(), /private/);
    assert.equal(await row.locator('td.tag-count').textContent(), '0');
    assert.equal(await row.locator('td.mirrored').textContent(), 'No');
  });

  test('Connect with a wrong password shows the reason next to the form', async () => {
    await page.goto(`${server.url}/#/repositories/admin/hello/mirrors`);
    await page.getByRole('button', { name: 'New mirror policy' }).click();
    const form = page.getByRole('form', { name: 'New mirror policy' });
    assert.ok(await form.getByLabel('Pull from remote registry').isChecked());
    assert.equal(await form.getByLabel('Registry type').inputValue(), 'dtr');
    await form.getByLabel('Registry URL').fill(upstream.url);
    await form.getByLabel('Username').fill(UPSTREAM_USER.user);
    await form.getByLabel('Password or access token').fill('wrong-password');
    await form.getByLabel('Namespace').fill('team');
    await form.getByLabel('Repository name').fill('hello');
    assert.ok(await form.getByRole('button', { name: 'Save & Apply' }).isDisabled(), 'saving needs a connection first');

    await form.getByRole('button', { name: 'Connect' }).click();
    const result = form.locator('.connect-result.connect-error');
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /refused these credentials/);
    assert.match(text, /team\/hello/);
    assert.doesNotMatch(text, /[{}]/, 'no raw JSON');
    assert.ok(await form.getByRole('button', { name: 'Save & Apply' }).isDisabled());
    assert.ok(await form.getByRole('button', { name: 'Save', exact: true }).isDisabled());
  });

  test('Connect then Save & Apply mirrors every tag, and the job log follows it', async () => {
    const form = page.getByRole('form', { name: 'New mirror policy' });
    // Docker Hub fills in its URL; back to a DTR URL.
    await form.getByLabel('Registry type').selectOption('hub');
    assert.equal(await form.getByLabel('Docker Hub URL').inputValue(), upstream.url, 'a URL typed by the user is kept');
    await form.getByLabel('Docker Hub URL').fill('');
    await form.getByLabel('Registry type').selectOption('dtr');
    await form.getByLabel('Registry type').selectOption('hub');
    assert.equal(await form.getByLabel('Docker Hub URL').inputValue(), 'https://index.docker.io');
    await form.getByLabel('Registry type').selectOption('dtr');
    await form.getByLabel('Registry URL').fill(upstream.url);

    await form.getByRole('button', { name: 'Show advanced settings' }).click();
    await form.getByLabel('Remote certificate authority').waitFor();
    await form.getByLabel('Skip TLS verification').waitFor();
    await form.getByLabel('Password or access token').fill(UPSTREAM_USER.password);
    await form.getByRole('button', { name: 'Connect' }).click();
    const ok = form.locator('.connect-result.connect-ok');
    await ok.waitFor();
    assert.match(await ok.textContent(), /Read: yes/);
    await screenshot('web-mirrors-new-policy', { fullPage: true });

    await form.getByRole('button', { name: 'Save & Apply' }).click();
    // Save & Apply starts a poll of the new policy at once; the tab says
    // when it has finished and shows the policy's new status.
    await page.getByRole('status').getByRole('link', { name: 'follow the job' }).waitFor();
    await page.locator('article.policy').waitFor();
    await page.getByRole('status').getByText('The poll finished').waitFor({ timeout: 60000 });
    await page.locator('article.policy').getByText('success').waitFor();
    await page.getByRole('status').getByRole('link', { name: 'job log' }).click();

    await page.getByRole('heading', { name: /^Job / }).waitFor();
    await page.locator('.job-status[data-status="done"]').waitFor({ timeout: 60000 });
    const log = page.getByRole('log', { name: 'Job log' });
    await log.getByText('job done').waitFor();
    for (const tag of TAGS) {
      await log.getByText(`copied new tag team/hello:${tag} -> admin/hello:${tag}`).waitFor();
    }
    assert.match(await page.locator('#progress-text').textContent(), /3 of 3 tags copied/);
    await screenshot('web-job-log');
    assert.ok(await page.getByRole('button', { name: 'Cancel job' }).isHidden(), 'no cancel for a finished job');
  });

  test('the Tags tab shows the mirrored tags with the upstream digests', async () => {
    await page.goto(`${server.url}/#/repositories/admin/hello`);
    await page.getByRole('heading', { name: 'Tags', level: 2 }).waitFor();
    for (const tag of TAGS) {
      const row = page.locator(`tr[data-tag="${tag}"]`);
      await row.waitFor();
      assert.equal(await row.locator('code.digest').textContent(), upstreamDigests[tag], `digest of ${tag}`);
      assert.equal(await row.locator('.mirrored-from').textContent(), `${upstream.hostPort}/team/hello:${tag}`);
      assert.match(await row.textContent(), /Image \(Docker\)/);
      assert.equal(await row.locator('td.platforms').textContent(), 'linux/amd64');
      // Size: config plus layer (the exact count in the tooltip), not the manifest's.
      const size = row.locator('td.image-size');
      assert.match(await size.getAttribute('title'), new RegExp(`^${upstreamSizes[tag]} bytes; manifest \\d+ bytes$`));
      assert.match(await size.textContent(), /^\d+(\.\d)? (B|KB)$/);
    }
    await screenshot('web-tags');

    // The list answer has the tag count, whether a mirror feeds each
    // repository and the caller's access: no request per repository.
    const perRepository = recordApiRequests(page, /\/(tags|pollMirroringPolicies|userAccess)(\?|$)/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Repositories' }).click();
    const row = page.locator('tr[data-repository="admin/hello"]');
    await row.locator('td.tag-count', { hasText: '3' }).waitFor();
    await row.getByRole('link', { name: 'Mirrored: see the mirror policies of admin/hello' }).waitFor();
    await page.waitForLoadState('networkidle');
    perRepository.stop();
    assert.deepEqual(perRepository.seen, []);
    await screenshot('web-repositories');
  });

  test('a tag moved upstream keeps its previous digest in its History, still pullable', async () => {
    const before = upstreamDigests['1.0'];
    const { digest: moved } = await upstream.pushImage('team/hello', '1.0', 'hello 1.0, rebuilt\n');
    assert.notEqual(moved, before);
    const [policy] = await server.ok('GET', 'repositories/admin/hello/pollMirroringPolicies');
    const job = await server.ok('POST', 'jobs', { action: 'poll_mirror', parameters: { policyID: policy.id } });
    await waitFor(async () => (await server.ok('GET', `jobs/${job.id}`)).status === 'done', { timeoutMs: 60000, what: 'the poll' });
    upstreamDigests['1.0'] = moved;

    await page.goto(`${server.url}/#/repositories/admin/hello`);
    const row = page.locator('tr[data-tag="1.0"]');
    await row.locator('code.digest', { hasText: moved }).waitFor();
    const toggle = row.getByRole('button', { name: 'History of tag 1.0' });
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const entry = page.locator(`tr[data-history-of="1.0"] li.tag-history-entry[data-digest="${before}"]`);
    await entry.waitFor();
    assert.equal(await entry.locator('code.digest').getAttribute('title'), before);
    assert.match(await entry.textContent(), /pullable/);
    assert.match(await entry.textContent(), new RegExp(`replaced by ${moved.slice(0, 19)}`));
    await screenshot('web-tag-history');
    // A tag that never moved says so; closing hides the history again.
    await page.getByRole('button', { name: 'History of tag latest' }).click();
    await page.locator('tr[data-history-of="latest"]').getByText('has not moved').waitFor();
    await toggle.click();
    await page.locator('tr[data-history-of="1.0"]').waitFor({ state: 'hidden' });
  });

  test('a policy can be disabled, enabled, edited (rotating credentials) and shows its last status', async () => {
    await page.goto(`${server.url}/#/repositories/admin/hello/mirrors`);
    const card = page.locator('article.policy');
    await card.waitFor();
    await card.getByText('success').waitFor();
    assert.doesNotMatch(await card.locator('.last-mirrored').textContent(), /never/);
    await screenshot('web-mirrors');

    const enabled = card.getByRole('switch', { name: 'Enabled' });
    assert.ok(await enabled.isChecked());
    await enabled.uncheck();
    await page.locator('article.policy .badge', { hasText: 'disabled' }).waitFor();
    const policies = await server.ok('GET', 'repositories/admin/hello/pollMirroringPolicies');
    assert.equal(policies[0].enabled, false);
    await page.locator('article.policy').getByRole('switch', { name: 'Enabled' }).check();
    await page.locator('article.policy .badge', { hasText: 'disabled' }).waitFor({ state: 'detached' });

    // Rotating to a wrong password is refused by the remote check; the
    // reason shows in the form.
    await page.locator('article.policy').getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit mirror policy' });
    assert.equal(await form.getByLabel('Username').inputValue(), UPSTREAM_USER.user);
    assert.equal(await form.getByLabel('Password or access token').inputValue(), '', 'secrets are never shown');
    await form.getByLabel('Password or access token').fill('rotated-but-wrong');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.locator('.connect-result.connect-error').waitFor();
    await form.getByLabel('Password or access token').fill(UPSTREAM_USER.password);
    await form.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').getByText('Saved the mirror policy').waitFor();
    await form.waitFor({ state: 'detached' });
  });

  test('Jobs: filter by action and status, run poll_mirror now, follow a log live, cancel', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
    await page.getByText('poll_mirror last ran').waitFor();
    await page.getByLabel('Action').selectOption('poll_mirror');
    const filtered = recordApiRequests(page, /\/jobs\?/);
    await page.getByLabel('Status').selectOption('done');
    await page.waitForURL(/#\/jobs\?action=poll_mirror&status=done$/);
    await page.locator('tr[data-status="done"]').first().waitFor();
    assert.equal(await page.locator('tbody tr:not([data-status="done"])').count(), 0);
    filtered.stop();
    // The server filters by status.
    assert.ok(filtered.seen.some((u) => /[?&]status=done(&|$)/.test(u) && /[?&]action=poll_mirror(&|$)/.test(u)), filtered.seen.join(' '));
    await page.getByLabel('Status').selectOption('errored');
    await page.getByText('No jobs match these filters.').waitFor();

    // A job scheduled a little later: the page is open before it runs and
    // its lines arrive while we watch.
    const later = new Date(Date.now() + 3000).toISOString();
    const waiting = await server.ok('POST', 'jobs', { action: 'poll_mirror', scheduledAt: later });
    const streamed = [];
    const onRequest = (r) => {
      if (/\/logs\?.*stream=true/.test(r.url())) streamed.push(r.url());
    };
    page.on('request', onRequest);
    await page.goto(`${server.url}/#/jobs/${waiting.id}`);
    await page.locator('.job-status[data-status="waiting"]').waitFor();
    assert.equal(await page.locator('.log-line').count(), 0);
    await page.locator('.job-status[data-status="done"]').waitFor({ timeout: 60000 });
    await page.getByRole('log').getByText('job done').waitFor();
    assert.ok(await page.locator('.log-line').count() >= 3);
    assert.match(await page.locator('#progress-text').textContent(), /Nothing to copy: no new or moved tags \(3 unchanged\)/);
    page.off('request', onRequest);
    assert.ok(streamed.length > 0, 'the log is followed with ?stream=true');

    // Cancel a job that waits for its time.
    const much_later = new Date(Date.now() + 3600_000).toISOString();
    const parked = await server.ok('POST', 'jobs', { action: 'poll_mirror', scheduledAt: much_later });
    await page.goto(`${server.url}/#/jobs/${parked.id}`);
    await page.locator('.job-status[data-status="waiting"]').waitFor();
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.locator('.job-status[data-status="canceled"]').waitFor();

    // "Run poll_mirror now" opens the new job. Here the server is made to
    // refuse `?stream=true`, as one without log streaming does: the page
    // then reads the log every second instead.
    await page.route(/\/logs\?.*stream=true/, (route) => route.fulfill({
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({ errors: [{ code: 'INVALID_PARAMETER', message: 'stream: not supported', detail: { field: 'stream', reason: 'not supported' } }] }),
    }));
    await page.goto(`${server.url}/#/jobs`);
    await page.getByRole('button', { name: 'Run poll_mirror now' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
    await page.locator('.job-status[data-status="done"]').waitFor({ timeout: 60000 });
    await page.getByRole('log').getByText('job done').waitFor();
    await page.unroute(/\/logs\?.*stream=true/);
    const id = page.url().split('/').pop();
    const job = await server.ok('GET', `jobs/${id}`);
    assert.equal(job.action, 'poll_mirror');
    await page.goto(`${server.url}/#/jobs`);
    await page.locator(`tr[data-job-id="${id}"]`).waitFor();
    await screenshot('web-jobs');
  });

  test('a user without admin rights sees the policies but no New mirror policy button', async () => {
    await server.ok('POST', 'accounts', { name: READER.user, password: READER.password });
    await server.ok('PUT', `repositories/admin/hello/userAccess/${READER.user}`, { accessLevel: 'read-only' });

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to regmirror' }).waitFor();
    const probes = recordApiRequests(page, /\/userAccess(\?|$)/);
    await logIn(page, READER);
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).count(), 0);
    const readerRow = page.locator('tr[data-repository="admin/hello"]');
    await readerRow.getByText('read only').waitFor();
    await readerRow.getByRole('link', { name: 'admin/hello', exact: true }).click();
    await page.getByRole('heading', { name: 'Tags', level: 2 }).waitFor();
    await page.locator(`tr[data-tag="${TAGS[0]}"]`).waitFor();
    await page.getByRole('link', { name: 'Mirrors' }).click();
    await page.locator('article.policy').waitFor();
    await page.getByText('You need admin access to this repository').waitFor();
    assert.equal(await page.getByRole('button', { name: 'New mirror policy' }).count(), 0);
    assert.equal(await page.locator('article.policy').getByRole('button').count(), 0, 'no edit, delete or poll');
    assert.equal(await page.getByRole('switch').count(), 0);

    // A repository admin who is not a server admin gets the button.
    await server.ok('PUT', `repositories/admin/hello/userAccess/${READER.user}`, { accessLevel: 'admin' });
    await page.reload();
    await page.getByRole('button', { name: 'New mirror policy' }).waitFor();
    probes.stop();
    assert.deepEqual(probes.seen, [], 'the access level comes with the repository');
  });

  test('Save & Apply by a repository admin mirrors at once, and the page shows the bytes moving', async () => {
    // Still logged in as READER, now admin of admin/hello; also of admin/big.
    await server.ok('POST', 'repositories/admin', { name: 'big', visibility: 'private' });
    await server.ok('PUT', `repositories/admin/big/userAccess/${READER.user}`, { accessLevel: 'admin' });
    await page.goto(`${server.url}/#/repositories/admin/big/mirrors`);
    await page.getByRole('button', { name: 'New mirror policy' }).click();
    const form = page.getByRole('form', { name: 'New mirror policy' });
    await form.getByLabel('Registry URL').fill(slow.url);
    await form.getByLabel('Namespace').fill('slow');
    await form.getByLabel('Repository name').fill('big');
    await form.getByRole('button', { name: 'Connect' }).click();
    await form.locator('.connect-result.connect-ok').waitFor();
    assert.match(await form.locator('.connect-result.connect-ok').textContent(), /Read: yes.*Write: no/);
    await form.getByRole('button', { name: 'Save & Apply' }).click();

    // The Mirrors tab follows the job the server started: the bytes copied
    // grow while the big layer is still on its way.
    const notice = page.getByRole('status').filter({ hasText: 'Mirroring every tag of' });
    await notice.getByRole('link', { name: 'follow the job' }).waitFor();
    const first = await bytesAbove(page, '.apply-progress', 0);
    const second = await bytesAbove(page, '.apply-progress', first);
    assert.ok(second < slow.imageSize, `${second} bytes: the copy is not over yet`);
    assert.match(await notice.locator('.apply-progress').textContent(), /^0 of 1 tag copied · \d+(\.\d)? (KB|MB)\.$/);

    // So does the job's page, which a repository admin may open.
    await notice.getByRole('link', { name: 'follow the job' }).click();
    await page.getByRole('heading', { name: /^Job / }).waitFor();
    await page.locator('.job-status[data-status="running"]').waitFor();
    await page.locator('p.breadcrumb').getByRole('link', { name: 'admin/big' }).waitFor();
    const onPage = await bytesAbove(page, '.progress', second);
    await bytesAbove(page, '.progress', onPage);
    assert.match(await page.locator('#progress-text').textContent(), /^0 of 1 tag copied · \d+(\.\d)? (KB|MB)$/);
    assert.ok(await page.getByRole('button', { name: 'Cancel job' }).isVisible());
    await screenshot('web-job-progress');

    slow.finish();
    await page.locator('.job-status[data-status="done"]').waitFor({ timeout: 60000 });
    await page.getByRole('log').getByText('job done').waitFor();
    assert.match(await page.locator('#progress-text').textContent(), /^1 of 1 tag copied · 17 MB$/);

    await page.locator('p.breadcrumb').getByRole('link', { name: 'admin/big' }).click();
    await page.locator('article.policy').getByText('success').waitFor();
    await page.getByRole('link', { name: 'Tags' }).click();
    const row = page.locator('tr[data-tag="v1"]');
    await row.waitFor();
    assert.equal(await row.locator('code.digest').textContent(), slow.digest);
    assert.equal(await row.locator('td.platforms').textContent(), 'linux/arm64/v8');
    assert.equal(await row.locator('td.image-size').textContent(), '17 MB');
    assert.match(await row.locator('td.image-size').getAttribute('title'), new RegExp(`^${slow.imageSize} bytes;`));

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to regmirror' }).waitFor();
  });

  test('at phone width the pages fit the screen', async () => {
    const phone = await browser.context.newPage();
    const phoneProblems = watchProblems(phone);
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${server.url}/`);
    await logIn(phone, ADMIN);
    await phone.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    for (const route of ['repositories', 'repositories/admin/hello', 'repositories/admin/hello/mirrors', 'jobs']) {
      await phone.goto(`${server.url}/#/${route}`);
      await phone.locator('main h1').waitFor();
      await phone.waitForLoadState('networkidle');
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${route} is ${overflow}px wider than the screen`);
    }
    await phone.goto(`${server.url}/#/repositories/admin/hello/mirrors?new=1`);
    await phone.getByRole('form', { name: 'New mirror policy' }).waitFor();
    await screenshot('web-phone-mirrors', { target: phone });
    await phone.close();
    assert.deepEqual(phoneProblems, []);
  });

  test('deleting a policy asks first', async () => {
    await page.goto(`${server.url}/`);
    await logIn(page, ADMIN);
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    await page.goto(`${server.url}/#/repositories/admin/hello/mirrors`);
    const card = page.locator('article.policy');
    await card.getByRole('button', { name: 'Delete' }).click();
    await card.getByRole('button', { name: 'Keep it' }).click();
    assert.equal((await server.ok('GET', 'repositories/admin/hello/pollMirroringPolicies')).length, 1);
    await card.getByRole('button', { name: 'Delete' }).click();
    await card.getByRole('button', { name: 'Delete policy' }).click();
    await page.getByText('No mirror policies: this repository is not mirrored.').waitFor();
    assert.equal((await server.ok('GET', 'repositories/admin/hello/pollMirroringPolicies')).length, 0);
    // Mirrored tags stay.
    assert.equal((await server.ok('GET', 'repositories/admin/hello/tags')).length, TAGS.length);
  });

  test('the Webhooks tab sends a signed test, adds a webhook and shows its deliveries', async () => {
    // Still logged in as ADMIN. A receiver on loopback records each post.
    const received = [];
    const receiver = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200);
        res.end('ok');
      });
    });
    await new Promise((done) => receiver.listen(0, '127.0.0.1', done));
    const endpoint = `http://127.0.0.1:${receiver.address().port}/hook`;
    const secret = 'web-hook-secret';
    const signature = (body) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    try {
      await page.goto(`${server.url}/#/repositories/admin/hello/webhooks`);
      await page.getByRole('heading', { name: 'Webhooks', level: 2 }).waitFor();
      await page.getByText('No webhook on this repository yet.').waitFor();
      const form = page.getByRole('form', { name: 'Add a webhook' });
      await form.getByLabel('Endpoint URL').fill(endpoint);
      await form.getByLabel('Secret', { exact: true }).fill(secret);
      await form.getByRole('button', { name: 'Send a test' }).click();
      await form.getByText('The endpoint accepted the sample (HTTP 200).').waitFor();
      assert.equal(received.length, 1);
      assert.equal(received[0].headers['x-regmirror-signature'], signature(received[0].body));
      await form.getByRole('button', { name: 'Add webhook' }).click();
      const row = page.locator('table.webhooks-table tbody tr');
      await row.getByText(endpoint).waitFor();
      const [hook] = await server.ok('GET', 'repositories/admin/hello/webhooks');
      assert.equal(hook.type, 'TAG_PUSH');
      assert.equal(hook.hasSecret, true);
      assert.equal(JSON.stringify(hook).includes(secret), false);

      // A push of a new tag is delivered, signed; the log shows it.
      const auth = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
      const got = await fetch(`${server.url}/v2/admin/hello/manifests/${TAGS[0]}`, {
        headers: { Authorization: auth, Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' },
      });
      assert.equal(got.status, 200);
      const put = await fetch(`${server.url}/v2/admin/hello/manifests/hooked`, {
        method: 'PUT',
        headers: { Authorization: auth, 'Content-Type': got.headers.get('content-type') },
        body: Buffer.from(await got.arrayBuffer()),
      });
      assert.equal(put.status, 201);
      await waitFor(() => received.length >= 2, { what: 'the TAG_PUSH delivery' });
      const delivered = JSON.parse(received[1].body.toString());
      assert.equal(delivered.type, 'TAG_PUSH');
      assert.equal(delivered.contents.tag, 'hooked');
      assert.equal(received[1].headers['x-regmirror-signature'], signature(received[1].body));
      await waitFor(async () => (await server.ok('GET', `webhooks/${hook.id}/deliveries`))[0]?.status === 'delivered', { what: 'the delivery logged' });
      await row.getByRole('button', { name: /Recent deliveries/ }).click();
      const log = page.locator('table.webhook-deliveries-table');
      await log.getByText('delivered').waitFor();
      await screenshot('web-webhooks');

      await row.getByRole('button', { name: /Delete the webhook/ }).click();
      await page.getByText('No webhook on this repository yet.').waitFor();
      assert.deepEqual(await server.ok('GET', 'repositories/admin/hello/webhooks'), []);
      await server.ok('DELETE', 'repositories/admin/hello/tags/hooked');
    } finally {
      receiver.close();
    }
  });

  test('an administrator creates an organization with a member and a team, and grants the team read-write on a repository', async () => {
    // Still logged in as ADMIN. The users exist already; the rest is clicked.
    await server.ok('POST', 'accounts', { name: ORG_MEMBER.user, password: ORG_MEMBER.password });
    await server.ok('POST', 'accounts', { name: TEAM_MEMBER.user, password: TEAM_MEMBER.password });

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
    await page.getByRole('heading', { name: 'Organizations', level: 1 }).waitFor();
    await page.getByText('No organizations yet.').waitFor();
    await page.getByRole('button', { name: 'New organization' }).click();
    const create = page.getByRole('form', { name: 'New organization' });
    await create.getByLabel('Name', { exact: true }).fill('Acme Corp');
    await create.getByRole('button', { name: 'Create' }).click();
    const nameError = create.locator('.field-name .field-error');
    await nameError.waitFor();
    assert.match(await nameError.textContent(), /not a valid/);
    await create.getByLabel('Name', { exact: true }).fill(ORG);
    await create.getByLabel('Full name (optional)').fill('Acme Corporation');
    await create.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: ORG, level: 1 }).waitFor();
    assert.match(page.url(), new RegExp(`#/orgs/${ORG}$`));
    await page.getByText('Acme Corporation').waitFor();
    assert.equal((await server.enziOk('GET', `accounts/${ORG}`)).isOrg, true);

    // Members: an unknown user is refused next to the field.
    const addMember = page.getByRole('form', { name: 'Add a member', exact: true });
    await addMember.getByLabel('User name').fill('nobody');
    await addMember.getByRole('button', { name: 'Add member' }).click();
    const memberError = addMember.locator('.field-name .field-error');
    await memberError.waitFor();
    assert.match(await memberError.textContent(), /no account named "nobody"/);
    await addMember.getByLabel('User name').fill(ORG_MEMBER.user);
    await addMember.getByRole('button', { name: 'Add member' }).click();
    await page.locator(`tr[data-member="${ORG_MEMBER.user}"]`).getByText('member', { exact: true }).waitFor();
    assert.equal(await addMember.getByLabel('User name').inputValue(), '');

    // A team with a member (who joins the organization with it).
    const newTeam = page.getByRole('form', { name: 'New team' });
    await newTeam.getByLabel('Team name').fill(TEAM);
    await newTeam.getByLabel('Description (optional)').fill('Developers');
    await newTeam.getByRole('button', { name: 'Create team' }).click();
    const card = page.locator(`article.team[data-team="${TEAM}"]`);
    await card.getByText('0 members').waitFor();
    const addToTeam = card.getByRole('form', { name: `Add a member to team ${TEAM}` });
    await addToTeam.getByLabel('User name').fill(TEAM_MEMBER.user);
    await addToTeam.getByRole('button', { name: 'Add to team' }).click();
    await card.locator(`li[data-member="${TEAM_MEMBER.user}"]`).waitFor();
    await card.getByText('1 member', { exact: true }).waitFor();
    await page.locator(`tr[data-member="${TEAM_MEMBER.user}"]`).waitFor();
    const members = await server.enziOk('GET', `accounts/${ORG}/members`);
    assert.deepEqual(members.members.map((m) => [m.member.name, m.isAdmin]), [[ORG_MEMBER.user, false], [TEAM_MEMBER.user, false]]);
    const teamMembers = await server.enziOk('GET', `accounts/${ORG}/teams/${TEAM}/members`);
    assert.deepEqual(teamMembers.members.map((m) => m.member.name), [TEAM_MEMBER.user]);

    // The team on the whole namespace: set, removed, set again.
    const nsForm = page.getByRole('form', { name: 'Grant a team access to the namespace' });
    await nsForm.getByLabel('Team', { exact: true }).selectOption(TEAM);
    await nsForm.getByLabel('Access', { exact: true }).selectOption('read-write');
    await nsForm.getByRole('button', { name: 'Grant' }).click();
    const nsRow = page.locator(`table.namespace-access-table tr[data-team="${TEAM}"]`);
    await nsRow.getByText('Read & write').waitFor();
    assert.equal((await server.ok('GET', `repositoryNamespaces/${ORG}/teamAccess/${TEAM}`)).accessLevel, 'read-write');
    await nsRow.getByRole('button', { name: `Remove the namespace access of team ${TEAM}` }).click();
    await page.getByText('No team has access to the whole namespace.').waitFor();
    assert.equal((await server.api('GET', `repositoryNamespaces/${ORG}/teamAccess/${TEAM}`)).status, 404);
    await nsForm.getByLabel('Access', { exact: true }).selectOption('read-only');
    await nsForm.getByRole('button', { name: 'Grant' }).click();
    await nsRow.getByText('Read only').waitFor();
    await screenshot('web-organization', { fullPage: true });

    // A repository of the organization: its Access tab grants the team
    // read-write, and a user read-only.
    await server.ok('POST', `repositories/${ORG}`, { name: 'web', visibility: 'private' });
    await page.goto(`${server.url}/#/repositories/${ORG}/web`);
    await page.getByRole('navigation', { name: 'Repository sections' }).getByRole('link', { name: 'Access' }).click();
    await page.getByRole('heading', { name: 'Access', level: 2 }).waitFor();
    await page.getByText('No team has been granted access to this repository.').waitFor();
    assert.match(await page.locator('.namespace-grants').textContent(), new RegExp(`: ${TEAM} \\(read only\\)\\.`));
    const teamForm = page.getByRole('form', { name: 'Grant access to a team' });
    await teamForm.getByLabel('Team', { exact: true }).selectOption(TEAM);
    await teamForm.getByLabel('Access', { exact: true }).selectOption('read-write');
    await teamForm.getByRole('button', { name: 'Grant' }).click();
    await page.locator(`table.team-access-table tr[data-team="${TEAM}"]`).getByText('Read & write').waitFor();

    const userForm = page.getByRole('form', { name: 'Grant access to a user' });
    await userForm.getByLabel('User name').fill('nobody');
    await userForm.getByRole('button', { name: 'Grant' }).click();
    await userForm.locator('.field-username .field-error').getByText(/no account named "nobody"/).waitFor();
    await userForm.getByLabel('User name').fill(ORG_MEMBER.user);
    await userForm.getByRole('button', { name: 'Grant' }).click();
    await page.locator(`table.user-access-table tr[data-username="${ORG_MEMBER.user}"]`).getByText('Read only').waitFor();
    await screenshot('web-access', { fullPage: true });

    // Through the API: the grants exist, and the team's member may push.
    const teamAccess = await server.ok('GET', `repositories/${ORG}/web/teamAccess`);
    assert.deepEqual(teamAccess.teamAccessList.map((g) => [g.team.name, g.accessLevel]), [[TEAM, 'read-write']]);
    assert.deepEqual(await server.ok('GET', `repositories/${ORG}/web/userAccess`), [{ username: ORG_MEMBER.user, accessLevel: 'read-only' }]);
    assert.equal((await server.ok('GET', `repositories/${ORG}/web`, undefined, TEAM_MEMBER)).accessLevel, 'read-write');

    // Removing a user's grant.
    await server.ok('PUT', `repositories/${ORG}/web/userAccess/${TEAM_MEMBER.user}`, { accessLevel: 'admin' });
    await page.reload();
    const erinRow = page.locator(`table.user-access-table tr[data-username="${TEAM_MEMBER.user}"]`);
    await erinRow.getByText('Admin').waitFor();
    await erinRow.getByRole('button', { name: `Remove the access of ${TEAM_MEMBER.user}` }).click();
    await erinRow.waitFor({ state: 'detached' });
    assert.deepEqual(await server.ok('GET', `repositories/${ORG}/web/userAccess`), [{ username: ORG_MEMBER.user, accessLevel: 'read-only' }]);
  });

  test('a member who is not an administrator of the organization sees it read-only', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to regmirror' }).waitFor();
    await logIn(page, ORG_MEMBER);
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
    await page.getByRole('heading', { name: 'Organizations', level: 1 }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'New organization' }).count(), 0);
    await page.locator(`tr[data-org="${ORG}"]`).getByRole('link', { name: ORG }).click();
    await page.getByRole('heading', { name: ORG, level: 1 }).waitFor();
    await page.getByText('Only the organization\'s administrators can change').waitFor();
    await page.locator(`tr[data-member="${TEAM_MEMBER.user}"]`).waitFor();
    await page.locator(`article.team[data-team="${TEAM}"] li[data-member="${TEAM_MEMBER.user}"]`).waitFor();
    await page.locator(`table.namespace-access-table tr[data-team="${TEAM}"]`).getByText('Read only').waitFor();
    await page.getByText('you: member').waitFor();
    const main = page.locator('main');
    assert.equal(await main.getByRole('button').count(), 0, 'no add, remove or delete buttons');
    assert.equal(await main.locator('form').count(), 0, 'no forms');
    assert.equal(await main.getByRole('columnheader', { name: 'Actions' }).count(), 0);

    // The repository's Access tab: read-only access, so no lists are
    // asked for (the API would refuse them) and nothing can be changed.
    const probes = recordApiRequests(page, /\/(userAccess|teamAccess)(\?|$)/);
    await page.goto(`${server.url}/#/repositories/${ORG}/web/access`);
    await page.getByText('You need admin access to this repository to see and change who else has access').waitFor();
    assert.equal(await main.locator('form').count(), 0);
    probes.stop();
    assert.deepEqual(probes.seen, []);

    // Made an administrator of the organization, the member manages it.
    await server.enziOk('PUT', `accounts/${ORG}/members/${ORG_MEMBER.user}`, { isAdmin: true, isPublic: true });
    await page.goto(`${server.url}/#/orgs/${ORG}`);
    await page.getByText('you: administrator').waitFor();
    await page.getByRole('form', { name: 'Add a member', exact: true }).waitFor();
    await page.locator(`article.team[data-team="${TEAM}"]`).getByRole('button', { name: 'Delete team' }).waitFor();
    // ...and, as the organization's administrator, the repositories of its namespace.
    await page.goto(`${server.url}/#/repositories/${ORG}/web/access`);
    await page.locator(`table.team-access-table tr[data-team="${TEAM}"]`).getByText('Read & write').waitFor();
    await page.getByRole('form', { name: 'Grant access to a team' }).waitFor();

    // Someone outside the organization does not see it.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to regmirror' }).waitFor();
    await logIn(page, READER);
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    await page.goto(`${server.url}/#/orgs`);
    await page.getByText('You are not a member of any organization.').waitFor();
    await page.goto(`${server.url}/#/orgs/${ORG}`);
    await page.getByText(`Organization ${ORG} does not exist, or you are not a member of it.`).waitFor();
  });

  test('at phone width the organization and access pages fit the screen', async () => {
    const phone = await browser.context.newPage();
    const phoneProblems = watchProblems(phone);
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${server.url}/`);
    await logIn(phone, ADMIN);
    await phone.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
    for (const route of ['orgs', `orgs/${ORG}`, `repositories/${ORG}/web/access`]) {
      await phone.goto(`${server.url}/#/${route}`);
      await phone.locator('main h1').waitFor();
      await phone.waitForLoadState('networkidle');
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${route} is ${overflow}px wider than the screen`);
    }
    await phone.close();
    assert.deepEqual(phoneProblems, []);
  });

  test('a policy with tag rules: Connect previews the matching tags, a bad rule is shown at its input, Save keeps the rules', async () => {
    for (const tag of RULED_TAGS) await upstream.pushImage('team/ruled', tag, `ruled ${tag}\n`);
    await server.ok('POST', 'repositories/admin', { name: 'ruled', visibility: 'private' });
    await page.goto(`${server.url}/`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn(page, ADMIN);
    await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();

    await page.goto(`${server.url}/#/repositories/admin/ruled/mirrors`);
    await page.getByRole('button', { name: 'New mirror policy' }).click();
    const form = page.getByRole('form', { name: 'New mirror policy' });
    await fillUpstream(form, 'ruled');
    await form.getByText('No rules: every remote tag is mirrored.').waitFor();

    // Rule 1 keeps a version range; rule 2 is first a bad pattern.
    await form.getByRole('button', { name: 'Add a tag rule' }).click();
    const rule1 = form.getByRole('group', { name: 'Rule 1' });
    await rule1.getByLabel('Operator').selectOption('semver');
    await rule1.getByLabel('Values').fill('>=1.20 <3');
    await form.getByRole('button', { name: 'Add a tag rule' }).click();
    const rule2 = form.getByRole('group', { name: 'Rule 2' });
    await rule2.getByLabel('Operator').selectOption('matches');
    await rule2.getByLabel('Values').fill('(');
    await form.getByRole('button', { name: 'Connect' }).click();
    // INVALID_POLL_MIRRORING_POLICY with detail.field = "rules[1].values".
    const valuesError = rule2.locator('.field-values .field-error');
    await valuesError.waitFor();
    assert.match(await valuesError.textContent(), /"\("/);
    assert.equal(await rule2.getByLabel('Values').getAttribute('aria-invalid'), 'true');
    assert.equal(await rule1.getByLabel('Values').getAttribute('aria-invalid'), null);
    assert.equal(await form.locator('.connect-result.connect-ok').count(), 0);

    // A third rule, removed again; rule 2 becomes "exclude -alpine".
    await form.getByRole('button', { name: 'Add a tag rule' }).click();
    await form.getByRole('group', { name: 'Rule 3' }).getByLabel('Values').fill('x');
    await form.getByRole('button', { name: 'Remove rule 3' }).click();
    assert.equal(await form.getByRole('group', { name: /^Rule \d$/ }).count(), 2);
    await rule2.getByLabel('Operator').selectOption('ew');
    await rule2.getByLabel('Values').fill('-alpine');
    await rule2.getByLabel('Exclude matching tags').check();

    const requests = [];
    const onRequest = (r) => {
      if (r.method() === 'POST' && /\/api\/v0\/(remote\/registry|repositories\/admin\/ruled\/pollMirroringPolicies)/.test(r.url())) {
        requests.push(JSON.parse(r.postData()));
      }
    };
    page.on('request', onRequest);
    await form.getByRole('button', { name: 'Connect' }).click();
    const ok = form.locator('.connect-result.connect-ok');
    await ok.waitFor();
    assert.match(await ok.textContent(), /Read: yes/);
    assert.equal(await rule2.getByLabel('Values').getAttribute('aria-invalid'), null, 'the old error is gone');
    const preview = ok.locator('.tag-preview');
    assert.match(await preview.locator('.preview-summary').textContent(), /^3 of 6 remote tags match/);
    const listed = await preview.getByRole('list', { name: 'Matching remote tags' }).getByRole('listitem').allTextContents();
    assert.deepEqual([...listed].sort(), ['1.20', '1.20.3', '2.0']);
    assert.equal(await ok.locator('.preview-warning').count(), 0);
    assert.ok(await ok.locator('.preview-stale').isHidden());

    // Changing a rule marks the preview as out of date (Save still works).
    await rule1.getByLabel('Values').fill('>=1.20 <2');
    await ok.locator('.preview-stale').waitFor();
    await rule1.getByLabel('Values').fill('>=1.20 <3');
    await ok.locator('.preview-stale').waitFor({ state: 'hidden' });

    await form.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    page.off('request', onRequest);
    const expected = [
      { field: 'tag', operator: 'semver', values: ['>=1.20 <3'] },
      { field: 'tag', operator: 'ew', values: ['-alpine'], exclude: true },
    ];
    assert.equal(requests.length, 2, JSON.stringify(requests));
    assert.deepEqual(requests[0].rules, expected, 'Connect sends the rules');
    assert.deepEqual(requests[1].rules, expected, 'Save sends the rules');

    // Through the API: the policy has the rules.
    const [saved] = await server.ok('GET', 'repositories/admin/ruled/pollMirroringPolicies');
    assert.deepEqual(saved.rules, expected);
    assert.equal(saved.remoteRepository, 'team/ruled');

    // The Mirrors tab shows them in short.
    const card = page.locator('article.policy');
    // allTextContents does not wait: wait for the card's rules first.
    await card.locator('.tag-rules-summary li').first().waitFor();
    const chips = await card.locator('.tag-rules-summary li').allTextContents();
    assert.deepEqual(chips, ['in version range >=1.20 <3', 'except ends with -alpine']);

    // The edit form starts from them; a bad value there is refused at its input too.
    await card.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit mirror policy' });
    assert.equal(await edit.getByRole('group', { name: 'Rule 1' }).getByLabel('Operator').inputValue(), 'semver');
    assert.equal(await edit.getByRole('group', { name: 'Rule 1' }).getByLabel('Values').inputValue(), '>=1.20 <3');
    assert.ok(await edit.getByRole('group', { name: 'Rule 2' }).getByLabel('Exclude matching tags').isChecked());
    await edit.getByRole('group', { name: 'Rule 1' }).getByLabel('Values').fill('soon');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await edit.getByRole('group', { name: 'Rule 1' }).locator('.field-values .field-error').getByText(/not a version range/).waitFor();
    await edit.getByRole('button', { name: 'Remove rule 2' }).click();
    await edit.getByRole('group', { name: 'Rule 1' }).getByLabel('Values').fill('>=1.20 <3');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').getByText('Saved the mirror policy').waitFor();
    await edit.waitFor({ state: 'detached' });
    const [edited] = await server.ok('GET', 'repositories/admin/ruled/pollMirroringPolicies');
    assert.deepEqual(edited.rules, [expected[0]]);
    await page.locator('article.policy .tag-rules-summary li').filter({ hasText: 'in version range' }).waitFor();
    assert.equal(await page.locator('article.policy .tag-rules-summary li').count(), 1);
  });

  test('rules that match no remote tag show a warning at Connect; a long match list is cut', async () => {
    await page.goto(`${server.url}/#/repositories/admin/ruled/mirrors?new=1`);
    const form = page.getByRole('form', { name: 'New mirror policy' });
    await fillUpstream(form, 'ruled');
    await form.getByRole('button', { name: 'Add a tag rule' }).click();
    const rule1 = form.getByRole('group', { name: 'Rule 1' });
    await rule1.getByLabel('Operator').selectOption('sw');
    await rule1.getByLabel('Values').fill('nightly-, 9.');
    await form.getByRole('button', { name: 'Connect' }).click();
    const ok = form.locator('.connect-result.connect-ok');
    await ok.waitFor();
    assert.match(await ok.locator('.preview-summary').textContent(), /^0 of 6 remote tags match/);
    const warning = ok.locator('.preview-warning');
    await warning.waitFor();
    assert.match(await warning.textContent(), /these rules match no remote tag; a poll would copy nothing/);
    assert.equal(await ok.getByRole('list', { name: 'Matching remote tags' }).count(), 0);

    // Many matches: the first 50 are named, then how many more. (The
    // Connect answer is made up here; the page only shows it.)
    const many = Array.from({ length: 73 }, (_, i) => `v${i}`);
    await page.route(/\/api\/v0\/remote\/registry$/, (route) => route.fulfill({
      status: 201,
      contentType: 'application/json',
      body: JSON.stringify({ registryType: 'registry', permissions: { read: true, write: false }, preview: { tagsListed: 80, matchingTags: many } }),
    }));
    await form.getByRole('button', { name: 'Connect' }).click();
    await ok.locator('.preview-summary', { hasText: '73 of 80 remote tags match' }).waitFor();
    const items = ok.getByRole('list', { name: 'Matching remote tags' }).getByRole('listitem');
    assert.equal(await items.count(), 51);
    assert.equal(await items.nth(49).textContent(), 'v49');
    assert.equal(await items.nth(50).textContent(), 'and 23 more');
    assert.equal(await ok.locator('.preview-warning').count(), 0);
    await page.unroute(/\/api\/v0\/remote\/registry$/);
    await form.getByRole('button', { name: 'Cancel' }).click();
    await form.waitFor({ state: 'detached' });
    assert.equal((await server.ok('GET', 'repositories/admin/ruled/pollMirroringPolicies')).length, 1, 'nothing saved');
  });

  test('platforms, referrers and deletion settings: saved from the form, shown, edited; a bad platform is refused at its input', async () => {
    await server.ok('POST', 'repositories/admin', { name: 'platformed', visibility: 'private' });
    const policies = 'repositories/admin/platformed/pollMirroringPolicies';
    await page.goto(`${server.url}/#/repositories/admin/platformed/mirrors?new=1`);
    const form = page.getByRole('form', { name: 'New mirror policy' });
    await fillUpstream(form, 'hello');

    // The index mode is asked only with platforms; the deletion limits only with deletion on.
    const modes = form.getByRole('group', { name: 'How to store the index' });
    assert.ok(await modes.isHidden());
    assert.ok(await form.getByLabel('Mirror signatures, attestations and SBOMs').isChecked(), 'referrers are on by default');
    assert.ok(!(await form.getByLabel(/^Delete local tags this policy mirrored/).isChecked()), 'deletion is off by default');
    assert.ok(await form.getByLabel('Most deleted per poll (%)').isHidden());
    await form.getByLabel('Platforms', { exact: true }).fill('linux/arm64, amd64');
    await modes.waitFor();
    assert.ok(await modes.getByLabel(/sparse/).isChecked(), 'sparse is the default');
    await modes.getByLabel(/rewrite/).check();
    await form.getByLabel(/^Delete local tags this policy mirrored/).check();
    await form.getByLabel('Most deleted per poll (%)').fill('20');
    assert.ok(!(await form.getByLabel('Dry run: only log what would be deleted').isChecked()));
    await screenshot('web-policy-platforms', { fullPage: true });

    const sent = [];
    const onRequest = (r) => {
      if (['POST', 'PUT'].includes(r.method()) && r.url().includes(`/api/v0/${policies}`)) sent.push(JSON.parse(r.postData()));
    };
    page.on('request', onRequest);
    await form.getByRole('button', { name: 'Connect' }).click();
    await form.locator('.connect-result.connect-ok').waitFor();
    // INVALID_POLL_MIRRORING_POLICY with detail.field = "platforms[1]": shown at the input, nothing saved.
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    const platformsError = form.locator('.field-platforms .field-error');
    await platformsError.waitFor();
    assert.match(await platformsError.textContent(), /"amd64" is not a platform/);
    assert.equal(await form.getByLabel('Platforms', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.deepEqual(await server.ok('GET', policies), [], 'nothing saved');

    await form.getByLabel('Platforms', { exact: true }).fill('linux/arm64');
    await form.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    assert.equal(sent.length, 2, JSON.stringify(sent));
    const created = sent[1];
    assert.deepEqual(created.platforms, ['linux/arm64']);
    assert.equal(created.platformMode, 'rewrite');
    assert.equal(created.deleteRemoved, true);
    assert.equal(created.deleteRemovedMaxPercent, 20);
    assert.ok(!('mirrorReferrers' in created) && !('deleteRemovedDryRun' in created), 'defaults are left out');

    // Through the API: the policy has them.
    const [saved] = await server.ok('GET', policies);
    const fields = (p) => ({
      platforms: p.platforms,
      platformMode: p.platformMode,
      mirrorReferrers: p.mirrorReferrers,
      referrerArtifactTypes: p.referrerArtifactTypes,
      deleteRemoved: p.deleteRemoved,
      deleteRemovedDryRun: p.deleteRemovedDryRun,
      deleteRemovedMaxPercent: p.deleteRemovedMaxPercent,
    });
    const expected = {
      platforms: ['linux/arm64'],
      platformMode: 'rewrite',
      mirrorReferrers: true,
      referrerArtifactTypes: [],
      deleteRemoved: true,
      deleteRemovedDryRun: false,
      deleteRemovedMaxPercent: 20,
    };
    assert.deepEqual(fields(saved), expected);

    // The Mirrors tab says it in short.
    const card = page.locator('article.policy');
    assert.equal(await card.locator('.platforms-summary').textContent(), 'linux/arm64 (rewrite)');
    assert.equal(await card.locator('.deletion-summary').textContent(), 'deletes removed tags, at most 20% a poll');
    assert.equal(await card.locator('.referrers-summary').count(), 0);

    // The edit form starts from them, and sends only what changed.
    await card.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit mirror policy' });
    assert.equal(await edit.getByLabel('Platforms', { exact: true }).inputValue(), 'linux/arm64');
    assert.ok(await edit.getByRole('group', { name: 'How to store the index' }).getByLabel(/rewrite/).isChecked());
    assert.ok(await edit.getByLabel(/^Delete local tags this policy mirrored/).isChecked());
    assert.equal(await edit.getByLabel('Most deleted per poll (%)').inputValue(), '20');
    // A bad artifact type: refused at its input (opened for it).
    await edit.getByRole('button', { name: 'Only some artifact types…' }).click();
    await edit.getByLabel('Artifact types').fill('sig');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await edit.locator('.field-referrerArtifactTypes .field-error').getByText(/not a media type/).waitFor();
    await edit.getByLabel('Artifact types').fill('');
    await edit.getByLabel('Platforms', { exact: true }).fill('linux/arm64/v8 linux/amd64');
    await edit.getByLabel('Dry run: only log what would be deleted').check();
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').getByText('Saved the mirror policy').waitFor();
    await edit.waitFor({ state: 'detached' });
    page.off('request', onRequest);
    assert.deepEqual(sent.at(-1), { platforms: ['linux/arm64/v8', 'linux/amd64'], deleteRemovedDryRun: true });
    const edited = await server.ok('GET', `${policies}/${saved.id}`);
    assert.deepEqual(fields(edited), { ...expected, platforms: ['linux/arm64/v8', 'linux/amd64'], deleteRemovedDryRun: true });
    await card.locator('.platforms-summary', { hasText: 'linux/arm64/v8, linux/amd64 (rewrite)' }).waitFor();
    assert.match(await card.locator('.deletion-summary').textContent(), /\(dry run\)/);
  });

  test('a push policy: Connect needs write access, a bad remote tag is shown at its input, Save & Apply pushes, edit, delete', async () => {
    // admin/hello keeps its mirrored tags (its pull policy was deleted);
    // they go to the upstream's team/pushed, which does not exist yet.
    const local = Object.fromEntries((await server.ok('GET', 'repositories/admin/hello/tags')).map((t) => [t.name, t.digest]));
    await page.goto(`${server.url}/#/repositories/admin/hello/mirrors?new=1`);
    const form = page.getByRole('form', { name: 'New mirror policy' });
    await form.getByLabel('Push to remote registry').check();
    assert.ok(await form.getByLabel('Platforms', { exact: true }).isHidden(), 'no pull content settings for a push');
    assert.equal(await form.getByLabel('Remote tag').inputValue(), '%n');
    assert.match(await form.locator('.field-tagTemplate .hint').textContent(), /%n.*%D.*%Y/);
    await fillUpstream(form, 'pushed');
    await form.getByRole('button', { name: 'Add a tag rule' }).click();
    const rule = form.getByRole('group', { name: 'Rule 1' });
    await rule.getByLabel('Operator').selectOption('oo');
    await rule.getByLabel('Values').fill('1.1, latest');

    // Credentials that may read but not push: refused at Connect.
    await page.route(/\/api\/v0\/remote\/registry$/, (route) => route.fulfill({
      status: 201,
      contentType: 'application/json',
      body: JSON.stringify({ registryType: 'registry', permissions: { read: true, write: false } }),
    }));
    await form.getByRole('button', { name: 'Connect' }).click();
    await form.locator('.connect-result.connect-error', { hasText: 'may not push' }).waitFor();
    assert.ok(await form.getByRole('button', { name: 'Save & Apply' }).isDisabled());
    await page.unroute(/\/api\/v0\/remote\/registry$/);

    // The real check: the repository does not exist yet, which is fine for a push.
    const sent = recordApiRequests(page, /\/(remote\/registry|pushMirroringPolicies)/);
    await form.getByRole('button', { name: 'Connect' }).click();
    await form.locator('.connect-result.connect-ok', { hasText: 'first push creates it' }).waitFor();

    // A remote tag that is not a tag: INVALID_PUSH_MIRRORING_POLICY at its input.
    await form.getByLabel('Remote tag').fill('%n/x');
    await form.getByRole('button', { name: 'Save & Apply' }).click();
    const templateError = form.locator('.field-tagTemplate .field-error');
    await templateError.waitFor();
    assert.equal(await form.getByLabel('Remote tag').getAttribute('aria-invalid'), 'true');
    assert.equal((await server.ok('GET', 'repositories/admin/hello/pushMirroringPolicies')).length, 0);

    await form.getByLabel('Remote tag').fill('%n-copy');
    await form.getByRole('button', { name: 'Save & Apply' }).click();
    await page.getByRole('status').getByText('The first push finished').waitFor({ timeout: 60000 });
    sent.stop();
    assert.ok(sent.seen.some((u) => /pushMirroringPolicies\?initialEvaluation=true$/.test(u)), sent.seen.join(' '));
    const card = page.locator('article.policy[data-mirroring-type="push"]');
    await card.waitFor();
    assert.match(await card.locator('h3').textContent(), /^Push to /);
    assert.equal(await card.locator('.tag-template').textContent(), '%n-copy');
    assert.equal(await card.getByRole('button', { name: 'Poll now' }).count(), 0);

    // Both kept tags arrive (the other jobs may still run), with our digests.
    const auth = { Authorization: `Basic ${btoa(`${UPSTREAM_USER.user}:${UPSTREAM_USER.password}`)}` };
    await waitFor(async () => {
      const r = await fetch(`${upstream.url}/v2/team/pushed/tags/list`, { headers: auth });
      const tags = r.ok ? (await r.json()).tags ?? [] : [];
      return tags.includes('1.1-copy') && tags.includes('latest-copy');
    }, { timeoutMs: 60000, what: 'pushed tags on the upstream' });
    const listed = await (await fetch(`${upstream.url}/v2/team/pushed/tags/list`, { headers: auth })).json();
    assert.deepEqual(listed.tags.sort(), ['1.1-copy', 'latest-copy']);
    assert.equal(await upstream.digestOf('team/pushed', '1.1-copy'), local['1.1']);
    assert.equal(await upstream.digestOf('team/pushed', 'latest-copy'), local.latest);
    await screenshot('web-mirrors-push-policy');

    // Edit: the form is the push one, with the stored template.
    await card.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit mirror policy' });
    assert.ok(await edit.getByLabel('Push to remote registry').isChecked());
    assert.equal(await edit.getByLabel('Remote tag').inputValue(), '%n-copy');
    await edit.getByLabel('Remote tag').fill('%n-%D');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').getByText('Saved the push policy').waitFor();
    const [stored] = await server.ok('GET', 'repositories/admin/hello/pushMirroringPolicies');
    assert.equal(stored.tagTemplate, '%n-%D');
    assert.deepEqual(stored.rules.map((r) => r.operator), ['oo']);
    await card.locator('.tag-template', { hasText: '%n-%D' }).waitFor();

    // Disable, then delete (asking first).
    await card.getByRole('switch', { name: 'Enabled' }).uncheck();
    await card.locator('.badge', { hasText: 'disabled' }).waitFor();
    assert.equal((await server.ok('GET', `repositories/admin/hello/pushMirroringPolicies/${stored.id}`)).enabled, false);
    await card.getByRole('button', { name: 'Delete' }).click();
    await card.getByText('Tags already pushed stay there.').waitFor();
    await card.getByRole('button', { name: 'Delete policy' }).click();
    await page.getByText('No mirror policies: this repository is not mirrored.').waitFor();
    assert.equal((await server.ok('GET', 'repositories/admin/hello/pushMirroringPolicies')).length, 0);
  });

  test('no page errors, console errors or failed requests', () => {
    assert.deepEqual(problems, []);
  });
});
