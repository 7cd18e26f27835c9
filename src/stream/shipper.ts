/**
 * The shipper (PRODUCT §1.7): follows the local audit log and publishes every
 * record to JetStream, off the request path. The local log is the spool:
 * requests never wait for NATS, and whatever NATS did not acknowledge is
 * simply read again from the log.
 *
 * - One record = one message on `<prefix>.<service>.<logId>.p<partition>`,
 *   payload = the record line exactly as written (chain fields included, so
 *   a consumer can check the chain), `Nats-Msg-Id` = event id.
 * - At most `maxAckPending` publishes are unacknowledged (backpressure); the
 *   cursor advances over the contiguous acknowledged prefix only, so it never
 *   passes an event JetStream does not hold.
 * - Any failure (refused publish, ack timeout, lost connection) ends the
 *   round and its connection: the next round, on a fresh connection, asks
 *   the stream where this log's events end (reconcile.ts) and continues from
 *   there, in order. A connection is never reused after a failure and never
 *   reconnects by itself, because a NATS client replays publishes it
 *   buffered while reconnecting: events lost with the dead connection could
 *   then be followed by later ones in the stream, and the stream would no
 *   longer hold a gap-free prefix of the log (the fault test caught this).
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { AckPublisher, type PubAckResult } from './ack-publisher.ts';
import { StreamMismatchError } from './audit-stream.ts';
import { readCursor, writeCursor, type ShipperCursor } from './cursor-file.ts';
import { AuditLogTail, type LogPosition } from './log-tail.ts';
import { confirmedCursor, localIdAt, reconcileWithStream } from './reconcile.ts';
import { auditSubject, logIdOf, partitionOf } from './subjects.ts';

export interface ShipperOptions {
  /**
   * Makes a new connection (retrying until NATS answers). It must not
   * reconnect by itself (`connectNats(…, { reconnect: false })`): the shipper
   * starts every round on a fresh connection so that publishes lost with a
   * dead connection are never followed by later ones on a new connection —
   * the stream then always holds a gap-free prefix of the log (reconcile.ts).
   */
  readonly connect: () => Promise<NatsConnection>;
  /** The audit log folder. */
  readonly dir: string;
  readonly cursorFile: string;
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly service: string;
  readonly partitions: number;
  readonly maxAckPending: number;
  readonly ackTimeoutMs: number;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** seq of the newest record in the log (the in-process writer's `stats().lastSeq`), for backlog and lag. */
  readonly logHead?: () => number;
  /** Poll interval backing up the folder watch (default 100 ms). */
  readonly pollMs?: number;
  /** How often the cursor file is rewritten while it moves (default 200 ms). */
  readonly cursorIntervalMs?: number;
  /** Runs before the first round once connected (the stream check); a StreamMismatchError stops the shipper. */
  readonly onConnect?: (jsm: JetStreamManager) => Promise<void>;
}

/** Counters and gauges for /metrics. */
export interface ShipperStats {
  readonly state: 'connecting' | 'shipping' | 'retrying' | 'stopped' | 'failed';
  readonly connected: boolean;
  /** seq of the last record JetStream acknowledged. */
  readonly cursorSeq: number;
  /** seq of the newest record in the local log. */
  readonly headSeq: number;
  /** Records in the log not yet acknowledged. */
  readonly backlog: number;
  /** Seconds between now and the oldest unacknowledged record's event time (0 when caught up). */
  readonly lagSeconds: number;
  readonly inFlight: number;
  /** Records acknowledged (duplicates included) since start. */
  readonly published: number;
  /** Acknowledged as duplicates (a retry of something already stored). */
  readonly duplicates: number;
  /** Refused publishes and ack timeouts. */
  readonly publishErrors: number;
  /** Rounds restarted after a failure. */
  readonly retries: number;
  readonly lastError: string | undefined;
}

interface Entry { readonly seq: number; readonly id: string; readonly timeMs: number; readonly next: LogPosition; readonly sentAt: number; acked: boolean }

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 5000;

