// A repository's Webhooks tab: the hooks on the repository
// (`/repositories/{ns}/{repo}/webhooks`), a form to add one (with a test
// send first if wanted), delete, and each hook's recent deliveries
// (`/webhooks/{id}/deliveries`). Repository administrators only: the API
// answers 403 to others, so they are told so and nothing is requested.

import * as api from '../api.js';
import { badge, h, replace, timeEl } from '../dom.js';
import { alertArea, checkbox, clearErrors, field, hideAlert, showAlert, showError, whileBusy } from '../forms.js';

/** The event types, in DTR's order: `[value, label]`. */
export const EVENT_TYPES = [
  ['TAG_PUSH', 'Tag pushed'],
  ['TAG_DELETE', 'Tag deleted'],
  ['MANIFEST_PUSH', 'Manifest pushed'],
  ['MANIFEST_DELETE', 'Manifest deleted'],
  ['REPO_EVENT', 'Repository created or deleted'],
  ['POLL_MIRRORING', 'Tag mirrored in (poll)'],
  ['PUSH_MIRRORING', 'Tag pushed out (push mirroring)'],
];

const typeLabel = (type) => EVENT_TYPES.find(([v]) => v === type)?.[1] ?? type;

/** The badge of a delivery's status. */
function deliveryBadge(status) {
  const kind = status === 'delivered' ? 'ok' : status === 'failed' ? 'bad' : 'busy';
  return badge(status, kind);
}

