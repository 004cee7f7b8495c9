// Repositories: the ones the user can see, with visibility, tag count and
// the mirror that feeds them; and a form to create one.

import * as api from '../api.js';
import { badge, eachLimited, h, remoteName, replace } from '../dom.js';
import { alertArea, field, hideAlert, showError, whileBusy } from '../forms.js';

const PAGE_SIZE = 50;

export async function repositoriesView(main, ctx) {
  ctx.setTitle('Repositories');
  const { signal } = ctx;
  const pageStart = ctx.query.get('pageStart') ?? '';

  const toggle = h('button', {
    type: 'button',
    class: 'button button-primary',
    'aria-expanded': 'false',
    'aria-controls': 'new-repository',
    text: 'New repository',
  });
  const panel = createPanel(ctx, () => closePanel());
  panel.hidden = true;
  function openPanel() {
    panel.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    panel.querySelector('input[name="name"]').focus();
  }
  function closePanel() {
    panel.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    toggle.focus();
  }
  toggle.addEventListener('click', () => (panel.hidden ? openPanel() : closePanel()));

  const listArea = h('div', { class: 'list-area', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading repositories…' }));
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { text: 'Repositories' }),
      h('div', { class: 'page-actions' }, toggle)),
    panel,
    listArea);
  if (ctx.query.get('new') === '1') openPanel();

  let result;
  try {
    result = await api.send('GET', 'repositories', { query: { pageSize: PAGE_SIZE, pageStart, count: true }, signal });
  } catch (e) {
    if (signal.aborted) return;
    replace(listArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the repositories: ${e.message}` }));
    listArea.removeAttribute('aria-busy');
    return;
  }
  const repos = result.data?.repositories ?? [];
  const next = result.headers.get('x-next-page-start');
  const total = result.headers.get('x-resource-count');
  listArea.removeAttribute('aria-busy');

  if (repos.length === 0 && !pageStart) {
    replace(listArea, h('div', { class: 'empty' },
      h('p', { text: 'No repositories yet.' }),
      h('p', { class: 'muted', text: 'Create one, then add a mirror policy on its Mirrors tab to fill it from another registry.' })));
    return;
  }

  const rows = repos.map((repo) => {
    const full = `${repo.namespace}/${repo.name}`;
    const tagsCell = h('td', { class: 'num' }, h('span', { class: 'muted', text: '…', 'aria-label': 'loading' }));
    const mirrorCell = h('td', {}, h('span', { class: 'muted', text: '…', 'aria-label': 'loading' }));
    const row = h('tr', { dataset: { repository: full } },
      h('th', { scope: 'row' },
        h('a', { href: ctx.href('repositories', repo.namespace, repo.name), class: 'repo-link' },
          h('span', { class: 'repo-ns', text: `${repo.namespace}/` }), repo.name),
        repo.shortDescription ? h('div', { class: 'muted small', text: repo.shortDescription }) : null),
      h('td', {}, badge(repo.visibility, repo.visibility === 'public' ? 'warn' : 'idle')),
      tagsCell,
      mirrorCell);
    return { repo, row, tagsCell, mirrorCell };
  });

  const table = h('table', { class: 'table repositories-table' },
    h('caption', { class: 'visually-hidden', text: 'Repositories you can see' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Name' }),
      h('th', { scope: 'col', text: 'Visibility' }),
      h('th', { scope: 'col', class: 'num', text: 'Tags' }),
      h('th', { scope: 'col', text: 'Mirrored' }))),
    h('tbody', {}, rows.map((r) => r.row)));

  const pager = h('div', { class: 'pager' },
    total ? h('span', { class: 'muted', text: `${total} ${total === '1' ? 'repository' : 'repositories'}` }) : null,
    pageStart ? h('a', { class: 'button button-quiet', href: '#/repositories', text: 'First page' }) : null,
    next ? h('a', { class: 'button button-quiet', href: `#/repositories?pageStart=${encodeURIComponent(next)}`, text: 'Next page' }) : null);
  replace(listArea, h('div', { class: 'table-wrap' }, table), pager);

  // Tag counts and mirrors are per repository in the API: fill them in as
  // they arrive, a few requests at a time.
  await eachLimited(rows, 4, async ({ repo, tagsCell, mirrorCell }) => {
    const base = api.repoPath(repo.namespace, repo.name);
    const [tags, policies] = await Promise.allSettled([
      api.get(`${base}/tags`, { signal }),
      api.get(`${base}/pollMirroringPolicies`, { signal }),
    ]);
    if (signal.aborted) return;
    replace(tagsCell, tags.status === 'fulfilled' ? String(tags.value.length) : h('span', { class: 'muted', title: tags.reason?.message, text: '?' }));
    if (policies.status !== 'fulfilled') {
      replace(mirrorCell, h('span', { class: 'muted', title: policies.reason?.message, text: '?' }));
    } else if (policies.value.length === 0) {
      replace(mirrorCell, h('span', { class: 'muted', text: 'No' }));
    } else {
      const [first, ...more] = policies.value;
      const enabled = policies.value.some((p) => p.enabled);
      replace(mirrorCell,
        h('a', { href: ctx.href('repositories', repo.namespace, repo.name, 'mirrors') },
          `From ${remoteName(first.remoteHost, first.remoteRepository)}`),
        more.length ? ` and ${more.length} more` : '',
        enabled ? null : [' ', badge('paused', 'warn')]);
    }
  });
}

function createPanel(ctx, onCancel) {
  const { session } = ctx;
  const fields = {
    namespace: field({
      label: 'Namespace',
      name: 'namespace',
      value: session.username,
      required: true,
      autocapitalize: 'none',
      spellcheck: 'false',
      hint: session.account?.isAdmin ? 'Any namespace (administrator).' : 'Your own namespace, unless an administrator lets you create elsewhere.',
    }),
    name: field({ label: 'Name', name: 'name', required: true, autocapitalize: 'none', spellcheck: 'false', hint: 'Lower-case letters, digits and . _ -' }),
    visibility: field({
      label: 'Visibility',
      name: 'visibility',
      control: 'select',
      options: [['private', 'Private: only people with access'], ['public', 'Public: everyone can pull']],
      value: 'private',
    }),
    shortDescription: field({ label: 'Description (optional)', name: 'shortDescription', maxlength: '140' }),
  };
  const alert = alertArea();
  const create = h('button', { type: 'submit', class: 'button button-primary', text: 'Create' });
  const form = h('form', { class: 'panel form-grid', id: 'new-repository', 'aria-labelledby': 'new-repository-title', novalidate: true },
    h('h2', { id: 'new-repository-title', text: 'New repository' }),
    alert,
    h('div', { class: 'field-row' }, fields.namespace.el, h('span', { class: 'slash', 'aria-hidden': 'true', text: '/' }), fields.name.el),
    fields.visibility.el,
    fields.shortDescription.el,
    h('div', { class: 'actions' },
      create,
      h('button', { type: 'button', class: 'button', onclick: onCancel, text: 'Cancel' })));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(alert);
    const namespace = fields.namespace.input.value.trim();
    const name = fields.name.input.value.trim();
    const missing = !namespace ? ['namespace', 'Enter a namespace.'] : (!name ? ['name', 'Enter a name.'] : null);
    if (missing) {
      showError(fields, alert, new api.ApiError({ code: 'REQUIRED', message: missing[1], detail: { field: missing[0], reason: missing[1] } }));
      return;
    }
    try {
      await whileBusy(create, 'Creating…', () => api.post(`repositories/${encodeURIComponent(namespace)}`, {
        name,
        visibility: fields.visibility.input.value,
        shortDescription: fields.shortDescription.input.value.trim(),
      }));
      ctx.navigate(`repositories/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    } catch (e) {
      if (e.code === 'REPOSITORY_EXISTS') e.detail = { field: 'name', reason: e.message };
      showError(fields, alert, e);
    }
  });
  return form;
}
