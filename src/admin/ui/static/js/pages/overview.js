// Overview: requests, denials and alerts over time; top denied identities and routes.
import { get } from '../api.js';
import { timeChart } from '../charts.js';
import { h, mount, table, fmtCount, notice } from '../dom.js';

/** Time ranges offered, and the bucket width that keeps each chart to 60–170 points. */
export const RANGES = [
  { since: '1h', bucket: '1m', label: 'Last hour' },
  { since: '6h', bucket: '5m', label: 'Last 6 hours' },
  { since: '24h', bucket: '15m', label: 'Last 24 hours' },
  { since: '7d', bucket: '1h', label: 'Last 7 days' },
];

function eventsLink(params, text) {
  return h('a', { href: `#/events?${new URLSearchParams(params)}` }, text);
}

function topTable(caption, by, top, since) {
  if (top.groups.length === 0) return h('p', { class: 'muted' }, `No denied requests in this range.`);
  const rows = top.groups.map((g) => [
    g.key === null ? h('span', { class: 'muted' }, by === 'identity' ? '(no verified identity)' : '(none)')
      : eventsLink({ decision: 'deny', since, ...(by === 'identity' ? { identity: g.key } : { route: g.key }) }, g.key),
    fmtCount(g.count),
  ]);
  return table(caption, [by === 'identity' ? 'Identity' : 'Route', 'Denials'], rows, { numeric: [1] });
}

export async function renderOverview(main, params, ctx) {
  const range = RANGES.find((r) => r.since === params.get('range')) ?? RANGES[0];
  const [ts, ids, routes] = await Promise.all([
    get('/api/stats/timeseries', { bucket: range.bucket, since: range.since }),
    get('/api/stats/top', { by: 'identity', decision: 'deny', since: range.since, limit: 10 }),
    get('/api/stats/top', { by: 'route', decision: 'deny', since: range.since, limit: 10 }),
  ]);
  if (!ctx.current()) return;
  const select = h('select', { id: 'range' }, RANGES.map((r) => h('option', { value: r.since, selected: r === range }, r.label)));
  select.addEventListener('change', () => { window.location.hash = `#/overview?range=${encodeURIComponent(select.value)}`; });
  const traffic = timeChart('chart-traffic', 'Requests and denials', ts.t, { requests: ts.requests, denials: ts.denials });
  const alerts = timeChart('chart-alerts', 'Alerts raised', ts.t, { alerts: ts.alerts });
  const total = (xs) => xs.reduce((a, b) => a + b, 0);
  mount(main,
    h('h1', {}, 'Overview'),
    h('div', { class: 'toolbar' }, h('div', {}, h('label', { for: 'range' }, 'Time range'), select),
      h('p', { class: 'muted small' }, `Buckets of ${range.bucket}, times in UTC. `,
        eventsLink({ since: range.since }, `${fmtCount(total(ts.requests))} requests`), ', ',
        eventsLink({ since: range.since, decision: 'deny' }, `${fmtCount(total(ts.denials))} denied`), ', ',
        h('a', { href: '#/alerts' }, `${fmtCount(total(ts.alerts))} alerts`), '.')),
    ts.damaged > 0 ? notice('warn', `${ts.damaged} damaged audit line(s) could not be read; see Audit chain.`) : null,
    h('div', { class: 'grid-2' }, h('section', { class: 'panel' }, traffic), h('section', { class: 'panel' }, alerts)),
    h('div', { class: 'grid-2' },
      h('section', { class: 'panel', 'aria-labelledby': 'top-ids' }, h('h2', { id: 'top-ids' }, 'Top denied identities'), topTable('Identities with the most denied requests', 'identity', ids, range.since)),
      h('section', { class: 'panel', 'aria-labelledby': 'top-routes' }, h('h2', { id: 'top-routes' }, 'Top denied routes'), topTable('Routes with the most denied requests', 'route', routes, range.since))),
  );
  traffic.draw();
  alerts.draw();
}
