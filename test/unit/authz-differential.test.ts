/**
 * Differential tests: meshgate's Authorizer must return the same allow/deny
 * as the `casbin` package used directly (PRODUCT §1.4). Randomized with fixed
 * seeds so a failure is reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { newEnforcer } from 'casbin';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { PolicyError } from '../../src/authz/policy-error.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import { trustDomainOf } from '../../src/authz/request-tuple.ts';
import type { AuthzRequest } from '../../src/core/types.ts';

/** mulberry32: a tiny seeded PRNG. */
function rng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

const RBAC_MODEL = `[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)
`;

function randomRbacPolicy(seed: number, rules: number): string {
  const r = rng(seed);
  const users = Array.from({ length: 20 }, (_, i) => `user${i}`);
  const roles = Array.from({ length: 8 }, (_, i) => `role:r${i}`);
  const segs = ['orders', 'users', 'admin', 'reports', 'public'];
  const paths = (s: string): string[] => [`/api/${s}`, `/api/${s}/:id`, `/api/${s}/*`, `/api/${s}/:id/items`, '/api/*'];
  const acts = ['^GET$', '^(GET|HEAD)$', '^(POST|PUT)$', '^DELETE$', '.*'];
  const lines: string[] = ['# generated'];
  for (let i = 0; i < rules; i++) {
    const sub = r.chance(0.6) ? r.pick(roles) : r.pick([...users, 'anonymous']);
    lines.push(`p, ${sub}, ${r.pick(paths(r.pick(segs)))}, ${r.pick(acts)}, ${r.chance(0.15) ? 'deny' : 'allow'}`);
  }
  for (const u of users) for (let k = r.int(3); k > 0; k--) lines.push(`g, ${u}, ${r.pick(roles)}`);
  // Acyclic role hierarchy: a role only inherits from a lower-numbered one.
  for (let i = 1; i < roles.length; i++) if (r.chance(0.5)) lines.push(`g, ${roles[i]}, ${roles[r.int(i)]}`);
  return lines.join('\n') + '\n';
}

