/**
 * Finding where an existing audit log ends, so a restarted writer continues
 * the same chain. Reads only the tail of the newest non-empty segment.
 */
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../core/clock.ts';
import { GENESIS_HASH, listSegments, openRecord, recordHash } from './chain.ts';
import { readHead } from './head.ts';
import { MAX_LINE_BYTES } from './lines.ts';

/** A torn (partial) last record moved out of a segment. */
export interface TornRecord {
  readonly segment: string;
  readonly movedTo: string;
  readonly bytes: number;
}

/** Where the chain ends and where the next record goes. */
export interface RecoveredTail {
  /** seq and hash of the last complete record (0 / GENESIS_HASH when none). */
  readonly seq: number;
  readonly hash: string;
  /** Newest segment number (0 when there is none) and its size after recovery. */
  readonly segNo: number;
  readonly segSize: number;
  readonly segments: number;
  readonly torn: readonly TornRecord[];
}

function corrupt(dir: string, what: string): Error {
  return new Error(`audit log in ${dir} cannot be resumed: ${what}. Run 'meshgate audit verify ${dir}', keep the folder as evidence and start a new audit dir`);
}

/**
 * Splits a file's tail into its last complete line and a torn remainder,
 * reading backwards in growing windows (constant memory per line).
 */
async function tailOf(file: string): Promise<{ size: number; lastLine: string | null; tornStart: number; tooLong?: true }> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    let window = 64 * 1024;
    for (;;) {
      const start = Math.max(0, size - window);
      const buf = Buffer.allocUnsafe(size - start);
      await fh.read(buf, 0, buf.length, start);
      const lastNl = buf.lastIndexOf(10);
      const tornStart = lastNl === -1 ? (start === 0 ? 0 : -1) : start + lastNl + 1;
      if (tornStart !== -1) {
        if (lastNl === -1) return { size, lastLine: null, tornStart };
        const prevNl = lastNl === 0 ? -1 : buf.lastIndexOf(10, lastNl - 1);
        if (prevNl !== -1 || start === 0) return { size, lastLine: buf.toString('utf8', prevNl + 1, lastNl), tornStart };
      }
      if (start === 0 || window > 2 * MAX_LINE_BYTES) return { size, lastLine: null, tornStart: size, tooLong: true };
      window *= 4;
    }
  } finally {
    await fh.close();
  }
}

/** Moves bytes [from, size) of `file` into `<file>.torn-<time>` and truncates `file` to `from`. */
async function moveTornTail(file: string, from: number, size: number, clock: Clock): Promise<TornRecord> {
  const fh = await open(file, 'r+');
  try {
    const buf = Buffer.allocUnsafe(size - from);
    await fh.read(buf, 0, buf.length, from);
    const movedTo = `${file}.torn-${new Date(clock.now()).toISOString().replace(/[:.]/g, '-')}`;
    // 'wx': never overwrite earlier evidence.
    await writeFile(movedTo, buf, { flag: 'wx', mode: 0o600, flush: true });
    await fh.truncate(from);
    await fh.sync();
    return { segment: path.basename(file), movedTo: path.basename(movedTo), bytes: buf.length };
  } finally {
    await fh.close();
  }
}

/**
 * Finds the end of the chain in `dir`, moving a torn last record aside.
 * Throws when the last complete record is invalid or HEAD.json shows that
 * records it checkpointed are gone (fail closed: the writer must not
 * overwrite that evidence with a new checkpoint).
 */
export async function recoverTail(dir: string, clock: Clock): Promise<RecoveredTail> {
  const segs = await listSegments(dir);
  const head = await readHead(dir);
  if (typeof head === 'string') throw corrupt(dir, `${head} (HEAD.json)`);
  const torn: TornRecord[] = [];
  const newest = segs.at(-1);
  let seq = 0;
  let hash = GENESIS_HASH;
  let segSize = 0;
  for (let i = segs.length - 1; i >= 0; i--) {
    const seg = segs[i] as { name: string; n: number };
    const file = path.join(dir, seg.name);
    const t = await tailOf(file);
    if (t.tooLong) throw corrupt(dir, `${seg.name} ends in a line longer than ${MAX_LINE_BYTES} bytes`);
    let size = t.size;
    if (t.tornStart < t.size) {
      if (seg !== newest) throw corrupt(dir, `${seg.name} ends in a partial record but is not the newest segment`);
      torn.push(await moveTornTail(file, t.tornStart, t.size, clock));
      size = t.tornStart;
    } else if (seg === newest) {
      // Records a crashed process wrote may still be only in the page cache.
      const fh = await open(file, 'r+');
      await fh.sync().finally(() => fh.close());
    }
    if (seg === newest) segSize = size;
    if (t.lastLine === null) {
      continue; // empty segment: the chain ends in an older one
    }
    const rec = openRecord(t.lastLine);
    if (!rec.ok) throw corrupt(dir, `last record of ${seg.name} is malformed (${rec.reason})`);
    if (recordHash(rec.prev, rec.body) !== rec.hash) throw corrupt(dir, `last record of ${seg.name} (seq ${rec.seq}) does not match its hash`);
    seq = rec.seq;
    hash = rec.hash;
    break;
  }
  if (head === undefined && seq > 0) throw corrupt(dir, 'HEAD.json is missing although records exist (a deleted checkpoint hides tail truncation)');
  if (head !== undefined && head.seq > seq) throw corrupt(dir, `HEAD.json checkpoints seq ${head.seq} but the log ends at seq ${seq} (truncated)`);
  if (head !== undefined && head.seq === seq && head.hash !== hash) throw corrupt(dir, `the record at HEAD.json's seq ${seq} has a different hash (rewritten)`);
  return { seq, hash, segNo: newest?.n ?? 0, segSize, segments: segs.length, torn };
}
