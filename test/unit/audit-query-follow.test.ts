import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sealRecord } from '../../src/audit/chain.ts';
import { followAudit } from '../../src/audit/query/follow-audit.ts';
import { parseQuery } from '../../src/audit/query/parse-query.ts';
import { queryAudit, type DamagedLine, type LogPosition } from '../../src/audit/query/query-audit.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { ev, segments, tempDir, writeLog } from './audit-query-helpers.ts';

async function endOf(dir: string): Promise<LogPosition> {
  const q = queryAudit(dir, parseQuery({}), { order: 'desc', limit: 1 });
  for await (const _ of q);
  assert.ok(q.stats.end);
  return q.stats.end;
}

/** Collects hits until `want` arrived or `ms` passed, then aborts. */
async function collect(dir: string, flags: Record<string, string>, from: LogPosition, want: number, ms: number, damaged: DamagedLine[] = []): Promise<{ ids: string[]; run: Promise<void>; stop: () => void }> {
  const ac = new AbortController();
  const ids: string[] = [];
  const f = followAudit(dir, parseQuery(flags), from, { signal: ac.signal, pollMs: 50, onDamaged: (d) => damaged.push(d) });
  const timer = setTimeout(() => ac.abort(), ms);
  const run = (async () => {
    for await (const h of f) {
      ids.push(h.record.requestId);
      if (ids.length >= want) ac.abort();
    }
    clearTimeout(timer);
  })();
  return { ids, run, stop: () => ac.abort() };
}

test('following yields appended matching records in order, across segment rotation, until aborted', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, [ev(0, { requestId: 'old' })], 4096);
  const from = await endOf(dir);
  const segsBefore = segments(dir).length;
  const c = await collect(dir, { decision: 'deny' }, from, 20, 10_000);
  const w = new AuditWriter({ dir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  const want: string[] = [];
  for (let i = 1; i <= 60; i++) {
    const deny = i % 3 === 0;
    if (deny) want.push(`n${i}`);
    w.append(ev(i, deny ? { requestId: `n${i}`, decision: 'deny', reason: 'authz_deny_rule', status: 403 } : { requestId: `n${i}` }));
    if (i % 7 === 0) await sleep(15);
  }
  await w.close();
  await c.run;
  assert.deepEqual(c.ids, want);
  assert.ok(segments(dir).length > segsBefore + 3, 'the writer rotated while followed');
});

test('a record still being written is not yielded until its newline arrives', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, [ev(0)]);
  const from = await endOf(dir);
  const seg = path.join(dir, segments(dir).at(-1) as string);
  const line = sealRecord(2, 'b'.repeat(64), ev(5, { requestId: 'late' })).line;
  fs.appendFileSync(seg, line.slice(0, 100));
  const c = await collect(dir, {}, from, 1, 10_000);
  await sleep(200);
  assert.deepEqual(c.ids, [], 'half a record is not a record');
  fs.appendFileSync(seg, line.slice(100));
  await c.run;
  assert.deepEqual(c.ids, ['late']);
});

test('a segment left with a partial last line when the next one appears is reported as damaged, and following goes on', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, [ev(0)]);
  const from = await endOf(dir);
  const [s1] = segments(dir) as [string];
  fs.appendFileSync(path.join(dir, s1), '{"seq":2,"prev":"cut by a crash');
  const damaged: DamagedLine[] = [];
  const c = await collect(dir, {}, from, 1, 10_000, damaged);
  await sleep(100);
  fs.writeFileSync(path.join(dir, 'audit-000002.jsonl'), sealRecord(3, 'c'.repeat(64), ev(9, { requestId: 'next-seg' })).line);
  await c.run;
  assert.deepEqual(c.ids, ['next-seg']);
  assert.deepEqual(damaged.map((d) => `${d.segment}:${d.line}`), [`${s1}:2`]);
  assert.match(damaged[0]!.reason, /incomplete line/);
});

test('a segment cut shorter while followed is reported as damaged, and following goes on from its new end', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, [ev(0), ev(1)]);
  const from = await endOf(dir);
  const file = path.join(dir, segments(dir).at(-1) as string);
  const damaged: DamagedLine[] = [];
  const c = await collect(dir, {}, from, 1, 10_000, damaged);
  fs.truncateSync(file, 0);
  await sleep(150);
  fs.appendFileSync(file, `${sealRecord(3, 'c'.repeat(64), ev(9, { requestId: 'after-cut' })).line}`);
  await c.run;
  assert.deepEqual(c.ids, ['after-cut']);
  assert.equal(damaged.length, 1);
  assert.match(damaged[0]!.reason, new RegExp(`segment shrank from ${from.offset} to 0 bytes`));
});

test('following an empty dir picks up the first segment when the writer creates it', async (t) => {
  const dir = tempDir(t);
  const from = await endOf(dir);
  const c = await collect(dir, {}, from, 2, 10_000);
  await writeLog(dir, [ev(1, { requestId: 'a' }), ev(2, { requestId: 'b' })]);
  await c.run;
  assert.deepEqual(c.ids, ['a', 'b']);
});

test('aborting stops a follow that is waiting for data', async (t) => {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, [ev(0)]);
  const c = await collect(dir, {}, await endOf(dir), 1, 60_000);
  await sleep(50);
  c.stop();
  await c.run;
  assert.deepEqual(c.ids, []);
});
