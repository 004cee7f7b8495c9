// Repositories: the ones the user can see, with visibility, tag count and
// whether a mirror feeds them (all in the one list answer); and a form to
// create one.

import * as api from '../api.js';
import { badge, h, replace } from '../dom.js';
import { alertArea, field, hideAlert, showError, whileBusy } from '../forms.js';

const PAGE_SIZE = 50;

/** The caller's access level, shown when it is less than admin. */
const ACCESS_LABELS = { 'read-only': 'read only', 'read-write': 'read & write' };

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
    const level = ACCESS_LABELS[repo.accessLevel];
    return h('tr', { dataset: { repository: full } },
      h('th', { scope: 'row' },
        h('a', { href: ctx.href('repositories', repo.namespace, repo.name), class: 'repo-link' },
          h('span', { class: 'repo-ns', text: `${repo.namespace}/` }), repo.name),
        repo.shortDescription ? h('div', { class: 'muted small', text: repo.shortDescription }) : null),
      h('td', {}, badge(repo.visibility, repo.visibility === 'public' ? 'warn' : 'idle'),
        level ? [' ', badge(level, 'idle', `Your access: ${level}`)] : null),
      h('td', { class: 'num tag-count', text: String(repo.tagCount ?? '—') }),
      h('td', { class: 'mirrored' }, repo.mirrored
        ? h('a', {
          href: ctx.href('repositories', repo.namespace, repo.name, 'mirrors'),
          'aria-label': `Mirrored: see the mirror policies of ${full}`,
          text: 'Mirrored',
        })
        : repo.cachedFrom
          ? badge('Cached', 'idle', `Pull-through cache of ${repo.cachedFrom}: filled when pulled`)
          : h('span', { class: 'muted', text: 'No' })));
  });

  const table = h('table', { class: 'table repositories-table' },
    h('caption', { class: 'visually-hidden', text: 'Repositories you can see' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Name' }),
      h('th', { scope: 'col', text: 'Visibility' }),
      h('th', { scope: 'col', class: 'num', text: 'Tags' }),
      h('th', { scope: 'col', text: 'Mirror' }))),
    h('tbody', {}, rows));

  const pager = h('div', { class: 'pager' },
    total ? h('span', { class: 'muted', text: `${total} ${total === '1' ? 'repository' : 'repositories'}` }) : null,
    pageStart ? h('a', { class: 'button button-quiet', href: '#/repositories', text: 'First page' }) : null,
    next ? h('a', { class: 'button button-quiet', href: `#/repositories?pageStart=${encodeURIComponent(next)}`, text: 'Next page' }) : null);
  replace(listArea, h('div', { class: 'table-wrap' }, table), pager);
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
