/**
 * Engine selection: `auto` compiles what it can and falls back to casbin
 * with a reason naming the construct (logged as a warning by the policy
 * store and shown in its status); `compiled` refuses what it cannot compile
 * with a PolicyError; `casbin` always uses casbin. Whatever serves, the
 * decisions are casbin's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { authorizerFromText, loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import type { Authorizer, AuthzEngineChoice } from '../../src/authz/authorizer.ts';
import { PolicyError } from '../../src/authz/policy-error.ts';
import { createPolicyStore } from '../../src/authz/policy-store.ts';
import type { AuthzRequest } from '../../src/core/types.ts';

const fixtures = fileURLToPath(new URL('../fixtures/authz/', import.meta.url));
const req = (sub: string, act: string, obj: string, claims: Record<string, unknown> = {}): AuthzRequest => ({ sub, peer: '', obj, act, claims });

const RBAC = (m: string, e = 'some(where (p.eft == allow)) && !some(where (p.eft == deny))', p = 'sub, obj, act, eft'): string =>
  `[request_definition]\nr = sub, obj, act\n[policy_definition]\np = ${p}\n[role_definition]\ng = _, _\n[policy_effect]\ne = ${e}\n[matchers]\nm = ${m}\n`;

function fromText(model: string, policy: string, engine: AuthzEngineChoice = 'auto'): Promise<Authorizer> {
  return authorizerFromText({ modelPath: 'model.conf', policyPath: 'policy.csv', modelText: model, policyText: policy, decisionCacheEntries: 0, engine });
}

test('auto compiles a supported model, and casbin serves it on request, with the same decisions', async () => {
  const policy = 'p, role:a, /x/:id, GET, allow\np, bob, /x/secret, GET, deny\ng, bob, role:a\n';
  const model = RBAC('g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act');
  const auto = await fromText(model, policy);
  const casbin = await fromText(model, policy, 'casbin');
  assert.equal(auto.engine, 'compiled');
  assert.equal(auto.fallbackReason, undefined);
  assert.equal(casbin.engine, 'casbin');
  assert.equal(casbin.fallbackReason, undefined);
  assert.equal(auto.version, casbin.version);
  for (const r of [req('bob', 'GET', '/x/1'), req('bob', 'GET', '/x/secret'), req('eve', 'GET', '/x/1'), req('role:a', 'GET', '/x/secret')]) {
    assert.deepEqual(auto.decide(r), casbin.decide(r));
  }
  assert.deepEqual(auto.decide(req('bob', 'GET', '/x/secret')), {
    allowed: false, reason: 'authz_deny_rule', matchedRule: 'policy.csv:2: p, bob, /x/secret, GET, deny', policyVersion: auto.version,
  });
});

const UNSUPPORTED: ReadonlyArray<readonly [string, string, string]> = [
  ['claims conditions', RBAC('r.claims.role == p.sub && r.obj == p.obj && r.act == p.act').replace('r = sub, obj, act', 'r = sub, obj, act, claims'), 'r.claims'],
  ['ipMatch', RBAC('g(r.sub, p.sub) && ipMatch(r.obj, p.obj) && r.act == p.act'), 'ipMatch'],
  ['keyMatch4', RBAC('g(r.sub, p.sub) && keyMatch4(r.obj, p.obj) && r.act == p.act'), 'keyMatch4'],
  ['member access', RBAC('g(r.sub, p.sub) && r.obj.Owner == p.obj && r.act == p.act'), 'member access'],
  ['!= operator', RBAC('g(r.sub, p.sub) && r.obj != p.obj && r.act == p.act'), '"!="'],
  ['g called twice', RBAC('g(r.sub, p.sub) && g(r.obj, p.obj) && r.act == p.act'), 'called 2 times'],
  ['two row alternatives', RBAC('g(r.sub, p.sub) && r.obj == p.obj || r.act == p.act'), 'alternatives read the policy row'],
  ['one column tested twice', RBAC('g(r.sub, p.sub) && r.obj == p.obj && keyMatch(r.obj, p.obj) && r.act == p.act'), 'more than one condition'],
  ['subject priority', RBAC('g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act', 'subjectPriority(p.eft) || deny'), 'subjectPriority'],
];

for (const [what, model, mentions] of UNSUPPORTED) {
  test(`a model with ${what} falls back to casbin under auto (reason names it) and is a PolicyError under engine compiled`, async () => {
    const policy = 'p, alice, /x, GET, allow\ng, bob, alice\n';
    const auto = await fromText(model, policy);
    assert.equal(auto.engine, 'casbin');
    assert.match(auto.fallbackReason ?? '', /^model\.conf:\d+: /);
    assert.ok(auto.fallbackReason!.includes(mentions), auto.fallbackReason);
    await assert.rejects(fromText(model, policy, 'compiled'), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.equal(e.file, 'model.conf');
      assert.ok(e.line !== undefined && e.reason.includes('engine "compiled" cannot serve this') && e.reason.includes(mentions), e.message);
      return true;
    });
  });
}

test('the ABAC fixture falls back and still decides on claims', async () => {
  const abac = await loadAuthorizer({ modelPath: join(fixtures, 'abac/model.conf'), policyPath: join(fixtures, 'abac/policy.csv'), decisionCacheEntries: 0 });
  assert.equal(abac.engine, 'casbin');
  assert.equal(abac.decide(req('x', 'GET', '/admin/users', { role: 'admin' })).allowed, true);
  assert.equal(abac.decide(req('x', 'GET', '/admin/users', { role: 'support' })).allowed, false);
});

test('every other fixture compiles and decides like casbin', async () => {
  for (const name of ['domains', 'hierarchy', 'priority']) {
    const opts = { modelPath: join(fixtures, name, 'model.conf'), policyPath: join(fixtures, name, 'policy.csv'), decisionCacheEntries: 0 };
    const compiled = await loadAuthorizer({ ...opts, engine: 'compiled' });
    const casbin = await loadAuthorizer({ ...opts, engine: 'casbin' });
    for (const sub of ['bob', 'carol', 'dave', 'erin', 'frank', 'role:admin', 'role:owner', 'nobody']) {
      for (const obj of ['/data/1', '/reports/7', '/files/private', '/files/x', '/data/']) {
        for (const act of ['GET', 'POST', 'PUT', 'DELETE']) {
          for (const peer of ['', 'spiffe://mesh.local/w', 'spiffe://partner.example/w']) {
            const r = { sub, peer, obj, act, claims: {} };
            assert.deepEqual(compiled.decide(r), casbin.decide(r), `${name}: ${JSON.stringify(r)}`);
          }
        }
      }
    }
  }
});

test('an invalid regex in the policy falls back to casbin (which fails closed on it) and is a PolicyError under engine compiled', async () => {
  const model = RBAC('g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)');
  const policy = 'p, alice, /ok, GET, allow\np, bob, /x, [GET, allow\n';
  const auto = await fromText(model, policy);
  assert.equal(auto.engine, 'casbin');
  assert.match(auto.fallbackReason ?? '', /^policy\.csv:2: regexMatch pattern "\[GET" is not a valid regular expression/);
  // Casbin throws when it reaches the rule: a deny with authz_error, never an allow.
  assert.equal(auto.decide(req('bob', 'GET', '/x')).reason, 'authz_error');
  await assert.rejects(fromText(model, policy, 'compiled'), (e: unknown) => e instanceof PolicyError && e.file === 'policy.csv' && e.line === 2);
});

test('a keyMatch2 pattern that would make casbin loop forever is a load error on every engine, naming its line', async () => {
  for (const [m, bad] of [['keyMatch2(r.obj, p.obj)', '/api/:/x'], ['keyMatch3(r.obj, p.obj)', '/api/{x'], ['keyMatch4(r.obj, p.obj)', '/a/{']] as const) {
    const model = RBAC(`g(r.sub, p.sub) && ${m} && r.act == p.act`);
    for (const engine of ['auto', 'compiled', 'casbin'] as const) {
      if (m.startsWith('keyMatch4') && engine === 'compiled') continue;
      await assert.rejects(fromText(model, `p, alice, /ok, GET, allow\np, bob, ${bad}, GET, allow\n`, engine), (e: unknown) => {
        assert.ok(e instanceof PolicyError, String(e));
        assert.equal(e.line, 2, `${m} ${engine}: ${e.message}`);
        assert.match(e.reason, /loop forever/);
        return true;
      }, `${m} under ${engine}`);
    }
  }
});

test('an unknown engine name is caller misuse (TypeError)', async () => {
  await assert.rejects(fromText(RBAC('r.sub == p.sub'), 'p, a, b, c, allow\n', 'fast' as AuthzEngineChoice), TypeError);
});

test('a request-only super-user alternative makes every rule match, with casbin\'s explanation for the effect', async () => {
  const model = RBAC('g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act || r.sub == "root"');
  const policy = 'p, alice, /a, GET, allow\np, bob, /b, GET, deny\np, carol, /c, GET, allow\n';
  const compiled = await fromText(model, policy, 'compiled');
  const casbin = await fromText(model, policy, 'casbin');
  const root = req('root', 'DELETE', '/anything');
  // Allow-and-not-deny: the first deny wins even for root.
  assert.deepEqual(compiled.decide(root), casbin.decide(root));
  assert.equal(compiled.decide(root).matchedRule, 'policy.csv:2: p, bob, /b, GET, deny');
});

test('the policy store logs a fallback as a warning, shows the engine in status, and follows a reload to the compiled engine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-engine-store-'));
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
  try {
    writeFileSync(join(dir, 'model.conf'), RBAC('g(r.sub, p.sub) && ipMatch(r.obj, p.obj) && r.act == p.act'));
    writeFileSync(join(dir, 'policy.csv'), 'p, alice, 10.0.0.0/8, GET, allow\n');
    const store = await createPolicyStore({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 0, watch: false, logger });
    assert.equal(store.current().engine, 'casbin');
    assert.equal(store.status().engine?.name, 'casbin');
    assert.match(store.status().engine?.fallbackReason ?? '', /ipMatch/);
    const warn = logs.find((l) => l.level === 40);
    assert.ok(warn, JSON.stringify(logs));
    assert.equal(warn.engine, 'casbin');
    assert.match(String(warn.fallbackReason), /ipMatch/);

    writeFileSync(join(dir, 'model.conf'), RBAC('g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act'));
    assert.equal(await store.reload(), true);
    assert.equal(store.current().engine, 'compiled');
    assert.deepEqual(store.status().engine, { name: 'compiled' });
    assert.ok(logs.some((l) => l.msg === 'policy reloaded' && l.engine === 'compiled' && l.level === 30));

    // engine: compiled refuses the unsupported model at start: a gateway must not start on the wrong engine.
    writeFileSync(join(dir, 'model.conf'), RBAC('g(r.sub, p.sub) && ipMatch(r.obj, p.obj) && r.act == p.act'));
    await assert.rejects(createPolicyStore({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 0, watch: false, engine: 'compiled' }), PolicyError);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
