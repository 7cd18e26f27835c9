/**
 * The detection engine's contract: alert emission and de-duplication,
 * deterministic ids, snapshot/restore, bounded state, event-time handling,
 * remediation orders. Per-rule behaviour with negative controls lives in the
 * fixtures (analyzer-engine-fixtures.test.ts).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuditRecord } from '../../src/audit/event.ts';
import { SHIPPED_DETECTIONS } from '../../src/config/load.ts';
import { createEngine } from '../../src/analyzer/engine/engine.ts';
import { loadRules, parseRules } from '../../src/analyzer/rules/load.ts';
import type { Alert, EngineOutput } from '../../src/analyzer/types.ts';
import { parseFixtureEvents, records, T0, type Ev } from './analyzer-engine-helpers.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/detections');

const BF = { spiffe: 'spiffe://mesh.local/ns/dev/sa/a', sub: null, decision: 'deny', reason: 'jwt_bad_signature', status: 401 } as const;

function rules(body: string) {
  return parseRules(`version: 1\nrules:\n${body}`, 'test.yaml');
}

const SINGLE = rules(`
  - name: bad-sig
    title: Bad signature
    severity: high
    description: every bad signature
    kind: single
    groupBy: spiffe
    dedup: 10m
    filter: { reason: jwt_bad_signature }
    remediation: { scope: cert, duration: 5m, simulated: false }
`);

function run(engine: ReturnType<typeof createEngine>, recs: readonly AuditRecord[]): EngineOutput[] {
  return recs.map((r) => engine.process(r));
}

const alertsOf = (outs: readonly EngineOutput[]): Alert[] => outs.flatMap((o) => o.alerts);

test('an alert is emitted once when it fires, updated silently in its window, and emitted again (revision 2) when the window closes', () => {
  const e = createEngine(SINGLE);
  const outs = run(e, records([{ ...BF, at: '0s' }, { ...BF, at: '1m' }, { ...BF, at: '2m' }, { at: '11m', spiffe: 'spiffe://mesh.local/ns/shop/sa/other' }]));
  const [first, second, third, later] = outs as [EngineOutput, EngineOutput, EngineOutput, EngineOutput];
  assert.equal(first.alerts.length, 1);
  assert.equal(first.alerts[0]?.revision, 1);
  assert.equal(first.alerts[0]?.count, 1);
  assert.equal(second.alerts.length + third.alerts.length, 0, 'updates inside the window are not emitted');
  // Any later event moves event time past windowEnd: the final state comes out.
  assert.equal(later.alerts.length, 1);
  const fin = later.alerts[0] as Alert;
  assert.equal(fin.id, first.alerts[0]?.id);
  assert.equal(fin.revision, 2);
  assert.equal(fin.count, 3);
  assert.equal(fin.lastSeen, new Date(T0 + 120_000).toISOString());
  assert.equal(fin.evidence.length, 3);
  assert.equal(fin.windowEnd, new Date(T0 + 600_000).toISOString());
});

test('an alert that did not change in its window is not emitted a second time', () => {
  const e = createEngine(SINGLE);
  const outs = run(e, records([{ ...BF }, { at: '30m', spiffe: 'spiffe://mesh.local/ns/shop/sa/other' }]));
  assert.equal(alertsOf(outs).length, 1);
  assert.equal(e.flush().alerts.length, 0);
});

test('after the window closes, the same rule and group fire a new alert with a new id', () => {
  const e = createEngine(SINGLE);
  const a = alertsOf(run(e, records([{ ...BF }, { ...BF, at: '20m' }])));
  assert.equal(a.length, 2);
  assert.notEqual(a[0]?.id, a[1]?.id);
  assert.deepEqual(a.map((x) => x.revision), [1, 1]);
});

test('advanceTo closes windows without an event; flush closes every open window', () => {
  const e = createEngine(SINGLE);
  run(e, records([{ ...BF }, { ...BF, at: '1m' }]));
  assert.equal(e.advanceTo(T0 + 5 * 60_000).alerts.length, 0, 'window still open');
  const closed = e.advanceTo(T0 + 10 * 60_000);
  assert.equal(closed.alerts[0]?.count, 2);
  assert.throws(() => e.advanceTo(Number.NaN), TypeError);
  const f = createEngine(SINGLE);
  run(f, records([{ ...BF }, { ...BF, at: '1m' }]));
  assert.equal(f.flush().alerts[0]?.revision, 2);
  assert.equal(f.flush().alerts.length, 0, 'flush is idempotent');
});

test('alert ids depend only on rule, scope, value and window start: two engines give the same ids', () => {
  const recs = records([{ ...BF }, { ...BF, at: '20m' }, { ...BF, spiffe: 'spiffe://mesh.local/ns/dev/sa/b' }]);
  const ids1 = alertsOf(run(createEngine(SINGLE), recs)).map((a) => a.id);
  const ids2 = alertsOf(run(createEngine(SINGLE), recs)).map((a) => a.id);
  assert.deepEqual(ids1, ids2);
  assert.equal(new Set(ids1).size, 3);
  for (const id of ids1) assert.match(id, /^[0-9a-f]{32}$/);
});

test('a remediation is ordered once, when the alert fires, for the scope the rule names', () => {
  const e = createEngine(SINGLE);
  const outs = run(e, records([{ ...BF, cert: 'ab01' }, { ...BF, cert: 'ab01', at: '1m' }]));
  const orders = outs.flatMap((o) => o.remediations);
  assert.equal(orders.length, 1);
  const alert = outs[0]?.alerts[0] as Alert;
  assert.deepEqual(orders[0], { rule: 'bad-sig', alertId: alert.id, scope: 'cert', value: 'ab01', durationMs: 300_000, simulated: false });
});

test('no remediation is ordered when the triggering event lacks the remediation scope', () => {
  const e = createEngine(SINGLE);
  const outs = run(e, records([{ ...BF, cert: '' }]));
  assert.equal(outs[0]?.alerts.length, 1);
  assert.equal(outs[0]?.remediations.length, 0);
});

test('evidence is bounded by evidenceLimit and keeps the oldest contributing events', () => {
  const r = rules(`
  - name: many
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1h
    count: 3
    groupBy: spiffe
    filter: { reason: jwt_bad_signature }
`);
  const recs = records(Array.from({ length: 12 }, (_, i) => ({ ...BF, at: i * 1000 })));
  const e = createEngine(r, { evidenceLimit: 5 });
  run(e, recs);
  const a = e.flush().alerts[0] as Alert;
  assert.equal(a.count, 12);
  assert.deepEqual(a.evidence, recs.slice(0, 5).map((x) => x.id));
  assert.throws(() => createEngine(r, { evidenceLimit: 0 }), TypeError);
});

test('a record whose time cannot be parsed is counted and skipped, not thrown', () => {
  const e = createEngine(SINGLE);
  const [rec] = records([{ ...BF }]);
  assert.deepEqual(e.process({ ...(rec as AuditRecord), time: 'yesterday' }).alerts, []);
  assert.equal(e.stats().badTime, 1);
  assert.equal(e.stats().events, 0);
});

test('late events (older than the watermark) count in their group without rewinding it', () => {
  const r = rules(`
  - name: burst
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1m
    count: 3
    groupBy: spiffe
    filter: { reason: jwt_bad_signature }
`);
  const e = createEngine(r);
  const outs = run(e, records([{ ...BF, at: '10s' }, { ...BF, at: '20s' }, { ...BF, at: '5s' }]));
  const a = outs[2]?.alerts[0] as Alert;
  assert.equal(a.count, 3);
  assert.equal(a.firstSeen, new Date(T0 + 5000).toISOString(), 'firstSeen is the earliest event time');
});

test('disabled rules do not run', () => {
  const r = rules(`
  - name: off
    title: t
    severity: low
    description: d
    enabled: false
    kind: single
    groupBy: spiffe
    filter: { reason: jwt_bad_signature }
`);
  const e = createEngine(r);
  assert.equal(alertsOf(run(e, records([{ ...BF }]))).length, 0);
  assert.deepEqual(Object.keys(e.stats().rules), []);
});

test('group state is bounded: over maxGroups the stalest groups are evicted and counted', () => {
  const r = rules(`
  - name: capped
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1h
    count: 100
    maxGroups: 50
    groupBy: ip
    filter: { type: request }
`);
  const e = createEngine(r);
  run(e, records(Array.from({ length: 500 }, (_, i) => ({ ip: `10.0.${i >> 8}.${i & 255}`, at: i * 100 }))));
  const s = e.stats().rules['capped'];
  assert.ok(s && s.groups <= 50, `groups ${s?.groups}`);
  assert.ok(s && s.evictions >= 450);
});

test('idle groups are evicted by event time', () => {
  const r = rules(`
  - name: idle
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1m
    count: 100
    groupBy: ip
    filter: { type: request }
`);
  const e = createEngine(r);
  run(e, records([{ ip: '10.0.0.1' }, { ip: '10.0.0.2', at: '10s' }, { ip: '10.0.0.3', at: '5m' }]));
  const s = e.stats().rules['idle'];
  assert.equal(s?.groups, 1);
  assert.equal(s?.evictions, 2);
});

/** Every fixture's events, each fixture shifted to its own hour, as one stream. */
function mixedStream(): AuditRecord[] {
  const names = fs.readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const evs: Ev[] = [];
  names.forEach((n, i) => {
    for (const ev of parseFixtureEvents(fs.readFileSync(path.join(FIXTURES, n, 'events.jsonl'), 'utf8'))) {
      const { id: _id, time, requestId: _r, ...rest } = ev;
      evs.push({ ...rest, at: Date.parse(time) - T0 + i * 3 * 3_600_000 } as unknown as Ev);
    }
  });
  return records(evs.sort((a, b) => (a.at as number) - (b.at as number)));
}

