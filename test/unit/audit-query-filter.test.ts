import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sealRecord } from '../../src/audit/chain.ts';
import type { AuditEvent } from '../../src/audit/event.ts';
import { identityOf, matches } from '../../src/audit/query/filter.ts';
import { parseQuery, parseTimeFlag, QueryFlagError } from '../../src/audit/query/parse-query.ts';
import { compilePrefilter, framingProblem } from '../../src/audit/query/prefilter.ts';
import { ev, rec, T0 } from './audit-query-helpers.ts';

type Over = Parameters<typeof ev>[1];
interface Case {
  readonly name: string;
  readonly flags: Record<string, string>;
  readonly hit: [number, Over];
  readonly miss: [number, Over];
}

const HANDSHAKE: Over = { type: 'tls_handshake', method: null, path: null, route: null, principal: null, status: 0, decision: 'deny', reason: 'peer_cert_untrusted', tls: { error: 'peer_cert_untrusted' } };

const CASES: Case[] = [
  { name: '--since is inclusive', flags: { since: '2026-01-01T12:00:00Z' }, hit: [0, {}], miss: [-1, {}] },
  { name: '--until is exclusive', flags: { until: '2026-01-01T12:00:01Z' }, hit: [999, {}], miss: [1000, {}] },
  { name: '--identity matches the token subject', flags: { identity: 'alice' }, hit: [0, {}], miss: [0, { principal: { iss: 'i', sub: 'alicex' }, peer: null }] },
  { name: '--identity matches the peer SPIFFE ID', flags: { identity: 'spiffe://mesh.local/ns/prod/sa/web' }, hit: [0, { principal: null }], miss: [0, { peer: { spiffeId: 'spiffe://mesh.local/ns/prod/sa/web2', fingerprint: 'x' } }] },
  { name: '--identity with a trailing * is a prefix', flags: { identity: 'spiffe://mesh.local/ns/prod/*' }, hit: [0, { principal: null }], miss: [0, { principal: null, peer: { spiffeId: 'spiffe://mesh.local/ns/prodx/sa/web', fingerprint: 'x' } }] },
  { name: '--identity * selects any identity but not an empty SPIFFE ID', flags: { identity: '*' }, hit: [0, {}], miss: [0, { principal: null, peer: { spiffeId: '', fingerprint: 'ab' } }] },
  { name: '--route is exact', flags: { route: 'orders' }, hit: [0, {}], miss: [0, { route: 'orders2' }] },
  { name: '--route does not match a request without a route', flags: { route: 'orders' }, hit: [0, {}], miss: [0, { route: null }] },
  { name: '--path-prefix is segment-aware', flags: { 'path-prefix': '/orders' }, hit: [0, { path: '/orders' }], miss: [0, { path: '/orders-old/1' }] },
  { name: '--path-prefix selects deeper paths', flags: { 'path-prefix': '/orders' }, hit: [0, { path: '/orders/7/items' }], miss: [0, { path: '/admin/orders' }] },
  { name: '--path-prefix ending in / is a plain prefix', flags: { 'path-prefix': '/orders/' }, hit: [0, { path: '/orders/1' }], miss: [0, { path: '/orders' }] },
  { name: '--method is case-insensitive on input', flags: { method: 'post' }, hit: [0, { method: 'POST' }], miss: [0, { method: 'GET' }] },
  { name: '--decision deny', flags: { decision: 'deny' }, hit: [0, { decision: 'deny', reason: 'authz_deny_rule', status: 403 }], miss: [0, {}] },
  { name: '--reason', flags: { reason: 'jwt_expired' }, hit: [0, { decision: 'deny', reason: 'jwt_expired', status: 401 }], miss: [0, { decision: 'deny', reason: 'jwt_expired_x', status: 401 }] },
  { name: '--status single', flags: { status: '403' }, hit: [0, { status: 403 }], miss: [0, { status: 404 }] },
  { name: '--status range is inclusive', flags: { status: '400-404' }, hit: [0, { status: 404 }], miss: [0, { status: 405 }] },
  { name: '--status class', flags: { status: '4xx' }, hit: [0, { status: 499 }], miss: [0, { status: 500 }] },
  { name: '--status 0 selects refused handshakes', flags: { status: '0' }, hit: [0, HANDSHAKE], miss: [0, {}] },
  { name: '--min-latency is inclusive', flags: { 'min-latency': '250ms' }, hit: [0, { latencyMs: 250 }], miss: [0, { latencyMs: 249.999 }] },
  { name: '--request-id', flags: { 'request-id': 'req-42' }, hit: [0, { requestId: 'req-42' }], miss: [0, { requestId: 'req-421' }] },
  { name: '--type', flags: { type: 'tls_handshake' }, hit: [0, HANDSHAKE], miss: [0, {}] },
];

