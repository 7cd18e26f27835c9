/**
 * Bounded LRU of verified tokens, keyed by the token's SHA-256 (never the
 * token itself, so a heap dump does not hand out credentials).
 */
import type { Principal } from '../core/types.ts';
import type { KeySet } from './key-set.ts';
import type { KeySource } from './key-source.ts';

/** Longest a verification is trusted without re-checking the signature. */
export const MAX_CACHE_TTL_MS = 5 * 60_000;

/** What a cache hit needs to re-run the per-request checks. */
export interface CachedToken {
  /** Frozen principal, shared by every hit. */
  readonly principal: Principal;
  /** RFC 8705 `cnf["x5t#S256"]` as UTF-8 bytes, for the per-request peer check. */
  readonly cnf: Buffer | undefined;
  /** The issuer's key source and the keys that verified the token: a key change (or keys dropped past maxStale) invalidates the entry. */
  readonly source: KeySource;
  readonly keys: KeySet;
  /** Epoch ms after which the entry is dead: min(exp, verified + 5 min). */
  readonly validUntil: number;
}

/** An LRU map (JavaScript Map keeps insertion order; a hit re-inserts). */
export class TokenCache {
  readonly capacity: number;
  readonly #map = new Map<string, CachedToken>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new TypeError('cache capacity must be a non-negative integer');
    this.capacity = capacity;
  }

  get size(): number {
    return this.#map.size;
  }

  /**
   * The live entry for `hash`, or undefined. Entries past `validUntil` at
   * `now`, or verified with keys the issuer no longer serves, are dropped on sight.
   */
  get(hash: string, now: number): CachedToken | undefined {
    const e = this.#map.get(hash);
    if (e === undefined) return undefined;
    this.#map.delete(hash);
    if (now >= e.validUntil || e.source.current() !== e.keys) return undefined;
    this.#map.set(hash, e);
    return e;
  }

  set(hash: string, entry: CachedToken): void {
    if (this.capacity === 0) return;
    this.#map.delete(hash);
    this.#map.set(hash, entry);
    if (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  clear(): void {
    this.#map.clear();
  }
}
