import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { GENESIS_HASH, openRecord, sealRecord } from '../../src/audit/chain.ts';
import type { AuditHead } from '../../src/audit/head.ts';
import { newEventId, type AuditEvent } from '../../src/audit/event.ts';
import { AuditFormatError, readAuditEvents, verifyAuditDir, type ProblemKind } from '../../src/audit/verify.ts';
import { AuditWriter } from '../../src/audit/writer.ts';

function event(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(), time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), requestId: `req-${i}`,
    source: { ip: '10.0.0.1', port: 40000 + i }, peer: { spiffeId: 'spiffe://mesh.local/web', fingerprint: 'cd'.repeat(32) },
    principal: { iss: 'https://issuer', sub: `user-${i % 3}` }, jti: `j-${i}`, tokenHash: 'aGFzaA', method: 'GET', path: `/orders/${i}`,
    rawPath: null, route: 'orders', decision: 'allow', reason: 'allowed', rule: 'p, user, /orders/*, GET', policyVersion: 'v1',
    status: 200, bytesIn: 0, bytesOut: 100, latencyMs: 2, shadow: null, ...over,
  };
}

/** A closed log of `n` records in 4 KiB segments (5 records each). */
async function makeLog(t: { after: (fn: () => void) => void }, n = 30): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-audit-v-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'audit');
  const w = new AuditWriter({ dir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  for (let i = 0; i < n; i++) w.append(event(i));
  await w.close();
  return dir;
}

const SEG2 = 'audit-000002.jsonl';

function lines(dir: string, seg: string): string[] {
  return fs.readFileSync(path.join(dir, seg), 'utf8').split('\n').slice(0, -1);
}
function writeLines(dir: string, seg: string, ls: string[]): void {
  fs.writeFileSync(path.join(dir, seg), ls.length ? `${ls.join('\n')}\n` : '');
}
function seqOf(line: string): number {
  const r = openRecord(line);
  assert.ok(r.ok);
  return r.seq;
}
function hashOf(line: string): string {
  const r = openRecord(line);
  assert.ok(r.ok);
  return r.hash;
}
function lastSegment(dir: string): string {
  return fs.readdirSync(dir).filter((f) => /^audit-\d+\.jsonl$/.test(f)).sort().at(-1) as string;
}

async function expectProblem(dir: string, kind: ProblemKind, segment: string, line: number, seq?: number): Promise<void> {
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, false);
  assert.deepEqual({ kind: v.problem?.kind, segment: v.problem?.segment, line: v.problem?.line, seq: v.problem?.seq }, { kind, segment, line, seq }, v.problem?.message);
}

test('an intact log of several segments verifies with its record count and chain head', async (t) => {
  const dir = await makeLog(t);
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, 30);
  assert.ok(v.segments.length >= 3);
  assert.equal(v.lastSeq, 30);
  assert.equal(v.lastHash, v.head?.hash);
  assert.deepEqual(v.warnings, []);
});

test('an empty audit dir and a freshly opened log verify as empty', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-audit-v-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  assert.equal((await verifyAuditDir(root)).ok, true);
  const dir = await makeLog(t, 0);
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true);
  assert.equal(v.records, 0);
  assert.equal(v.lastHash, GENESIS_HASH);
});

test('a missing dir makes verify throw rather than report an intact log', async () => {
  await assert.rejects(verifyAuditDir(path.join(os.tmpdir(), 'meshgate-no-such-dir-xyz')), { code: 'ENOENT' });
});

test('an edited field is reported as modified at that record', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  ls[2] = (ls[2] as string).replace('"decision":"allow"', '"decision":"deny"');
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'modified', SEG2, 3, seqOf(ls[2] as string));
});

test('an edited record whose hash was recomputed is reported as modified at that record', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const r = openRecord(ls[2] as string);
  assert.ok(r.ok);
  const { seq, prev, hash: _h, ...ev } = r.record as unknown as { seq: number; prev: string; hash: string } & AuditEvent;
  ls[2] = sealRecord(seq, prev, { ...ev, status: 500 }).line.trimEnd();
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'modified', SEG2, 3, seq);
});

test('a deleted line is reported as deleted where the record is missing', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const missingSeq = seqOf(ls[2] as string);
  ls.splice(2, 1);
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'deleted', SEG2, 3, missingSeq);
});

test('two swapped lines are reported as reordered at the first of them', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  [ls[1], ls[2]] = [ls[2] as string, ls[1] as string];
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'reordered', SEG2, 2, seqOf(ls[1] as string));
});