const line = (e: AuditEvent): string => sealRecord(7, 'a'.repeat(64), e).line.trimEnd();

for (const c of CASES) {
  test(`${c.name}: selects the matching record and not the other`, () => {
    const f = parseQuery(c.flags, { now: T0 });
    assert.equal(matches(rec(...c.hit), f), true, 'hit');
    assert.equal(matches(rec(...c.miss), f), false, 'miss');
  });
  test(`${c.name}: the raw-line prefilter never drops the matching record`, () => {
    const pre = compilePrefilter(parseQuery(c.flags, { now: T0 }));
    assert.equal(pre(line(ev(...c.hit))), true);
  });
}

test('conditions combine with AND', () => {
  const f = parseQuery({ decision: 'deny', route: 'admin', identity: 'spiffe://mesh.local/ns/prod/*', since: '2026-01-01T12:00:00Z' }, { now: T0 });
  const deny = { decision: 'deny', reason: 'authz_no_matching_rule', status: 403, route: 'admin' } as const;
  assert.equal(matches(rec(5, deny), f), true);
  assert.equal(matches(rec(5, { ...deny, route: 'orders' }), f), false);
  assert.equal(matches(rec(5, { ...deny, decision: 'allow' }), f), false);
  assert.equal(matches(rec(-5, deny), f), false);
  assert.equal(matches(rec(5, { ...deny, peer: null, principal: { iss: 'i', sub: 'bob' } }), f), false);
});

test('an empty filter selects every record, including ones with missing fields', () => {
  const f = parseQuery({});
  assert.equal(matches(rec(0), f), true);
  assert.equal(matches({ time: 'x' } as never, f), true);
});

test('records with missing or mistyped fields never match a condition on them and never throw', () => {
  const broken = { seq: 1, time: 'not a time', status: '403', latencyMs: null, peer: 'x', principal: 7 } as never;
  for (const flags of [{ since: '1h' }, { status: '403' }, { 'min-latency': '1ms' }, { identity: 'x' }, { 'path-prefix': '/' }]) {
    assert.equal(matches(broken, parseQuery(flags, { now: T0 })), false, JSON.stringify(flags));
  }
});

test('the prefilter drops lines that certainly do not match', () => {
  const cases: [Record<string, string>, Over][] = [
    [{ decision: 'deny' }, {}],
    [{ identity: 'bob' }, {}],
    [{ 'path-prefix': '/admin' }, {}],
    [{ since: '2026-01-01T13:00:00Z' }, {}],
    [{ until: '2026-01-01T11:00:00Z' }, {}],
    [{ status: '500-599' }, {}],
    [{ 'min-latency': '1s' }, {}],
  ];
  for (const [flags, over] of cases) assert.equal(compilePrefilter(parseQuery(flags, { now: T0 }))(line(ev(0, over))), false, JSON.stringify(flags));
});

test('the prefilter keeps a line whose time is not in the writer\'s shape, and matches decides', () => {
  const l = line(ev(0, { time: '2026-01-01T14:00:00+02:00' }));
  const f = parseQuery({ until: '2026-01-01T12:30:00Z' }, { now: T0 });
  assert.equal(compilePrefilter(f)(l), true);
  assert.equal(matches(JSON.parse(l), f), true);
});

