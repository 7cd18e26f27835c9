/**
 * Authorization engine benchmark (`npm run bench:authz`): per-decision time
 * of the compiled engine and of casbin at 100, 1k, 10k and 110k rules, the
 * load (read + validate + compile) time and the heap the loaded policy holds.
 * The decision cache is off: this measures the engines.
 *
 * Two policy shapes:
 * - `rbac`: casbin's own RBAC benchmark (BenchmarkRBACModelSmall/Medium/Large:
 *   `p, group{i}, data{i/10}, read` and `g, user{i}, group{i/10}`, one p rule
 *   per ten g rules — 110k rules = 10k p + 100k g), examples/rbac_model.conf.
 * - `paths`: meshgate's demo model (keyMatch2 paths, regexMatch methods, allow
 *   and deny), ten p rules per g rule, rules spread over 100 roles.
 *
 *   node bench/authz.ts [--sizes 100,1000] [--shapes rbac,paths]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadAuthorizer } from '../src/authz/casbin-authorizer.ts';
import type { Authorizer, AuthzEngine } from '../src/authz/authorizer.ts';
import type { AuthzRequest } from '../src/core/types.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Shape {
  readonly model: string;
  policy(rules: number): string;
  requests(rules: number): AuthzRequest[];
}

const req = (sub: string, obj: string, act: string): AuthzRequest => ({ sub, peer: '', obj, act, claims: {} });

const SHAPES: Record<string, Shape> = {
  rbac: {
    model: `[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n[role_definition]\ng = _, _\n` +
      `[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n`,
    policy(rules) {
      const groups = Math.max(1, Math.round(rules / 11));
      const lines: string[] = [];
      for (let i = 0; i < groups; i++) lines.push(`p, group${i}, data${Math.floor(i / 10)}, read`);
      for (let i = 0; i < rules - groups; i++) lines.push(`g, user${i}, group${Math.floor(i / 10)}`);
      return lines.join('\n') + '\n';
    },
    requests(rules) {
      const users = rules - Math.max(1, Math.round(rules / 11));
      const data = Math.max(1, Math.floor(rules / 110));
      // Casbin's benchmark asks one allowed question; we mix allowed, denied and unknown subjects.
      return Array.from({ length: 256 }, (_, i) => {
        const u = (i * 7919) % users;
        const own = Math.floor(Math.floor(u / 10) / 10);
        return req(i % 16 === 0 ? `stranger${i}` : `user${u}`, `data${i % 3 === 0 ? (own + 1) % data : own}`, i % 5 === 0 ? 'write' : 'read');
      });
    },
  },
  paths: {
    model: `[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act, eft\n[role_definition]\ng = _, _\n` +
      `[policy_effect]\ne = some(where (p.eft == allow)) && !some(where (p.eft == deny))\n` +
      `[matchers]\nm = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)\n`,
    policy(rules) {
      const users = Math.max(1, Math.round(rules / 11));
      const roles = Math.min(100, users);
      const lines: string[] = [];
      for (let i = 0; i < rules - users; i++) {
        const path = i % 3 === 0 ? `/api/s${i}/:id` : i % 3 === 1 ? `/api/s${i}/*` : `/api/s${i}/items`;
        lines.push(`p, role:r${i % roles}, ${path}, ${i % 4 === 0 ? '^(GET|HEAD)$' : '^GET$'}, ${i % 17 === 0 ? 'deny' : 'allow'}`);
      }
      for (let u = 0; u < users; u++) lines.push(`g, user${u}, role:r${u % roles}`);
      return lines.join('\n') + '\n';
    },
    requests(rules) {
      const users = Math.max(1, Math.round(rules / 11));
      const roles = Math.min(100, users);
      const ps = rules - users;
      // Mostly a user holding the role of the rule for the path; every 8th a user without it.
      return Array.from({ length: 256 }, (_, i) => {
        const s = (i * 7919) % ps;
        const user = (s % roles) + (i % 8 === 0 ? 1 : 0);
        return req(`user${user % users}`, `/api/s${s}/${i % 2 ? 'items' : String(i)}`, i % 3 === 0 ? 'POST' : 'GET');
      });
    },
  },
};

/** Median of five timed rounds (after a warm-up), so one GC pause does not set the figure. */
function perDecision(a: Authorizer, requests: readonly AuthzRequest[], roundMs: number): { us: number; allowed: number } {
  let allowed = 0;
  for (const r of requests) if (a.decide(r).allowed) allowed++;
  const round = (): number => {
    let n = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(roundMs) * 1_000_000n;
    do {
      for (let i = 0; i < 64; i++) a.decide(requests[(n + i) % requests.length]!);
      n += 64;
    } while (process.hrtime.bigint() < deadline);
    return Number(process.hrtime.bigint() - start) / 1000 / n;
  };
  round();
  const rounds = Array.from({ length: 5 }, round).sort((x, y) => x - y);
  return { us: rounds[2]!, allowed };
}