test('a record moved far from its place is reported as reordered', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const moved = ls.splice(0, 1)[0] as string;
  const seg4 = 'audit-000004.jsonl';
  const l4 = lines(dir, seg4);
  l4.splice(2, 0, moved);
  writeLines(dir, SEG2, ls);
  writeLines(dir, seg4, l4);
  const v = await verifyAuditDir(dir);
  assert.equal(v.problem?.kind, 'reordered');
  assert.equal(v.problem?.segment, SEG2);
  assert.equal(v.problem?.line, 1);
  assert.match(v.problem?.message ?? '', /audit-000004\.jsonl:3/);
});

test('a forged line with a correctly recomputed hash and chain link is reported as inserted at the forged line', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const before = ls[1] as string;
  const forged = sealRecord(seqOf(before) + 1, hashOf(before), event(999, { decision: 'allow', principal: { iss: 'https://issuer', sub: 'attacker' } })).line.trimEnd();
  ls.splice(2, 0, forged);
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'inserted', SEG2, 3, seqOf(before) + 1);
});

test('a forged line with a self-consistent hash but a wrong link is reported as inserted', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const before = ls[1] as string;
  const forged = sealRecord(seqOf(before) + 1, 'f'.repeat(64), event(999)).line.trimEnd();
  ls.splice(2, 0, forged);
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'inserted', SEG2, 3, seqOf(before) + 1);
});

test('a forged line with a made-up hash is reported as inserted because the chain is intact without it', async (t) => {
  const dir = await makeLog(t);
  const ls = lines(dir, SEG2);
  const forged = (ls[1] as string).replace(/"hash":"[0-9a-f]{64}"/, `"hash":"${'1'.repeat(64)}"`).replace('"req-', '"forged-');
  ls.splice(2, 0, forged);
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'inserted', SEG2, 3, seqOf(ls[1] as string));
});

test('a replayed copy of an earlier record is reported as inserted', async (t) => {
  const dir = await makeLog(t);
  const first = lines(dir, 'audit-000001.jsonl')[0] as string;
  const ls = lines(dir, SEG2);
  ls.splice(3, 0, first);
  writeLines(dir, SEG2, ls);
  await expectProblem(dir, 'inserted', SEG2, 4, 1);
});

test('a truncated tail is reported as truncated after the last remaining record', async (t) => {
  const dir = await makeLog(t);
  const seg = lastSegment(dir);
  const ls = lines(dir, seg);
  assert.ok(ls.length >= 3);
  const firstRemoved = seqOf(ls.at(-2) as string);
  writeLines(dir, seg, ls.slice(0, -2));
  await expectProblem(dir, 'truncated', seg, ls.length - 1, firstRemoved);
});

test('a removed newest segment is reported as missing_segment from HEAD.json', async (t) => {
  const dir = await makeLog(t);
  const seg = lastSegment(dir);
  const firstLost = seqOf(lines(dir, seg)[0] as string);
  fs.rmSync(path.join(dir, seg));
  await expectProblem(dir, 'missing_segment', seg, 0, firstLost);
});

test('a removed middle segment is reported as missing_segment with the first missing seq', async (t) => {
  const dir = await makeLog(t);
  const firstLost = seqOf(lines(dir, SEG2)[0] as string);
  fs.rmSync(path.join(dir, SEG2));
  await expectProblem(dir, 'missing_segment', SEG2, 0, firstLost);
});

test('a removed first segment is reported as missing_segment', async (t) => {
  const dir = await makeLog(t);
  fs.rmSync(path.join(dir, 'audit-000001.jsonl'));
  await expectProblem(dir, 'missing_segment', 'audit-000001.jsonl', 0, 1);
});

test('the first records of the log deleted are reported as deleted at line 1', async (t) => {
  const dir = await makeLog(t);
  const seg1 = 'audit-000001.jsonl';
  writeLines(dir, seg1, lines(dir, seg1).slice(2));
  await expectProblem(dir, 'deleted', seg1, 1, 1);
});

test('garbage lines and blank lines are reported as malformed at their line', async (t) => {
  for (const junk of ['hello', '', '{"seq":1}', '\u0000\u0000\u0000']) {
    const dir = await makeLog(t, 12);
    const ls = lines(dir, SEG2);
    ls.splice(1, 0, junk);
    writeLines(dir, SEG2, ls);
    await expectProblem(dir, 'malformed', SEG2, 2, undefined);
  }
});

