/**
 * Verification keys from a remote JWKS URL (fetched with undici).
 *
 * ★ Outage tolerance: when the JWKS endpoint fails, the last good keys keep
 * serving (state `stale`, still ready) until `maxStale` after the last
 * successful fetch; past that they are dropped (state `unavailable`) and
 * tokens fail with jwks_unavailable rather than being checked against keys
 * the issuer may have revoked long ago. Every expiry decision reads the
 * injected Clock; timers only schedule fetches.
 */
import { request } from 'undici';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { StatusTracker } from '../core/status.ts';
import { importJwks, type KeySet } from './key-set.ts';
import type { KeySource, KeySourceStatus } from './key-source.ts';

/** Timings in milliseconds (IssuerConfig fields of the same names). */
export interface RemoteKeySourceConfig {
  readonly url: string;
  readonly refreshInterval: number;
  readonly refetchCooldown: number;
  readonly maxStale: number;
  readonly fetchTimeout: number;
}

export interface RemoteKeySourceOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Status name (default `jwks:<url origin+path>`). */
  readonly name?: string;
  /** Largest JWKS document accepted (default 1 MiB): a hostile endpoint cannot exhaust memory. */
  readonly maxBytes?: number;
}

/** Strips userinfo and query (they may hold credentials) for logs and status. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

/** A remote JWKS with background refresh, rate-limited refetch on demand and bounded staleness. */
export class RemoteKeySource implements KeySource {
  readonly #cfg: RemoteKeySourceConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #tracker: StatusTracker;
  readonly #maxBytes: number;
  #keys: KeySet | undefined;
  #lastSuccessAt: number | undefined;
  #lastFetchFailed = false;
  #lastDemandAt: number | undefined;
  #inflight: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #fetches = 0;

  private constructor(cfg: RemoteKeySourceConfig, opts: RemoteKeySourceOptions) {
    this.#cfg = cfg;
    this.#clock = opts.clock ?? systemClock;
    this.#maxBytes = opts.maxBytes ?? 1_048_576;
    const where = safeUrl(cfg.url);
    this.#log = (opts.logger ?? silentLogger).child({ component: 'jwks', jwksUrl: where });
    this.#tracker = new StatusTracker(opts.name ?? `jwks:${where}`);
  }

  /**
   * Fetches once and starts the background refresh. An unreachable endpoint
   * at start is not thrown: the source reports `unavailable` (not ready),
   * tokens fail closed, and fetching is retried in the background and on demand.
   */
  static async open(cfg: RemoteKeySourceConfig, opts: RemoteKeySourceOptions = {}): Promise<RemoteKeySource> {
    const src = new RemoteKeySource(cfg, opts);
    if (cfg.maxStale <= cfg.refreshInterval) {
      src.#log.warn({ maxStale: cfg.maxStale, refreshInterval: cfg.refreshInterval }, 'maxStale is not longer than refreshInterval: keys will lapse between refreshes');
    }
    await src.refresh();
    return src;
  }

  /** Number of fetch attempts so far (for tests and metrics). */
  get fetches(): number {
    return this.#fetches;
  }

  current(): KeySet | undefined {
    if (this.#keys !== undefined && this.#lastSuccessAt !== undefined && this.#clock.now() - this.#lastSuccessAt > this.#cfg.maxStale) {
      this.#keys = undefined;
      this.#tracker.ready = false;
      this.#log.error({ maxStale: this.#cfg.maxStale }, 'JWKS keys dropped: no successful fetch within maxStale');
    }
    return this.#keys;
  }

  async demand(): Promise<KeySet | undefined> {
    if (this.#inflight) {
      await this.#inflight;
      return this.current();
    }
    // The cooldown bounds what a client can make us send to the issuer by
    // inventing `kid`s: at most one demand-driven fetch per refetchCooldown.
    const now = this.#clock.now();
    if (this.#lastDemandAt !== undefined && now - this.#lastDemandAt < this.#cfg.refetchCooldown) return this.current();
    this.#lastDemandAt = now;
    await this.refresh();
    return this.current();
  }

  /** Fetches now, joining a fetch already in flight. Resolves true on success. */
  refresh(): Promise<boolean> {
    this.#inflight ??= this.#fetchOnce().finally(() => { this.#inflight = undefined; });
    return this.#inflight;
  }

  status(): KeySourceStatus {
    const keys = this.current();
    const base = this.#tracker.snapshot();
    if (keys === undefined) return { ...base, ready: false, state: 'unavailable', keys: 0 };
    if (this.#lastFetchFailed && this.#lastSuccessAt !== undefined) {
      const staleSeconds = Math.max(0, Math.floor((this.#clock.now() - this.#lastSuccessAt) / 1000));
      return { ...base, ready: true, state: 'stale', keys: keys.size, staleSeconds };
    }
    return { ...base, ready: true, state: 'ok', keys: keys.size };
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #fetchOnce(): Promise<boolean> {
    this.#fetches++;
    let ok: boolean;
    try {
      const next = importJwks(await this.#download());
      const now = this.#clock.now();
      // Same document: keep the same KeySet object so cached verifications stay valid.
      if (this.#keys === undefined || this.#keys.version !== next.version) {
        this.#keys = next;
        this.#log.info({ version: next.version, keys: next.size }, 'JWKS fetched');
        if (next.ignored.length > 0) this.#log.warn({ ignored: next.ignored }, 'JWKS entries ignored');
      }
      this.#lastSuccessAt = now;
      this.#lastFetchFailed = false;
      this.#tracker.loaded(next.version, new Date(now));
      ok = true;
    } catch (e) {
      const message = (e as Error).message;
      this.#lastFetchFailed = true;
      this.#tracker.failed(message);
      this.#log.warn({ err: message, servingStaleKeys: this.#keys !== undefined }, 'JWKS fetch failed');
      ok = false;
    }
    this.#schedule(ok);
    return ok;
  }

  /** Next background fetch: the refresh interval, or sooner while failing so recovery is prompt. */
  #schedule(ok: boolean): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    const retry = Math.max(1000, Math.min(this.#cfg.refetchCooldown, this.#cfg.refreshInterval));
    this.#timer = setTimeout(() => { void this.refresh(); }, ok ? this.#cfg.refreshInterval : retry);
    this.#timer.unref();
  }

  async #download(): Promise<Buffer> {
    const t = this.#cfg.fetchTimeout;
    const { statusCode, body } = await request(this.#cfg.url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      headersTimeout: t,
      bodyTimeout: t,
      signal: AbortSignal.timeout(t),
    });
    if (statusCode !== 200) {
      await body.dump();
      throw new Error(`JWKS endpoint answered HTTP ${statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > this.#maxBytes) {
        body.destroy();
        throw new Error(`JWKS document larger than ${this.#maxBytes} bytes`);
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks);
  }
}