test('framing rejects blank lines, garbage, cut lines and two records run together', () => {
  const good = line(ev(0));
  assert.equal(framingProblem(good), undefined);
  assert.match(framingProblem('') ?? '', /blank/);
  assert.match(framingProblem('\u0000\u0000\u0000') ?? '', /seq/);
  assert.match(framingProblem(good.slice(0, 200)) ?? '', /hash/);
  assert.match(framingProblem(good.slice(0, 200) + good) ?? '', /two records/);
});

test('identityOf prefers the token subject, then the SPIFFE ID, and treats an empty SPIFFE ID as none', () => {
  assert.equal(identityOf(rec(0)), 'alice');
  assert.equal(identityOf(rec(0, { principal: null })), 'spiffe://mesh.local/ns/prod/sa/web');
  assert.equal(identityOf(rec(0, { principal: null, peer: { spiffeId: '', fingerprint: 'ab' } })), undefined);
});

test('time flags: durations count back from now, "now" is now, ISO dates are UTC midnight, offsets are applied', () => {
  const now = Date.UTC(2026, 5, 15, 10, 0, 0);
  const cases: [string, number][] = [
    ['1h', now - 3_600_000],
    ['90s', now - 90_000],
    ['7d', now - 7 * 86_400_000],
    ['now', now],
    ['2026-01-31', Date.UTC(2026, 0, 31)],
    ['2026-01-31T12:00:00Z', Date.UTC(2026, 0, 31, 12)],
    ['2026-01-31T12:00Z', Date.UTC(2026, 0, 31, 12)],
    ['2026-01-31T12:00:00.250Z', Date.UTC(2026, 0, 31, 12, 0, 0, 250)],
    ['2026-01-31T14:00:00+02:00', Date.UTC(2026, 0, 31, 12)],
    ['2026-01-31T07:30:00-04:30', Date.UTC(2026, 0, 31, 12)],
    ['2024-02-29', Date.UTC(2024, 1, 29)],
  ];
  for (const [text, want] of cases) assert.equal(parseTimeFlag(text, now), want, text);
});

test('time flags reject nonsense, impossible dates and date-times without a zone', () => {
  for (const bad of ['yesterday', '1', '1 h', '-1h', '2026-02-30', '2025-02-29', '2026-13-01', '2026-01-01T24:00:00Z', '2026-01-01T10:60Z', '2026-01-01T10:00', '2026-01-01T10:00:00', '2026-01-01T10:00+25:00', '']) {
    assert.equal(parseTimeFlag(bad, T0), undefined, bad);
  }
});

const INVALID: [Record<string, unknown>, string][] = [
  [{ since: 'yesterday' }, 'since'],
  [{ until: '2026-02-30' }, 'until'],
  [{ since: '2026-01-01T10:00' }, 'since'],
  [{ since: '2026-01-02', until: '2026-01-01' }, 'until'],
  [{ since: '2026-01-01', until: '2026-01-01' }, 'until'],
  [{ identity: 'spiffe://*/web' }, 'identity'],
  [{ identity: '' }, 'identity'],
  [{ identity: 'a\u001b[2Jb' }, 'identity'],
  [{ route: 'two words' }, 'route'],
  [{ 'path-prefix': 'orders' }, 'path-prefix'],
  [{ 'path-prefix': '/orders?x=1' }, 'path-prefix'],
  [{ method: 'G-T' }, 'method'],
  [{ decision: 'maybe' }, 'decision'],
  [{ reason: 'Not-A-Reason' }, 'reason'],
  [{ status: '600' }, 'status'],
  [{ status: '499-400' }, 'status'],
  [{ status: '4x' }, 'status'],
  [{ status: '40' }, 'status'],
  [{ 'min-latency': '250' }, 'min-latency'],
  [{ 'request-id': 'x'.repeat(300) }, 'request-id'],
  [{ type: 'Request' }, 'type'],
  [{ colour: 'red' }, 'colour'],
  [{ decision: ['allow', 'deny'] }, 'decision'],
];

for (const [flags, flag] of INVALID) {
  test(`parseQuery rejects ${JSON.stringify(flags).slice(0, 60)} naming --${flag}`, () => {
    assert.throws(() => parseQuery(flags, { now: T0 }), (err: unknown) => {
      assert.ok(err instanceof QueryFlagError);
      assert.equal(err.flag, flag);
      assert.ok(err.message.startsWith(`--${flag}: `), err.message);
      assert.ok(!/\u001b/.test(err.message), 'no raw escape in the message');
      return true;
    });
  });
}

