// The audit event table (events page, alert evidence, related events).
// Every row links to the event page; the link is in the first cell so the
// table works by keyboard, and a click anywhere on the row follows it.
import { h, badge, fmtTime, fmtLatency, identityOf } from './dom.js';

export const COLUMNS = ['Time', 'Decision', 'Status', 'Method', 'Path', 'Identity', 'Reason', 'Latency'];

/** A table of audit events. */
export function eventTable(caption, events) {
  const rows = events.map((e) => {
    const href = `#/events/${encodeURIComponent(e.id)}`;
    const tr = h('tr', { class: 'clickable', dataset: { eventId: e.id } },
      h('td', {}, h('a', { href, 'aria-label': `Event at ${fmtTime(e.time)}: ${e.decision} ${e.method ?? ''} ${e.path ?? ''}` }, fmtTime(e.time))),
      h('td', {}, badge(e.decision)),
      h('td', { class: 'num' }, e.status === 0 ? '–' : String(e.status)),
      h('td', {}, e.method ?? '–'),
      h('td', { class: 'wrap mono' }, e.path ?? e.rawPath ?? (e.type === 'tls_handshake' ? '(TLS handshake)' : '–')),
      h('td', { class: 'wrap' }, identityOf(e) || h('span', { class: 'muted' }, '–')),
      h('td', { class: 'mono' }, e.reason),
      h('td', { class: 'num' }, fmtLatency(e.latencyMs)));
    tr.addEventListener('click', (ev) => {
      if (ev.target instanceof Element && ev.target.closest('a')) return;
      window.location.hash = href;
    });
    return tr;
  });
  const head = h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', class: c === 'Status' || c === 'Latency' ? 'num' : undefined }, c)));
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'events' }, h('caption', {}, caption), h('thead', {}, head), h('tbody', {}, rows)));
}
