import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { RemediationOrder } from '../../src/analyzer/types.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { DecisionsFileError, readDecisionsFile } from '../../src/decisions/decisions-file.ts';
import { escalatedDuration, offenceNumber } from '../../src/decisions/escalation.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-decisions-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function order(alertId: string, over: Partial<RemediationOrder> = {}): RemediationOrder {
  return { rule: 'brute', alertId, scope: 'spiffe', value: 'spiffe://mesh.local/ns/a/sa/x', durationMs: HOUR, simulated: false, ...over };
}

test('a rule order creates a decision with createdAt/expiresAt from the order time and offence 1', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0) });
  const r = await store.add(order('a1'), { at: T0 + 5000 });
  assert.equal(r.status, 'created');
  assert.ok(r.status === 'created');
  assert.equal(r.decision.offence, 1);
  assert.equal(r.decision.origin, 'brute');
  assert.equal(r.decision.alertId, 'a1');
  assert.equal(r.decision.createdAt, new Date(T0 + 5000).toISOString());
  assert.equal(r.decision.expiresAt, new Date(T0 + 5000 + HOUR).toISOString());
  assert.match(r.decision.id, /^d-[0-9a-f]{24}$/);
  const doc = await readDecisionsFile(store.file);
  assert.equal(doc.v, 1);
  assert.deepEqual(doc.decisions, [r.decision]);
});

test('the same order again returns the existing decision (idempotent re-processing after a crash)', async (t) => {
  const dir = tmp(t);
  const a = await DecisionStore.open(dir, { clock: new ManualClock(T0) });
  const first = await a.add(order('a1'), { at: T0 });
  // A fresh store (a restarted analyzer), long after the first decision expired.
  const b = await DecisionStore.open(dir, { clock: new ManualClock(T0) });
  const again = await b.add(order('a1'), { at: T0 + 2 * HOUR });
  assert.equal(again.status, 'existing');
  assert.ok(first.status === 'created' && again.status === 'existing');
  assert.equal(again.decision.id, first.decision.id);
  assert.equal((await readDecisionsFile(a.file)).decisions.length, 1);
});

test('an order for a scope/value that is already quarantined is not a new offence', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0) });
  const first = await store.add(order('a1'), { at: T0 });
  const second = await store.add(order('a2'), { at: T0 + 10 * 60_000 });
  assert.equal(second.status, 'existing');
  assert.ok(first.status === 'created' && second.status === 'existing');
  assert.equal(second.decision.id, first.decision.id);
});

test('repeat offenders within the lookback get doubled durations, capped at the maximum', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0), escalation: { lookbackMs: 24 * HOUR, maxDurationMs: 4 * HOUR } });
  const expected = [1, 2, 4, 4];
  let at = T0;
  for (let i = 0; i < expected.length; i++) {
    const r = await store.add(order(`a${i}`), { at });
    assert.ok(r.status === 'created', `offence ${i + 1} is created`);
    assert.equal(r.decision.offence, i + 1);
    assert.equal(Date.parse(r.decision.expiresAt) - at, (expected[i] as number) * HOUR, `offence ${i + 1}`);
    at = Date.parse(r.decision.expiresAt) + 1000; // the next attack comes after this quarantine ended
  }
});

test('offences older than the lookback are forgotten', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0), escalation: { lookbackMs: 2 * HOUR } });
  await store.add(order('a1'), { at: T0 });
  const r = await store.add(order('a2'), { at: T0 + 3 * HOUR });
  assert.ok(r.status === 'created');
  assert.equal(r.decision.offence, 1);
  assert.equal(Date.parse(r.decision.expiresAt) - (T0 + 3 * HOUR), HOUR);
});

test('simulated decisions escalate separately from enforced ones', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0) });
  await store.add(order('s1', { simulated: true }), { at: T0 });
  const real = await store.add(order('r1'), { at: T0 + 60_000 });
  assert.ok(real.status === 'created');
  assert.equal(real.decision.offence, 1);
  assert.equal(real.decision.simulated, false);
});

