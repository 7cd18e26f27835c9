/**
 * Benchmark load generator: N keep-alive connections (undici Pool), each
 * running requests back to back for a fixed duration after a warm-up.
 * Prints one JSON line: requests, errors, statuses, rps, latency p50/p90/p99 (ms).
 *
 *   node bench/load.ts URL --connections 50 --duration 10 --warmup 2
 *     [--ca F --cert F --key F] [--tokens FILE (one per line, used round-robin)]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '50' }, duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' },
    rate: { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, tokens: { type: 'string' },
  },
});
const url = new URL(positionals[0] ?? 'http://127.0.0.1:8080/');
const connections = Number(values.connections);
const tokens = values.tokens ? readFileSync(values.tokens, 'utf8').split('\n').filter(Boolean) : [];
const pool = new Pool(url.origin, {
  connections, pipelining: 1, keepAliveTimeout: 60_000,
  connect: url.protocol === 'https:' ? {
    ca: values.ca ? readFileSync(values.ca) : undefined, cert: values.cert ? readFileSync(values.cert) : undefined,
    key: values.key ? readFileSync(values.key) : undefined, servername: 'localhost',
  } : undefined,
});
const path = url.pathname + url.search;
const warmupMs = Number(values.warmup) * 1000;
const durationMs = Number(values.duration) * 1000;
const rate = values.rate ? Number(values.rate) : undefined;

const latencies: number[] = [];
const statuses: Record<string, number> = {};
let errors = 0;
let measuring = false;
let stop = false;
let next = 0;

async function one(): Promise<void> {
  const headers: Record<string, string> = {};
  if (tokens.length > 0) headers.authorization = `Bearer ${tokens[next++ % tokens.length]}`;
  const t0 = process.hrtime.bigint();
  try {
    const r = await pool.request({ path, method: 'GET', headers });
    await r.body.dump();
    if (measuring) {
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
    }
  } catch {
    if (measuring) errors++;
  }
}

async function worker(): Promise<void> {
  while (!stop) await one();
}

/** Open-loop mode for light-load latency: a fixed request rate, no queueing behind slow requests. */
async function paced(): Promise<void> {
  const interval = 1000 / (rate as number);
  const inflight = new Set<Promise<void>>();
  let t = performance.now();
  while (!stop) {
    const p = one().finally(() => inflight.delete(p));
    inflight.add(p);
    t += interval;
    const wait = t - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(inflight);
}

const runners = rate ? [paced()] : Array.from({ length: connections }, worker);
await new Promise((r) => setTimeout(r, warmupMs));
measuring = true;
process.stderr.write('measure:start\n');
const start = performance.now();
await new Promise((r) => setTimeout(r, durationMs));
measuring = false;
process.stderr.write('measure:end\n');
const elapsed = (performance.now() - start) / 1000;
stop = true;
await Promise.all(runners);
await pool.close();
latencies.sort((a, b) => a - b);
const q = (p: number): number => latencies.length ? (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number) : 0;
process.stdout.write(`${JSON.stringify({
  requests: latencies.length, errors, statuses, seconds: elapsed, rps: latencies.length / elapsed,
  p50: q(0.5), p90: q(0.9), p99: q(0.99),
})}\n`);
