import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { GENESIS_HASH, sealRecord, segmentFileName } from '../../src/audit/chain.ts';
import type { AuditRecord } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { latestRecord } from '../../src/analyzer/audit-tail.ts';
import { followAudit } from '../../src/analyzer/follow.ts';
import { auditEvent, T0 } from './analyzer-run-fake-engine.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-follow-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function writer(dir: string, segmentBytes = 4096): Promise<AuditWriter> {
  const w = new AuditWriter({ dir, segmentBytes, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  return w;
}

/** Collects `n` records from the follower, then aborts it. */
async function take(it: AsyncGenerator<AuditRecord>, n: number, ac: AbortController): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  if (n === 0) return out;
  for await (const r of it) {
    out.push(r);
    if (out.length === n) break;
  }
  ac.abort();
  return out;
}

test('the follower yields every record across segments in seq order, then the ones appended while it waits', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  for (let i = 1; i <= 60; i++) w.append(auditEvent(i));
  await w.flush();
  assert.ok(fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length > 2, 'the log spans several segments');
  const ac = new AbortController();
  const it = followAudit(dir, { signal: ac.signal, pollMs: 50 });
  const got = take(it, 120, ac);
  // Appended after the follower reached the end: it must wait for them, across new segments.
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 61; i <= 120; i++) w.append(auditEvent(i));
  await w.close();
  const recs = await got;
  assert.deepEqual(recs.map((r) => r.seq), Array.from({ length: 120 }, (_, i) => i + 1));
  assert.equal(recs[59]?.requestId, 'req-60');
  assert.equal(recs[119]?.requestId, 'req-120');
});

test('fromSeq starts in the middle of the log, in the segment that holds it', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  for (let i = 1; i <= 80; i++) w.append(auditEvent(i));
  await w.close();
  const ac = new AbortController();
  const recs = await take(followAudit(dir, { fromSeq: 57, signal: ac.signal, pollMs: 50 }), 24, ac);
  assert.deepEqual(recs.map((r) => r.seq), Array.from({ length: 24 }, (_, i) => i + 57));
});

test('a partial last line is not yielded until its newline is written', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, segmentFileName(1));
  const a = sealRecord(1, GENESIS_HASH, auditEvent(1));
  const b = sealRecord(2, a.hash, auditEvent(2));
  const half = Math.floor(b.line.length / 2);
  fs.writeFileSync(file, a.line + b.line.slice(0, half));
  const ac = new AbortController();
  const it = followAudit(dir, { signal: ac.signal, pollMs: 20 });
  const first = await it.next();
  assert.equal((first.value as AuditRecord).seq, 1);
  const got: { second?: AuditRecord } = {};
  const second = (): AuditRecord | undefined => got.second;
  const pending = it.next().then((r) => { got.second = r.value as AuditRecord; });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(second(), undefined, 'half a record is never yielded');
  fs.appendFileSync(file, b.line.slice(half, -1));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(second(), undefined, 'still no newline');
  fs.appendFileSync(file, '\n');
  await pending;
  assert.equal(second()?.seq, 2);
  assert.equal(second()?.requestId, 'req-2');
  ac.abort();
  assert.equal((await it.next()).done, true);
});

test('lines that are not records are skipped and reported, the rest still flows', async (t) => {
  const dir = tmp(t);
  const a = sealRecord(1, GENESIS_HASH, auditEvent(1));
  const b = sealRecord(2, a.hash, auditEvent(2));
  fs.writeFileSync(path.join(dir, segmentFileName(1)), `${a.line}{"not":"a record"}\n${b.line}`);
  const skipped: string[] = [];
  const ac = new AbortController();
  const recs = await take(followAudit(dir, { signal: ac.signal, pollMs: 20, onSkip: (s) => skipped.push(s.reason) }), 2, ac);
  assert.deepEqual(recs.map((r) => r.seq), [1, 2]);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0] as string, /hash/);
});

test('a partial record at the end of a segment is skipped and reported once the next segment exists', async (t) => {
  const dir = tmp(t);
  const a = sealRecord(1, GENESIS_HASH, auditEvent(1));
  const b = sealRecord(2, a.hash, auditEvent(2));
  fs.writeFileSync(path.join(dir, segmentFileName(1)), `${a.line}{"seq":2,"prev":"cut by a cra`);
  fs.writeFileSync(path.join(dir, segmentFileName(2)), b.line);
  const skipped: { segment: string; offset: number; reason: string }[] = [];
  const ac = new AbortController();
  const recs = await take(followAudit(dir, { signal: ac.signal, pollMs: 20, onSkip: (s) => skipped.push(s) }), 2, ac);
  assert.deepEqual(recs.map((r) => r.seq), [1, 2]);
  assert.deepEqual(skipped, [{ segment: segmentFileName(1), offset: Buffer.byteLength(a.line), reason: 'partial record at the end of an older segment' }]);
});

test('the follower waits for an audit dir that does not exist yet, and abort ends it', async (t) => {
  const dir = path.join(tmp(t), 'later');
  const ac = new AbortController();
  const it = followAudit(dir, { signal: ac.signal, pollMs: 20 });
  const first = it.next();
  await new Promise((r) => setTimeout(r, 60));
  const w = await writer(dir);
  w.append(auditEvent(1));
  await w.close();
  assert.equal(((await first).value as AuditRecord).seq, 1);
  const rest = it.next();
  ac.abort();
  assert.equal((await rest).done, true);
});

test('latestRecord reports the seq and event time of the newest complete record', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  assert.equal(await latestRecord(dir), undefined);
  const w = await writer(dir);
  for (let i = 1; i <= 30; i++) w.append(auditEvent(i));
  await w.close();
  fs.appendFileSync(path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort().at(-1) as string), '{"seq":31,"prev":"tor');
  assert.deepEqual(await latestRecord(dir), { seq: 30, timeMs: T0 + 30_000 });
});
