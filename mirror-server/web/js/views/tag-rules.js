// A policy's tag rules (`rules`: which remote tags a poll copies), as the
// policy form edits them and the Mirrors tab shows them, and the Connect
// check's preview of what they match.
//
// A rule is `{field: "tag", operator, values, exclude?}`: DTR's operators
// `eq`, `sw`, `ew`, `c`, `oo`, `noo`, plus `matches` (regular expressions,
// whole tag), `semver` (version ranges) and `newest` (`values: ["N"]`). A
// tag is mirrored when it matches every rule that keeps and no rule that
// excludes; `newest` then keeps the N highest versions (with `by: "created"`,
// the N images built last). No rules: every tag.

import { h, uid } from '../dom.js';
import { checkbox, field } from '../forms.js';

/** `[operator, label in the form, how the Mirrors tab says it, values placeholder, values hint]`. */
/** The list's name for a `newest` rule ordered by creation time. */
const NEWEST_BUILT = 'newest-created';
const OPERATORS = [
  ['eq', 'equals', 'equals', 'latest, 1.20', null],
  ['sw', 'starts with', 'starts with', '1.20.', null],
  ['ew', 'ends with', 'ends with', '-alpine', null],
  ['c', 'contains', 'contains', 'rc', null],
  ['oo', 'is one of', 'is one of', 'latest, stable', null],
  ['noo', 'is none of', 'is none of', 'edge, nightly', null],
  ['matches', 'matches (regex)', 'matches', '1\\.2[0-9]+(\\.[0-9]+)?',
    'One regular expression a line; it must match the whole tag.'],
  ['semver', 'in version range (semver)', 'in version range', '>=1.20 <2',
    'A range such as >=1.20 <2 or ^1.2 (several: all must hold); tags such as 1.20, v1.20.3 or 1.20-alpine read as versions.'],
  ['newest', 'newest N versions', 'newest', '5',
    'How many: of the tags the other rules keep, only the highest versions.'],
  // `newest` with `by: "created"`: one choice in the list, two API fields.
  [NEWEST_BUILT, 'newest N builds (image creation time)', 'newest builds', '5',
    'How many: of the tags the other rules keep, the images built last (their configs\' creation time; registries record no push time).'],
];
const BY_OPERATOR = Object.fromEntries(OPERATORS.map((o) => [o[0], o]));
const LIST_HINT = 'Separate values with commas or new lines.';

/** How many matching tags the preview names before "and K more". */
export const PREVIEW_LIMIT = 50;

/** The values typed for `operator`: one a line for a regular expression, else comma- or newline-separated. */
export function parseValues(operator, text) {
  const parts = operator === 'matches' ? text.split(/\r?\n/) : text.split(/[,\n]/);
  return parts.map((v) => v.trim()).filter(Boolean);
}

function formatValues(operator, values) {
  return (values ?? []).join(operator === 'matches' ? '\n' : ', ');
}

/** A rule as the API has it (`exclude` and `by` only when set), for comparing. */
export function normalRule(rule) {
  const built = rule.operator === NEWEST_BUILT;
  const operator = built ? 'newest' : rule.operator;
  const out = { field: rule.field ?? 'tag', operator, values: [...(rule.values ?? [])] };
  if (rule.exclude) out.exclude = true;
  if (built || (rule.by && rule.by !== 'version')) out.by = built ? 'created' : rule.by;
  return out;
}

/** The list entry of an API rule. */
function listedOperator(rule) {
  return rule.operator === 'newest' && rule.by === 'created' ? NEWEST_BUILT : rule.operator;
}

/** One rule in a few words, for the Mirrors tab: `except ends with -alpine`. */
export function ruleSummary(rule) {
  const [, , said] = BY_OPERATOR[listedOperator(rule)] ?? [rule.operator, rule.operator, rule.operator];
  // Any value may match, except for ranges, which must all hold.
  const sep = { matches: ' | ', semver: ' ' }[rule.operator] ?? ', ';
  const values = (rule.values ?? []).join(sep);
  const text = rule.operator !== 'newest' ? `${said} ${values}`
    : rule.by === 'created' ? `newest ${values} builds` : `newest ${values} versions`;
  return rule.exclude ? `except ${text}` : text;
}

/**
 * The "Tag rules" section of the policy form, filled with `rules`.
 * `onChange()` after every change (a rule added, removed or edited).
 * Returns `{el, rules(), fields(), validate(), focusAdd()}`: `fields()` are
 * the rule inputs by the API's field names (`rules[1].values`, ...) plus
 * `rules` for errors about the whole list; `validate()` returns
 * `[apiField, reason]` for the first rule the API would refuse for a
 * missing value, or null.
 */
