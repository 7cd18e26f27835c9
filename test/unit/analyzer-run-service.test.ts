import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { AuditRecord } from '../../src/audit/event.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { readCursor } from '../../src/analyzer/cursor.ts';
import { AnalyzerService, type AnalyzerServiceOptions } from '../../src/analyzer/service.ts';
import type { Alert, DetectionEngine } from '../../src/analyzer/types.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { readDecisionsFile } from '../../src/decisions/decisions-file.ts';
import { auditEvent, createFakeEngine, FAKE_RULE } from './analyzer-run-fake-engine.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-analyzer-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function writeLog(dir: string, from: number, to: number, over: (i: number) => object = () => ({})): Promise<void> {
  const w = new AuditWriter({ dir, segmentBytes: 16 * 1024, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  for (let i = from; i <= to; i++) w.append(auditEvent(i, over(i)));
  await w.close();
}

const alertsOf = (stateDir: string): Alert[] => {
  const f = path.join(stateDir, 'alerts.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
};

function start(auditDir: string | string[], stateDir: string, engine: DetectionEngine, over: Partial<AnalyzerServiceOptions> = {}): Promise<AnalyzerService> {
  return AnalyzerService.start({ auditDirs: Array.isArray(auditDir) ? auditDir : [auditDir], stateDir, engine, pollMs: 25, ...over });
}

/** What an uninterrupted run over events 1..n produces. */
async function uninterrupted(root: string, auditDir: string, n: number): Promise<{ alerts: Alert[]; decisionIds: string[] }> {
  const state = path.join(root, 'reference-state');
  const svc = await start(auditDir, state, createFakeEngine());
  await svc.whenProcessed(n);
  await svc.stop();
  return { alerts: alertsOf(state), decisionIds: (await readDecisionsFile(path.join(state, 'decisions.json'))).decisions.map((d) => d.id).sort() };
}

test('the service raises the engine alerts into alerts.jsonl, orders quarantines and links them to the alert', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 120);
  const svc = await start(audit, state, createFakeEngine());
  await svc.whenProcessed(120);
  await svc.stop();
  // Reference: the same engine run directly over the records.
  const engine = createFakeEngine();
  const expected: Alert[] = [];
  const ordered = new Set<string>();
  for await (const r of readAuditEvents(audit)) {
    const out = engine.process(r);
    expected.push(...out.alerts);
    for (const o of out.remediations) ordered.add(o.alertId);
  }
  const got = alertsOf(state);
  assert.equal(got.length, expected.length);
  assert.ok(got.length > 10);
  assert.deepEqual(got.map((a) => a.id), expected.map((a) => a.id));
  const decisions = (await readDecisionsFile(path.join(state, 'decisions.json'))).decisions;
  // Orders while a subject is quarantined find the active decision; later ones escalate.
  assert.deepEqual([...new Set(decisions.map((d) => d.value))].sort(), ['user-0', 'user-1', 'user-2', 'user-3']);
  for (const sub of ['user-0', 'user-1', 'user-2', 'user-3']) {
    assert.deepEqual(decisions.filter((d) => d.value === sub).map((d) => d.offence), [1, 2], sub);
  }
  for (const a of got) {
    if (ordered.has(a.id)) assert.ok(decisions.some((d) => d.id === a.decisionId), `alert ${a.id} names its decision`);
    else assert.equal(a.decisionId, undefined);
  }
  const s = svc.stats();
  assert.equal(s.eventsProcessed, 120);
  assert.equal(s.alerts, got.length);
  assert.equal(s.decisions, decisions.length);
  assert.equal(s.running, false);
  const cursor = await readCursor(state);
  assert.equal(cursor?.seq, 120);
  assert.equal(cursor?.alertsOffset, fs.statSync(path.join(state, 'alerts.jsonl')).size);
});

test('stop halfway and restart: the result equals an uninterrupted run (nothing skipped, nothing raised twice)', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 150);
  const first = await start(audit, state, createFakeEngine());
  await first.whenProcessed(150);
  await first.stop();
  await writeLog(audit, 151, 300);
  const engine = createFakeEngine();
  const second = await start(audit, state, engine);
  await second.whenProcessed(300);
  await second.stop();
  assert.equal(engine.processed, 150, 'the restart processed only the new half');
  const ref = await uninterrupted(root, audit, 300);
  assert.deepEqual(alertsOf(state), ref.alerts);
  assert.deepEqual((await readDecisionsFile(path.join(state, 'decisions.json'))).decisions.map((d) => d.id).sort(), ref.decisionIds);
  assert.equal(second.stats().alertsDeduplicated, 0);
});