/** One slow casbin decision at a time until the budget is spent (at least 3). */
function perDecisionSlow(a: Authorizer, requests: readonly AuthzRequest[], budgetMs: number): number {
  a.decide(requests[0]!);
  let n = 0;
  const start = performance.now();
  while (n < 3 || performance.now() - start < budgetMs) a.decide(requests[n++ % requests.length]!);
  return ((performance.now() - start) * 1000) / n;
}

async function load(dir: string, engine: AuthzEngine): Promise<{ a: Authorizer; ms: number; heapMb: number }> {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const t = performance.now();
  const a = await loadAuthorizer({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 0, engine });
  const ms = performance.now() - t;
  gc();
  gc();
  const heapMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
  if (a.engine !== engine) throw new Error(`expected engine ${engine}, got ${a.engine} (${a.fallbackReason})`);
  return { a, ms, heapMb };
}

const { values } = parseArgs({ options: { sizes: { type: 'string' }, shapes: { type: 'string' } } });
const sizes = (values.sizes ?? '100,1000,10000,110000').split(',').map(Number);
const shapes = (values.shapes ?? 'rbac,paths').split(',');
const dir = mkdtempSync(join(tmpdir(), 'mg-bench-authz-'));
const rows: string[][] = [['shape', 'rules', 'compiled µs/dec', 'casbin µs/dec', 'speed-up', 'compiled load ms', 'heap MB', 'casbin load ms', 'allowed']];
try {
  for (const shapeName of shapes) {
    const shape = SHAPES[shapeName];
    if (!shape) throw new Error(`unknown shape ${shapeName}`);
    // Warm the JIT on a mid-size policy first, so the first row is not measured on cold code.
    writeFileSync(join(dir, 'model.conf'), shape.model);
    writeFileSync(join(dir, 'policy.csv'), shape.policy(2000));
    perDecision((await load(dir, 'compiled')).a, shape.requests(2000), 200);
    let base: number | undefined;
    for (const rules of sizes) {
      writeFileSync(join(dir, 'model.conf'), shape.model);
      writeFileSync(join(dir, 'policy.csv'), shape.policy(rules));
      const requests = shape.requests(rules);
      const compiled = await load(dir, 'compiled');
      const c = perDecision(compiled.a, requests, 300);
      base ??= c.us;
      const casbin = await load(dir, 'casbin');
      const k = perDecisionSlow(casbin.a, requests, rules >= 10_000 ? 3000 : 1500);
      // Same answers, or the numbers compare different work.
      for (const r of requests) {
        if (compiled.a.decide(r).matchedRule !== casbin.a.decide(r).matchedRule) throw new Error(`engines disagree on ${JSON.stringify(r)}`);
      }
      rows.push([shapeName, String(rules), c.us.toFixed(2), k >= 1000 ? k.toFixed(0) : k.toFixed(1), `${Math.round(k / c.us)}×`,
        compiled.ms.toFixed(0), Math.max(0, compiled.heapMb).toFixed(1), casbin.ms.toFixed(0), `${c.allowed}/${requests.length}`]);
      console.error(`${shapeName} ${rules}: done (compiled ${c.us.toFixed(2)} µs, ${(c.us / base).toFixed(2)}× the first size)`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]): string => `| ${r.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(line(rows[0]!));
console.log(`|${widths.map((w, i) => (i < 1 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));
console.log(`\nnode ${process.version}, ${process.platform}/${process.arch}; decision cache off; heap = heapUsed growth after load (after GC).`);
