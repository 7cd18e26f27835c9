/**
 * The proof, continued, for the object-matching functions whose semantics
 * are least obvious — keyMatch5 (query strings), globMatch (minimatch) and
 * regexMatch (unanchored) — with subject equality and a super-user
 * alternative, implicit priority (file order) and deny rules: ≥ 10,000
 * random requests per shape against casbin's enforceEx on the same files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { differential, rng, type Tally } from './authz-engine-harness.ts';
import { EFFECT, generatePolicy, model, randomRequest, type Shape } from './authz-engine-corpus.ts';

const PLAN: ReadonlyArray<{ rules: number; requests: number }> = [
  { rules: 40, requests: 5_000 },
  { rules: 150, requests: 4_000 },
  { rules: 400, requests: 1_000 },
  { rules: 12_000, requests: 20 },
];

async function run(shape: Shape, seed: number): Promise<Tally> {
  const total: Tally = { allowed: 0, denyRule: 0, noMatch: 0, requests: 0 };
  for (const [i, { rules, requests }] of PLAN.entries()) {
    const r = rng(seed * 1000 + i);
    const world = generatePolicy(shape, r, rules);
    function* reqs() { for (let k = 0; k < requests; k++) yield randomRequest(world, r); }
    const t = await differential(`${shape.name} (seed ${seed}, ${rules} rules)`, shape.model, world.lines, reqs());
    for (const k of ['allowed', 'denyRule', 'noMatch', 'requests'] as const) total[k] += t[k];
  }
  assert.ok(total.requests >= 10_000);
  assert.ok(total.allowed > 500 && total.noMatch > 500, `${shape.name}: ${JSON.stringify(total)}`);
  return total;
}

test('subject equality with keyMatch5 paths and a request-only super-user alternative decides exactly like casbin', async () => {
  await run({
    name: 'subject-keymatch5-root', obj: 'keyMatch5', act: 'eq', roles: 0, columns: ['sub', 'obj', 'act'], denyShare: 0,
    model: model({ r: 'sub, obj, act', p: 'sub, obj, act', e: EFFECT.allow, m: 'r.sub == p.sub && keyMatch5(r.obj, p.obj) && r.act == p.act || r.sub == "root"' }),
  }, 5);
});

test('RBAC with globMatch paths under implicit priority (file order) decides exactly like casbin', async () => {
  const t = await run({
    name: 'rbac-glob-priority', obj: 'globMatch', act: 'regex', roles: 2, columns: ['sub', 'obj', 'act', 'eft'], denyShare: 0.25,
    model: model({ r: 'sub, obj, act', p: 'sub, obj, act, eft', g: '_, _', e: EFFECT.priority, m: 'g(r.sub, p.sub) && globMatch(r.obj, p.obj) && regexMatch(r.act, p.act)' }),
  }, 6);
  assert.ok(t.denyRule > 100, JSON.stringify(t));
});

test('RBAC with unanchored regexMatch objects and deny rules decides exactly like casbin', async () => {
  const t = await run({
    name: 'rbac-regex-deny', obj: 'regexMatch', act: 'wildcard', roles: 2, columns: ['sub', 'obj', 'act', 'eft'], denyShare: 0.15,
    model: model({ r: 'sub, obj, act', p: 'sub, obj, act, eft', g: '_, _', e: EFFECT.allowDeny, m: 'g(r.sub, p.sub) && regexMatch(r.obj, p.obj) && (p.act == "*" || r.act == p.act)' }),
  }, 7);
  assert.ok(t.denyRule > 100, JSON.stringify(t));
});
