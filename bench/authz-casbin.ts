/**
 * decide() cost of the Casbin-backed Authorizer, with and without the
 * decision cache, at 100 rules (and larger sizes, to show Casbin's linear
 * growth that the compiled engine must remove). Run:
 *   node bench/authz-casbin.ts [rules...]
 * Prints µs/op. Requests cycle through a fixed set of 200 distinct tuples,
 * so the cached run measures hits after the first pass.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAuthorizer } from '../src/authz/casbin-authorizer.ts';
import type { AuthzRequest } from '../src/core/types.ts';

const MODEL = `[request_definition]
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

function policy(rules: number): string {
  const lines: string[] = [];
  for (let i = 0; i < rules; i++) {
    lines.push(`p, role:r${i % 10}, /api/s${i}/:id, ^(GET|HEAD)$, ${i % 17 === 0 ? 'deny' : 'allow'}`);
  }
  for (let u = 0; u < 50; u++) lines.push(`g, user${u}, role:r${u % 10}`);
  return lines.join('\n') + '\n';
}

const requests: AuthzRequest[] = Array.from({ length: 200 }, (_, i) => ({
  sub: `user${i % 50}`, peer: '', obj: `/api/s${(i * 7) % 120}/${i}`, act: i % 3 === 0 ? 'POST' : 'GET', claims: {},
}));

function measure(decide: (r: AuthzRequest) => unknown, iterations: number): number {
  for (let i = 0; i < 1000; i++) decide(requests[i % requests.length]!);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) decide(requests[i % requests.length]!);
  return Number(process.hrtime.bigint() - start) / 1000 / iterations;
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const dir = mkdtempSync(join(tmpdir(), 'mg-bench-authz-'));
try {
  writeFileSync(join(dir, 'model.conf'), MODEL);
  console.log('rules  uncached µs/op  cached µs/op');
  for (const rules of sizes.length ? sizes : [100, 1000]) {
    writeFileSync(join(dir, 'policy.csv'), policy(rules));
    const opts = { modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv') };
    const plain = await loadAuthorizer({ ...opts, decisionCacheEntries: 0 });
    const cached = await loadAuthorizer({ ...opts, decisionCacheEntries: 10_000 });
    const iterations = Math.max(2000, Math.floor(2_000_000 / rules));
    const u = measure((r) => plain.decide(r), iterations);
    const c = measure((r) => cached.decide(r), 200_000);
    console.log(`${String(rules).padStart(5)}  ${u.toFixed(2).padStart(14)}  ${c.toFixed(3).padStart(12)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
