// The "New mirror policy" form (and its edit twin), as in Docker Trusted
// Registry: pull from a Docker Trusted Registry (any registry URL) or Docker
// Hub, credentials, remote namespace / repository, advanced TLS settings;
// Connect (`POST /api/v0/remote/registry`) checks the connection, then Save
// (`?initialEvaluation=false`: mirror tags that appear or move from now on)
// or Save & Apply (`?initialEvaluation=true`: mirror every current tag,
// starting now: the answer's `X-Job-ID` names the job doing it). Tag rules
// (`rules`, see tag-rules.js) go with Connect, which then previews the
// remote tags they match, and with Save. Which platforms and referrers a
// poll copies, and whether it deletes tags the remote dropped, go with Save
// (`policyContentEditor` below).
//
// "Push to remote registry" makes it a push mirroring policy's form
// (`…/pushMirroringPolicies`): the same remote fields and tag rules (which
// local tags to push), the remote tag's name (`tagTemplate`), and a Connect
// that needs *write* access (a remote repository that does not exist yet
// is fine: the first push creates it, and saving checks the push access).

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
  denied_push: 'These credentials may not push to the remote repository.',
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
  const editingPush = editing && policy.mirroringType === 'push';
  const titleId = uid('policy-form-title');
  const hub = editing && isHub(policy.remoteHost);
  const [remoteNs, ...remoteRest] = (policy?.remoteRepository ?? '').split('/');

  // --- fields -------------------------------------------------------------
  // An edited policy keeps its kind.
  const directionPull = h('input', { type: 'radio', name: 'direction', id: uid('dir-pull'), value: 'pull', checked: !editingPush, disabled: editing });
  const directionPush = h('input', { type: 'radio', name: 'direction', id: uid('dir-push'), value: 'push', checked: editingPush, disabled: editing });
  const isPush = () => directionPush.checked;
  const direction = h('fieldset', { class: 'field radios' },
    h('legend', { text: 'Mirror direction' }),
    h('div', { class: 'check-row' }, directionPull, h('label', { for: directionPull.id, text: 'Pull from remote registry' })),
    h('div', { class: 'check-row' }, directionPush, h('label', { for: directionPush.id, text: 'Push to remote registry' })));

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
    tagTemplate: field({
      label: 'Remote tag',
      name: 'tagTemplate',
      value: policy?.tagTemplate ?? '%n',
      spellcheck: 'false',
      autocapitalize: 'none',
      autocomplete: 'off',
      hint: '%n the tag, %D the digest\'s first 12 hex characters, %Y %y %m %d %j %H %M %S %s %b the push\'s UTC time (as strftime). Default: %n.',
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
  // --- platforms, referrers, deletion -----------------------------------------
  const content = policyContentEditor({ policy, onChange: () => updateSaveState() });

  /** The form's fields, the rules' and the content settings' inputs, by the API's field names. */
  const allFields = () => ({ ...fields, ...tagRules.fields(), ...content.fields() });

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
    return JSON.stringify([isPush(), v.remoteHost, v.remoteRepository, v.username, v.password, v.remoteCA, v.skipTLSVerification]);
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
      tagTemplate: fields.tagTemplate.input.value.trim(),
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
    const badContent = isPush() ? null : content.validate();
    if (badContent) return missing(...badContent);
    return null;
  }

  /** `showError` for the whole form, first showing the input the error names. */
  function showFormError(err, area = formAlert) {
    if (err.field) content.reveal(err.field);
    const shown = showError(allFields(), area, err, ALIASES);
    if (shown === fields.remoteCA || shown === fields.skipTLS) {
      setAdvanced(true);
      shown.input.focus();
    }
    return shown;
  }

  function showConnectError(err) {
    const shown = err.field ? showFormError(err, null) : null;
    if (shown) {
      connectResult.replaceChildren();
      return;
    }
    const kind = isPush() && err.detail?.kind === 'denied' ? 'denied_push' : err.detail?.kind;
    const summary = CONNECT_SUMMARY[kind] ?? 'Cannot connect to the remote registry.';
    connectResult.className = 'connect-result connect-error';
    connectResult.replaceChildren(
      h('p', { class: 'connect-summary' }, h('strong', { text: 'Connection failed. ' }), summary),
      h('p', { class: 'connect-detail', text: err.message }));
    if (['unauthorized', 'denied', 'denied_push'].includes(err.detail?.kind)) {
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
      showFormError(invalid);
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
        // With rules, the answer's `preview` says which remote tags they
        // match (for a pull: a push's rules pick local tags).
        ...(v.rules.length && !isPush() ? { rules: v.rules } : {}),
      }));
      if (isPush() && !result?.permissions?.write) {
        connectedWith = null;
        showConnectError({ detail: { kind: 'denied_push' }, message: `The remote registry accepts these credentials for reading ${v.remoteRepository}, not for pushing to it.` });
        updateSaveState();
        return;
      }
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
      if (!isPush()) previewedRules = JSON.stringify(v.rules);
      updatePreviewState();
    } catch (e) {
      if (isPush() && e.detail?.kind === 'not_found' && !e.field) {
        // Nothing to read yet: the first push creates it; Save checks
        // that these credentials may push.
        connectedWith = key;
        connectResult.className = 'connect-result connect-ok';
        connectResult.replaceChildren(
          h('p', {}, h('strong', { text: 'Connected. ' }), `${v.remoteRepository} does not exist on the remote registry yet: the first push creates it. Saving checks that these credentials may push.`));
      } else {
        connectedWith = null;
        showConnectError(e);
      }
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

  // --- direction ------------------------------------------------------------------
  const intro = h('p', { class: 'muted' });
  /** Shows what the chosen direction uses: the content settings pull, the remote tag push. */
  function applyDirection() {
    const push = isPush();
    content.el.hidden = push;
    fields.tagTemplate.el.hidden = !push;
    if (editing) intro.textContent = 'Changes to how the remote is reached are checked before they are saved.';
    else if (push) intro.textContent = `Push the tags of ${namespace}/${name} to a repository of another registry, as they are pushed or mirrored here.`;
    else intro.textContent = `Mirror a repository of another registry into ${namespace}/${name}.`;
    connectResult.className = 'connect-result';
    connectResult.replaceChildren();
    previewedRules = null;
  }
  for (const radio of [directionPull, directionPush]) {
    radio.addEventListener('change', () => {
      applyDirection();
      updatePreviewState();
    });
  }
  applyDirection();

  // --- the form -----------------------------------------------------------------
  const form = h('form', { class: 'panel policy-form', 'aria-labelledby': titleId, novalidate: true },
    h('h3', { id: titleId, text: editing ? 'Edit mirror policy' : 'New mirror policy' }),
    intro,
    formAlert,
    direction,
    fields.registryType.el,
    fields.remoteHost.el,
    h('div', { class: 'field-row credentials' }, fields.username.el, fields.password.el),
    repoGroup,
    tagRules.el,
    fields.tagTemplate.el,
    content.el,
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
      showFormError(invalid);
      return;
    }
    const v = values();
    const push = isPush();
    const base = `${api.repoPath(namespace, name)}/${push ? 'push' : 'poll'}MirroringPolicies`;
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
        if (push) {
          // The remote tag, when it changed (empty: the default, %n).
          if ((v.tagTemplate || '%n') !== policy.tagTemplate) body.tagTemplate = v.tagTemplate || '%n';
        } else {
          // Platforms, referrers and deletion settings, those that changed.
          Object.assign(body, content.changes());
        }
        saved = await whileBusy(saveButton, 'Saving…', () => api.put(`${base}/${encodeURIComponent(policy.id)}`, body));
      } else {
        // Save & Apply: the server evaluates the new policy at once and
        // names the job in `X-Job-ID`. No rules: every tag. The content
        // settings only where they differ from the defaults.
        // A push policy: its remote tag instead of the content settings.
        const { rules, tagTemplate, ...rest } = v;
        const extra = push ? (tagTemplate ? { tagTemplate } : {}) : content.changes();
        const answer = await whileBusy(submitter, 'Saving…', () => api.send('POST', base, {
          body: { ...rest, ...(rules.length ? { rules } : {}), ...extra, enabled: true },
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
      showFormError(e);
    }
  });

  return { form, focus: () => fields.registryType.input.focus() };
}

