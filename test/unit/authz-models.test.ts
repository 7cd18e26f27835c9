import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import type { AuthzRequest } from '../../src/core/types.ts';

const fixtures = fileURLToPath(new URL('../fixtures/authz/', import.meta.url));

function fixture(name: string): Promise<Authorizer> {
  return loadAuthorizer({ modelPath: join(fixtures, name, 'model.conf'), policyPath: join(fixtures, name, 'policy.csv'), decisionCacheEntries: 0 });
}

async function inline(model: string, policy: string): Promise<Authorizer> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-'));
  try {
    writeFileSync(join(dir, 'model.conf'), model);
    writeFileSync(join(dir, 'policy.csv'), policy);
    return await loadAuthorizer({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function req(sub: string, act: string, obj: string, extra: Partial<AuthzRequest> = {}): AuthzRequest {
  return { sub, peer: '', obj, act, claims: {}, ...extra };
}

const DENY_MODEL = `[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
`;

test('RBAC with domains: dom is the peer trust domain, and a role granted in one domain does not apply in another', async () => {
  const a = await fixture('domains');
  const mesh = 'spiffe://mesh.local/ns/default/sa/web';
  const partner = 'spiffe://partner.example/app';
  const bobMesh = a.decide(req('bob', 'POST', '/data/x', { peer: mesh }));
  assert.equal(bobMesh.allowed, true);
  assert.equal(bobMesh.matchedRule, 'policy.csv:2: p, role:admin, mesh.local, /data/*, POST');
  assert.equal(a.decide(req('bob', 'GET', '/data/x', { peer: partner })).reason, 'authz_no_matching_rule');
  assert.equal(a.decide(req('carol', 'GET', '/data/x', { peer: partner })).allowed, true);
  assert.equal(a.decide(req('carol', 'GET', '/data/x', { peer: mesh })).allowed, false);
  // No peer certificate: dom is '' and matches no domain rule.
  assert.equal(a.decide(req('bob', 'GET', '/data/x')).allowed, false);
});

test('a role hierarchy passes rules down: owner inherits editor and viewer rules, viewer gets nothing above it', async () => {
  const a = await fixture('hierarchy');
  const del = a.decide(req('dave', 'DELETE', '/reports/7'));
  assert.equal(del.allowed, true);
  assert.equal(del.matchedRule, 'policy.csv:3: p, role:owner, /reports/:id, DELETE');
  const view = a.decide(req('dave', 'GET', '/reports/7'));
  assert.equal(view.matchedRule, 'policy.csv:1: p, role:viewer, /reports/:id, GET');
  assert.equal(a.decide(req('erin', 'GET', '/reports/7')).allowed, true);
  assert.equal(a.decide(req('erin', 'PUT', '/reports/7')).reason, 'authz_no_matching_rule');
});

test('ABAC on r.claims: the matcher reads verified claims and the authorizer reports usesClaims', async () => {
  const a = await fixture('abac');
  assert.equal(a.usesClaims, true);
  const ok = a.decide(req('u1', 'GET', '/admin/panel', { claims: { role: 'admin' } }));
  assert.equal(ok.allowed, true);
  assert.equal(ok.matchedRule, 'policy.csv:1: p, admin, /admin/*, GET');
  assert.equal(a.decide(req('u1', 'GET', '/admin/panel', { claims: { role: 'support' } })).allowed, false);
  assert.equal(a.decide(req('u1', 'GET', '/admin/panel')).reason, 'authz_no_matching_rule');
  // A claim that merely contains the role name is not equal to it. (Casbin's `==` is JavaScript's
  // loose equality, so a one-element array ['admin'] WOULD match: write matchers accordingly.)
  assert.equal(a.decide(req('u1', 'GET', '/admin/panel', { claims: { role: 'superadmin' } })).allowed, false);
  assert.equal(a.decide(req('u1', 'GET', '/admin/panel', { claims: { role: { name: 'admin' } } })).allowed, false);
});

test('a deny rule beats an allow rule whichever comes first in the file', async () => {
  for (const policy of [
    'p, bob, /a/*, GET, allow\np, bob, /a/b, GET, deny\n',
    'p, bob, /a/b, GET, deny\np, bob, /a/*, GET, allow\n',
  ]) {
    const a = await inline(DENY_MODEL, policy);
    const d = a.decide(req('bob', 'GET', '/a/b'));
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'authz_deny_rule');
    assert.match(d.matchedRule ?? '', /^policy\.csv:[12]: p, bob, \/a\/b, GET, deny$/);
    assert.equal(a.decide(req('bob', 'GET', '/a/c')).allowed, true);
  }
});

test('with a priority effect the highest-priority matching rule decides and is reported with its own line', async () => {
  const a = await fixture('priority');
  const frank = a.decide(req('frank', 'GET', '/files/private'));
  assert.equal(frank.allowed, false);
  assert.equal(frank.reason, 'authz_deny_rule');
  assert.equal(frank.matchedRule, 'policy.csv:2: p, 1, frank, /files/private, GET, deny');
  assert.equal(a.decide(req('frank', 'GET', '/files/public')).matchedRule, 'policy.csv:1: p, 10, role:staff, /files/*, GET, allow');
});

test('a policy with no p rules (only comments) denies everything with authz_no_matching_rule, even a request with blank fields', async () => {
  const model = DENY_MODEL.replace('m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act', 'm = r.sub == p.sub && r.obj == p.obj && r.act == p.act');
  for (const policy of ['# nothing yet\n', '# roles only\ng, a, b\n']) {
    const a = await inline(model, policy);
    const d = a.decide(req('', '', ''));
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'authz_no_matching_rule');
  }
});

test('an evaluation error is a deny with reason authz_error, never an exception', async () => {
  const model = DENY_MODEL.replace('r = sub, obj, act', 'r = sub, obj, act, claims')
    .replace('m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act', 'm = r.claims.org.name == p.sub && r.obj == p.obj');
  const a = await inline(model, 'p, acme, /x, GET, allow\n');
  assert.equal(a.decide(req('u', 'GET', '/x', { claims: { org: { name: 'acme' } } })).allowed, true);
  const d = a.decide(req('u', 'GET', '/x', { claims: {} }));
  assert.deepEqual({ allowed: d.allowed, reason: d.reason, matchedRule: d.matchedRule }, { allowed: false, reason: 'authz_error', matchedRule: undefined });
});

test('a subject that looks like JSON is compared as a plain string, not parsed', async () => {
  const a = await inline(DENY_MODEL, 'p, alice, /x, GET, allow\n');
  assert.equal(a.decide(req('"alice"', 'GET', '/x')).allowed, false);
  assert.equal(a.decide(req('["alice"]', 'GET', '/x')).allowed, false);
});

test('quoted CSV fields are unquoted before matching and the matched rule shows the line as written', async () => {
  const a = await inline(DENY_MODEL, '# comment\n\np, "svc, with comma", "/q/*", GET, allow\n');
  const d = a.decide(req('svc, with comma', 'GET', '/q/1'));
  assert.equal(d.allowed, true);
  assert.equal(d.matchedRule, 'policy.csv:3: p, "svc, with comma", "/q/*", GET, allow');
});

test('the version changes with either file and is stable for the same bytes', async () => {
  const a = await inline(DENY_MODEL, 'p, alice, /x, GET, allow\n');
  const b = await inline(DENY_MODEL, 'p, alice, /x, GET, allow\n');
  const c = await inline(DENY_MODEL, 'p, alice, /y, GET, allow\n');
  const d = await inline(DENY_MODEL + '\n', 'p, alice, /x, GET, allow\n');
  assert.equal(a.version, b.version);
  assert.notEqual(a.version, c.version);
  assert.notEqual(a.version, d.version);
});

test('a matcher that reads no policy row allows by the matcher itself and reports the model line as the matched rule', async () => {
  const model = DENY_MODEL.replace('m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act', 'm = r.sub == "root" && r.act == "GET"');
  const a = await inline(model, '# no rules needed\n');
  const root = a.decide(req('root', 'GET', '/anything'));
  assert.equal(root.allowed, true);
  assert.equal(root.matchedRule, 'model.conf:10: m = r.sub == "root" && r.act == "GET"');
  const other = a.decide(req('alice', 'GET', '/anything'));
  assert.deepEqual([other.allowed, other.reason, other.matchedRule], [false, 'authz_no_matching_rule', undefined]);
});
