// Headless Chromium: Debian's /usr/bin/chromium driven by playwright-core
// (no browser download), with a fresh profile per run.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A browser context with its own new profile directory (Playwright passes
 * it as `--user-data-dir`). `close()` also deletes the profile.
 */
export async function launchBrowser({ viewport = { width: 1280, height: 860 } } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'regmirror-web-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  context.setDefaultTimeout(15000);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Collects what must never happen on the page: uncaught exceptions,
 * console errors (CSP violations are reported there) and failed requests
 * to the page's own origin.
 */
export function watchProblems(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') {
      // A 4xx answer from the API is expected in some tests (bad password,
      // bad credentials); Chromium logs those as console errors.
      const text = m.text();
      if (/Failed to load resource: the server responded with a status of (400|401|403|404|409)/.test(text)) return;
      problems.push(`console error: ${text}`);
    }
  });
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation away, aborted polling
    problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  return problems;
}
