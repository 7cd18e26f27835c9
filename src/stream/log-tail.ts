/**
 * Follows a live audit log (src/audit/) record by record, the way the shipper
 * needs it: from a given seq, in order, complete lines only, across segment
 * rotations, in bounded memory, without parsing more than it must.
 *
 * Two invariants of the writer make this simple and safe:
 * - segments hold consecutive seq ranges, and segment N+1 is created only
 *   after the last write to segment N (writer.ts `#openSegment`), so once
 *   N+1 exists one more read of N finds everything N will ever hold;
 * - a record is one newline-terminated line: a last line without a newline is
 *   a write in progress and is read again later from its start.
 * Every record read is checked against the previous one (seq + 1 and `prev`
 * = previous `hash`): a log that was spliced or rewritten under a running
 * shipper stops it rather than publishing a chain that does not hold.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { listSegments, segmentFileName } from '../audit/chain.ts';
import { MAX_LINE_BYTES } from '../audit/lines.ts';
import { lineFields, type LineFields } from './line-fields.ts';

/** Where the next record starts. */
export interface LogPosition {
  readonly segment: number;
  readonly offset: number;
}

/** One record as read from the log. */
export interface TailRecord {
  /** The line's bytes, without the newline (its own buffer: safe to keep). */
  readonly line: Buffer;
  readonly fields: LineFields;
  /** Position just after this record. */
  readonly next: LogPosition;
}

/** The log does not continue the way a log must (gap, splice, garbage): shipping stops there. */
export class LogTailError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogTailError';
  }
}

const CHUNK = 1024 * 1024;

