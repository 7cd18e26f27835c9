/**
 * The tamper-evident audit writer (PRODUCT §1.6).
 *
 * The request path only calls `append`, which pushes the event object onto
 * an in-memory queue: no I/O, no hashing, no serialization on the caller's
 * stack. A background task (setImmediate) assigns seq/prev, hashes, and
 * writes each batch with one write per segment touched. fsync runs at most
 * every `fsyncInterval` (the crash-loss window); HEAD.json checkpoints are
 * written every `checkpointInterval` and on close, always after an fsync of
 * the records they cover, so a checkpoint never names data a crash can lose.
 * Chain format: src/audit/chain.ts; checkpoints: src/audit/head.ts.
 */
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { AuditConfig } from '../config/schema.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { GENESIS_HASH, segmentFileName } from './chain.ts';
import type { AuditEvent } from './event.ts';
import { syncDir, writeHead } from './head.ts';
import { acquireDirLock } from './lock.ts';
import { recoverTail } from './recover.ts';
import { ChainSealer, type SealedChunk } from './sealer.ts';

/** Counters for metrics and `/readyz`. */
export interface AuditWriterStats {
  /** Accepted events not yet written to the segment file. */
  readonly queued: number;
  /** Events written by this writer since open. */
  readonly written: number;
  /** Segment files in the dir. */
  readonly segments: number;
  /** seq of the newest written record (0 when the log is empty). */
  readonly lastSeq: number;
  /** Failed disk operations (each is logged and retried). */
  readonly errors: number;
  /** Events discarded: queue over `queueLimit`, appended after close, or unserializable. */
  readonly dropped: number;
}

/** Records that one write put in the log: `firstSeq..lastSeq`, whole newline-terminated lines. */
export interface WrittenRecords {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly bytes: Buffer;
}

/** Events serialized per background step: bounds the batch buffer and the time one step holds the thread. */
const MAX_BATCH = 4096;
/** How long appended events may wait to be batched into one write. */
const BATCH_WINDOW_MS = 10;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 5000;
const CLOSE_ATTEMPTS = 3;

/** Appends audit events to a hash-chained, rotated JSON Lines log in `config.dir`. */
export class AuditWriter {
  readonly #cfg: AuditConfig;
  readonly #log: Logger;
  readonly #clock: Clock;

  #queue: AuditEvent[] = [];
  #qHead = 0;
  #accepted = 0;
  /** Accepted events that are written or were discarded while serializing. */
  #settled = 0;
  #written = 0;
  #dropped = 0;
  #errors = 0;
  #dropping = false;
  #droppedAtEpisodeStart = 0;

  /** Sealing runs ahead of the disk by the pending chunks. */
  #sealer: ChainSealer | null = null;
  #pending: SealedChunk[] = [];

  // What is on disk.
  #fd: FileHandle | null = null;
  #segNo = 0;
  #segments = 0;
  #diskSeq = 0;
  #diskHash = GENESIS_HASH;
  #diskSeg = 1;
  #dirty = false;
  #headSeq = -1;
  #tornFiles: string[] = [];

  #state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  #scheduled = false;
  #draining = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryMs = RETRY_MIN_MS;
  #fsyncTimer: NodeJS.Timeout | null = null;
  #checkpointTimer: NodeJS.Timeout | null = null;
  #ioTail: Promise<unknown> = Promise.resolve();
  #closePromise: Promise<void> | null = null;
  #unlock: (() => Promise<void>) | null = null;
  #opening: Promise<void> | null = null;
  #listeners: ((w: WrittenRecords) => void)[] = [];

