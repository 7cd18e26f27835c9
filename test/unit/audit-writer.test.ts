import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { GENESIS_HASH, openRecord, recordHash } from '../../src/audit/chain.ts';
import { newEventId, type AuditEvent } from '../../src/audit/event.ts';
import { verifyAuditDir } from '../../src/audit/verify.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { AuditConfig } from '../../src/config/schema.ts';
import { ManualClock } from '../../src/core/clock.ts';

function event(i: number): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(), time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), requestId: `req-${i}`,
    source: { ip: '127.0.0.1', port: 5000 + (i % 1000) }, peer: { spiffeId: 'spiffe://mesh.local/web', fingerprint: 'ab'.repeat(32) },
    principal: { iss: 'https://issuer', sub: `user-${i % 7}` }, jti: `j-${i}`, tokenHash: 'aGFzaA', method: 'GET', path: `/orders/${i}`,
    rawPath: null, route: 'orders', decision: 'allow', reason: 'allowed', rule: 'p, user, /orders/*, GET', policyVersion: 'v1',
    status: 200, bytesIn: 10, bytesOut: 200, latencyMs: 1.5, shadow: null,
  };
}

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-audit-w-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return path.join(root, 'audit');
}

function config(dir: string, over: Partial<AuditConfig> = {}): AuditConfig {
  return { dir, segmentBytes: 64 * 1024 * 1024, fsyncInterval: 50, checkpointInterval: 60_000, queueLimit: 100_000, ...over };
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^audit-\d+\.jsonl$/.test(f)).sort();
}

function allLines(dir: string): string[] {
  return segmentFiles(dir).flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l !== ''));
}

function head(dir: string): { seq: number; hash: string; segment: string; time: string } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'HEAD.json'), 'utf8')) as { seq: number; hash: string; segment: string; time: string };
}

test('close drains every appended event: line count equals appended count and seq runs from 1', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  for (let i = 0; i < 10_000; i++) w.append(event(i));
  await w.close();
  const lines = allLines(dir);
  assert.equal(lines.length, 10_000);
  let prev = GENESIS_HASH;
  lines.forEach((l, i) => {
    const r = openRecord(l);
    assert.ok(r.ok);
    assert.equal(r.seq, i + 1);
    assert.equal(r.prev, prev);
    assert.equal(recordHash(r.prev, r.body), r.hash);
    assert.equal((r.record as { requestId: string }).requestId, `req-${i}`);
    prev = r.hash;
  });
  assert.deepEqual(w.stats(), { queued: 0, written: 10_000, segments: 1, lastSeq: 10_000, errors: 0, dropped: 0 });
  assert.deepEqual({ seq: head(dir).seq, hash: head(dir).hash, segment: head(dir).segment }, { seq: 10_000, hash: prev, segment: 'audit-000001.jsonl' });
});

test('files are private: dir 0700, segments and HEAD 0600', { skip: process.platform === 'win32' }, async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  w.append(event(1));
  await w.close();
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'audit-000001.jsonl')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'HEAD.json')).mode & 0o777, 0o600);
});

test('segments rotate at record boundaries below segmentBytes and the chain continues across them', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir, { segmentBytes: 4096 }));
  await w.open();
  for (let i = 0; i < 60; i++) w.append(event(i));
  await w.flush();
  for (let i = 60; i < 100; i++) w.append(event(i));
  await w.close();
  const files = segmentFiles(dir);
  assert.ok(files.length >= 3, `expected >= 3 segments, got ${files.length}`);
  assert.equal(w.stats().segments, files.length);
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    assert.ok(Buffer.byteLength(text) <= 4096, `${f} is ${Buffer.byteLength(text)} bytes`);
    assert.ok(text.endsWith('\n'));
  }
  // First record of segment 2 links to the last record of segment 1.
  const last1 = openRecord(fs.readFileSync(path.join(dir, files[0] as string), 'utf8').trimEnd().split('\n').at(-1) as string);
  const first2 = openRecord(fs.readFileSync(path.join(dir, files[1] as string), 'utf8').split('\n')[0] as string);
  assert.ok(last1.ok && first2.ok);
  assert.equal(first2.prev, last1.hash);
  assert.equal(first2.seq, last1.seq + 1);
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, 100);
  assert.equal(head(dir).segment, files.at(-1));
});

