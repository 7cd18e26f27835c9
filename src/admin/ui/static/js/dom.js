// DOM helpers. Everything the API returns came from the network (paths,
// subjects, rule text): it only ever reaches the page as text nodes, never
// as HTML. The CSP's Trusted Types policy ('none') makes any HTML string
// sink throw, so this is enforced by the browser, not only by habit.

/** Creates an element: h('a', { href: '#/x', class: 'c', onclick: fn }, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A timestamp as UTC, to the second: 2026-01-31 12:00:05Z. */
export function fmtTime(t) {
  if (t === undefined || t === null || t === '') return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** A latency in ms. */
export function fmtLatency(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A count with thousands separators. */
export function fmtCount(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '–';
}

/** The identity a reviewer reads first: token subject, else peer SPIFFE ID. */
export function identityOf(e) {
  if (e.principal && e.principal.sub) return e.principal.sub;
  if (e.peer && e.peer.spiffeId) return e.peer.spiffeId;
  return '';
}

/** A coloured word. */
export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${String(kind).replace(/[^a-z-]/g, '')}` }, text);
}

/** A <dl> from [label, value] pairs (values may be nodes); pairs with undefined values are left out. */
export function fields(pairs) {
  const dl = h('dl', { class: 'fields' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(h('dt', {}, k), h('dd', {}, v === null || v === '' ? '–' : v));
  }
  return dl;
}

/** A table with a caption and column headers; `rows` are arrays of cells (strings or nodes); `numeric`: right-aligned column indexes. */
export function table(caption, headers, rows, opts = {}) {
  const num = (i) => (opts.numeric?.includes(i) ? 'num' : undefined);
  const head = h('tr', {}, headers.map((c, i) => h('th', { scope: 'col', class: num(i) }, c)));
  const body = h('tbody', {}, rows.map((r) => r instanceof Node ? r : h('tr', {}, r.map((c, i) => h('td', { class: num(i) }, c)))));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', {}, caption), h('thead', {}, head), body));
}

/** Announces a message to screen readers (the polite live region). */
export function announce(text) {
  const r = document.getElementById('announce');
  if (r) r.textContent = text;
}

/** A notice box. */
export function notice(kind, ...content) {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : undefined }, ...content);
}
