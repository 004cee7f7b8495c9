// The "New mirror policy" form (and its edit twin), as in Docker Trusted
// Registry: pull from a Docker Trusted Registry (any registry URL) or Docker
// Hub, credentials, remote namespace / repository, advanced TLS settings;
// Connect (`POST /api/v0/remote/registry`) checks the connection, then Save
// (`?initialEvaluation=false`: mirror tags that appear or move from now on)
// or Save & Apply (`?initialEvaluation=true`: mirror every current tag,
// starting now: the answer's `X-Job-ID` names the job doing it). Tag rules
// (`rules`, see tag-rules.js) go with Connect, which then previews the
// remote tags they match, and with Save.

import * as api from '../api.js';
import { h, uid } from '../dom.js';
import { alertArea, checkbox, clearErrors, field, hideAlert, showError, whileBusy } from '../forms.js';
import { normalRule, previewEl, tagRulesEditor } from './tag-rules.js';

export const DOCKER_HUB_URL = 'https://index.docker.io';

const HUB_HOSTS = ['index.docker.io', 'registry-1.docker.io', 'docker.io', 'registry.hub.docker.com'];

function isHub(host) {
  try {
    return HUB_HOSTS.includes(new URL(host).hostname);
  } catch {
    return false;
  }
}

/** What a failed remote check means, by the error's `detail.kind` (a stable code). */
const CONNECT_SUMMARY = {
  unauthorized: 'The remote registry refused these credentials.',
  denied: 'These credentials may not read the remote repository.',
  not_found: 'The remote repository was not found.',
  tls: 'The TLS connection failed. Add the registry\'s certificate authority under advanced settings, or skip TLS verification.',
  unreachable: 'Cannot reach the remote registry.',
  transient: 'The remote registry is not answering properly right now. Try again later.',
  invalid: 'The remote registry gave an answer this server cannot use.',
};

/**
 * The form. `policy`: the policy to edit, or undefined for a new one.
 * `onSaved(policy, {applied, jobId})` after a successful save (`jobId`:
 * the job Save & Apply started, if any); `onCancel()`.
 */