export async function webhooksTab(panel, ctx, { namespace, name, repo }) {
  const full = `${namespace}/${name}`;
  const heading = h('h2', { id: 'tab-title-webhooks', text: 'Webhooks' });
  if (repo.accessLevel !== 'admin') {
    replace(panel, heading,
      h('p', { class: 'muted', text: 'You need admin access to this repository to see and change its webhooks.' }));
    return;
  }
  const base = `${api.repoPath(namespace, name)}/webhooks`;
  const notice = h('div', { class: 'alert', role: 'status', hidden: true });
  const listArea = h('div', { class: 'webhooks-list', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading…' }));
  const logArea = h('section', { class: 'webhook-deliveries', 'aria-labelledby': 'webhook-log-title', hidden: true });
  const say = (message, kind = 'success') => showAlert(notice, message, kind);

  // ------------------------------------------------------------ form --
  const fields = {
    type: field({ label: 'Event', name: 'type', control: 'select', options: EVENT_TYPES, value: 'TAG_PUSH' }),
    endpoint: field({ label: 'Endpoint URL', name: 'endpoint', type: 'url', required: true, placeholder: 'https://ci.example.com/hooks/registry', autocapitalize: 'none', spellcheck: 'false' }),
    secret: field({ label: 'Secret', name: 'secret', type: 'password', autocomplete: 'new-password', hint: 'Deliveries are signed with it (X-Regmirror-Signature); it is never shown again.' }),
    tlsCert: field({ label: 'CA certificate (PEM)', name: 'tlsCert', control: 'textarea', rows: 3, hint: 'Only for an endpoint whose certificate the system does not trust.' }),
    skipTLSVerification: checkbox({ label: 'Skip TLS verification', name: 'skipTLSVerification' }),
  };
  const formAlert = alertArea();
  const add = h('button', { type: 'submit', class: 'button button-primary', text: 'Add webhook' });
  const test = h('button', { type: 'button', class: 'button', text: 'Send a test' });
  const form = h('form', { class: 'webhook-form', 'aria-label': 'Add a webhook', novalidate: true },
    h('h3', { text: 'Add a webhook' }),
    formAlert,
    fields.type.el, fields.endpoint.el, fields.secret.el, fields.tlsCert.el, fields.skipTLSVerification.el,
    h('div', { class: 'form-actions' }, add, test));

  const formBody = () => ({
    type: fields.type.input.value,
    key: full,
    endpoint: fields.endpoint.input.value.trim(),
    secret: fields.secret.input.value || undefined,
    tlsCert: fields.tlsCert.input.value,
    skipTLSVerification: fields.skipTLSVerification.input.checked,
  });
  const missingEndpoint = () => {
    if (fields.endpoint.input.value.trim()) return false;
    showError(fields, formAlert, new api.ApiError({ code: 'REQUIRED', message: 'Enter the endpoint URL.', detail: { field: 'endpoint', reason: 'Enter the endpoint URL.' } }));
    return true;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(formAlert);
    if (missingEndpoint()) return;
    let hook;
    try {
      hook = await whileBusy(add, 'Adding…', () => api.post('webhooks', formBody()));
    } catch (e) {
      showError(fields, formAlert, e);
      return;
    }
    clearErrors(fields);
    fields.endpoint.input.value = '';
    fields.secret.input.value = '';
    say(`Added a ${typeLabel(hook.type).toLowerCase()} webhook to ${hook.endpoint}.`);
    await load();
  });

  test.addEventListener('click', async () => {
    hideAlert(formAlert);
    if (missingEndpoint()) return;
    let result;
    try {
      result = await whileBusy(test, 'Sending…', () => api.post('webhooks/test', formBody()));
    } catch (e) {
      showError(fields, formAlert, e);
      return;
    }
    clearErrors(fields);
    if (result.delivered) showAlert(formAlert, `The endpoint accepted the sample (HTTP ${result.statusCode}).`, 'success');
    else showAlert(formAlert, `The endpoint did not accept the sample: ${result.error ?? `HTTP ${result.statusCode}`}`);
  });

  replace(panel,
    heading,
    h('p', { class: 'muted', text: `Endpoints told when something happens in ${full}, in DTR's webhook format.` }),
    notice,
    listArea,
    logArea,
    form);

  // ------------------------------------------------------------ list --
  async function showLog(hook) {
    logArea.hidden = false;
    replace(logArea, h('h3', { id: 'webhook-log-title', text: `Recent deliveries to ${hook.endpoint}` }), h('p', { class: 'muted', text: 'Loading…' }));
    let log;
    try {
      log = await api.get(`webhooks/${encodeURIComponent(hook.id)}/deliveries`, { query: { pageSize: 50 }, signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      replace(logArea, h('h3', { id: 'webhook-log-title', text: 'Recent deliveries' }),
        h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot read the deliveries: ${e.message}` }));
      return;
    }
    const rows = (Array.isArray(log) ? log : []).map((d) => h('tr', { dataset: { delivery: d.id } },
      h('td', {}, timeEl(d.createdAt)),
      h('td', { text: typeLabel(d.type) }),
      h('td', {}, deliveryBadge(d.status)),
      h('td', { class: 'num', text: String(d.attempts) }),
      h('td', { class: 'num', text: d.statusCode == null ? '—' : String(d.statusCode) }),
      h('td', { class: 'error-text', text: d.error ?? '' })));
    replace(logArea,
      h('h3', { id: 'webhook-log-title', text: `Recent deliveries to ${hook.endpoint}` }),
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table webhook-deliveries-table' },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'When' }),
            h('th', { scope: 'col', text: 'Event' }),
            h('th', { scope: 'col', text: 'Status' }),
            h('th', { scope: 'col', class: 'num', text: 'Attempts' }),
            h('th', { scope: 'col', class: 'num', text: 'Response' }),
            h('th', { scope: 'col', text: 'Last error' }))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'Nothing delivered yet.' }));
  }

  async function load() {
    let hooks;
    try {
      hooks = await api.getAll(base, { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      listArea.removeAttribute('aria-busy');
      replace(listArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the webhooks: ${e.message}` }));
      return;
    }
    listArea.removeAttribute('aria-busy');
    const rowAlert = alertArea('alert-inline');
    const rows = hooks.map((hook) => {
      const remove = h('button', { type: 'button', class: 'button button-danger button-small', text: 'Delete', 'aria-label': `Delete the webhook to ${hook.endpoint}` });
      remove.addEventListener('click', async () => {
        hideAlert(rowAlert);
        try {
          await whileBusy(remove, null, () => api.del(`webhooks/${encodeURIComponent(hook.id)}`));
        } catch (e) {
          showAlert(rowAlert, `Cannot delete the webhook: ${e.message}`);
          return;
        }
        say(`Deleted the webhook to ${hook.endpoint}.`);
        logArea.hidden = true;
        await load();
      });
      const deliveries = h('button', { type: 'button', class: 'button button-small', text: 'Deliveries', 'aria-label': `Recent deliveries to ${hook.endpoint}` });
      deliveries.addEventListener('click', () => showLog(hook));
      return h('tr', { dataset: { webhook: hook.id } },
        h('td', { text: typeLabel(hook.type) }),
        h('th', { scope: 'row', class: 'endpoint', text: hook.endpoint }),
        h('td', {}, hook.inactive ? badge('inactive', 'idle') : badge('active', 'ok'), hook.hasSecret ? ' ' : null, hook.hasSecret ? badge('signed', 'idle') : null),
        h('td', {}, timeEl(hook.lastSuccessfulAt)),
        h('td', { class: 'row-actions' }, deliveries, ' ', remove));
    });
    replace(listArea,
      hooks.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table webhooks-table' },
          h('caption', { class: 'visually-hidden', text: `Webhooks of ${full}` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Event' }),
            h('th', { scope: 'col', text: 'Endpoint' }),
            h('th', { scope: 'col', text: 'State' }),
            h('th', { scope: 'col', text: 'Last delivered' }),
            h('th', { scope: 'col', class: 'row-actions', text: 'Actions' }))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'No webhook on this repository yet.' }),
      rowAlert);
  }

  await load();
}
