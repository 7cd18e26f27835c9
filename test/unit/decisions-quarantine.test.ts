import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Decision } from '../../src/analyzer/types.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { DecisionsFileError } from '../../src/decisions/decisions-file.ts';
import { QuarantineTable } from '../../src/decisions/quarantine-table.ts';
import { watchQuarantine } from '../../src/decisions/watch-quarantine.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function decision(over: Partial<Decision>): Decision {
  return {
    id: 'd-1', scope: 'spiffe', value: 'spiffe://mesh.local/a', origin: 'brute', reason: 'rule brute',
    createdAt: new Date(T0).toISOString(), expiresAt: new Date(T0 + HOUR).toISOString(), simulated: false, offence: 1, ...over,
  };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-quarantine-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const table = (decisions: Decision[]): QuarantineTable => {
  const q = new QuarantineTable();
  q.replace({ v: 1, decisions, exceptions: [] });
  return q;
};

test('match finds an enforced decision by each scope and ignores absent or empty keys', () => {
  const q = table([
    decision({ id: 'd-spiffe', scope: 'spiffe', value: 'spiffe://mesh.local/a' }),
    decision({ id: 'd-sub', scope: 'sub', value: 'alice' }),
    decision({ id: 'd-jti', scope: 'jti', value: 'tok-1' }),
    decision({ id: 'd-cert', scope: 'cert', value: 'AB:CD' }),
    decision({ id: 'd-ip', scope: 'ip', value: '10.0.0.7' }),
  ]);
  const now = T0 + 1000;
  assert.equal(q.match({ spiffe: 'spiffe://mesh.local/a' }, now)?.id, 'd-spiffe');
  assert.equal(q.match({ sub: 'alice' }, now)?.id, 'd-sub');
  assert.equal(q.match({ jti: 'tok-1' }, now)?.id, 'd-jti');
  assert.equal(q.match({ cert: 'AB:CD' }, now)?.id, 'd-cert');
  assert.equal(q.match({ ip: '10.0.0.7' }, now)?.id, 'd-ip');
  assert.equal(q.match({ spiffe: null, sub: '', jti: undefined, ip: '10.0.0.8' }, now), undefined);
  // Values are matched exactly, per scope: an IP value is not a subject.
  assert.equal(q.match({ sub: '10.0.0.7' }, now), undefined);
  assert.equal(q.match({ spiffe: 'spiffe://mesh.local/a/', sub: 'Alice' }, now), undefined);
});

test('the most specific scope wins when several decisions match one request', () => {
  const q = table([decision({ id: 'd-ip', scope: 'ip', value: '10.0.0.7' }), decision({ id: 'd-jti', scope: 'jti', value: 'tok-1' })]);
  assert.equal(q.match({ ip: '10.0.0.7', jti: 'tok-1' }, T0)?.id, 'd-jti');
});

test('an expired decision does not match; the longest-lasting of several for one key decides', () => {
  const q = table([
    decision({ id: 'd-short', expiresAt: new Date(T0 + 60_000).toISOString() }),
    decision({ id: 'd-long', expiresAt: new Date(T0 + HOUR).toISOString() }),
    decision({ id: 'd-old', scope: 'sub', value: 'bob', expiresAt: new Date(T0 - 1).toISOString() }),
  ]);
  assert.equal(q.match({ spiffe: 'spiffe://mesh.local/a' }, T0 + 2 * 60_000)?.id, 'd-long');
  assert.equal(q.match({ spiffe: 'spiffe://mesh.local/a' }, T0 + HOUR), undefined, 'expiry is exclusive');
  assert.equal(q.match({ sub: 'bob' }, T0), undefined);
});

test('simulated decisions never match, only wouldMatch', () => {
  const q = table([decision({ id: 'd-sim', simulated: true, scope: 'sub', value: 'carol' })]);
  assert.equal(q.match({ sub: 'carol' }, T0), undefined);
  assert.equal(q.wouldMatch({ sub: 'carol' }, T0)?.id, 'd-sim');
  assert.equal(q.wouldMatch({ sub: 'carol' }, T0 + HOUR), undefined);
});

test('load reads decisions.json; a missing file is an empty table; an invalid one throws and keeps the old table', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'decisions.json');
  const q = new QuarantineTable();
  await q.load(file);
  assert.equal(q.size, 0);
  fs.writeFileSync(file, JSON.stringify({ v: 1, decisions: [decision({ scope: 'ip', value: '10.0.0.1' })], exceptions: [] }));
  await q.load(file);
  assert.equal(q.match({ ip: '10.0.0.1' }, T0)?.id, 'd-1');
  fs.writeFileSync(file, JSON.stringify({ v: 2, decisions: [], exceptions: [] }));
  await assert.rejects(q.load(file), DecisionsFileError);
  assert.equal(q.match({ ip: '10.0.0.1' }, T0)?.id, 'd-1', 'the previous table stays in force');
});

test('match cost does not depend on the number of decisions (one map lookup per scope)', () => {
  const many: Decision[] = [];
  for (let i = 0; i < 50_000; i++) many.push(decision({ id: `d-${i}`, scope: 'ip', value: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
  const q = table(many);
  assert.equal(q.size, 50_000);
  assert.equal(q.match({ ip: '10.0.195.79' }, T0)?.id, 'd-49999');
  assert.equal(q.match({ ip: '10.200.0.1', sub: 'x', spiffe: 'y', jti: 'z', cert: 'w' }, T0), undefined);
});

test('the watcher picks up a decision added by the store without a restart', async (t) => {
  const dir = tmp(t);
  const store = await DecisionStore.open(dir);
  const reloaded: number[] = [];
  const w = await watchQuarantine(store.file, { onReload: (q) => reloaded.push(q.size) });
  t.after(() => w.close());
  assert.equal(w.table.match({ sub: 'mallory' }, Date.now()), undefined);
  assert.equal(w.status().ready, true);
  const r = await store.add({ scope: 'sub', value: 'mallory', durationMs: HOUR });
  assert.ok(r.status === 'created');
  // Wait for the watcher (folder watch or poll); the test fails by timeout if it never reloads.
  while (w.table.match({ sub: 'mallory' }, Date.now())?.id !== r.decision.id) await new Promise((res) => setTimeout(res, 20));
  await store.remove(r.decision.id);
  while (w.table.match({ sub: 'mallory' }, Date.now()) !== undefined) await new Promise((res) => setTimeout(res, 20));
  assert.ok(reloaded.length >= 3);
});

test('the watcher rejects a broken file, reports it in its status and keeps enforcing the last good table', async (t) => {
  const dir = tmp(t);
  const store = await DecisionStore.open(dir);
  await store.add({ scope: 'ip', value: '10.6.6.6', durationMs: HOUR });
  const w = await watchQuarantine(store.file);
  t.after(() => w.close());
  assert.ok(w.table.match({ ip: '10.6.6.6' }, Date.now()));
  fs.writeFileSync(store.file, '{"v":1,"decisions":[');
  await w.reload();
  const s = w.status();
  assert.ok(s.reloadFailures >= 1);
  assert.equal(s.state, 'degraded');
  assert.match(s.lastError ?? '', /not valid JSON/);
  assert.ok(w.table.match({ ip: '10.6.6.6' }, Date.now()), 'still quarantined');
});