test('parseQuery returns a frozen filter with normalized values', () => {
  const f = parseQuery({ method: 'get', decision: 'DENY', status: '5xx', 'min-latency': '2s', identity: 'spiffe://td/*', since: '1h' }, { now: T0 });
  assert.ok(Object.isFrozen(f));
  assert.deepEqual({ ...f }, {
    method: 'GET', decision: 'deny', status: { min: 500, max: 599 }, minLatencyMs: 2000,
    identity: { value: 'spiffe://td/', prefix: true }, since: T0 - 3_600_000,
  });
});

test('property: the prefilter never drops a line whose record matches (random records, unicode, quotes, escapes)', async () => {
  const fc = (await import('fast-check')).default;
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '/', '"', '\\', 'é', '😀', '\u2028', ':', '*', '-', '{', '}'), minLength: 1, maxLength: 8 });
  const event = fc.record({
    offset: fc.integer({ min: -86_400_000, max: 86_400_000 }),
    sub: fc.option(text, { nil: null }),
    spiffe: fc.option(text, { nil: null }),
    route: fc.option(fc.stringMatching(/^[a-z]{1,4}$/), { nil: null }),
    path: fc.option(text.map((s) => `/${s}`), { nil: null }),
    status: fc.constantFrom(0, 200, 401, 403, 404, 500, 503),
    latency: fc.double({ min: 0, max: 5000, noNaN: true }),
    decision: fc.constantFrom('allow' as const, 'deny' as const),
    withShadow: fc.boolean(),
  });
  fc.assert(fc.property(event, fc.array(fc.constantFrom('since', 'until', 'identity', 'identity*', 'route', 'path-prefix', 'decision', 'status', 'min-latency'), { maxLength: 4 }), (e, keys) => {
    const ae = ev(e.offset, {
      principal: e.sub === null ? null : { iss: 'i', sub: e.sub },
      peer: e.spiffe === null ? null : { spiffeId: e.spiffe, fingerprint: 'ab' },
      route: e.route, path: e.path, status: e.status, latencyMs: e.latency, decision: e.decision,
      shadow: e.withShadow ? { decision: e.decision === 'allow' ? 'deny' : 'allow', reason: 'x', rule: null, policyVersion: 'v', mismatch: true } : null,
    } as Over);
    const l = line(ae);
    const flags: Record<string, string> = {};
    for (const k of keys) {
      if (k === 'since') flags['since'] = new Date(T0 + e.offset).toISOString();
      if (k === 'until') flags['until'] = new Date(T0 + e.offset + 1).toISOString();
      if (k === 'identity' && e.spiffe && !e.spiffe.includes('*')) flags['identity'] = e.spiffe;
      if (k === 'identity*' && e.sub && !e.sub.slice(0, 2).includes('*')) flags['identity'] = `${e.sub.slice(0, 2)}*`;
      if (k === 'route' && e.route) flags['route'] = e.route;
      if (k === 'path-prefix' && e.path && !e.path.includes('?')) flags['path-prefix'] = e.path;
      if (k === 'decision') flags['decision'] = e.decision;
      if (k === 'status') flags['status'] = `${Math.max(0, e.status - 1)}-${e.status}`.replace(/^(\d{1,2})-/, '0-');
      if (k === 'min-latency') flags['min-latency'] = `${Math.floor(e.latency)}ms`;
    }
    let f;
    try {
      f = parseQuery(flags, { now: T0 });
    } catch (err) {
      if (err instanceof QueryFlagError) return; // e.g. a generated identity with control characters
      throw err;
    }
    const r = JSON.parse(l);
    assert.equal(matches(r, f), true, `built from the record itself: ${JSON.stringify(flags)}`);
    assert.equal(compilePrefilter(f)(l), true, `prefilter dropped a match: ${JSON.stringify(flags)}`);
  }), { numRuns: 2000 });
});