  constructor(config: AuditConfig, options: { logger?: Logger; clock?: Clock } = {}) {
    this.#cfg = config;
    this.#log = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Calls `listener` after every write with the records it put in the log, in
   * seq order (the embedded analyzer's in-memory feed). The listener runs on
   * the writer's I/O path: it must be quick and must not keep `bytes` beyond
   * the call without copying. Returns the unsubscribe function.
   */
  onWritten(listener: (w: WrittenRecords) => void): () => void {
    this.#listeners.push(listener);
    return () => { this.#listeners = this.#listeners.filter((l) => l !== listener); };
  }

  /**
   * Creates the dir (0700) and resumes an existing log from its last complete
   * record. A torn last line is moved to `<segment>.torn-<time>` and logged.
   * Throws (fail closed) when the tail is not a valid record or contradicts
   * HEAD.json: continuing would launder a truncation into a fresh checkpoint.
   */
  open(): Promise<void> {
    if (this.#state !== 'new') return Promise.reject(new TypeError('AuditWriter.open() may be called once'));
    this.#state = 'opening';
    this.#opening = this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    try {
      const dir = this.#cfg.dir;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const st = await stat(dir);
      if ((st.mode & 0o077) !== 0) this.#log.warn({ dir, mode: (st.mode & 0o777).toString(8) }, 'audit dir is accessible to group or others');
      this.#unlock = await acquireDirLock(dir);
      await this.#resume();
    } catch (err) {
      // Nothing may be written to a dir we could not open cleanly (it may be another writer's).
      this.#state = 'closed';
      await this.#fd?.close().catch(() => {});
      this.#fd = null;
      await this.#unlock?.();
      this.#unlock = null;
      throw err;
    }
    this.#state = 'open';
    if (this.#cfg.checkpointInterval > 0) {
      this.#checkpointTimer = setInterval(() => void this.#serial(() => this.#checkpoint(false)).catch(() => {}), this.#cfg.checkpointInterval);
      this.#checkpointTimer.unref();
    }
    if (this.#queuedCount() > 0) this.#schedule();
  }

  async #resume(): Promise<void> {
    const dir = this.#cfg.dir;
    const tail = await recoverTail(dir, this.#clock);
    for (const t of tail.torn) {
      this.#log.error({ segment: t.segment, movedTo: t.movedTo, bytes: t.bytes }, 'audit log had a torn last record (crash during write); moved aside, chain continues from the last complete record');
    }
    this.#tornFiles = tail.torn.map((t) => t.movedTo);
    this.#diskSeq = tail.seq;
    this.#diskHash = tail.hash;
    this.#diskSeg = Math.max(tail.segNo, 1);
    this.#sealer = new ChainSealer({ seq: tail.seq, hash: tail.hash, segNo: this.#diskSeg, segSize: tail.segSize }, this.#cfg.segmentBytes);
    this.#segments = tail.segments;
    if (tail.segNo > 0) await this.#openSegment(tail.segNo, false);
    await this.#checkpoint(true);
  }

  /**
   * Queues `event` for writing. O(1), never throws, never waits. The writer
   * takes the object as is: the caller must not mutate it afterwards.
   */
  append(event: AuditEvent): void {
    try {
      if (this.#state === 'closing' || this.#state === 'closed') {
        this.#drop('audit event appended after close; dropped');
        return;
      }
      if (this.#queue.length - this.#qHead >= this.#cfg.queueLimit) {
        this.#drop('audit queue full (disk too slow or failing); dropping audit events');
        return;
      }
      this.#queue.push(event);
      this.#accepted++;
      if (!this.#scheduled && this.#state === 'open') this.#schedule();
    } catch {
      // Out of memory in push or a logger failure: the request must go on.
      this.#dropped++;
    }
  }

  /** Resolves once every event appended before the call is written and fsynced. */
  async flush(): Promise<void> {
    if (this.#state !== 'open' && this.#state !== 'closing') throw new TypeError('AuditWriter is not open');
    await this.#drainTo(this.#accepted);
    await this.#serial(() => this.#sync());
  }

  /**
   * Drains the queue (retrying a failing disk a few times), fsyncs, writes a
   * final checkpoint and closes the segment. Rejects if events could not be
   * written; they are counted in the error message, never silently lost.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  /** Current counters. */
  stats(): AuditWriterStats {
    return {
      queued: this.#queuedCount(),
      written: this.#written,
      segments: this.#segments,
      lastSeq: this.#diskSeq,
      errors: this.#errors,
      dropped: this.#dropped,
    };
  }

  /** Files holding torn records moved aside by `open()`. */
  tornFiles(): readonly string[] {
    return this.#tornFiles;
  }

  async #close(): Promise<void> {
    if (this.#state === 'opening') await this.#opening?.catch(() => {});
    if (this.#state === 'new' || this.#state === 'closed') {
      // Never opened, or open() failed: there is no log to write to.
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    for (const t of [this.#retryTimer, this.#fsyncTimer]) if (t) clearTimeout(t);
    if (this.#checkpointTimer) clearInterval(this.#checkpointTimer);
    this.#retryTimer = this.#fsyncTimer = this.#checkpointTimer = null;
    let failure: unknown;
    for (let attempt = 1; attempt <= CLOSE_ATTEMPTS; attempt++) {
      try {
        await this.#drainTo(this.#accepted);
        failure = undefined;
        break;
      } catch (err) {
        failure = err;
        if (attempt < CLOSE_ATTEMPTS) await new Promise((r) => setTimeout(r, RETRY_MIN_MS * 2 ** attempt));
      }
    }
    try {
      await this.#serial(async () => {
        try {
          await this.#checkpoint(true);
        } finally {
          await this.#fd?.close();
          this.#fd = null;
        }
      });
    } finally {
      this.#state = 'closed';
      await this.#unlock?.();
      this.#unlock = null;
    }
    if (failure !== undefined) {
      const lost = this.#queuedCount();
      this.#log.error({ err: failure, lost }, 'audit writer closed with unwritten events');
      throw new Error(`audit writer could not write ${lost} event(s) before close`, { cause: failure });
    }
  }

  #queuedCount(): number {
    let n = this.#queue.length - this.#qHead;
    for (const c of this.#pending) n += c.records;
    return n;
  }

  #drop(message: string): void {
    this.#dropped++;
    if (!this.#dropping) {
      this.#dropping = true;
      this.#droppedAtEpisodeStart = this.#dropped - 1;
      try {
        this.#log.error({ queueLimit: this.#cfg.queueLimit, dropped: this.#dropped }, message);
      } catch {
        // never throw on the request path
      }
    }
  }

  #schedule(): void {
    this.#scheduled = true;
    // Batch by time: under load one write per BATCH_WINDOW_MS instead of one
    // per event-loop turn (the per-write syscall cost showed up at ~6% of the
    // request path's CPU). A full batch goes at once. The crash-loss bound is
    // still the fsync interval, which is far longer than this window.
    const queued = this.#queue.length - this.#qHead;
    const later = (fn: () => void): void => {
      if (queued >= MAX_BATCH) setImmediate(fn);
      else setTimeout(fn, BATCH_WINDOW_MS).unref();
    };
    later(() => {
      this.#scheduled = false;
      if (this.#draining || this.#retryTimer || this.#state !== 'open') return;
      this.#draining = true;
      this.#drainTo(this.#accepted)
        .then(() => {
          this.#retryMs = RETRY_MIN_MS;
          this.#afterWrite();
        })
        .catch(() => {
          // Already logged and counted; events stay queued. Back off and retry.
          this.#retryTimer = setTimeout(() => {
            this.#retryTimer = null;
            if (this.#queuedCount() > 0) this.#schedule();
          }, this.#retryMs);
          this.#retryTimer.unref();
          this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
        })
        .finally(() => {
          this.#draining = false;
          // Appends made from microtasks after the loop's last check.
          if (!this.#retryTimer && !this.#scheduled && this.#queuedCount() > 0 && this.#state === 'open') this.#schedule();
        });
    });
  }

  #afterWrite(): void {
    if (this.#dropping && this.#queue.length - this.#qHead < this.#cfg.queueLimit / 2) {
      this.#dropping = false;
      this.#log.error({ droppedInEpisode: this.#dropped - this.#droppedAtEpisodeStart, dropped: this.#dropped }, 'audit queue recovered; events were dropped');
    }
    if (!this.#dirty) return;
    if (this.#cfg.fsyncInterval <= 0) {
      void this.#serial(() => this.#sync()).catch(() => {});
    } else if (!this.#fsyncTimer) {
      this.#fsyncTimer = setTimeout(() => {
        this.#fsyncTimer = null;
        void this.#serial(() => this.#sync()).catch(() => {});
      }, this.#cfg.fsyncInterval);
      this.#fsyncTimer.unref();
    }
  }

  /** Writes until `target` accepted events are settled; `live` follows appends made meanwhile. */
  async #drainTo(target: number, live = false): Promise<void> {
    while (this.#settled < (live ? this.#accepted : target)) {
      const before = this.#settled;
      await this.#serial(() => this.#writeStep());
      if (this.#settled === before && this.#pending.length === 0 && this.#queue.length === this.#qHead) break;
    }
  }

  /** Runs disk operations one at a time, in order: writes, fsyncs, rotation and checkpoints share one fd. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#ioTail.then(fn);
    this.#ioTail = p.catch(() => {});
    return p;
  }

  #takeBatch(): void {
    const end = Math.min(this.#qHead + MAX_BATCH, this.#queue.length);
    if (end === this.#qHead || !this.#sealer) return;
    this.#pending = this.#sealer.seal(this.#queue, this.#qHead, end, (ev, err) => {
      this.#dropped++;
      this.#settled++;
      this.#log.error({ err, id: (ev as { id?: unknown }).id }, 'audit event could not be serialized; dropped');
    });
    this.#qHead = end;
    if (this.#qHead === this.#queue.length) {
      this.#queue = [];
      this.#qHead = 0;
    } else if (this.#qHead > 65536) {
      this.#queue = this.#queue.slice(this.#qHead);
      this.#qHead = 0;
    }
  }

  async #writeStep(): Promise<void> {
    if (this.#pending.length === 0) this.#takeBatch();
    try {
      while (this.#pending.length > 0) {
        const c = this.#pending[0] as SealedChunk;
        const fd = c.segNo === this.#segNo && this.#fd ? this.#fd : await this.#openSegment(c.segNo, true);
        while (c.offset < c.buf.length) {
          const { bytesWritten } = await fd.write(c.buf, c.offset, c.buf.length - c.offset);
          c.offset += bytesWritten;
        }
        this.#pending.shift();
        this.#written += c.records;
        this.#settled += c.records;
        this.#diskSeq = c.lastSeq;
        this.#diskHash = c.lastHash;
        this.#diskSeg = c.segNo;
        this.#dirty = true;
        if (this.#listeners.length > 0) this.#announce(c);
      }
    } catch (err) {
      this.#errors++;
      this.#log.error({ err, dir: this.#cfg.dir, queued: this.#queuedCount() }, 'audit write failed; events kept queued for retry');
      // Reopen on retry (append mode continues after any bytes already written):
      // the handle itself may be what broke (EIO, remounted filesystem).
      const fd = this.#fd;
      this.#fd = null;
      this.#segNo = 0;
      await fd?.close().catch(() => {});
      throw err;
    }
  }

  #announce(c: SealedChunk): void {
    const w: WrittenRecords = { firstSeq: c.lastSeq - c.records + 1, lastSeq: c.lastSeq, bytes: c.buf };
    for (const l of this.#listeners) {
      try {
        l(w);
      } catch (err) {
        this.#log.error({ err }, 'audit write listener failed');
      }
    }
  }

  async #openSegment(n: number, rotating: boolean): Promise<FileHandle> {
    // The previous segment must be durable before the chain continues elsewhere.
    if (this.#fd) {
      await this.#fd.sync();
      this.#dirty = false;
      await this.#fd.close();
      this.#fd = null;
    } else {
      await this.#sync();
    }
    const file = path.join(this.#cfg.dir, segmentFileName(n));
    const fd = await open(file, 'a', 0o600);
    this.#fd = fd;
    this.#segNo = n;
    if (rotating && n > this.#segments) {
      // Segments are numbered 1..n without gaps, so the newest number is the count.
      this.#segments = n;
      await syncDir(this.#cfg.dir);
      this.#log.info({ segment: segmentFileName(n) }, 'audit segment opened');
    }
    return fd;
  }

  async #sync(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      if (this.#fd) await this.#fd.sync();
      else {
        // The handle was dropped after a write error; written records must
        // still be durable before a checkpoint names them.
        const fh = await open(path.join(this.#cfg.dir, segmentFileName(this.#diskSeg)), 'a');
        await fh.sync().finally(() => fh.close());
      }
    } catch (err) {
      this.#dirty = true;
      this.#errors++;
      this.#log.error({ err }, 'audit fsync failed');
      throw err;
    }
  }

  /** Replaces HEAD.json atomically, after fsyncing the records it names. */
  async #checkpoint(force: boolean): Promise<void> {
    if (!force && this.#diskSeq === this.#headSeq) return;
    try {
      await this.#sync();
      const head = { seq: this.#diskSeq, hash: this.#diskHash, segment: segmentFileName(this.#diskSeg), time: new Date(this.#clock.now()).toISOString() };
      await writeHead(this.#cfg.dir, head);
      this.#headSeq = head.seq;
    } catch (err) {
      this.#errors++;
      this.#log.error({ err }, 'audit checkpoint failed');
      throw err;
    }
  }
}
