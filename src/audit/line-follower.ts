/**
 * The one way to follow a live audit log (src/audit/writer.ts) line by line,
 * shared by the analyzer, `audit tail -f` and the NATS shipper, which differ
 * only in what they make of a line.
 *
 * Two invariants of the writer make following simple and safe:
 * - a record is one newline-terminated line, so a last line without a newline
 *   is a write in progress (or torn by a crash): it is never consumed, and is
 *   read again from its start later;
 * - segment N+1 is created only after the last write to segment N, so once
 *   N+1 exists one more read of N finds everything N will ever hold.
 * Memory is bounded: a line longer than MAX_LINE_BYTES is reported, never held.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { listSegments, segmentFileName } from './chain.ts';
import { MAX_LINE_BYTES } from './lines.ts';

/** What `readLineRun` found at an offset. */
export type LineRun =
  /** Complete lines, each with its newline, in memory of their own (safe to keep). */
  | { readonly kind: 'lines'; readonly bytes: Buffer }
  /** One line of MAX_LINE_BYTES or more (newline included), not kept; `end` is just after its newline. */
  | { readonly kind: 'overlong'; readonly end: number }
  /** Bytes without a newline: a write in progress, or a torn one. */
  | { readonly kind: 'partial' };

const CHUNK = 1024 * 1024;
const PARTIAL: LineRun = Object.freeze({ kind: 'partial' });

/**
 * Reads the complete lines of `fh` from `offset` (where a line starts): as
 * many as fit in `chunkBytes`, at most `maxLines`, at least one unless it is
 * over-long. Undefined when there is nothing at `offset`.
 */
export async function readLineRun(fh: FileHandle, offset: number, maxLines = Infinity, chunkBytes = CHUNK): Promise<LineRun | undefined> {
  // A fresh buffer per read: the lines handed out may be kept by the caller.
  const buf = Buffer.allocUnsafe(chunkBytes);
  const { bytesRead } = await fh.read(buf, 0, chunkBytes, offset);
  if (bytesRead === 0) return undefined;
  const data = buf.subarray(0, bytesRead);
  let cut = -1;
  if (maxLines === Infinity) cut = data.lastIndexOf(10);
  else for (let i = 0, nl = data.indexOf(10); i < maxLines && nl !== -1; i++, nl = data.indexOf(10, nl + 1)) cut = nl;
  if (cut !== -1) return { kind: 'lines', bytes: data.subarray(0, cut + 1) };
  if (bytesRead < chunkBytes) return PARTIAL;
  // The first line does not fit: find its end without holding it, then read exactly it.
  const end = await newlineAfter(fh, offset + bytesRead, buf);
  if (end === -1) return PARTIAL;
  const len = end + 1 - offset;
  if (len > MAX_LINE_BYTES) return { kind: 'overlong', end: end + 1 };
  const line = Buffer.allocUnsafe(len);
  const got = await fh.read(line, 0, len, offset);
  return got.bytesRead === len ? { kind: 'lines', bytes: line } : PARTIAL;
}

/** File offset of the first newline at or after `from`, or -1; `scratch` is overwritten. */
async function newlineAfter(fh: FileHandle, from: number, scratch: Buffer): Promise<number> {
  for (let at = from; ;) {
    const { bytesRead } = await fh.read(scratch, 0, scratch.length, at);
    if (bytesRead === 0) return -1;
    const nl = scratch.subarray(0, bytesRead).indexOf(10);
    if (nl !== -1) return at + nl;
    at += bytesRead;
  }
}

/** A place in the log: segment number (0: the oldest, once there is one) and byte offset. */
export interface SegmentOffset {
  readonly segment: number;
  readonly offset: number;
}

/**
 * What `LineFollower#read` found. Besides lines: an over-long line (skipped),
 * a partial last line of a segment the writer has left (torn: skipped), or a
 * segment that became shorter than the offset read up to (following resumes
 * at its new end). `offset` is where the lines or the problem start.
 */
export type FollowedLines =
  | { readonly kind: 'lines'; readonly segment: number; readonly offset: number; readonly bytes: Buffer }
  | { readonly kind: 'overlong' | 'torn'; readonly segment: number; readonly offset: number }
  | { readonly kind: 'shrank'; readonly segment: number; readonly offset: number; readonly size: number };

/** Reads the lines of the audit log in `dir` in order, across segment rotation; never waits. */
export class LineFollower {
  readonly dir: string;
  #segment: number;
  #offset: number;
  #fh: FileHandle | undefined;
  #fhSegment = 0;

  constructor(dir: string, from: SegmentOffset = { segment: 0, offset: 0 }) {
    this.dir = dir;
    this.#segment = from.segment;
    this.#offset = from.offset;
  }

