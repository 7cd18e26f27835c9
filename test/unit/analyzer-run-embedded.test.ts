import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AuditWriter } from '../../src/audit/writer.ts';
import { startEmbeddedAnalyzer } from '../../src/analyzer/embedded.ts';
import { createEngineFromRules } from '../../src/analyzer/engine-factory.ts';
import { AnalyzerService } from '../../src/analyzer/service.ts';
import { parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { readDecisionsFile } from '../../src/decisions/decisions-file.ts';
import { watchQuarantine } from '../../src/decisions/watch-quarantine.ts';
import { auditEvent } from './analyzer-run-fake-engine.ts';

const RULES = `version: 1
rules:
  - name: test-brute
    title: Brute force by one subject
    severity: high
    description: five denied requests by one token subject within a minute
    kind: threshold
    filter: { decision: deny }
    groupBy: sub
    window: 1m
    count: 5
    remediation: { duration: 10m, simulated: false }
`;

function setup(t: { after: (fn: () => void) => void }, rules = RULES): { root: string; cfg: Config } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-embedded-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'detections.yaml'), rules);
  const cfg = parseConfigText(`
upstream: { url: "http://127.0.0.1:8080" }
tls: { cert: c.crt, key: c.key, clientCa: ca.crt, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes: [{ match: { pathPrefix: / }, auth: none }]
audit: { dir: audit }
log: { level: silent }
analyzer: { rules: detections.yaml }
`, { baseDir: root, env: {} });
  return { root, cfg };
}

