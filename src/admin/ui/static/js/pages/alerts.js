// Alerts: what the analyzer raised, newest first, with their review state.
import { get } from '../api.js';
import { h, mount, badge, fmtTime, fmtCount, announce } from '../dom.js';

const STATES = [['all', 'All'], ['open', 'Open'], ['acked', 'Acknowledged']];
const SEVERITIES = ['low', 'medium', 'high', 'critical'];

/** The review state of an alert as a badge. */
export function stateBadge(a) {
  if (a.ack?.falsePositive) return badge('false positive', 'info');
  if (a.ack) return badge('acknowledged', 'ok');
  return badge('open', 'warn');
}

export async function renderAlerts(main, params, ctx) {
  const state = STATES.some(([v]) => v === params.get('state')) ? params.get('state') : 'all';
  const severity = SEVERITIES.includes(params.get('severity')) ? params.get('severity') : 'low';
  const offset = /^\d+$/.test(params.get('offset') ?? '') ? Number(params.get('offset')) : 0;
  const data = await get('/api/alerts', { state, severity, offset, limit: 50 });
  if (!ctx.current()) return;
  const form = h('form', { class: 'toolbar', 'aria-label': 'Alert filters' },
    h('div', {}, h('label', { for: 'a-state' }, 'State'), h('select', { id: 'a-state', name: 'state' }, STATES.map(([v, l]) => h('option', { value: v, selected: v === state }, l)))),
    h('div', {}, h('label', { for: 'a-severity' }, 'Severity at least'), h('select', { id: 'a-severity', name: 'severity' }, SEVERITIES.map((s) => h('option', { value: s, selected: s === severity }, s)))),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.location.hash = `#/alerts?${new URLSearchParams(new FormData(form))}`;
  });
  const rows = data.items.map((a) => {
    const href = `#/alerts/${encodeURIComponent(a.id)}`;
    const tr = h('tr', { class: 'clickable', dataset: { alertId: a.id } },
      h('td', {}, badge(a.severity)),
      h('td', {}, h('a', { href }, a.rule), h('div', { class: 'muted small' }, a.title)),
      h('td', { class: 'wrap' }, h('span', { class: 'muted' }, `${a.scope} `), a.value),
      h('td', { class: 'num' }, fmtCount(a.count)),
      h('td', {}, fmtTime(a.firstSeen)),
      h('td', {}, fmtTime(a.lastSeen)),
      h('td', {}, a.decisionId ? h('code', { class: 'small' }, a.decisionId) : h('span', { class: 'muted' }, '–')),
      h('td', {}, stateBadge(a)));
    tr.addEventListener('click', (ev) => {
      if (!(ev.target instanceof Element && ev.target.closest('a'))) window.location.hash = href;
    });
    return tr;
  });
  const heads = ['Severity', 'Rule', 'About', 'Events', 'First seen', 'Last seen', 'Quarantine', 'State'];
  const go = (o) => {
    const next = new URLSearchParams(params);
    next.set('offset', String(o));
    window.location.hash = `#/alerts?${next}`;
  };
  mount(main,
    h('h1', {}, 'Alerts'),
    form,
    data.unreadableLines > 0 ? h('p', { class: 'notice notice-warn' }, `${data.unreadableLines} line(s) of alerts.jsonl could not be read.`) : null,
    rows.length === 0 ? h('p', { class: 'muted', id: 'no-alerts' }, 'No alerts.') : h('div', { class: 'table-wrap' }, h('table', { id: 'alerts' },
      h('caption', {}, `${fmtCount(data.page.total)} alert(s), newest first`),
      h('thead', {}, h('tr', {}, heads.map((c) => h('th', { scope: 'col', class: c === 'Events' ? 'num' : undefined }, c)))),
      h('tbody', {}, rows))),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', disabled: data.page.prevOffset === null, onclick: () => go(data.page.prevOffset) }, '← Newer'),
      h('button', { type: 'button', disabled: data.page.nextOffset === null, onclick: () => go(data.page.nextOffset) }, 'Older →')));
  announce(`${rows.length} alerts shown`);
}