// ---------------------------------------------------------------------------
// What a policy copies besides the tags its rules pick, and what it
// deletes, as the form edits it and the Mirrors tab shows it:
//
// - `platforms` (`os/architecture[/variant]`; none: every platform) and
//   `platformMode`: `sparse` (the default: the upstream index kept byte for
//   byte, only the named platforms' manifests held) or `rewrite` (a new
//   index of the named platforms, with a new digest);
// - `mirrorReferrers` (signatures, attestations, SBOMs; default on) and
//   `referrerArtifactTypes` (none: every type);
// - `deleteRemoved` (default off), `deleteRemovedDryRun`,
//   `deleteRemovedMaxPercent` (1 to 100, default 10): local tags this
//   policy mirrored are deleted once the remote no longer lists them,
//   never when it lists no tag at all;
// - `maxBytesPerSec` (0: no limit of its own): the most its copies read
//   from the remote, which the form shows in MiB/s.

/** What the API assumes for a field a policy (or an older server) leaves out. */
export const CONTENT_DEFAULTS = {
  platforms: [],
  platformMode: 'sparse',
  mirrorReferrers: true,
  referrerArtifactTypes: [],
  deleteRemoved: false,
  deleteRemovedDryRun: false,
  deleteRemovedMaxPercent: 10,
  maxBytesPerSec: 0,
};