/** Reads records of the audit log in `dir` in seq order, following new writes. */
export class AuditLogTail {
  readonly dir: string;
  #seg = 0;
  #offset = 0;
  #fh: FileHandle | null = null;
  #fhSeg = 0;
  #lastSeq = 0;
  #lastHash: string | undefined;
  #watcher: FSWatcher | null = null;
  #wake = new Set<() => void>();
  #chunk = CHUNK;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** seq of the last record read (or positioned after). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Position of the next record. */
  position(): LogPosition {
    return { segment: this.#seg, offset: this.#offset };
  }

  /**
   * Positions the tail so that the next record read is `afterSeq + 1`. `hint`
   * (a position saved earlier) is tried first; otherwise the segments are
   * searched. When the log ends before `afterSeq`, the tail is placed at its
   * end and `lastSeq` tells where that is.
   */
  async seek(afterSeq: number, hint?: LogPosition): Promise<void> {
    this.#lastHash = undefined;
    if (hint && hint.segment > 0 && (await this.#probe(hint, afterSeq + 1))) {
      this.#seg = hint.segment;
      this.#offset = hint.offset;
      this.#lastSeq = afterSeq;
      return;
    }
    const segs = await listSegments(this.dir).catch(() => []);
    this.#seg = segs[0]?.n ?? 0;
    this.#offset = 0;
    this.#lastSeq = 0;
    if (afterSeq <= 0 || segs.length === 0) return;
    // Start in the newest segment whose first record is at or before the target.
    for (let i = segs.length - 1; i >= 0; i--) {
      const n = (segs[i] as { n: number }).n;
      const first = await this.#firstFields(n);
      if (first && first.seq <= afterSeq + 1) {
        this.#seg = n;
        this.#lastSeq = first.seq - 1;
        break;
      }
    }
    while (this.#lastSeq < afterSeq) {
      const batch = await this.read(Math.min(4096, afterSeq - this.#lastSeq), true);
      if (batch.length === 0) return; // the log ends before afterSeq
    }
  }

  /** Reads up to `max` further records; an empty array means the log has no complete record after the position yet. */
  async read(max: number, skipping = false): Promise<TailRecord[]> {
    const out: TailRecord[] = [];
    if (this.#seg === 0) {
      const segs = await listSegments(this.dir).catch(() => []);
      if (segs.length === 0) return out;
      this.#seg = (segs[0] as { n: number }).n;
      this.#offset = 0;
    }
    let checkedNext = false;
    while (out.length < max) {
      const got = await this.#readChunk(out, max, skipping);
      if (got > 0) {
        checkedNext = false;
        continue;
      }
      if (got < 0 && checkedNext) throw new LogTailError(`${segmentFileName(this.#seg)}: partial record at the end of a segment that is no longer written`);
      // At the end of this segment: move on only once the next one exists, after one more read of this one.
      if (checkedNext) {
        this.#seg++;
        this.#offset = 0;
        checkedNext = false;
        continue;
      }
      if (!(await exists(path.join(this.dir, segmentFileName(this.#seg + 1))))) break;
      checkedNext = true;
    }
    return out;
  }

  /** Resolves when something in the audit dir changes, or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    if (!this.#watcher) {
      try {
        this.#watcher = watch(this.dir, { persistent: false }, () => this.#fire());
        this.#watcher.on('error', () => { /* folder gone: the timeout still polls */ });
      } catch {
        // Not watchable: polling alone.
      }
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake.add(done);
    });
  }

  /** Releases the file handle and the folder watch. */
  async close(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = null;
    this.#fire();
    await this.#fh?.close().catch(() => {});
    this.#fh = null;
  }

  #fire(): void {
    for (const f of [...this.#wake]) f();
  }

  async #handle(seg: number): Promise<FileHandle> {
    if (this.#fh && this.#fhSeg === seg) return this.#fh;
    await this.#fh?.close().catch(() => {});
    this.#fh = null;
    this.#fh = await open(path.join(this.dir, segmentFileName(seg)), 'r');
    this.#fhSeg = seg;
    return this.#fh;
  }

  /** Reads complete lines from the position; returns how many were taken, or -1 when only a partial line is there. */
  async #readChunk(out: TailRecord[], max: number, skipping: boolean): Promise<number> {
    let fh: FileHandle;
    try {
      fh = await this.#handle(this.#seg);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    const buf = Buffer.allocUnsafe(this.#chunk);
    const { bytesRead } = await fh.read(buf, 0, buf.length, this.#offset);
    if (bytesRead === 0) return 0;
    let start = 0;
    let taken = 0;
    while (out.length < max) {
      const nl = buf.indexOf(10, start);
      if (nl === -1 || nl >= bytesRead) break;
      // A fresh buffer per chunk: subarrays stay valid for the caller.
      const line = buf.subarray(start, nl);
      const fields = lineFields(line);
      const where = `${segmentFileName(this.#seg)} at byte ${this.#offset + start}`;
      if (!fields) throw new LogTailError(`${where}: not an audit record`);
      if (this.#lastSeq > 0 && fields.seq !== this.#lastSeq + 1) throw new LogTailError(`${where}: seq ${fields.seq} follows ${this.#lastSeq}`);
      if (this.#lastHash !== undefined && fields.prev !== this.#lastHash) throw new LogTailError(`${where}: record ${fields.seq} does not chain to record ${this.#lastSeq}`);
      this.#lastSeq = fields.seq;
      this.#lastHash = fields.hash;
      start = nl + 1;
      taken++;
      if (!skipping) out.push({ line, fields, next: { segment: this.#seg, offset: this.#offset + start } });
      else out.push(EMPTY);
    }
    this.#offset += start;
    if (taken === 0) {
      if (bytesRead === buf.length) {
        // One line longer than the chunk: grow (bounded like every audit reader).
        if (this.#chunk >= MAX_LINE_BYTES + 1) throw new LogTailError(`${segmentFileName(this.#seg)} at byte ${this.#offset}: line too long`);
        this.#chunk = Math.min(this.#chunk * 4, MAX_LINE_BYTES + 1);
        return this.#readChunk(out, max, skipping);
      }
      return -1;
    }
    return taken;
  }

  async #firstFields(seg: number): Promise<LineFields | undefined> {
    const fh = await open(path.join(this.dir, segmentFileName(seg)), 'r').catch(() => undefined);
    if (!fh) return undefined;
    try {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const nl = buf.indexOf(10);
      if (nl === -1 || nl >= bytesRead) return undefined;
      return lineFields(buf.subarray(0, nl));
    } finally {
      await fh.close();
    }
  }

  /** True when a complete record with `seq` starts at `pos`. */
  async #probe(pos: LogPosition, seq: number): Promise<boolean> {
    const fh = await open(path.join(this.dir, segmentFileName(pos.segment)), 'r').catch(() => undefined);
    if (!fh) return false;
    try {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos.offset);
      if (bytesRead === 0) {
        // At the very end of the segment: right when the next record is the next segment's first.
        return false;
      }
      const nl = buf.indexOf(10);
      if (nl === -1 || nl >= bytesRead) return false;
      return lineFields(buf.subarray(0, nl))?.seq === seq && (pos.offset === 0 || (await precededByNewline(fh, pos.offset)));
    } finally {
      await fh.close();
    }
  }
}

const EMPTY = Object.freeze({ line: Buffer.alloc(0), fields: Object.freeze({ seq: 0, prev: '', hash: '', id: '', timeMs: 0, identity: '' }), next: Object.freeze({ segment: 0, offset: 0 }) }) as TailRecord;

async function precededByNewline(fh: FileHandle, offset: number): Promise<boolean> {
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset - 1);
  return b[0] === 10;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
