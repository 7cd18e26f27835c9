// Audit chain: the last verification (`meshgate audit verify`) and a button to run one now.
import { get, post, ApiProblem } from '../api.js';
import { h, mount, badge, fields, fmtTime, fmtCount, notice, announce } from '../dom.js';

function result(last) {
  if (!last) return h('p', { class: 'muted', id: 'chain-result' }, 'Not verified since the gateway started.');
  const verdict = last.error ? badge('unreadable', 'fail') : last.ok ? badge('intact') : badge('broken');
  const p = last.problem;
  return h('div', { id: 'chain-result', dataset: { ok: String(last.ok) } },
    h('p', {}, verdict, ' ', last.error ? last.error : last.ok
      ? `${fmtCount(last.records)} records, unmodified and in order${last.head ? `; the last checkpoint (HEAD.json) is at seq ${fmtCount(last.head.seq)}` : '; no checkpoint yet'}.`
      : 'The log was modified, truncated, reordered or spliced: see the first bad record.'),
    fields([
      ['Verified at', fmtTime(last.finishedAt)], ['Took', `${fmtCount(last.durationMs)} ms`],
      ['Records', fmtCount(last.records)], ['Segments', fmtCount(last.segments)], ['Last seq', fmtCount(last.lastSeq)],
      ['Checkpoint', last.head ? `seq ${last.head.seq} (${fmtTime(last.head.time)})` : 'none'],
    ]),
    p ? h('div', { class: 'notice notice-error', id: 'chain-problem', role: 'alert' },
      h('strong', {}, `First bad record: ${p.kind}`), h('br'),
      `${p.segment}${p.line ? ` line ${p.line}` : ''}${p.seq !== undefined ? `, seq ${p.seq}` : ''}: ${p.message}`) : null,
    last.warnings.length ? h('ul', { class: 'notes small' }, last.warnings.map((w) => h('li', {}, w))) : null);
}

export async function renderChain(main, ctx, state) {
  const s = state ?? await get('/api/chain');
  if (!ctx.current()) return;
  const status = h('p', { role: 'status', id: 'verify-status', class: 'muted' });
  const button = h('button', { type: 'button', class: 'button-primary', id: 'verify-now', disabled: s.running }, 'Verify now');
  button.addEventListener('click', async () => {
    button.disabled = true;
    status.textContent = 'Verifying the whole log…';
    try {
      const next = await post('/api/chain/verify');
      announce(next.last.ok ? 'Audit chain intact.' : 'Audit chain broken.');
      await renderChain(main, ctx, next);
    } catch (err) {
      status.textContent = err instanceof ApiProblem ? `Verification failed: ${err.message}` : String(err);
      button.disabled = false;
    }
  });
  mount(main,
    h('h1', {}, 'Audit chain'),
    h('p', { class: 'muted' }, 'Each audit record is chained by hash to the one before and checkpointed in HEAD.json. Verification reads the whole log and names the first record that was modified, deleted, inserted, reordered or truncated.'),
    h('section', { class: 'panel', 'aria-labelledby': 'h-last' }, h('h2', { id: 'h-last' }, 'Last verification'), result(s.last),
      h('div', { class: 'form-actions' }, button, status)),
    s.last && !s.last.ok && !s.last.error ? notice('warn', 'Keep a copy of the damaged log before anything rotates it; `meshgate audit verify DIR` gives the same answer offline.') : null);
}
