// A repository's Access tab: the users' grants (`userAccess`) and, for a
// repository in an organization's namespace, the teams' grants
// (`teamAccess`), with forms to set and remove them. Both lists are for
// the repository's administrators only (the API answers 403 to others), so
// other callers are told their own level and nothing is requested.

import * as api from '../api.js';
import { badge, h, replace } from '../dom.js';
import { alertArea, clearErrors, field, hideAlert, showAlert, showError, whileBusy } from '../forms.js';

/** The access levels, weakest first: `[value, label]`. */
export const ACCESS_LEVELS = [['read-only', 'Read only'], ['read-write', 'Read & write'], ['admin', 'Admin']];

/** `read-write` → `Read & write`. */
export function levelLabel(level) {
  return ACCESS_LEVELS.find(([v]) => v === level)?.[1] ?? String(level);
}

/** A badge for an access level. */
export function levelBadge(level) {
  return badge(levelLabel(level), level === 'admin' ? 'warn' : 'idle');
}

/** Keeps an API error that names no field next to `field` when its code says which. */
export function errorOnField(e, codes, fieldName) {
  if (!e.field && codes.includes(e.code)) e.detail = { ...e.detail, field: fieldName, reason: e.message };
  return e;
}

export async function accessTab(panel, ctx, { namespace, name, repo }) {
  const full = `${namespace}/${name}`;
  const heading = h('h2', { id: 'tab-title-access', text: 'Access' });
  if (repo.accessLevel !== 'admin') {
    replace(panel, heading,
      h('p', {}, 'Your access to this repository: ', levelBadge(repo.accessLevel ?? 'read-only'), '.'),
      h('p', { class: 'muted', text: 'You need admin access to this repository to see and change who else has access to it.' }));
    return;
  }

  const base = api.repoPath(namespace, name);
  const inOrg = repo.namespaceType === 'organization';
  const notice = h('div', { class: 'alert', role: 'status', hidden: true });
  const usersArea = h('div', { class: 'access-users', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading…' }));
  const teamsArea = h('div', { class: 'access-teams', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading…' }));
  replace(panel,
    heading,
    h('p', { class: 'muted', text: `Who may pull (read only), also push (read & write), or also manage ${full} (admin), besides server administrators.` }),
    notice,
    h('section', { class: 'access-section', 'aria-labelledby': 'access-users-title' },
      h('h3', { id: 'access-users-title', text: 'Users' }),
      usersArea),
    h('section', { class: 'access-section', 'aria-labelledby': 'access-teams-title' },
      h('h3', { id: 'access-teams-title', text: 'Teams' }),
      teamsArea));

  const say = (message, kind = 'success') => showAlert(notice, message, kind);

  // ------------------------------------------------------------ users --
  const userFields = {
    username: field({ label: 'User name', name: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' }),
    accessLevel: field({ label: 'Access', name: 'accessLevel', control: 'select', options: ACCESS_LEVELS, value: 'read-only' }),
  };
  const userAlert = alertArea();
  const userGrant = h('button', { type: 'submit', class: 'button button-primary', text: 'Grant' });
  const userForm = h('form', { class: 'inline-form', 'aria-label': 'Grant access to a user', novalidate: true },
    userAlert,
    h('div', { class: 'inline-fields' }, userFields.username.el, userFields.accessLevel.el, h('div', { class: 'inline-submit' }, userGrant)),
    h('p', { class: 'hint', text: 'Granting to a user already listed changes their level.' }));
  userForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(userAlert);
    const username = userFields.username.input.value.trim();
    const level = userFields.accessLevel.input.value;
    if (!username) {
      showError(userFields, userAlert, new api.ApiError({ code: 'REQUIRED', message: 'Enter a user name.', detail: { field: 'username', reason: 'Enter a user name.' } }));
      return;
    }
    try {
      await whileBusy(userGrant, 'Granting…', () => api.put(`${base}/userAccess/${encodeURIComponent(username)}`, { accessLevel: level }));
    } catch (e) {
      showError(userFields, userAlert, errorOnField(e, ['NO_SUCH_ACCOUNT', 'NO_SUCH_USER'], 'username'));
      return;
    }
    clearErrors(userFields);
    userFields.username.input.value = '';
    say(`Granted ${username} ${levelLabel(level).toLowerCase()} access to ${full}.`);
    await loadUsers();
  });

  async function loadUsers() {
    let grants;
    try {
      grants = await api.get(`${base}/userAccess`, { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      usersArea.removeAttribute('aria-busy');
      replace(usersArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the users' access: ${e.message}` }));
      return;
    }
    usersArea.removeAttribute('aria-busy');
    grants = (Array.isArray(grants) ? grants : []).sort((a, b) => a.username.localeCompare(b.username));
    const rowAlert = alertArea('alert-inline');
    const rows = grants.map((g) => {
      const remove = h('button', { type: 'button', class: 'button button-danger button-small', text: 'Remove', 'aria-label': `Remove the access of ${g.username}` });
      remove.addEventListener('click', async () => {
        hideAlert(rowAlert);
        try {
          await whileBusy(remove, null, () => api.del(`${base}/userAccess/${encodeURIComponent(g.username)}`));
        } catch (e) {
          showAlert(rowAlert, `Cannot remove the access of ${g.username}: ${e.message}`);
          return;
        }
        say(`Removed the access of ${g.username} to ${full}.`);
        await loadUsers();
        userFields.username.input.focus();
      });
      return h('tr', { dataset: { username: g.username } },
        h('th', { scope: 'row', text: g.username }),
        h('td', { class: 'level' }, levelBadge(g.accessLevel)),
        h('td', { class: 'row-actions' }, remove));
    });
    replace(usersArea,
      grants.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table user-access-table' },
          h('caption', { class: 'visually-hidden', text: `Users' access to ${full}` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'User' }),
            h('th', { scope: 'col', text: 'Access' }),
            h('th', { scope: 'col', class: 'row-actions', text: 'Actions' }))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'No user has been granted access to this repository.' }),
      rowAlert,
      userForm);
  }

  // ------------------------------------------------------------ teams --
  async function loadTeams() {
    teamsArea.removeAttribute('aria-busy');
    if (!inOrg) {
      replace(teamsArea, h('p', { class: 'muted', text: `Teams belong to organizations; ${namespace} is a user's namespace, so only users can be granted access here.` }));
      return;
    }
    let grants;
    try {
      grants = await api.getAllIn(`${base}/teamAccess`, 'teamAccessList', { signal: ctx.signal });
    } catch (e) {
      if (ctx.signal.aborted) return;
      replace(teamsArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the teams' access: ${e.message}` }));
      return;
    }
    // The organization's teams for the form, and what teams have on the
    // whole namespace: both need membership of the organization (or
    // server admin); a repository admin outside it types the team's name.
    const orgTeams = await api.enzi.all(`${api.orgPath(namespace)}/teams`, 'teams', { signal: ctx.signal }).catch(() => null);
    const nsGrants = await api.getAllIn(`repositoryNamespaces/${encodeURIComponent(namespace)}/teamAccess`, 'teamAccessList', { signal: ctx.signal }).catch(() => null);
    if (ctx.signal.aborted) return;

    const rowAlert = alertArea('alert-inline');
    grants.sort((a, b) => a.team.name.localeCompare(b.team.name));
    const rows = grants.map((g) => {
      const team = g.team.name;
      const remove = h('button', { type: 'button', class: 'button button-danger button-small', text: 'Remove', 'aria-label': `Remove the access of team ${team}` });
      remove.addEventListener('click', async () => {
        hideAlert(rowAlert);
        try {
          await whileBusy(remove, null, () => api.del(`${base}/teamAccess/${encodeURIComponent(team)}`));
        } catch (e) {
          showAlert(rowAlert, `Cannot remove the access of team ${team}: ${e.message}`);
          return;
        }
        say(`Removed the access of team ${team} to ${full}.`);
        await loadTeams();
      });
      return h('tr', { dataset: { team } },
        h('th', { scope: 'row' }, team, g.team.description ? h('div', { class: 'muted small', text: g.team.description }) : null),
        h('td', { class: 'level' }, levelBadge(g.accessLevel)),
        h('td', { class: 'num', text: String(g.team.membersCount ?? '—') }),
        h('td', { class: 'row-actions' }, remove));
    });

    const teamFields = {
      team: orgTeams && orgTeams.length
        ? field({ label: 'Team', name: 'team', control: 'select', options: orgTeams.map((t) => [t.name, t.name]) })
        : field({ label: 'Team', name: 'team', required: true, autocapitalize: 'none', spellcheck: 'false', hint: `A team of the organization ${namespace}.` }),
      accessLevel: field({ label: 'Access', name: 'accessLevel', control: 'select', options: ACCESS_LEVELS, value: 'read-only' }),
    };
    const teamAlert = alertArea();
    const grant = h('button', { type: 'submit', class: 'button button-primary', text: 'Grant' });
    const teamForm = h('form', { class: 'inline-form', 'aria-label': 'Grant access to a team', novalidate: true },
      teamAlert,
      h('div', { class: 'inline-fields' }, teamFields.team.el, teamFields.accessLevel.el, h('div', { class: 'inline-submit' }, grant)),
      h('p', { class: 'hint', text: 'Granting to a team already listed changes its level.' }));
    teamForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      hideAlert(teamAlert);
      const team = teamFields.team.input.value.trim();
      const level = teamFields.accessLevel.input.value;
      if (!team) {
        showError(teamFields, teamAlert, new api.ApiError({ code: 'REQUIRED', message: 'Enter a team name.', detail: { field: 'team', reason: 'Enter a team name.' } }));
        return;
      }
      try {
        await whileBusy(grant, 'Granting…', () => api.put(`${base}/teamAccess/${encodeURIComponent(team)}`, { accessLevel: level }));
      } catch (e) {
        showError(teamFields, teamAlert, errorOnField(e, ['NO_SUCH_TEAM'], 'team'));
        return;
      }
      say(`Granted team ${team} ${levelLabel(level).toLowerCase()} access to ${full}.`);
      await loadTeams();
    });

    const orgLink = h('a', { href: ctx.href('orgs', namespace), text: namespace });
    const inherited = (nsGrants ?? []).slice().sort((a, b) => a.team.name.localeCompare(b.team.name));
    replace(teamsArea,
      grants.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table team-access-table' },
          h('caption', { class: 'visually-hidden', text: `Teams' access to ${full}` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Team' }),
            h('th', { scope: 'col', text: 'Access' }),
            h('th', { scope: 'col', class: 'num', text: 'Members' }),
            h('th', { scope: 'col', class: 'row-actions', text: 'Actions' }))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'No team has been granted access to this repository.' }),
      inherited.length
        ? h('p', { class: 'muted small namespace-grants' },
          'On every repository of the organization ', orgLink, ': ',
          inherited.map((g, i) => [i ? ', ' : '', `${g.team.name} (${levelLabel(g.accessLevel).toLowerCase()})`]),
          '. Those are set on the organization\'s page.')
        : null,
      rowAlert,
      orgTeams && orgTeams.length === 0
        ? h('p', { class: 'muted' }, 'The organization ', orgLink, ' has no teams yet.')
        : teamForm);
  }

  await Promise.all([loadUsers(), loadTeams()]);
}
