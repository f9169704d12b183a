// One modal for every action: a form or a confirmation, whose request runs while it is open, so a
// refusal shows the API's own message right there and nothing happens behind the user's back.
import {h, replace} from './dom.js';
import {ApiError} from './api.js';

const dialog = () => document.getElementById('dialog');

/**
 * Opens an action dialog.
 * fields: [{name, label, type, value, placeholder, required, options, help}]
 * run(values) performs the request; its result goes to onDone. A thrown ApiError stays in the dialog.
 */
export function action({title, text, fields = [], confirm = 'OK', danger = false, run, onDone}) {
  const d = dialog();
  const error = h('p', {class: 'dialog-error', role: 'alert', hidden: true});
  const inputs = {};
  const rows = fields.map((f) => {
    let input;
    if (f.options) {
      input = h('select', {name: f.name, id: 'f-' + f.name}, f.options.map((o) =>
        h('option', {value: o.value, selected: String(o.value) === String(f.value ?? '')}, o.label)));
    } else {
      input = h('input', {name: f.name, id: 'f-' + f.name, type: f.type || 'text', value: f.value ?? '',
        placeholder: f.placeholder || '', required: f.required, autocomplete: 'off', spellcheck: 'false'});
    }
    inputs[f.name] = input;
    return h('label', {for: 'f-' + f.name}, h('span', {}, f.label), input, f.help ? h('small', {class: 'muted'}, f.help) : null);
  });
  const ok = h('button', {type: 'submit', class: danger ? 'danger' : 'primary', id: 'dialog-confirm'}, confirm);
  const cancel = h('button', {type: 'button', id: 'dialog-cancel', onclick: () => d.close()}, 'Cancel');
  const form = h('form', {method: 'dialog'},
    h('h2', {}, title),
    text ? h('p', {class: 'dialog-text'}, text) : null,
    rows, error,
    h('div', {class: 'buttons'}, cancel, ok));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const values = {};
    for (const [k, el] of Object.entries(inputs)) values[k] = el.value.trim();
    ok.disabled = true;
    error.hidden = true;
    try {
      const result = await run(values);
      d.close();
      if (onDone) onDone(result);
    } catch (e) {
      error.hidden = false;
      error.textContent = e instanceof ApiError
        ? (e.needsSignIn ? `Sign in: the API refused this (HTTP ${e.status} ${e.code}): ${e.message}`
          : `The API refused this (HTTP ${e.status} ${e.code}): ${e.message}`)
        : `The API did not answer: ${e.message}`;
    } finally {
      ok.disabled = false;
    }
  });
  replace(d, form);
  d.showModal();
  const first = Object.values(inputs)[0];
  (first || ok).focus();
}
