// One audit event: what was recorded, the decision explanation stage by
// stage, what the current policy would decide, related events and alerts.
import { get } from '../api.js';
import { eventTable } from '../event-table.js';
import { h, mount, badge, fields, fmtTime, fmtLatency, notice } from '../dom.js';

const STAGE_LABELS = {
  tls: 'TLS peer', normalize: 'Normalize path', route: 'Route', authn: 'Authenticate', jwt: 'Token (JWT)',
  authz: 'Authorize (policy)', quarantine: 'Quarantine', upstream: 'Upstream', hygiene: 'Header hygiene',
};

function stageTable(caption, stages, id) {
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Stage'), h('th', { scope: 'col' }, 'Verdict'), h('th', { scope: 'col' }, 'Detail'))),
    h('tbody', {}, stages.map((s) => h('tr', { dataset: { stage: s.stage, verdict: s.verdict } },
      h('th', { scope: 'row' }, STAGE_LABELS[s.stage] ?? s.stage),
      h('td', {}, badge(s.verdict)),
      h('td', { class: 'wrap' }, s.summary))))));
}

function currentSection(current, recordedAllowed) {
  if (current === null) return h('p', { class: 'muted' }, 'Not applicable to this event (only HTTP requests can be re-evaluated).');
  if (current.error) return notice('warn', `Could not re-evaluate: ${current.error}`);
  const r = current.report;
  return h('div', {},
    current.flipped
      ? notice('warn', `The current policy would ${r.allowed ? 'ALLOW' : 'DENY'} this request; it was ${recordedAllowed ? 'allowed' : 'denied'} when recorded.`)
      : notice('ok', `The current policy decides the same: ${r.allowed ? 'allow' : 'deny'} (${r.reason}).`),
    stageTable('Stages with the current configuration', r.stages, 'current-stages'),
    r.notes.length ? h('ul', { class: 'notes small' }, r.notes.map((n) => h('li', {}, n))) : null);
}

export async function renderEvent(main, id, ctx) {
  const d = await get(`/api/events/${encodeURIComponent(id)}`);
  if (!ctx.current()) return;
  const e = d.event;
  const x = d.explanation;
  const peer = e.peer && e.peer.spiffeId ? `${e.peer.spiffeId}` : null;
  mount(main,
    h('p', {}, h('a', { href: '#/events' }, '← All events')),
    h('h1', {}, 'Audit event ', h('span', { class: 'mono small' }, e.id)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-summary' },
      h('h2', { id: 'h-summary' }, 'Summary'),
      fields([
        ['Time', fmtTime(e.time)], ['Type', e.type], ['Decision', badge(e.decision)],
        ['Reason', h('span', {}, h('code', {}, e.reason), x.title ? ` — ${x.title}` : '', x.code ? h('span', { class: 'muted small' }, ` (${x.code})`) : '')],
        ['Status', e.status === 0 ? 'no HTTP response (TLS)' : String(e.status)],
        ['Request', e.method ? h('code', {}, `${e.method} ${e.path ?? ''}`) : '–'],
        ['Received path', e.rawPath ? h('code', {}, e.rawPath) : undefined],
        ['Route', e.route], ['Peer', peer], ['Certificate', e.peer?.fingerprint ? h('code', { class: 'small' }, e.peer.fingerprint) : undefined],
        ['Principal', e.principal ? `${e.principal.sub} (iss ${e.principal.iss})` : null],
        ['Token id', e.jti ?? undefined], ['Source', `${e.source.ip}:${e.source.port}`], ['Request id', h('code', {}, e.requestId)],
        ['Matched rule', e.rule ? h('code', {}, e.rule) : null], ['Policy version', e.policyVersion],
        ['Latency', fmtLatency(e.latencyMs)], ['Bytes in / out', `${e.bytesIn} / ${e.bytesOut}`],
      ])),
    h('section', { class: 'panel', 'aria-labelledby': 'h-explain', id: 'explanation' },
      h('h2', { id: 'h-explain' }, 'Decision explanation (as recorded)'),
      x.stages.length ? stageTable('Pipeline stages', x.stages, 'recorded-stages') : null,
      h('h3', {}, 'Shadow policy'),
      x.shadow ? h('p', { id: 'shadow' }, badge(x.shadow.decision), ` ${x.shadow.reason}; rule `, h('code', {}, x.shadow.rule ?? '(none)'),
        x.shadow.mismatch ? badge('mismatch', 'warn') : '') : h('p', { class: 'muted', id: 'shadow' }, 'No shadow policy was evaluated.'),
      h('h3', {}, 'Quarantine'),
      x.quarantine ? h('p', { id: 'quarantine' }, x.quarantine.simulated ? badge('simulated') : badge('enforced', 'deny'), ' decision ', h('code', {}, x.quarantine.decisionId), ` (scope ${x.quarantine.scope})`)
        : h('p', { class: 'muted', id: 'quarantine' }, 'No quarantine decision applied.'),
      x.notes.length ? h('ul', { class: 'notes' }, x.notes.map((n) => h('li', {}, n))) : null),
    h('section', { class: 'panel', 'aria-labelledby': 'h-current' },
      h('h2', { id: 'h-current' }, 'With the current policy'),
      h('p', { class: 'muted small' }, 'The same method, path and identity run through the live configuration (the token itself is not recorded: its subject is assumed, its claims are not known).'),
      currentSection(d.current, e.decision === 'allow')),
    d.alerts.length ? h('section', { class: 'panel' }, h('h2', {}, 'Alerts citing this event'),
      h('ul', {}, d.alerts.map((a) => h('li', {}, badge(a.severity), ' ', h('a', { href: `#/alerts/${encodeURIComponent(a.id)}` }, `${a.rule}: ${a.title}`))))) : null,
    d.related.length ? h('section', { class: 'panel' }, h('h2', {}, 'Related events (same request id)'), eventTable('Related events', d.related)) : null,
    h('section', { class: 'panel' }, h('h2', {}, 'Raw record'), h('pre', { class: 'raw' }, JSON.stringify(e, null, 2))));
}