test('a reopened writer resumes seq and the hash chain, and the whole log still verifies', async (t) => {
  const dir = tmpDir(t);
  for (let round = 0; round < 3; round++) {
    const w = new AuditWriter(config(dir, { segmentBytes: 8192 }));
    await w.open();
    for (let i = 0; i < 25; i++) w.append(event(round * 100 + i));
    await w.close();
    assert.equal(w.stats().lastSeq, (round + 1) * 25);
  }
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, 75);
  assert.equal(v.lastSeq, 75);
});

test('a torn last line after a crash is moved aside, reported, and the chain continues from the last complete record', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  for (let i = 0; i < 10; i++) w.append(event(i));
  await w.close();
  // Simulate a crash mid-write: half a record without its newline.
  const seg = path.join(dir, 'audit-000001.jsonl');
  const partial = '{"seq":11,"prev":"' + 'a'.repeat(30);
  fs.appendFileSync(seg, partial);
  // Before the writer restarts, verify sees the complete records and flags the partial line.
  const before = await verifyAuditDir(dir);
  assert.equal(before.ok, true, JSON.stringify(before.problem));
  assert.equal(before.lastSeq, 10);
  assert.match(before.warnings.join('\n'), /audit-000001\.jsonl:11: incomplete last line/);

  const errors: string[] = [];
  const logger = { error: (_o: unknown, msg: string) => errors.push(msg), warn: () => {}, info: () => {}, debug: () => {} } as unknown as import('../../src/core/log.ts').Logger;
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const w2 = new AuditWriter(config(dir), { logger, clock });
  await w2.open();
  assert.equal(w2.tornFiles().length, 1);
  const tornName = w2.tornFiles()[0] as string;
  assert.equal(tornName, 'audit-000001.jsonl.torn-2026-06-01T12-00-00-000Z');
  assert.equal(fs.readFileSync(path.join(dir, tornName), 'utf8'), partial);
  assert.ok(errors.some((m) => /torn/.test(m)), 'the torn record is logged');
  w2.append(event(10));
  await w2.close();
  const lines = allLines(dir);
  assert.equal(lines.length, 11);
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.lastSeq, 11);
  assert.equal(v.warnings.length, 1);
  assert.match(v.warnings[0] as string, /torn/);
});

test('append never throws: before open, after close, with a full queue, or with an unserializable event', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir, { queueLimit: 1000 }));
  // Before open: queued, up to queueLimit; the rest are counted as dropped.
  for (let i = 0; i < 1500; i++) assert.doesNotThrow(() => w.append(event(i)));
  assert.equal(w.stats().queued, 1000);
  assert.equal(w.stats().dropped, 500);
  await w.open();
  const bad = { ...event(0), bytesIn: 10n } as unknown as AuditEvent;
  assert.doesNotThrow(() => w.append(bad));
  await w.flush();
  assert.equal(w.stats().written, 1000);
  assert.equal(w.stats().dropped, 501);
  await w.close();
  assert.doesNotThrow(() => w.append(event(1)));
  assert.equal(w.stats().dropped, 502);
  assert.equal(allLines(dir).length, 1000);
  assert.equal((await verifyAuditDir(dir)).ok, true);
});

test('a failing disk is logged and counted, events stay queued, and the retry writes them in order', async (t) => {
  const dir = tmpDir(t);
  const errors: string[] = [];
  const logger = { error: (_o: unknown, msg: string) => errors.push(msg), warn: () => {}, info: () => {}, debug: () => {} } as unknown as import('../../src/core/log.ts').Logger;
  const w = new AuditWriter(config(dir, { segmentBytes: 4096 }), { logger });
  await w.open();
  for (let i = 0; i < 3; i++) w.append(event(i));
  await w.flush();
  // Replace the dir by a file: opening the next segment fails with ENOTDIR.
  const aside = `${dir}.aside`;
  fs.renameSync(dir, aside);
  fs.writeFileSync(dir, 'not a dir');
  for (let i = 3; i < 40; i++) w.append(event(i));
  await assert.rejects(w.flush());
  assert.ok(w.stats().errors >= 1);
  assert.ok(w.stats().queued > 0);
  assert.ok(errors.some((m) => /audit write failed/.test(m)));
  fs.rmSync(dir);
  fs.renameSync(aside, dir);
  await w.close();
  assert.equal(w.stats().queued, 0);
  assert.equal(w.stats().written, 40);
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, 40);
});

