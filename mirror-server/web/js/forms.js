// Labelled form fields whose API errors appear next to them.
//
// The API names a bad input in `detail.field` (`name`, `remoteHost`,
// `password`, ...). A form keeps its fields by those names; `showError`
// puts the reason under the named field (and focuses it), or in the form's
// alert area when no field is named.

import { h, uid } from './dom.js';

/**
 * A labelled control. `control`: `input` (default), `select`, `textarea`.
 * `options` for selects: `[[value, label], ...]`. Other props go to the
 * control. Returns `{el, input, error, name}`.
 */
export function field({ label, name, control = 'input', hint, options, ...props }) {
  const id = uid(`f-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h(control, {
    id,
    name,
    'aria-describedby': [hintId, errorId].filter(Boolean).join(' '),
    ...props,
  });
  if (control === 'select') {
    for (const [value, text] of options ?? []) input.append(h('option', { value, text }));
    if (props.value !== undefined) input.value = props.value;
  }
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const el = h('div', { class: `field field-${name}` },
    h('label', { for: id, text: label }),
    input,
    hint && h('p', { id: hintId, class: 'hint', text: hint }),
    error);
  return { el, input, error, name };
}

/** A checkbox with its label after it. Returns `{el, input, error, name}`. */
export function checkbox({ label, name, hint, ...props }) {
  const id = uid(`f-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const input = h('input', {
    type: 'checkbox',
    id,
    name,
    'aria-describedby': [hintId, errorId].filter(Boolean).join(' '),
    ...props,
  });
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const el = h('div', { class: `field field-check field-${name}` },
    h('div', { class: 'check-row' }, input, h('label', { for: id, text: label })),
    hint && h('p', { id: hintId, class: 'hint', text: hint }),
    error);
  return { el, input, error, name };
}

/** The area where errors that name no field appear. */
export function alertArea(extraClass = '') {
  return h('div', { class: `alert ${extraClass}`.trim(), role: 'alert', hidden: true });
}

/** Shows `message` (a string or nodes) in `area`, with kind `error` or `success`. */
export function showAlert(area, message, kind = 'error') {
  area.classList.toggle('alert-error', kind === 'error');
  area.classList.toggle('alert-success', kind === 'success');
  area.classList.toggle('alert-info', kind === 'info');
  area.replaceChildren(...(Array.isArray(message) ? message : [message]));
  area.hidden = false;
}

export function hideAlert(area) {
  area.hidden = true;
  area.replaceChildren();
}

/** Clears every field error of `fields` (an object of fields by name). */
export function clearErrors(fields) {
  for (const f of Object.values(fields)) {
    f.error.hidden = true;
    f.error.textContent = '';
    f.input.removeAttribute('aria-invalid');
  }
}

/**
 * Shows `err` next to its field (`aliases` maps API field names to form
 * field names, e.g. `{remoteRepository: 'remoteNamespace'}`) and focuses
 * it; otherwise in `area`. Returns the field shown, or null.
 */
export function showError(fields, area, err, aliases = {}) {
  clearErrors(fields);
  const name = err?.field ? (aliases[err.field] ?? err.field) : null;
  const f = name ? fields[name] : null;
  if (f) {
    f.error.textContent = err.reason;
    f.error.hidden = false;
    f.input.setAttribute('aria-invalid', 'true');
    f.input.focus();
    if (area) hideAlert(area);
    return f;
  }
  if (area) showAlert(area, err?.message ?? String(err));
  return null;
}

/**
 * Runs `action` with `button` disabled and marked busy (its label
 * replaced by `busyLabel` meanwhile). Returns the action's result.
 */
export async function whileBusy(button, busyLabel, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyLabel) button.textContent = busyLabel;
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (busyLabel) button.textContent = label;
  }
}
