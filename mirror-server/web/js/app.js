// The regmirror web interface: shell, session and router.
//
// Routes live in the URL fragment (`#/repositories/acme/nginx/mirrors`,
// `#/orgs/acme`), so the server only serves `/` and the assets; reloads
// and the back button work. Each view gets an AbortSignal that aborts when the user leaves it,
// which stops its polling and drops its late answers.

import * as api from './api.js';
import { h, replace } from './dom.js';
import { loginView } from './views/login.js';
import { repositoriesView } from './views/repositories.js';
import { repositoryView } from './views/repository.js';
import { jobsView, jobView } from './views/jobs.js';
import { organizationsView, organizationView } from './views/orgs.js';

const root = document.getElementById('app');
let current = null; // {controller}
let loginNotice = null;

/** `#/a/b?x=1` → `{parts: ['a', 'b'], query: URLSearchParams}`. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, query: new URLSearchParams(search) };
}

/** Navigates to `#/<path>`; `replace` keeps the history entry. */
export function navigate(path, { replace: replaceEntry = false } = {}) {
  const target = `#/${path.replace(/^#?\/?/, '')}`;
  if (location.hash === target) {
    render();
  } else if (replaceEntry) {
    history.replaceState(null, '', target);
    render();
  } else {
    location.hash = target;
  }
}

/** `#/...` link for `parts`, each encoded. */
export function href(...parts) {
  return `#/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
}

function matchRoute(parts, session) {
  const [first, ...rest] = parts;
  if (first === 'repositories' && rest.length === 0) return { view: repositoriesView, section: 'repositories' };
  if (first === 'repositories' && (rest.length === 2 || rest.length === 3)) {
    const [namespace, name, tab = 'tags'] = rest;
    if (tab === 'tags' || tab === 'mirrors' || tab === 'access' || tab === 'webhooks') {
      return { view: repositoryView, section: 'repositories', params: { namespace, name, tab } };
    }
  }
  if (first === 'orgs' && rest.length === 0) return { view: organizationsView, section: 'orgs' };
  if (first === 'orgs' && rest.length === 1) return { view: organizationView, section: 'orgs', params: { org: rest[0] } };
  const admin = Boolean(session.account?.isAdmin);
  if (first === 'jobs' && rest.length === 0 && admin) return { view: jobsView, section: 'jobs' };
  // One job: the API decides (administrators of a repository see its
  // policies' jobs).
  if (first === 'jobs' && rest.length === 1) {
    return { view: jobView, section: admin ? 'jobs' : 'repositories', params: { id: rest[0] } };
  }
  return null;
}

function shell(session, section) {
  const account = session.account;
  const navItem = (key, label, link) => h('li', {},
    h('a', { href: link, 'aria-current': section === key ? 'page' : undefined, text: label }));
  const main = h('main', { id: 'main', class: 'content', tabindex: '-1' });
  const frame = h('div', { class: 'frame' },
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/repositories' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'regmirror'),
      h('div', { class: 'user' },
        h('span', { class: 'user-name' },
          h('span', { class: 'visually-hidden', text: 'Signed in as ' }),
          account?.name ?? session.username,
          account?.isAdmin ? h('span', { class: 'badge badge-idle admin-badge', text: 'admin' }) : null),
        h('button', { type: 'button', class: 'button button-quiet', onclick: () => logout(), text: 'Log out' }))),
    h('nav', { class: 'sidenav', 'aria-label': 'Main' },
      h('ul', {},
        navItem('repositories', 'Repositories', '#/repositories'),
        navItem('orgs', 'Organizations', '#/orgs'),
        account?.isAdmin ? navItem('jobs', 'Jobs', '#/jobs') : null)),
    main);
  replace(root, frame);
  return main;
}

function notFound(main) {
  replace(main,
    h('h1', { text: 'Page not found' }),
    h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/repositories', text: 'Go to the repositories' }), '.'));
}

async function render() {
  current?.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const session = api.currentSession();
  const { parts, query } = parseHash();

  if (!session?.account) {
    const notice = loginNotice;
    loginNotice = null;
    replace(root, loginView({
      notice,
      onSignedIn: () => {
        if (parts[0] === 'login' || parts.length === 0) navigate('repositories', { replace: true });
        else render();
      },
    }));
    document.title = 'Log in · regmirror';
    return;
  }
  if (parts.length === 0 || parts[0] === 'login') {
    navigate('repositories', { replace: true });
    return;
  }
  const route = matchRoute(parts, session);
  const main = shell(session, route?.section);
  if (!route) {
    document.title = 'Not found · regmirror';
    notFound(main);
    return;
  }
  const ctx = {
    params: route.params ?? {},
    query,
    session,
    signal: controller.signal,
    navigate,
    href,
    setTitle: (t) => { document.title = `${t} · regmirror`; },
  };
  try {
    await route.view(main, ctx);
  } catch (e) {
    if (e?.name === 'AbortError' || controller.signal.aborted) return;
    replace(main, h('h1', { text: 'Something went wrong' }), h('p', { class: 'alert alert-error', role: 'alert', text: e?.message ?? String(e) }));
  }
  if (!controller.signal.aborted && document.activeElement === document.body) {
    // Move focus to the new content for keyboard and screen reader users,
    // as a full page load would.
    main.focus({ preventScroll: true });
  }
}

function logout(notice) {
  api.signOut();
  loginNotice = notice ?? null;
  navigate('login');
}

window.addEventListener('regmirror:unauthenticated', () => {
  logout('Your credentials are no longer accepted. Log in again.');
});
window.addEventListener('hashchange', () => render());
// The skip link must not change the fragment, which holds the route.
document.addEventListener('click', (event) => {
  const skip = event.target.closest?.('.skip-link');
  if (!skip) return;
  event.preventDefault();
  document.getElementById('main')?.focus();
});

async function start() {
  const restored = api.restoreSession();
  if (restored) {
    try {
      await api.verifySession();
    } catch (e) {
      api.signOut();
      loginNotice = e?.status === 401 ? 'Your credentials are no longer accepted. Log in again.' : e?.message;
    }
  }
  render();
}

start();
