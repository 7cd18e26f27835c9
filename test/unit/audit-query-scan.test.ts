import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { AuditRecord } from '../../src/audit/event.ts';
import { aggregate } from '../../src/audit/query/aggregate.ts';
import { readLineBatches } from '../../src/audit/query/line-batches.ts';
import { parseQuery } from '../../src/audit/query/parse-query.ts';
import { queryAudit, type DamagedLine, type QueryOptions } from '../../src/audit/query/query-audit.ts';
import { ev, rec, segments, tempDir, writeLog } from './audit-query-helpers.ts';

const N = 60;
/** Every 3rd event is a denial by bob on `admin`; segments of 4 KiB hold ~4 records each. */
function events(): ReturnType<typeof ev>[] {
  return Array.from({ length: N }, (_, i) => i % 3 === 0
    ? ev(i * 1000, { requestId: `r${i}`, decision: 'deny', reason: 'authz_no_matching_rule', status: 403, route: 'admin', principal: { iss: 'i', sub: 'bob' } })
    : ev(i * 1000, { requestId: `r${i}` }));
}

async function rotatedLog(t: { after: (fn: () => void) => void }): Promise<string> {
  const dir = path.join(tempDir(t), 'audit');
  await writeLog(dir, events(), 4096);
  assert.ok(segments(dir).length >= 5, 'the fixture must span several segments');
  return dir;
}

async function ids(dir: string, flags: Record<string, string>, opts: QueryOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const h of queryAudit(dir, parseQuery(flags), opts)) out.push(h.record.requestId);
  return out;
}

test('a query reads every rotated segment in seq order and reports where each hit is', async (t) => {
  const dir = await rotatedLog(t);
  const q = queryAudit(dir, parseQuery({}));
  const hits = [];
  for await (const h of q) hits.push(h);
  assert.deepEqual(hits.map((h) => h.record.seq), Array.from({ length: N }, (_, i) => i + 1));
  assert.equal(q.stats.segments, segments(dir).length);
  assert.equal(q.stats.scanned, N);
  assert.equal(q.stats.damaged, 0);
  const h = hits[17]!;
  const stored = fs.readFileSync(path.join(dir, h.segment), 'utf8').split('\n')[h.line - 1];
  assert.equal(stored, h.text, 'segment:line points at the byte-exact stored line');
});

test('filters, limit and offset apply oldest first, and newest first with order desc', async (t) => {
  const dir = await rotatedLog(t);
  const deny = Array.from({ length: N / 3 }, (_, k) => `r${k * 3}`);
  assert.deepEqual(await ids(dir, { decision: 'deny' }), deny);
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { limit: 4 }), deny.slice(0, 4));
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { limit: 4, offset: 3 }), deny.slice(3, 7));
  const rev = [...deny].reverse();
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { order: 'desc' }), rev);
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { order: 'desc', limit: 5 }), rev.slice(0, 5));
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { order: 'desc', limit: 5, offset: 6 }), rev.slice(6, 11));
  assert.deepEqual(await ids(dir, { decision: 'deny' }, { order: 'desc', offset: 100 }), []);
});

test('a newest-first query with a limit stops after the segments it needs and says so', async (t) => {
  const dir = await rotatedLog(t);
  const q = queryAudit(dir, parseQuery({}), { order: 'desc', limit: 2 });
  for await (const _ of q);
  assert.equal(q.stats.limited, true);
  assert.equal(q.stats.segmentsRead, 1);
  assert.equal(q.stats.end?.segment, segments(dir).at(-1));
});