test('snapshot → JSON → restore continues exactly like an engine that never stopped', async () => {
  const shipped = await loadRules(SHIPPED_DETECTIONS);
  const recs = mixedStream();
  const whole = createEngine(shipped);
  const expected = recs.map((r) => JSON.stringify(whole.process(r)));
  expected.push(JSON.stringify(whole.flush()));
  for (const cut of [1, Math.floor(recs.length / 3), Math.floor(recs.length / 2), recs.length - 7]) {
    const a = createEngine(shipped);
    for (const r of recs.slice(0, cut)) a.process(r);
    const saved = JSON.parse(JSON.stringify(a.snapshot())) as unknown;
    const b = createEngine(shipped);
    b.restore(saved);
    const got = recs.slice(cut).map((r) => JSON.stringify(b.process(r)));
    got.push(JSON.stringify(b.flush()));
    assert.deepEqual(got, expected.slice(cut), `cut at ${cut}`);
  }
  assert.ok(expected.filter((x) => x.includes('"revision":1')).length >= 17, 'the stream raises every shipped rule');
});

test('restoring into an edited rule starts that rule fresh and keeps the others', () => {
  const two = (count: number) => rules(`
  - name: keep
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1h
    count: 3
    groupBy: spiffe
    filter: { reason: jwt_bad_signature }
  - name: edited
    title: t
    severity: low
    description: d
    kind: threshold
    window: 1h
    count: ${count}
    groupBy: spiffe
    filter: { reason: jwt_bad_signature }
`);
  const a = createEngine(two(3));
  run(a, records([{ ...BF }, { ...BF, at: '1s' }]));
  const b = createEngine(two(4));
  b.restore(JSON.parse(JSON.stringify(a.snapshot())));
  const out = alertsOf(run(b, records([{ ...BF, at: '2s' }])));
  assert.deepEqual(out.map((x) => x.rule), ['keep'], 'keep had 2 events saved; edited starts from zero');
});