test('a deleted or corrupt HEAD.json fails verification', async (t) => {
  const dir = await makeLog(t);
  fs.writeFileSync(path.join(dir, 'HEAD.json'), '{"seq":');
  await expectProblem(dir, 'malformed', 'HEAD.json', 1, undefined);
  fs.rmSync(path.join(dir, 'HEAD.json'));
  const v = await verifyAuditDir(dir);
  assert.equal(v.problem?.kind, 'truncated');
  assert.match(v.problem?.message ?? '', /HEAD\.json is missing/);
});

test('a tail truncated and re-extended with forged records is caught by the HEAD checkpoint', async (t) => {
  const dir = await makeLog(t);
  const seg = lastSegment(dir);
  const ls = lines(dir, seg);
  // Drop the last two records and forge two new, correctly chained ones in their place.
  const kept = ls.slice(0, -2);
  let prev = hashOf(kept.at(-1) as string);
  let seq = seqOf(kept.at(-1) as string);
  for (let i = 0; i < 2; i++) {
    const s = sealRecord(++seq, prev, event(500 + i));
    kept.push(s.line.trimEnd());
    prev = s.hash;
  }
  writeLines(dir, seg, kept);
  await expectProblem(dir, 'truncated', seg, ls.length, 30);
});

test('a rewrite of the whole chain and HEAD.json passes alone but fails against an external anchor', async (t) => {
  const dir = await makeLog(t);
  const anchor = JSON.parse(fs.readFileSync(path.join(dir, 'HEAD.json'), 'utf8')) as AuditHead;
  // The attacker re-seals every record with one field changed and rewrites HEAD.
  let prev = GENESIS_HASH;
  let lastSeg = '';
  for (const seg of fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
    const out = lines(dir, seg).map((l) => {
      const r = openRecord(l);
      assert.ok(r.ok);
      const { seq, prev: _p, hash: _h, ...ev } = r.record as unknown as { seq: number; prev: string; hash: string } & AuditEvent;
      const s = sealRecord(seq, prev, { ...ev, decision: 'deny' });
      prev = s.hash;
      return s.line.trimEnd();
    });
    writeLines(dir, seg, out);
    lastSeg = seg;
  }
  fs.writeFileSync(path.join(dir, 'HEAD.json'), JSON.stringify({ seq: 30, hash: prev, segment: lastSeg, time: anchor.time }));
  assert.equal((await verifyAuditDir(dir)).ok, true, 'documented limitation: undetectable without an external anchor');
  const v = await verifyAuditDir(dir, { anchor });
  assert.equal(v.ok, false);
  assert.equal(v.problem?.kind, 'modified');
  assert.equal(v.problem?.seq, 30);
  assert.equal(v.problem?.segment, lastSeg);
});

test('readAuditEvents yields every record in order and can start from a seq in a later segment', async (t) => {
  const dir = await makeLog(t);
  const all: number[] = [];
  for await (const r of readAuditEvents(dir)) all.push(r.seq);
  assert.deepEqual(all, Array.from({ length: 30 }, (_, i) => i + 1));
  const from: string[] = [];
  for await (const r of readAuditEvents(dir, { fromSeq: 17 })) from.push(`${r.seq}:${r.requestId}`);
  assert.deepEqual(from, Array.from({ length: 14 }, (_, i) => `${i + 17}:req-${i + 16}`));
  const none: number[] = [];
  for await (const r of readAuditEvents(dir, { fromSeq: 31 })) none.push(r.seq);
  assert.deepEqual(none, []);
});

test('readAuditEvents skips a partial last line but throws with the location of a malformed one', async (t) => {
  const dir = await makeLog(t);
  const seg = lastSegment(dir);
  fs.appendFileSync(path.join(dir, seg), '{"seq":31,"prev":"ab');
  let n = 0;
  for await (const _ of readAuditEvents(dir)) n++;
  assert.equal(n, 30);
  const ls = lines(dir, SEG2);
  ls[1] = 'not json';
  writeLines(dir, SEG2, ls);
  await assert.rejects(async () => {
    for await (const _ of readAuditEvents(dir)) n++;
  }, (err: unknown) => err instanceof AuditFormatError && err.segment === SEG2 && err.line === 2);
});

test('a partial line at the end of an older segment is malformed; at the end of the newest it is only a warning', async (t) => {
  const dir = await makeLog(t);
  const seg = lastSegment(dir);
  fs.appendFileSync(path.join(dir, seg), '{"seq":31,"prev":"ab');
  const v = await verifyAuditDir(dir);
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, 30);
  assert.equal(v.warnings.length, 1);
  fs.appendFileSync(path.join(dir, SEG2), '{"seq":');
  await expectProblem(dir, 'malformed', SEG2, lines(dir, SEG2).length + 1, undefined);
});
