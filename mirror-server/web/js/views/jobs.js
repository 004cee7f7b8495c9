// Jobs: the list (server administrators), filterable by action and status;
// "Run poll_mirror now"; one job with its live progress and its log,
// followed while it runs; cancel. A repository administrator may open the
// jobs of their repository's policies (the one Save & Apply starts).

import * as api from '../api.js';
import { badge, h, replace, sleep, statusKind, timeEl } from '../dom.js';
import { alertArea, field, hideAlert, showAlert, whileBusy } from '../forms.js';
import { describeProgress, FINAL } from '../progress.js';

const STATUSES = ['waiting', 'running', 'done', 'errored', 'canceled'];
const ACTIONS = ['poll_mirror'];
const PAGE = 50;

function shortId(id) {
  return String(id).slice(0, 8);
}

function parametersText(parameters) {
  const entries = Object.entries(parameters ?? {});
  if (entries.length === 0) return 'all enabled policies';
  return entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

async function startPoll(ctx) {
  return api.post('jobs', { action: 'poll_mirror' }, { signal: ctx.signal });
}

// ---------------------------------------------------------------- list ----

export async function jobsView(main, ctx) {
  ctx.setTitle('Jobs');
  const action = ctx.query.get('action') ?? '';
  const status = ctx.query.get('status') ?? '';
  const limit = Math.min(Math.max(Number(ctx.query.get('limit')) || PAGE, 1), 1000);

  const actionField = field({
    label: 'Action',
    name: 'action',
    control: 'select',
    options: [['', 'Any action'], ...[...new Set([...ACTIONS, action].filter(Boolean))].map((a) => [a, a])],
    value: action,
  });
  const statusField = field({
    label: 'Status',
    name: 'status',
    control: 'select',
    options: [['', 'Any status'], ...STATUSES.map((s) => [s, s])],
    value: status,
  });
  const applyFilters = () => {
    const q = new URLSearchParams();
    if (actionField.input.value) q.set('action', actionField.input.value);
    if (statusField.input.value) q.set('status', statusField.input.value);
    const qs = q.toString();
    ctx.navigate(`jobs${qs ? `?${qs}` : ''}`, { replace: true });
  };
  actionField.input.addEventListener('change', applyFilters);
  statusField.input.addEventListener('change', applyFilters);

  const runButton = h('button', { type: 'button', class: 'button button-primary', text: 'Run poll_mirror now' });
  const alert = alertArea();
  runButton.addEventListener('click', async () => {
    hideAlert(alert);
    try {
      const job = await whileBusy(runButton, 'Starting…', () => startPoll(ctx));
      ctx.navigate(`jobs/${encodeURIComponent(job.id)}`);
    } catch (e) {
      if (!ctx.signal.aborted) showAlert(alert, `Cannot start poll_mirror: ${e.message}`);
    }
  });

  const schedule = h('p', { class: 'muted schedule' });
  const listArea = h('div', { class: 'list-area', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading jobs…' }));
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { text: 'Jobs' }),
      h('div', { class: 'page-actions' }, runButton)),
    alert,
    schedule,
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs', onsubmit: (e) => { e.preventDefault(); applyFilters(); } },
      actionField.el, statusField.el),
    listArea);

  loadSchedule(ctx, schedule);

  for (;;) {
    let jobs;
    try {
      const data = await api.get('jobs', { query: { action: action || 'any', status: status || 'any', limit }, signal: ctx.signal });
      jobs = data?.jobs ?? [];
    } catch (e) {
      if (ctx.signal.aborted) return;
      listArea.removeAttribute('aria-busy');
      replace(listArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the jobs: ${e.message}` }));
      return;
    }
    renderJobs(listArea, ctx, jobs, { more: jobs.length >= limit, limit, action, status });
    const active = jobs.some((j) => !FINAL.has(j.status));
    try {
      await sleep(active ? 2000 : 10000, ctx.signal);
    } catch {
      return;
    }
  }
}

function renderJobs(listArea, ctx, jobs, { more, limit, action, status }) {
  listArea.removeAttribute('aria-busy');
  if (jobs.length === 0) {
    replace(listArea, h('div', { class: 'empty' }, h('p', { text: action || status ? 'No jobs match these filters.' : 'No jobs yet.' })));
    return;
  }
  const rows = jobs.map((j) => h('tr', { dataset: { jobId: j.id, status: j.status } },
    h('th', { scope: 'row' }, h('a', { href: ctx.href('jobs', j.id), class: 'mono', 'aria-label': `Job ${j.id}`, text: shortId(j.id) })),
    h('td', { text: j.action }),
    h('td', {}, badge(j.status, statusKind(j.status)), j.cancelRequested && !FINAL.has(j.status) ? [' ', badge('cancel requested', 'warn')] : null),
    h('td', {}, timeEl(j.scheduledAt)),
    h('td', {}, timeEl(j.lastUpdated)),
    h('td', { class: 'small', text: parametersText(j.parameters) })));
  const q = new URLSearchParams();
  if (action) q.set('action', action);
  if (status) q.set('status', status);
  q.set('limit', String(limit + PAGE));
  replace(listArea,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table jobs-table' },
        h('caption', { class: 'visually-hidden', text: 'Jobs, most recently scheduled first' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Job' }),
          h('th', { scope: 'col', text: 'Action' }),
          h('th', { scope: 'col', text: 'Status' }),
          h('th', { scope: 'col', text: 'Scheduled' }),
          h('th', { scope: 'col', text: 'Last updated' }),
          h('th', { scope: 'col', text: 'Parameters' }))),
        h('tbody', {}, rows))),
    more ? h('div', { class: 'pager' }, h('a', { class: 'button button-quiet', href: `#/jobs?${q}`, text: 'Show more' })) : null);
}

async function loadSchedule(ctx, el) {
  const [cron, last] = await Promise.allSettled([
    api.get('crons/poll_mirror', { signal: ctx.signal }),
    api.get('jobs', { query: { action: 'poll_mirror', running: 'false', limit: 20 }, signal: ctx.signal }),
  ]);
  if (ctx.signal.aborted) return;
  const parts = [];
  // A job canceled while it waited never ran.
  const finished = last.status === 'fulfilled' ? (last.value?.jobs ?? []) : [];
  const lastJob = finished.find((j) => j.status !== 'canceled' || j.heartbeatAt) ?? null;
  if (lastJob) {
    parts.push('poll_mirror last ran ', timeEl(lastJob.lastUpdated), ' (', h('a', { href: ctx.href('jobs', lastJob.id), text: lastJob.status }), '). ');
  } else if (last.status === 'fulfilled') {
    parts.push('poll_mirror has not run yet. ');
  }
  if (cron.status === 'fulfilled' && cron.value) {
    parts.push('Scheduled polls: ', h('code', { text: cron.value.schedule }), ', next ', timeEl(cron.value.nextRun, 'not scheduled'), '.');
  } else if (cron.status === 'rejected' && cron.reason?.status === 404) {
    parts.push('No poll_mirror schedule: policies are polled only when a job is started.');
  }
  replace(el, parts);
}

// ------------------------------------------------------------- one job ----

export async function jobView(main, ctx) {
  const { id } = ctx.params;
  ctx.setTitle(`Job ${shortId(id)}`);
  replace(main, h('p', { class: 'muted', text: 'Loading the job…' }));

  let job;
  try {
    job = await api.get(`jobs/${encodeURIComponent(id)}`, { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) return;
    replace(main,
      breadcrumb(ctx),
      h('h1', { text: `Job ${shortId(id)}` }),
      h('p', { class: 'alert alert-error', role: 'alert', text: e.status === 404 || (e.status === 403 && !ctx.session.account?.isAdmin) ? 'This job does not exist (it may have been deleted), or you have no access to it.' : e.message }));
    return;
  }

  const statusEl = h('span', { class: 'job-status', role: 'status' });
  const facts = h('dl', { class: 'facts' });
  const cancelButton = h('button', { type: 'button', class: 'button button-danger', text: 'Cancel job' });
  const alert = alertArea();
  const progressBar = h('progress', { max: '1', value: '0', 'aria-labelledby': 'progress-text' });
  // Updated every second while the job runs: not announced each time.
  const progressText = h('p', { id: 'progress-text', 'aria-live': 'off' });
  const progress = h('div', { class: 'progress', hidden: true }, progressText, progressBar);
  const log = h('div', { class: 'log', role: 'log', tabindex: '0', 'aria-label': 'Job log' });
  const logNote = h('p', { class: 'muted small' });
  replace(main,
    breadcrumb(ctx, shortId(id)),
    h('div', { class: 'page-head' },
      h('h1', {}, 'Job ', h('span', { class: 'mono', text: shortId(id) })),
      statusEl,
      h('div', { class: 'page-actions' }, cancelButton)),
    alert,
    facts,
    progress,
    h('div', { class: 'section-head' }, h('h2', { text: 'Log' }), logNote),
    log);

  cancelButton.addEventListener('click', async () => {
    hideAlert(alert);
    try {
      await whileBusy(cancelButton, 'Canceling…', () => api.post(`jobs/${encodeURIComponent(id)}/cancel`, undefined, { signal: ctx.signal }));
      showAlert(alert, 'Cancel requested: the job stops at its next check.', 'info');
      cancelButton.disabled = true;
    } catch (e) {
      if (!ctx.signal.aborted) showAlert(alert, `Cannot cancel the job: ${e.message}`);
    }
  });

  const lines = [];
  function renderJob() {
    replace(statusEl, badge(job.status, statusKind(job.status), `Status: ${job.status}`),
      job.cancelRequested && !FINAL.has(job.status) ? [' ', badge('cancel requested', 'warn')] : null);
    statusEl.dataset.status = job.status;
    replace(facts,
      h('div', {}, h('dt', { text: 'Action' }), h('dd', { text: job.action })),
      h('div', {}, h('dt', { text: 'Parameters' }), h('dd', { text: parametersText(job.parameters) })),
      h('div', {}, h('dt', { text: 'Scheduled' }), h('dd', {}, timeEl(job.scheduledAt))),
      h('div', {}, h('dt', { text: 'Last updated' }), h('dd', {}, timeEl(job.lastUpdated))),
      job.heartbeatAt ? h('div', {}, h('dt', { text: 'Last heartbeat' }), h('dd', {}, timeEl(job.heartbeatAt))) : null,
      h('div', { class: 'wide' }, h('dt', { text: 'Job ID' }), h('dd', {}, h('code', { text: job.id }))));
    cancelButton.hidden = FINAL.has(job.status);
    if (job.cancelRequested) cancelButton.disabled = true;
    logNote.textContent = FINAL.has(job.status) ? `${lines.length} lines` : 'Following the log while the job runs…';
    if (job.action === 'poll_mirror') {
      const p = describeProgress(job, lines);
      progress.hidden = !p.seen && FINAL.has(job.status);
      progress.dataset.bytesCopied = String(p.bytes);
      if (p.max > 0) {
        progressBar.max = p.max;
        progressBar.value = p.value;
      } else {
        progressBar.removeAttribute('value'); // indeterminate
      }
      if (p.text) progressText.textContent = p.text;
    }
  }

  function appendLines(newLines) {
    if (newLines.length === 0) return;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    for (const line of newLines) {
      lines.push(line);
      log.append(h('div', { class: 'log-line' },
        h('span', { class: 'ln', 'aria-hidden': 'true', text: String(line.lineNum) }),
        h('span', { class: 'text', text: line.data })));
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  renderJob();
  const signal = ctx.signal;
  const jobPath = `jobs/${encodeURIComponent(id)}`;
  const networkTrouble = (e) => {
    showAlert(alert, `Cannot refresh the job: ${e.message}. Retrying…`);
    alert.dataset.network = '1';
  };
  async function refreshJob() {
    job = await api.get(jobPath, { signal });
    renderJob();
  }

  // The status: read every second until the job has finished.
  async function followStatus() {
    while (!FINAL.has(job.status)) {
      await sleep(1000, signal);
      try {
        await refreshJob();
        hideAlertIfNetwork(alert);
      } catch (e) {
        if (signal.aborted) return;
        networkTrouble(e);
      }
    }
  }

  // The log: followed with `?stream=true` while the job runs (lines arrive
  // as the worker flushes them), or read every second from a server that
  // cannot stream; once the job has finished, one last read from the last
  // line seen gets the rest.
  async function followLog() {
    let canStream = true;
    for (;;) {
      const finalBefore = FINAL.has(job.status);
      try {
        if (canStream && !finalBefore) {
          await api.stream(`${jobPath}/logs`, { query: { stream: true, offset: lines.length }, signal }, (batch) => {
            appendLines(batch);
            renderJob();
          });
          await refreshJob();
        } else {
          appendLines(await api.get(`${jobPath}/logs`, { query: { offset: lines.length }, signal }) ?? []);
          renderJob();
        }
        hideAlertIfNetwork(alert);
      } catch (e) {
        if (signal.aborted) return;
        if (canStream && e.status === 400 && e.field === 'stream') {
          canStream = false;
          continue;
        }
        networkTrouble(e);
      }
      if (finalBefore) return;
      if (!canStream || !FINAL.has(job.status)) await sleep(1000, signal);
    }
  }

  try {
    await Promise.all([followStatus(), followLog()]);
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  }
  if (lines.length === 0) replace(log, h('p', { class: 'muted', text: 'This job wrote no log lines.' }));
  renderJob();
}

/**
 * Where a job page sits: under Jobs for a server administrator, else under
 * the repository it was opened from (`?repository=namespace/name`).
 */
function breadcrumb(ctx, last) {
  const parts = [];
  if (ctx.session.account?.isAdmin) {
    parts.push(h('a', { href: '#/jobs', text: 'Jobs' }));
  } else {
    parts.push(h('a', { href: '#/repositories', text: 'Repositories' }));
    const [namespace, ...rest] = (ctx.query.get('repository') ?? '').split('/');
    if (namespace && rest.length) {
      const name = rest.join('/');
      parts.push(' / ', h('a', { href: ctx.href('repositories', namespace, name, 'mirrors'), text: `${namespace}/${name}` }));
    }
  }
  if (last) parts.push(' / ', last);
  return h('p', { class: 'breadcrumb' }, parts);
}

function hideAlertIfNetwork(alert) {
  if (alert.dataset.network) {
    delete alert.dataset.network;
    hideAlert(alert);
  }
}
