/**
 * The embedded analyzer's in-memory feed: the gateway hands the worker each
 * chunk of records right after the audit writer has written it, so that the
 * worker does not read back, by file watch and polling, what the same process
 * wrote a moment ago. On one core that read-back (wake-ups, reads, stats of
 * the next segment) was part of every request's cost.
 *
 * The log stays the truth: chunks are only a shortcut to records that are
 * already in it. Whenever the next chunk does not start at the next seq the
 * analyzer needs — after a (re)start from the cursor, or because chunks were
 * dropped while the worker was behind — the records in between are read from
 * the files first (`followAuditBatches`), so nothing is skipped and nothing is
 * processed twice. Memory is bounded: over `maxBytes` of unprocessed chunks,
 * the oldest are dropped and later read from disk instead.
 */
import { openRecord } from '../audit/chain.ts';
import type { AuditRecord } from '../audit/event.ts';
import { latestRecord } from './audit-tail.ts';
import { followAuditBatches, type FollowOptions } from './follow.ts';

/** Records `firstSeq..lastSeq` as the writer wrote them: whole lines, newline-terminated. */
export interface LiveChunk {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly bytes: Uint8Array;
}

/** Unprocessed chunks, oldest first; bounded by bytes. */
export class LiveChunks {
  readonly #max: number;
  #queue: LiveChunk[] = [];
  #bytes = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  /** Chunks dropped because the consumer was behind (their records are read from disk). */
  dropped = 0;

  constructor(maxBytes = 32 * 1024 * 1024) {
    this.#max = maxBytes;
  }

  push(chunk: LiveChunk): void {
    if (this.#closed) return;
    this.#queue.push(chunk);
    this.#bytes += chunk.bytes.byteLength;
    while (this.#bytes > this.#max && this.#queue.length > 1) {
      const old = this.#queue.shift() as LiveChunk;
      this.#bytes -= old.bytes.byteLength;
      this.dropped++;
    }
    this.#signal();
  }

  /** The oldest chunk; waits up to `timeoutMs` for one. Undefined on timeout, once closed, or when `signal` aborts. */
  async take(signal?: AbortSignal, timeoutMs = Infinity): Promise<LiveChunk | undefined> {
    if (this.#closed || signal?.aborted) return undefined;
    if (this.#queue.length === 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.#wake = undefined;
          resolve();
        };
        const timer = Number.isFinite(timeoutMs) ? setTimeout(done, timeoutMs) : undefined;
        this.#wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    if (this.#closed || signal?.aborted) return undefined;
    const c = this.#queue.shift();
    if (c) this.#bytes -= c.bytes.byteLength;
    return c;
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#bytes = 0;
    this.#signal();
  }

  #signal(): void {
    this.#wake?.();
  }
}

/**
 * Yields batches of records with seq ≥ `opts.fromSeq` from `live`, reading
 * from the log in `dir` whatever the chunks do not cover. Same contract as
 * `followAuditBatches`: in seq order, until `opts.signal` aborts. When no
 * chunk has come for `opts.pollMs`, the log's end is checked, so that records
 * written before this follower started are processed without waiting for
 * new traffic.
 */
export async function* followLive(dir: string, live: LiveChunks, opts: FollowOptions = {}): AsyncGenerator<AuditRecord[]> {
  let next = opts.fromSeq ?? 1;
  const batchSize = opts.batchSize ?? 1024;
  const pollMs = opts.pollMs ?? 250;

  /** Reads records next..target-1 from the files (they are written: a chunk or the tail says so). */
  async function* fromDisk(target: number): AsyncGenerator<AuditRecord[]> {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const batch of followAuditBatches(dir, { ...opts, fromSeq: next, signal: stop.signal })) {
        const fresh = batch.filter((r) => r.seq >= next);
        if (fresh.length > 0) {
          yield fresh;
          next = (fresh[fresh.length - 1] as AuditRecord).seq + 1;
        }
        if (next >= target) break;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  for (;;) {
    const chunk = await live.take(opts.signal, pollMs);
    if (opts.signal?.aborted) return;
    if (chunk === undefined) {
      const tail = await latestRecord(dir).catch(() => undefined);
      if (tail !== undefined && tail.seq >= next) yield* fromDisk(tail.seq + 1);
      continue;
    }
    if (chunk.lastSeq < next) continue;
    // A gap: those records were written before this chunk was handed over, so the files have them.
    if (chunk.firstSeq > next) yield* fromDisk(chunk.firstSeq);
    if (opts.signal?.aborted) return;
    if (chunk.lastSeq < next) continue;
    let batch: AuditRecord[] = [];
    const text = Buffer.from(chunk.bytes.buffer, chunk.bytes.byteOffset, chunk.bytes.byteLength);
    let start = 0;
    for (let nl = text.indexOf(10, start); nl !== -1; nl = text.indexOf(10, start)) {
      const r = openRecord(text.toString('utf8', start, nl));
      if (!r.ok) opts.onSkip?.({ segment: '(live)', offset: start, reason: r.reason });
      else if (r.seq >= next) batch.push(r.record as unknown as AuditRecord);
      start = nl + 1;
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    next = chunk.lastSeq + 1;
  }
}
