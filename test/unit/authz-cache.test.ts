import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { DecisionCache } from '../../src/authz/decision-cache.ts';
import { decisionCacheKey } from '../../src/authz/request-tuple.ts';
import type { AuthzRequest, Decision } from '../../src/core/types.ts';

const policies = fileURLToPath(new URL('../../policies/', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/authz/', import.meta.url));
const demo = (decisionCacheEntries: number) =>
  loadAuthorizer({ modelPath: join(policies, 'model.conf'), policyPath: join(policies, 'policy.csv'), decisionCacheEntries });

const requests: AuthzRequest[] = [
  { sub: 'alice', peer: '', obj: '/orders', act: 'GET', claims: {} },
  { sub: 'alice', peer: '', obj: '/orders/secret', act: 'GET', claims: {} },
  { sub: 'alice', peer: '', obj: '/admin/users', act: 'GET', claims: {} },
  { sub: 'anonymous', peer: '', obj: '/healthz', act: 'GET', claims: {} },
  { sub: 'spiffe://mesh.local/ns/default/sa/admin', peer: 'spiffe://mesh.local/ns/default/sa/admin', obj: '/admin/x', act: 'PUT', claims: {} },
];

test('a cached authorizer returns the same decisions as an uncached one, and serves repeats from its cache', async () => {
  const cached = await demo(100);
  const plain = await demo(0);
  for (const r of requests) {
    const first = cached.decide(r);
    assert.deepEqual(first, plain.decide(r));
    // The same frozen object back proves the second answer came from the cache.
    assert.equal(cached.decide(r), first);
    assert.ok(Object.isFrozen(first));
  }
});

test('with decisionCacheEntries 0 nothing is cached', async () => {
  const plain = await demo(0);
  const r = requests[0]!;
  const a = plain.decide(r);
  assert.notEqual(plain.decide(r), a);
  assert.deepEqual(plain.decide(r), a);
});

test('the cache is bypassed when the matcher reads claims: the same tuple with other claims gets another decision', async () => {
  const abac = await loadAuthorizer({ modelPath: join(fixtures, 'abac/model.conf'), policyPath: join(fixtures, 'abac/policy.csv'), decisionCacheEntries: 100 });
  assert.equal(abac.usesClaims, true);
  const base = { sub: 'u', peer: '', obj: '/admin/x', act: 'GET' };
  const admin = abac.decide({ ...base, claims: { role: 'admin' } });
  const other = abac.decide({ ...base, claims: { role: 'guest' } });
  assert.equal(admin.allowed, true);
  assert.equal(other.allowed, false);
  const again = abac.decide({ ...base, claims: { role: 'admin' } });
  assert.notEqual(again, admin);
  assert.deepEqual(again, admin);
});

test('cache keys distinguish subjects that a naive join would confuse', () => {
  const a = decisionCacheKey({ sub: 'a|b', peer: '', obj: '/x', act: 'GET', claims: {} });
  const b = decisionCacheKey({ sub: 'a', peer: 'b', obj: '/x', act: 'GET', claims: {} });
  assert.notEqual(a, b);
});

test('the decision cache is bounded and evicts the least recently used entry first', () => {
  const cache = new DecisionCache(2);
  const d = (n: number): Decision => ({ allowed: true, reason: 'allowed', matchedRule: String(n), policyVersion: 'v' });
  cache.set('a', d(1));
  cache.set('b', d(2));
  assert.equal(cache.get('a')?.matchedRule, '1'); // a is now the most recent
  cache.set('c', d(3));
  assert.equal(cache.size, 2);
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.get('a')?.matchedRule, '1');
  assert.equal(cache.get('c')?.matchedRule, '3');
  assert.throws(() => new DecisionCache(1.5), TypeError);
});

test('an evaluation error is not cached: the next identical request is evaluated again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-cache-'));
  try {
    // r.sub is a string, so r.sub.x.y throws at evaluation time (not a syntax error).
    writeFileSync(join(dir, 'model.conf'), '[request_definition]\nr = sub, obj\n[policy_definition]\np = sub, obj\n' +
      '[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.sub.x.y == p.sub && r.obj == p.obj\n');
    writeFileSync(join(dir, 'policy.csv'), 'p, alice, /x\n');
    const a = await loadAuthorizer({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 10 });
    const r: AuthzRequest = { sub: 'alice', peer: '', obj: '/x', act: 'GET', claims: {} };
    const first = a.decide(r);
    assert.equal(first.reason, 'authz_error');
    assert.equal(first.allowed, false);
    const second = a.decide(r);
    assert.equal(second.reason, 'authz_error');
    assert.notEqual(second, first);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
