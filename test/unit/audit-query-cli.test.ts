import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AuditWriter } from '../../src/audit/writer.ts';
import { ev, runCli, segments, tempDir, writeLog } from './audit-query-helpers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LONG_ID = `spiffe://mesh.local/ns/production/sa/${'payments-'.repeat(8)}worker`;

/** 150 events over 4 KiB segments: every 5th a denial (bob or a long SPIFFE ID), one slow. */
function fixture(): ReturnType<typeof ev>[] {
  return Array.from({ length: 150 }, (_, i) => {
    if (i % 5 !== 0) return ev(i * 1000, { requestId: `r${i}`, path: `/orders/${i}` });
    const who = i % 10 === 0 ? { principal: { iss: 'i', sub: 'bob' } } : { principal: null, peer: { spiffeId: LONG_ID, fingerprint: 'cd' } };
    return ev(i * 1000, { requestId: `r${i}`, decision: 'deny', reason: 'authz_no_matching_rule', status: 403, route: 'admin', path: `/admin/${'x'.repeat(60)}/${i}`, latencyMs: i === 145 ? 900 : 2, ...who });
  });
}

async function logDir(t: { after: (fn: () => void) => void }): Promise<{ root: string; dir: string }> {
  const root = tempDir(t);
  const dir = path.join(root, 'audit');
  await writeLog(dir, fixture(), 4096);
  return { root, dir };
}

const storedLines = (dir: string): string[] => segments(dir).flatMap((s) => fs.readFileSync(path.join(dir, s), 'utf8').split('\n').slice(0, -1));

test('audit query prints an aligned table of matching events across rotated segments, summary on stderr', async (t) => {
  const { root, dir } = await logDir(t);
  assert.ok(segments(dir).length > 10);
  const r = await runCli(['audit', 'query', 'audit', '--decision', 'deny', '--identity', 'bob'], root);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').slice(0, -1);
  assert.match(lines[0]!, /^TIME\s+DECISION\s+STATUS\s+METHOD\s+PATH\s+IDENTITY\s+REASON\s+LATENCY$/);
  assert.equal(lines.length, 1 + 15);
  assert.match(lines[1]!, /^2026-01-01T12:00:00\.000Z {2}deny {9}403 {2}GET {5}\/admin\/x{60}\/0 +bob +authz_no_matching_rule +2\.0ms$/);
  const col = lines[0]!.indexOf('IDENTITY');
  for (const l of lines.slice(1)) assert.equal(l.slice(col, col + 3), 'bob', 'columns line up');
  assert.match(r.stderr, /^15 events; 150 records scanned in \d+ segments\n$/);
});

test('on a terminal the table is cut to its width, with … where a cell was cut', async (t) => {
  const { root } = await logDir(t);
  const r = await runCli(['audit', 'query', 'audit', '--decision', 'deny'], root, { tty: 100 });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').slice(0, -1);
  assert.equal(lines.length, 31);
  for (const l of lines) assert.ok(l.length <= 100, `${l.length}: ${l}`);
  assert.ok(lines.some((l) => l.includes('…')));
  assert.ok(lines.every((l) => l.includes('deny') || l.startsWith('TIME')));
  const wide = await runCli(['audit', 'query', 'audit', '--decision', 'deny'], root);
  assert.ok(wide.stdout.includes(LONG_ID), 'not cut when stdout is not a terminal');
});

test('audit query --json prints the stored records byte for byte, as JSON Lines, without a default limit', async (t) => {
  const { root, dir } = await logDir(t);
  const r = await runCli(['audit', 'query', 'audit', '--json', '--route', 'admin'], root);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.split('\n').slice(0, -1);
  assert.deepEqual(out, storedLines(dir).filter((l) => l.includes('"route":"admin"')));
  assert.equal(out.length, 30);
  for (const l of out) assert.equal(JSON.parse(l).route, 'admin');
});