const MIB = 1024 * 1024;
/** The API's lowest bandwidth limit (bytes per second), 1 KiB/s. */
const MIN_BYTES_PER_SEC = 1024;

/** Most entries the API takes in `platforms` and `referrerArtifactTypes`. */
const MAX_LISTED = 32;

/** A list typed with commas, spaces or new lines. */
export function parseList(text) {
  return text.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean);
}

/** `policy`'s content fields, defaults filled in. */
export function contentOf(policy) {
  const out = {};
  for (const [key, value] of Object.entries(CONTENT_DEFAULTS)) {
    out[key] = policy?.[key] ?? value;
  }
  return out;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The form's sections "Platforms", "Signatures, attestations, SBOMs" and
 * "Deleted remote tags", filled from `policy` (or the defaults).
 * `onChange()` after every change. Returns `{el, values(), changes(),
 * fields(), validate(), reveal(apiField)}`: `values()` the fields as the
 * API takes them; `changes()` those a new policy sets (the ones that
 * differ from the defaults) or an edit changes; `fields()` the inputs by
 * the API's field names (`platforms[1]`, ...), for errors; `validate()`
 * `[apiField, reason]` for a value the API would refuse, or null;
 * `reveal(apiField)` shows the input an error is about.
 */
export function policyContentEditor({ policy, onChange = () => {} }) {
  const current = contentOf(policy);

  // --- platforms --------------------------------------------------------------
  const platforms = field({
    label: 'Platforms',
    name: 'platforms',
    value: current.platforms.join(', '),
    placeholder: 'linux/amd64, linux/arm64/v8',
    spellcheck: 'false',
    autocapitalize: 'none',
    autocomplete: 'off',
    hint: 'Only these, as os/architecture[/variant], separated by commas or spaces. Empty: every platform.',
  });

  const modeName = uid('platform-mode');
  const modeErrorId = uid('platform-mode-error');
  const modeError = h('p', { id: modeErrorId, class: 'field-error', hidden: true });
  function modeRadio(value, label, note) {
    const id = uid(`platform-mode-${value}`);
    const noteId = `${id}-note`;
    const input = h('input', {
      type: 'radio',
      id,
      name: modeName,
      value,
      checked: current.platformMode === value,
      'aria-describedby': `${noteId} ${modeErrorId}`,
    });
    const el = h('div', { class: 'mode-option' },
      h('div', { class: 'check-row' }, input, h('label', { for: id, text: label })),
      h('p', { id: noteId, class: 'hint', text: note }));
    return { el, input };
  }
  const sparse = modeRadio('sparse', 'Keep the upstream index (sparse)',
    'Same digest as upstream, so signatures and digest pins stay valid; the other platforms\' manifests are not here, so pulling or copying them fails.');
  const rewrite = modeRadio('rewrite', 'Write a new index of these platforms (rewrite)',
    'Every platform the index lists is here, so tools that copy the whole image work; but the digest differs from upstream, and signatures over the upstream index do not match it.');
  if (!sparse.input.checked && !rewrite.input.checked) sparse.input.checked = true;
  const modeGroup = h('fieldset', { class: 'field radios platform-mode' },
    h('legend', { text: 'How to store the index' }),
    sparse.el,
    rewrite.el,
    modeError);
  const mode = {
    el: modeGroup,
    error: modeError,
    name: 'platformMode',
    get input() {
      return rewrite.input.checked ? rewrite.input : sparse.input;
    },
  };

  // --- referrers -----------------------------------------------------------------
  const referrers = checkbox({
    label: 'Mirror signatures, attestations and SBOMs',
    name: 'mirrorReferrers',
    checked: current.mirrorReferrers,
    hint: 'What refers to each mirrored image: OCI referrers, or cosign\'s .sig, .att and .sbom tags.',
  });
  const artifactTypes = field({
    label: 'Artifact types',
    name: 'referrerArtifactTypes',
    control: 'textarea',
    rows: '2',
    value: current.referrerArtifactTypes.join('\n'),
    placeholder: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    spellcheck: 'false',
    autocapitalize: 'none',
    hint: 'Only referrers of these media types, separated by commas, spaces or new lines. Empty: every type.',
  });
  const typesId = uid('artifact-types');
  const typesToggle = h('button', {
    type: 'button',
    class: 'button button-link',
    'aria-expanded': 'false',
    'aria-controls': typesId,
    text: 'Only some artifact types…',
  });
  const typesArea = h('div', { id: typesId, class: 'advanced artifact-types', hidden: true }, artifactTypes.el);
  function setTypesOpen(open) {
    typesArea.hidden = !open;
    typesToggle.setAttribute('aria-expanded', String(open));
  }
  typesToggle.addEventListener('click', () => {
    setTypesOpen(typesArea.hidden);
    if (!typesArea.hidden) artifactTypes.input.focus();
  });
  if (current.referrerArtifactTypes.length) setTypesOpen(true);
  const typesToggleRow = h('div', { class: 'advanced-toggle' }, typesToggle);

  // --- deletion propagation ---------------------------------------------------------
  const deleteRemoved = checkbox({
    label: 'Delete local tags this policy mirrored when the remote no longer lists them',
    name: 'deleteRemoved',
    checked: current.deleteRemoved,
    hint: 'Only tags this policy mirrored. Never when the remote lists no tags at all: an outage and an emptied repository look the same.',
  });
  const dryRun = checkbox({
    label: 'Dry run: only log what would be deleted',
    name: 'deleteRemovedDryRun',
    checked: current.deleteRemovedDryRun,
  });
  const maxPercent = field({
    label: 'Most deleted per poll (%)',
    name: 'deleteRemovedMaxPercent',
    type: 'number',
    min: '1',
    max: '100',
    step: '1',
    inputmode: 'numeric',
    value: String(current.deleteRemovedMaxPercent),
    hint: 'Of the tags this policy mirrored (rounded up); the rest wait for the next poll.',
  });
  const deleteOptions = h('div', { class: 'delete-options' }, dryRun.el, maxPercent.el);

  // --- bandwidth --------------------------------------------------------------------
  const bandwidth = field({
    label: 'Most MiB/s read from the remote',
    name: 'maxBytesPerSec',
    type: 'number',
    min: '0',
    step: 'any',
    inputmode: 'decimal',
    value: current.maxBytesPerSec ? String(+(current.maxBytesPerSec / MIB).toFixed(3)) : '',
    placeholder: 'no limit',
    hint: 'Empty: no limit of its own (the server\'s limit, if any, still applies).',
  });
  /** The bandwidth field in bytes per second (0: empty; NaN: not a number). */
  const bandwidthBytes = () => {
    const text = bandwidth.input.value.trim();
    return text === '' ? 0 : Math.round(Number(text) * MIB);
  };

  // --- showing what applies ------------------------------------------------------------
  function update() {
    modeGroup.hidden = parseList(platforms.input.value).length === 0;
    typesToggleRow.hidden = !referrers.input.checked;
    if (!referrers.input.checked) setTypesOpen(false);
    else if (artifactTypes.input.value.trim()) setTypesOpen(true);
    deleteOptions.hidden = !deleteRemoved.input.checked;
  }
  update();

  const el = h('div', { class: 'policy-content' },
    h('fieldset', { class: 'field field-group content-section platforms-section' },
      h('legend', { text: 'Multi-platform images' }),
      platforms.el,
      modeGroup),
    h('fieldset', { class: 'field field-group content-section referrers-section' },
      h('legend', { text: 'Signatures, attestations, SBOMs' }),
      referrers.el,
      typesToggleRow,
      typesArea),
    h('fieldset', { class: 'field field-group content-section deletion-section' },
      h('legend', { text: 'Tags removed from the remote' }),
      deleteRemoved.el,
      deleteOptions),
    h('fieldset', { class: 'field field-group content-section bandwidth-section' },
      h('legend', { text: 'Bandwidth' }),
      bandwidth.el));
  for (const type of ['input', 'change']) {
    el.addEventListener(type, () => {
      update();
      onChange();
    });
  }

  function values() {
    return {
      platforms: parseList(platforms.input.value),
      platformMode: rewrite.input.checked ? 'rewrite' : 'sparse',
      mirrorReferrers: referrers.input.checked,
      referrerArtifactTypes: parseList(artifactTypes.input.value),
      deleteRemoved: deleteRemoved.input.checked,
      deleteRemovedDryRun: dryRun.input.checked,
      deleteRemovedMaxPercent: Number(maxPercent.input.value.trim()),
      maxBytesPerSec: bandwidthBytes(),
    };
  }

  return {
    el,
    values,
    /**
     * The fields to send: for a new policy (`policy` undefined) those that
     * differ from the defaults (the mode only with platforms, the deletion
     * settings only with `deleteRemoved`); for an edit those that differ
     * from the policy.
     */
    changes() {
      const v = values();
      const out = {};
      if (policy) {
        for (const key of Object.keys(CONTENT_DEFAULTS)) {
          // The deletion settings matter (and are shown) only with deleteRemoved.
          if (!v.deleteRemoved && (key === 'deleteRemovedDryRun' || key === 'deleteRemovedMaxPercent')) continue;
          if (!same(v[key], current[key])) out[key] = v[key];
        }
        return out;
      }
      if (v.platforms.length) {
        out.platforms = v.platforms;
        if (v.platformMode !== CONTENT_DEFAULTS.platformMode) out.platformMode = v.platformMode;
      }
      if (!v.mirrorReferrers) out.mirrorReferrers = false;
      else if (v.referrerArtifactTypes.length) out.referrerArtifactTypes = v.referrerArtifactTypes;
      if (v.deleteRemoved) {
        out.deleteRemoved = true;
        if (v.deleteRemovedDryRun) out.deleteRemovedDryRun = true;
        if (v.deleteRemovedMaxPercent !== CONTENT_DEFAULTS.deleteRemovedMaxPercent) {
          out.deleteRemovedMaxPercent = v.deleteRemovedMaxPercent;
        }
      }
      if (v.maxBytesPerSec) out.maxBytesPerSec = v.maxBytesPerSec;
      return out;
    },
    fields() {
      const out = {
        platforms,
        platformMode: mode,
        mirrorReferrers: referrers,
        referrerArtifactTypes: artifactTypes,
        deleteRemoved,
        deleteRemovedDryRun: dryRun,
        deleteRemovedMaxPercent: maxPercent,
        maxBytesPerSec: bandwidth,
      };
      // The API names one entry of a list (`platforms[1]`); the form has
      // one input for the whole list.
      for (let i = 0; i < MAX_LISTED; i += 1) {
        out[`platforms[${i}]`] = platforms;
        out[`referrerArtifactTypes[${i}]`] = artifactTypes;
      }
      return out;
    },
    validate() {
      const v = values();
      if (v.deleteRemoved && !(Number.isInteger(v.deleteRemovedMaxPercent) && v.deleteRemovedMaxPercent >= 1 && v.deleteRemovedMaxPercent <= 100)) {
        return ['deleteRemovedMaxPercent', 'Enter a whole percentage from 1 to 100.'];
      }
      if (!(Number.isFinite(v.maxBytesPerSec) && (v.maxBytesPerSec === 0 || v.maxBytesPerSec >= MIN_BYTES_PER_SEC))) {
        return ['maxBytesPerSec', 'Enter MiB per second, at least 0.001, or leave it empty for no limit.'];
      }
      return null;
    },
    /** Makes the input `apiField` names visible (before an error focuses it). */
    reveal(apiField) {
      if (!apiField) return;
      if (apiField.startsWith('referrerArtifactTypes')) {
        if (!referrers.input.checked) referrers.input.checked = true;
        update();
        setTypesOpen(true);
      } else if (apiField === 'platformMode') {
        modeGroup.hidden = false;
      } else if (apiField === 'deleteRemovedDryRun' || apiField === 'deleteRemovedMaxPercent') {
        deleteOptions.hidden = false;
      }
    },
  };
}

/**
 * The Mirrors tab's facts about `p`'s content and deletion settings, as
 * `<div><dt><dd></div>` items of its `<dl class="facts">`; only those that
 * differ from the defaults.
 */
export function contentFacts(p) {
  const c = contentOf(p);
  const fact = (label, cls, ...value) => h('div', {}, h('dt', { text: label }), h('dd', { class: cls }, ...value));
  const out = [];
  if (c.platforms.length) {
    out.push(fact('Platforms', 'platforms-summary', `${c.platforms.join(', ')} (${c.platformMode})`));
  }
  if (!c.mirrorReferrers) {
    out.push(fact('Signatures, SBOMs', 'referrers-summary', 'not mirrored'));
  } else if (c.referrerArtifactTypes.length) {
    out.push(fact('Signatures, SBOMs', 'referrers-summary', `only ${c.referrerArtifactTypes.join(', ')}`));
  }
  if (c.deleteRemoved) {
    out.push(fact('Removed tags', 'deletion-summary',
      `deletes removed tags${c.deleteRemovedDryRun ? ' (dry run)' : ''}, at most ${c.deleteRemovedMaxPercent}% a poll`));
  }
  if (c.maxBytesPerSec) {
    out.push(fact('Bandwidth', 'bandwidth-summary', `at most ${+(c.maxBytesPerSec / MIB).toFixed(3)} MiB/s`));
  }
  return out;
}
