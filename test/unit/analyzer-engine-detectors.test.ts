/**
 * Rule kinds and the building blocks under them: the filter language,
 * derived fields, event-time parsing. Table-driven where the cases are data.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditRecord } from '../../src/audit/event.ts';
import { createEngine } from '../../src/analyzer/engine/engine.ts';
import { decodeOnce, pathShape, viewOf } from '../../src/analyzer/engine/fields.ts';
import { compileFilter } from '../../src/analyzer/engine/filter.ts';
import { TimeParser } from '../../src/analyzer/engine/time.ts';
import { parseRules } from '../../src/analyzer/rules/load.ts';
import type { FilterSpec } from '../../src/analyzer/rules/schema.ts';
import type { Alert } from '../../src/analyzer/types.ts';
import { records, T0, type Ev } from './analyzer-engine-helpers.ts';

const rule = (body: string) => parseRules(`version: 1\nrules:\n  - name: r\n    title: t\n    severity: low\n    description: d\n${body.replace(/^/gm, '    ')}`, 'test.yaml');

function fire(body: string, evs: Ev[]): Alert[] {
  const e = createEngine(rule(body));
  const first = records(evs).flatMap((r) => e.process(r).alerts.filter((a) => a.revision === 1));
  return first;
}

const A = { spiffe: 'spiffe://mesh.local/ns/dev/sa/a' };

test('leaky with distinct pours a repeated value once: six requests to one path never overflow', () => {
  const body = 'kind: leaky\ncapacity: 2\nleakSpeed: 1m\ndistinct: path\ngroupBy: spiffe\nfilter: { type: request }';
  assert.equal(fire(body, Array.from({ length: 6 }, (_, i) => ({ ...A, at: i * 1000 }))).length, 0);
  const fired = fire(body, ['/a', '/b', '/c'].map((p, i) => ({ ...A, path: p, at: i * 1000 })));
  assert.equal(fired.length, 1);
  assert.equal(fired[0]?.count, 3);
});

test('a tumbling window is aligned to event time and fires at most once per window', () => {
  const body = 'kind: threshold\nwindow: 1m\ncount: 3\nwindowType: tumbling\ngroupBy: spiffe\ndedup: 1s\nfilter: { type: request }';
  // 3 events in minute 0, 2 in minute 1 (across the boundary there would be 3 in a sliding minute), 3 in minute 2.
  const at = [1, 2, 3, 55, 65, 121, 122, 123].map((s) => ({ ...A, at: s * 1000 }));
  const a = fire(body, at);
  assert.deepEqual(a.map((x) => x.firstSeen), [new Date(T0 + 1000).toISOString(), new Date(T0 + 121_000).toISOString()]);
});

test('a sliding window counts the newest events: N within the window fires, spread out does not', () => {
  const body = 'kind: threshold\nwindow: 1m\ncount: 3\ngroupBy: spiffe\nfilter: { type: request }';
  assert.equal(fire(body, [0, 40, 80, 120].map((s) => ({ ...A, at: s * 1000 }))).length, 0);
  assert.equal(fire(body, [0, 40, 80, 90].map((s) => ({ ...A, at: s * 1000 }))).length, 1);
});

test('a sequence needs every step in order and in the window, with counts on later steps', () => {
  const body = `kind: sequence
window: 5m
groupBy: spiffe
filter: { type: request }
steps:
  - filter: { reason: jwt_bad_signature }
    count: 3
  - filter: { decision: allow }
    count: 2`;
  const bad = { ...A, sub: null, decision: 'deny', reason: 'jwt_bad_signature', status: 401 };
  const ok = { ...A };
  const seq = (xs: [Ev, number][]): Ev[] => xs.map(([e, s]) => ({ ...e, at: s * 1000 }));
  assert.equal(fire(body, seq([[bad, 0], [bad, 1], [bad, 2], [ok, 3]])).length, 0, 'one success is not two');
  const a = fire(body, seq([[bad, 0], [bad, 1], [bad, 2], [bad, 3], [ok, 4], [ok, 5]]));
  assert.equal(a.length, 1);
  assert.equal(a[0]?.count, 6);
  assert.equal(fire(body, seq([[bad, 0], [bad, 1], [bad, 2], [ok, 400], [ok, 401]])).length, 0, 'outside the window');
  assert.equal(fire(body, seq([[ok, 0], [ok, 1], [bad, 2], [bad, 3], [bad, 4]])).length, 0, 'wrong order');
});

test('new terms learn per group, relearn after a new certificate, and fire once per new term', () => {
  const body = 'kind: new_terms\nfields: [method, pathShape]\nlearning: 10m\nrelearnOn: cert\nrelearn: 5m\ngroupBy: spiffe\ndedup: 1s\nfilter: { type: request }';
  const evs: Ev[] = [
    { ...A, cert: 'c1', path: '/orders/1', at: 0 },
    { ...A, cert: 'c1', path: '/orders/2', method: 'POST', at: 60_000 },
    { ...A, cert: 'c1', path: '/admin', at: 11 * 60_000 }, // fires
    { ...A, cert: 'c1', path: '/admin', at: 12 * 60_000 }, // known now
    { ...A, cert: 'c2', path: '/orders/3', at: 13 * 60_000 }, // new cert: relearn until 18m
    { ...A, cert: 'c2', path: '/reports', at: 14 * 60_000 }, // learnt
    { ...A, cert: 'c1', path: '/metrics', at: 19 * 60_000 }, // fires (c1 is known, relearn over)
    { ...A, cert: 'c1', path: '/orders/9', method: 'DELETE', at: 20 * 60_000 }, // fires (method is part of the term)
  ];
  const a = fire(body, evs);
  assert.deepEqual(a.map((x) => x.summary.match(/"([^"]+)"/)?.[1]), ['GET /admin', 'GET /metrics', 'DELETE /orders/*']);
});

test('new terms keep at most maxTerms per group', () => {
  const body = 'kind: new_terms\nfields: [path]\nlearning: 1h\nmaxTerms: 10\ngroupBy: spiffe\nfilter: { type: request }';
  const e = createEngine(rule(body));
  for (const r of records(Array.from({ length: 100 }, (_, i) => ({ ...A, path: `/p${i}`, at: i })))) e.process(r);
  const snap = e.snapshot() as unknown as { rules: Record<string, { groups: [string, number, { terms: string[] }][] }> };
  assert.equal(snap.rules['r']?.groups[0]?.[2].terms.length, 10);
});

test('an EWMA rule does not fire before warm-up, then fires on a spike', () => {
  const body = 'kind: ewma\nbucket: 1m\nmeasure: count\nwarmup: 5\nminFactor: 3\nminValue: 10\ngroupBy: spiffe\nfilter: { type: request }';
  const evs = (minutes: number, spikeAt: number): Ev[] => {
    const out: Ev[] = [];
    for (let m = 0; m < minutes; m++) for (let k = 0; k < (m === spikeAt ? 40 : 4); k++) out.push({ ...A, at: m * 60_000 + k * 1000 });
    return out;
  };
  assert.equal(fire(body, evs(4, 3)).length, 0, 'spike in the 4th minute: still warming up');
  const a = fire(body, evs(8, 7));
  assert.equal(a.length, 1);
  assert.equal(a[0]?.count, 12, 'fires at 3x the baseline of 4/min');
});

const FILTER_CASES: [string, FilterSpec, Ev, boolean][] = [
  ['scalar equals', { reason: 'allowed' }, {}, true],
  ['scalar equals miss', { reason: 'jwt_expired' }, {}, false],
  ['list is in', { status: [200, 201] }, {}, true],
  ['notIn', { method: { notIn: ['GET'] } }, {}, false],
  ['prefix', { path: { prefix: '/ord' } }, {}, true],
  ['prefix on null is false', { rawPath: { prefix: '/' } }, {}, false],
  ['suffix list', { path: { suffix: ['/2', '/1'] } }, {}, true],
  ['contains is case-sensitive by default', { path: { contains: 'ORD' } }, {}, false],
  ['ignoreCase', { path: { contains: 'ORD', ignoreCase: true } }, {}, true],
  ['regex', { path: { regex: '^/orders/\\d+$' } }, {}, true],
  ['range', { status: { gte: 400, lt: 500 } }, { status: 404 }, true],
  ['range miss', { status: { gte: 400, lt: 500 } }, { status: 502 }, false],
  ['exists', { rawPath: { exists: false } }, {}, true],
  ['null equals', { rawPath: null }, {}, true],
  ['all', { all: [{ type: 'request' }, { decision: 'allow' }] }, {}, true],
  ['any', { any: [{ reason: 'x' }, { reason: 'allowed' }] }, {}, true],
  ['not', { not: { reason: { prefix: 'path_' } } }, { reason: 'path_nul_byte' }, false],
  ['derived target is decoded and lower-cased', { target: { contains: '<script' } }, { path: '/s/%3CSCRIPT%3E' }, true],
  ['origin falls back to the address', { origin: 'ip:10.9.9.9' }, { spiffe: null, cert: null, ip: '10.9.9.9' }, true],
  ['credential falls back to the token hash', { credential: 'aGFzaA' }, { sub: '' }, true],
  ['empty spiffe id (refused certificate) is absent', { spiffe: { exists: false } }, { spiffe: '', cert: 'ab' }, true],
  ['simulated quarantine is not quarantined', { quarantined: true }, { quarantine: { decisionId: 'd', scope: 'spiffe', simulated: true } }, false],
];

for (const [name, spec, ev, want] of FILTER_CASES) {
  test(`filter: ${name}`, () => {
    const [r] = records([ev]);
    assert.equal(compileFilter(spec)(viewOf(r as AuditRecord)), want);
  });
}

test('pathShape keeps endpoint words and folds object ids', () => {
  const cases: [string, string][] = [
    ['/', '/'], ['/orders', '/orders'], ['/orders/123', '/orders/*'], ['/orders/123/items', '/orders/*/items'],
    ["/customers/search/o'neil", '/customers/search/*'], ['/a/b/c/d/e/f', '/a/b/c/d'],
    ['/v2/x/550e8400-e29b-41d4-a716-446655440000', '/v2/x/*'], ['/files/deadbeefcafe', '/files/*'],
    ['/x/report.pdf', '/x/report.pdf'], ['/orders/', '/orders/'],
  ];
  for (const [p, want] of cases) assert.equal(pathShape(p), want, p);
});

test('decodeOnce decodes valid escapes once and leaves malformed ones', () => {
  assert.equal(decodeOnce('/%2e%2E/%252e/%zz/%4'), '/../%2e/%zz/%4');
  assert.equal(decodeOnce('/plain'), '/plain');
});

test('the fast time parser agrees with Date.parse, including on odd input', () => {
  const p = new TimeParser();
  const inputs: string[] = [];
  for (let i = 0; i < 2000; i++) inputs.push(new Date(T0 + i * 7919 * 13).toISOString());
  inputs.push('2026-03-02T09:00:61.000Z', '2026-03-02T09:00:0a.000Z', '2026-03-02T09:00:00Z', 'garbage', '', '2026-03-02T09:00:00.000+01:00', '2026-13-02T09:00:00.000Z');
  for (const s of inputs) {
    const want = Date.parse(s);
    const got = p.parse(s);
    assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), `${s}: ${got} vs ${want}`);
  }
});
