/**
 * The `npm run bench` result table and the issue-6 goal checks, from the
 * per-scenario results.
 */

/** One measured row of the side-by-side table. */
export interface ScenarioResult {
  readonly name: string;
  readonly label: string;
  /** direct | bare | haproxy | meshgate */
  readonly target: string;
  readonly tokens?: 'reuse' | 'churn';
  readonly policyRules?: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuUsPerReq?: number;
  /** % of the server's core used by other processes during the window (shared machine). */
  readonly otherCpuPct?: number;
  /** The same for the load generator's core (load generator and upstream excluded). */
  readonly otherLoadCpuPct?: number;
  readonly rssMb?: number;
  readonly seconds: number;
  readonly errors: number;
  /** Responses that were not 200 (all requests are allowed ones). */
  readonly non200: number;
  readonly tokensExhausted: boolean;
  ratioToDirect?: number;
  ratioToHaproxy?: number;
}

/** A goal of issue 6 and whether this run met it. */
export interface GoalCheck {
  readonly goal: string;
  readonly value: string;
  readonly met: boolean;
}

/** Fills ratioToDirect / ratioToHaproxy (HAProxy with the same token mode). */
export function addRatios(rows: ScenarioResult[]): void {
  const direct = rows.find((r) => r.target === 'direct');
  for (const r of rows) {
    if (direct && r !== direct) r.ratioToDirect = r.rps / direct.rps;
    const hp = rows.find((h) => h.target === 'haproxy' && h.tokens === r.tokens);
    if (hp && r.target !== 'haproxy' && r.tokens) r.ratioToHaproxy = r.rps / hp.rps;
  }
}

/** The issue's goals that this run's rows can answer. */
export function goalChecks(rows: readonly ScenarioResult[], light?: { addedP50Ms: number }): GoalCheck[] {
  const out: GoalCheck[] = [];
  const f = (n: number, d = 0): string => n.toFixed(d);
  for (const r of rows) {
    if (r.target !== 'meshgate') continue;
    if (r.tokens === 'reuse') {
      out.push({ goal: `${r.name}: >= 18,000 requests/s`, value: f(r.rps), met: r.rps >= 18_000 });
      if (r.ratioToHaproxy !== undefined) out.push({ goal: `${r.name}: >= 1.9x HAProxy`, value: `${f(r.ratioToHaproxy, 2)}x`, met: r.ratioToHaproxy >= 1.9 });
      out.push({ goal: `${r.name}: p99 <= 5 ms`, value: `${f(r.p99, 2)} ms`, met: r.p99 <= 5 });
    } else if (r.tokens === 'churn' && r.ratioToHaproxy !== undefined) {
      out.push({ goal: `${r.name}: >= HAProxy requests/s`, value: `${f(r.ratioToHaproxy, 2)}x`, met: r.ratioToHaproxy >= 1 });
    }
  }
  if (light) out.push({ goal: 'light load 200 req/s: added p50 over direct <= 0.3 ms', value: `${f(light.addedP50Ms, 3)} ms`, met: light.addedP50Ms <= 0.3 });
  return out;
}

/**
 * The human-readable table. `other% srv/load` is how much of the server's
 * core and of the load core other processes used during the window: above a
 * few percent the row understates the server (or, for the load core, the
 * harness; `direct` depends on the load core only).
 */
export function formatTable(rows: readonly ScenarioResult[]): string {
  const f = (n: number | undefined, d = 0): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
  const width = Math.max(...rows.map((r) => r.label.length), 8);
  const head = `${'scenario'.padEnd(width)}  requests/s   p50 ms   p99 ms  CPU µs/req  RSS MB  ×direct  ×HAProxy  other% srv/load`;
  const lines = rows.map((r) => {
    const flags = [r.errors + r.non200 > 0 ? `FAILED: ${r.errors} errors, ${r.non200} non-200` : '', r.tokensExhausted ? `tokens ran out after ${f(r.seconds, 1)} s` : ''].filter(Boolean).join('; ');
    return `${r.label.padEnd(width)}  ${f(r.rps).padStart(10)}  ${f(r.p50, 2).padStart(7)}  ${f(r.p99, 2).padStart(7)}  ${f(r.cpuUsPerReq, 1).padStart(10)}  ${f(r.rssMb).padStart(6)}  ${f(r.ratioToDirect, 3).padStart(7)}  ${f(r.ratioToHaproxy, 2).padStart(8)}  ${`${f(r.otherCpuPct)}/${f(r.otherLoadCpuPct)}`.padStart(16)}${flags ? `  ${flags}` : ''}`;
  });
  return [head, ...lines].join('\n');
}
