// Events: the filters of `meshgate audit query` (same names), a paginated table.
import { get, ApiProblem } from '../api.js';
import { eventTable } from '../event-table.js';
import { h, mount, notice, announce, fmtCount } from '../dom.js';

/** Filter fields: [param, label, kind, hint]. */
const FILTERS = [
  ['since', 'Since', 'text', '1h, 7d, 2026-01-31T12:00:00Z'],
  ['until', 'Until', 'text', 'now, 2026-01-31'],
  ['identity', 'Identity', 'text', 'SPIFFE ID or subject; * suffix = prefix'],
  ['route', 'Route', 'text', 'route name'],
  ['path-prefix', 'Path prefix', 'text', '/orders'],
  ['method', 'Method', 'select', ['', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']],
  ['decision', 'Decision', 'select', ['', 'allow', 'deny']],
  ['reason', 'Reason', 'text', 'authz_no_matching_rule'],
  ['status', 'Status', 'text', '403, 4xx, 400-499'],
  ['min-latency', 'Min. latency', 'text', '250ms'],
  ['request-id', 'Request id', 'text', ''],
  ['type', 'Type', 'select', ['', 'request', 'tls_handshake', 'alarm']],
];
const PAGE_SIZES = ['25', '50', '100', '250', '500'];

function field([name, label, kind, hint], value) {
  const id = `f-${name}`;
  const control = kind === 'select'
    ? h('select', { id, name }, hint.map((v) => h('option', { value: v, selected: v === value }, v === '' ? 'any' : v)))
    : h('input', { id, name, type: 'text', value, placeholder: hint, autocomplete: 'off', spellcheck: 'false' });
  return h('div', {}, h('label', { for: id }, label), control);
}

export async function renderEvents(main, params, ctx) {
  const query = {};
  for (const [name] of FILTERS) if (params.get(name)) query[name] = params.get(name);
  const limit = PAGE_SIZES.includes(params.get('limit') ?? '') ? params.get('limit') : '50';
  const offset = /^\d+$/.test(params.get('offset') ?? '') ? params.get('offset') : '0';
  const form = h('form', { class: 'panel', id: 'filters', 'aria-label': 'Event filters' },
    h('div', { class: 'filters' }, FILTERS.map((f) => field(f, query[f[0]] ?? '')),
      h('div', {}, h('label', { for: 'f-limit' }, 'Page size'), h('select', { id: 'f-limit', name: 'limit' }, PAGE_SIZES.map((s) => h('option', { value: s, selected: s === limit }, s))))),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'button-primary' }, 'Apply filters'),
      h('button', { type: 'button', id: 'reset-filters' }, 'Reset')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim() !== '' && !(k === 'limit' && v === '50')) next.set(k, String(v).trim());
    window.location.hash = `#/events?${next}`;
  });
  form.querySelector('#reset-filters').addEventListener('click', () => { window.location.hash = '#/events'; });

  let data;
  let problem = null;
  try {
    data = await get('/api/events', { ...query, limit, offset });
  } catch (err) {
    if (!(err instanceof ApiProblem) || err.status !== 400) throw err;
    problem = err;
  }
  if (!ctx.current()) return;
  if (problem) {
    const input = problem.param ? form.querySelector(`[name="${CSS.escape(problem.param)}"]`) : null;
    const msg = notice('error', `Filter not accepted: ${problem.message}`);
    msg.id = 'filter-error';
    if (input) { input.setAttribute('aria-invalid', 'true'); input.setAttribute('aria-describedby', 'filter-error'); }
    mount(main, h('h1', {}, 'Audit events'), form, msg);
    input?.focus();
    return;
  }
  const page = data.page;
  const go = (o) => {
    const next = new URLSearchParams(params);
    if (o > 0) next.set('offset', String(o)); else next.delete('offset');
    window.location.hash = `#/events?${next}`;
  };
  const from = page.offset + 1;
  const to = page.offset + data.items.length;
  mount(main,
    h('h1', {}, 'Audit events'),
    form,
    data.damaged > 0 ? notice('warn', `${data.damaged} damaged audit line(s) were reported while reading (first: ${data.damagedLines[0]?.segment}:${data.damagedLines[0]?.line} — ${data.damagedLines[0]?.reason}). Verify the chain.`) : null,
    data.items.length === 0
      ? h('p', { class: 'muted', id: 'no-events' }, 'No events match these filters.')
      : eventTable(`Events ${fmtCount(from)}–${fmtCount(to)}, newest first`, data.items),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', id: 'page-newer', disabled: page.prevOffset === null, onclick: () => go(page.prevOffset) }, '← Newer'),
      h('button', { type: 'button', id: 'page-older', disabled: page.nextOffset === null, onclick: () => go(page.nextOffset) }, 'Older →'),
      h('span', { class: 'muted small' }, `${fmtCount(data.scanned)} lines scanned`)));
  announce(`${data.items.length} events shown`);
}