test('opening refuses to continue a log that lost records HEAD.json checkpointed', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  for (let i = 0; i < 5; i++) w.append(event(i));
  await w.close();
  const seg = path.join(dir, 'audit-000001.jsonl');
  const lines = fs.readFileSync(seg, 'utf8').split('\n').filter(Boolean);
  fs.writeFileSync(seg, `${lines.slice(0, 3).join('\n')}\n`);
  const headBefore = fs.readFileSync(path.join(dir, 'HEAD.json'), 'utf8');
  await assert.rejects(new AuditWriter(config(dir)).open(), /HEAD\.json checkpoints seq 5 but the log ends at seq 3/);
  // The evidence is left untouched.
  assert.equal(fs.readFileSync(path.join(dir, 'HEAD.json'), 'utf8'), headBefore);
});

test('opening refuses a log whose HEAD.json was deleted or whose last record was altered', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  for (let i = 0; i < 5; i++) w.append(event(i));
  await w.close();
  const seg = path.join(dir, 'audit-000001.jsonl');
  const original = fs.readFileSync(seg, 'utf8');
  fs.writeFileSync(seg, original.replace('"req-4"', '"req-X"'));
  await assert.rejects(new AuditWriter(config(dir)).open(), /does not match its hash/);
  fs.writeFileSync(seg, original);
  fs.rmSync(path.join(dir, 'HEAD.json'));
  await assert.rejects(new AuditWriter(config(dir)).open(), /HEAD\.json is missing/);
});

test('checkpoints are written periodically while the writer runs', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir, { checkpointInterval: 20, fsyncInterval: 10 }));
  await w.open();
  assert.equal(head(dir).seq, 0);
  for (let i = 0; i < 5; i++) w.append(event(i));
  await w.flush();
  // Wait (without asserting on timing) until a periodic checkpoint covers the records.
  while (head(dir).seq !== 5) await new Promise((r) => setTimeout(r, 10));
  assert.equal(head(dir).hash, (await verifyAuditDir(dir)).lastHash);
  await w.close();
});

test('flush before open and a second open are caller errors', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await assert.rejects(w.flush(), TypeError);
  await w.open();
  await assert.rejects(w.open(), TypeError);
  await w.close();
  await w.close(); // idempotent
});

test('a second writer on the same dir is refused while the first holds it, and a stale lock is taken over', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  await w.open();
  const second = new AuditWriter(config(dir));
  await assert.rejects(second.open(), /already open in this process/);
  second.append(event(0));
  await second.close(); // a writer whose open failed writes nothing
  await w.close();
  assert.equal(fs.existsSync(path.join(dir, 'LOCK')), false);
  // A lock left by a process that no longer runs (pid far above pid_max).
  fs.writeFileSync(path.join(dir, 'LOCK'), '2147483646\n');
  const third = new AuditWriter(config(dir));
  await third.open();
  third.append(event(1));
  await third.close();
  assert.equal(allLines(dir).length, 1);
});

test('a lock held by another live process refuses the open', async (t) => {
  const dir = tmpDir(t);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'LOCK'), `${process.ppid}\n`);
  await assert.rejects(new AuditWriter(config(dir)).open(), /in use by process/);
  assert.deepEqual(segmentFiles(dir), []);
});

test('close called while open is still running waits for it and drains the events queued meanwhile', async (t) => {
  const dir = tmpDir(t);
  const w = new AuditWriter(config(dir));
  const opening = w.open();
  w.append(event(0));
  w.append(event(1));
  await w.close();
  await opening;
  assert.equal(allLines(dir).length, 2);
  assert.equal((await verifyAuditDir(dir)).records, 2);
});
