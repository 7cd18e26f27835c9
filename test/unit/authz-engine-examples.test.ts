/**
 * The casbin package's own examples (models and policies written by Casbin's
 * authors) in the differential corpus (PRODUCT §1.4): every pair whose model
 * the compiled engine supports must decide exactly like casbin on requests
 * built from the policy's own values; every other pair must be named, with
 * its reason, in docs/authorization.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { PolicyError } from '../../src/authz/policy-error.ts';
import { adversarialPath } from './authz-engine-corpus.ts';
import { differential, rng, type Req } from './authz-engine-harness.ts';

const examples = join(createRequire(import.meta.url).resolve('casbin').split('/lib/')[0]!, 'examples');
const docs = readFileSync(fileURLToPath(new URL('../../docs/authorization.md', import.meta.url)), 'utf8');

/** Model + policy pairs: `x_model.conf` with `x_policy.csv`, plus the pairings Casbin's own tests use. */
function pairs(): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const dir of ['', 'issues']) {
    for (const f of readdirSync(join(examples, dir)).filter((n) => n.endsWith('_model.conf')).sort()) {
      const policy = join(dir, f.replace('_model.conf', '_policy.csv'));
      out.push([join(dir, f), existsSync(join(examples, policy)) ? policy : 'basic_policy.csv']);
    }
  }
  out.push(
    ['basic_model.conf', 'basic_inverse_policy.csv'],
    ['rbac_model.conf', 'rbac_with_hierarchy_policy.csv'],
    ['rbac_with_domains_model.conf', 'rbac_with_hierarchy_with_domains_policy.csv'],
    ['rbac_with_domains_model.conf', 'rbac_with_domains_policy2.csv'],
    ['priority_model.conf', 'priority_indeterminate_policy.csv'],
    ['priority_model_explicit.conf', 'priority_policy_explicit.csv'],
    ['priority_model_explicit.conf', 'priority_policy_explicit_update.csv'],
    ['subject_priority_model_with_domain.conf', 'subject_priority_policy_with_domain.csv'],
    ['rbac_with_deny_model.conf', 'rbac_with_deny_policy.csv'],
    ['multiple_policy_definitions_model.conf', 'mulitple_policy.csv'],
  );
  return out;
}

function requestsFor(model: string, lines: readonly string[], seed: number, count: number): Req[] {
  const r = rng(seed);
  const rTokens = /^\s*r\s*=\s*(.+)$/m.exec(model)![1]!.split(',').map((t) => t.trim());
  const pTokens = /^\s*p\s*=\s*(.+)$/m.exec(model)![1]!.split(',').map((t) => t.trim());
  const rows = lines.map((l) => l.split(',').map((c) => c.trim())).filter((row) => row[0] === 'p' || row[0]?.startsWith('g'));
  const pRows = rows.filter((row) => row[0] === 'p');
  const names = [...new Set(rows.filter((row) => row[0]!.startsWith('g')).flatMap((row) => row.slice(1)))];
  const values = [...new Set(rows.flatMap((row) => row.slice(1)))];
  const pool = [...values, ...values.map((v) => `${v}/x`), 'anonymous', 'nobody', '', '*', '/', '/data1/x/y'];
  const out: Req[] = [];
  for (let i = 0; i < count; i++) {
    // Half the requests start from a rule: its columns fill the request tokens of the same name.
    const row = r.chance(0.5) && pRows.length > 0 ? r.pick(pRows) : undefined;
    const field = (t: string): string => {
      const at = pTokens.indexOf(t);
      const v = row && at >= 0 && r.chance(0.85) ? row[at + 1] ?? r.pick(pool) : r.pick(pool);
      return v.includes('/') && v !== '/' && t !== 'obj' ? v.split('/')[0]! : v;
    };
    let obj = field('obj');
    if (r.chance(0.2)) obj = adversarialPath(obj, r);
    out.push({
      sub: r.chance(0.3) && names.length > 0 ? r.pick(names) : field('sub'),
      dom: rTokens.includes('dom') ? field('dom') : '',
      obj,
      act: field('act'),
    });
  }
  return out;
}

test('every casbin example the compiled engine supports decides exactly like casbin; every other one is documented', async () => {
  const compiled: string[] = [];
  const other: string[] = [];
  let allowed = 0;
  for (const [[model, policy], i] of pairs().map((p, i) => [p, i] as const)) {
    const modelPath = join(examples, model);
    const policyPath = join(examples, policy);
    let engine: string;
    try {
      const a = await loadAuthorizer({ modelPath, policyPath, decisionCacheEntries: 0 });
      engine = a.engine;
      if (a.engine === 'casbin') assert.ok(a.fallbackReason, `${model}: a fallback must say why`);
    } catch (e) {
      assert.ok(e instanceof PolicyError, `${model}: ${String(e)}`);
      engine = 'refused';
    }
    const name = model.replace('issues/', '');
    if (engine !== 'compiled') {
      other.push(name);
      assert.ok(docs.includes(`\`${name}\``), `docs/authorization.md must list ${name} (${engine}) and why`);
      continue;
    }
    compiled.push(`${model}+${policy}`);
    const modelText = readFileSync(modelPath, 'utf8');
    const lines = readFileSync(policyPath, 'utf8').split('\n');
    const tally = await differential(`${model} + ${policy}`, modelText, lines, requestsFor(modelText, lines, i + 1, 600));
    allowed += tally.allowed;
  }
  assert.ok(compiled.length >= 20, `only ${compiled.length} example pairs compiled; others: ${other.join(', ')}`);
  assert.ok(allowed > 1500, `only ${allowed} allowed decisions: the requests barely hit any rule`);
});