test('an exception suppresses the rule order for its scope/value until it expires; "*" covers every rule', async (t) => {
  const store = await DecisionStore.open(tmp(t), { clock: new ManualClock(T0) });
  const x = await store.addException({ rule: 'brute', scope: 'spiffe', value: 'spiffe://mesh.local/ns/a/sa/x', durationMs: HOUR, note: 'load test' }, { at: T0 });
  assert.match(x.id, /^x-[0-9a-f]{24}$/);
  const r = await store.add(order('a1'), { at: T0 + 1000 });
  assert.equal(r.status, 'excepted');
  assert.ok(r.status === 'excepted');
  assert.equal(r.exception.id, x.id);
  // A different rule is not covered by a rule-specific exception.
  assert.equal((await store.add(order('a2', { rule: 'probe' }), { at: T0 + 2000 })).status, 'created');
  // After expiry, the rule orders quarantines again.
  assert.equal((await store.add(order('a3', { value: 'spiffe://mesh.local/ns/a/sa/x', alertId: 'a3' }), { at: T0 + 2 * HOUR })).status, 'created');
  await store.addException({ rule: '*', scope: 'ip', value: '10.0.0.9', durationMs: HOUR }, { at: T0 });
  assert.equal((await store.add(order('a4', { rule: 'anything', scope: 'ip', value: '10.0.0.9' }), { at: T0 + 1 })).status, 'excepted');
  assert.ok(await store.exceptionFor('anything', 'ip', '10.0.0.9', T0 + 1));
  assert.equal(await store.exceptionFor('anything', 'ip', '10.0.0.10', T0 + 1), undefined);
});

test('manual decisions keep their duration, do not escalate and can be deleted (unban)', async (t) => {
  const clock = new ManualClock(T0);
  const store = await DecisionStore.open(tmp(t), { clock });
  await store.add(order('a1', { scope: 'ip', value: '10.1.1.1' }), { at: T0 - 2 * HOUR });
  const m = await store.add({ scope: 'ip', value: '10.1.1.1', durationMs: 30 * 60_000, reason: 'incident 42' });
  assert.ok(m.status === 'created');
  assert.equal(m.decision.origin, 'manual');
  assert.equal(m.decision.reason, 'incident 42');
  assert.equal(m.decision.offence, 1);
  assert.equal(Date.parse(m.decision.expiresAt) - T0, 30 * 60_000);
  assert.deepEqual((await store.active()).map((d) => d.id), [m.decision.id]);
  const removed = await store.remove(m.decision.id);
  assert.equal(removed?.id, m.decision.id);
  assert.deepEqual(await store.active(), []);
  assert.equal(await store.remove('d-nope'), undefined);
});

test('list hides expired entries unless asked; expired decisions stay for the lookback, then are pruned', async (t) => {
  const clock = new ManualClock(T0);
  const store = await DecisionStore.open(tmp(t), { clock, escalation: { lookbackMs: 3 * HOUR } });
  await store.add(order('a1'), { at: T0 });
  await store.addException({ rule: 'x', scope: 'sub', value: 'bob', durationMs: HOUR }, { at: T0 });
  clock.set(T0 + 2 * HOUR);
  assert.deepEqual(await store.list(), { decisions: [], exceptions: [] });
  const all = await store.list({ includeExpired: true });
  assert.equal(all.decisions.length, 1);
  assert.equal(all.exceptions.length, 1);
  // The expired exception goes at once; the decision is still history for escalation.
  assert.equal(await store.prune(), 1);
  clock.set(T0 + 4 * HOUR);
  assert.equal(await store.prune(), 1);
  assert.deepEqual(await store.list({ includeExpired: true }), { decisions: [], exceptions: [] });
});

