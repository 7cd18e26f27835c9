import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { AlertsLog, emissionKey, readAlertLines } from '../../src/analyzer/sinks/alerts-log.ts';
import { createLogSink } from '../../src/analyzer/sinks/log-sink.ts';
import type { Alert } from '../../src/analyzer/types.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-alerts-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function alert(i: number, over: Partial<Alert> = {}): Alert {
  return {
    v: 1, id: `al-${i}`, rule: 'token-replay', severity: 'critical', title: 'Token replay', scope: 'jti', value: `jti-${i}`,
    firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-01T00:01:00.000Z', count: 2, evidence: ['e1', 'e2'], summary: 'one jti from 2 certificates', ...over,
  };
}

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

test('alerts.jsonl gets one JSON line per emission; flush makes it durable and offset is the file length', async (t) => {
  const dir = tmp(t);
  const log = await AlertsLog.open(dir, { fsyncIntervalMs: 0 });
  log.emit(alert(1));
  log.emit(alert(2, { decisionId: 'd-1' }));
  await log.flush();
  const file = path.join(dir, 'alerts.jsonl');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [alert(1), alert(2, { decisionId: 'd-1' })]);
  assert.equal(log.offset, fs.statSync(file).size);
  assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
  assert.deepEqual(log.stats(), { emitted: 2, delivered: 2, failed: 0, dropped: 0, queued: 0 });
  await log.close();
});

test('reopening cuts a torn last line (crash mid-append) and appends after the last complete one', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'alerts.jsonl');
  fs.writeFileSync(file, `${JSON.stringify(alert(1))}\n{"v":1,"id":"al-2","ru`);
  const log = await AlertsLog.open(dir);
  assert.equal(log.offset, JSON.stringify(alert(1)).length + 1);
  log.emit(alert(3));
  await log.close();
  assert.deepEqual((await collect(readAlertLines(file))).map((l) => l.alert.id), ['al-1', 'al-3']);
});

test('readAlertLines starts at a byte offset, skips lines that are not alerts and counts them', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'alerts.jsonl');
  const first = `${JSON.stringify(alert(1))}\n`;
  fs.writeFileSync(file, `${first}not json\n{"id":"x"}\n${JSON.stringify(alert(2))}\n${JSON.stringify(alert(3)).slice(0, 20)}`);
  const counter = { skipped: 0 };
  const got = await collect(readAlertLines(file, Buffer.byteLength(first), counter));
  assert.deepEqual(got.map((l) => l.alert.id), ['al-2']);
  assert.equal(counter.skipped, 3);
  assert.deepEqual(await collect(readAlertLines(path.join(dir, 'missing.jsonl'))), []);
});

test('the emission key tells a re-emitted alert from an update of the same alert', () => {
  assert.equal(emissionKey(alert(1)), emissionKey(alert(1, { summary: 'other text', decisionId: 'd-1' })));
  assert.notEqual(emissionKey(alert(1)), emissionKey(alert(1, { count: 3 })));
  assert.notEqual(emissionKey(alert(1)), emissionKey(alert(1, { lastSeen: '2026-01-01T00:02:00.000Z' })));
});

test('the log sink writes alerts at warn level with their fields and nothing from the audit events', () => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }));
  createLogSink(logger).emit(alert(7, { decisionId: 'd-9' }));
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0] as string) as { level: number; msg: string; alert: Record<string, unknown> };
  assert.equal(rec.level, 40);
  assert.match(rec.msg, /^alert token-replay: /);
  assert.equal(rec.alert['id'], 'al-7');
  assert.equal(rec.alert['decisionId'], 'd-9');
  assert.equal(rec.alert['evidence'], 2, 'only the evidence count, not the ids');
});
