// Small DOM and formatting helpers. Text always goes in as text (never as HTML), so a volume or
// node name can never inject markup.

/** h('div', {class: 'x', onclick: fn}, child, 'text', [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + UNITS[i];
}

export function rate(bytesPerSec) {
  return bytesPerSec > 0 ? bytes(bytesPerSec) + '/s' : '—';
}

export function duration(seconds) {
  if (seconds === undefined || seconds === null || seconds < 0) return 'unknown';
  const s = Math.round(seconds);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

export function ms(n) {
  if (n === undefined || n === null) return '—';
  return n >= 1000 && n % 1000 === 0 ? (n / 1000) + ' s' : n + ' ms';
}

export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function ago(iso) {
  if (!iso) return '—';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!(s >= 0)) return time(iso);
  return s < 1 ? 'just now' : duration(s) + ' ago';
}

/** A labelled bar: done of total, with a text like "40 MiB of 64 MiB (62%)". */
export function bar(done, total, label, cls) {
  const pct = total > 0 ? Math.max(0, Math.min(100, (100 * done) / total)) : 0;
  const fill = h('span', {class: 'fill'});
  fill.style.width = pct.toFixed(1) + '%';
  return h('div', {class: 'bar ' + (cls || ''), role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': Math.round(pct), title: label || ''},
  fill, h('span', {class: 'bar-text'}, label === undefined ? Math.round(pct) + '%' : label));
}

export function badge(text, kind) {
  return h('span', {class: 'badge ' + (kind || text)}, text);
}

export function kv(pairs) {
  return h('dl', {class: 'kv'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function table(headers, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: headers.length, class: 'muted'}, 'none'))));
}
