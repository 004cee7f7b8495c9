// One repository: its Tags, Mirrors, Access and Webhooks tabs. The repository's
// answer says the caller's access level, which decides what the Mirrors and
// Access tabs offer.

import * as api from '../api.js';
import { badge, formatBytes, h, remoteName, replace, shortDigest, statusKind, timeEl, uid } from '../dom.js';
import { alertArea, hideAlert, showAlert, whileBusy } from '../forms.js';
import { describeProgress, followJob } from '../progress.js';
import { accessTab } from './access.js';
import { webhooksTab } from './webhooks.js';
import { contentFacts, policyForm } from './policy-form.js';
import { ruleSummary } from './tag-rules.js';

const MEDIA_TYPES = {
  'application/vnd.docker.distribution.manifest.v2+json': 'Image (Docker)',
  'application/vnd.oci.image.manifest.v1+json': 'Image (OCI)',
  'application/vnd.docker.distribution.manifest.list.v2+json': 'Multi-platform (Docker list)',
  'application/vnd.oci.image.index.v1+json': 'Multi-platform (OCI index)',
};

/** The caller's access level, shown when it is less than admin. */
const ACCESS_LABELS = { 'read-only': 'read only', 'read-write': 'read & write' };

const TAB_TITLES = { tags: 'Tags', mirrors: 'Mirrors', access: 'Access', webhooks: 'Webhooks' };

