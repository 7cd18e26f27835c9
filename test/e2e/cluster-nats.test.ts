/**
 * workers > 1 with audit.sink.nats, end to end against a real nats-server:
 * the primary ships the one audit chain (every event in the stream exactly
 * once) and mirrors the replicas' alerts into its alerts.jsonl, with the
 * shipper's metrics in the aggregated /metrics; every worker watches the
 * decisions KV bucket and enforces a new quarantine within 2 s.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AuditRecord } from '../../src/audit/event.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { ALERTS_FILE, readAlertLines } from '../../src/analyzer/sinks/alerts-log.ts';
import type { Alert } from '../../src/analyzer/types.ts';
import { verifyAuditDir } from '../../src/audit/verify.ts';
import { DecisionsKv, openDecisionsBucket } from '../../src/stream/decisions-kv.ts';
import { freshRequest, spawnCluster } from '../helpers/cluster.ts';
import { eventually, natsSkip, readStream, useNatsSuite, type NatsServer } from '../helpers/nats.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

describe('a 2-worker gateway on NATS JetStream', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let dir: string;
  let pki: TestPki;
  let upstream: Server;
  let child: ChildProcess;
  let port = 0;
  let adminPort = 0;
  let sent = 0;
  let output = '';
  const upstreamSockets = new Set<number>();

  async function fresh(path: string, token: string): Promise<{ status: number; reason?: string | undefined }> {
    const r = await freshRequest(pki, port, path, token);
    sent++;
    return r;
  }

  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();

  // Registered first, so it runs before the suite's broker and folder go away.
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await once(child, 'exit'); }
    upstream?.close();
  });
  useNatsSuite('meshgate-cluster-nats-', (f) => ({ nats, nc, root: dir } = f));

  test('starts: the primary and both workers come up with the NATS sink (no longer refused)', async () => {
    pki = await makeTestPki(join(dir, 'certs'));
    upstream = createServer((req, res) => { upstreamSockets.add(req.socket.remotePort ?? 0); req.resume(); res.end('ok'); }).listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const audit = `{ dir: audit, fsyncInterval: 100ms, sink: { nats: { servers: ["${nats.url}"], service: orders, partitions: 4 } } }`;
    child = spawnCluster(dir, (upstream.address() as AddressInfo).port, audit, (t) => { output += t; });
    await eventually(() => {
      const listening = output.split('\n').filter((l) => l.includes('"meshgate listening"'));
      const primary = /.*"meshgate primary started".*/.exec(output)?.[0] ?? '';
      adminPort = Number(/"admin":\{"host":"[^"]+","port":(\d+)\}/.exec(primary)?.[1] ?? 0);
      port = Number(/"listen":\{"host":"[^"]+","port":(\d+)\}/.exec(listening[0] ?? '')?.[1] ?? 0);
      if (child.exitCode !== null) throw new Error(`meshgate exited:\n${output.slice(-3000)}`);
      return listening.length === 2 && adminPort > 0;
    }, 'the primary and two workers', 15_000).catch((err: Error) => { throw new Error(`${err.message}; output:\n${output.slice(-3000)}`); });
    const ready = await (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).json() as { components: { name: string; state: string }[] };
    const names = ready.components.map((c) => c.name);
    for (const n of ['audit-shipper', 'alerts-mirror', 'quarantine-kv']) assert.ok(names.includes(n), `${n} in /readyz detail`);
  });

  test('the primary ships every request of both workers, and the shipper metrics are in the aggregated /metrics once', async () => {
    const token = await pki.mintToken({ sub: 'alice' });
    for (let i = 0; i < 16; i++) assert.equal((await fresh('/orders', token)).status, 200);
    assert.ok(upstreamSockets.size >= 2, 'both workers forwarded requests');
    await eventually(async () => /^meshgate_nats_shipper_published_total (1[6-9]|[2-9]\d)/m.test(await metrics()) && /^meshgate_nats_shipper_backlog_events 0$/m.test(await metrics()),
      'the primary to ship all 16 events', 10_000);
    const text = await metrics();
    assert.match(text, /^meshgate_nats_shipper_connected 1$/m);
    const helps = text.split('\n').filter((l) => l.startsWith('# HELP '));
    assert.equal(new Set(helps).size, helps.length, 'no metric is exposed twice');
  });

  test('a quarantine written to the KV bucket is enforced by both workers within 2 s', async () => {
    const token = await pki.mintToken({ sub: 'alice' });
    const kv = new DecisionsKv(await openDecisionsBucket(nc, 'meshgate_decisions'));
    const r = await kv.addManual({ scope: 'sub', value: 'alice', durationMs: 60_000, reason: 'e2e' }, Date.now());
    const writtenAt = Date.now();
    let enforced = false;
    while (!enforced && Date.now() - writtenAt < 2000) {
      // Ten fresh connections in a row: round robin gives each worker five.
      const got = [];
      for (let i = 0; i < 10; i++) got.push(await fresh('/orders', token));
      enforced = got.every((g) => g.status === 403 && g.reason === 'quarantined');
    }
    assert.ok(enforced, 'every request on both workers refused within 2 s of the decision');
    const events: AuditRecord[] = [];
    await eventually(async () => {
      events.length = 0;
      for await (const e of readAuditEvents(join(dir, 'audit'))) events.push(e);
      return events.some((e) => e.reason === 'quarantined');
    }, 'the refusals in the audit log', 5000);
    assert.equal(events.find((e) => e.reason === 'quarantined')?.quarantine?.decisionId, r.decision.id);
    await kv.removeById(r.decision.id);
    kv.close();
  });

  test('an alert of a replica lands in the primary\'s alerts.jsonl once', async () => {
    const alert: Alert = {
      v: 1, id: 'a-cluster-1', rule: 'credential-brute-force', severity: 'medium', title: 'Credential brute force', scope: 'sub', value: 'mallory',
      firstSeen: new Date().toISOString(), lastSeen: new Date().toISOString(), count: 6, evidence: ['e-1'], summary: '6 rejected credentials',
    };
    const js = jetstream(nc);
    await js.publish('meshgate.alerts.credential-brute-force', JSON.stringify(alert), { msgID: `${alert.id}:${alert.count}` });
    await js.publish('meshgate.alerts.credential-brute-force', JSON.stringify(alert), { msgID: `${alert.id}:${alert.count}` });
    const file = join(dir, 'audit', 'analyzer', ALERTS_FILE);
    const ids = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const l of readAlertLines(file)) out.push(l.alert.id);
      return out;
    };
    await eventually(async () => (await ids()).includes(alert.id), 'the alert in alerts.jsonl', 5000);
    assert.deepEqual(await ids(), [alert.id]);
  });

  test('SIGTERM leaves one intact chain, and every event id of it is in the stream exactly once', async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit') as [number];
    assert.equal(code, 0, output.slice(-2000));
    upstream.close();
    const v = await verifyAuditDir(join(dir, 'audit'));
    assert.equal(v.ok, true);
    assert.equal(v.records, sent);
    const logged: string[] = [];
    for await (const e of readAuditEvents(join(dir, 'audit'))) logged.push(e.id);
    const stored = (await readStream(nc, 'MESHGATE_AUDIT')).map((m) => (JSON.parse(m.text) as { id: string }).id);
    assert.equal(new Set(stored).size, stored.length, 'no event stored twice');
    assert.deepEqual([...stored].sort(), [...logged].sort());
  });
});
