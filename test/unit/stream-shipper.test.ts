/**
 * The shipper against a real nats-server: every audit record reaches the
 * stream once, under its event id, on its identity's partition subject; the
 * cursor only moves on acknowledgement; the log spools while NATS is down and
 * drains in order when it is back; a lost cursor does not re-ship.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import path from 'node:path';
import { describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AuditWriter } from '../../src/audit/writer.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { configSchema, type NatsSinkConfig } from '../../src/config/schema.ts';
import { auditStreamSpec, ensureAuditStream } from '../../src/stream/audit-stream.ts';
import { Shipper } from '../../src/stream/shipper.ts';
import { startShipper } from '../../src/stream/start-shipper.ts';
import { partitionOf } from '../../src/stream/subjects.ts';
import { eventually, natsSkip, readStream, testEvent, testIdentity, type NatsServer, shipperConnection, useNatsSuite } from '../helpers/nats.ts';

function sinkConfig(url: string, over: Partial<NatsSinkConfig> = {}): NatsSinkConfig {
  const cfg = configSchema.shape.audit.parse({ dir: '/unused', sink: { nats: { servers: [url], service: 'orders', ...over } } });
  return cfg.sink?.nats as NatsSinkConfig;
}

describe('audit shipper', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let n = 0;
  useNatsSuite('meshgate-shipper-', (f) => ({ nats, nc, root } = f));
  const fresh = () => shipperConnection(nats);

  /** A fresh audit dir, writer and stream (name per test). */
  async function setup(over: Partial<NatsSinkConfig> = {}) {
    n++;
    const dir = path.join(root, `audit-${n}`);
    const cfg = sinkConfig(nats.url, { stream: `AUDIT_${n}`, subjectPrefix: `t${n}.audit`, partitions: 4, ...over });
    const writer = new AuditWriter({ dir, segmentBytes: 64 * 1024, fsyncInterval: 50, checkpointInterval: 1000, queueLimit: 100_000 });
    await writer.open();
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const shipper = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: cfg.maxAckPending, ackTimeoutMs: 1000, logHead: () => writer.stats().lastSeq,
    });
    return { dir, cfg, writer, shipper };
  }

  test('every record is published once, with its event id, on its identity partition subject, in log order', async () => {
    const { dir, cfg, writer, shipper } = await setup();
    shipper.start();
    for (let i = 0; i < 3000; i++) writer.append(testEvent(i));
    await writer.flush();
    await shipper.waitFor(3000);
    const records = [];
    for await (const r of readAuditEvents(dir)) records.push(r);
    const stored = await readStream(nc, cfg.stream);
    assert.equal(stored.length, 3000);
    const byId = new Map(stored.map((m) => [JSON.parse(m.text).id as string, m]));
    assert.equal(byId.size, 3000);
    for (const r of records) {
      const m = byId.get(r.id);
      assert.ok(m, `event ${r.id} is in the stream`);
      assert.match(m.subject, new RegExp(`^t\\d+\\.audit\\.orders\\.[0-9a-f]{12}\\.p${partitionOf(testIdentity(r), 4)}$`));
    }
    // Stream order is log order.
    const seqs = stored.map((m) => JSON.parse(m.text).seq as number);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    const s = shipper.stats();
    assert.equal(s.cursorSeq, 3000);
    assert.equal(s.backlog, 0);
    assert.equal(s.duplicates, 0);
    await shipper.stop();
    await writer.close();
    const cursor = JSON.parse(readFileSync(path.join(dir, 'nats-cursor.json'), 'utf8'));
    assert.equal(cursor.seq, 3000);
    assert.equal(cursor.id, records[2999]?.id);
  });

  test('never more than maxAckPending publishes are unacknowledged', async () => {
    const { writer, shipper } = await setup({ maxAckPending: 16 });
    for (let i = 0; i < 2000; i++) writer.append(testEvent(i));
    await writer.flush();
    shipper.start();
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, shipper.stats().inFlight); }, 1);
    await shipper.waitFor(2000);
    clearInterval(sampler);
    assert.ok(peak <= 16, `peak in flight ${peak}`);
    await shipper.stop();
    await writer.close();
  });

  test('a lost cursor file does not re-publish what the stream already holds', async () => {
    const { dir, cfg, writer, shipper } = await setup();
    shipper.start();
    for (let i = 0; i < 500; i++) writer.append(testEvent(i));
    await writer.flush();
    await shipper.waitFor(500);
    await shipper.stop();
    unlinkSync(path.join(dir, 'nats-cursor.json'));
    const again = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: 64, ackTimeoutMs: 1000, logHead: () => writer.stats().lastSeq,
    });
    again.start();
    for (let i = 500; i < 600; i++) writer.append(testEvent(i));
    await writer.flush();
    await again.waitFor(600);
    const s = again.stats();
    assert.equal(s.published, 100, 'only the new records were published');
    assert.equal(s.duplicates, 0);
    await again.stop();
    await writer.close();
    assert.equal((await readStream(nc, cfg.stream)).length, 600);
  });

  test('an existing stream that breaks a guarantee is reported with every problem', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'BROKEN', subjects: ['broken.audit.>'], storage: 'memory' as never, duplicate_window: 1_000_000_000, description: 'meshgate audit events (partitions=8)' });
    const cfg = sinkConfig(nats.url, { stream: 'BROKEN', subjectPrefix: 'broken.audit', partitions: 4 });
    await assert.rejects(ensureAuditStream(jsm, auditStreamSpec(cfg)), (err: Error & { problems?: string[] }) => {
      assert.equal(err.name, 'StreamMismatchError');
      assert.equal(err.problems?.length, 3);
      assert.match(err.message, /storage is memory/);
      assert.match(err.message, /duplicate_window is 1000 ms/);
      assert.match(err.message, /partitioned 8 ways/);
      return true;
    });
  });

  test('startShipper fails start-up on a stream mismatch and otherwise ships the gateway log', async () => {
    n++;
    const dir = path.join(root, `audit-${n}`);
    const base = { listen: {}, upstream: { url: 'http://127.0.0.1:1' }, tls: { cert: 'c', key: 'k', clientCa: 'ca', trustDomains: ['mesh.local'] }, authz: { model: 'm', policy: 'p' }, routes: [{ match: { pathPrefix: '/' }, auth: 'none' }] };
    const bad = configSchema.parse({ ...base, audit: { dir, sink: { nats: { servers: [nats.url], service: 'orders', stream: 'BROKEN', subjectPrefix: 'broken.audit', partitions: 8 } } } });
    const { silentLogger } = await import('../../src/core/log.ts');
    await assert.rejects(startShipper(bad, silentLogger), { name: 'StreamMismatchError' });
    const good = configSchema.parse({ ...base, audit: { dir, sink: { nats: { servers: [nats.url], service: 'orders', stream: `GOOD_${n}`, subjectPrefix: `g${n}.audit` } } } });
    const writer = new AuditWriter(good.audit);
    await writer.open();
    const sink = await startShipper(good, silentLogger, { logHead: () => writer.stats().lastSeq });
    for (let i = 0; i < 50; i++) writer.append(testEvent(i));
    await writer.flush();
    await sink.shipper.waitFor(50);
    assert.equal(sink.status().state, 'ok');
    await sink.close();
    await writer.close();
    assert.equal((await readStream(nc, `GOOD_${n}`)).length, 50);
  });

  test('meshgate stream setup creates or checks the stream, and status reports it (exit 1 on a mismatch)', async () => {
    const { streamCommand } = await import('../../src/cli/stream.ts');
    n++;
    const dir = path.join(root, `cli-${n}`);
    mkdirSync(dir, { recursive: true });
    const yaml = (stream: string, partitions: number) => `upstream: { url: "http://127.0.0.1:1" }
tls: { cert: c.pem, key: k.pem, clientCa: ca.pem, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes: [ { match: { pathPrefix: / }, auth: none } ]
audit:
  dir: audit
  sink: { nats: { servers: ["${nats.url}"], service: orders, stream: ${stream}, subjectPrefix: cli${n}.audit, partitions: ${partitions} } }
analyzer: { enabled: false }
`;
    writeFileSync(path.join(dir, 'ok.yaml'), yaml(`CLI_${n}`, 4));
    writeFileSync(path.join(dir, 'bad.yaml'), yaml(`CLI_${n}`, 8));
    const run = async (args: string[]) => {
      let out = '';
      let err = '';
      const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
      const code = await streamCommand.run(args, { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env: {}, cwd: dir });
      return { code, out, err };
    };
    const setup = await run(['setup', '-c', 'ok.yaml']);
    assert.equal(setup.code, 0, setup.err);
    assert.match(setup.out, new RegExp(`created stream CLI_${n}`));
    assert.match((await run(['setup', '-c', 'ok.yaml'])).out, /checked stream/);
    const status = await run(['status', '-c', 'ok.yaml', '--json']);
    assert.equal(status.code, 0, status.err);
    const st = JSON.parse(status.out);
    assert.equal(st.stream.name, `CLI_${n}`);
    assert.equal(st.partitions.length, 4);
    const bad = await run(['setup', '-c', 'bad.yaml']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /partitioned 4 ways/);
    await assert.rejects(run(['frobnicate', '-c', 'ok.yaml']), { name: 'UsageError' });
  });

  test('while NATS is down the log spools; after it returns the backlog drains in order with no duplicates stored', async () => {
    const { dir, cfg, writer, shipper } = await setup();
    const s2 = new Shipper({ connect: fresh,
      dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service,
      partitions: cfg.partitions, maxAckPending: 256, ackTimeoutMs: 500, logHead: () => writer.stats().lastSeq,
    });
    void shipper; // this test ships with a shorter ack timeout
    s2.start();
    for (let i = 0; i < 1000; i++) writer.append(testEvent(i));
    await writer.flush();
    await s2.waitFor(1000);
    await nats.stop();
    for (let i = 1000; i < 3000; i++) {
      writer.append(testEvent(i));
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await writer.flush();
    await eventually(() => s2.stats().backlog === 2000 && !s2.stats().connected, 'the shipper to see the outage');
    assert.ok(s2.stats().lagSeconds >= 0);
    await nats.restart();
    await s2.waitFor(3000, 20_000);
    await s2.stop();
    await writer.close();
    const stored = await readStream(nc, cfg.stream);
    const ids = stored.map((m) => JSON.parse(m.text).id as string);
    assert.equal(new Set(ids).size, ids.length, 'no event id is stored twice');
    assert.equal(ids.length, 3000);
    const seqs = stored.map((m) => JSON.parse(m.text).seq as number);
    assert.deepEqual(seqs, Array.from({ length: 3000 }, (_, i) => i + 1), 'the backlog drained in log order');
  });
});