/** Ships one audit log to JetStream. `start()` once, `stop()` once. */
export class Shipper {
  readonly #opts: ShipperOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  #nc: NatsConnection | undefined;
  readonly #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #state: ShipperStats['state'] = 'connecting';
  #connected = false;
  #stopping = false;
  #loop: Promise<void> | undefined;

  #logId: string | undefined;
  #cursor: ShipperCursor | undefined;
  #cursorWritten: ShipperCursor | undefined;
  #cursorTimer: NodeJS.Timeout | undefined;
  #cursorWrite: Promise<void> = Promise.resolve();
  /** Unacknowledged publishes in seq order: `#window[#head…]` (a deque; splicing per ack was O(window)). */
  #window: Entry[] = [];
  #wHead = 0;
  #waiters = new Set<() => void>();
  #stopDeadline = 0;
  #failure: string | undefined;
  #lastAckedTimeMs = Number.NaN;
  #readSeq = 0;
  #published = 0;
  #duplicates = 0;
  #errors = 0;
  #retries = 0;
  #lastError: string | undefined;
  #firstRound = true;

  constructor(opts: ShipperOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
    this.#clock = opts.clock ?? systemClock;
    this.#stopped = new Promise((r) => { this.#resolveStopped = r; });
  }

  /** Starts shipping in the background (resolves at once). */
  start(): void {
    if (this.#loop) throw new TypeError('Shipper.start() may be called once');
    this.#loop = this.#run().catch((err: unknown) => {
      this.#state = 'failed';
      this.#lastError = (err as Error).message;
      this.#log.error({ err }, 'audit shipper stopped: events stay in the local audit log');
    });
  }

  /** Stops publishing, waits up to `graceMs` for outstanding acknowledgements, and saves the cursor. */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopDeadline = Date.now() + graceMs;
    this.#stopping = true;
    this.#resolveStopped();
    this.#poke();
    await Promise.race([this.#loop, sleep(graceMs + 100)]);
    if (this.#cursorTimer) clearTimeout(this.#cursorTimer);
    await this.#saveCursor();
    this.#state = this.#state === 'failed' ? 'failed' : 'stopped';
  }

  /** Resolves once every record up to `seq` (default: the log's head) is acknowledged; rejects after `timeoutMs`. */
  async waitFor(seq = this.#head(), timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#cursor?.seq ?? 0) < seq) {
      if (Date.now() > deadline) throw new Error(`shipper did not reach seq ${seq} (at ${this.#cursor?.seq ?? 0})`);
      await sleep(10);
    }
  }

  stats(): ShipperStats {
    const cursorSeq = this.#cursor?.seq ?? 0;
    const headSeq = Math.max(this.#head(), cursorSeq);
    const backlog = headSeq - cursorSeq;
    const oldest = this.#window[this.#wHead]?.timeMs ?? this.#lastAckedTimeMs;
    const lagSeconds = backlog > 0 && Number.isFinite(oldest) ? Math.max(0, (this.#clock.now() - oldest) / 1000) : 0;
    return {
      state: this.#state, connected: this.#connected, cursorSeq, headSeq, backlog, lagSeconds, inFlight: this.#inFlight(),
      published: this.#published, duplicates: this.#duplicates, publishErrors: this.#errors, retries: this.#retries, lastError: this.#lastError,
    };
  }

  /** Health for /readyz detail. Always `ready`: a broker outage must not take the gateway out of service. */
  status(): ComponentStatus {
    const s = this.stats();
    return {
      name: 'audit-shipper', ready: true, state: s.state === 'shipping' ? 'ok' : s.state === 'failed' ? 'unavailable' : 'degraded',
      lastLoad: undefined, lastError: s.lastError, reloads: s.retries, reloadFailures: s.publishErrors, version: this.#logId,
    };
  }

  #head(): number {
    return Math.max(this.#opts.logHead?.() ?? 0, this.#readSeq);
  }

  #inFlight(): number {
    return this.#window.length - this.#wHead;
  }

  #poke(): void {
    const w = [...this.#waiters];
    this.#waiters.clear();
    for (const f of w) f();
  }

  async #run(): Promise<void> {
    this.#cursor = await readCursor(this.#opts.cursorFile);
    const tail = new AuditLogTail(this.#opts.dir);
    let checked = false;
    let backoff = BACKOFF_MIN_MS;
    try {
      while (!this.#stopping) {
        let nc: NatsConnection | undefined;
        let publisher: AckPublisher | undefined;
        try {
          nc = await this.#connect();
          if (!nc) break;
          const jsm = await jetstreamManager(nc);
          if (!checked) await this.#opts.onConnect?.(jsm);
          checked = true;
          this.#logId ??= this.#cursor?.logId ?? (await this.#waitForLogId(tail));
          if (!this.#logId) break;
          publisher = new AckPublisher(nc, this.#opts.stream, (token, r) => this.#onAck(token, r));
          await this.#round(nc, jsm, tail, publisher);
          backoff = BACKOFF_MIN_MS;
        } catch (err) {
          if (err instanceof StreamMismatchError) throw err;
          if (!this.#failure) this.#errors++;
          const message = this.#failure ?? (err as Error).message;
          if (this.#lastError !== message || this.#state !== 'retrying') this.#log.warn({ err: message, cursorSeq: this.#cursor?.seq ?? 0 }, 'audit shipping interrupted; the local log keeps the events and shipping resumes from the cursor');
          this.#lastError = message;
          this.#state = 'retrying';
          this.#retries++;
        } finally {
          publisher?.close();
          // Never reuse a connection after a failed round: anything it still holds must not reach the stream after the next round's reconcile.
          if (nc && (this.#stopping || this.#failure !== undefined || this.#state === 'retrying')) {
            this.#nc = undefined;
            this.#connected = false;
            await nc.close().catch(() => {});
          }
        }
        if (this.#state === 'retrying' && !this.#stopping) {
          await this.#pause(backoff);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        }
      }
    } finally {
      await this.#nc?.close().catch(() => {});
      this.#connected = false;
      await tail.close();
    }
  }

  /** The round's connection: the current one while it lives, else a fresh one (reconnect disabled, see the file comment). */
  async #connect(): Promise<NatsConnection | undefined> {
    if (this.#nc && !this.#nc.isClosed()) return this.#nc;
    this.#nc = undefined;
    const nc = await Promise.race([this.#opts.connect(), this.#stopped.then(() => undefined)]);
    if (!nc) return undefined;
    if (this.#stopping) {
      await nc.close().catch(() => {});
      return undefined;
    }
    this.#nc = nc;
    this.#connected = true;
    void nc.closed().then(() => {
      if (this.#nc !== nc) return; // a connection the shipper already dropped
      this.#connected = false;
      this.#failure ??= 'NATS connection lost';
      this.#poke();
    });
    return nc;
  }

  /** One round: find where to resume, then publish until a failure or stop. */
  async #round(nc: NatsConnection, jsm: JetStreamManager, tail: AuditLogTail, publisher: AckPublisher): Promise<void> {
    const o = this.#opts;
    const logId = this.#logId as string;
    this.#failure = nc.isClosed() ? 'NATS connection lost' : undefined;
    this.#window = [];
    this.#wHead = 0;
    const saved = this.#cursor?.seq ?? 0;
    let base = this.#firstRound ? await confirmedCursor(o.dir, this.#cursor, this.#log) : saved;
    base = await reconcileWithStream({ jsm, stream: o.stream, prefix: o.subjectPrefix, service: o.service, logId, partitions: o.partitions, dir: o.dir, base, log: this.#log });
    await tail.seek(base, saved === base ? this.#cursor?.next : undefined);
    if (base !== saved) {
      this.#log.info({ from: saved, to: base }, 'shipper cursor moved to where this log\'s events end in the stream');
      this.#setCursor({ v: 1, logId, seq: base, id: (await localIdAt(o.dir, base)) ?? '', next: tail.position() }, Number.NaN, true);
    }
    this.#firstRound = false;
    this.#state = 'shipping';
    // When stopping, no new reads, but outstanding acknowledgements are still collected until the grace deadline.
    while (!this.#stopping || (this.#inFlight() > 0 && Date.now() < this.#stopDeadline)) {
      if (this.#failure) throw new Error(this.#failure);
      const oldest = this.#window[this.#wHead];
      if (oldest && Date.now() - oldest.sentAt > o.ackTimeoutMs) throw new Error(`no acknowledgement from JetStream within ${o.ackTimeoutMs} ms`);
      const room = o.maxAckPending - this.#inFlight();
      const records = room > 0 && !this.#stopping ? await tail.read(Math.min(room, 1024)) : [];
      if (records.length === 0) {
        await (this.#inFlight() > 0 || this.#stopping ? this.#pause(50) : Promise.race([tail.waitForChange(o.pollMs ?? 100), this.#pause(o.pollMs ?? 100)]));
        continue;
      }
      const now = Date.now();
      for (const r of records) {
        const f = r.fields;
        this.#readSeq = Math.max(this.#readSeq, f.seq);
        this.#window.push({ seq: f.seq, id: f.id, timeMs: f.timeMs, next: r.next, sentAt: now, acked: false });
        try {
          publisher.publish(auditSubject(o.subjectPrefix, o.service, logId, partitionOf(f.identity, o.partitions)), r.line, f.id, f.seq);
        } catch (err) {
          throw new Error(`publish failed: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }

  #onAck(seq: number, r: PubAckResult): void {
    const first = this.#window[this.#wHead];
    if (!first) return;
    const e = this.#window[this.#wHead + seq - first.seq];
    if (!e || e.seq !== seq || e.acked) return;
    if (!r.ok) {
      this.#errors++;
      this.#failure ??= `JetStream refused event seq ${seq}: ${r.error}`;
      this.#poke();
      return;
    }
    e.acked = true;
    this.#published++;
    if (r.duplicate) this.#duplicates++;
    let last: Entry | undefined;
    while (this.#wHead < this.#window.length && (this.#window[this.#wHead] as Entry).acked) last = this.#window[this.#wHead++];
    if (!last) return;
    if (this.#wHead === this.#window.length) {
      this.#window = [];
      this.#wHead = 0;
    } else if (this.#wHead > 8192) {
      this.#window = this.#window.slice(this.#wHead);
      this.#wHead = 0;
    }
    this.#setCursor({ v: 1, logId: this.#logId as string, seq: last.seq, id: last.id, next: last.next }, last.timeMs, false);
    this.#poke();
  }

  #setCursor(c: ShipperCursor, timeMs: number, now: boolean): void {
    this.#cursor = c;
    this.#lastAckedTimeMs = timeMs;
    if (now) {
      void this.#saveCursor();
    } else if (!this.#cursorTimer) {
      this.#cursorTimer = setTimeout(() => {
        this.#cursorTimer = undefined;
        void this.#saveCursor();
      }, this.#opts.cursorIntervalMs ?? 200);
      this.#cursorTimer.unref();
    }
  }

  #saveCursor(): Promise<void> {
    this.#cursorWrite = this.#cursorWrite.then(async () => {
      const c = this.#cursor;
      if (!c || c === this.#cursorWritten) return;
      try {
        await writeCursor(this.#opts.cursorFile, c);
        this.#cursorWritten = c;
      } catch (err) {
        this.#log.error({ err, file: this.#opts.cursorFile }, 'cannot write the shipper cursor (shipping continues; a restart re-ships from the last saved cursor)');
      }
    });
    return this.#cursorWrite;
  }

  async #waitForLogId(tail: AuditLogTail): Promise<string | undefined> {
    while (!this.#stopping) {
      await tail.seek(0);
      const [first] = await tail.read(1);
      if (first) return logIdOf(first.fields.hash);
      await tail.waitForChange(this.#opts.pollMs ?? 100);
    }
    return undefined;
  }

  /** Sleeps `ms`, or less when an ack, a reconnect or stop() pokes. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
