/**
 * The live analyzer (PRODUCT §1.7, §1.8): follows audit logs, feeds every
 * record to the detection engine in seq order, sends alerts to the sinks and
 * turns remediation orders into quarantine decisions.
 *
 * Restart guarantee — nothing skipped, no alert raised twice:
 *  - cursor.json (last seq + engine state) is written every N events / T ms
 *    and on stop, only after alerts.jsonl is fsynced up to that point;
 *  - after a crash, the records after the cursor are processed again from
 *    the cursor's engine state, so the engine raises the same alerts again;
 *    the emissions already in alerts.jsonl after the cursor's offset are
 *    recognised by (id, count, lastSeen) and not emitted a second time;
 *  - decisions ordered by rules have ids derived from their alert, so the
 *    store returns the existing decision instead of a second one.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { acquireDirLock } from '../audit/lock.ts';
import type { AuditRecord } from '../audit/event.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { DecisionStore } from '../decisions/decision-store.ts';
import type { EscalationPolicy } from '../decisions/escalation.ts';
import { latestRecord } from './audit-tail.ts';
import { BatchChannel } from './batch-channel.ts';
import { readCursor, writeCursor } from './cursor.ts';
import { followAuditBatches, type FollowOptions } from './follow.ts';
import { OutputRouter } from './output-router.ts';
import { AlertsLog, emissionKey, readAlertLines } from './sinks/alerts-log.ts';
import { createLogSink } from './sinks/log-sink.ts';
import type { AlertSink, SinkStats } from './sinks/sink.ts';
import { WebhookSink, type WebhookOptions } from './sinks/webhook-sink.ts';
import type { DetectionEngine, EngineOutput } from './types.ts';

export interface AnalyzerServiceOptions {
  /** Audit log folders to follow (the gateway's own in embedded mode). */
  readonly auditDirs: readonly string[];
  /** State folder: cursor.json, alerts.jsonl, decisions.json. */
  readonly stateDir: string;
  readonly engine: DetectionEngine;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly webhook?: Omit<WebhookOptions, 'logger'> | undefined;
  /** Extra sinks (after alerts.jsonl, the log and the webhook). */
  readonly sinks?: readonly AlertSink[];
  /**
   * Write the cursor after this many events (default 100 000) … Each cursor
   * serializes the whole engine state (megabytes under load), so this bounds
   * a measurable share of the CPU; after a crash, events since the last
   * cursor are re-processed and their alerts de-duplicated by id.
   */
  readonly checkpointEvery?: number;
  /** … or this long after the last one when there is something new (default 10 s). */
  readonly checkpointIntervalMs?: number;
  readonly pollMs?: number;
  /**
   * How records are followed (default: `followAuditBatches`, reading the
   * files). The embedded analyzer passes its in-memory feed (live-feed.ts).
   */
  readonly follow?: (dir: string, opts: FollowOptions) => AsyncIterable<AuditRecord[]>;
  /** Most records handed to the engine at once (default 1024); the loop yields to I/O between batches. */
  readonly batchSize?: number;
  readonly alertsFsyncMs?: number;
  readonly escalation?: Partial<EscalationPolicy>;
}

/** Counters for /metrics and `meshgate analyzer run`. */
export interface AnalyzerStats {
  readonly running: boolean;
  readonly eventsProcessed: number;
  /** Last processed seq per audit dir. */
  readonly positions: Readonly<Record<string, number>>;
  /** Records written to the audit logs but not processed yet (as of the last lag probe, ≤ 1 s old). */
  readonly lagEvents: number;
  /** Event-time distance between the newest written and the last processed record. */
  readonly lagSeconds: number;
  readonly alerts: number;
  readonly alertsSuppressed: number;
  readonly alertsDeduplicated: number;
  readonly decisions: number;
  readonly remediationsExcepted: number;
  readonly engineErrors: number;
  readonly skippedLines: number;
  readonly seqGaps: number;
  readonly checkpoints: number;
  readonly webhook?: SinkStats;
}

/** A running analyzer; `stop()` checkpoints and releases the state folder. */
export class AnalyzerService {
  readonly #o: AnalyzerServiceOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #dirs: string[];
  readonly #abort = new AbortController();
  readonly #pos: Record<string, number> = {};
  readonly #lastTime: Record<string, number> = {};
  readonly #latest = new Map<string, { seq: number; timeMs: number }>();
  readonly #seen: Set<string>;
  readonly #waiters: { dir: string; seq: number; resolve: () => void }[] = [];
  #router!: OutputRouter;
  #alertsLog!: AlertsLog;
  #webhook: WebhookSink | undefined;
  #sinks: AlertSink[] = [];
  #unlock: (() => Promise<void>) | undefined;
  #lagTimer: NodeJS.Timeout | undefined;
  #done!: Promise<void>;
  #stopping: Promise<void> | undefined;
  #running = false;
  #sinceCheckpoint = 0;
  #lastCheckpoint = performance.now();
  #c = { events: 0, engineErrors: 0, skipped: 0, gaps: 0, checkpoints: 0 };