test('killed without stop: only events after the last cursor are re-processed and their alerts are not raised twice', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 500);
  // A separate process we can SIGKILL: cursor every 150 events, never by time.
  const url = (p: string): string => JSON.stringify(pathToFileURL(path.resolve(p)).href);
  const code = `
    import fs from 'node:fs';
    const { AnalyzerService } = await import(${url('src/analyzer/service.ts')});
    const { createFakeEngine } = await import(${url('test/unit/analyzer-run-fake-engine.ts')});
    const [audit, state] = process.argv.slice(1);
    const svc = await AnalyzerService.start({ auditDirs: [audit], stateDir: state, engine: createFakeEngine(), checkpointEvery: 150, checkpointIntervalMs: 3600000, pollMs: 25 });
    await svc.whenProcessed(500);
    // Wait until alerts raised after the last cursor are in alerts.jsonl (written, not necessarily fsynced).
    for (;;) {
      const c = JSON.parse(fs.readFileSync(state + '/cursor.json', 'utf8'));
      if (fs.statSync(state + '/alerts.jsonl').size > c.alertsOffset) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, audit, state], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => { if (b.toString().includes('ready')) resolve(); });
    child.on('exit', (c) => reject(new Error(`child exited with ${c}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const cursor = await readCursor(state);
  assert.equal(cursor?.seq, 450, 'the last cursor was written at 450');
  fs.rmSync(path.join(state, 'LOCK'), { force: true }); // a killed process leaves its lock (taken over anyway: its pid is dead)
  const engine = createFakeEngine();
  const svc = await start(audit, state, engine);
  await svc.whenProcessed(500);
  await svc.stop();
  assert.equal(engine.processed, 50, 'only the 50 records after the cursor were processed again');
  assert.ok(svc.stats().alertsDeduplicated > 0, 'alerts already raised were recognised');
  const ref = await uninterrupted(root, audit, 500);
  // Same lines in the same order as a run that never crashed: none missing, none twice.
  assert.deepEqual(alertsOf(state), ref.alerts);
  assert.deepEqual((await readDecisionsFile(path.join(state, 'decisions.json'))).decisions.map((d) => d.id).sort(), ref.decisionIds);
});

test('an exception suppresses the alerts and the quarantine of its rule and identity', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 100);
  const store = await DecisionStore.open(state);
  await store.addException({ rule: FAKE_RULE, scope: 'sub', value: 'user-1', durationMs: 3_600_000, note: 'pen test' }, { at: Date.UTC(2026, 0, 1) });
  const svc = await start(audit, state, createFakeEngine());
  await svc.whenProcessed(100);
  await svc.stop();
  const alerts = alertsOf(state);
  assert.ok(alerts.length > 0);
  assert.ok(alerts.every((a) => a.value !== 'user-1'));
  const decisions = await store.list({ includeExpired: true });
  assert.ok(decisions.decisions.every((d) => d.value !== 'user-1'));
  assert.ok(decisions.decisions.some((d) => d.value === 'user-2'));
  assert.ok(svc.stats().alertsSuppressed > 0);
  assert.ok(svc.stats().remediationsExcepted > 0);
});

test('simulated remediations are recorded as simulated decisions', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 40);
  const svc = await start(audit, state, createFakeEngine({ simulated: true }));
  await svc.whenProcessed(40);
  await svc.stop();
  const ds = (await readDecisionsFile(path.join(state, 'decisions.json'))).decisions;
  assert.ok(ds.length > 0);
  assert.ok(ds.every((d) => d.simulated));
});

test('several audit dirs are followed; the cursor keeps a position per dir and a restart resumes each', async (t) => {
  const root = tmp(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  const state = path.join(root, 'state');
  await writeLog(a, 1, 30);
  await writeLog(b, 1, 20, () => ({ principal: { iss: 'i', sub: 'svc-b' } }));
  const svc = await start([a, b], state, createFakeEngine());
  await Promise.all([svc.whenProcessed(30, a), svc.whenProcessed(20, b)]);
  await svc.stop();
  assert.deepEqual((await readCursor(state))?.dirs, { [a]: 30, [b]: 20 });
  await writeLog(b, 21, 25, () => ({ principal: { iss: 'i', sub: 'svc-b' } }));
  const engine = createFakeEngine();
  const again = await start([a, b], state, engine);
  await again.whenProcessed(25, b);
  await again.stop();
  assert.equal(engine.processed, 5);
  assert.equal(alertsOf(state).filter((x) => x.value === 'svc-b').length, Math.floor(25 * 4 / 5 / 3));
});

test('a record the engine throws on is skipped and counted; analysis goes on', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  await writeLog(audit, 1, 30);
  const inner = createFakeEngine();
  const engine: DetectionEngine = {
    process: (r: AuditRecord) => {
      if (r.seq === 7) throw new Error('boom');
      return inner.process(r);
    },
    snapshot: () => inner.snapshot(),
    restore: (s) => inner.restore(s),
  };
  const svc = await start(audit, path.join(root, 'state'), engine);
  await svc.whenProcessed(30);
  await svc.stop();
  assert.equal(svc.stats().engineErrors, 1);
  assert.equal(svc.stats().eventsProcessed, 30);
  assert.equal(inner.processed, 29);
});

test('a second analyzer on the same state dir is refused', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  const state = path.join(root, 'state');
  await writeLog(audit, 1, 3);
  const svc = await start(audit, state, createFakeEngine());
  try {
    await assert.rejects(start(audit, state, createFakeEngine()), /state dir .* is in use/);
  } finally {
    await svc.stop();
  }
});

test('stats report the lag behind the audit log while catching up, and none once caught up', async (t) => {
  const root = tmp(t);
  const audit = path.join(root, 'audit');
  await writeLog(audit, 1, 400);
  const inner = createFakeEngine();
  const slow: DetectionEngine = {
    process: (r) => {
      const until = performance.now() + 1;
      while (performance.now() < until) { /* a slow engine */ }
      return inner.process(r);
    },
    snapshot: () => inner.snapshot(),
    restore: (s) => inner.restore(s),
  };
  const svc = await start(audit, path.join(root, 'state'), slow, { batchSize: 10 });
  await svc.whenProcessed(50);
  await svc.refreshLag();
  const mid = svc.stats();
  assert.ok(mid.lagEvents > 0 && mid.lagEvents < 400, `lag ${mid.lagEvents}`);
  assert.ok(mid.lagSeconds > 0);
  await svc.whenProcessed(400);
  await svc.refreshLag();
  assert.equal(svc.stats().lagEvents, 0);
  assert.equal(svc.stats().lagSeconds, 0);
  await svc.stop();
});