export function policyForm({ namespace, name, policy, onSaved, onCancel }) {
  const editing = Boolean(policy);
  const titleId = uid('policy-form-title');
  const hub = editing && isHub(policy.remoteHost);
  const [remoteNs, ...remoteRest] = (policy?.remoteRepository ?? '').split('/');

  // --- fields -------------------------------------------------------------
  const directionPull = h('input', { type: 'radio', name: 'direction', id: uid('dir-pull'), value: 'pull', checked: true });
  const directionPush = h('input', { type: 'radio', name: 'direction', id: uid('dir-push'), value: 'push', disabled: true });
  const direction = h('fieldset', { class: 'field radios' },
    h('legend', { text: 'Mirror direction' }),
    h('div', { class: 'check-row' }, directionPull, h('label', { for: directionPull.id, text: 'Pull from remote registry' })),
    h('div', { class: 'check-row' }, directionPush, h('label', { for: directionPush.id, text: 'Push to remote registry (not available on this server)' })));

  const fields = {
    registryType: field({
      label: 'Registry type',
      name: 'registryType',
      control: 'select',
      options: [['dtr', 'Docker Trusted Registry'], ['hub', 'Docker Hub']],
      value: hub ? 'hub' : 'dtr',
    }),
    remoteHost: field({
      label: 'Registry URL',
      name: 'remoteHost',
      type: 'url',
      required: true,
      placeholder: 'https://dtr.example.com',
      value: policy?.remoteHost ?? '',
      spellcheck: 'false',
      autocapitalize: 'none',
      hint: 'The address of the remote registry, with https:// (or http:// for a registry without TLS).',
    }),
    username: field({
      label: 'Username',
      name: 'username',
      autocomplete: 'off',
      value: policy?.username ?? '',
      spellcheck: 'false',
      autocapitalize: 'none',
      hint: 'Leave empty for anonymous access.',
    }),
    password: field({
      label: 'Password or access token',
      name: 'password',
      type: 'password',
      autocomplete: 'new-password',
      hint: editing
        ? 'Leave empty to keep the current one; type a new one to rotate it. It is never shown again.'
        : 'Stored by the server and never shown again.',
    }),
    remoteNamespace: field({
      label: 'Namespace',
      name: 'remoteNamespace',
      required: true,
      value: remoteRest.length ? remoteNs : '',
      spellcheck: 'false',
      autocapitalize: 'none',
    }),
    remoteName: field({
      label: 'Repository name',
      name: 'remoteName',
      required: true,
      value: remoteRest.length ? remoteRest.join('/') : remoteNs,
      spellcheck: 'false',
      autocapitalize: 'none',
    }),
    remoteCA: field({
      label: 'Remote certificate authority',
      name: 'remoteCA',
      control: 'textarea',
      rows: '5',
      spellcheck: 'false',
      placeholder: '-----BEGIN CERTIFICATE-----',
      value: policy?.remoteCA ?? '',
      hint: 'PEM certificates to trust for this registry, in addition to the system\'s.',
    }),
    skipTLS: checkbox({
      label: 'Skip TLS verification',
      name: 'skipTLS',
      checked: Boolean(policy?.skipTLSVerification),
      hint: 'Accepts any certificate: only for testing.',
    }),
  };
  // The API names `remoteRepository` as one field; the form has two inputs.
  const ALIASES = { remoteRepository: 'remoteNamespace', skipTLSVerification: 'skipTLS' };

  const repoGroup = h('fieldset', { class: 'field field-group' },
    h('legend', { text: 'Remote repository' }),
    h('div', { class: 'field-row' },
      fields.remoteNamespace.el,
      h('span', { class: 'slash', 'aria-hidden': 'true', text: '/' }),
      fields.remoteName.el));

  // --- tag rules ------------------------------------------------------------
  const tagRules = tagRulesEditor({
    rules: policy?.rules ?? [],
    onChange: () => {
      updateSaveState();
      updatePreviewState();
    },
  });
  /** The form's fields and the rules' inputs, by the API's field names. */
  const allFields = () => ({ ...fields, ...tagRules.fields() });

  // --- advanced settings ----------------------------------------------------
  const advancedId = uid('advanced');
  const advancedToggle = h('button', {
    type: 'button',
    class: 'button button-link',
    'aria-expanded': 'false',
    'aria-controls': advancedId,
    text: 'Show advanced settings',
  });
  const advanced = h('div', { id: advancedId, class: 'advanced', hidden: true }, fields.remoteCA.el, fields.skipTLS.el);
  function setAdvanced(open) {
    advanced.hidden = !open;
    advancedToggle.setAttribute('aria-expanded', String(open));
    advancedToggle.textContent = open ? 'Hide advanced settings' : 'Show advanced settings';
  }
  advancedToggle.addEventListener('click', () => setAdvanced(advanced.hidden));
  if (policy?.remoteCA || policy?.skipTLSVerification) setAdvanced(true);

  // --- connect ---------------------------------------------------------------
  const connectButton = h('button', { type: 'button', class: 'button', text: 'Connect' });
  const connectResult = h('div', { class: 'connect-result', role: 'status', 'aria-live': 'polite' });
  const formAlert = alertArea();

  const saveHintId = uid('save-hint');
  const saveHint = h('p', { id: saveHintId, class: 'hint', text: editing ? '' : 'Connect first: saving needs a working connection.' });
  const saveButton = h('button', {
    type: 'submit',
    class: editing ? 'button button-primary' : 'button',
    value: 'save',
    text: editing ? 'Save changes' : 'Save',
    'aria-describedby': saveHintId,
  });
  const applyButton = editing ? null : h('button', {
    type: 'submit',
    class: 'button button-primary',
    value: 'apply',
    text: 'Save & Apply',
    'aria-describedby': saveHintId,
  });
  const cancelButton = h('button', { type: 'button', class: 'button button-quiet', text: 'Cancel', onclick: () => onCancel() });

  // The values the last successful Connect checked; Save stays disabled for
  // a new policy until they match the form.
  let connectedWith = null;
  // The rules the shown preview is of, and the note saying it is out of date.
  let previewedRules = null;
  const staleNote = h('p', { class: 'preview-stale', hidden: true, text: 'The tag rules changed since this check: Connect again to see which tags they match.' });
  function updatePreviewState() {
    staleNote.hidden = previewedRules === null || previewedRules === JSON.stringify(tagRules.rules());
  }
  function connectionKey() {
    const v = values();
    return JSON.stringify([v.remoteHost, v.remoteRepository, v.username, v.password, v.remoteCA, v.skipTLSVerification]);
  }
  function updateSaveState() {
    if (editing) return;
    const ok = connectedWith !== null && connectedWith === connectionKey();
    saveButton.disabled = !ok;
    applyButton.disabled = !ok;
    saveHint.hidden = ok;
  }

  function values() {
    const ns = fields.remoteNamespace.input.value.trim();
    const repo = fields.remoteName.input.value.trim();
    return {
      remoteHost: fields.remoteHost.input.value.trim().replace(/\/+$/, ''),
      remoteRepository: ns && repo ? `${ns}/${repo}` : ns || repo,
      username: fields.username.input.value.trim(),
      password: fields.password.input.value,
      remoteCA: fields.remoteCA.input.value.trim() ? fields.remoteCA.input.value : '',
      skipTLSVerification: fields.skipTLS.input.checked,
      rules: tagRules.rules(),
    };
  }

  /** Client-side checks the API would make too, shown the same way. */
  function validate() {
    const v = values();
    const missing = (f, reason) => new api.ApiError({ code: 'REQUIRED', message: reason, detail: { field: f, reason } });
    if (!v.remoteHost) return missing('remoteHost', 'Enter the registry URL.');
    if (!/^https?:\/\//i.test(v.remoteHost)) return missing('remoteHost', 'Start the URL with https:// (or http://).');
    if (!fields.remoteNamespace.input.value.trim()) return missing('remoteNamespace', 'Enter the remote namespace (e.g. library on Docker Hub).');
    if (!fields.remoteName.input.value.trim()) return missing('remoteName', 'Enter the remote repository name.');
    const badRule = tagRules.validate();
    if (badRule) return missing(...badRule);
    return null;
  }

  function showConnectError(err) {
    const shown = err.field ? showError(allFields(), null, err, ALIASES) : null;
    if (shown) {
      if (shown === fields.remoteCA || shown === fields.skipTLS) setAdvanced(true);
      connectResult.replaceChildren();
      return;
    }
    const summary = CONNECT_SUMMARY[err.detail?.kind] ?? 'Cannot connect to the remote registry.';
    connectResult.className = 'connect-result connect-error';
    connectResult.replaceChildren(
      h('p', { class: 'connect-summary' }, h('strong', { text: 'Connection failed. ' }), summary),
      h('p', { class: 'connect-detail', text: err.message }));
    if (err.detail?.kind === 'unauthorized' || err.detail?.kind === 'denied') {
      fields.password.input.setAttribute('aria-invalid', 'true');
    }
  }

  connectButton.addEventListener('click', async () => {
    clearErrors(allFields());
    hideAlert(formAlert);
    connectResult.className = 'connect-result';
    connectResult.replaceChildren();
    previewedRules = null;
    updatePreviewState();
    const invalid = validate();
    if (invalid) {
      showError(allFields(), formAlert, invalid, ALIASES);
      return;
    }
    const v = values();
    const key = connectionKey();
    try {
      const result = await whileBusy(connectButton, 'Connecting…', () => api.post('remote/registry', {
        remoteHost: v.remoteHost,
        remoteRepository: v.remoteRepository,
        username: v.username,
        password: v.password,
        remoteCA: v.remoteCA,
        skipTLSVerification: v.skipTLSVerification,
        // With rules, the answer's `preview` says which remote tags they match.
        ...(v.rules.length ? { rules: v.rules } : {}),
      }));
      connectedWith = key;
      const perm = (ok) => (ok ? 'yes' : 'no');
      const type = result?.registryType === 'dockerhub' ? 'Docker Hub' : 'registry';
      connectResult.className = 'connect-result connect-ok';
      connectResult.replaceChildren(
        h('p', {}, h('strong', { text: 'Connected. ' }), `The ${type} accepts these credentials for ${v.remoteRepository}.`),
        h('ul', { class: 'permissions' },
          h('li', {}, 'Read: ', h('strong', { class: result?.permissions?.read ? 'yes' : 'no', text: perm(result?.permissions?.read) })),
          h('li', {}, 'Write: ', h('strong', { class: result?.permissions?.write ? 'yes' : 'no', text: perm(result?.permissions?.write) }))),
        result?.preview ? previewEl(result.preview) : null,
        staleNote);
      previewedRules = JSON.stringify(v.rules);
      updatePreviewState();
    } catch (e) {
      connectedWith = null;
      showConnectError(e);
    }
    updateSaveState();
  });

  // --- registry type ----------------------------------------------------------
  function applyRegistryType() {
    const hubSelected = fields.registryType.input.value === 'hub';
    fields.remoteHost.el.querySelector('label').textContent = hubSelected ? 'Docker Hub URL' : 'Registry URL';
    if (hubSelected && !fields.remoteHost.input.value.trim()) fields.remoteHost.input.value = DOCKER_HUB_URL;
    if (!hubSelected && fields.remoteHost.input.value.trim() === DOCKER_HUB_URL) fields.remoteHost.input.value = '';
    fields.remoteHost.el.querySelector('.hint').textContent = hubSelected
      ? `Defaults to ${DOCKER_HUB_URL}. Official images are in the namespace "library".`
      : 'The address of the remote registry, with https:// (or http:// for a registry without TLS).';
    fields.remoteNamespace.input.placeholder = hubSelected ? 'library' : '';
  }
  fields.registryType.input.addEventListener('change', () => {
    applyRegistryType();
    updateSaveState();
  });
  applyRegistryType();

  // --- the form -----------------------------------------------------------------
  const form = h('form', { class: 'panel policy-form', 'aria-labelledby': titleId, novalidate: true },
    h('h3', { id: titleId, text: editing ? 'Edit mirror policy' : 'New mirror policy' }),
    h('p', { class: 'muted' }, editing
      ? `Changes to how the remote is reached are checked before they are saved.`
      : `Mirror a repository of another registry into ${namespace}/${name}.`),
    formAlert,
    direction,
    fields.registryType.el,
    fields.remoteHost.el,
    h('div', { class: 'field-row credentials' }, fields.username.el, fields.password.el),
    repoGroup,
    tagRules.el,
    h('div', { class: 'advanced-toggle' }, advancedToggle),
    advanced,
    h('div', { class: 'connect-row' }, connectButton, connectResult),
    h('div', { class: 'actions' }, saveButton, applyButton, cancelButton),
    saveHint);
  for (const type of ['input', 'change']) {
    form.addEventListener(type, () => {
      updateSaveState();
      updatePreviewState();
    });
  }
  updateSaveState();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submitter = event.submitter ?? saveButton;
    const apply = submitter.value === 'apply';
    clearErrors(allFields());
    hideAlert(formAlert);
    const invalid = validate();
    if (invalid) {
      showError(allFields(), formAlert, invalid, ALIASES);
      return;
    }
    const v = values();
    const base = `${api.repoPath(namespace, name)}/pollMirroringPolicies`;
    try {
      let saved;
      let jobId = null;
      if (editing) {
        // Only what changed: the server checks the remote again when how
        // it is reached changes, and an empty password keeps the stored
        // one (unless the policy becomes anonymous).
        const body = {};
        for (const key of ['remoteHost', 'remoteRepository', 'username', 'remoteCA', 'skipTLSVerification']) {
          if (v[key] !== (policy[key] ?? (key === 'skipTLSVerification' ? false : ''))) body[key] = v[key];
        }
        if (v.password || (!v.username && policy.username)) body.password = v.password;
        // The rules, when they changed (an empty list removes them all).
        if (JSON.stringify(v.rules) !== JSON.stringify((policy.rules ?? []).map(normalRule))) body.rules = v.rules;
        saved = await whileBusy(saveButton, 'Saving…', () => api.put(`${base}/${encodeURIComponent(policy.id)}`, body));
      } else {
        // Save & Apply: the server evaluates the new policy at once and
        // names the job in `X-Job-ID`. No rules: every tag.
        const { rules, ...rest } = v;
        const answer = await whileBusy(submitter, 'Saving…', () => api.send('POST', base, {
          body: { ...rest, ...(rules.length ? { rules } : {}), enabled: true },
          query: { initialEvaluation: apply },
        }));
        saved = answer.data;
        jobId = answer.headers.get('x-job-id');
      }
      onSaved(saved, { applied: apply, jobId });
    } catch (e) {
      if (!e.field && e.code === 'REMOTE_REGISTRY_INVALID_PERMISSIONS') {
        showConnectError(e);
        connectedWith = null;
        updateSaveState();
        connectButton.focus();
        return;
      }
      const shown = showError(allFields(), formAlert, e, ALIASES);
      if (shown === fields.remoteCA || shown === fields.skipTLS) setAdvanced(true);
    }
  });

  return { form, focus: () => fields.registryType.input.focus() };
}