test('restore refuses something that is not an engine snapshot', () => {
  const e = createEngine(SINGLE);
  for (const bad of [null, 42, {}, { v: 2 }, { v: 1 }]) assert.throws(() => e.restore(bad), TypeError);
});

test('a global rule attributes its alert to the top contributor and ties break deterministically', () => {
  const r = rules(`
  - name: flood
    title: t
    severity: low
    description: d
    kind: ewma
    bucket: 1m
    measure: count
    warmup: 3
    minFactor: 3
    minValue: 20
    groupBy: global
    attribute: [spiffe, ip]
    filter: { type: request }
`);
  const evs: Ev[] = [];
  for (let m = 0; m < 5; m++) for (let k = 0; k < 5; k++) evs.push({ at: m * 60_000 + k * 1000, spiffe: 'spiffe://mesh.local/ns/shop/sa/a' });
  // Minute 5: two callers without certificates, 12 each: the tie goes to the smaller address.
  for (let k = 0; k < 12; k++) {
    evs.push({ at: 300_000 + k * 2000, spiffe: null, cert: null, ip: '10.0.0.9' });
    evs.push({ at: 300_000 + k * 2000 + 1, spiffe: null, cert: null, ip: '10.0.0.10' });
  }
  const a = alertsOf(run(createEngine(r), records(evs)));
  assert.equal(a.length, 1);
  assert.equal(a[0]?.scope, 'ip');
  assert.equal(a[0]?.value, '10.0.0.10');
});
