// Organizations, as UCP's eNZi API keeps them (`/enzi/v0/accounts`): the
// ones the caller can see, a form to create one (server administrators),
// and one organization's page: its members, its teams with their members,
// and what each team may do on the organization's whole namespace.
//
// Server administrators and the organization's administrators manage it;
// its other members only look. The API decides; the page shows the
// controls only to those it would let act.

import * as api from '../api.js';
import { badge, h, replace } from '../dom.js';
import { alertArea, checkbox, clearErrors, field, hideAlert, showAlert, showError, whileBusy } from '../forms.js';
import { ACCESS_LEVELS, errorOnField, levelBadge, levelLabel } from './access.js';

/** An ApiError for an empty required field. */
function required(fieldName, message) {
  return new api.ApiError({ code: 'REQUIRED', message, detail: { field: fieldName, reason: message } });
}

// ------------------------------------------------------------ the list ----

export async function organizationsView(main, ctx) {
  ctx.setTitle('Organizations');
  const { signal } = ctx;
  const isAdmin = Boolean(ctx.session.account?.isAdmin);

  const toggle = isAdmin
    ? h('button', { type: 'button', class: 'button button-primary', 'aria-expanded': 'false', 'aria-controls': 'new-organization', text: 'New organization' })
    : null;
  const panel = isAdmin ? newOrganizationForm(ctx, () => closePanel()) : null;
  if (panel) panel.hidden = true;
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
  toggle?.addEventListener('click', () => (panel.hidden ? openPanel() : closePanel()));

  const listArea = h('div', { class: 'list-area', 'aria-busy': 'true' }, h('p', { class: 'muted', text: 'Loading organizations…' }));
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { text: 'Organizations' }),
      toggle ? h('div', { class: 'page-actions' }, toggle) : null),
    h('p', { class: 'muted', text: 'An organization owns a namespace of repositories; its teams can be granted access to them.' }),
    panel,
    listArea);
  if (isAdmin && ctx.query.get('new') === '1') openPanel();

  let orgs;
  try {
    orgs = await api.enzi.all('accounts', 'accounts', { query: { filter: 'orgs' }, signal });
  } catch (e) {
    if (signal.aborted) return;
    listArea.removeAttribute('aria-busy');
    replace(listArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the organizations: ${e.message}` }));
    return;
  }
  listArea.removeAttribute('aria-busy');
  orgs = orgs.filter((a) => a.isOrg);
  if (orgs.length === 0) {
    replace(listArea, h('div', { class: 'empty' },
      h('p', { text: isAdmin ? 'No organizations yet.' : 'You are not a member of any organization.' }),
      h('p', { class: 'muted', text: isAdmin
        ? 'Use "New organization", then add its members and teams.'
        : 'An administrator of an organization can add you to it.' })));
    return;
  }
  const rows = orgs.map((o) => h('tr', { dataset: { org: o.name } },
    h('th', { scope: 'row' }, h('a', { href: ctx.href('orgs', o.name), class: 'repo-link', text: o.name })),
    h('td', {}, o.fullName ? o.fullName : h('span', { class: 'muted', text: '—' }))));
  replace(listArea, h('div', { class: 'table-wrap' }, h('table', { class: 'table organizations-table' },
    h('caption', { class: 'visually-hidden', text: 'Organizations you can see' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Name' }),
      h('th', { scope: 'col', text: 'Full name' }))),
    h('tbody', {}, rows))));
}

function newOrganizationForm(ctx, onCancel) {
  const fields = {
    name: field({ label: 'Name', name: 'name', required: true, autocapitalize: 'none', spellcheck: 'false', hint: 'Also the namespace of its repositories: lower-case letters, digits and . _ -' }),
    fullName: field({ label: 'Full name (optional)', name: 'fullName', maxlength: '255' }),
  };
  const alert = alertArea();
  const create = h('button', { type: 'submit', class: 'button button-primary', text: 'Create' });
  const form = h('form', { class: 'panel form-grid', id: 'new-organization', 'aria-labelledby': 'new-organization-title', novalidate: true },
    h('h2', { id: 'new-organization-title', text: 'New organization' }),
    alert,
    fields.name.el,
    fields.fullName.el,
    h('div', { class: 'actions' },
      create,
      h('button', { type: 'button', class: 'button', onclick: onCancel, text: 'Cancel' })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(alert);
    const name = fields.name.input.value.trim();
    if (!name) {
      showError(fields, alert, required('name', 'Enter a name.'));
      return;
    }
    try {
      await whileBusy(create, 'Creating…', () => api.enzi.post('accounts', { name, isOrg: true, fullName: fields.fullName.input.value.trim() }));
    } catch (e) {
      showError(fields, alert, errorOnField(e, ['ACCOUNT_EXISTS'], 'name'));
      return;
    }
    ctx.navigate(`orgs/${encodeURIComponent(name)}`);
  });
  return form;
}

// ------------------------------------------------- one organization ----

export async function organizationView(main, ctx) {
  const { org } = ctx.params;
  const { signal } = ctx;
  const orgBase = api.orgPath(org);
  ctx.setTitle(org);
  replace(main, h('p', { class: 'muted', text: `Loading ${org}…` }));

  let account;
  let members;
  try {
    [account, members] = await Promise.all([
      api.enzi.get(orgBase, { signal }),
      api.enzi.all(`${orgBase}/members`, 'members', { signal }),
    ]);
  } catch (e) {
    if (signal.aborted) return;
    replace(main,
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/orgs', text: 'Organizations' })),
      h('h1', { text: org }),
      h('p', { class: 'alert alert-error', role: 'alert', text: e.status === 404 ? `Organization ${org} does not exist, or you are not a member of it.` : e.message }));
    return;
  }

  const serverAdmin = Boolean(ctx.session.account?.isAdmin);
  const mine = members.find((m) => m.member?.name === ctx.session.username);
  const canManage = serverAdmin || Boolean(mine?.isAdmin);

  const notice = h('div', { class: 'alert', role: 'status', hidden: true });
  const say = (message, kind = 'success') => showAlert(notice, message, kind);
  const membersArea = h('div', { 'aria-busy': 'true' });
  const teamsArea = h('div', { class: 'teams', 'aria-busy': 'true' });
  const accessArea = h('div', { 'aria-busy': 'true' });
  let teams = [];

  replace(main,
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/orgs', text: 'Organizations' }), ' / ', org),
    h('div', { class: 'page-head' },
      h('h1', { text: org }),
      badge('organization', 'idle'),
      mine ? badge(mine.isAdmin ? 'you: administrator' : 'you: member', 'idle') : null),
    account.fullName ? h('p', { class: 'muted', text: account.fullName }) : null,
    canManage ? null : h('p', { class: 'muted read-only-note', text: 'Only the organization\'s administrators can change its members, teams and access.' }),
    notice,
    h('section', { class: 'org-section', 'aria-labelledby': 'org-members-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'org-members-title', text: 'Members' })),
      membersArea),
    h('section', { class: 'org-section', 'aria-labelledby': 'org-teams-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'org-teams-title', text: 'Teams' })),
      teamsArea),
    h('section', { class: 'org-section', 'aria-labelledby': 'org-access-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'org-access-title', text: 'Namespace access' })),
      h('p', { class: 'muted', text: `What each team may do on every repository of the ${org} namespace, present and future. A repository's own Access tab grants more.` }),
      accessArea));

  // -------------------------------------------------------- members --
  const memberFields = {
    name: field({ label: 'User name', name: 'name', required: true, autocapitalize: 'none', spellcheck: 'false' }),
    isAdmin: checkbox({ label: 'Organization administrator', name: 'isAdmin' }),
  };
  const memberAlert = alertArea();
  const addMember = h('button', { type: 'submit', class: 'button button-primary', text: 'Add member' });
  const memberForm = canManage
    ? h('form', { class: 'inline-form', 'aria-label': 'Add a member', novalidate: true },
      memberAlert,
      h('div', { class: 'inline-fields' }, memberFields.name.el, memberFields.isAdmin.el, h('div', { class: 'inline-submit' }, addMember)))
    : null;
  memberForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(memberAlert);
    const name = memberFields.name.input.value.trim();
    const isAdmin = memberFields.isAdmin.input.checked;
    if (!name) {
      showError(memberFields, memberAlert, required('name', 'Enter a user name.'));
      return;
    }
    try {
      await whileBusy(addMember, 'Adding…', () => api.enzi.put(`${orgBase}/members/${encodeURIComponent(name)}`, { isAdmin, isPublic: true }));
    } catch (e) {
      showError(memberFields, memberAlert, errorOnField(e, ['NO_SUCH_ACCOUNT'], 'name'));
      return;
    }
    clearErrors(memberFields);
    memberFields.name.input.value = '';
    memberFields.isAdmin.input.checked = false;
    say(`${name} is now ${isAdmin ? 'an administrator' : 'a member'} of ${org}.`);
    await loadMembers();
    memberFields.name.input.focus();
  });

  async function loadMembers() {
    try {
      members = await api.enzi.all(`${orgBase}/members`, 'members', { signal });
    } catch (e) {
      if (signal.aborted) return;
      membersArea.removeAttribute('aria-busy');
      replace(membersArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the members: ${e.message}` }));
      return;
    }
    renderMembers();
  }

  function renderMembers() {
    membersArea.removeAttribute('aria-busy');
    const rowAlert = alertArea('alert-inline');
    const rows = members.map((m) => {
      const user = m.member.name;
      let actions = null;
      if (canManage) {
        const role = h('button', { type: 'button', class: 'button button-small', text: m.isAdmin ? 'Make member' : 'Make administrator', 'aria-label': m.isAdmin ? `Make ${user} a member only` : `Make ${user} an administrator` });
        role.addEventListener('click', async () => {
          hideAlert(rowAlert);
          try {
            await whileBusy(role, null, () => api.enzi.put(`${orgBase}/members/${encodeURIComponent(user)}`, { isAdmin: !m.isAdmin, isPublic: true }));
          } catch (e) {
            showAlert(rowAlert, `Cannot change the role of ${user}: ${e.message}`);
            return;
          }
          say(`${user} is now ${m.isAdmin ? 'a member' : 'an administrator'} of ${org}.`);
          await loadMembers();
        });
        const remove = h('button', { type: 'button', class: 'button button-danger button-small', text: 'Remove', 'aria-label': `Remove ${user} from ${org}` });
        remove.addEventListener('click', async () => {
          hideAlert(rowAlert);
          try {
            await whileBusy(remove, null, () => api.enzi.del(`${orgBase}/members/${encodeURIComponent(user)}`));
          } catch (e) {
            showAlert(rowAlert, `Cannot remove ${user}: ${e.message}`);
            return;
          }
          if (user === ctx.session.username && !serverAdmin) {
            // No longer a member: nothing here to see.
            ctx.navigate('orgs');
            return;
          }
          say(`Removed ${user} from ${org} and its teams.`);
          await refresh();
          memberFields.name.input.focus();
        });
        actions = h('td', { class: 'row-actions' }, role, remove);
      }
      return h('tr', { dataset: { member: user } },
        h('th', { scope: 'row' }, user, m.member.fullName ? h('div', { class: 'muted small', text: m.member.fullName }) : null),
        h('td', { class: 'role' }, badge(m.isAdmin ? 'administrator' : 'member', m.isAdmin ? 'warn' : 'idle')),
        actions);
    });
    replace(membersArea,
      members.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table members-table' },
          h('caption', { class: 'visually-hidden', text: `Members of ${org}` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Member' }),
            h('th', { scope: 'col', text: 'Role' }),
            canManage ? h('th', { scope: 'col', class: 'row-actions', text: 'Actions' }) : null)),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'No members yet.' }),
      rowAlert,
      memberForm);
  }

  // ---------------------------------------------------------- teams --
  const teamFields = {
    name: field({ label: 'Team name', name: 'name', required: true, autocapitalize: 'none', spellcheck: 'false' }),
    description: field({ label: 'Description (optional)', name: 'description', maxlength: '255' }),
  };
  const teamAlert = alertArea();
  const createTeam = h('button', { type: 'submit', class: 'button button-primary', text: 'Create team' });
  const teamForm = canManage
    ? h('form', { class: 'inline-form', 'aria-label': 'New team', novalidate: true },
      teamAlert,
      h('div', { class: 'inline-fields' }, teamFields.name.el, teamFields.description.el, h('div', { class: 'inline-submit' }, createTeam)))
    : null;
  teamForm?.addEventListener('submit', async (event) => {
    event.preventDefault();
    hideAlert(teamAlert);
    const name = teamFields.name.input.value.trim();
    if (!name) {
      showError(teamFields, teamAlert, required('name', 'Enter a team name.'));
      return;
    }
    try {
      await whileBusy(createTeam, 'Creating…', () => api.enzi.post(`${orgBase}/teams`, { name, description: teamFields.description.input.value.trim() }));
    } catch (e) {
      showError(teamFields, teamAlert, e);
      return;
    }
    clearErrors(teamFields);
    teamFields.name.input.value = '';
    teamFields.description.input.value = '';
    say(`Created the team ${name}.`);
    await loadTeams();
    await loadAccess();
    teamsArea.querySelector(`article[data-team="${CSS.escape(name)}"] input[name="member"]`)?.focus();
  });

  async function loadTeams() {
    let memberLists;
    try {
      teams = await api.enzi.all(`${orgBase}/teams`, 'teams', { signal });
      memberLists = await Promise.all(teams.map((t) => api.enzi.all(`${orgBase}/teams/${encodeURIComponent(t.name)}/members`, 'members', { signal })));
    } catch (e) {
      if (signal.aborted) return;
      teamsArea.removeAttribute('aria-busy');
      replace(teamsArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the teams: ${e.message}` }));
      return;
    }
    teamsArea.removeAttribute('aria-busy');
    replace(teamsArea,
      teams.length
        ? teams.map((t, i) => teamCard(t, memberLists[i]))
        : h('p', { class: 'muted', text: canManage ? 'No teams yet: create one below.' : 'No teams yet.' }),
      teamForm);
  }

  function teamCard(team, teamMembers) {
    const titleId = `team-${team.id}`;
    const teamPath = `${orgBase}/teams/${encodeURIComponent(team.name)}`;
    const rowAlert = alertArea('alert-inline');
    const names = teamMembers.map((m) => m.member.name);
    const list = names.length
      ? h('ul', { class: 'team-members' }, names.map((user) => {
        let remove = null;
        if (canManage) {
          remove = h('button', { type: 'button', class: 'button button-quiet button-small', text: 'Remove', 'aria-label': `Remove ${user} from team ${team.name}` });
          remove.addEventListener('click', async () => {
            hideAlert(rowAlert);
            try {
              await whileBusy(remove, null, () => api.enzi.del(`${teamPath}/members/${encodeURIComponent(user)}`));
            } catch (e) {
              showAlert(rowAlert, `Cannot remove ${user} from the team: ${e.message}`);
              return;
            }
            say(`Removed ${user} from the team ${team.name}.`);
            await loadTeams();
          });
        }
        return h('li', { dataset: { member: user } }, h('span', { class: 'member-name', text: user }), remove);
      }))
      : h('p', { class: 'muted', text: 'No members.' });

    const card = h('article', { class: 'card team', 'aria-labelledby': titleId, dataset: { team: team.name } },
      h('header', { class: 'card-head' },
        h('h3', { id: titleId, text: team.name }),
        badge(`${names.length} ${names.length === 1 ? 'member' : 'members'}`, 'idle')),
      team.description ? h('p', { class: 'muted', text: team.description }) : null,
      list,
      rowAlert);

    if (canManage) {
      const fields = { member: field({ label: 'User name', name: 'member', required: true, autocapitalize: 'none', spellcheck: 'false' }) };
      const alert = alertArea();
      const add = h('button', { type: 'submit', class: 'button', text: 'Add to team' });
      const form = h('form', { class: 'inline-form', 'aria-label': `Add a member to team ${team.name}`, novalidate: true },
        alert,
        h('div', { class: 'inline-fields' }, fields.member.el, h('div', { class: 'inline-submit' }, add)));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        hideAlert(alert);
        const user = fields.member.input.value.trim();
        if (!user) {
          showError(fields, alert, required('member', 'Enter a user name.'));
          return;
        }
        try {
          await whileBusy(add, 'Adding…', () => api.enzi.put(`${teamPath}/members/${encodeURIComponent(user)}`, {}));
        } catch (e) {
          showError(fields, alert, errorOnField(e, ['NO_SUCH_ACCOUNT'], 'member'));
          return;
        }
        const joined = !members.some((m) => m.member.name === user);
        say(`Added ${user} to the team ${team.name}${joined ? ` (and so to ${org})` : ''}.`);
        // Joining a team joins the organization.
        await Promise.all([loadTeams(), loadMembers()]);
        teamsArea.querySelector(`article[data-team="${CSS.escape(team.name)}"] input[name="member"]`)?.focus();
      });

      const remove = h('button', { type: 'button', class: 'button button-danger', text: 'Delete team', 'aria-describedby': titleId });
      const actions = h('div', { class: 'card-actions' }, remove);
      remove.addEventListener('click', () => {
        const confirmDelete = h('button', { type: 'button', class: 'button button-danger', text: `Delete ${team.name}` });
        const keep = h('button', { type: 'button', class: 'button', text: 'Keep it' });
        const question = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion' },
          h('p', { text: `Delete the team ${team.name}? Its members stay in ${org}; what it was granted goes.` }),
          confirmDelete, keep);
        actions.replaceWith(question);
        keep.focus();
        keep.addEventListener('click', () => {
          question.replaceWith(actions);
          remove.focus();
        });
        confirmDelete.addEventListener('click', async () => {
          try {
            await whileBusy(confirmDelete, 'Deleting…', () => api.enzi.del(teamPath));
          } catch (e) {
            showAlert(rowAlert, `Cannot delete the team: ${e.message}`);
            return;
          }
          say(`Deleted the team ${team.name}.`);
          await Promise.all([loadTeams(), loadAccess()]);
          teamFields.name.input.focus();
        });
      });
      card.append(form, actions);
    }
    return card;
  }

  // --------------------------------------------------- namespace access --
  const nsPath = `repositoryNamespaces/${encodeURIComponent(org)}/teamAccess`;

  async function loadAccess() {
    let grants;
    try {
      grants = await api.getAllIn(nsPath, 'teamAccessList', { signal });
    } catch (e) {
      if (signal.aborted) return;
      accessArea.removeAttribute('aria-busy');
      replace(accessArea, h('p', { class: 'alert alert-error', role: 'alert', text: `Cannot list the namespace access: ${e.message}` }));
      return;
    }
    accessArea.removeAttribute('aria-busy');
    grants.sort((a, b) => a.team.name.localeCompare(b.team.name));
    const rowAlert = alertArea('alert-inline');
    const rows = grants.map((g) => {
      const team = g.team.name;
      let actions = null;
      if (canManage) {
        const remove = h('button', { type: 'button', class: 'button button-danger button-small', text: 'Remove', 'aria-label': `Remove the namespace access of team ${team}` });
        remove.addEventListener('click', async () => {
          hideAlert(rowAlert);
          try {
            await whileBusy(remove, null, () => api.del(`${nsPath}/${encodeURIComponent(team)}`));
          } catch (e) {
            showAlert(rowAlert, `Cannot remove the access of team ${team}: ${e.message}`);
            return;
          }
          say(`Team ${team} no longer has access to every repository of ${org}.`);
          await loadAccess();
        });
        actions = h('td', { class: 'row-actions' }, remove);
      }
      return h('tr', { dataset: { team } },
        h('th', { scope: 'row', text: team }),
        h('td', { class: 'level' }, levelBadge(g.accessLevel)),
        actions);
    });

    let form = null;
    if (canManage && teams.length) {
      const fields = {
        team: field({ label: 'Team', name: 'team', control: 'select', options: teams.map((t) => [t.name, t.name]) }),
        accessLevel: field({ label: 'Access', name: 'accessLevel', control: 'select', options: ACCESS_LEVELS, value: 'read-only' }),
      };
      const alert = alertArea();
      const grant = h('button', { type: 'submit', class: 'button button-primary', text: 'Grant' });
      form = h('form', { class: 'inline-form', 'aria-label': 'Grant a team access to the namespace', novalidate: true },
        alert,
        h('div', { class: 'inline-fields' }, fields.team.el, fields.accessLevel.el, h('div', { class: 'inline-submit' }, grant)),
        h('p', { class: 'hint', text: 'Granting to a team already listed changes its level.' }));
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        hideAlert(alert);
        const team = fields.team.input.value;
        const level = fields.accessLevel.input.value;
        try {
          await whileBusy(grant, 'Granting…', () => api.put(`${nsPath}/${encodeURIComponent(team)}`, { accessLevel: level }));
        } catch (e) {
          showError(fields, alert, errorOnField(e, ['NO_SUCH_TEAM'], 'team'));
          return;
        }
        say(`Team ${team} now has ${levelLabel(level).toLowerCase()} access to every repository of ${org}.`);
        await loadAccess();
      });
    }
    replace(accessArea,
      grants.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table namespace-access-table' },
          h('caption', { class: 'visually-hidden', text: `Teams' access to the namespace ${org}` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Team' }),
            h('th', { scope: 'col', text: 'Access' }),
            canManage ? h('th', { scope: 'col', class: 'row-actions', text: 'Actions' }) : null)),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', text: 'No team has access to the whole namespace.' }),
      rowAlert,
      form ?? (canManage ? h('p', { class: 'muted', text: 'Create a team first to grant it access.' }) : null));
  }

  async function refresh() {
    await loadMembers();
    await loadTeams();
    await loadAccess();
  }

  renderMembers();
  await loadTeams();
  await loadAccess();
}
