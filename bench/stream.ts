/**
 * Scale-out benchmark (issue 7): one gateway's audit log → shipper →
 * JetStream (a real nats-server, file storage) → one analyzer replica
 * running the shipped detection rules on 16 partitions.
 *
 *   npm run bench:stream [-- events=200000] [partitions=16] [prof=DIR]
 *
 * Every phase also prints the CPU time per event of each process (the
 * bench process = audit writer + shipper, the analyzer child, nats-server),
 * read from /proc: on a shared machine rates are noisy, CPU per event much
 * less so, and their sum bounds the end-to-end rate (cores / sum).
 * `prof=DIR` makes the analyzer child write a V8 CPU profile there; run the
 * bench itself with `node --cpu-prof bench/stream.ts` for the shipper side.
 *
 * 1. Throughput from a backlog of N events (e.g. after an outage): the
 *    shipper alone, one analyzer replica alone, and both at once (log →
 *    JetStream → analyzer).
 * 2. Lag at 10,000 events/s: a gateway writing 10,000 events/s for 10 s;
 *    lag = analyzer processing time − the event's `time`, which includes
 *    the audit writer's batching, the shipper, JetStream and the analyzer.
 *
 * Goals: ≥ 50,000 events/s; lag p99 < 1 s at 10,000 events/s. The analyzer
 * runs in a child process (as in production: its own process), so the
 * numbers include real process boundaries. Needs nats-server.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { jetstreamManager } from '@nats-io/jetstream';
import { newEventId, type AuditEvent } from '../src/audit/event.ts';
import { AuditWriter } from '../src/audit/writer.ts';
import { configSchema, type NatsSinkConfig } from '../src/config/schema.ts';
import { auditStreamSpec, ensureAuditStream } from '../src/stream/audit-stream.ts';
import { connectNats } from '../src/stream/connect-nats.ts';
import { Shipper } from '../src/stream/shipper.ts';
import { startNatsServer } from '../test/helpers/nats.ts';
import { cpuSeconds, processTree } from './harness/proc.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
const N = Number(arg('events') ?? 200_000);
// prof=DIR: the analyzer child writes a V8 CPU profile there (run the bench itself with --cpu-prof for the shipper side).
const PROF = arg('prof');
const PARTITIONS = Number(arg('partitions') ?? 16);
const RATE = 10_000;
const LAG_SECONDS = 10;

function event(i: number, tag: string, timeMs = Date.now()): AuditEvent {
  const who = i % 1000;
  const deny = i % 10 === 0;
  return {
    v: 1, type: 'request', id: newEventId(timeMs), time: new Date(timeMs).toISOString(), requestId: `${tag}-${i}`,
    source: { ip: `10.1.${who % 250}.${who % 7}`, port: 40000 + (i % 1000) },
    peer: who % 2 === 0 ? { spiffeId: `spiffe://mesh.local/ns/default/sa/svc-${who}`, fingerprint: 'ab'.repeat(32) } : null,
    principal: { iss: 'https://issuer.mesh.local', sub: `user-${who}` },
    jti: `jti-${i}`, tokenHash: 'Zm9v'.repeat(11), method: 'GET', path: `/orders/${i % 500}`, rawPath: null,
    route: 'orders', decision: deny ? 'deny' : 'allow', reason: deny ? 'authz_no_matching_rule' : 'allowed',
    rule: 'policy.csv:3: p, role:reader, /orders/*, GET, allow', policyVersion: 'c0ffee', status: deny ? 403 : 200,
    bytesIn: 0, bytesOut: 512, latencyMs: 1.25, shadow: null,
  };
}

const ANALYZER = `
const { runNatsAnalyzer } = await import(${JSON.stringify(new URL('../src/stream/nats-analyzer.ts', import.meta.url).href)});
const { loadRules } = await import(${JSON.stringify(new URL('../src/analyzer/rules/load.ts', import.meta.url).href)});
const { createEngine } = await import(${JSON.stringify(new URL('../src/analyzer/engine/engine.ts', import.meta.url).href)});
const { SHIPPED_DETECTIONS } = await import(${JSON.stringify(new URL('../src/config/load.ts', import.meta.url).href)});
const rules = await loadRules(SHIPPED_DETECTIONS);
// Lag histogram in 1 ms buckets (percentiles without sorting on every report).
const hist = new Uint32Array(120_000);
let lagCount = 0;
let processed = 0;
const factory = () => {
  const e = createEngine(rules);
  const p = e.process.bind(e);
  e.process = (r) => {
    processed++;
    if (r.requestId.startsWith('lag-')) { hist[Math.min(hist.length - 1, Math.max(0, Date.now() - Date.parse(r.time)))]++; lagCount++; }
    return p(r);
  };
  return e;
};
// Start consuming on the parent's word, so that process start-up is not measured.
await new Promise((r) => process.stdin.once('data', r));
const a = await runNatsAnalyzer({ nats: JSON.parse(process.env.MG_CFG), replicaId: 'bench', engineFactory: factory, decisions: false });
const pct = (q) => { if (lagCount === 0) return null; const want = Math.ceil(q * lagCount); let n = 0; for (let i = 0; i < hist.length; i++) { n += hist[i]; if (n >= want) return i; } return hist.length; };
setInterval(() => process.stdout.write(JSON.stringify({ processed, lagCount, p50: pct(0.5), p99: pct(0.99), max: pct(1), owned: a.owned().length }) + '\\n'), 100);
process.on('SIGTERM', async () => { await a.stop(); process.exit(0); });
`;

const nats = await startNatsServer();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-bench-stream-'));
const cfg = configSchema.shape.audit.parse({
  dir: root, sink: { nats: { servers: [nats.url], service: 'orders', partitions: PARTITIONS, maxAckPending: 4096, analyzer: { batch: 1000 } } },
}).sink?.nats as NatsSinkConfig;
let child: ReturnType<typeof spawn> | undefined;
// CPU seconds of each side, read from /proc (the machine is shared: rates are noisy, CPU per event much less so).
const natsPid = processTree(process.pid).find((p) => { try { return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'nats-server'; } catch { return false; } });
type Cpu = { gateway: number; analyzer: number; nats: number };
const cpuNow = (): Cpu => {
  const u = process.cpuUsage();
  return { gateway: (u.user + u.system) / 1e6, analyzer: child?.pid ? cpuSeconds(child.pid) : 0, nats: natsPid ? cpuSeconds(natsPid) : 0 };
};
const perEvent = (a: Cpu, b: Cpu, n: number): string =>
  `CPU µs/event: gateway ${(((b.gateway - a.gateway) * 1e6) / n).toFixed(1)}, analyzer ${(((b.analyzer - a.analyzer) * 1e6) / n).toFixed(1)}, nats-server ${(((b.nats - a.nats) * 1e6) / n).toFixed(1)}`;
try {
  const setupConn = await connectNats(cfg, { name: 'bench-setup' });
  await ensureAuditStream(await jetstreamManager(setupConn), auditStreamSpec(cfg));
  await setupConn.close();

  let latest = { processed: 0, lagCount: 0, p50: null as number | null, p99: null as number | null, max: null as number | null, owned: 0 };
  const until = async (cond: () => boolean, what: string, ms = 300_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const gateway = async (name: string, count: number) => {
    const dir = path.join(root, name);
    const w = new AuditWriter({ dir, segmentBytes: 64 * 1024 * 1024, fsyncInterval: 1000, checkpointInterval: 10_000, queueLimit: 200_000 });
    await w.open();
    for (let i = 0; i < count; i++) {
      w.append(event(i, 'tp'));
      if (i % 20_000 === 0) await w.flush();
    }
    await w.close();
    return new Shipper({
      connect: () => connectNats(cfg, { name, reconnect: false }),
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: cfg.ackTimeout,
    });
  };

  // 1a. Shipper alone: a backlog of N events in the log, no consumer running.
  const shipperA = await gateway('gw-a', N);
  let c0 = cpuNow();
  let t0 = performance.now();
  shipperA.start();
  await shipperA.waitFor(N, 300_000);
  const shipSecs = (performance.now() - t0) / 1000;
  const shipCpu = perEvent(c0, cpuNow(), N);
  await shipperA.stop();

  // 1b. Analyzer alone: one replica drains those N events from the stream.
  child = spawn(process.execPath, [...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`] : []), '--input-type=module', '-e', ANALYZER], { env: { ...process.env, MG_CFG: JSON.stringify(cfg) }, stdio: ['pipe', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => { try { latest = JSON.parse(l); } catch { /* ignore */ } });
  await new Promise((r) => setTimeout(r, 1500)); // module loading and rules compilation
  c0 = cpuNow();
  t0 = performance.now();
  child.stdin?.write('go\n');
  await until(() => latest.processed >= N, 'the analyzer to drain the stream');
  const analyzeSecs = (performance.now() - t0) / 1000;
  const analyzeCpu = perEvent(c0, cpuNow(), N);

  // 1c. Both at once: another gateway's backlog of N events, log → JetStream → analyzer.
  const shipperB = await gateway('gw-b', N);
  const base = latest.processed;
  c0 = cpuNow();
  t0 = performance.now();
  shipperB.start();
  await until(() => latest.processed - base >= N, 'the analyzer to process the second backlog');
  const e2eSecs = (performance.now() - t0) / 1000;
  const e2eCpu = perEvent(c0, cpuNow(), N);
  await shipperB.stop();

  // 2. Lag at 10,000 events/s.
  const dirC = path.join(root, 'gw-c');
  const wb = new AuditWriter({ dir: dirC, segmentBytes: 64 * 1024 * 1024, fsyncInterval: 1000, checkpointInterval: 10_000, queueLimit: 200_000 });
  await wb.open();
  const shipperC = new Shipper({
    connect: () => connectNats(cfg, { name: 'bench-c', reconnect: false }),
    dir: dirC, cursorFile: path.join(dirC, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
    partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: cfg.ackTimeout, logHead: () => wb.stats().lastSeq,
  });
  shipperC.start();
  const total = RATE * LAG_SECONDS;
  c0 = cpuNow();
  const start = Date.now();
  let sent = 0;
  let shipperLagMax = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - start) * RATE) / 1000));
    for (; sent < due; sent++) wb.append(event(sent, 'lag'));
    shipperLagMax = Math.max(shipperLagMax, shipperC.stats().lagSeconds);
    await new Promise((r) => setTimeout(r, 2));
  }
  const writeSecs = (Date.now() - start) / 1000;
  await until(() => latest.lagCount >= total, 'the analyzer to process the paced events', 60_000);
  const lagCpu = perEvent(c0, cpuNow(), total);
  await shipperC.stop();
  await wb.close();

  const r = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`nats-server ${nats.url}, ${os.cpus().length} CPUs, Node ${process.version}, ${PARTITIONS} partitions, shipped detection rules`);
  console.log(`shipper alone (log → JetStream, ${r(N)} events): ${r(N / shipSecs)} events/s (${shipCpu})`);
  console.log(`analyzer alone (JetStream → one replica, rules applied): ${r(N / analyzeSecs)} events/s (${analyzeCpu})`);
  console.log(`end to end (log → JetStream → analyzer, both running): ${r(N / e2eSecs)} events/s (${e2eCpu})`);
  console.log(`lag at ${r(total / writeSecs)} events/s for ${LAG_SECONDS} s (event time → analyzer): p50 ${latest.p50} ms, p99 ${latest.p99} ms, max ${latest.max} ms; shipper lag max ${shipperLagMax.toFixed(2)} s (${lagCpu}, writer included)`);
  console.log(`load average during the run: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (other processes share these CPUs)`);
  console.log(`goals: ≥ 50,000 events/s ${N / e2eSecs >= 50_000 ? 'MET' : 'NOT MET'}; p99 < 1 s ${latest.p99 !== null && latest.p99 < 1000 ? 'MET' : 'NOT MET'}`);
} finally {
  if (child && child.exitCode === null) {
    // A graceful stop checkpoints and (with prof=) writes the profile: give it a moment while NATS is still up.
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
  await nats.close();
  fs.rmSync(root, { recursive: true, force: true });
}
