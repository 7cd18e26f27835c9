/**
 * Following a live audit log (PRODUCT §1.7): yields records across segments
 * in seq order and keeps waiting for more, like `tail -F` over the rotated
 * segment files. New data is noticed through a folder watch, with polling as
 * the backstop (network file systems, missed events).
 *
 * Invariants the writer (src/audit/writer.ts) gives us and we rely on:
 * records are appended whole lines at a time, except that a crash can leave a
 * partial last line — which we never consume: we only advance past a newline,
 * and a restarted writer cuts such a tail off before appending again. A
 * segment is complete once the next one exists (the writer fsyncs and closes
 * a segment before it creates the next).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { listSegments, openRecord, segmentFileName } from '../audit/chain.ts';
import type { AuditRecord } from '../audit/event.ts';
import { readFileLines } from '../audit/lines.ts';

export interface FollowOptions {
  /** First seq wanted (default 1). */
  readonly fromSeq?: number;
  /** Polling backstop interval (default 250 ms). */
  readonly pollMs?: number;
  /** Ends the iteration (it returns normally). */
  readonly signal?: AbortSignal;
  /** Called for a line that is not a record; it is skipped (the chain is `audit verify`'s business). */
  readonly onSkip?: (info: { segment: string; offset: number; reason: string }) => void;
  /** Most records per batch (default 1024). */
  readonly batchSize?: number;
}

const CHUNK = 256 * 1024;
const MAX_LINE = 16 * 1024 * 1024;

/** Wakes the follower when the folder changes, every `pollMs`, or on abort. */
class Waker {
  #dirty = true;
  #resolve: (() => void) | undefined;
  readonly #watcher: FSWatcher | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#wake();

  constructor(dir: string, pollMs: number, signal: AbortSignal | undefined) {
    let w: FSWatcher | undefined;
    try {
      w = watch(dir, { persistent: false }, () => this.#wake());
      w.on('error', () => { /* folder gone or unwatchable: polling continues */ });
    } catch {
      w = undefined;
    }
    this.#watcher = w;
    this.#timer = setInterval(() => this.#wake(), pollMs);
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort);
  }

  #wake(): void {
    this.#dirty = true;
    const r = this.#resolve;
    this.#resolve = undefined;
    r?.();
  }

  /** Resolves at the next change (at once if one happened since the last call). */
  wait(): Promise<void> {
    if (this.#dirty || this.#signal?.aborted) {
      this.#dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = () => {
        this.#dirty = false;
        resolve();
      };
    });
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#wake();
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

/** The segment number holding `fromSeq`: the newest whose first record is at or before it. */
async function startSegment(dir: string, fromSeq: number): Promise<number | undefined> {
  const segs = await listSegments(dir).catch(() => []);
  if (segs.length === 0) return undefined;
  for (let i = segs.length - 1; i > 0 && fromSeq > 1; i--) {
    const s = segs[i] as { name: string; n: number };
    for await (const l of readFileLines(path.join(dir, s.name))) {
      const r = l.complete ? openRecord(l.text) : undefined;
      if (r?.ok && r.seq <= fromSeq) return s.n;
      break;
    }
  }
  return (segs[0] as { n: number }).n;
}

/**
 * Yields batches of records with seq ≥ `fromSeq`, in order, from the audit
 * log in `dir`, and keeps following it until `signal` aborts (or the consumer
 * stops iterating). The folder may not exist yet.
 */
export async function* followAuditBatches(dir: string, opts: FollowOptions = {}): AsyncGenerator<AuditRecord[]> {
  const fromSeq = opts.fromSeq ?? 1;
  const batchSize = opts.batchSize ?? 1024;
  const waker = new Waker(dir, opts.pollMs ?? 250, opts.signal);
  const aborted = (): boolean => opts.signal?.aborted === true;
  let fh: FileHandle | undefined;
  try {
    let seg: number | undefined;
    while (seg === undefined) {
      if (aborted()) return;
      seg = await startSegment(dir, fromSeq);
      if (seg === undefined) await waker.wait();
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const name = segmentFileName(seg);
      fh = await open(path.join(dir, name), 'r');
      let pos = 0;
      let carry: Buffer = Buffer.alloc(0);
      let skipping = false;
      for (;;) {
        if (aborted()) return;
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead > 0) {
          pos += bytesRead;
          let data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
          let batch: AuditRecord[] = [];
          let start = 0;
          const lineBase = pos - data.length;
          for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
            if (skipping) {
              skipping = false; // the rest of an over-long line
            } else {
              const r = openRecord(data.toString('utf8', start, nl));
              if (!r.ok) opts.onSkip?.({ segment: name, offset: lineBase + start, reason: r.reason });
              else if (r.seq >= fromSeq) batch.push(r.record as unknown as AuditRecord);
            }
            start = nl + 1;
            if (batch.length >= batchSize) {
              yield batch;
              batch = [];
            }
          }
          if (batch.length > 0) yield batch;
          // `buf` is reused by the next read: copy the partial line out.
          carry = Buffer.from(data.subarray(start));
          data = Buffer.alloc(0);
          if (carry.length > MAX_LINE) {
            opts.onSkip?.({ segment: name, offset: pos - carry.length, reason: 'line too long' });
            carry = Buffer.alloc(0);
            skipping = true;
          }
          continue;
        }
        // End of what is written. The segment is finished once the next one exists;
        // read once more after seeing it, since the last write may have landed in between.
        if (await exists(path.join(dir, segmentFileName(seg + 1)))) {
          const again = await fh.read(buf, 0, 1, pos);
          if (again.bytesRead > 0) continue;
          if (carry.length > 0) opts.onSkip?.({ segment: name, offset: pos - carry.length, reason: 'partial record at the end of an older segment' });
          break;
        }
        await waker.wait();
      }
      await fh.close();
      fh = undefined;
      seg++;
    }
  } finally {
    waker.close();
    await fh?.close().catch(() => {});
  }
}

/** Yields the records of `followAuditBatches` one at a time. */
export async function* followAudit(dir: string, opts: FollowOptions = {}): AsyncGenerator<AuditRecord> {
  for await (const batch of followAuditBatches(dir, opts)) yield* batch;
}
