/**
 * Rate limit on failed admin sign-ins (form and bearer token alike): after
 * `perSource` failures from one address within `windowMs`, that address's
 * token attempts are refused unchecked until the window has moved on; after
 * `global` failures from everywhere, everybody's are. Only token guessing is
 * slowed: live sessions and mTLS sign-in keep working. The global cap stops
 * a guesser who rotates addresses, at the price of a lock-out the real admin
 * waits out (or avoids with mTLS) — the safe side for a security product.
 */
import { systemClock, type Clock } from '../../core/clock.ts';

/** Limits. */
export interface SignInLimiterOptions {
  /** Failures allowed per source address within the window (default 5). */
  readonly perSource?: number;
  /** Failures allowed from all sources together within the window (default 100). */
  readonly global?: number;
  /** The window (default 5 min). */
  readonly windowMs?: number;
  /** Most source addresses tracked; the oldest are forgotten beyond it (default 10 000). */
  readonly maxSources?: number;
  readonly clock?: Clock;
}

/** Failure timestamps per source, oldest first, pruned to the window. */
export class SignInLimiter {
  readonly #perSource: number;
  readonly #global: number;
  readonly #windowMs: number;
  readonly #maxSources: number;
  readonly #clock: Clock;
  readonly #bySource = new Map<string, number[]>();
  #all: number[] = [];

  constructor(opts: SignInLimiterOptions = {}) {
    this.#perSource = opts.perSource ?? 5;
    this.#global = opts.global ?? 100;
    this.#windowMs = opts.windowMs ?? 5 * 60_000;
    this.#maxSources = opts.maxSources ?? 10_000;
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * Milliseconds until `source` may try a token again, or 0 when it may now.
   * Checked BEFORE the token is compared, so a locked-out guesser learns nothing.
   */
  retryAfterMs(source: string): number {
    const now = this.#clock.now();
    const from = now - this.#windowMs;
    this.#all = this.#all.filter((t) => t > from);
    const mine = (this.#bySource.get(source) ?? []).filter((t) => t > from);
    let wait = 0;
    if (mine.length >= this.#perSource) wait = Math.max(wait, (mine[mine.length - this.#perSource] as number) + this.#windowMs - now);
    if (this.#all.length >= this.#global) wait = Math.max(wait, (this.#all[this.#all.length - this.#global] as number) + this.#windowMs - now);
    return wait;
  }

  /** Records a failed attempt from `source`. */
  fail(source: string): void {
    const now = this.#clock.now();
    const from = now - this.#windowMs;
    const mine = (this.#bySource.get(source) ?? []).filter((t) => t > from);
    mine.push(now);
    // Keep only what the limit needs: the newest perSource failures.
    this.#bySource.delete(source);
    this.#bySource.set(source, mine.slice(-this.#perSource));
    this.#all.push(now);
    if (this.#all.length > this.#global) this.#all = this.#all.slice(-this.#global);
    while (this.#bySource.size > this.#maxSources) this.#bySource.delete(this.#bySource.keys().next().value as string);
  }

  /** A successful sign-in clears the source's failures (not the global count). */
  succeed(source: string): void {
    this.#bySource.delete(source);
  }
}
