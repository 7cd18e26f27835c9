/**
 * The embedded analyzer (PRODUCT §1.7 default): the live analyzer in a
 * worker thread of the gateway process, following the gateway's own audit
 * dir. Analysis never runs on the request thread; the only thing the two
 * share is decisions.json, which the worker writes and the gateway's
 * QuarantineTable watcher (src/decisions/watch-quarantine.ts) reads.
 *
 * A worker that dies later is restarted with backoff (1 s doubling to 60 s)
 * from its cursor; a worker that cannot start at all (bad rules file, state
 * dir in use) fails `startEmbeddedAnalyzer` so that start-up reports it.
 */
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { decisionsPath } from '../decisions/decisions-file.ts';
import type { WrittenRecords } from '../audit/writer.ts';
import type { EmbeddedWorkerData, ParentMessage, WorkerMessage } from './embedded-worker.ts';
import type { AnalyzerStats } from './service.ts';

export interface EmbeddedAnalyzerOptions {
  readonly logger?: Logger;
  /** Module exporting `createEngineFromRules` (tests); default: the rule engine. */
  readonly engineModule?: string;
  /** How often the worker reports stats (default 1000 ms). */
  readonly statsIntervalMs?: number;
  readonly pollMs?: number;
  /** First restart delay after a crash (default 1000 ms; doubles up to 60 s). */
  readonly restartDelayMs?: number;
  /**
   * The gateway's audit writer: its written records are handed to the worker
   * in memory (live-feed.ts) instead of being read back from the files.
   */
  readonly feed?: { onWritten(listener: (w: WrittenRecords) => void): () => void };
}

/** Stats for /metrics: the worker's last report plus restarts. */
export interface EmbeddedAnalyzerStats {
  readonly analyzer: AnalyzerStats | undefined;
  readonly restarts: number;
}

/** Handle of the running embedded analyzer. */
export interface EmbeddedAnalyzer {
  /** The file the gateway's QuarantineTable should watch. */
  readonly decisionsFile: string;
  readonly stateDir: string;
  stats(): EmbeddedAnalyzerStats;
  status(): ComponentStatus;
  /** Stops the worker after a final checkpoint (terminated if it takes over 10 s). */
  stop(): Promise<void>;
}

const MAX_RESTART_MS = 60_000;

/**
 * Starts the analyzer worker for `cfg` (callers check `cfg.analyzer.enabled`).
 * Resolves once it follows the audit log; rejects when it cannot start.
 */
export function startEmbeddedAnalyzer(cfg: Config, opts: EmbeddedAnalyzerOptions = {}): Promise<EmbeddedAnalyzer> {
  const log = opts.logger ?? silentLogger;
  const stateDir = cfg.analyzer.dir as string;
  if (typeof stateDir !== 'string' || typeof cfg.analyzer.rules !== 'string') throw new TypeError('cfg.analyzer.dir and rules must be resolved (use loadConfig)');
  const data: EmbeddedWorkerData = {
    auditDir: cfg.audit.dir, stateDir, rulesFile: cfg.analyzer.rules, logLevel: cfg.log.level,
    webhook: cfg.analyzer.webhook
      ? { url: cfg.analyzer.webhook.url, timeoutMs: cfg.analyzer.webhook.timeout, maxQueue: cfg.analyzer.webhook.maxQueue, headers: cfg.analyzer.webhook.headers }
      : undefined,
    engineModule: opts.engineModule, statsIntervalMs: opts.statsIntervalMs ?? 1000, pollMs: opts.pollMs,
    liveFeed: opts.feed !== undefined,
  };
  const status = new StatusTracker('analyzer');
  let last: AnalyzerStats | undefined;
  let restarts = 0;
  let delay = opts.restartDelayMs ?? 1000;
  let worker: Worker | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: (() => void) | undefined;
  // A copy per chunk, moved (not cloned again) to the worker. While no worker
  // runs, chunks are not kept: the next worker reads them from the log.
  const unsubscribe = opts.feed?.onWritten((w) => {
    if (!worker || stopping) return;
    const bytes = new Uint8Array(w.bytes);
    const m: ParentMessage = { type: 'records', firstSeq: w.firstSeq, lastSeq: w.lastSeq, bytes };
    worker.postMessage(m, [bytes.buffer]);
  });

  const spawn = (onFirst?: { resolve: () => void; reject: (e: Error) => void }): void => {
    const w = new Worker(new URL('./embedded-worker.ts', import.meta.url), { workerData: data });
    worker = w;
    let ready = false;
    let failure: string | undefined;
    const startedAt = Date.now();
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'stats') last = m.stats;
      else if (m.type === 'ready') {
        ready = true;
        status.loaded();
        onFirst?.resolve();
      } else if (m.type === 'failed') {
        failure = m.message;
        status.failed(m.message);
        log.error({ err: m.message }, ready ? 'embedded analyzer failed' : 'embedded analyzer could not start');
      } else if (m.type === 'stopped') {
        stopped?.();
      }
    });
    w.on('error', (err) => {
      failure = err.message;
      status.failed(err.message);
      log.error({ err }, 'embedded analyzer worker crashed');
    });
    w.on('exit', (code) => {
      worker = undefined;
      stopped?.();
      if (stopping) return;
      if (!ready) {
        onFirst?.reject(new Error(`embedded analyzer could not start: ${failure ?? `worker exited with code ${code}`}`));
        if (onFirst) return;
      }
      status.ready = false;
      status.state = 'unavailable';
      // A worker that ran for a while before failing starts over from the short delay.
      if (Date.now() - startedAt > MAX_RESTART_MS) delay = opts.restartDelayMs ?? 1000;
      log.warn({ inMs: delay, restarts }, 'embedded analyzer will restart from its cursor');
      restartTimer = setTimeout(() => {
        restarts++;
        spawn();
      }, delay);
      restartTimer.unref();
      delay = Math.min(delay * 2, MAX_RESTART_MS);
    });
  };

  const started = new Promise<void>((resolve, reject) => spawn({ resolve, reject }));
  started.catch(() => unsubscribe?.());
  return started.then((): EmbeddedAnalyzer => ({
    decisionsFile: decisionsPath(stateDir),
    stateDir,
    stats: () => ({ analyzer: last, restarts }),
    status: () => status.snapshot(),
    async stop(): Promise<void> {
      if (stopping) return;
      stopping = true;
      unsubscribe?.();
      clearTimeout(restartTimer);
      const w = worker;
      if (!w) return;
      const done = new Promise<void>((r) => { stopped = r; });
      w.postMessage({ type: 'stop' });
      const timer = setTimeout(() => void w.terminate(), 10_000);
      await done;
      clearTimeout(timer);
      await w.terminate();
      status.ready = false;
      status.state = 'unavailable';
    },
  }));
}
