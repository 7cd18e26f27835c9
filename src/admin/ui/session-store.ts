/**
 * Server-side sessions of the admin web UI. The cookie holds only a random
 * id (256 bits); everything else — who signed in, how, the CSRF token and
 * the expiry — stays here, so a session ends the moment it is deleted or
 * expires, whatever the browser keeps. Sessions live in memory: a restart
 * signs everybody out, which is the safe direction.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../../core/clock.ts';

/** How a session was opened. */
export type SignInMethod = 'token' | 'spiffe';

/** One signed-in browser. */
export interface Session {
  /** Random id (base64url); only ever compared by its hash. */
  readonly id: string;
  /** Sent back by the UI in `x-csrf-token` on every POST. */
  readonly csrfToken: string;
  readonly via: SignInMethod;
  /** For `spiffe` sessions: the SPIFFE ID that opened it (later requests must present the same). */
  readonly spiffeId: string | undefined;
  readonly createdAt: number;
  /** Absolute end: createdAt + ttl. */
  readonly expiresAt: number;
  lastSeen: number;
}

/** Session lifetimes. */
export interface SessionStoreOptions {
  /** Absolute lifetime (default 8 h). */
  readonly ttlMs?: number;
  /** Ends a session unused this long (default 30 min). */
  readonly idleMs?: number;
  /** Most live sessions; the least recently used is dropped beyond it (default 1000). */
  readonly maxSessions?: number;
  readonly clock?: Clock;
}

const digest = (id: string): string => createHash('sha256').update(id).digest('base64url');

/** Constant-time equality of two strings of any length (compares fixed-size digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** The live sessions, keyed by the SHA-256 of their id. */
export class SessionStore {
  readonly ttlMs: number;
  readonly idleMs: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #byDigest = new Map<string, Session>();

  constructor(opts: SessionStoreOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 8 * 3_600_000;
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.#max = opts.maxSessions ?? 1000;
    this.#clock = opts.clock ?? systemClock;
    if (!(this.ttlMs > 0) || !(this.idleMs > 0) || !(this.#max > 0)) throw new TypeError('SessionStore: lifetimes and maxSessions must be positive');
  }

  /** Opens a session. */
  create(via: SignInMethod, spiffeId?: string): Session {
    const now = this.#clock.now();
    this.#sweep(now);
    while (this.#byDigest.size >= this.#max) {
      // Map order is insertion order and `get` re-inserts: the first key is the least recently used.
      const oldest = this.#byDigest.keys().next().value as string;
      this.#byDigest.delete(oldest);
    }
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      csrfToken: randomBytes(32).toString('base64url'),
      via, spiffeId, createdAt: now, expiresAt: now + this.ttlMs, lastSeen: now,
    };
    this.#byDigest.set(digest(s.id), s);
    return s;
  }

  /** The live session with this id (and marks it used), or undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined || id.length === 0 || id.length > 128) return undefined;
    const key = digest(id);
    const s = this.#byDigest.get(key);
    if (!s) return undefined;
    const now = this.#clock.now();
    if (now >= s.expiresAt || now - s.lastSeen >= this.idleMs) {
      this.#byDigest.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    this.#byDigest.delete(key);
    this.#byDigest.set(key, s);
    return s;
  }

  /** Ends the session (sign-out). */
  delete(id: string): void {
    this.#byDigest.delete(digest(id));
  }

  /** Live sessions (for tests and metrics). */
  get size(): number {
    this.#sweep(this.#clock.now());
    return this.#byDigest.size;
  }

  #sweep(now: number): void {
    for (const [k, s] of this.#byDigest) {
      if (now >= s.expiresAt || now - s.lastSeen >= this.idleMs) this.#byDigest.delete(k);
    }
  }
}
