/**
 * The closed loop at scale, end to end with real parts: requests through a
 * real meshgate (mTLS, JWT, Casbin) whose audit log is shipped to a real
 * nats-server, an analyzer replica running the rule engine on the stream,
 * its quarantine order written to the decisions KV bucket, and the gateway
 * refusing the attacker within 2 s of that write (PRODUCT §1.7–1.8).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createEngine } from '../../src/analyzer/engine/engine.ts';
import { ALERTS_FILE, readAlertLines } from '../../src/analyzer/sinks/alerts-log.ts';
import { loadRules } from '../../src/analyzer/rules/load.ts';
import type { NatsSinkConfig } from '../../src/config/schema.ts';
import { runNatsAnalyzer, type NatsAnalyzer } from '../../src/stream/nats-analyzer.ts';
import { decisionKey } from '../../src/stream/subjects.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';
import { eventually, natsSkip, readStream, startNatsServer, type NatsServer } from '../helpers/nats.ts';

const RULES = `version: 1
rules:
  - name: credential-brute-force
    title: Credential brute force
    severity: medium
    description: Rejected credentials in a leaky bucket per caller.
    kind: leaky
    capacity: 5
    leakSpeed: 10s
    groupBy: [spiffe, cert, ip]
    filter: { type: request, reason: [jwt_bad_signature, jwt_malformed, jwt_unknown_key] }
    dedup: 10m
    remediation: { duration: 10m, simulated: false }
`;

describe('gateway → JetStream → analyzer → KV → gateway', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let h: Harness;
  let analyzer: NatsAnalyzer;

  before(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    h = await startHarness({
      patch: (cfg, dir) => {
        writeFileSync(path.join(dir, 'rules.yaml'), RULES);
        return {
          ...cfg,
          audit: { ...cfg.audit, sink: { nats: {
            servers: [nats.url], service: 'orders', partitions: 4,
            analyzer: { leaseTtl: '2s', checkpointInterval: '200ms', batch: 64 },
          } } },
        };
      },
    });
    const rules = await loadRules(path.join(h.dir, 'rules.yaml'));
    analyzer = await runNatsAnalyzer({ nats: h.config.audit.sink?.nats as NatsSinkConfig, connection: nc, replicaId: 'e2e', engineFactory: () => createEngine(rules) });
  });
  after(async () => {
    await analyzer?.stop();
    await h?.close();
    await nc?.close();
    await nats?.close();
  });

  test('a brute-forcing workload is alerted on, quarantined through the KV bucket, and refused within 2 s', async () => {
    const good = await h.pki.mintToken({ sub: 'alice' });
    assert.equal((await h.request('/orders', { token: good })).status, 200);
    for (let i = 0; i < 7; i++) assert.equal((await h.request('/orders', { token: 'not.a.token' })).status, 401);
    // The order lands in the bucket under the workload's SPIFFE ID …
    const kv = await new Kvm(nc).open('meshgate_decisions');
    const key = decisionKey('spiffe', h.pki.client.spiffeIds[0] as string, false);
    let writtenAt = 0;
    await eventually(async () => {
      const e = await kv.get(key);
      if (e?.operation === 'PUT') writtenAt = Date.now();
      return writtenAt > 0;
    }, 'the quarantine decision in the KV bucket', 15_000);
    // … and the gateway enforces it within 2 s, for every request of that workload.
    let refusedAt = 0;
    while (refusedAt === 0 && Date.now() - writtenAt < 2000) {
      const r = await h.request('/orders', { token: good });
      if (r.status === 403) {
        refusedAt = Date.now();
        assert.equal(r.json<{ code: string }>().code, 'MG_ERR_AUTHZ_QUARANTINED');
      } else await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(refusedAt > 0, 'refused within 2 s of the decision');
    const events = await h.auditEvents();
    const refused = events.find((e) => e.reason === 'quarantined');
    assert.ok(refused?.quarantine?.decisionId.startsWith('d-'));
    assert.equal(refused?.quarantine?.scope, 'spiffe');
    assert.equal(refused?.quarantine?.simulated, false);
    // The alert is in the alerts stream, once, carrying the decision id.
    const alerts = (await readStream(nc, 'MESHGATE_ALERTS')).map((m) => JSON.parse(m.text) as { rule: string; id: string; count: number; decisionId?: string });
    const bf = alerts.filter((a) => a.rule === 'credential-brute-force');
    assert.ok(bf.length >= 1);
    assert.equal(new Set(bf.map((a) => `${a.id}:${a.count}`)).size, bf.length);
    assert.equal(bf[0]?.decisionId, refused?.quarantine?.decisionId);
    // The gateway mirrors the replica's alerts into its own alerts.jsonl (what `alerts list` and the UI read), once each.
    const file = path.join(h.config.audit.dir, 'analyzer', ALERTS_FILE);
    const mirrored = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const l of readAlertLines(file)) out.push(`${l.alert.id}:${l.alert.count}`);
      return out;
    };
    await eventually(async () => (await mirrored()).length >= alerts.length, 'the alerts in the gateway\'s alerts.jsonl', 5000);
    assert.deepEqual((await mirrored()).sort(), alerts.map((a) => `${a.id}:${a.count}`).sort());
  });

  test('shipper metrics are on /metrics and its status is in /readyz detail', async () => {
    await h.gateway.flushAudit();
    await eventually(async () => {
      const text = await (await fetch(h.adminUrl('/metrics'))).text();
      return /meshgate_nats_shipper_backlog_events 0/.test(text) && /meshgate_nats_shipper_published_total [1-9]/.test(text);
    }, 'the shipper to catch up in /metrics');
    const text = await (await fetch(h.adminUrl('/metrics'))).text();
    for (const m of ['meshgate_nats_shipper_lag_seconds', 'meshgate_nats_shipper_publish_errors_total', 'meshgate_nats_shipper_connected 1']) assert.match(text, new RegExp(m));
    const ready = await (await fetch(h.adminUrl('/readyz'))).json() as { ready: boolean; components: { name: string; state: string }[] };
    assert.equal(ready.ready, true);
    assert.equal(ready.components.find((c) => c.name === 'audit-shipper')?.state, 'ok');
    assert.equal(ready.components.find((c) => c.name === 'quarantine-kv')?.state, 'ok');
    assert.equal(ready.components.find((c) => c.name === 'alerts-mirror')?.state, 'ok');
    assert.match(text, /meshgate_nats_alerts_mirrored_total [1-9]/);
  });
});
