/**
 * Analyzer replicas on a real nats-server: partitions are shared, every
 * event is processed in its partition's order, alerts land in the alerts
 * stream once and equal an uninterrupted run's, a graceful stop hands
 * partitions over, and quarantine orders reach a gateway's table through the
 * decisions KV bucket.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AuditRecord } from '../../src/audit/event.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { Decision } from '../../src/analyzer/types.ts';
import { configSchema, type NatsSinkConfig } from '../../src/config/schema.ts';
import { QuarantineTable } from '../../src/decisions/quarantine-table.ts';
import { DecisionsKv, openDecisionsBucket } from '../../src/stream/decisions-kv.ts';
import { runNatsAnalyzer, type NatsAnalyzer } from '../../src/stream/nats-analyzer.ts';
import { Shipper } from '../../src/stream/shipper.ts';
import { partitionOf } from '../../src/stream/subjects.ts';
import { watchDecisionsKv } from '../../src/stream/watch-decisions-kv.ts';
import { CountingEngine, eventually, expectedEmissions, natsSkip, readStream, testEvent, type NatsServer, shipperConnection, useNatsSuite } from '../helpers/nats.ts';

describe('analyzer replicas', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let n = 0;
  useNatsSuite('meshgate-analyzer-', (f) => ({ nats, nc, root } = f));
  const fresh = () => shipperConnection(nats);

  function config(): NatsSinkConfig {
    n++;
    const audit = configSchema.shape.audit.parse({
      dir: '/unused',
      sink: { nats: {
        servers: [nats.url], service: 'orders', stream: `A_${n}`, subjectPrefix: `a${n}.audit`, partitions: 6, ackTimeout: '1s', duplicateWindow: '30s',
        decisionsBucket: `decisions_${n}`,
        analyzer: { durablePrefix: `an${n}`, stateBucket: `state_${n}`, leaseBucket: `leases_${n}`, leaseTtl: '2s', checkpointInterval: '100ms', batch: 64, alertsStream: `ALERTS_${n}`, alertsSubjectPrefix: `a${n}.alerts` },
      } },
    });
    return audit.sink?.nats as NatsSinkConfig;
  }

  /** Writes `count` events (five identities, deny-heavy so alerts fire) and ships them. */
  async function produce(cfg: NatsSinkConfig, count: number, opts: { quarantineMs?: number } = {}) {
    void opts;
    const dir = path.join(root, `audit-${n}`);
    const writer = new AuditWriter({ dir, segmentBytes: 1 << 20, fsyncInterval: 50, checkpointInterval: 1000, queueLimit: 100_000 });
    await writer.open();
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < count; i++) writer.append(testEvent(i, { timeMs: t0 + i * 37, who: i % 5, deny: i % 4 !== 0 }));
    await writer.close();
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const { auditStreamSpec, ensureAuditStream } = await import('../../src/stream/audit-stream.ts');
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const shipper = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: 512, ackTimeoutMs: 1000,
    });
    shipper.start();
    await shipper.waitFor(count);
    await shipper.stop();
    const records: AuditRecord[] = [];
    for await (const r of readAuditEvents(dir)) records.push(r);
    return records;
  }

  async function emissions(cfg: NatsSinkConfig): Promise<string[]> {
    const stored = await readStream(nc, cfg.analyzer.alertsStream);
    return stored.map((m) => { const a = JSON.parse(m.text); return `${a.id}:${a.count}`; });
  }

  const total = (as: NatsAnalyzer[]): number => as.reduce((s, a) => s + a.stats().partitions.reduce((x, p) => x + p.processed, 0), 0);

  test('two replicas share the partitions and raise exactly the alerts of an uninterrupted run, once each', async () => {
    const cfg = config();
    const records = await produce(cfg, 1500);
    const expected = expectedEmissions(records, cfg.partitions, partitionOf, () => new CountingEngine({ threshold: 5 }));
    assert.ok(expected.length > 100, 'the trace raises alerts');
    const a = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'r1', engineFactory: () => new CountingEngine({ threshold: 5 }) });
    const b = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'r2', engineFactory: () => new CountingEngine({ threshold: 5 }) });
    await eventually(() => a.owned().length + b.owned().length === 6 && a.owned().length > 0 && b.owned().length > 0, 'both replicas to own partitions');
    assert.deepEqual([...a.owned(), ...b.owned()].sort(), [0, 1, 2, 3, 4, 5]);
    await eventually(async () => (await emissions(cfg)).length >= expected.length, 'all alerts');
    const got = await emissions(cfg);
    assert.equal(new Set(got).size, got.length, 'no emission stored twice');
    assert.deepEqual([...got].sort(), [...expected].sort());
    await a.stop();
    await b.stop();
  });

  test('a replica that stops hands its partitions over at the checkpoint: nothing lost, nothing raised twice', async () => {
    const cfg = config();
    const records = await produce(cfg, 3000);
    const expected = expectedEmissions(records, cfg.partitions, partitionOf);
    // Slow engines so the hand-over happens mid-stream.
    const slow = () => {
      const e = new CountingEngine();
      const process = e.process.bind(e);
      e.process = (r) => { const t = Date.now() + 0.2; while (Date.now() < t) { /* spin */ } return process(r); };
      return e;
    };
    const a = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'x1', engineFactory: slow });
    await eventually(() => a.owned().length === 6, 'x1 to own every partition');
    await eventually(() => total([a]) > 300, 'x1 to be mid-stream');
    const b = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'x2', engineFactory: slow });
    await eventually(() => b.owned().length > 0, 'x2 to take partitions');
    await a.stop();
    await eventually(() => b.owned().length === 6, 'x2 to own every partition');
    await eventually(async () => (await emissions(cfg)).length >= expected.length, 'all alerts', 20_000);
    const got = await emissions(cfg);
    assert.equal(new Set(got).size, got.length, 'no emission stored twice');
    assert.deepEqual([...got].sort(), [...expected].sort());
    await b.stop();
  });

  test('quarantine orders reach a watching gateway table within 2 s, and a new watcher loads the full state', async () => {
    const cfg = config();
    const table = new QuarantineTable();
    const seen: (readonly Decision[])[] = [];
    const watch = await watchDecisionsKv({ connection: nc, bucket: cfg.decisionsBucket, table, onUpdate: (d) => seen.push(d) });
    await produce(cfg, 400);
    const started = Date.now();
    const a = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'q1', engineFactory: () => new CountingEngine({ quarantineMs: 3_600_000 }) });
    const now = Date.UTC(2026, 0, 1, 0, 0, 30);
    await eventually(() => table.match({ spiffe: 'spiffe://mesh.local/ns/default/sa/svc-0' }, now) !== undefined, 'the quarantine of svc-0');
    assert.ok(Date.now() - started < 10_000);
    const d = table.match({ spiffe: 'spiffe://mesh.local/ns/default/sa/svc-0' }, now) as Decision;
    assert.equal(d.scope, 'spiffe');
    assert.equal(d.origin, 'test-denials');
    assert.match(d.id, /^d-[0-9a-f]{24}$/);
    await eventually(() => table.match({ sub: 'user-1' }, now) !== undefined && table.match({ ip: '10.0.2.1' }, now) !== undefined, 'the other quarantines');
    await a.stop();
    // A manual decision written now is applied by the running watch within 2 s.
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    const t = Date.now();
    await kv.put({ id: 'd-manual', scope: 'ip', value: '192.0.2.7', origin: 'manual', reason: 'manual', createdAt: new Date(t).toISOString(), expiresAt: new Date(t + 60_000).toISOString(), simulated: false, offence: 1 });
    await eventually(() => table.match({ ip: '192.0.2.7' }, Date.now()) !== undefined, 'the manual decision', 2000);
    // A gateway starting now loads everything at once.
    const fresh = new QuarantineTable();
    const w2 = await watchDecisionsKv({ connection: nc, bucket: cfg.decisionsBucket, table: fresh });
    assert.equal(fresh.size, table.size);
    assert.ok(fresh.match({ ip: '192.0.2.7' }, Date.now()));
    // An unban (delete) is applied too.
    await kv.remove({ scope: 'ip', value: '192.0.2.7', simulated: false });
    await eventually(() => table.match({ ip: '192.0.2.7' }, Date.now()) === undefined, 'the unban', 2000);
    await watch.close();
    await w2.close();
    assert.ok(seen.length >= 2);
  });

  test('the --nats mode of analyzer run joins with the configured rules and leaves on abort', async () => {
    const { runNatsAnalyzerUntil } = await import('../../src/stream/analyzer-command.ts');
    const { createEngineFromRules } = await import('../../src/analyzer/engine-factory.ts');
    const { SHIPPED_DETECTIONS } = await import('../../src/config/load.ts');
    const { silentLogger } = await import('../../src/core/log.ts');
    const nats = config();
    const base = { upstream: { url: 'http://127.0.0.1:1' }, tls: { cert: 'c', key: 'k', clientCa: 'ca', trustDomains: ['mesh.local'] }, authz: { model: 'm', policy: 'p' }, routes: [{ match: { pathPrefix: '/' }, auth: 'none' }] };
    const cfg = configSchema.parse({ ...base, audit: { dir: path.join(root, 'cli'), sink: { nats: { ...nats, ackTimeout: '1s', duplicateWindow: '30s', maxAge: '7d', analyzer: { ...nats.analyzer, leaseTtl: '2s', checkpointInterval: '100ms' } } } } });
    let err = '';
    const { Writable } = await import('node:stream');
    const stderr = new Writable({ write(c, _e, cb) { err += String(c); cb(); } });
    const abort = new AbortController();
    let joined: NatsAnalyzer | undefined;
    const done = runNatsAnalyzerUntil(cfg, { rules: SHIPPED_DETECTIONS, engineFactory: createEngineFromRules, logger: silentLogger, signal: abort.signal, stderr, replicaId: 'cli', onStarted: (a) => { joined = a; } });
    await eventually(() => joined !== undefined && joined.owned().length === 6, 'the replica to take every partition');
    abort.abort();
    assert.equal(await done, 0);
    assert.match(err, /replica cli consuming A_\d+ \(6 partitions\)/);
    assert.match(err, /stopped after 0 events/);
    const noSink = configSchema.parse({ ...base, audit: { dir: path.join(root, 'cli2') } });
    assert.equal(await runNatsAnalyzerUntil(noSink, { rules: SHIPPED_DETECTIONS, engineFactory: createEngineFromRules, logger: silentLogger, signal: abort.signal, stderr }), 2);
  });

  test('re-ordering the same quarantine is idempotent and a repeat offence escalates', async () => {
    const cfg = config();
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    const order = { rule: 'brute', alertId: 'a-1', scope: 'ip' as const, value: '203.0.113.9', durationMs: 60_000, simulated: false };
    const t = Date.UTC(2026, 0, 1);
    const first = await kv.order(order, t);
    assert.equal(first.status, 'created');
    assert.equal((await kv.order(order, t + 10)).status, 'existing');
    const later = await kv.order({ ...order, alertId: 'a-2' }, t + 120_000);
    assert.equal(later.status, 'created');
    assert.equal(later.decision.offence, 2);
    assert.equal(Date.parse(later.decision.expiresAt) - Date.parse(later.decision.createdAt), 120_000);
  });
});
