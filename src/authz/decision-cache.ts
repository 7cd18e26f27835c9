/**
 * A bounded least-recently-used map of decisions. It belongs to exactly one
 * Authorizer instance: a policy reload builds a new instance with an empty
 * cache, so a cached decision can never outlive the policy that made it.
 */
import type { Decision } from '../core/types.ts';

/** Bounded LRU cache of decisions keyed by request tuple. */
export class DecisionCache {
  readonly #max: number;
  // A Map iterates in insertion order; re-inserting on a hit makes the first key the least recently used.
  readonly #entries = new Map<string, Decision>();

  /** `max` ≤ 0 disables the cache (every `get` misses, `set` is a no-op). */
  constructor(max: number) {
    if (!Number.isInteger(max)) throw new TypeError('decision cache size must be an integer');
    this.#max = Math.max(0, max);
  }

  get size(): number { return this.#entries.size; }

  get(key: string): Decision | undefined {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
    }
    return hit;
  }

  set(key: string, decision: Decision): void {
    if (this.#max === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, decision);
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }
}