test('damaged lines are reported with segment:line, counted, and the scan goes on past them', async (t) => {
  const dir = await rotatedLog(t);
  const [s1, s2, s3] = segments(dir) as [string, string, string];
  const edit = (seg: string, fn: (ls: string[]) => void): void => {
    const ls = fs.readFileSync(path.join(dir, seg), 'utf8').split('\n').slice(0, -1);
    fn(ls);
    fs.writeFileSync(path.join(dir, seg), `${ls.join('\n')}\n`);
  };
  edit(s1, (ls) => { ls[1] = 'garbage from a bad disk'; });
  // Broken JSON inside an intact frame, on a line the filter would select.
  let s2Line = 0;
  edit(s2, (ls) => {
    s2Line = ls.findIndex((l) => l.includes('"decision":"deny"')) + 1;
    ls[s2Line - 1] = (ls[s2Line - 1] as string).replace('"decision":"deny"', '"decision":"deny"",');
  });
  // A torn write: a cut record followed by a whole one on the same line.
  edit(s3, (ls) => { ls[1] = `${(ls[0] as string).slice(0, 120)}${ls[1] as string}`; });
  // An older segment that ends without a newline.
  const s4 = segments(dir)[3] as string;
  const body = fs.readFileSync(path.join(dir, s4), 'utf8');
  fs.writeFileSync(path.join(dir, s4), `${body}{"seq":99`);
  const damaged: DamagedLine[] = [];
  const q = queryAudit(dir, parseQuery({ decision: 'deny' }), { onDamaged: (d) => damaged.push(d) });
  const hits = [];
  for await (const h of q) hits.push(h);
  assert.deepEqual(damaged.map((d) => `${d.segment}:${d.line}`), [`${s1}:2`, `${s2}:${s2Line}`, `${s3}:2`, `${s4}:${body.split('\n').length}`]);
  assert.match(damaged[0]!.reason, /does not start with "seq"/);
  assert.match(damaged[1]!.reason, /not valid JSON/);
  assert.match(damaged[2]!.reason, /two records/);
  assert.match(damaged[3]!.reason, /incomplete line at the end of an older segment/);
  assert.equal(q.stats.damaged, 4);
  assert.deepEqual(q.stats.damagedLines, damaged);
  assert.ok(hits.length >= N / 3 - 3, 'the records around the damage are still found');
});

test('an incomplete last line in the newest segment is a write in progress: noted, not damage', async (t) => {
  const dir = await rotatedLog(t);
  const last = segments(dir).at(-1) as string;
  const lines = fs.readFileSync(path.join(dir, last), 'utf8').split('\n').length - 1;
  fs.appendFileSync(path.join(dir, last), '{"seq":1000,"prev":"');
  const q = queryAudit(dir, parseQuery({}));
  let n = 0;
  for await (const _ of q) n++;
  assert.equal(n, N);
  assert.equal(q.stats.damaged, 0);
  assert.deepEqual({ ...q.stats.incomplete }, { segment: last, line: lines + 1, reason: 'incomplete last line (a write in progress?)' });
  assert.equal(q.stats.end?.line, lines + 1);
  assert.equal(q.stats.end?.offset, fs.statSync(path.join(dir, last)).size - '{"seq":1000,"prev":"'.length);
});

test('an empty audit dir yields nothing and ends at segment 1, offset 0', async (t) => {
  const dir = tempDir(t);
  const q = queryAudit(dir, parseQuery({}));
  for await (const _ of q) assert.fail('no hits expected');
  assert.deepEqual({ ...q.stats.end }, { segment: 'audit-000001.jsonl', n: 1, offset: 0, line: 1 });
});

test('a missing dir rejects on iteration with ENOENT; bad options are caller misuse (TypeError)', async (t) => {
  const dir = path.join(tempDir(t), 'nope');
  await assert.rejects(async () => { for await (const _ of queryAudit(dir, parseQuery({}))); }, { code: 'ENOENT' });
  assert.throws(() => queryAudit(dir, parseQuery({}), { limit: -1 }), TypeError);
  assert.throws(() => queryAudit(dir, parseQuery({}), { order: 'sideways' as never }), TypeError);
});

test('an aborted query ends early and says so', async (t) => {
  const dir = await rotatedLog(t);
  const ac = new AbortController();
  const q = queryAudit(dir, parseQuery({}), { signal: ac.signal });
  let n = 0;
  for await (const _ of q) {
    n++;
    ac.abort();
  }
  assert.equal(q.stats.aborted, true);
  assert.ok(n < N);
});

