/**
 * False-positive exceptions at scale (`meshgate decisions except` with
 * `audit.sink.nats`): they live in the decisions bucket beside the
 * decisions, one entry per exception,
 *
 *   key   exception.<exception id>
 *   value Exception JSON (src/analyzer/types.ts), with its own expiresAt
 *
 * so that every analyzer replica and every gateway sees the same set. This
 * module is the replicas' read side: the set is scanned on first use and
 * again after any change a watch reports (or after `maxAgeMs`, in case the
 * watch itself was lost), so a replica checks each alert against exceptions
 * that are at most a push notification old.
 */
import { KvWatchInclude, type KV } from '@nats-io/kv';
import type { Exception } from '../analyzer/types.ts';
import { parseDecisionsDoc } from '../decisions/decisions-file.ts';

/** Key prefix of exceptions in the decisions bucket (decision keys start with a scope name). */
export const EXCEPTION_PREFIX = 'exception.';

/** KV key of exception `id`. */
export function exceptionKey(id: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new TypeError('an exception id has letters, digits, "_" and "-" only');
  return `${EXCEPTION_PREFIX}${id}`;
}

/** True when `key` of the decisions bucket holds an exception. */
export function isExceptionKey(key: string): boolean {
  return key.startsWith(EXCEPTION_PREFIX);
}

/** An Exception read from a KV value; undefined (never a throw) when it is not one. */
export function parseExceptionValue(value: Uint8Array): Exception | undefined {
  try {
    const x = JSON.parse(Buffer.from(value).toString('utf8')) as unknown;
    return parseDecisionsDoc({ v: 1, decisions: [], exceptions: [x] }, 'kv').exceptions[0];
  } catch {
    return undefined;
  }
}

/** Every exception in the bucket (expired ones included). */
export async function readExceptions(kv: KV): Promise<Exception[]> {
  const out: Exception[] = [];
  for await (const k of await kv.keys(`${EXCEPTION_PREFIX}>`)) {
    const e = await kv.get(k);
    const x = e && e.operation === 'PUT' ? parseExceptionValue(e.value) : undefined;
    if (x) out.push(x);
  }
  return out;
}

/** The exceptions of a decisions bucket, kept current for an analyzer replica. */
export class KvExceptions {
  readonly #kv: KV;
  readonly #maxAgeMs: number;
  #list: readonly Exception[] = [];
  #loadedAt = -Infinity;
  #dirty = true;
  #loading: Promise<readonly Exception[]> | undefined;
  #watch: { stop(): void } | undefined;
  #starting: Promise<void> | undefined;
  #closed = false;

  constructor(kv: KV, opts: { maxAgeMs?: number } = {}) {
    this.#kv = kv;
    this.#maxAgeMs = opts.maxAgeMs ?? 30_000;
  }

  /** The current exceptions; rejects when the bucket cannot be read (the caller retries rather than ignore exceptions). */
  async current(): Promise<readonly Exception[]> {
    if (!this.#watch && !this.#closed) await (this.#starting ??= this.#startWatch().finally(() => { this.#starting = undefined; }));
    // Without a live watch nothing tells us about changes: scan every time.
    if (this.#watch && !this.#dirty && Date.now() - this.#loadedAt < this.#maxAgeMs) return this.#list;
    this.#loading ??= (async () => {
      // Cleared before the scan: a change reported while it runs makes the next call scan again.
      this.#dirty = false;
      try {
        const list = await readExceptions(this.#kv);
        this.#list = list;
        this.#loadedAt = Date.now();
        return list;
      } catch (err) {
        this.#dirty = true;
        throw err;
      }
    })().finally(() => { this.#loading = undefined; });
    return this.#loading;
  }

  /** Stops the change watch. */
  close(): void {
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = undefined;
  }

  async #startWatch(): Promise<void> {
    try {
      const iter = await this.#kv.watch({ key: `${EXCEPTION_PREFIX}>`, include: KvWatchInclude.UpdatesOnly });
      if (this.#closed) { iter.stop(); return; }
      this.#watch = iter;
      this.#dirty = true;
      void (async () => {
        for await (const e of iter) { void e; this.#dirty = true; }
      })().catch(() => {}).finally(() => {
        // The watch ended (connection closed or lost): scan on every call until a new one runs.
        if (this.#watch === iter) this.#watch = undefined;
      });
    } catch {
      this.#watch = undefined;
    }
  }
}