test('the table shows at most 100 events by default; --limit, --offset and --reverse page through them', async (t) => {
  const { root } = await logDir(t);
  const rows = (s: string): string[] => s.split('\n').slice(1, -1);
  const d = await runCli(['audit', 'query', 'audit'], root);
  assert.equal(rows(d.stdout).length, 100);
  assert.match(d.stderr, /--limit 100 reached; more may match/);
  assert.equal(rows((await runCli(['audit', 'query', 'audit', '--limit', '0'], root)).stdout).length, 150);
  const ids = async (...a: string[]): Promise<number[]> => (await runCli(['audit', 'query', 'audit', '--json', ...a], root)).stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l).seq);
  assert.deepEqual(await ids('--limit', '3', '--offset', '10'), [11, 12, 13]);
  assert.deepEqual(await ids('--limit', '3', '--reverse'), [150, 149, 148]);
  assert.deepEqual(await ids('--limit', '2', '--reverse', '--offset', '1'), [149, 148]);
});

test('audit query --count prints the number of matches, and a JSON document with --json', async (t) => {
  const { root } = await logDir(t);
  const r = await runCli(['audit', 'query', 'audit', '--count', '--status', '4xx', '--path-prefix', '/admin'], root);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '30\n');
  const j = await runCli(['audit', 'query', 'audit', '--count', '--json', '--min-latency', '500ms'], root);
  assert.deepEqual(JSON.parse(j.stdout), { count: 1, scanned: 150, damaged: 0 });
});

test('audit query --group-by counts per key, largest first, as a table or JSON', async (t) => {
  const { root } = await logDir(t);
  const r = await runCli(['audit', 'query', 'audit', '--group-by', 'identity'], root);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, -1).map((l) => l.trim().split(/\s+/)), [
    ['COUNT', 'SHARE', 'IDENTITY'], ['120', '80.0%', 'alice'], ['15', '10.0%', 'bob'], ['15', '10.0%', LONG_ID],
  ]);
  const j = await runCli(['audit', 'query', 'audit', '--group-by', 'status', '--json', '--since', '2026-01-01T12:01:00Z'], root);
  const doc = JSON.parse(j.stdout);
  assert.deepEqual(doc.groups, [{ key: '200', count: 72 }, { key: '403', count: 18 }]);
  assert.equal(doc.total, 90);
  const top = await runCli(['audit', 'query', 'audit', '--group-by', 'reason', '--limit', '1', '--json'], root);
  assert.deepEqual(JSON.parse(top.stdout).groups, [{ key: 'allowed', count: 120 }]);
});

const USAGE: [string[], RegExp][] = [
  [['--since', 'yesterday'], /--since: "yesterday" is not a time/],
  [['--until', '2026-01-01T10:00'], /--until: .* is not a time/],
  [['--status', '600'], /--status: "600" is not a status/],
  [['--min-latency', 'fast'], /--min-latency:/],
  [['--identity', 'a*b'], /--identity: "\*" is only allowed at the end/],
  [['--group-by', 'colour'], /--group-by: "colour" is not one of identity, route/],
  [['--limit=-1'], /--limit: "-1" is not a whole number/],
  [['--offset', 'ten'], /--offset: "ten" is not a whole number/],
  [['--count', '--group-by', 'route'], /--count and --group-by/],
  [['--count', '--limit', '5'], /--count counts every match/],
  [['--bogus'], /Unknown option '--bogus'/],
];

for (const [args, msg] of USAGE) {
  test(`audit query ${args.join(' ')} is a usage error (exit 2) naming the flag`, async (t) => {
    const { root } = await logDir(t);
    const r = await runCli(['audit', 'query', 'audit', ...args], root);
    assert.equal(r.code, 2);
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  });
}

test('audit query on a missing dir or without one is a usage error', async (t) => {
  const root = tempDir(t);
  assert.equal((await runCli(['audit', 'query', 'nope'], root)).code, 2);
  assert.equal((await runCli(['audit', 'query'], root)).code, 2);
  assert.equal((await runCli(['audit', 'tail', 'nope'], root)).code, 2);
});

