/**
 * Exceptions at scale, on a real nats-server: they live in the decisions KV
 * bucket; analyzer replicas raise no alert and order no quarantine they
 * cover; gateways do not enforce a rule's decision that an exception covers
 * (written by a replica that had not seen it yet); `meshgate decisions`
 * operates on the bucket when the config has audit.sink.nats.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { Alert, Decision, Exception } from '../../src/analyzer/types.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { configSchema, type NatsSinkConfig } from '../../src/config/schema.ts';
import { exceptionCovering, withoutExcepted } from '../../src/decisions/excepted-decisions.ts';
import { QuarantineTable } from '../../src/decisions/quarantine-table.ts';
import { AnalyzerOutputs, ensureAlertsStream } from '../../src/stream/analyzer-outputs.ts';
import { auditStreamSpec, ensureAuditStream } from '../../src/stream/audit-stream.ts';
import { DecisionsKv, openDecisionsBucket } from '../../src/stream/decisions-kv.ts';
import { runNatsAnalyzer } from '../../src/stream/nats-analyzer.ts';
import { Shipper } from '../../src/stream/shipper.ts';
import { decisionKey } from '../../src/stream/subjects.ts';
import { watchDecisionsKv } from '../../src/stream/watch-decisions-kv.ts';
import { CountingEngine, eventually, natsSkip, readStream, shipperConnection, testEvent, useNatsSuite, type NatsServer } from '../helpers/nats.ts';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();
const HOUR = 3_600_000;

function ruleDecision(over: Partial<Decision> = {}): Decision {
  return { id: 'd-r', scope: 'sub', value: 'batch-job', origin: 'brute-force', reason: 'rule brute-force', createdAt: iso(T0 + 10), expiresAt: iso(T0 + HOUR), simulated: false, offence: 1, ...over };
}

function exception(over: Partial<Exception> = {}): Exception {
  return { id: 'x-1', rule: 'brute-force', scope: 'sub', value: 'batch-job', createdAt: iso(T0), expiresAt: iso(T0 + HOUR), ...over };
}

test('an exception covers rule decisions ordered during its life, never earlier ones, other rules, other values or manual ones', () => {
  const x = exception();
  assert.equal(exceptionCovering(ruleDecision(), [x])?.id, 'x-1');
  assert.equal(exceptionCovering(ruleDecision(), [exception({ rule: '*' })])?.id, 'x-1');
  const cases: [string, Decision][] = [
    ['ordered before the exception existed', ruleDecision({ createdAt: iso(T0 - 1) })],
    ['ordered after it expired', ruleDecision({ createdAt: iso(T0 + HOUR) })],
    ['another rule', ruleDecision({ origin: 'probing' })],
    ['another value', ruleDecision({ value: 'other' })],
    ['another scope', ruleDecision({ scope: 'ip', value: 'batch-job' })],
    ['a manual decision', ruleDecision({ origin: 'manual' })],
  ];
  for (const [what, d] of cases) assert.equal(exceptionCovering(d, [x]), undefined, what);
  assert.deepEqual(withoutExcepted([ruleDecision(), ruleDecision({ id: 'd-m', origin: 'manual' })], [x]).map((d) => d.id), ['d-m']);
});

test('a decision stored before the exception stays in force whatever the exception\'s timestamp says (a backdated exception)', () => {
  const d = ruleDecision();
  const backdated = exception({ createdAt: iso(T0 - 60_000) });
  const order = new Map<object, number>([[d, 5], [backdated, 9]]);
  const writeOrder = (e: Decision | Exception): number | undefined => order.get(e);
  assert.equal(exceptionCovering(d, [backdated], writeOrder), undefined, 'written before the exception: enforced');
  // A replica that wrote the decision after the exception entered the store, before it saw it: dropped.
  order.set(d, 12);
  assert.equal(exceptionCovering(d, [backdated], writeOrder)?.id, 'x-1');
});

describe('exceptions in the decisions bucket', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let n = 0;
  useNatsSuite('meshgate-exceptions-', (f) => ({ nats, nc, root } = f));

  function config(): NatsSinkConfig {
    n++;
    const audit = configSchema.shape.audit.parse({
      dir: '/unused',
      sink: { nats: {
        servers: [nats.url], service: 'orders', stream: `X_${n}`, subjectPrefix: `x${n}.audit`, partitions: 2, ackTimeout: '1s', duplicateWindow: '30s',
        decisionsBucket: `xdecisions_${n}`,
        analyzer: { durablePrefix: `xan${n}`, stateBucket: `xstate_${n}`, leaseBucket: `xleases_${n}`, leaseTtl: '2s', checkpointInterval: '100ms', batch: 64, alertsStream: `XALERTS_${n}`, alertsSubjectPrefix: `x${n}.alerts` },
      } },
    });
    return audit.sink?.nats as NatsSinkConfig;
  }

  test('an exception suppresses a rule order at event times it covers; manual adds never shorten; delete by id removes either', async () => {
    const cfg = config();
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    const x = await kv.addException({ rule: 'brute', scope: 'ip', value: '203.0.113.9', durationMs: HOUR }, T0);
    assert.match(x.id, /^x-[0-9a-f]{24}$/);
    const order = { rule: 'brute', alertId: 'a-1', scope: 'ip' as const, value: '203.0.113.9', durationMs: 60_000, simulated: false };
    const r = await kv.order(order, T0 + 1000);
    assert.equal(r.status, 'excepted');
    assert.equal(r.status === 'excepted' ? r.exception.id : '', x.id);
    assert.equal((await kv.order({ ...order, rule: 'other', alertId: 'a-2' }, T0 + 1000)).status, 'created', 'another rule is not excepted');
    assert.equal((await kv.order({ ...order, scope: 'sub', alertId: 'a-3' }, T0 + 1000)).status, 'created');
    // After the exception expires (event time), the rule orders again.
    const other = { ...order, value: '203.0.113.10', alertId: 'a-4' };
    await kv.addException({ rule: '*', scope: 'ip', value: '203.0.113.10', durationMs: 1000 }, T0);
    assert.equal((await kv.order(other, T0 + 500)).status, 'excepted');
    assert.equal((await kv.order(other, T0 + 1000)).status, 'created');
    // list() holds decisions only; exceptions() the exceptions.
    assert.ok((await kv.list()).every((d) => d.id.startsWith('d-')));
    assert.equal((await kv.exceptions()).length, 2);
    // A manual add keeps a longer quarantine in force.
    const now = Date.now();
    const long = await kv.addManual({ scope: 'jti', value: 'tok-1', durationMs: 2 * HOUR }, now);
    assert.equal(long.status, 'created');
    const short = await kv.addManual({ scope: 'jti', value: 'tok-1', durationMs: 60_000 }, now);
    assert.equal(short.status, 'existing');
    assert.equal(short.decision.id, long.decision.id);
    assert.equal((await kv.addManual({ scope: 'jti', value: 'tok-1', durationMs: 3 * HOUR }, now)).status, 'created');
    assert.equal((await kv.removeById(x.id))?.id, x.id);
    assert.equal(await kv.removeById(x.id), undefined);
    const d = (await kv.list()).find((e) => e.scope === 'jti') as Decision;
    assert.equal((await kv.removeById(d.id))?.id, d.id);
    assert.equal((await kv.list()).some((e) => e.scope === 'jti'), false);
    // Expired exceptions leave the bucket on prune.
    assert.ok(await kv.prune(Date.now()) >= 1);
    assert.equal((await kv.exceptions()).length, 0);
    kv.close();
  });

  test('analyzer outputs publish no alert and order no quarantine an exception covers at the alert\'s event time', async () => {
    const cfg = config();
    const a = cfg.analyzer;
    await ensureAlertsStream(await jetstreamManager(nc), a.alertsStream, a.alertsSubjectPrefix);
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    const outputs = new AnalyzerOutputs(jetstream(nc), { alertsStream: a.alertsStream, alertsSubjectPrefix: a.alertsSubjectPrefix, decisions: kv });
    const mk = (value: string): Alert => ({ v: 1, id: `a-${value}`, rule: 'brute', severity: 'high', title: 't', scope: 'sub', value, firstSeen: iso(T0), lastSeen: iso(T0 + 100), count: 5, evidence: [], summary: '' });
    const ord = (al: Alert) => ({ order: { rule: al.rule, alertId: al.id, scope: al.scope, value: al.value, durationMs: 60_000, simulated: false }, atMs: T0 + 100 });
    // Made after the first emission's event time would be covered anyway: the analyzer checks at event time, like the local one.
    await kv.addException({ rule: 'brute', scope: 'sub', value: 'batch-job', durationMs: HOUR }, T0 - 1000);
    const excepted = mk('batch-job');
    const real = mk('mallory');
    await outputs.deliver([excepted, real], [ord(excepted), ord(real)]);
    const stored = (await readStream(nc, a.alertsStream)).map((m) => JSON.parse(m.text) as Alert);
    assert.deepEqual(stored.map((s) => s.value), ['mallory']);
    assert.ok(stored[0]?.decisionId?.startsWith('d-'));
    assert.equal(outputs.suppressed, 1);
    assert.deepEqual((await kv.list()).map((d) => d.value), ['mallory']);
    kv.close();
  });

  test('a watching gateway drops rule decisions an exception covers, keeps earlier and manual ones, and applies a new exception at once', async () => {
    const cfg = config();
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    const now = Date.now();
    const earlier = ruleDecision({ id: 'd-early', value: 'early', createdAt: iso(now - 60_000), expiresAt: iso(now + HOUR) });
    const raced = ruleDecision({ id: 'd-raced', value: 'raced', createdAt: iso(now + 10), expiresAt: iso(now + HOUR) });
    await kv.put(earlier);
    await kv.put({ ...ruleDecision({ id: 'd-manual', value: 'raced', origin: 'manual', createdAt: iso(now + 10), expiresAt: iso(now + HOUR) }), scope: 'jti' });
    const table = new QuarantineTable();
    const cacheFile = path.join(root, `kv-cache-${n}.json`);
    const watch = await watchDecisionsKv({ connection: nc, bucket: cfg.decisionsBucket, table, cacheFile });
    assert.ok(table.match({ sub: 'early' }, now + 1000), 'no exception yet: enforced');
    // The exceptions the replica would have honoured had it seen them in time …
    await kv.addException({ rule: '*', scope: 'sub', value: 'raced', durationMs: HOUR }, now);
    await kv.addException({ rule: 'brute-force', scope: 'sub', value: 'early', durationMs: HOUR }, now);
    // … and the decision it wrote a moment later anyway, for an event inside the exception.
    await kv.put(raced);
    const seenInCache = (): boolean => {
      try {
        return (JSON.parse(readFileSync(cacheFile, 'utf8')) as { decisions: Decision[] }).decisions.some((d) => d.id === 'd-raced');
      } catch {
        return false;
      }
    };
    await eventually(() => seenInCache(), 'the gateway to see the raced decision', 2000);
    assert.equal(table.match({ sub: 'raced' }, now + 1000), undefined, 'stored after the exception, for an event it covers: not enforced');
    assert.equal(table.match({ sub: 'early' }, now + 1000)?.id, 'd-early', 'a decision in force before the exception stays');
    assert.equal(table.match({ jti: 'raced' }, now + 1000)?.id, 'd-manual', 'manual decisions are never excepted');
    // A gateway restarting from the cache file honours the exceptions too.
    await watch.close();
    const cached = JSON.parse((await import('node:fs')).readFileSync(cacheFile, 'utf8')) as { exceptions: Exception[] };
    assert.equal(cached.exceptions.length, 2);
    const offline = new QuarantineTable();
    const w2 = await watchDecisionsKv({ connection: new Promise(() => {}), bucket: cfg.decisionsBucket, table: offline, cacheFile, initialWaitMs: 50 });
    assert.equal(offline.match({ sub: 'raced' }, now + 1000), undefined);
    assert.equal(offline.match({ sub: 'early' }, now + 1000)?.id, 'd-early');
    await w2.close();
    kv.close();
  });

  test('analyzer replicas raise nothing and quarantine nothing for an excepted identity, and everything for the others', async () => {
    const cfg = config();
    const dir = path.join(root, `audit-${n}`);
    const writer = new AuditWriter({ dir, segmentBytes: 1 << 20, fsyncInterval: 50, checkpointInterval: 1000, queueLimit: 100_000 });
    await writer.open();
    for (let i = 0; i < 120; i++) writer.append(testEvent(i, { timeMs: T0 + i * 37, who: i % 3 === 0 ? 0 : 1, deny: true }));
    await writer.close();
    await ensureAuditStream(await jetstreamManager(nc), auditStreamSpec(cfg));
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    // who 0 is spiffe://…/svc-0; who 1 is the token subject user-1.
    await kv.addException({ rule: '*', scope: 'spiffe', value: 'spiffe://mesh.local/ns/default/sa/svc-0', durationMs: 24 * HOUR }, T0 - 1000);
    const shipper = new Shipper({ connect: () => shipperConnection(nats), dir, cursorFile: path.join(dir, 'nats-cursor.json'), stream: cfg.stream, subjectPrefix: cfg.subjectPrefix, service: cfg.service, partitions: cfg.partitions, maxAckPending: 512, ackTimeoutMs: 1000 });
    shipper.start();
    await shipper.waitFor(120);
    await shipper.stop();
    let records = 0;
    for await (const r of readAuditEvents(dir)) { void r; records++; }
    assert.equal(records, 120);
    const replica = await runNatsAnalyzer({ nats: cfg, connection: nc, replicaId: 'x', engineFactory: () => new CountingEngine({ threshold: 5, quarantineMs: HOUR }) });
    await eventually(() => replica.stats().processed >= 120, 'the replica to process every event');
    await replica.stop();
    const alerts = (await readStream(nc, cfg.analyzer.alertsStream)).map((m) => JSON.parse(m.text) as Alert);
    assert.ok(alerts.length > 0);
    assert.deepEqual(new Set(alerts.map((a) => a.value)), new Set(['user-1']));
    assert.deepEqual((await kv.list()).map((d) => d.value), ['user-1']);
    assert.equal(await (await openDecisionsBucket(nc, cfg.decisionsBucket)).get(decisionKey('spiffe', 'spiffe://mesh.local/ns/default/sa/svc-0', false)), null);
    kv.close();
  });

  async function cli(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (b: Buffer) => { out += b.toString(); });
    stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const io: CliIO = { stdout, stderr, env: {}, cwd };
    const code = await main(argv, io);
    return { code, stdout: out, stderr: err };
  }

  test('meshgate decisions list, add, except and delete operate on the bucket when the config has audit.sink.nats', async () => {
    const cfg = config();
    const cwd = path.join(root, `cli-${n}`);
    (await import('node:fs')).mkdirSync(cwd, { recursive: true });
    const yaml = (servers: string): string => `upstream: { url: "http://127.0.0.1:8080" }
tls: { cert: c.crt, key: c.key, clientCa: ca.crt, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes: [{ match: { pathPrefix: / }, auth: none }]
audit: { dir: audit, sink: { nats: { servers: ["${servers}"], service: orders, decisionsBucket: ${cfg.decisionsBucket} } } }
analyzer: { enabled: false }
`;
    writeFileSync(path.join(cwd, 'meshgate.yaml'), yaml(nats.url));
    const add = await cli(['decisions', 'add', '--scope', 'sub', '--value', 'mallory', '--duration', '1h', '--reason', 'INC-9', '--json'], cwd);
    assert.equal(add.code, 0, add.stderr);
    const d = JSON.parse(add.stdout) as Decision;
    assert.equal(d.origin, 'manual');
    const kv = new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
    assert.deepEqual((await kv.list()).map((e) => e.id), [d.id], 'the decision is in the bucket');
    const ex = await cli(['decisions', 'except', '--rule', 'brute-force', '--scope', 'sub', '--value', 'batch-job', '--duration', '2h', '--note', 'nightly', '--json'], cwd);
    assert.equal(ex.code, 0, ex.stderr);
    const x = JSON.parse(ex.stdout) as Exception;
    assert.deepEqual((await kv.exceptions()).map((e) => e.id), [x.id]);
    const list = await cli(['decisions', 'list', '--json'], cwd);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { decisions: Decision[]; exceptions: Exception[] };
    assert.deepEqual(listed.decisions.map((e) => e.id), [d.id]);
    assert.deepEqual(listed.exceptions.map((e) => e.note), ['nightly']);
    const table = await cli(['decisions', 'list'], cwd);
    assert.match(table.stdout, new RegExp(`${d.id}\\s+sub\\s+mallory\\s+enforced`));
    assert.match(table.stdout, /exceptions:/);
    assert.equal((await cli(['decisions', 'delete', x.id], cwd)).code, 0);
    const del = await cli(['decisions', 'delete', d.id], cwd);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /deleted decision d-/);
    assert.deepEqual(await kv.list(), []);
    assert.deepEqual(await kv.exceptions(), []);
    assert.equal((await cli(['decisions', 'delete', d.id], cwd)).code, 1, 'an unknown id fails with 1');
    // --dir still means the local decisions.json.
    const local = await cli(['decisions', 'add', '--dir', 'state', '--scope', 'ip', '--value', '192.0.2.1', '--duration', '1h'], cwd);
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(await kv.list(), []);
    // An unreachable NATS is reported (exit 2), not waited for forever, and names no secret.
    writeFileSync(path.join(cwd, 'meshgate.yaml'), yaml('nats://127.0.0.1:1'));
    const down = await cli(['decisions', 'list'], cwd);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
    kv.close();
  });
});