  /** Where the next line starts. */
  get position(): SegmentOffset {
    return { segment: this.#segment, offset: this.#offset };
  }

  /** Continues from `pos`, which must be where a line starts. */
  moveTo(pos: SegmentOffset): void {
    this.#segment = pos.segment;
    this.#offset = pos.offset;
  }

  /**
   * The next lines (at most `maxLines`) or problem, moving on to the next
   * segment once the current one is complete. Undefined when nothing
   * complete follows yet: wait (e.g. with a `DirWaker`) and read again.
   */
  async read(maxLines = Infinity): Promise<FollowedLines | undefined> {
    if (this.#segment === 0) {
      const [first] = await listSegments(this.dir).catch(() => []);
      if (!first) return undefined;
      this.#segment = first.n;
    }
    for (;;) {
      const segment = this.#segment;
      const offset = this.#offset;
      const fh = await this.#handle();
      let run = fh && (await readLineRun(fh, offset, maxLines));
      if (run === undefined && fh) {
        const { size } = await fh.stat();
        if (size < offset) {
          this.#offset = size;
          return { kind: 'shrank', segment, offset, size };
        }
      }
      if (run === undefined || run.kind === 'partial') {
        if (!(await exists(path.join(this.dir, segmentFileName(segment + 1))))) return undefined;
        // The writer has left this segment: one more read reaches its true end.
        run = fh && (await readLineRun(fh, offset, maxLines));
        if (run === undefined || run.kind === 'partial') {
          this.#segment = segment + 1;
          this.#offset = 0;
          if (run) return { kind: 'torn', segment, offset };
          continue;
        }
      }
      if (run.kind === 'overlong') {
        this.#offset = run.end;
        return { kind: 'overlong', segment, offset };
      }
      this.#offset = offset + run.bytes.length;
      return { kind: 'lines', segment, offset, bytes: run.bytes };
    }
  }

  /** Releases the open segment file. */
  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => {});
  }

  /** The current segment's file, kept open while it is read; undefined while it does not exist. */
  async #handle(): Promise<FileHandle | undefined> {
    if (this.#fh && this.#fhSegment === this.#segment) return this.#fh;
    await this.close();
    try {
      this.#fh = await open(path.join(this.dir, segmentFileName(this.#segment)), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    this.#fhSegment = this.#segment;
    return this.#fh;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The complete line (without its newline) that starts at `offset` of segment
 * `segment` in `dir`; undefined when none does (no such file, a partial or
 * over-long line, or `offset` is not just after a newline).
 */
export async function lineAt(dir: string, segment: number, offset: number): Promise<Buffer | undefined> {
  const fh = await open(path.join(dir, segmentFileName(segment)), 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    // From the byte before, to check that it ends the previous line.
    const from = offset > 0 ? offset - 1 : 0;
    const run = await readLineRun(fh, from, offset > 0 ? 2 : 1, 64 * 1024);
    if (run?.kind !== 'lines' || (offset > 0 && run.bytes[0] !== 10)) return undefined;
    const line = run.bytes.subarray(offset - from, -1);
    return offset > 0 && run.bytes.length === 1 ? undefined : line;
  } finally {
    await fh.close();
  }
}

/**
 * Where to start reading for record `seq`: the newest segment whose first
 * record (its seq read by `seqOf`) is at or before it, with that seq; else
 * the oldest segment (`firstSeq` undefined). Undefined when there is none.
 */
export async function segmentFor(dir: string, seq: number, seqOf: (line: Buffer) => number | undefined): Promise<{ segment: number; firstSeq: number | undefined } | undefined> {
  const segs = await listSegments(dir).catch(() => []);
  for (let i = segs.length - 1; i >= 0 && seq > 1; i--) {
    const n = (segs[i] as { n: number }).n;
    const line = await lineAt(dir, n, 0);
    const first = line && seqOf(line);
    if (first !== undefined && first <= seq) return { segment: n, firstSeq: first };
  }
  return segs[0] && { segment: segs[0].n, firstSeq: undefined };
}

/**
 * Wakes a follower when something in `dir` changes (a folder watch), or
 * after a poll interval — the backstop for file systems without events and
 * for a folder that does not exist yet.
 */
export class DirWaker {
  readonly dir: string;
  #watcher: FSWatcher | undefined;
  #closed = false;
  // A change seen while nobody waited: the next wait returns at once, so none is missed.
  #dirty = true;
  readonly #waiting = new Set<() => void>();

  constructor(dir: string) {
    this.dir = dir;
    this.#watch();
  }

  /** Resolves at the next change (at once if there was one since the last wait), after `ms`, or on abort. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    this.#watch();
    if (this.#dirty || signal?.aborted) {
      this.#dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done);
      this.#waiting.add(done);
    });
  }

  /** Stops watching and releases every wait. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#wake();
  }

  #wake(): void {
    if (this.#waiting.size === 0) this.#dirty = true;
    for (const done of [...this.#waiting]) done();
  }

  #watch(): void {
    if (this.#watcher || this.#closed) return;
    try {
      this.#watcher = watch(this.dir, { persistent: false }, () => this.#wake());
      // Folder gone or unwatchable: polling goes on, and the next wait tries again.
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      this.#watcher = undefined;
    }
  }
}
