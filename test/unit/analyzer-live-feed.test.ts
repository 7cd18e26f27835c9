import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { AuditRecord } from '../../src/audit/event.ts';
import { AuditWriter, type WrittenRecords } from '../../src/audit/writer.ts';
import { followLive, LiveChunks } from '../../src/analyzer/live-feed.ts';
import { auditEvent } from './analyzer-run-fake-engine.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-live-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function writer(dir: string): Promise<AuditWriter> {
  const w = new AuditWriter({ dir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  return w;
}

/** Collects records from the follower until `n` arrived (then aborts it). */
async function collect(it: AsyncGenerator<AuditRecord[]>, n: number, ac: AbortController): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const b of it) {
    out.push(...b);
    if (out.length >= n) break;
  }
  ac.abort();
  return out;
}

const seqs = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => i + from);

test('records handed over after each write reach the follower in seq order, each once', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  const live = new LiveChunks();
  const chunks: WrittenRecords[] = [];
  w.onWritten((c) => { chunks.push(c); live.push({ ...c, bytes: new Uint8Array(c.bytes) }); });
  const ac = new AbortController();
  const got = collect(followLive(dir, live, { signal: ac.signal, pollMs: 50 }), 90, ac);
  for (let i = 1; i <= 90; i++) {
    w.append(auditEvent(i));
    if (i % 30 === 0) await w.flush();
  }
  await w.close();
  const recs = await got;
  assert.deepEqual(recs.map((r) => r.seq), seqs(90));
  assert.equal(recs[89]?.requestId, 'req-90');
  assert.ok(chunks.length >= 3, 'the writer announced every write');
  // Contiguous ranges: each write starts right after the previous one.
  chunks.forEach((c, i) => assert.equal(c.firstSeq, i === 0 ? 1 : (chunks[i - 1] as WrittenRecords).lastSeq + 1));
  assert.equal(chunks.at(-1)?.lastSeq, 90);
});

test('records written before the first chunk (a restart from the cursor) are read from the files first', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  for (let i = 1; i <= 50; i++) w.append(auditEvent(i));
  await w.flush();
  const live = new LiveChunks();
  w.onWritten((c) => live.push({ ...c, bytes: new Uint8Array(c.bytes) }));
  const ac = new AbortController();
  // The analyzer resumes after seq 10: 11..50 come from disk, 51..70 from memory.
  const got = collect(followLive(dir, live, { fromSeq: 11, signal: ac.signal, pollMs: 50 }), 60, ac);
  for (let i = 51; i <= 70; i++) w.append(auditEvent(i));
  await w.close();
  const recs = await got;
  assert.deepEqual(recs.map((r) => r.seq), seqs(60, 11));
});

test('chunks dropped while the consumer is behind are read back from the log, with nothing lost or repeated', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  // Room for about one write's worth: pushing several writes before the consumer runs drops the oldest.
  const live = new LiveChunks(2000);
  w.onWritten((c) => live.push({ ...c, bytes: new Uint8Array(c.bytes) }));
  for (let round = 0; round < 6; round++) {
    for (let i = 1; i <= 10; i++) w.append(auditEvent(round * 10 + i));
    await w.flush();
  }
  assert.ok(live.dropped > 0, 'the bound dropped chunks');
  const ac = new AbortController();
  const got = collect(followLive(dir, live, { signal: ac.signal, pollMs: 50 }), 80, ac);
  for (let i = 61; i <= 80; i++) w.append(auditEvent(i));
  await w.close();
  const recs = await got;
  assert.deepEqual(recs.map((r) => r.seq), seqs(80));
});

test('a chunk that repeats records already yielded is skipped, and abort ends the follower', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  const live = new LiveChunks();
  const seen: WrittenRecords[] = [];
  w.onWritten((c) => { seen.push({ ...c, bytes: Buffer.from(c.bytes) }); live.push({ ...c, bytes: new Uint8Array(c.bytes) }); });
  for (let i = 1; i <= 5; i++) w.append(auditEvent(i));
  await w.flush();
  // The same records handed over twice (e.g. a resend): the second copy must not be processed again.
  const first = seen[0] as WrittenRecords;
  live.push({ ...first, bytes: new Uint8Array(first.bytes) });
  for (let i = 6; i <= 8; i++) w.append(auditEvent(i));
  await w.flush();
  const ac = new AbortController();
  const out: number[] = [];
  const it = followLive(dir, live, { signal: ac.signal, pollMs: 50 });
  const done = (async () => { for await (const b of it) out.push(...b.map((r) => r.seq)); })();
  while (out.length < 8) await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  await done;
  assert.deepEqual(out, seqs(8));
  await w.close();
});

test('a listener that throws does not stop the log being written', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  w.onWritten(() => { throw new Error('listener bug'); });
  for (let i = 1; i <= 3; i++) w.append(auditEvent(i));
  await w.close();
  assert.equal(w.stats().lastSeq, 3);
  assert.equal(w.stats().dropped, 0);
});

test('records already in the log are processed without waiting for new traffic', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  for (let i = 1; i <= 25; i++) w.append(auditEvent(i));
  await w.close();
  // Nothing will ever be handed over: the tail check must find the 25 written records.
  const live = new LiveChunks();
  const ac = new AbortController();
  const recs = await collect(followLive(dir, live, { signal: ac.signal, pollMs: 30 }), 25, ac);
  assert.deepEqual(recs.map((r) => r.seq), seqs(25));
});

test('working off a backlog of chunks lets the event loop turn (port messages, stop), rather than running on microtasks alone', async (t) => {
  const dir = path.join(tmp(t), 'audit');
  const w = await writer(dir);
  const live = new LiveChunks();
  w.onWritten((c) => live.push({ ...c, bytes: new Uint8Array(c.bytes) }));
  for (let i = 1; i <= 50; i++) {
    w.append(auditEvent(i));
    await w.flush(); // one chunk per record: a backlog of 50 chunks
  }
  let turned = false;
  setImmediate(() => { turned = true; });
  const ac = new AbortController();
  let sawTurnBeforeEnd = false;
  let n = 0;
  for await (const b of followLive(dir, live, { signal: ac.signal, pollMs: 1000 })) {
    n += b.length;
    if (n < 50 && turned) sawTurnBeforeEnd = true;
    if (n >= 50) break;
  }
  ac.abort();
  await w.close();
  assert.ok(sawTurnBeforeEnd, 'the event loop ran while the backlog was being worked off');
});