export function tagRulesEditor({ rules = [], onChange = () => {} }) {
  const headingId = uid('tag-rules');
  const list = h('ol', { class: 'tag-rules' });
  const rows = [];
  const addButton = h('button', { type: 'button', class: 'button', text: 'Add a tag rule' });
  const listError = h('p', { id: uid('rules-error'), class: 'field-error', hidden: true });
  const empty = h('p', { class: 'muted tag-rules-empty', text: 'No rules: every remote tag is mirrored.' });

  function renumber() {
    rows.forEach((row, i) => {
      row.legend.textContent = `Rule ${i + 1}`;
      row.remove.setAttribute('aria-label', `Remove rule ${i + 1}`);
    });
    empty.hidden = rows.length > 0;
  }

  function describe(row) {
    const op = row.operator.input.value;
    const [, , , placeholder, hint] = BY_OPERATOR[op];
    row.values.input.placeholder = placeholder;
    row.values.el.querySelector('.hint').textContent = hint ?? LIST_HINT;
    // `newest` cuts the list the other rules keep: it cannot exclude.
    const newest = op === 'newest' || op === NEWEST_BUILT;
    row.exclude.input.disabled = newest;
    if (newest) row.exclude.input.checked = false;
  }

  function addRow(rule = { operator: 'eq', values: [] }, { focus = false } = {}) {
    const operator = field({
      label: 'Operator',
      name: 'operator',
      control: 'select',
      options: OPERATORS.map(([value, label]) => [value, label]),
      value: BY_OPERATOR[listedOperator(rule)] ? listedOperator(rule) : 'eq',
    });
    const values = field({
      label: 'Values',
      name: 'values',
      control: 'textarea',
      rows: '2',
      spellcheck: 'false',
      autocapitalize: 'none',
      value: formatValues(rule.operator, rule.values),
      hint: LIST_HINT,
    });
    const exclude = checkbox({ label: 'Exclude matching tags', name: 'exclude', checked: Boolean(rule.exclude) });
    const legend = h('legend', { class: 'tag-rule-legend' });
    const remove = h('button', { type: 'button', class: 'button button-quiet tag-rule-remove', text: 'Remove' });
    const el = h('li', { class: 'tag-rule' },
      h('fieldset', { class: 'tag-rule-fields' }, legend,
        h('div', { class: 'tag-rule-row' }, operator.el, values.el),
        h('div', { class: 'tag-rule-foot' }, exclude.el, remove)));
    const row = { el, legend, operator, values, exclude, remove };
    operator.input.addEventListener('change', () => describe(row));
    remove.addEventListener('click', () => {
      const i = rows.indexOf(row);
      rows.splice(i, 1);
      el.remove();
      renumber();
      const next = rows[i] ?? rows[i - 1];
      if (next) next.operator.input.focus();
      else addButton.focus();
      onChange();
    });
    rows.push(row);
    list.append(el);
    describe(row);
    renumber();
    if (focus) operator.input.focus();
    return row;
  }

  addButton.addEventListener('click', () => {
    addRow(undefined, { focus: true });
    onChange();
  });
  for (const rule of rules) addRow(rule);
  renumber();

  const el = h('fieldset', { class: 'field field-group tag-rules-section', 'aria-labelledby': headingId },
    h('legend', { id: headingId, text: 'Tag rules' }),
    h('p', { class: 'hint', text: 'Which remote tags to mirror: a tag is mirrored when it matches every rule, and none marked "exclude". Connect shows which tags match now.' }),
    empty,
    list,
    h('div', { class: 'tag-rules-add' }, addButton),
    listError);

  return {
    el,
    /** The rules as the API takes them. */
    rules() {
      return rows.map((row) => normalRule({
        field: 'tag',
        operator: row.operator.input.value,
        values: parseValues(row.operator.input.value, row.values.input.value),
        exclude: row.exclude.input.checked,
      }));
    },
    fields() {
      const out = { rules: { el, input: addButton, error: listError, name: 'rules' } };
      rows.forEach((row, i) => {
        out[`rules[${i}].operator`] = row.operator;
        out[`rules[${i}].field`] = row.operator;
        out[`rules[${i}].values`] = row.values;
        out[`rules[${i}].exclude`] = row.exclude;
        out[`rules[${i}].by`] = row.operator;
      });
      return out;
    },
    validate() {
      for (const [i, row] of rows.entries()) {
        const op = row.operator.input.value;
        const values = parseValues(op, row.values.input.value);
        if (values.length === 0) {
          const newest = op === 'newest' || op === NEWEST_BUILT;
          return [`rules[${i}].values`, newest ? 'Enter how many tags to keep.' : 'Enter at least one value.'];
        }
      }
      return null;
    },
  };
}

/**
 * What the Connect check's `preview` (`{tagsListed, matchingTags}`) says:
 * "N of M remote tags match", the first matching tags, and a warning when
 * none match.
 */
export function previewEl(preview) {
  const listed = preview.tagsListed ?? 0;
  const matching = preview.matchingTags ?? [];
  const n = matching.length;
  const summary = h('p', { class: 'preview-summary' },
    h('strong', { text: `${n} of ${listed} remote ${listed === 1 ? 'tag' : 'tags'} ${n === 1 ? 'matches' : 'match'}` }),
    n ? ' these rules:' : '.');
  if (n === 0) {
    return h('div', { class: 'tag-preview tag-preview-none', dataset: { matching: '0', listed: String(listed) } },
      summary,
      h('p', { class: 'preview-warning' },
        h('strong', { text: 'Warning: ' }),
        listed === 0
          ? 'the remote repository lists no tags, so these rules match no remote tag; a poll would copy nothing until tags appear.'
          : 'these rules match no remote tag; a poll would copy nothing.'));
  }
  const shown = matching.slice(0, PREVIEW_LIMIT);
  return h('div', { class: 'tag-preview', dataset: { matching: String(n), listed: String(listed) } },
    summary,
    h('ul', { class: 'preview-tags', 'aria-label': 'Matching remote tags' },
      shown.map((t) => h('li', {}, h('code', { text: t }))),
      n > shown.length ? h('li', { class: 'preview-more', text: `and ${n - shown.length} more` }) : null));
}