test('a corrupt decisions file is refused with the file and the reason', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(path.join(dir, 'decisions.json'), '{"v":1,"decisions":[{"id":"d-1"}],"exceptions":[]}');
  await assert.rejects(DecisionStore.open(dir), (e: unknown) => e instanceof DecisionsFileError && /decisions\.0\.scope/.test(e.message));
  fs.writeFileSync(path.join(dir, 'decisions.json'), '{not json');
  await assert.rejects(DecisionStore.open(dir), (e: unknown) => e instanceof DecisionsFileError && /not valid JSON/.test(e.message));
});

test('caller misuse is a TypeError: unknown scope, empty value, non-positive duration', async (t) => {
  const store = await DecisionStore.open(tmp(t));
  await assert.rejects(async () => store.add({ scope: 'host' as never, value: 'x', durationMs: 1000 }), TypeError);
  await assert.rejects(async () => store.add({ scope: 'ip', value: '', durationMs: 1000 }), TypeError);
  await assert.rejects(async () => store.add({ scope: 'ip', value: '1.2.3.4', durationMs: 0 }), TypeError);
  await assert.rejects(async () => store.addException({ rule: '', scope: 'ip', value: '1.2.3.4', durationMs: 1000 }), TypeError);
});

test('escalation helpers: offence counts only rule decisions of the same kind inside the lookback', () => {
  const policy = { lookbackMs: HOUR, maxDurationMs: 10 * HOUR };
  const d = (createdAt: number, over: object = {}) => ({
    id: 'd', scope: 'sub' as const, value: 'bob', origin: 'brute', reason: '', createdAt: new Date(createdAt).toISOString(),
    expiresAt: new Date(createdAt + 1).toISOString(), simulated: false, offence: 1, ...over,
  });
  const history = [d(T0 - 2 * HOUR), d(T0 - 30 * 60_000), d(T0 - 10 * 60_000, { origin: 'manual' }), d(T0 - 5 * 60_000, { simulated: true }), d(T0 - 1, { value: 'eve' })];
  assert.equal(offenceNumber(history, 'sub', 'bob', false, T0, policy), 2);
  assert.equal(escalatedDuration(HOUR, 1, policy), HOUR);
  assert.equal(escalatedDuration(HOUR, 3, policy), 4 * HOUR);
  assert.equal(escalatedDuration(HOUR, 60, policy), 10 * HOUR);
  assert.equal(escalatedDuration(20 * HOUR, 2, policy), 20 * HOUR, 'a base above the cap is kept, never shortened');
});

test('concurrent writers in two processes lose no update (read-modify-write under the lock)', async (t) => {
  const dir = tmp(t);
  const storeUrl = pathToFileURL(path.resolve('src/decisions/decision-store.ts')).href;
  const code = `
    const { DecisionStore } = await import(${JSON.stringify(storeUrl)});
    const s = await DecisionStore.open(process.argv[1]);
    for (let i = 0; i < 15; i++) await s.add({ scope: 'ip', value: process.argv[2] + '.' + i, durationMs: 3600000 });
  `;
  const node = process.execPath;
  const run = (prefix: string) => new Promise<number>((resolve, reject) => {
    const c = spawn(node, ['--input-type=module', '-e', code, dir, prefix], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('error', reject);
    c.on('exit', (code) => resolve(code ?? -1));
  });
  const local = await DecisionStore.open(dir);
  const mine = (async () => {
    for (let i = 0; i < 15; i++) await local.add({ scope: 'ip', value: `10.9.9.${i}`, durationMs: HOUR });
  })();
  const codes = await Promise.all([run('10.1.1'), run('10.2.2'), mine.then(() => 0)]);
  assert.deepEqual(codes, [0, 0, 0]);
  const doc = await readDecisionsFile(local.file);
  assert.equal(doc.decisions.length, 45);
  assert.equal(new Set(doc.decisions.map((d) => d.value)).size, 45);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f !== 'decisions.json'), [], 'no lock or temp file left behind');
});
