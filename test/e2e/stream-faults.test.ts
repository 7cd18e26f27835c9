/**
 * Fault tests of the scale-out path (issue 7), against a real nats-server
 * the file starts itself: kill and restart NATS under load, kill an analyzer
 * replica mid-stream, kill and restart a gateway (the shipper process).
 *
 * After each: every audit event id in the gateway's log is in the stream
 * exactly once, and the alert emissions stored in the alerts stream are
 * exactly those of an uninterrupted run over the same log (one engine per
 * partition, in log order), each stored once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { AuditRecord } from '../../src/audit/event.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { configSchema, type NatsSinkConfig } from '../../src/config/schema.ts';
import { auditStreamSpec, ensureAuditStream } from '../../src/stream/audit-stream.ts';
import { runNatsAnalyzer } from '../../src/stream/nats-analyzer.ts';
import { Shipper } from '../../src/stream/shipper.ts';
import { partitionOf } from '../../src/stream/subjects.ts';
import { CountingEngine, eventually, expectedEmissions, natsSkip, readStream, testEvent, type NatsServer, shipperConnection, useNatsSuite } from '../helpers/nats.ts';

const T0 = Date.UTC(2026, 0, 1);
/** The trace: five identities, three in four requests denied, 37 ms apart in event time. */
const traceEvent = (i: number) => testEvent(i, { timeMs: T0 + i * 37, who: i % 5, deny: i % 4 !== 0 });
const url = (rel: string): string => new URL(rel, import.meta.url).href;
const NODE = process.execPath;

