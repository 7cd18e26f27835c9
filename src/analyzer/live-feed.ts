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

  /** The oldest chunk, left in place; undefined when there is none. */
  peek(): LiveChunk | undefined {
    return this.#queue[0];
  }

  /** Removes the oldest chunk (the one `peek` returned). */
  shift(): void {
    const c = this.#queue.shift();
    if (c) this.#bytes -= c.bytes.byteLength;
  }

  /** Resolves once a chunk is queued, after `timeoutMs`, on close or when `signal` aborts. */
  async wait(signal?: AbortSignal, timeoutMs = Infinity): Promise<void> {
    if (this.#queue.length > 0 || this.#closed || signal?.aborted) return;
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

  get closed(): boolean {
    return this.#closed;
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
  const stopped = (): boolean => opts.signal?.aborted === true || live.closed;

  /**
   * Reads from the files, with one follower for the whole catch-up, until
   * the oldest queued chunk continues where the files got to — that chunk
   * may move on while we read, as the bound drops older ones — or, with no
   * chunk queued, past `atLeast`.
   */
  async function* fromDisk(atLeast: number): AsyncGenerator<AuditRecord[]> {
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
        const head = live.peek();
        if (head ? head.firstSeq <= next : next > atLeast) break;
        if (stopped()) break;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  for (;;) {
    await live.wait(opts.signal, pollMs);
    if (stopped()) return;
    const chunk = live.peek();
    if (chunk === undefined) {
      const tail = await latestRecord(dir).catch(() => undefined);
      if (tail !== undefined && tail.seq >= next) yield* fromDisk(tail.seq);
      continue;
    }
    // A gap: those records were written before this chunk was handed over, so the files have them.
    if (chunk.firstSeq > next) {
      yield* fromDisk(chunk.firstSeq - 1);
      continue;
    }
    live.shift();
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
    // Back to the event loop between chunks: otherwise a queue of chunks is
    // worked off in microtasks alone, and the port's messages (new chunks,
    // 'stop') and timers wait — unbounded in the port instead of bounded here.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
