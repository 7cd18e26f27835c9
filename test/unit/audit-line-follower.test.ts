import assert from 'node:assert/strict';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { segmentFileName } from '../../src/audit/chain.ts';
import { DirWaker, lineAt, LineFollower, readLineRun, segmentFor, type FollowedLines } from '../../src/audit/line-follower.ts';
import { MAX_LINE_BYTES } from '../../src/audit/lines.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-line-follower-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const seg = (dir: string, n: number): string => path.join(dir, segmentFileName(n));

/** Everything the follower has now, as `segment:offset:kind[:lines]` strings. */
async function drain(f: LineFollower, maxLines?: number): Promise<string[]> {
  const out: string[] = [];
  for (let r = await f.read(maxLines); r; r = await f.read(maxLines)) out.push(show(r));
  return out;
}

function show(r: FollowedLines): string {
  const head = `${r.segment}:${r.offset}:${r.kind}`;
  if (r.kind === 'lines') return `${head}:${r.bytes.toString('utf8', 0, r.bytes.length - 1).split('\n').join(',')}`;
  return r.kind === 'shrank' ? `${head}:${r.size}` : head;
}

test('readLineRun returns complete lines only, at most maxLines, and nothing at the end', async (t) => {
  const file = path.join(tmp(t), 'f');
  fs.writeFileSync(file, 'a\nbb\nccc\npart');
  const fh = await open(file, 'r');
  t.after(() => fh.close());
  const all = await readLineRun(fh, 0);
  assert.equal(all?.kind === 'lines' && all.bytes.toString(), 'a\nbb\nccc\n');
  const two = await readLineRun(fh, 0, 2);
  assert.equal(two?.kind === 'lines' && two.bytes.toString(), 'a\nbb\n');
  assert.deepEqual(await readLineRun(fh, 9), { kind: 'partial' });
  assert.equal(await readLineRun(fh, 13), undefined);
});

test('readLineRun reads a line longer than its chunk whole, and skips one over the limit without holding it', async (t) => {
  const file = path.join(tmp(t), 'f');
  const long = 'x'.repeat(300);
  const huge = 'y'.repeat(MAX_LINE_BYTES);
  fs.writeFileSync(file, `${long}\n${huge}\nafter\n${'z'.repeat(200)}`);
  const fh = await open(file, 'r');
  t.after(() => fh.close());
  const a = await readLineRun(fh, 0, Infinity, 64);
  assert.equal(a?.kind === 'lines' && a.bytes.toString(), `${long}\n`);
  assert.deepEqual(await readLineRun(fh, 301, Infinity, 64 * 1024), { kind: 'overlong', end: 301 + MAX_LINE_BYTES + 1 });
  const c = await readLineRun(fh, 301 + MAX_LINE_BYTES + 1, Infinity, 64);
  assert.equal(c?.kind === 'lines' && c.bytes.toString(), 'after\n');
  assert.deepEqual(await readLineRun(fh, 301 + MAX_LINE_BYTES + 7, Infinity, 64), { kind: 'partial' }, 'a long unfinished line is partial, not over-long');
});

test('the follower moves to the next segment only once it exists, after reading the last lines written before it', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), 'a\nb\n');
  const f = new LineFollower(dir);
  t.after(() => f.close());
  assert.deepEqual(await drain(f), ['1:0:lines:a,b']);
  fs.appendFileSync(seg(dir, 1), 'c\n');
  fs.writeFileSync(seg(dir, 2), 'd\n');
  assert.deepEqual(await drain(f), ['1:4:lines:c', '2:0:lines:d']);
  assert.deepEqual(f.position, { segment: 2, offset: 2 });
});

test('a partial last line is not consumed while its segment is the newest, and is reported as torn once it is not', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), 'a\nhal');
  const f = new LineFollower(dir, { segment: 1, offset: 0 });
  t.after(() => f.close());
  assert.deepEqual(await drain(f), ['1:0:lines:a']);
  fs.appendFileSync(seg(dir, 1), 'f\nto');
  assert.deepEqual(await drain(f), ['1:2:lines:half']);
  fs.writeFileSync(seg(dir, 2), 'next\n');
  assert.deepEqual(await drain(f), ['1:7:torn', '2:0:lines:next']);
});