test('a damaged line is reported on stderr with segment:line, counted in the summary, and exits 1', async (t) => {
  const { root, dir } = await logDir(t);
  const seg = segments(dir)[2] as string;
  const ls = fs.readFileSync(path.join(dir, seg), 'utf8').split('\n');
  ls[1] = 'XXXX not a record';
  fs.writeFileSync(path.join(dir, seg), ls.join('\n'));
  const r = await runCli(['audit', 'query', 'audit', '--json', '--decision', 'deny'], root);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^damaged line: ${seg}:2: line does not start with "seq"$`, 'm'));
  assert.match(r.stderr, /; 1 damaged line \(not records; run 'meshgate audit verify'\)\n$/);
  assert.ok(r.stdout.split('\n').length > 25, 'the other events are still printed');
});

test('control and bidi characters from requests are escaped in the table, never sent to the terminal', async (t) => {
  const root = tempDir(t);
  await writeLog(path.join(root, 'audit'), [ev(0, { path: '/a\u001b[2Jb', principal: { iss: 'i', sub: 'eve\u202egnp.exe' } })]);
  const r = await runCli(['audit', 'query', 'audit'], root);
  assert.ok(!/[\u001b\u202e]/.test(r.stdout));
  assert.ok(r.stdout.includes('/a\\u001b[2Jb'));
  assert.ok(r.stdout.includes('eve\\u202egnp.exe'));
});

test('audit tail prints the last N matching events, oldest of them first', async (t) => {
  const { root } = await logDir(t);
  const r = await runCli(['audit', 'tail', 'audit', '-n', '3', '--decision', 'deny', '--json'], root);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, -1).map((l) => JSON.parse(l).requestId), ['r135', 'r140', 'r145']);
  const table = await runCli(['audit', 'tail', 'audit'], root);
  const rows = table.stdout.split('\n').slice(0, -1);
  assert.equal(rows.length, 21);
  assert.match(rows[0]!, /^TIME/);
  assert.match(rows[20]!, /^2026-01-01T12:02:29\.000Z/);
  assert.equal((await runCli(['audit', 'tail', 'audit', '-n', 'x'], root)).code, 2);
});

test('audit tail -f prints events appended while following (within about a second) and exits 0 on SIGINT', async (t) => {
  const { dir } = await logDir(t);
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/meshgate.js'), 'audit', 'tail', dir, '-f', '-n', '1', '--json', '--route', 'admin'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  let onLine = (): void => {};
  child.stdout.on('data', (b: Buffer) => { out += b; onLine(); });
  child.stderr.on('data', (b: Buffer) => { err += b; });
  const waitFor = (n: number, ms: number): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} lines; got ${JSON.stringify(out)} ${err}`)), ms);
    onLine = (): void => {
      if (out.split('\n').length - 1 < n) return;
      clearTimeout(timer);
      resolve();
    };
    onLine();
  });
  await waitFor(1, 10_000);
  assert.equal(JSON.parse(out.split('\n')[0]!).requestId, 'r145');

  const w = new AuditWriter({ dir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  w.append(ev(200_000, { requestId: 'ignored', route: 'orders' }));
  w.append(ev(200_001, { requestId: 'fresh', route: 'admin', decision: 'deny', reason: 'authz_deny_rule', status: 403 }));
  await w.close();
  await waitFor(2, 1000);
  assert.equal(JSON.parse(out.split('\n')[1]!).requestId, 'fresh');

  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  assert.equal(await exit, 0, err);
  assert.equal(out.split('\n').length - 1, 2, 'the other route was filtered out');
});

test('audit --help lists query and tail, and each has its own help', async (t) => {
  const root = tempDir(t);
  const h = await runCli(['audit', '--help'], root);
  assert.match(h.stdout, /^ {2}query /m);
  assert.match(h.stdout, /^ {2}tail /m);
  const q = await runCli(['audit', 'query', '--help'], root);
  assert.equal(q.code, 0);
  assert.match(q.stdout, /--group-by KEY/);
  assert.match((await runCli(['audit', 'tail', '--help'], root)).stdout, /-f, --follow/);
});
