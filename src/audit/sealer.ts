/**
 * Turns queued events into sealed records: assigns seq and prev, hashes, and
 * cuts the result into per-segment byte chunks, rotating at record
 * boundaries. Pure CPU; the writer does the I/O.
 */
import { sealRecord } from './chain.ts';
import type { AuditEvent } from './event.ts';

/** Records ready to be appended to one segment, in one write. */
export interface SealedChunk {
  readonly segNo: number;
  readonly buf: Buffer;
  /** Bytes of `buf` already written (a short write or an error leaves the rest). */
  offset: number;
  readonly records: number;
  readonly lastSeq: number;
  readonly lastHash: string;
}

/** The chain position of the next record to seal. */
export class ChainSealer {
  readonly #segmentBytes: number;
  #seq: number;
  #hash: string;
  #segNo: number;
  #segSize: number;

  /** Continues after record `seq` with hash `hash`, appending to segment `segNo` that holds `segSize` bytes. */
  constructor(at: { seq: number; hash: string; segNo: number; segSize: number }, segmentBytes: number) {
    this.#seq = at.seq;
    this.#hash = at.hash;
    this.#segNo = at.segNo;
    this.#segSize = at.segSize;
    this.#segmentBytes = segmentBytes;
  }

  /**
   * Seals `events[start..end)`. An event that cannot be serialized (a BigInt,
   * a cycle: a caller bug) is reported to `onError` and skipped rather than
   * stalling the log. A record larger than segmentBytes gets a segment alone.
   */
  seal(events: readonly AuditEvent[], start: number, end: number, onError: (event: AuditEvent, err: unknown) => void): SealedChunk[] {
    const chunks: SealedChunk[] = [];
    const lines: string[] = [];
    let records = 0;
    const cut = (): void => {
      if (records === 0) return;
      chunks.push({ segNo: this.#segNo, buf: Buffer.from(lines.join('')), offset: 0, records, lastSeq: this.#seq, lastHash: this.#hash });
      lines.length = 0;
      records = 0;
    };
    for (let i = start; i < end; i++) {
      const ev = events[i] as AuditEvent;
      let sealed: { line: string; hash: string };
      try {
        sealed = sealRecord(this.#seq + 1, this.#hash, ev);
      } catch (err) {
        onError(ev, err);
        continue;
      }
      const bytes = Buffer.byteLength(sealed.line);
      // Rotate at a record boundary so that no record spans two segments.
      if (this.#segSize > 0 && this.#segSize + bytes > this.#segmentBytes) {
        cut();
        this.#segNo++;
        this.#segSize = 0;
      }
      this.#seq++;
      this.#hash = sealed.hash;
      this.#segSize += bytes;
      lines.push(sealed.line);
      records++;
    }
    cut();
    return chunks;
  }
}