async function openWriter(dir: string): Promise<AuditWriter> {
  const w = new AuditWriter({ dir, segmentBytes: 1024 * 1024, fsyncInterval: 50, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  return w;
}

const until = async (cond: () => boolean | Promise<boolean>): Promise<void> => {
  // Bounded by the test runner's timeout; no timing assertion.
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
};

test('the embedded analyzer runs the rule engine in a worker; its quarantine reaches the gateway table through decisions.json', { timeout: 20_000 }, async (t) => {
  const { cfg } = setup(t);
  assert.equal(cfg.analyzer.dir, path.join(cfg.audit.dir, 'analyzer'));
  const writer = await openWriter(cfg.audit.dir);
  t.after(() => void writer.close().catch(() => {}));
  const analyzer = await startEmbeddedAnalyzer(cfg, { statsIntervalMs: 50, pollMs: 50 });
  let stopped = false;
  t.after(async () => { if (!stopped) await analyzer.stop(); });
  assert.equal(analyzer.status().ready, true);
  const gate = await watchQuarantine(analyzer.decisionsFile);
  t.after(() => gate.close());
  // The gateway keeps serving; mallory fails five times within seconds (event time = now).
  const now = Date.now();
  for (let i = 1; i <= 8; i++) {
    writer.append(auditEvent(i, { time: new Date(now + i).toISOString(), principal: { iss: 'https://issuer', sub: i <= 5 ? 'mallory' : 'alice' }, decision: 'deny', reason: 'jwt_bad_signature', status: 401 }));
  }
  await writer.flush();
  await until(() => gate.table.match({ sub: 'mallory' }, Date.now()) !== undefined);
  const d = gate.table.match({ sub: 'mallory' }, Date.now());
  assert.equal(d?.origin, 'test-brute');
  assert.equal(d?.scope, 'sub');
  assert.equal(gate.table.match({ sub: 'alice' }, Date.now()), undefined);
  await until(() => (analyzer.stats().analyzer?.eventsProcessed ?? 0) === 8);
  const s = analyzer.stats().analyzer;
  assert.equal(s?.alerts, 1);
  assert.equal(s?.decisions, 1);
  await analyzer.stop();
  stopped = true;
  const cursor = JSON.parse(fs.readFileSync(path.join(analyzer.stateDir, 'cursor.json'), 'utf8')) as { seq: number; engineState: unknown };
  assert.equal(cursor.seq, 8);
  assert.ok(cursor.engineState !== null && typeof cursor.engineState === 'object');
  const alerts = fs.readFileSync(path.join(analyzer.stateDir, 'alerts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rule: string; value: string; decisionId?: string });
  assert.equal(alerts[0]?.rule, 'test-brute');
  assert.equal(alerts[0]?.value, 'mallory');
  assert.equal(alerts[0]?.decisionId, d?.id);
});

test('a rules file with errors makes the embedded analyzer fail to start, naming the file', { timeout: 20_000 }, async (t) => {
  const { cfg } = setup(t, 'version: 1\nrules:\n  - name: Bad Name\n    kind: nope\n');
  await assert.rejects(startEmbeddedAnalyzer(cfg), /could not start: .*detections\.yaml/);
});

test('the live service with the real engine resumes across a restart without a second alert', async (t) => {
  const { root } = setup(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  const rules = path.join(root, 'detections.yaml');
  const writer = await openWriter(audit);
  const base = Date.UTC(2026, 0, 1);
  // Three failures, restart, then two more: the 5th failure must still fire, once.
  for (let i = 1; i <= 3; i++) writer.append(auditEvent(i, { time: new Date(base + i * 1000).toISOString(), principal: { iss: 'i', sub: 'eve' }, decision: 'deny' }));
  await writer.flush();
  let svc = await AnalyzerService.start({ auditDirs: [audit], stateDir: state, engine: await createEngineFromRules(rules), pollMs: 25 });
  await svc.whenProcessed(3);
  await svc.stop();
  for (let i = 4; i <= 9; i++) writer.append(auditEvent(i, { time: new Date(base + i * 1000).toISOString(), principal: { iss: 'i', sub: 'eve' }, decision: 'deny' }));
  // A later event closes eve's alert window: the engine emits the final update (same id).
  writer.append(auditEvent(10, { time: new Date(base + 300_000).toISOString(), principal: { iss: 'i', sub: 'bob' }, decision: 'allow' }));
  await writer.close();
  svc = await AnalyzerService.start({ auditDirs: [audit], stateDir: state, engine: await createEngineFromRules(rules), pollMs: 25 });
  await svc.whenProcessed(10);
  await svc.stop();
  const lines = fs.readFileSync(path.join(state, 'alerts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; rule: string; count: number; decisionId?: string });
  assert.equal(lines.length, 2, 'fired once, updated once when the window closed');
  assert.equal(lines[0]?.rule, 'test-brute');
  assert.equal(lines[1]?.id, lines[0]?.id);
  assert.equal(lines[1]?.count, 9);
  const ds = (await readDecisionsFile(path.join(state, 'decisions.json'))).decisions;
  assert.equal(ds.length, 1);
  assert.equal(lines[0]?.decisionId, ds[0]?.id);
  assert.equal(lines[1]?.decisionId, ds[0]?.id, 'the update still names the decision');
  assert.equal(ds[0]?.value, 'eve');
  assert.equal(ds[0]?.expiresAt, new Date(base + 5000 + 600_000).toISOString(), 'expiry counts from the event time of the 5th failure');
});

test('a worker that fails is restarted from its cursor and catches up once the fault is fixed', { timeout: 20_000 }, async (t) => {
  const { cfg } = setup(t);
  const writer = await openWriter(cfg.audit.dir);
  t.after(() => void writer.close().catch(() => {}));
  const analyzer = await startEmbeddedAnalyzer(cfg, { statsIntervalMs: 50, pollMs: 50, restartDelayMs: 50 });
  t.after(() => analyzer.stop());
  // A damaged decisions file: ordering the quarantine fails, so the worker stops rather than lose it.
  fs.writeFileSync(analyzer.decisionsFile, '{"v":1,');
  const now = Date.now();
  for (let i = 1; i <= 5; i++) writer.append(auditEvent(i, { time: new Date(now + i).toISOString(), principal: { iss: 'i', sub: 'trudy' }, decision: 'deny' }));
  await writer.flush();
  await until(() => analyzer.stats().restarts >= 2);
  assert.match(analyzer.status().lastError ?? '', /decisions\.json/);
  fs.rmSync(analyzer.decisionsFile);
  await until(async () => (await readDecisionsFile(analyzer.decisionsFile)).decisions.some((d) => d.value === 'trudy'));
  await until(() => analyzer.status().ready);
  const lines = fs.readFileSync(path.join(analyzer.stateDir, 'alerts.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 1, 'the alert was raised once across the restarts');
});