test('line batches rejoin lines across reads, keep multi-byte characters whole and count lines', async (t) => {
  const file = path.join(tempDir(t), 'lines');
  // Lines of 1000 bytes with a 4-byte character straddling every 4 MiB read boundary somewhere.
  const lines = Array.from({ length: 9000 }, (_, i) => `${String(i).padStart(6, '0')}😀${'é'.repeat(400)}${'x'.repeat(188)}`);
  fs.writeFileSync(file, `${lines.join('\n')}\ntail-without-newline`);
  const got: string[] = [];
  let partial;
  for await (const b of readLineBatches(file)) {
    if (b.kind === 'lines') {
      assert.equal(b.first, got.length + 1);
      got.push(...b.lines);
    } else partial = b;
  }
  assert.deepEqual(got, lines);
  assert.equal(partial?.kind, 'partial');
  assert.equal(partial?.first, 9001);
});

test('a line longer than 16 MiB is reported as one over-long line and the lines after it are read', async (t) => {
  const file = path.join(tempDir(t), 'lines');
  fs.writeFileSync(file, `first\n${'x'.repeat(17 * 1024 * 1024)}\nthird\nfourth\n`);
  const seen: string[] = [];
  for await (const b of readLineBatches(file)) seen.push(b.kind === 'lines' ? `${b.first}:${b.lines.join(',')}` : `${b.first}:${b.kind}`);
  assert.deepEqual(seen, ['1:first', '2:overlong', '3:third,fourth']);
});

test('aggregate counts per key, largest first, ties by key, records without the field last', async () => {
  const rs: AuditRecord[] = [
    rec(0, { route: 'b' }), rec(1, { route: 'a' }), rec(2, { route: 'c' }), rec(3, { route: 'c' }), rec(4, { route: null }), rec(5, { route: null }), rec(6, { route: 'a' }),
  ];
  const a = await aggregate(rs, 'route');
  assert.deepEqual(a.groups, [{ key: 'a', count: 2 }, { key: 'c', count: 2 }, { key: null, count: 2 }, { key: 'b', count: 1 }]);
  assert.equal(a.total, 7);
  assert.equal(a.overflow, 0);
});

test('aggregate by identity, reason and status uses the reviewer-facing keys', async () => {
  const rs: AuditRecord[] = [
    rec(0), rec(1, { principal: null }), rec(2, { principal: null, peer: null, status: 401, reason: 'jwt_missing', decision: 'deny' }), rec(3, { status: 404 }), rec(4, { status: 404 }),
  ];
  assert.deepEqual((await aggregate(rs, 'identity')).groups, [{ key: 'alice', count: 3 }, { key: 'spiffe://mesh.local/ns/prod/sa/web', count: 1 }, { key: null, count: 1 }]);
  assert.deepEqual((await aggregate(rs, 'status')).groups, [{ key: '200', count: 2 }, { key: '404', count: 2 }, { key: '401', count: 1 }]);
  assert.deepEqual((await aggregate(rs, 'reason')).groups, [{ key: 'allowed', count: 4 }, { key: 'jwt_missing', count: 1 }]);
});

test('aggregate caps distinct keys and counts the rest as overflow; an unknown key is caller misuse', async () => {
  const rs = Array.from({ length: 10 }, (_, i) => rec(i, { path: `/p/${i}` }));
  const a = await aggregate(rs, 'path', { maxGroups: 4 });
  assert.equal(a.groups.length, 4);
  assert.equal(a.overflow, 6);
  assert.equal(a.total, 10);
  await assert.rejects(aggregate(rs, 'colour' as never), TypeError);
});

test('an over-long line that ends exactly at a read boundary does not resurrect stale buffer bytes', async (t) => {
  const file = path.join(tempDir(t), 'lines');
  // 16 MiB (the largest buffer) + newline exactly: the skip ends with nothing left in the buffer.
  fs.writeFileSync(file, `${'y'.repeat(16 * 1024 * 1024 - 4)}\nabc\n${'z'.repeat(16 * 1024 * 1024)}\n`);
  const seen: string[] = [];
  for await (const b of readLineBatches(file)) seen.push(b.kind === 'lines' ? `${b.first}:${b.lines.join(',').slice(0, 20)}` : `${b.first}:${b.kind}`);
  assert.deepEqual(seen, ['1:yyyyyyyyyyyyyyyyyyyy', '2:abc', '3:overlong']);
});
