/**
 * The read side of the admin API over a real audit log: events with the
 * `audit query` filters and pagination, one event with its decision
 * explanation, the overview statistics, the chain status — and strict input
 * validation (unknown or repeated parameters are 400s naming the parameter).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { ExplainQuery, ExplainReport } from '../../src/policy/explain.ts';
import { BEARER, NOW, startFixture, type Fixture } from './admin-api-helpers.ts';

function api(f: Fixture, url: string): request.Test {
  return request(f.server).get(url).set('authorization', BEARER);
}

describe('GET /api/events', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  test('returns every event newest first with page info and no-store caching', async () => {
    const res = await api(f, '/api/events');
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.body.items.length, f.events.length);
    assert.deepEqual(res.body.items.map((e: { id: string }) => e.id), f.events.map((e) => e.id).reverse());
    assert.deepEqual(res.body.page, { limit: 50, offset: 0, order: 'desc', nextOffset: null, prevOffset: null });
    assert.equal(res.body.damaged, 0);
  });

  test('filters like `meshgate audit query`: decision, identity, status class, path prefix and type', async () => {
    const deny = await api(f, '/api/events?decision=deny&type=request');
    assert.deepEqual(deny.body.items.map((e: { reason: string }) => e.reason), Array(4).fill('authz_no_matching_rule'));
    const mallory = await api(f, '/api/events?identity=mallory&status=4xx&path-prefix=/admin');
    assert.equal(mallory.body.items.length, 4);
    const handshakes = await api(f, '/api/events?type=tls_handshake');
    assert.equal(handshakes.body.items.length, 1);
    assert.equal(handshakes.body.items[0].status, 0);
    const prefix = await api(f, `/api/events?identity=${encodeURIComponent('spiffe://mesh.local/ns/prod/*')}&decision=allow`);
    assert.equal(prefix.body.items.length, 6);
    const recent = await api(f, '/api/events?since=40m');
    assert.equal(recent.body.items.length, 5, 'relative to the server clock');
  });

  test('paginates with limit and offset; nextOffset and prevOffset link the pages', async () => {
    const p1 = await api(f, '/api/events?limit=4');
    assert.deepEqual(p1.body.page, { limit: 4, offset: 0, order: 'desc', nextOffset: 4, prevOffset: null });
    const p3 = await api(f, '/api/events?limit=4&offset=8');
    assert.equal(p3.body.items.length, 3);
    assert.deepEqual(p3.body.page, { limit: 4, offset: 8, order: 'desc', nextOffset: null, prevOffset: 4 });
    const all = [...p1.body.items, ...(await api(f, '/api/events?limit=4&offset=4')).body.items, ...p3.body.items];
    assert.deepEqual(all.map((e: { id: string }) => e.id), f.events.map((e) => e.id).reverse());
    const asc = await api(f, '/api/events?limit=2&order=asc');
    assert.deepEqual(asc.body.items.map((e: { id: string }) => e.id), f.events.slice(0, 2).map((e) => e.id));
  });

  const BAD: readonly [string, string][] = [
    ['decison=deny', 'decison'],
    ['decision=maybe', 'decision'],
    ['since=yesterday', 'since'],
    ['status=6xx', 'status'],
    ['identity=a*b', 'identity'],
    ['limit=501', 'limit'],
    ['limit=0', 'limit'],
    ['limit=ten', 'limit'],
    ['offset=-1', 'offset'],
    ['order=sideways', 'order'],
    ['decision=deny&decision=allow', 'decision'],
    ['route=a%20b', 'route'],
  ];
  for (const [qs, param] of BAD) {
    test(`?${qs} is refused with 400 problem+json naming "${param}"`, async () => {
      const res = await api(f, `/api/events?${qs}`);
      assert.equal(res.status, 400);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.body.code, 'MG_ERR_ADMIN_BAD_PARAM');
      assert.equal(res.body.reason, 'admin_invalid_parameter');
      assert.equal(res.body.param, param);
      assert.match(res.body.detail, new RegExp(`^${param}: `));
    });
  }

  test('a damaged audit line is reported in the response, never silently skipped', async () => {
    const seg = fs.readdirSync(f.auditDir).filter((n) => /^audit-\d+\.jsonl$/.test(n)).sort()[0] as string;
    const file = path.join(f.auditDir, seg);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[1] = '{"seq":2,"garbage';
    fs.writeFileSync(file, lines.join('\n'));
    const res = await api(f, '/api/events');
    assert.equal(res.status, 200);
    assert.equal(res.body.damaged, 1);
    assert.deepEqual(res.body.damagedLines[0], { segment: seg, line: 2, reason: 'line does not end with a "hash" member' });
  });
});

describe('GET /api/events/:id', () => {
  let f: Fixture;
  let asked: ExplainQuery | undefined;
  before(async () => {
    f = await startFixture({
      deps: {
        explain: async (q): Promise<ExplainReport> => {
          asked = q;
          return {
            method: q.method, path: q.path, allowed: true, status: 200, reason: 'allowed', code: undefined, canonicalPath: q.path, route: 'default',
            stages: [{ stage: 'authz', verdict: 'ok', summary: 'allow: policy.csv:9' }], principal: undefined, tuple: undefined,
            decision: undefined, shadow: undefined, pathConfusion: undefined, notes: ['JWT: assumed'],
          };
        },
      },
    });
  });
  after(() => f.close());

  test('a denied request comes with its recorded explanation: the authz stage failed, later stages not reached', async () => {
    const denied = f.events.find((e) => e.decision === 'deny' && e.type === 'request')!;
    const res = await api(f, `/api/events/${denied.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.event.id, denied.id);
    const x = res.body.explanation;
    assert.equal(x.code, 'MG_ERR_AUTHZ_DENIED');
    assert.deepEqual(x.stages.map((s: { stage: string; verdict: string }) => `${s.stage}:${s.verdict}`),
      ['tls:ok', 'normalize:ok', 'route:ok', 'authn:ok', 'authz:fail', 'quarantine:not-reached', 'upstream:not-reached']);
    assert.match(x.stages[4].summary, /deny by default/);
    assert.equal(x.quarantine, null);
    assert.equal(x.shadow, null);
    // Re-evaluated with the current policy: the recorded identity, method and path.
    assert.deepEqual(asked, { method: 'GET', path: denied.path, spiffe: 'spiffe://mesh.local/ns/prod/sa/web', sub: 'mallory' });
    assert.equal(res.body.current.flipped, true);
    // The alert that cites it.
    assert.deepEqual(res.body.alerts.map((a: { rule: string }) => a.rule), ['privilege-probing']);
  });

  test('a refused TLS handshake is explained as a failure at the TLS stage and is not re-evaluated', async () => {
    const hs = f.events.find((e) => e.type === 'tls_handshake')!;
    const res = await api(f, `/api/events/${hs.id}`);
    assert.equal(res.body.explanation.stages[0].verdict, 'fail');
    assert.match(res.body.explanation.stages[0].summary, /peer_cert_untrusted.*UNABLE_TO_GET_ISSUER_CERT/);
    assert.equal(res.body.current, null);
  });

  test('an unknown id is 404 admin_not_found; a malformed id is 400 naming "id"; explain=maybe is 400', async () => {
    const nf = await api(f, '/api/events/01890a5d-ac96-774b-bcce-b302099a8057');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.reason, 'admin_not_found');
    const bad = await api(f, '/api/events/..%2F..%2Fetc%2Fpasswd');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.param, 'id');
    const ex = await api(f, `/api/events/${f.events[0]!.id}?explain=maybe`);
    assert.equal(ex.status, 400);
    assert.equal(ex.body.param, 'explain');
  });
});

describe('GET /api/stats and /api/chain', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  test('timeseries counts requests, denials and alerts per bucket over the range', async () => {
    const res = await api(f, '/api/stats/timeseries?bucket=1m&since=1h');
    assert.equal(res.status, 200);
    const ts = res.body;
    assert.equal(ts.t.length, 60);
    assert.equal(ts.t[0], NOW - 3_600_000);
    assert.equal(ts.requests.length, 60);
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    assert.equal(sum(ts.requests), f.events.length);
    assert.equal(sum(ts.denials), 5);
    assert.equal(sum(ts.alerts), 2);
    assert.equal(ts.requests[10], 1, 'the event 50 minutes ago falls in bucket 10');
    assert.equal(ts.denials[30], 1);
  });

  test('timeseries refuses a bucket too small for the range and an inverted range', async () => {
    const many = await api(f, '/api/stats/timeseries?bucket=1s&since=7d');
    assert.equal(many.status, 400);
    assert.equal(many.body.param, 'bucket');
    const inv = await api(f, '/api/stats/timeseries?since=1h&until=2h');
    assert.equal(inv.status, 400);
    assert.equal(inv.body.param, 'until');
    const unknown = await api(f, '/api/stats/timeseries?bucket=1m&decision=deny');
    assert.equal(unknown.body.param, 'decision');
  });

  test('top groups denied events by identity and by route, largest first', async () => {
    const ids = await api(f, '/api/stats/top?by=identity&decision=deny');
    assert.deepEqual(ids.body.groups, [{ key: 'mallory', count: 4 }, { key: null, count: 1 }]);
    const routes = await api(f, '/api/stats/top?by=route&decision=deny&type=request&limit=1');
    assert.deepEqual(routes.body.groups, [{ key: 'default', count: 4 }]);
    const bad = await api(f, '/api/stats/top?by=colour');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.param, 'by');
  });

  test('the chain is unverified until asked; verify reports an intact chain with its record count', async () => {
    const before = await api(f, '/api/chain');
    assert.deepEqual(before.body, { running: false, last: null });
    const run = await request(f.server).post('/api/chain/verify').set('authorization', BEARER);
    assert.equal(run.status, 200);
    assert.equal(run.body.last.ok, true);
    assert.equal(run.body.last.records, f.events.length);
    assert.equal(run.body.last.problem, null);
    assert.equal((await api(f, '/api/chain')).body.last.records, f.events.length);
  });

  test('verify names the first bad record when a record was modified', async () => {
    const seg = fs.readdirSync(f.auditDir).filter((n) => /^audit-\d+\.jsonl$/.test(n)).sort()[0] as string;
    const file = path.join(f.auditDir, seg);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"status":200', '"status":201'));
    const run = await request(f.server).post('/api/chain/verify').set('authorization', BEARER);
    assert.equal(run.body.last.ok, false);
    assert.equal(run.body.last.problem.kind, 'modified');
    assert.equal(run.body.last.problem.segment, seg);
    assert.equal(run.body.last.problem.line, 1);
  });

  test('verify with a body field is refused with 400 naming it', async () => {
    const res = await request(f.server).post('/api/chain/verify').set('authorization', BEARER).send({ deep: true });
    assert.equal(res.status, 400);
    assert.equal(res.body.param, 'deep');
  });
});
