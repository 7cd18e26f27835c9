/**
 * End to end: authorization with Casbin on verified identity only
 * (PRODUCT §1.4), and the identity headers the upstream can trust
 * (PRODUCT §1.5). Every refusal asserts status, problem reason and the
 * audited reason; decisions carry the matched rule and the policy version.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import type { AuditRecord } from '../../src/audit/event.ts';
import { rawJson, rawStatus, startHarness, type Harness, type HarnessResponse } from '../helpers/gateway.ts';

async function auditOf(h: Harness, requestId: string): Promise<AuditRecord> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    const hit = (await h.auditEvents()).find((e) => e.requestId === requestId);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  return assert.fail(`no audit event for request ${requestId}`);
}

async function policyVersion(h: Harness): Promise<string> {
  const body = await (await fetch(h.adminUrl('/readyz'))).json() as { components: { name: string; version?: string }[] };
  const v = body.components.find((c) => c.name === 'policy')?.version;
  assert.ok(v, 'readyz shows the policy version');
  return v;
}

async function assertDecision(h: Harness, r: HarnessResponse, status: number, reason: string): Promise<AuditRecord> {
  assert.equal(r.status, status, `expected ${status} ${reason}, got ${r.status} ${r.text}`);
  const requestId = status < 300 ? String(r.headers['x-request-id'] ?? '') : r.json<{ requestId: string }>().requestId;
  if (status >= 400) {
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.json<{ reason: string }>().reason, reason);
  }
  const e = await auditOf(h, requestId);
  assert.equal(e.reason, reason);
  assert.equal(e.status, status);
  assert.equal(e.decision, status < 300 ? 'allow' : 'deny');
  return e;
}

describe('authorization in strict mode', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  test('an allowed request is forwarded with identity headers set by meshgate and none of the spoofed ones', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    const spiffe = h.pki.client.spiffeIds[0]!;
    const fp = createHash('sha256').update(new X509Certificate(h.pki.client.certPem).raw).digest('hex');
    // Raw bytes: undici refuses to send a Connection header that lists other headers.
    const res = await h.raw([
      'GET /orders HTTP/1.1',
      'host: localhost',
      `authorization: Bearer ${token}`,
      'x-forwarded-client-cert: By=spiffe://mesh.local/evil;Hash=00;URI=spiffe://mesh.local/ns/default/sa/admin',
      'x-meshgate-principal: root',
      'x-meshgate-peer: spiffe://mesh.local/ns/default/sa/admin',
      'x-meshgate-issuer: https://evil.example',
      'x-forwarded-for: 10.6.6.6',
      'x-hop-secret: must-not-pass',
      'connection: close, x-hop-secret',
      '', '',
    ].join('\r\n'));
    assert.equal(rawStatus(res), 200, res.slice(0, 300));
    assert.equal(rawJson<{ url: string }>(res).url, '/orders');
    const seen = h.upstreamRequests.at(-1);
    assert.ok(seen, 'the upstream received the request');
    assert.equal(seen.headers['x-meshgate-principal'], 'alice');
    assert.equal(seen.headers['x-meshgate-issuer'], 'https://issuer.mesh.local');
    assert.equal(seen.headers['x-meshgate-peer'], spiffe);
    assert.equal(seen.headers['x-forwarded-client-cert'], `By=spiffe://mesh.local/meshgate;Hash=${fp};URI=${spiffe}`);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted peer cannot prepend addresses');
    assert.equal(seen.headers['x-hop-secret'], undefined, 'headers listed in Connection are hop-by-hop');
    assert.ok(!JSON.stringify(seen.headers).includes('sa/admin'), 'no spoofed identity reaches the upstream');
    assert.ok(!JSON.stringify(seen.headers).includes('root'));
  });

  test('a request no policy line allows gets 403 authz_no_matching_rule', async () => {
    const before = h.upstreamRequests.length;
    const e = await assertDecision(h, await h.request('/orders', { token: await h.pki.mintToken({ sub: 'bob' }) }), 403, 'authz_no_matching_rule');
    assert.deepEqual(e.principal, { iss: 'https://issuer.mesh.local', sub: 'bob' });
    assert.equal(e.rule, null, 'no rule matched');
    assert.equal(e.policyVersion, await policyVersion(h));
    assert.equal(h.upstreamRequests.length, before, 'a denied request is not forwarded');
  });

  test('an explicit deny rule wins over a role grant: 403 authz_deny_rule naming the deny line', async () => {
    const e = await assertDecision(h, await h.request('/orders/secret', { token: await h.pki.mintToken({ sub: 'alice' }) }), 403, 'authz_deny_rule');
    assert.equal(e.rule, 'policy.csv:5: p, alice, /orders/secret, GET, deny');
    assert.equal(e.policyVersion, await policyVersion(h));
  });

  test('an allowed request is audited with the matched rule and the policy version', async () => {
    const e = await assertDecision(h, await h.request('/orders/42', { token: await h.pki.mintToken({ sub: 'alice' }) }), 200, 'allowed');
    assert.equal(e.rule, 'policy.csv:4: p, reader, /orders/:id, GET, allow');
    assert.equal(e.policyVersion, await policyVersion(h));
    assert.equal(e.path, '/orders/42');
    assert.equal(e.route, 'default');
  });

  test('the method is part of the decision: POST where only GET is allowed gets 403 authz_no_matching_rule', async () => {
    await assertDecision(h, await h.request('/orders', { method: 'POST', body: '{}', token: await h.pki.mintToken({ sub: 'alice' }) }), 403, 'authz_no_matching_rule');
  });

  test('the canonical path is what is authorized: a dot-segment detour to the denied path is still denied', async () => {
    const res = await h.raw(`GET /orders/x/../secret HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${await h.pki.mintToken({ sub: 'alice' })}\r\nconnection: close\r\n\r\n`);
    assert.equal(rawStatus(res), 403);
    const body = rawJson<{ reason: string; requestId: string }>(res);
    assert.equal(body.reason, 'authz_deny_rule');
    const e = await auditOf(h, body.requestId);
    assert.equal(e.path, '/orders/secret');
    assert.equal(e.rawPath, '/orders/x/../secret');
  });

  test('an mtls-only route authorizes the SPIFFE ID as the subject (200)', async () => {
    const e = await assertDecision(h, await h.request('/svc/x'), 200, 'allowed');
    assert.equal(e.principal, null);
    assert.equal(e.peer?.spiffeId, h.pki.client.spiffeIds[0]);
    assert.equal(e.rule, 'policy.csv:12: p, spiffe://mesh.local/ns/default/sa/client, /svc/*, GET, allow');
  });

  test('another workload on the mtls-only route is denied: 403 authz_no_matching_rule', async () => {
    const other = h.pki.issueClient({ name: 'other-workload' });
    const e = await assertDecision(h, await h.request('/svc/x', { cert: other }), 403, 'authz_no_matching_rule');
    assert.equal(e.peer?.spiffeId, other.spiffeIds[0]);
  });

  test('spoofed identity headers never influence the decision', async () => {
    const other = h.pki.issueClient({ name: 'spoofer' });
    await assertDecision(h, await h.request('/svc/x', {
      cert: other,
      headers: { 'x-meshgate-peer': h.pki.client.spiffeIds[0]!, 'x-forwarded-client-cert': `URI=${h.pki.client.spiffeIds[0]!}` },
    }), 403, 'authz_no_matching_rule');
  });
});

describe('authorization of requests without identity (permissive mode, no certificate)', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ tlsMode: 'permissive' }); });
  after(() => h.close());

  test('anonymous GET on a public route the policy allows for anonymous is 200', async () => {
    const e = await assertDecision(h, await h.request('/public/x', { cert: null }), 200, 'allowed');
    assert.equal(e.peer, null);
    assert.equal(e.principal, null);
    assert.equal(e.rule, 'policy.csv:2: p, anonymous, /public/*, GET, allow');
  });

  test('anonymous POST on /healthz (only GET is allowed) gets 403 authz_no_matching_rule', async () => {
    await assertDecision(h, await h.request('/healthz', { cert: null, method: 'POST', body: 'x' }), 403, 'authz_no_matching_rule');
  });

  test('a client certificate on an auth:none route makes the SPIFFE ID the subject, not anonymous', async () => {
    await assertDecision(h, await h.request('/public/x'), 403, 'authz_no_matching_rule');
  });
});

describe('routing: a table without a catch-all', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      patch: (cfg) => ({
        ...cfg,
        routes: [
          { name: 'healthz', match: { pathPrefix: '/healthz' }, auth: 'none' },
          { name: 'svc', match: { pathPrefix: '/svc/' }, auth: 'mtls' },
          { name: 'orders-get', match: { path: '/orders', methods: ['GET'] }, auth: 'mtls+jwt' },
        ],
      }),
    });
  });
  after(() => h.close());

  test('a path no route matches gets 404 route_not_found and is never forwarded', async () => {
    const e = await assertDecision(h, await h.request('/admin/x', { token: await h.pki.mintToken({ sub: 'root' }) }), 404, 'route_not_found');
    assert.equal(e.route, null);
    assert.equal(h.upstreamRequests.length, 0);
  });

  test('a method the only matching route does not take gets 404 route_not_found', async () => {
    await assertDecision(h, await h.request('/orders', { method: 'DELETE', token: await h.pki.mintToken({ sub: 'alice' }) }), 404, 'route_not_found');
  });

  test('a matched route still works (200)', async () => {
    await assertDecision(h, await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) }), 200, 'allowed');
  });
});
