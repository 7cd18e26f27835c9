/**
 * The proof (PRODUCT §1.4 ★): for RBAC shapes — roles with multi-level
 * hierarchies, domains, deny rules, priorities — generated policies from a
 * few dozen to twelve thousand rules and over 10,000 random requests per
 * shape get exactly the same allow/deny, reason and matched rule from the
 * compiled engine as from casbin's enforceEx on the same files.
 * Casbin costs ~3 µs per rule per request, so the large policies get fewer
 * requests; every shape still sees ≥ 10,000.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { differential, rng, type Tally } from './authz-engine-harness.ts';
import { EFFECT, generatePolicy, model, randomRequest, type Shape } from './authz-engine-corpus.ts';

/** Policy sizes (p lines) and request counts per shape. */
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
  // A corpus that never allows (or never misses) proves little.
  assert.ok(total.allowed > 500 && total.noMatch > 500, `${shape.name}: ${JSON.stringify(total)}`);
  return total;
}

test('RBAC with keyMatch2 paths, regexMatch methods and deny rules decides exactly like casbin', async () => {
  const t = await run({
    name: 'rbac-keymatch2-deny', obj: 'keyMatch2', act: 'regex', roles: 2, columns: ['sub', 'obj', 'act', 'eft'], denyShare: 0.15,
    model: model({ r: 'sub, obj, act', p: 'sub, obj, act, eft', g: '_, _', e: EFFECT.allowDeny, m: 'g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)' }),
  }, 1);
  assert.ok(t.denyRule > 200, JSON.stringify(t));
});

test('RBAC with domains, keyMatch prefixes and a "*" action wildcard decides exactly like casbin', async () => {
  await run({
    name: 'domains-keymatch-wildcard', obj: 'keyMatch', act: 'wildcard', roles: 3, columns: ['sub', 'dom', 'obj', 'act', 'eft'], denyShare: 0.1,
    model: model({
      r: 'sub, dom, obj, act', p: 'sub, dom, obj, act, eft', g: '_, _, _', e: EFFECT.allow,
      m: 'g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")',
    }),
  }, 2);
});

test('explicit priorities with keyMatch3 paths decide exactly like casbin, including ties and non-numeric priorities', async () => {
  const t = await run({
    name: 'priority-keymatch3', obj: 'keyMatch3', act: 'eq', roles: 2, columns: ['priority', 'sub', 'obj', 'act', 'eft'], denyShare: 0.3,
    model: model({ r: 'sub, obj, act', p: 'priority, sub, obj, act, eft', g: '_, _', e: EFFECT.priority, m: 'g(r.sub, p.sub) && keyMatch3(r.obj, p.obj) && r.act == p.act' }),
  }, 3);
  assert.ok(t.denyRule > 100, JSON.stringify(t));
});

test('RBAC with domains and exact objects (casbin\'s own benchmark model) with deny rules decides exactly like casbin', async () => {
  await run({
    name: 'domains-exact-deny', obj: 'eq', act: 'eq', roles: 3, columns: ['sub', 'dom', 'obj', 'act', 'eft'], denyShare: 0.2,
    model: model({
      r: 'sub, dom, obj, act', p: 'sub, dom, obj, act, eft', g: '_, _, _', e: EFFECT.allowDeny,
      m: 'g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act',
    }),
  }, 4);
});