  private constructor(o: AnalyzerServiceOptions, seen: Set<string>) {
    if (o.auditDirs.length === 0) throw new TypeError('at least one audit dir is required');
    this.#o = o;
    this.#log = o.logger ?? silentLogger;
    this.#clock = o.clock ?? systemClock;
    this.#dirs = [...new Set(o.auditDirs.map((d) => path.resolve(d)))];
    this.#seen = seen;
  }

  /** Takes the state folder (one analyzer per folder), resumes from its cursor and starts following. */
  static async start(o: AnalyzerServiceOptions): Promise<AnalyzerService> {
    const stateDir = path.resolve(o.stateDir);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const unlock = await acquireDirLock(stateDir).catch((err: Error) => {
      throw new Error(`analyzer state dir ${stateDir} is in use: ${err.message}`, { cause: err });
    });
    try {
      const cursor = await readCursor(stateDir);
      const seen = new Set<string>();
      for await (const l of readAlertLines(path.join(stateDir, 'alerts.jsonl'), cursor?.alertsOffset ?? 0)) seen.add(emissionKey(l.alert));
      const svc = new AnalyzerService({ ...o, stateDir }, seen);
      svc.#unlock = unlock;
      if (cursor) {
        o.engine.restore(cursor.engineState);
        // A dir the cursor does not know starts at seq 1: re-raising alerts is
        // noise, guessing a position (e.g. for a renamed dir) could skip attacks.
        for (const d of svc.#dirs) svc.#pos[d] = cursor.dirs[d] ?? 0;
        const unknown = svc.#dirs.filter((d) => cursor.dirs[d] === undefined);
        if (unknown.length > 0 && Object.keys(cursor.dirs).length > 0) svc.#log.warn({ unknown, cursor: cursor.dirs }, 'audit dirs not in the cursor are analyzed from the start');
      } else {
        for (const d of svc.#dirs) svc.#pos[d] = 0;
      }
      await svc.#open();
      return svc;
    } catch (err) {
      await unlock();
      throw err;
    }
  }

  async #open(): Promise<void> {
    const o = this.#o;
    const store = await DecisionStore.open(o.stateDir, { clock: this.#clock, ...(o.escalation ? { escalation: o.escalation } : {}) });
    this.#alertsLog = await AlertsLog.open(o.stateDir, { logger: this.#log, ...(o.alertsFsyncMs === undefined ? {} : { fsyncIntervalMs: o.alertsFsyncMs }) });
    this.#sinks = [this.#alertsLog, createLogSink(this.#log)];
    if (o.webhook) {
      this.#webhook = new WebhookSink({ ...o.webhook, logger: this.#log });
      this.#sinks.push(this.#webhook);
    }
    this.#sinks.push(...(o.sinks ?? []));
    this.#router = new OutputRouter(store, this.#sinks, this.#seen, this.#log);
    this.#running = true;
    this.#log.info({ auditDirs: this.#dirs, stateDir: o.stateDir, from: { ...this.#pos }, replayedAlerts: this.#seen.size }, 'analyzer started');
    void this.refreshLag();
    this.#lagTimer = setInterval(() => void this.refreshLag(), 1000);
    this.#lagTimer.unref();
    this.#done = this.#run();
    this.#done.catch((err: unknown) => this.#log.error({ err }, 'analyzer stopped on an error'));
  }

  /** Settles when the analysis loop ends: resolves after `stop()`, rejects when it failed (disk, decisions store). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Stops following, writes a final cursor, closes the sinks (the webhook gets one timeout to drain) and releases the folder. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort();
      try {
        await this.#done;
      } finally {
        clearInterval(this.#lagTimer);
        this.#running = false;
        for (const s of this.#sinks) await s.close().catch((err: unknown) => this.#log.error({ err, sink: s.name }, 'alert sink close failed'));
        for (const w of this.#waiters.splice(0)) w.resolve();
        await this.#unlock?.();
        this.#log.info({ positions: { ...this.#pos }, events: this.#c.events }, 'analyzer stopped');
      }
    })();
    return this.#stopping;
  }

  /** Resolves once records up to `seq` of `dir` (default: the first dir) are processed, or the service stops. */
  whenProcessed(seq: number, dir: string = this.#dirs[0] as string): Promise<void> {
    const d = path.resolve(dir);
    if ((this.#pos[d] ?? 0) >= seq || !this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ dir: d, seq, resolve }));
  }

  stats(): AnalyzerStats {
    let lagEvents = 0;
    let lagMs = 0;
    for (const d of this.#dirs) {
      const l = this.#latest.get(d);
      const pos = this.#pos[d] ?? 0;
      if (!l || l.seq <= pos) continue;
      lagEvents += l.seq - pos;
      lagMs = Math.max(lagMs, l.timeMs - (this.#lastTime[d] ?? l.timeMs));
    }
    const c = this.#c;
    const r = this.#router.counters;
    return {
      running: this.#running, eventsProcessed: c.events, positions: { ...this.#pos }, lagEvents, lagSeconds: Math.max(0, lagMs) / 1000,
      alerts: r.alerts, alertsSuppressed: r.suppressed, alertsDeduplicated: r.deduplicated, decisions: r.decisions,
      remediationsExcepted: r.excepted, engineErrors: c.engineErrors, skippedLines: c.skipped, seqGaps: c.gaps, checkpoints: c.checkpoints,
      ...(this.#webhook ? { webhook: this.#webhook.stats() } : {}),
    };
  }

  /** Re-reads where the audit logs end (done every second; `stats()` reports the last result). */
  async refreshLag(): Promise<void> {
    for (const d of this.#dirs) {
      const l = await latestRecord(d).catch(() => undefined);
      if (l) this.#latest.set(d, l);
    }
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const channel = new BatchChannel<{ dir: string; batch: AuditRecord[] }>();
    const signal = this.#abort.signal;
    const pumps = this.#dirs.map(async (dir) => {
      const follow = (o.follow ?? followAuditBatches)(dir, {
        fromSeq: (this.#pos[dir] ?? 0) + 1, signal, ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
        ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
        onSkip: (s) => {
          this.#c.skipped++;
          this.#log.warn({ dir, ...s }, 'audit line skipped by the analyzer');
        },
      });
      for await (const batch of follow) await channel.put({ dir, batch });
    });
    // Every follower ending (abort, or an error) ends the loop; the first error is rethrown below.
    const followers = Promise.allSettled(pumps).then((r) => {
      channel.close();
      return r;
    });
    const every = o.checkpointEvery ?? 100_000;
    const interval = o.checkpointIntervalMs ?? 10_000;
    let failure: unknown;
    try {
      for (;;) {
        const d = await channel.take(interval);
        if (d === null) break;
        if (d !== undefined) {
          try {
            for (const rec of d.value.batch) {
              const routing = this.#process(d.value.dir, rec);
              if (routing) await routing;
              if (this.#sinceCheckpoint >= every) await this.#checkpoint();
            }
          } finally {
            d.done();
          }
          this.#notify();
        }
        if (this.#sinceCheckpoint > 0 && performance.now() - this.#lastCheckpoint >= interval) await this.#checkpoint();
      }
    } catch (err) {
      failure = err;
      this.#abort.abort();
      channel.abandon();
    }
    const results = await followers;
    if (failure !== undefined) throw failure;
    const bad = results.find((r) => r.status === 'rejected');
    // Checkpoint on the way out, also after a follower failed: what was processed is done.
    await this.#checkpoint();
    if (bad) throw (bad as PromiseRejectedResult).reason;
  }

  #notify(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i] as { dir: string; seq: number; resolve: () => void };
      if ((this.#pos[w.dir] ?? 0) >= w.seq) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Feeds one record to the engine; returns a promise only when its alerts or orders must be routed. */
  #process(dir: string, rec: AuditRecord): Promise<void> | undefined {
    const prev = this.#pos[dir] ?? 0;
    if (rec.seq <= prev) return undefined; // already processed (a follower restarted mid-segment)
    if (rec.seq !== prev + 1 && prev > 0) {
      this.#c.gaps++;
      this.#log.warn({ dir, after: prev, seq: rec.seq }, 'audit seq gap: records missing from the log (run meshgate audit verify)');
    }
    let out: EngineOutput | undefined;
    try {
      out = this.#o.engine.process(rec);
    } catch (err) {
      // One record the engine cannot digest must not blind detection for all that follow.
      this.#c.engineErrors++;
      this.#log.error({ err, dir, seq: rec.seq, id: rec.id }, 'detection engine failed on a record; skipped');
    }
    const time = Date.parse(rec.time);
    if (out && (out.alerts.length > 0 || out.remediations.length > 0)) {
      return this.#router.route(out, Number.isFinite(time) ? time : this.#clock.now()).then(() => this.#advance(dir, rec.seq, time));
    }
    this.#advance(dir, rec.seq, time);
    return undefined;
  }

  #advance(dir: string, seq: number, time: number): void {
    this.#pos[dir] = seq;
    if (Number.isFinite(time)) this.#lastTime[dir] = time;
    this.#c.events++;
    this.#sinceCheckpoint++;
  }

  async #checkpoint(): Promise<void> {
    await this.#alertsLog.flush();
    const first = this.#dirs[0] as string;
    await writeCursor(this.#o.stateDir, {
      v: 1, seq: this.#pos[first] ?? 0, dirs: { ...this.#pos }, engineState: this.#o.engine.snapshot(),
      alertsOffset: this.#alertsLog.offset, updatedAt: new Date(this.#clock.now()).toISOString(),
    });
    this.#sinceCheckpoint = 0;
    this.#lastCheckpoint = performance.now();
    this.#c.checkpoints++;
  }
}
