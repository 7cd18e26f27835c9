/**
 * The admin listener of a running gateway: liveness, readiness with
 * component detail, and Prometheus metrics labelled with the same route,
 * decision and reason the audit log records.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startHarness, type Harness } from '../helpers/gateway.ts';

let h: Harness;
let alice: string;

before(async () => {
  h = await startHarness();
  alice = await h.pki.mintToken({ sub: 'alice' });
});
after(() => h.close());

async function admin(path: string, method = 'GET'): Promise<{ status: number; type: string; text: string }> {
  const r = await request(h.adminUrl(path), { method: method as 'GET' });
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? ''), text: await r.body.text() };
}

/** The value of one sample line of the exposition text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('/healthz answers 200 while the process is up', async () => {
  const r = await admin('/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text), { status: 'ok' });
});

test('/readyz answers 200 with every component (tls, policy, jwks per issuer) ready in the JSON detail', async () => {
  const r = await admin('/readyz');
  assert.equal(r.status, 200);
  assert.match(r.type, /^application\/json/);
  const body = JSON.parse(r.text) as { status: string; ready: boolean; listening: boolean; draining: boolean; components: { name: string; ready: boolean; state: string; reloads: number }[] };
  assert.equal(body.status, 'ready');
  assert.equal(body.ready, true);
  assert.equal(body.listening, true);
  assert.equal(body.draining, false);
  const names = body.components.map((c) => c.name);
  for (const expected of ['tls', 'policy', 'jwks:https://issuer.mesh.local']) assert.ok(names.includes(expected), `component ${expected} in ${names.join(', ')}`);
  for (const c of body.components) {
    assert.equal(c.ready, true, `${c.name} ready`);
    assert.equal(c.state, 'ok');
    assert.ok(c.reloads >= 1, `${c.name} loaded`);
  }
});

const TRAFFIC: readonly { path: string; token: boolean; headers?: Record<string, string>; route: string; decision: string; reason: string; status: number }[] = [
  { path: '/orders', token: true, route: 'default', decision: 'allow', reason: 'allowed', status: 200 },
  { path: '/orders/7', token: true, route: 'default', decision: 'allow', reason: 'allowed', status: 200 },
  { path: '/admin/x', token: true, route: 'default', decision: 'deny', reason: 'authz_no_matching_rule', status: 403 },
  { path: '/orders/secret', token: true, route: 'default', decision: 'deny', reason: 'authz_deny_rule', status: 403 },
  { path: '/orders', token: false, route: 'default', decision: 'deny', reason: 'jwt_missing', status: 401 },
  { path: '/svc/x', token: false, route: 'svc', decision: 'allow', reason: 'allowed', status: 200 },
  // A client certificate makes the subject its SPIFFE ID, not `anonymous`.
  { path: '/public/x', token: false, route: 'public', decision: 'deny', reason: 'authz_no_matching_rule', status: 403 },
  // Refused by Node's parser before routing: counted with an empty route label.
  { path: '/orders', token: true, headers: { 'x-big': 'a'.repeat(20_000) }, route: '', decision: 'deny', reason: 'headers_too_large', status: 431 },
];

test('/metrics counts meshgate_requests_total by route, decision, reason and status for each request', async () => {
  for (const t of TRAFFIC) {
    const r = await h.request(t.path, { ...(t.token ? { token: alice } : {}), ...(t.headers ? { headers: t.headers } : {}) });
    assert.equal(r.status, t.status, `${t.path} → ${t.status}`);
    if (t.status !== 200) assert.equal(r.json().reason, t.reason);
  }
  const m = await admin('/metrics');
  assert.equal(m.status, 200);
  assert.match(m.type, /^text\/plain; version=0\.0\.4/);
  const expected = new Map<string, number>();
  for (const t of TRAFFIC) {
    const key = JSON.stringify({ route: t.route, decision: t.decision, reason: t.reason, status: String(t.status) });
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  for (const [key, n] of expected) {
    assert.equal(sample(m.text, 'meshgate_requests_total', JSON.parse(key) as Record<string, string>), n, `meshgate_requests_total${key}`);
  }
  const total = m.text.split('\n').filter((l) => l.startsWith('meshgate_requests_total{')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.equal(total, TRAFFIC.length, 'one count per request, nothing else');
});

test('/metrics has the latency histogram per route and decision, with a count equal to the requests', async () => {
  const m = await admin('/metrics');
  assert.equal(m.status, 200);
  assert.match(m.text, /^# TYPE meshgate_request_duration_seconds histogram$/m);
  const allowDefault = TRAFFIC.filter((t) => t.route === 'default' && t.decision === 'allow').length;
  const denyDefault = TRAFFIC.filter((t) => t.route === 'default' && t.decision === 'deny').length;
  assert.equal(sample(m.text, 'meshgate_request_duration_seconds_count', { route: 'default', decision: 'allow' }), allowDefault);
  assert.equal(sample(m.text, 'meshgate_request_duration_seconds_count', { route: 'default', decision: 'deny' }), denyDefault);
  assert.equal(sample(m.text, 'meshgate_request_duration_seconds_bucket', { route: 'default', decision: 'allow', le: '+Inf' }), allowDefault);
  const sum = sample(m.text, 'meshgate_request_duration_seconds_sum', { route: 'default', decision: 'allow' });
  assert.ok(sum !== undefined && sum > 0, 'latency is measured');
  // Buckets are cumulative.
  const buckets = m.text.split('\n').filter((l) => l.startsWith('meshgate_request_duration_seconds_bucket{') && l.includes('route="default",decision="allow"'))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  assert.ok(buckets.length > 5);
  for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as number) >= (buckets[i - 1] as number));
});

test('the admin listener answers unknown paths with 404 and writes with 405', async () => {
  assert.equal((await admin('/nope')).status, 404);
  assert.equal((await admin('/readyz', 'POST')).status, 405);
});
