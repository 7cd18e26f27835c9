import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { ANONYMOUS, type AuthzRequest } from '../../src/core/types.ts';

const root = fileURLToPath(new URL('../../policies/', import.meta.url));
const authz = await loadAuthorizer({ modelPath: root + 'model.conf', policyPath: root + 'policy.csv', decisionCacheEntries: 100 });

function req(sub: string, act: string, obj: string, peer = ''): AuthzRequest {
  return { sub, peer, obj, act, claims: {} };
}

test('alice (a reader) may GET /orders, and the decision names the allowing policy line', () => {
  const d = authz.decide(req('alice', 'GET', '/orders'));
  assert.equal(d.allowed, true);
  assert.equal(d.reason, 'allowed');
  assert.equal(d.matchedRule, 'policy.csv:11: p, role:reader, /orders, ^(GET|HEAD)$, allow');
  assert.equal(d.policyVersion, authz.version);
});

test('alice may GET one order through the keyMatch2 :id pattern, but not a nested path', () => {
  const one = authz.decide(req('alice', 'GET', '/orders/42'));
  assert.equal(one.allowed, true);
  assert.match(one.matchedRule ?? '', /^policy\.csv:12: p, role:reader, \/orders\/:id,/);
  const nested = authz.decide(req('alice', 'GET', '/orders/42/items'));
  assert.equal(nested.allowed, false);
  assert.equal(nested.reason, 'authz_no_matching_rule');
});

test('alice is denied /orders/secret by the explicit deny rule although her role allows /orders/:id', () => {
  const d = authz.decide(req('alice', 'GET', '/orders/secret'));
  assert.equal(d.allowed, false);
  assert.equal(d.reason, 'authz_deny_rule');
  assert.equal(d.matchedRule, 'policy.csv:18: p, alice, /orders/secret, .*, deny');
});

test('alice GET /admin/users is denied with authz_no_matching_rule and no matched rule', () => {
  const d = authz.decide(req('alice', 'GET', '/admin/users'));
  assert.equal(d.allowed, false);
  assert.equal(d.reason, 'authz_no_matching_rule');
  assert.equal(d.matchedRule, undefined);
});

test('reader rules allow only GET and HEAD: the anchored method pattern refuses DELETE and look-alikes', () => {
  assert.equal(authz.decide(req('alice', 'HEAD', '/orders')).allowed, true);
  assert.equal(authz.decide(req('alice', 'DELETE', '/orders/1')).allowed, false);
  assert.equal(authz.decide(req('alice', 'XGET', '/orders')).allowed, false);
  assert.equal(authz.decide(req('alice', 'GETX', '/orders')).allowed, false);
});

test('anonymous may GET /healthz and /public/* but nothing else', () => {
  assert.equal(authz.decide(req(ANONYMOUS, 'GET', '/healthz')).allowed, true);
  assert.equal(authz.decide(req(ANONYMOUS, 'GET', '/public/css/site.css')).allowed, true);
  assert.equal(authz.decide(req(ANONYMOUS, 'POST', '/healthz')).allowed, false);
  const orders = authz.decide(req(ANONYMOUS, 'GET', '/orders'));
  assert.equal(orders.allowed, false);
  assert.equal(orders.reason, 'authz_no_matching_rule');
});

test('a workload SPIFFE ID gets its role: the admin workload may POST under /admin/, the client workload may not', () => {
  const admin = 'spiffe://mesh.local/ns/default/sa/admin';
  const client = 'spiffe://mesh.local/ns/default/sa/client';
  assert.equal(authz.decide(req(admin, 'POST', '/admin/users', admin)).allowed, true);
  assert.equal(authz.decide(req(client, 'POST', '/admin/users', client)).allowed, false);
  assert.equal(authz.decide(req(client, 'GET', '/orders', client)).allowed, true);
});

test('a subject spelled like a role name does not inherit the role, because roles carry the role: prefix', () => {
  assert.equal(authz.decide(req('reader', 'GET', '/orders')).allowed, false);
  assert.equal(authz.decide(req('admin', 'GET', '/admin/users')).allowed, false);
});

test('the policy version is sha256: followed by 16 hex digits and the demo model does not read claims', () => {
  assert.match(authz.version, /^sha256:[0-9a-f]{16}$/);
  assert.equal(authz.engine, 'compiled');
  assert.equal(authz.usesClaims, false);
});