function randomRequest(r: ReturnType<typeof rng>): AuthzRequest {
  const sub = r.pick([...Array.from({ length: 22 }, (_, i) => `user${i}`), 'role:r3', 'anonymous', 'role:r0']);
  const seg = r.pick(['orders', 'users', 'admin', 'reports', 'public', 'other']);
  const obj = r.pick([`/api/${seg}`, `/api/${seg}/${r.int(100)}`, `/api/${seg}/${r.int(9)}/items`, `/api/${seg}/a/b`, '/api', '/']);
  return { sub, peer: '', obj, act: r.pick(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH']), claims: {} };
}

test('1,000 random requests against a random 200-rule RBAC policy get the same allow/deny as casbin itself', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-diff-'));
  try {
    // Casbin itself costs ~1 ms per decision at this size: each extra seed adds ~6 s.
    for (const seed of [1]) {
      const modelPath = join(dir, 'model.conf');
      const policyPath = join(dir, `policy-${seed}.csv`);
      writeFileSync(modelPath, RBAC_MODEL);
      writeFileSync(policyPath, randomRbacPolicy(seed, 200));
      const ours = await loadAuthorizer({ modelPath, policyPath, decisionCacheEntries: 256 });
      const theirs = await newEnforcer(modelPath, policyPath);
      const r = rng(seed * 7919);
      let allowed = 0;
      let denyRule = 0;
      for (let i = 0; i < 1000; i++) {
        const q = randomRequest(r);
        const d = ours.decide(q);
        assert.equal(d.allowed, await theirs.enforce(q.sub, q.obj, q.act), `seed ${seed}: ${JSON.stringify(q)}`);
        const [, rule] = theirs.enforceExSync(q.sub, q.obj, q.act);
        // The matched line, as written, is the rule casbin explains the decision with.
        if (rule.length > 0) assert.ok(d.matchedRule?.endsWith(`: p, ${rule.join(', ')}`), `${d.matchedRule} vs ${rule.join(', ')}`);
        else assert.equal(d.reason, 'authz_no_matching_rule');
        if (d.allowed) allowed++;
        if (d.reason === 'authz_deny_rule') denyRule++;
      }
      // The corpus must exercise all three outcomes, or the comparison proves little.
      assert.ok(allowed > 50 && denyRule > 10 && allowed < 950, `seed ${seed}: ${allowed} allowed, ${denyRule} deny-rule`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The casbin package's own examples: every pair meshgate accepts must decide like casbin.
const examples = join(createRequire(import.meta.url).resolve('casbin').split('/lib/')[0]!, 'examples');
const EXTRA_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['basic_with_root_model.conf', 'basic_policy.csv'],
  ['basic_model.conf', 'basic_inverse_policy.csv'],
  ['rbac_model.conf', 'rbac_with_hierarchy_policy.csv'],
  ['rbac_with_domains_model.conf', 'rbac_with_hierarchy_with_domains_policy.csv'],
  ['rbac_with_domains_model.conf', 'rbac_with_domains_policy2.csv'],
  ['priority_model.conf', 'priority_indeterminate_policy.csv'],
  ['priority_model_explicit.conf', 'priority_policy_explicit.csv'],
  ['subject_priority_model_with_domain.conf', 'subject_priority_policy_with_domain.csv'],
  ['rbac_with_not_deny_model.conf', 'rbac_with_deny_policy.csv'],
];

test('every casbin example model and policy meshgate accepts decides like casbin; the others are PolicyErrors', async () => {
  const pairs: Array<readonly [string, string]> = readdirSync(examples)
    .filter((f) => f.endsWith('_model.conf') && existsSync(join(examples, f.replace('_model.conf', '_policy.csv'))))
    .map((f) => [f, f.replace('_model.conf', '_policy.csv')] as const);
  pairs.push(...EXTRA_PAIRS);
  const accepted: string[] = [];
  const refused: string[] = [];
  let allowedCount = 0;
  for (const [model, policy] of pairs) {
    const modelPath = join(examples, model);
    const policyPath = join(examples, policy);
    let ours: Authorizer;
    try {
      ours = await loadAuthorizer({ modelPath, policyPath, decisionCacheEntries: 0 });
    } catch (e) {
      assert.ok(e instanceof PolicyError, `${model}: ${String(e)}`);
      refused.push(`${model}+${policy}: ${e.reason.slice(0, 60)}`);
      continue;
    }
    accepted.push(`${model}+${policy}`);
    const theirs = await newEnforcer(modelPath, policyPath);
    const modelText = readFileSync(modelPath, 'utf8');
    const defOf = (key: string): string[] => new RegExp(`^\\s*${key}\\s*=\\s*(.+)$`, 'm').exec(modelText)![1]!.split(',').map((t) => t.trim());
    const tokens = defOf('r');
    const pTokens = defOf('p');
    const rows = readFileSync(policyPath, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.split(',').map((v) => v.trim()));
    const values = [...new Set(rows.flatMap((row) => row.slice(1)))];
    const pool = [...values, ...values.map((v) => `${v}/x`), 'anonymous', 'nobody', '/', '192.168.2.1'];
    const pRows = rows.filter((row) => row[0] === 'p');
    const r = rng(accepted.length);
    for (let i = 0; i < 200; i++) {
      // Half the requests start from a real rule (its columns fill the request tokens of the same name),
      // so the corpus exercises allows and role inheritance, not only misses.
      const row = r.chance(0.5) && pRows.length > 0 ? r.pick(pRows) : undefined;
      const field = (t: string): string => {
        const at = pTokens.indexOf(t);
        return row && at >= 0 && r.chance(0.8) ? row[at + 1] ?? r.pick(pool) : r.pick(pool);
      };
      const dom = tokens.includes('dom') ? field('dom') : '';
      const q: AuthzRequest = {
        sub: r.chance(0.3) ? r.pick(rows.filter((x) => x[0]?.startsWith('g')).map((x) => x[1]!).concat(pool)) : field('sub'),
        peer: dom && !dom.includes('/') ? `spiffe://${dom}/w` : '', obj: field('obj'), act: field('act'), claims: {},
      };
      const rvals = tokens.map((t) => (t === 'dom' ? trustDomainOf(q.peer) : (q as unknown as Record<string, unknown>)[t]));
      const d = ours.decide(q);
      let expected: boolean | 'error';
      try { expected = await theirs.enforce(...rvals); } catch { expected = 'error'; }
      if (expected === 'error') assert.equal(d.reason, 'authz_error', `${model}: ${JSON.stringify(q)}`);
      else assert.equal(d.allowed, expected, `${model}+${policy}: ${JSON.stringify(q)} → ${d.reason}`);
      if (d.allowed) allowedCount++;
    }
  }
  assert.ok(allowedCount > 500, `only ${allowedCount} allowed decisions: the random requests barely hit any rule`);
  assert.ok(accepted.length >= 20, `only ${accepted.length} examples accepted:\n${refused.join('\n')}`);
  // The fail-open effect and the unknown request token are refused on purpose.
  assert.ok(refused.some((s) => s.startsWith('rbac_with_not_deny_model.conf') && s.includes('unsupported policy effect')));
});
