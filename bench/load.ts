/**
 * Benchmark load generator: N keep-alive connections (undici Pool), each
 * running requests back to back for a fixed duration after a warm-up
 * (closed loop), or a fixed request rate (`--rate`, open loop).
 * Prints one JSON line: requests, errors, statuses, rps, latency p50/p90/p99 (ms).
 *
 *   node bench/load.ts URL --connections 50 --duration 10 --warmup 2
 *     [--ca F --cert F --key F]
 *     [--tokens FILE]   one `TOKEN` or `PATH TOKEN` per line, used round-robin
 *     [--churn]         use each token once: when the file runs out the
 *                       measurement ends there (tokensExhausted: true)
 *     [--rate R]        open loop at R requests/s (--max-inflight caps the
 *                       requests waiting; beyond it a send is counted as shed)
 *     [--fail-log]      one stderr line per failed request: `fail: MS STATUS|CODE`
 *     [--progress S]    one stderr line every S seconds: `progress: {json}` with
 *                       the latency p50/p99/max of that window
 *
 * stderr carries `measure:start` / `measure:end` markers so the orchestrator
 * can read the server's CPU time over exactly the measured window.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '50' }, duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' },
    rate: { type: 'string' }, 'max-inflight': { type: 'string', default: '20000' }, ca: { type: 'string' }, cert: { type: 'string' },
    key: { type: 'string' }, tokens: { type: 'string' }, churn: { type: 'boolean', default: false },
    'fail-log': { type: 'boolean', default: false }, progress: { type: 'string' },
  },
});
const url = new URL(positionals[0] ?? 'http://127.0.0.1:8080/');
const connections = Number(values.connections);
const defaultPath = url.pathname + url.search;
const lines = values.tokens ? readFileSync(values.tokens, 'utf8').split('\n').filter(Boolean) : [];
const paths: string[] = [];
const tokens: string[] = [];
for (const l of lines) {
  const sp = l.indexOf(' ');
  paths.push(sp > 0 ? l.slice(0, sp) : defaultPath);
  tokens.push(sp > 0 ? l.slice(sp + 1) : l);
}
const pool = new Pool(url.origin, {
  connections, pipelining: 1, keepAliveTimeout: 60_000,
  connect: url.protocol === 'https:' ? {
    ca: values.ca ? readFileSync(values.ca) : undefined, cert: values.cert ? readFileSync(values.cert) : undefined,
    key: values.key ? readFileSync(values.key) : undefined, servername: 'localhost',
  } : undefined,
});
const warmupMs = Number(values.warmup) * 1000;
const durationMs = Number(values.duration) * 1000;
const rate = values.rate ? Number(values.rate) : undefined;
const maxInflight = Number(values['max-inflight']);
const t0 = performance.now();

const latencies: number[] = [];
const statuses: Record<string, number> = {};
const errorCodes: Record<string, number> = {};
let errors = 0;
let shed = 0;
let measuring = false;
let stop = false;
let next = 0;
let exhausted = false;
let endMeasure: () => void = () => {};
let inflight = 0;
const progressEvery = values.progress ? Number(values.progress) * 1000 : 0;
const windowLat: number[] = [];

function fail(what: string): void {
  if (values['fail-log']) process.stderr.write(`fail: ${Math.round(performance.now() - t0)} ${what}\n`);
}

async function one(): Promise<void> {
  const headers: Record<string, string> = {};
  let path = defaultPath;
  if (tokens.length > 0) {
    if (values.churn && next >= tokens.length) {
      // Reusing a token would let a cache answer: stop measuring instead.
      exhausted = true;
      endMeasure();
      stop = true;
      return;
    }
    const i = next++ % tokens.length;
    headers.authorization = `Bearer ${tokens[i]}`;
    path = paths[i] as string;
  }
  const t = process.hrtime.bigint();
  const counted = measuring;
  inflight++;
  try {
    const r = await pool.request({ path, method: 'GET', headers });
    await r.body.dump();
    if (r.statusCode < 200 || r.statusCode > 299) fail(String(r.statusCode));
    if (counted && measuring) {
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      latencies.push(ms);
      if (progressEvery) windowLat.push(ms);
      statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
    }
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'error';
    fail(code);
    if (counted) { errors++; errorCodes[code] = (errorCodes[code] ?? 0) + 1; }
  } finally {
    inflight--;
  }
}

async function worker(): Promise<void> {
  while (!stop) await one();
}

/** Open loop: a fixed request rate, no queueing behind slow requests. */
async function paced(): Promise<void> {
  const interval = 1000 / (rate as number);
  const pending = new Set<Promise<void>>();
  let t = performance.now();
  while (!stop) {
    if (inflight >= maxInflight) {
      if (measuring) shed++;
    } else {
      const p = one().finally(() => pending.delete(p));
      pending.add(p);
    }
    t += interval;
    const wait = t - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
}

let progressTimer: NodeJS.Timeout | undefined;
if (progressEvery) {
  progressTimer = setInterval(() => {
    // Latency of the requests completed since the previous line, so a stall shows where it happened.
    const w = windowLat.splice(0).sort((a, b) => a - b);
    const wq = (p: number): number => (w.length ? Math.round((w[Math.min(w.length - 1, Math.floor(p * w.length))] as number) * 100) / 100 : 0);
    process.stderr.write(`progress: ${JSON.stringify({ t: Math.round((performance.now() - t0) / 1000), ok: latencies.length, errors, shed, inflight, statuses, p50: wq(0.5), p99: wq(0.99), max: wq(1) })}\n`);
  }, progressEvery);
}

const runners = rate ? [paced()] : Array.from({ length: connections }, worker);
await new Promise((r) => setTimeout(r, warmupMs));
measuring = true;
process.stderr.write('measure:start\n');
const start = performance.now();
let end = 0;
await new Promise<void>((r) => {
  const timer = setTimeout(() => endMeasure(), durationMs);
  endMeasure = () => {
    if (!measuring) return;
    clearTimeout(timer);
    measuring = false;
    end = performance.now();
    process.stderr.write('measure:end\n');
    r();
  };
});
const elapsed = (end - start) / 1000;
stop = true;
if (progressTimer) clearInterval(progressTimer);
await Promise.all(runners);
await pool.close();
latencies.sort((a, b) => a - b);
const q = (p: number): number => latencies.length ? (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number) : 0;
process.stdout.write(`${JSON.stringify({
  requests: latencies.length, errors, errorCodes, shed, statuses, seconds: elapsed, rps: latencies.length / elapsed,
  p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1), tokensUsed: next, tokensExhausted: exhausted,
})}\n`);
