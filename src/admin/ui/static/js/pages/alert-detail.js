// One alert: its fields, evidence events, quarantine decision; acknowledge or
// mark it a false positive (an exception for its rule and identity, and the
// quarantine it ordered lifted).
import { get, post, ApiProblem } from '../api.js';
import { eventTable } from '../event-table.js';
import { h, mount, badge, fields, fmtTime, fmtCount, notice, announce } from '../dom.js';
import { stateBadge } from './alerts.js';

function decisionSection(decision) {
  if (!decision) return h('p', { class: 'muted', id: 'decision' }, 'This alert ordered no quarantine (or it was lifted).');
  const live = Date.parse(decision.expiresAt) > Date.now();
  return h('div', { id: 'decision' },
    h('p', {}, decision.simulated ? badge('simulated') : badge('enforced', 'deny'), ' ', live ? badge('in force', 'warn') : badge('expired', 'info')),
    fields([
      ['Decision', h('code', {}, decision.id)], ['Quarantines', `${decision.scope} ${decision.value}`], ['Origin', decision.origin],
      ['Reason', decision.reason], ['From', fmtTime(decision.createdAt)], ['Until', fmtTime(decision.expiresAt)], ['Offence', String(decision.offence)],
    ]));
}

function reviewSection(d, rerender) {
  const box = h('div', { id: 'review' });
  if (d.ack) {
    box.append(h('p', {}, stateBadge(d), ` by ${d.ack.by} at ${fmtTime(d.ack.at)}`),
      d.ack.note ? h('p', {}, 'Note: ', d.ack.note) : '',
      d.ack.falsePositive ? h('p', { class: 'small' }, 'Exception ', h('code', {}, d.ack.falsePositive.exceptionId),
        d.ack.falsePositive.removedDecisionId ? [' created; quarantine ', h('code', {}, d.ack.falsePositive.removedDecisionId), ' deleted.'] : ' created.') : '');
  }
  const status = h('p', { id: 'review-status', role: 'status' });
  const note = h('textarea', { id: 'review-note', name: 'note', maxlength: '500' });
  const duration = h('select', { id: 'fp-duration', name: 'duration' },
    [['1d', '1 day'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days']].map(([v, l]) => h('option', { value: v, selected: v === '7d' }, l)));
  const act = async (button, path, body, done) => {
    button.disabled = true;
    status.textContent = 'Saving…';
    try {
      await post(path, body);
      announce(done);
      await rerender(done);
    } catch (err) {
      status.textContent = err instanceof ApiProblem ? `Not saved: ${err.message}` : `Not saved: ${err}`;
      button.disabled = false;
    }
  };
  const ackBtn = h('button', { type: 'button', class: 'button-primary', id: 'ack-alert' }, d.ack ? 'Acknowledge again' : 'Acknowledge');
  const fpBtn = h('button', { type: 'button', class: 'button-danger', id: 'false-positive', disabled: Boolean(d.ack?.falsePositive) }, 'Mark false positive');
  const body = () => (note.value.trim() ? { note: note.value.trim() } : {});
  ackBtn.addEventListener('click', () => act(ackBtn, `/api/alerts/${encodeURIComponent(d.alert.id)}/ack`, body(), 'Alert acknowledged.'));
  fpBtn.addEventListener('click', () => act(fpBtn, `/api/alerts/${encodeURIComponent(d.alert.id)}/false-positive`, { ...body(), duration: duration.value },
    'Marked false positive: exception created.'));
  box.append(
    h('div', {}, h('label', { for: 'review-note' }, 'Note (optional)'), note),
    h('div', { class: 'form-actions' }, ackBtn,
      h('span', { class: 'muted' }, 'or'),
      h('label', { for: 'fp-duration', class: 'visually-hidden' }, 'Exception lasts'), duration, fpBtn),
    h('p', { class: 'muted small' }, `A false positive adds an exception: rule ${d.alert.rule} raises no alert and orders no quarantine for ${d.alert.scope} ${d.alert.value} while it lasts; the quarantine this alert ordered is deleted.`),
    status);
  return box;
}

export async function renderAlert(main, id, ctx, message) {
  const d = await get(`/api/alerts/${encodeURIComponent(id)}`);
  if (!ctx.current()) return;
  const a = d.alert;
  const rerender = (msg) => renderAlert(main, id, ctx, msg);
  mount(main,
    h('p', {}, h('a', { href: '#/alerts' }, '← All alerts')),
    h('h1', {}, `${a.title} `, badge(a.severity)),
    message ? notice('ok', message) : null,
    h('section', { class: 'panel', 'aria-labelledby': 'h-alert' },
      h('h2', { id: 'h-alert' }, 'Alert'),
      h('p', {}, a.summary),
      fields([
        ['Id', h('code', {}, a.id)], ['Rule', h('code', {}, a.rule)], ['About', `${a.scope} ${a.value}`],
        ['Events', fmtCount(a.count)], ['First seen', fmtTime(a.firstSeen)], ['Last seen', fmtTime(a.lastSeen)],
        ['Window ends', a.windowEnd ? fmtTime(a.windowEnd) : undefined], ['State', stateBadge(d)],
      ])),
    h('section', { class: 'panel', 'aria-labelledby': 'h-review' }, h('h2', { id: 'h-review' }, 'Review'), reviewSection(d, rerender)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-decision' }, h('h2', { id: 'h-decision' }, 'Quarantine'), decisionSection(d.decision),
      d.exceptions.length ? h('p', { class: 'small' }, `Exceptions in force: ${d.exceptions.map((x) => `${x.id} until ${fmtTime(x.expiresAt)}`).join(', ')}`) : null),
    h('section', { class: 'panel', 'aria-labelledby': 'h-evidence' },
      h('h2', { id: 'h-evidence' }, `Evidence (${d.evidence.length} of ${a.evidence.length} events)`),
      d.evidence.length ? eventTable('Evidence events, oldest first', d.evidence) : h('p', { class: 'muted' }, 'No evidence events found in the audit log.'),
      d.missingEvidence.length ? notice('warn', `Not in this audit log: ${d.missingEvidence.join(', ')}`) : null));
}