/** Runs `code` (an ES module body) in a child node process with `env`; its stdout JSON lines go to `onLine`. */
function child(code: string, env: Record<string, string>, onLine: (msg: Record<string, unknown>) => void): ChildProcess & { exited: Promise<unknown> } {
  const p = spawn(NODE, ['--input-type=module', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  // Listen for the exit at once: a child may finish before the test awaits it.
  const exited = once(p, 'exit');
  createInterface({ input: p.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    try { onLine(JSON.parse(l) as Record<string, unknown>); } catch { /* not ours */ }
  });
  return Object.assign(p, { exited });
}

const ANALYZER_CHILD = `
const { runNatsAnalyzer } = await import(${JSON.stringify(url('../../src/stream/nats-analyzer.ts'))});
const { CountingEngine } = await import(${JSON.stringify(url('../helpers/nats.ts'))});
const slow = () => { const e = new CountingEngine(); const p = e.process.bind(e); e.process = (r) => { const t = performance.now() + 0.3; while (performance.now() < t) {} return p(r); }; return e; };
const a = await runNatsAnalyzer({ nats: JSON.parse(process.env.MG_CFG), replicaId: process.env.MG_REPLICA, engineFactory: slow });
setInterval(() => process.stdout.write(JSON.stringify({ owned: a.owned(), processed: a.stats().processed }) + '\\n'), 50);
`;

const GATEWAY_CHILD = `
const { AuditWriter } = await import(${JSON.stringify(url('../../src/audit/writer.ts'))});
const { Shipper } = await import(${JSON.stringify(url('../../src/stream/shipper.ts'))});
const { connectNats } = await import(${JSON.stringify(url('../../src/stream/connect-nats.ts'))});
const { testEvent } = await import(${JSON.stringify(url('../helpers/nats.ts'))});
const cfg = JSON.parse(process.env.MG_CFG);
const dir = process.env.MG_DIR;
const writer = new AuditWriter({ dir, segmentBytes: 128 * 1024, fsyncInterval: 100, checkpointInterval: 500, queueLimit: 100000 });
await writer.open();
const shipper = new Shipper({ connect: () => connectNats(cfg, { name: 'gw', reconnect: false }), dir, cursorFile: dir + '/nats-cursor.json', stream: cfg.stream, subjectPrefix: cfg.subjectPrefix,
  service: cfg.service, partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: cfg.ackTimeout, logHead: () => writer.stats().lastSeq });
shipper.start();
let i = Number(process.env.MG_FROM);
const end = Number(process.env.MG_TO);
const T0 = ${T0};
const timer = setInterval(async () => {
  for (let k = 0; k < 40 && i < end; k++, i++) writer.append(testEvent(i, { timeMs: T0 + i * 37, who: i % 5, deny: i % 4 !== 0 }));
  process.stdout.write(JSON.stringify({ i, cursor: shipper.stats().cursorSeq }) + '\\n');
  if (i >= end) {
    clearInterval(timer);
    await writer.flush();
    await shipper.waitFor(writer.stats().lastSeq);
    await shipper.stop();
    await writer.close();
    process.stdout.write(JSON.stringify({ done: true }) + '\\n');
    process.exit(0);
  }
}, 10);
`;

describe('scale-out under faults', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let n = 0;
  useNatsSuite('meshgate-faults-', (f) => ({ nats, nc, root } = f));
  const fresh = () => shipperConnection(nats);

  function config(): NatsSinkConfig {
    n++;
    const audit = configSchema.shape.audit.parse({
      dir: '/unused',
      sink: { nats: {
        servers: [nats.url], service: 'orders', stream: `F_${n}`, subjectPrefix: `f${n}.audit`, partitions: 4, ackTimeout: '1s', duplicateWindow: '30s', maxAckPending: 256,
        decisionsBucket: `fdec_${n}`,
        analyzer: { durablePrefix: `fan${n}`, stateBucket: `fstate_${n}`, leaseBucket: `flease_${n}`, leaseTtl: '2s', checkpointInterval: '200ms', batch: 64, alertsStream: `FALERTS_${n}`, alertsSubjectPrefix: `f${n}.alerts` },
      } },
    });
    return audit.sink?.nats as NatsSinkConfig;
  }

  async function logRecords(dir: string): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for await (const r of readAuditEvents(dir)) out.push(r);
    return out;
  }

  /** Every event id of the log is stored exactly once, and the alert emissions equal an uninterrupted run's. */
  async function assertExactlyOnce(cfg: NatsSinkConfig, records: readonly AuditRecord[]): Promise<void> {
    const stored = await readStream(nc, cfg.stream);
    const ids = stored.map((m) => JSON.parse(m.text).id as string);
    assert.equal(new Set(ids).size, ids.length, 'no event id stored twice');
    assert.deepEqual([...ids].sort(), records.map((r) => r.id).sort(), 'the stream holds exactly the log\'s events');
    const expected = expectedEmissions(records, cfg.partitions, partitionOf);
    assert.ok(expected.length > 50, 'the trace raises alerts');
    await eventually(async () => (await readStream(nc, cfg.analyzer.alertsStream)).length >= expected.length, 'every alert', 20_000);
    const got = (await readStream(nc, cfg.analyzer.alertsStream)).map((m) => { const a = JSON.parse(m.text); return `${a.id}:${a.count}`; });
    assert.equal(new Set(got).size, got.length, 'no alert emission stored twice');
    assert.deepEqual([...got].sort(), [...expected].sort(), 'alerts equal those of an uninterrupted run');
  }

  test('NATS killed and restarted under load: the log spools, then every event is stored once and the alerts are unchanged', async () => {
    const cfg = config();
    const dir = path.join(root, `gw-${n}`);
    const writer = new AuditWriter({ dir, segmentBytes: 256 * 1024, fsyncInterval: 100, checkpointInterval: 500, queueLimit: 100_000 });
    await writer.open();
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const shipper = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: cfg.ackTimeout, logHead: () => writer.stats().lastSeq,
    });
    shipper.start();
    const ra = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const analyzer = await runNatsAnalyzer({ nats: cfg, connection: ra, replicaId: 'steady', engineFactory: () => new CountingEngine() });
    let i = 0;
    const load = async (until: number) => {
      for (; i < until; i++) {
        writer.append(traceEvent(i));
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
      }
    };
    await load(1500);
    await eventually(() => shipper.stats().inFlight > 0 || shipper.stats().cursorSeq > 500, 'shipping under way');
    await nats.stop(); // SIGKILL, mid-stream
    await load(3000); // requests keep flowing: the log is the spool
    await writer.flush();
    assert.ok(shipper.stats().backlog > 0, 'events wait in the log while NATS is down');
    await nats.restart();
    await load(4500);
    await writer.flush();
    await shipper.waitFor(writer.stats().lastSeq, 30_000);
    const records = await logRecords(dir);
    assert.equal(records.length, 4500);
    await assertExactlyOnce(cfg, records);
    await shipper.stop();
    await analyzer.stop();
    await writer.close();
    await ra.close();
  });

  test('an analyzer replica killed mid-stream: its partitions are taken over from their checkpoints, nothing lost, no alert twice', async () => {
    const cfg = config();
    const dir = path.join(root, `gw-${n}`);
    const writer = new AuditWriter({ dir, segmentBytes: 1 << 20, fsyncInterval: 100, checkpointInterval: 500, queueLimit: 100_000 });
    await writer.open();
    for (let i = 0; i < 4000; i++) writer.append(traceEvent(i));
    await writer.close();
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const shipper = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: cfg.ackTimeout,
    });
    shipper.start();
    await shipper.waitFor(4000);
    await shipper.stop();
    let state = { owned: [] as number[], processed: 0 };
    const victim = child(ANALYZER_CHILD, { MG_CFG: JSON.stringify(cfg), MG_REPLICA: 'victim' }, (m) => { if (Array.isArray(m['owned'])) state = m as typeof state; });
    await eventually(() => state.owned.length === 4 && state.processed > 400, 'the victim to own every partition and be mid-stream', 20_000);
    // A second replica joins; the victim is killed while both are working.
    const survivor = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'survivor', engineFactory: () => new CountingEngine() });
    await eventually(() => survivor.owned().length > 0 && state.owned.length > 0 && state.owned.length < 4, 'the partitions to be shared');
    const killedAt = state.processed;
    victim.kill('SIGKILL');
    await victim.exited;
    assert.ok(killedAt < 4000, 'killed before the end of the stream');
    await eventually(() => survivor.owned().length === 4, 'the survivor to take every partition after the lease TTL', 15_000);
    await assertExactlyOnce(cfg, await logRecords(dir));
    await survivor.stop();
  });

  test('a gateway killed and restarted mid-stream: its log resumes, the cursor catches up, every event is stored once', async () => {
    const cfg = config();
    const dir = path.join(root, `gw-${n}`);
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const analyzer = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'watcher', engineFactory: () => new CountingEngine() });
    let progress = { i: 0, cursor: 0 };
    const env = { MG_CFG: JSON.stringify(cfg), MG_DIR: dir };
    const first = child(GATEWAY_CHILD, { ...env, MG_FROM: '0', MG_TO: '6000' }, (m) => { if (typeof m['i'] === 'number') progress = m as typeof progress; });
    await eventually(() => progress.i > 2000 && progress.cursor > 500, 'the gateway to be mid-stream', 20_000);
    first.kill('SIGKILL');
    await first.exited;
    // Restart where the log ends (events still queued in memory at the kill were never written: not in the log, not expected).
    const before = await logRecords(dir);
    const last = before[before.length - 1] as AuditRecord;
    const from = Number(last.requestId.slice('req-'.length)) + 1;
    let done = false;
    const second = child(GATEWAY_CHILD, { ...env, MG_FROM: String(from), MG_TO: '6000' }, (m) => { if (m['done'] === true) done = true; });
    await eventually(() => done, 'the restarted gateway to finish and ship everything', 30_000);
    await second.exited;
    const records = await logRecords(dir);
    assert.ok(records.length > before.length);
    await assertExactlyOnce(cfg, records);
    await analyzer.stop();
  });
});
