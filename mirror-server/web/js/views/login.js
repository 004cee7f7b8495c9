// Log in with the same accounts and access tokens as the API.

import * as api from '../api.js';
import { h } from '../dom.js';
import { alertArea, field, showAlert, showError, clearErrors, whileBusy } from '../forms.js';

/** The login screen; calls `onSignedIn(account)` once the credentials work. */
export function loginView({ notice, onSignedIn }) {
  const fields = {
    username: field({ label: 'Username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' }),
    password: field({
      label: 'Password or access token',
      name: 'password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
    }),
  };
  const alert = alertArea();
  const submit = h('button', { type: 'submit', class: 'button button-primary', text: 'Log in' });
  const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title', text: 'Log in to regmirror' }),
    h('p', { class: 'muted', text: 'Use your account password, or an access token created with /api/v0/api_tokens.' }),
    alert,
    fields.username.el,
    fields.password.el,
    h('div', { class: 'actions' }, submit));

  if (notice) showAlert(alert, notice, 'info');

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const username = fields.username.input.value.trim();
    const password = fields.password.input.value;
    if (!username) {
      showError(fields, alert, new api.ApiError({ code: 'REQUIRED', message: 'Enter your username.', detail: { field: 'username', reason: 'Enter your username.' } }));
      return;
    }
    if (!password) {
      showError(fields, alert, new api.ApiError({ code: 'REQUIRED', message: 'Enter your password or an access token.', detail: { field: 'password', reason: 'Enter your password or an access token.' } }));
      return;
    }
    try {
      const account = await whileBusy(submit, 'Logging in…', () => api.signIn(username, password));
      onSignedIn(account);
    } catch (e) {
      const message = e.status === 401
        ? 'The username or the password is wrong, or the account is inactive.'
        : e.message;
      showAlert(alert, message);
      fields.password.input.select();
      fields.password.input.focus();
    }
  });

  queueMicrotask(() => fields.username.input.focus());
  return h('main', { id: 'main', class: 'login' },
    h('div', { class: 'login-card' },
      h('p', { class: 'brand login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'regmirror'),
      form));
}