test('maxLines bounds each read and the position is always at a line start', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), '1\n2\n3\n4\n5\n');
  const f = new LineFollower(dir);
  t.after(() => f.close());
  assert.deepEqual(await drain(f, 2), ['1:0:lines:1,2', '1:4:lines:3,4', '1:8:lines:5']);
});

test('an over-long line is reported and the lines after it still come', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), `a\n${'x'.repeat(MAX_LINE_BYTES)}\nb\n`);
  const f = new LineFollower(dir);
  t.after(() => f.close());
  assert.deepEqual(await drain(f), ['1:0:lines:a', '1:2:overlong', `1:${MAX_LINE_BYTES + 3}:lines:b`]);
});

test('a segment cut shorter than the followed offset is reported, and following resumes at its new end', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), 'aaaa\nbbbb\n');
  const f = new LineFollower(dir);
  t.after(() => f.close());
  await drain(f);
  fs.truncateSync(seg(dir, 1), 5);
  fs.appendFileSync(seg(dir, 1), 'c\n');
  assert.deepEqual(await drain(f), ['1:10:shrank:7']);
  fs.appendFileSync(seg(dir, 1), 'd\n');
  assert.deepEqual(await drain(f), ['1:7:lines:d']);
});

test('a follower of a dir without segments (or without the dir) starts at the oldest segment once there is one', async (t) => {
  const dir = path.join(tmp(t), 'later');
  const f = new LineFollower(dir);
  t.after(() => f.close());
  assert.equal(await f.read(), undefined);
  fs.mkdirSync(dir);
  fs.writeFileSync(seg(dir, 3), 'first\n');
  fs.writeFileSync(seg(dir, 4), 'second\n');
  assert.deepEqual(await drain(f), ['3:0:lines:first', '4:0:lines:second']);
});

test('lineAt returns a complete line only where one starts', async (t) => {
  const dir = tmp(t);
  fs.writeFileSync(seg(dir, 1), 'one\ntwo\nthr');
  assert.equal((await lineAt(dir, 1, 0))?.toString(), 'one');
  assert.equal((await lineAt(dir, 1, 4))?.toString(), 'two');
  assert.equal(await lineAt(dir, 1, 5), undefined, 'the middle of a line');
  assert.equal(await lineAt(dir, 1, 8), undefined, 'a partial line');
  assert.equal(await lineAt(dir, 1, 12), undefined, 'the end');
  assert.equal(await lineAt(dir, 2, 0), undefined, 'no such segment');
});

test('segmentFor picks the newest segment starting at or before a seq, else the oldest', async (t) => {
  const dir = tmp(t);
  const seqOf = (line: Buffer): number | undefined => (JSON.parse(line.toString()) as { seq?: number }).seq;
  assert.equal(await segmentFor(dir, 5, seqOf), undefined);
  fs.writeFileSync(seg(dir, 1), '{"seq":10}\n{"seq":11}\n');
  fs.writeFileSync(seg(dir, 2), '{"seq":12}\n');
  fs.writeFileSync(seg(dir, 3), '{"seq":13}\n');
  assert.deepEqual(await segmentFor(dir, 12, seqOf), { segment: 2, firstSeq: 12 });
  assert.deepEqual(await segmentFor(dir, 99, seqOf), { segment: 3, firstSeq: 13 });
  assert.deepEqual(await segmentFor(dir, 11, seqOf), { segment: 1, firstSeq: 10 });
  assert.deepEqual(await segmentFor(dir, 3, seqOf), { segment: 1, firstSeq: undefined }, 'before the log: its oldest segment');
});

test('a waker resolves on a change in its folder, and close releases a pending wait', async (t) => {
  const dir = tmp(t);
  const w = new DirWaker(dir);
  await w.wait(60_000); // the first wait returns at once: changes before it are not known
  const changed = w.wait(60_000);
  fs.writeFileSync(path.join(dir, 'x'), 'x');
  await changed;
  const pending = w.wait(60_000);
  w.close();
  await pending;
});

test('a waker resolves when its signal aborts, and polls a folder that does not exist', async (t) => {
  const w = new DirWaker(path.join(tmp(t), 'missing'));
  t.after(() => w.close());
  await w.wait(0);
  await w.wait(1); // polling only
  const ac = new AbortController();
  const aborted = w.wait(60_000, ac.signal);
  ac.abort();
  await aborted;
});
