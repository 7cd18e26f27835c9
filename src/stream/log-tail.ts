/**
 * Follows a live audit log (src/audit/) record by record, the way the shipper
 * needs it: from a given seq, in order, complete lines only, across segment
 * rotations, in bounded memory, without parsing more than it must. The
 * following itself is `LineFollower`'s (src/audit/line-follower.ts).
 *
 * Every record read is checked against the previous one (seq + 1 and `prev`
 * = previous `hash`): a log that was spliced or rewritten under a running
 * shipper stops it rather than publishing a chain that does not hold. So
 * does anything else a log must not contain (a torn or over-long line, a
 * segment that shrank): the shipper then retries from its cursor.
 */
import { segmentFileName } from '../audit/chain.ts';
import { DirWaker, lineAt, LineFollower, segmentFor, type SegmentOffset } from '../audit/line-follower.ts';
import { lineFields, type LineFields } from './line-fields.ts';

/** Where the next record starts. */
export type LogPosition = SegmentOffset;

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

const PROBLEM = {
  overlong: 'line too long',
  torn: 'partial record at the end of a segment that is no longer written',
  shrank: 'segment shrank while read (truncated?)',
} as const;

function problem(segment: number, offset: number, what: string): LogTailError {
  return new LogTailError(`${segmentFileName(segment)} at byte ${offset}: ${what}`);
}

const seqOf = (line: Buffer): number | undefined => lineFields(line)?.seq;

/** Reads records of the audit log in `dir` in seq order, following new writes. */
export class AuditLogTail {
  readonly dir: string;
  readonly #lines: LineFollower;
  #lastSeq = 0;
  #lastHash: string | undefined;
  #waker: DirWaker | undefined;

  constructor(dir: string) {
    this.dir = dir;
    this.#lines = new LineFollower(dir);
  }

  /** seq of the last record read (or positioned after). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Position of the next record. */
  position(): LogPosition {
    return this.#lines.position;
  }

  /**
   * Positions the tail so that the next record read is `afterSeq + 1`. `hint`
   * (a position saved earlier) is tried first; otherwise the segments are
   * searched. When the log ends before `afterSeq`, the tail is placed at its
   * end and `lastSeq` tells where that is.
   */
  async seek(afterSeq: number, hint?: LogPosition): Promise<void> {
    this.#lastHash = undefined;
    if (hint && hint.segment > 0) {
      const line = await lineAt(this.dir, hint.segment, hint.offset);
      if (line && seqOf(line) === afterSeq + 1) {
        this.#lines.moveTo(hint);
        this.#lastSeq = afterSeq;
        return;
      }
    }
    const start = await segmentFor(this.dir, afterSeq + 1, seqOf);
    this.#lines.moveTo({ segment: start?.segment ?? 0, offset: 0 });
    this.#lastSeq = start?.firstSeq === undefined ? 0 : start.firstSeq - 1;
    if (afterSeq <= 0 || !start) return;
    while (this.#lastSeq < afterSeq) {
      const batch = await this.read(Math.min(4096, afterSeq - this.#lastSeq), true);
      if (batch.length === 0) return; // the log ends before afterSeq
    }
  }

  /** Reads up to `max` further records; an empty array means the log has no complete record after the position yet. */
  async read(max: number, skipping = false): Promise<TailRecord[]> {
    const out: TailRecord[] = [];
    while (out.length < max) {
      const r = await this.#lines.read(max - out.length);
      if (r === undefined) break;
      if (r.kind !== 'lines') throw problem(r.segment, r.offset, PROBLEM[r.kind]);
      const b = r.bytes;
      for (let start = 0, nl = b.indexOf(10); nl !== -1; start = nl + 1, nl = b.indexOf(10, start)) {
        const line = b.subarray(start, nl);
        const fields = lineFields(line);
        if (!fields) throw problem(r.segment, r.offset + start, 'not an audit record');
        if (this.#lastSeq > 0 && fields.seq !== this.#lastSeq + 1) throw problem(r.segment, r.offset + start, `seq ${fields.seq} follows ${this.#lastSeq}`);
        if (this.#lastHash !== undefined && fields.prev !== this.#lastHash) throw problem(r.segment, r.offset + start, `record ${fields.seq} does not chain to record ${this.#lastSeq}`);
        this.#lastSeq = fields.seq;
        this.#lastHash = fields.hash;
        out.push(skipping ? EMPTY : { line, fields, next: { segment: r.segment, offset: r.offset + nl + 1 } });
      }
    }
    return out;
  }

  /** Resolves when something in the audit dir changes, or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    // Made on first use: the short-lived tails of reconcile.ts never wait.
    this.#waker ??= new DirWaker(this.dir);
    return this.#waker.wait(ms);
  }

  /** Releases the file handle and the folder watch. */
  async close(): Promise<void> {
    this.#waker?.close();
    await this.#lines.close();
  }
}

const EMPTY = Object.freeze({ line: Buffer.alloc(0), fields: Object.freeze({ seq: 0, prev: '', hash: '', id: '', timeMs: 0, identity: '' }), next: Object.freeze({ segment: 0, offset: 0 }) }) as TailRecord;