export async function repositoryView(main, ctx) {
  const { namespace, name, tab } = ctx.params;
  const full = `${namespace}/${name}`;
  ctx.setTitle(`${full} · ${TAB_TITLES[tab] ?? 'Tags'}`);
  replace(main, h('p', { class: 'muted', text: `Loading ${full}…` }));

  let repo;
  try {
    repo = await api.get(api.repoPath(namespace, name), { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) return;
    replace(main,
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/repositories', text: 'Repositories' })),
      h('h1', { text: full }),
      h('p', { class: 'alert alert-error', role: 'alert', text: e.status === 404 ? `Repository ${full} does not exist, or you have no access to it.` : e.message }));
    return;
  }

  const tabLink = (key, label) => h('a', {
    href: ctx.href('repositories', namespace, name, key),
    class: 'tab',
    'aria-current': tab === key ? 'page' : undefined,
    text: label,
  });
  const panel = h('section', { class: 'tab-panel', 'aria-labelledby': `tab-title-${tab}` });
  replace(main,
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/repositories', text: 'Repositories' }), ' / ', namespace),
    h('div', { class: 'page-head' },
      h('h1', {}, h('span', { class: 'repo-ns', text: `${namespace}/` }), name),
      badge(repo.visibility, repo.visibility === 'public' ? 'warn' : 'idle'),
      ACCESS_LABELS[repo.accessLevel] ? badge(ACCESS_LABELS[repo.accessLevel], 'idle', `Your access: ${ACCESS_LABELS[repo.accessLevel]}`) : null),
    repo.shortDescription ? h('p', { class: 'muted', text: repo.shortDescription }) : null,
    h('nav', { class: 'tabs', 'aria-label': 'Repository sections' }, tabLink('tags', 'Tags'), tabLink('mirrors', 'Mirrors'), tabLink('access', 'Access'), tabLink('webhooks', 'Webhooks')),
    panel);

  const level = repo.accessLevel === 'admin' ? 'admin' : 'read';
  if (tab === 'mirrors') await mirrorsTab(panel, ctx, { namespace, name, level });
  else if (tab === 'access') await accessTab(panel, ctx, { namespace, name, repo });
  else if (tab === 'webhooks') await webhooksTab(panel, ctx, { namespace, name, repo });
  else await tagsTab(panel, ctx, { namespace, name, level });
}

// ---------------------------------------------------------------- Tags ----

async function tagsTab(panel, ctx, { namespace, name, level }) {
  const heading = h('h2', { id: 'tab-title-tags', text: 'Tags' });
  replace(panel, heading, h('p', { class: 'muted', text: 'Loading tags…' }));
  let tags;
  try {
    tags = await api.getAll(`${api.repoPath(namespace, name)}/tags`, { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) return;
    replace(panel, heading, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the tags: ${e.message}` }));
    return;
  }
  if (tags.length === 0) {
    replace(panel, heading, h('div', { class: 'empty' },
      h('p', { text: 'No tags yet.' }),
      h('p', { class: 'muted' },
        level === 'admin' ? 'Add a mirror policy on the ' : 'Tags appear here once a mirror policy copies them; see the ',
        h('a', { href: ctx.href('repositories', namespace, name, 'mirrors'), text: 'Mirrors tab' }),
        '.')));
    return;
  }
  tags.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  const rows = tags.flatMap((t) => tagRows(t, ctx, { namespace, name }));
  replace(panel, heading,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table tags-table' },
        h('caption', { class: 'visually-hidden', text: `Tags of ${namespace}/${name}` }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Tag' }),
          h('th', { scope: 'col', text: 'Digest' }),
          h('th', { scope: 'col', text: 'Type' }),
          h('th', { scope: 'col', text: 'Platforms' }),
          h('th', { scope: 'col', class: 'num', text: 'Size' }),
          h('th', { scope: 'col', text: 'Mirrored from' }),
          h('th', { scope: 'col', text: 'Updated' }),
          h('th', { scope: 'col', 'aria-label': 'History' }))),
        h('tbody', {}, rows))),
    h('p', { class: 'muted small', text: `${tags.length} ${tags.length === 1 ? 'tag' : 'tags'}. Pull with: docker pull ${location.host}/${namespace}/${name}:TAG` }));
}

/** A tag's row, and the row below it that its History button opens. */
function tagRows(t, ctx, { namespace, name }) {
  const historyId = uid('tag-history');
  const toggle = h('button', {
    type: 'button',
    class: 'button button-quiet button-small history-toggle',
    'aria-expanded': 'false',
    'aria-controls': historyId,
    'aria-label': `History of tag ${t.name}`,
    text: 'History',
  });
  const cell = h('td', { colspan: '8' });
  const historyRow = h('tr', { id: historyId, class: 'tag-history-row', hidden: true, dataset: { historyOf: t.name } }, cell);
  toggle.addEventListener('click', async () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    historyRow.hidden = !open;
    if (open) await showTagHistory(cell, ctx, { namespace, name, tag: t.name });
  });
  const row = h('tr', { dataset: { tag: t.name } },
    h('th', { scope: 'row', class: 'tag-name', text: t.name }),
    h('td', {}, h('code', { class: 'digest', title: t.digest, text: t.digest })),
    h('td', { text: MEDIA_TYPES[t.mediaType] ?? t.mediaType }),
    h('td', { class: 'platforms' }, (t.platforms ?? []).length
      ? h('ul', { class: 'platform-list' }, t.platforms.map((p) => h('li', {}, h('code', { text: p }))))
      : h('span', { class: 'muted', text: '—' })),
    h('td', {
      class: 'num image-size',
      title: `${typeof t.imageSize === 'number' ? `${t.imageSize} bytes; ` : ''}manifest ${t.size} bytes`,
      text: formatBytes(t.imageSize),
    }),
    h('td', { class: 'mirrored-from' }, t.mirroring
      ? `${t.mirroring.remoteRepository.replace(/^https?:\/\//, '')}:${t.mirroring.remoteTag}`
      : h('span', { class: 'muted', text: 'not mirrored' })),
    h('td', {}, timeEl(t.updatedAt)),
    h('td', {}, toggle));
  return [row, historyRow];
}

/**
 * Loads a tag's earlier digests into `cell`: newest first, when each was
 * tagged and replaced (by what, or deleted), and whether it still pulls by
 * digest (garbage collection removes untagged manifests).
 */
async function showTagHistory(cell, ctx, { namespace, name, tag }) {
  replace(cell, h('p', { class: 'muted small', text: `Loading the history of ${tag}…` }));
  let history;
  try {
    history = await api.get(`${api.repoPath(namespace, name)}/tags/${encodeURIComponent(tag)}/history`, { signal: ctx.signal });
  } catch (e) {
    if (ctx.signal.aborted) return;
    replace(cell, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot read the history of ${tag}: ${e.message}` }));
    return;
  }
  if (history.length === 0) {
    replace(cell, h('p', { class: 'muted small', text: `${tag} has not moved since it was first written.` }));
    return;
  }
  const entries = history.map((e) => h('li', { class: 'tag-history-entry', dataset: { digest: e.digest } },
    h('code', { class: 'digest', title: e.digest, text: shortDigest(e.digest) }),
    ' ',
    e.available
      ? badge('pullable', 'ok', `Still pulls as ${namespace}/${name}@${e.digest}`)
      : badge('collected', 'idle', 'Removed by garbage collection: no longer pulls'),
    h('span', { class: 'muted' }, ' tagged ', timeEl(e.taggedAt), ', ',
      e.replacedBy
        ? h('span', {}, 'replaced by ', h('code', { title: e.replacedBy, text: shortDigest(e.replacedBy) }))
        : 'deleted',
      ' ', timeEl(e.replacedAt),
      e.mirroredBy ? '' : ' (pushed)')));
  replace(cell,
    h('p', { class: 'small', text: `Earlier digests of ${tag}, newest first:` }),
    h('ul', { class: 'tag-history' }, entries),
    h('p', { class: 'muted small', text: `A pullable one pulls with: docker pull ${location.host}/${namespace}/${name}@DIGEST` }));
}

// ------------------------------------------------------------- Mirrors ----

async function mirrorsTab(panel, ctx, { namespace, name, level }) {
  const isAdmin = level === 'admin';
  const canRunJobs = Boolean(ctx.session.account?.isAdmin);
  const base = `${api.repoPath(namespace, name)}/pollMirroringPolicies`;
  const pushBase = `${api.repoPath(namespace, name)}/pushMirroringPolicies`;

  const newButton = isAdmin
    ? h('button', { type: 'button', class: 'button button-primary', text: 'New mirror policy', 'aria-controls': 'policy-form-area', 'aria-expanded': 'false' })
    : null;
  const notice = h('div', { class: 'alert', role: 'status', hidden: true });
  const formArea = h('div', { id: 'policy-form-area' });
  const list = h('div', { class: 'policies', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading mirror policies…' }));
  replace(panel,
    h('div', { class: 'section-head' },
      h('h2', { id: 'tab-title-mirrors', text: 'Mirror policies' }),
      newButton),
    isAdmin ? null : h('p', { class: 'muted', text: 'You need admin access to this repository to add or change mirror policies.' }),
    notice,
    formArea,
    list);

  function say(message, kind = 'success') {
    showAlert(notice, message, kind);
  }

  function closeForm(focusTarget) {
    formArea.replaceChildren();
    newButton?.setAttribute('aria-expanded', 'false');
    focusTarget?.focus();
  }

  function openForm(policy) {
    hideAlert(notice);
    const { form, focus } = policyForm({
      namespace,
      name,
      policy,
      onCancel: () => closeForm(newButton),
      onSaved: async (saved, { applied, jobId }) => {
        closeForm(newButton);
        saidSaved(saved, { applied, jobId, edited: Boolean(policy) });
        await load();
      },
    });
    formArea.replaceChildren(form);
    newButton?.setAttribute('aria-expanded', 'true');
    form.scrollIntoView({ block: 'nearest' });
    focus();
  }
  newButton?.addEventListener('click', () => (formArea.firstChild ? closeForm(newButton) : openForm()));

  async function runPoll(policyId) {
    return api.post('jobs', { action: 'poll_mirror', parameters: { policyID: policyId } });
  }

  /** `#/jobs/ID`, remembering the repository for the way back. */
  function jobHref(id) {
    return `${ctx.href('jobs', id)}?repository=${encodeURIComponent(`${namespace}/${name}`)}`;
  }

  // The poll followed in the notice: a newer one replaces it.
  let following = 0;

  /**
   * Shows `intro` with the live progress of job `id` in the notice, read
   * every second; once it has finished, reloads the policies (their new
   * status) and says how it ended.
   */
  async function follow(id, intro, what = 'poll') {
    following += 1;
    const mine = following;
    const progressText = h('span', { class: 'apply-progress', 'aria-live': 'off', dataset: { bytesCopied: '0' } });
    say([intro, ' ', progressText, ' ', h('a', { href: jobHref(id), class: 'job-link', text: 'follow the job' }), '.'], 'info');
    let job;
    try {
      job = await followJob(id, {
        signal: ctx.signal,
        onUpdate: (current) => {
          if (mine !== following) return;
          const p = describeProgress(current);
          progressText.dataset.bytesCopied = String(p.bytes);
          progressText.textContent = p.text ? `${p.text}.` : '';
        },
      });
    } catch (e) {
      if (ctx.signal.aborted || mine !== following) return;
      say(`Cannot follow the ${what}: ${e.message}`, 'error');
      return;
    }
    if (mine !== following) return;
    await load();
    const link = h('a', { href: jobHref(id), class: 'job-link', text: 'job log' });
    if (job.status === 'done') say([`The ${what} finished: see the policy status below and the `, link, '.']);
    else say([`The ${what} ended ${job.status}: see the `, link, '.'], 'error');
  }

  function saidSaved(saved, { applied, jobId, edited }) {
    const from = remoteName(saved.remoteHost, saved.remoteRepository);
    if (saved.mirroringType === 'push') {
      if (edited) say(`Saved the push policy to ${from}.`);
      else if (!applied) say(`Saved. Tags pushed or mirrored into ${namespace}/${name} from now on will be pushed to ${from}.`);
      // "Save & Apply": one push job per current tag the rules keep; the first followed.
      else if (jobId) follow(jobId, `Saved. Pushing the current tags to ${from} now:`, 'first push');
      else say(`Saved. No current tag matches the rules; tags pushed or mirrored in from now on will be pushed to ${from}.`, 'info');
    } else if (edited) {
      say(`Saved the mirror policy from ${from}.`);
    } else if (!applied) {
      say(`Saved. Tags of ${from} that are pushed or moved from now on will be mirrored at each poll.`);
    } else if (jobId) {
      // "Save & Apply": the server started mirroring every tag.
      follow(jobId, `Saved. Mirroring every tag of ${from} now:`);
    } else {
      say(`Saved. Every tag of ${from} will be mirrored at the next scheduled poll.`, 'info');
    }
  }

  async function load() {
    let policies;
    try {
      // Both kinds, pull first, each with its `mirroringType`.
      policies = await api.get(`${api.repoPath(namespace, name)}/mirroringPolicies`, { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      list.removeAttribute('aria-busy');
      replace(list, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the mirror policies: ${e.message}` }));
      return;
    }
    list.removeAttribute('aria-busy');
    if (policies.length === 0) {
      replace(list, h('div', { class: 'empty' },
        h('p', { text: 'No mirror policies: this repository is not mirrored.' }),
        isAdmin ? h('p', { class: 'muted', text: 'Use "New mirror policy" to pull the tags of a repository on another registry or Docker Hub into this one, or to push this one\'s tags to another registry.' }) : null));
      return;
    }
    replace(list, policies.map((p) => policyCard(p)));
  }

  function policyCard(p) {
    const push = p.mirroringType === 'push';
    const policyBase = push ? pushBase : base;
    const titleId = `policy-${p.id}`;
    const rowAlert = alertArea('alert-inline');
    const from = remoteName(p.remoteHost, p.remoteRepository);
    const status = p.lastStatus ?? { code: 'NEVER_RUN', detail: '' };
    const statusText = status.code === 'NEVER_RUN' ? 'never run' : status.code.toLowerCase();

    const tls = [];
    if (p.remoteCA) tls.push('custom certificate authority');
    if (p.skipTLSVerification) tls.push('TLS verification skipped');

    const neverRun = push
      ? 'Not pushed yet: tags pushed or mirrored into this repository from now on will be pushed.'
      : p.initialEvaluation ? 'Not polled yet: every tag will be mirrored at the first poll.' : 'Not polled yet: tags pushed or moved from now on will be mirrored.';
    const card = h('article', { class: 'policy card', 'aria-labelledby': titleId, dataset: { policyId: p.id, mirroringType: push ? 'push' : 'poll' } },
      h('header', { class: 'card-head' },
        h('h3', { id: titleId }, h('span', { class: 'muted', text: push ? 'Push to ' : 'Pull from ' }), from),
        badge(push ? 'push' : 'pull', 'idle', push ? 'Push mirroring: sends this repository\'s tags' : 'Pull mirroring: polls the remote'),
        badge(statusText, statusKind(status.code), `Last status: ${statusText}`),
        p.enabled ? null : badge('disabled', 'idle')),
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', { text: 'Remote registry' }), h('dd', {}, h('code', { text: p.remoteHost }))),
        h('div', {}, h('dt', { text: 'Remote repository' }), h('dd', {}, h('code', { text: p.remoteRepository }))),
        h('div', {}, h('dt', { text: 'Credentials' }), h('dd', { text: p.username ? `user ${p.username}` : 'anonymous' })),
        push ? h('div', {}, h('dt', { text: 'Remote tag' }), h('dd', {}, h('code', { class: 'tag-template', text: p.tagTemplate }))) : null,
        h('div', {}, h('dt', { text: push ? 'Last pushed' : 'Last mirrored' }), h('dd', { class: 'last-mirrored' }, timeEl(p.lastMirroredAt || null))),
        h('div', { class: 'wide' }, h('dt', { text: 'Last status' }), h('dd', { class: 'last-status' },
          status.code === 'NEVER_RUN'
            ? h('span', { class: 'muted', text: neverRun })
            : [status.detail || status.code, ' ', status.timestamp ? ['(', timeEl(status.timestamp), ')'] : null])),
        tls.length ? h('div', {}, h('dt', { text: 'TLS' }), h('dd', { text: tls.join(', ') })) : null,
        push ? null : contentFacts(p),
        h('div', { class: 'wide' }, h('dt', { text: 'Tag rules' }), h('dd', { class: 'tag-rules-summary' },
          p.rules?.length
            ? h('ul', { class: 'rule-chips' }, p.rules.map((r) => h('li', { dataset: { operator: r.operator }, text: ruleSummary(r) })))
            : h('span', { class: 'muted', text: 'none: every tag' })))),
      rowAlert);

    if (isAdmin) {
      const enabled = h('input', { type: 'checkbox', role: 'switch', id: `enabled-${p.id}`, checked: p.enabled });
      enabled.addEventListener('change', async () => {
        const want = enabled.checked;
        enabled.disabled = true;
        hideAlert(rowAlert);
        try {
          await api.put(`${policyBase}/${encodeURIComponent(p.id)}`, { enabled: want });
          say(`${want ? 'Enabled' : 'Disabled'} the ${push ? 'push policy to' : 'mirror policy from'} ${from}.`);
          await load();
        } catch (e) {
          enabled.checked = !want;
          enabled.disabled = false;
          showAlert(rowAlert, `Cannot ${want ? 'enable' : 'disable'} the policy: ${e.message}`);
        }
      });
      const edit = h('button', { type: 'button', class: 'button', text: 'Edit', 'aria-describedby': titleId, onclick: () => openForm(p) });
      const pollNow = canRunJobs && !push ? h('button', { type: 'button', class: 'button', text: 'Poll now', 'aria-describedby': titleId }) : null;
      pollNow?.addEventListener('click', async () => {
        hideAlert(rowAlert);
        let job;
        try {
          job = await whileBusy(pollNow, 'Starting…', () => runPoll(p.id));
        } catch (e) {
          showAlert(rowAlert, `Cannot start a poll: ${e.message}`);
          return;
        }
        follow(job.id, `Polling ${from} now:`);
      });
      const remove = h('button', { type: 'button', class: 'button button-danger', text: 'Delete', 'aria-describedby': titleId });
      const actions = h('div', { class: 'card-actions' },
        h('div', { class: 'check-row switch' }, enabled, h('label', { for: enabled.id, text: 'Enabled' })),
        edit, pollNow, remove);
      remove.addEventListener('click', () => {
        const confirmDelete = h('button', { type: 'button', class: 'button button-danger', text: 'Delete policy' });
        const keep = h('button', { type: 'button', class: 'button', text: 'Keep it' });
        const question = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion' },
          h('p', { text: push
            ? `Delete the policy that pushes to ${from}? Tags already pushed stay there.`
            : `Delete the policy that mirrors ${from}? Tags already mirrored stay.` }),
          confirmDelete, keep);
        actions.replaceWith(question);
        keep.focus();
        keep.addEventListener('click', () => {
          question.replaceWith(actions);
          remove.focus();
        });
        confirmDelete.addEventListener('click', async () => {
          try {
            await whileBusy(confirmDelete, 'Deleting…', () => api.del(`${policyBase}/${encodeURIComponent(p.id)}`));
            say(`Deleted the ${push ? 'push policy to' : 'mirror policy from'} ${from}.`);
            await load();
            newButton?.focus();
          } catch (e) {
            showAlert(rowAlert, `Cannot delete the policy: ${e.message}`);
          }
        });
      });
      card.append(actions);
    }
    return card;
  }

  await load();
  if (isAdmin && ctx.query.get('new') === '1') openForm();
}
