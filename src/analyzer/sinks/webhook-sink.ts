/**
 * POSTs each alert as JSON to a webhook (payload: docs/alerts.md). Delivery is
 * off the analysis loop: `emit` only queues. The queue is bounded — when the
 * receiver is down for long, the oldest alerts are dropped and counted rather
 * than memory growing without limit (alerts.jsonl still has every alert).
 * Failed attempts are retried with exponential backoff and full jitter (AWS
 * Architecture Blog, "Exponential Backoff And Jitter") so that many sidecars
 * do not retry in lockstep; 429/503 `Retry-After` is honoured up to the cap.
 *
 * The URL may itself be a secret (Slack-style webhook URLs) and headers may
 * carry tokens: only the URL's origin ever reaches the log.
 */
import { request } from 'undici';
import { silentLogger, type Logger } from '../../core/log.ts';
import type { Alert } from '../types.ts';
import type { AlertSink, SinkStats } from './sink.ts';

export interface WebhookOptions {
  readonly url: string;
  /** Per-attempt timeout (ms). */
  readonly timeoutMs: number;
  /** Alerts queued before the oldest are dropped. */
  readonly maxQueue: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Attempts per alert, first included (default 6). */
  readonly maxAttempts?: number;
  /** Backoff base and cap (default 500 ms, 30 s). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly logger?: Logger;
  /** Source of jitter in [0, 1) (tests pass a fixed one). */
  readonly random?: () => number;
}

/** The JSON body of each webhook request. */
export interface WebhookPayload {
  readonly v: 1;
  readonly type: 'alert';
  readonly alert: Alert;
}

class Retryable extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

function retryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/** An AlertSink delivering to an HTTP(S) webhook. */
export class WebhookSink implements AlertSink {
  readonly name = 'webhook';
  readonly #opts: WebhookOptions;
  readonly #origin: string;
  readonly #log: Logger;
  readonly #random: () => number;
  #queue: Alert[] = [];
  #busy = false;
  #closed = false;
  #abort = new AbortController();
  #idle: (() => void)[] = [];
  #emitted = 0;
  #delivered = 0;
  #failed = 0;
  #dropped = 0;

  constructor(opts: WebhookOptions) {
    if (!Number.isSafeInteger(opts.maxQueue) || opts.maxQueue < 1) throw new TypeError('maxQueue must be a positive integer');
    this.#opts = opts;
    this.#origin = new URL(opts.url).origin;
    this.#log = opts.logger ?? silentLogger;
    this.#random = opts.random ?? Math.random;
  }

  emit(alert: Alert): void {
    if (this.#closed) {
      this.#dropped++;
      return;
    }
    this.#emitted++;
    this.#queue.push(alert);
    if (this.#queue.length > this.#opts.maxQueue) {
      this.#queue.shift();
      this.#dropped++;
      if (this.#dropped === 1 || this.#dropped % 100 === 0) this.#log.warn({ webhook: this.#origin, dropped: this.#dropped }, 'webhook queue full; oldest alerts dropped');
    }
    if (!this.#busy) void this.#run();
  }

  /** Resolves when the queue is empty and no request is in flight. */
  flush(): Promise<void> {
    if (!this.#busy && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops accepting alerts, lets delivery continue for up to `graceMs` (default: one timeout), then abandons the rest (counted as dropped). */
  async close(graceMs = this.#opts.timeoutMs): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => { timer = setTimeout(r, graceMs); })]);
    clearTimeout(timer);
    this.#dropped += this.#queue.length;
    this.#queue = [];
    this.#abort.abort();
    await this.flush();
  }

  stats(): SinkStats {
    return { emitted: this.#emitted, delivered: this.#delivered, failed: this.#failed, dropped: this.#dropped, queued: this.#queue.length };
  }

  async #run(): Promise<void> {
    this.#busy = true;
    try {
      for (let alert = this.#queue.shift(); alert !== undefined; alert = this.#queue.shift()) {
        await this.#deliver(alert);
      }
    } finally {
      this.#busy = false;
      for (const r of this.#idle.splice(0)) r();
    }
  }

  async #deliver(alert: Alert): Promise<void> {
    const max = this.#opts.maxAttempts ?? 6;
    const base = this.#opts.retryBaseMs ?? 500;
    const cap = this.#opts.retryMaxMs ?? 30_000;
    const body = JSON.stringify({ v: 1, type: 'alert', alert } satisfies WebhookPayload);
    let lastError = '';
    for (let attempt = 1; attempt <= max; attempt++) {
      if (this.#abort.signal.aborted) {
        this.#dropped++;
        return;
      }
      try {
        await this.#post(alert, body);
        this.#delivered++;
        return;
      } catch (err) {
        if (!(err instanceof Retryable)) {
          this.#failed++;
          this.#log.warn({ webhook: this.#origin, alertId: alert.id, err: (err as Error).message }, 'webhook refused the alert; not retried');
          return;
        }
        lastError = err.message;
        if (attempt === max) break;
        const backoff = this.#random() * Math.min(cap, base * 2 ** (attempt - 1));
        await this.#sleep(Math.min(cap, Math.max(backoff, err.retryAfterMs ?? 0)));
      }
    }
    if (this.#abort.signal.aborted) {
      this.#dropped++;
      return;
    }
    this.#failed++;
    this.#log.warn({ webhook: this.#origin, alertId: alert.id, attempts: max, err: lastError }, 'webhook delivery failed after retries');
  }

  async #post(alert: Alert, body: string): Promise<void> {
    const t = this.#opts.timeoutMs;
    let res;
    try {
      res = await request(this.#opts.url, {
        method: 'POST',
        headers: {
          'user-agent': 'meshgate-analyzer',
          ...this.#opts.headers,
          'content-type': 'application/json',
          // Lets the receiver de-duplicate: one alert emission keeps its id across retries.
          'x-meshgate-alert-id': alert.id,
        },
        body,
        headersTimeout: t,
        bodyTimeout: t,
        signal: AbortSignal.any([AbortSignal.timeout(t), this.#abort.signal]),
      });
    } catch (err) {
      throw new Retryable((err as Error).name === 'TimeoutError' ? 'timeout' : ((err as { code?: string }).code ?? (err as Error).name));
    }
    await res.body.dump().catch(() => {});
    const s = res.statusCode;
    if (s >= 200 && s < 300) return;
    if (s === 408 || s === 425 || s === 429 || s >= 500) throw new Retryable(`HTTP ${s}`, retryAfter(res.headers['retry-after']));
    throw new Error(`HTTP ${s}`);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#abort.signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.#abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#abort.signal.addEventListener('abort', done);
    });
  }
}
