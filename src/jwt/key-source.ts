/**
 * The contract between the verifier and an issuer's keys, whatever their
 * origin (local JWKS file or remote JWKS URL).
 */
import type { ComponentStatus } from '../core/status.ts';
import type { KeySet } from './key-set.ts';

/** `/readyz` detail of one issuer's keys. */
export type KeySourceStatus = ComponentStatus & {
  /** Usable verification keys currently served. */
  readonly keys: number;
  /** Seconds since the last successful fetch, while serving stale keys. */
  readonly staleSeconds?: number;
};

/** Where one issuer's verification keys come from. */
export interface KeySource {
  /**
   * The keys to verify with right now, or undefined when there are none
   * (never loaded, or dropped past the maximum staleness). Cheap: called on
   * every request, including verified-token cache hits.
   */
  current(): KeySet | undefined;
  /**
   * Called when the current keys cannot serve a token (unknown `kid`, no
   * keys): fetches fresher keys if the source can and its cooldown allows,
   * sharing any fetch already in flight, then returns `current()`.
   */
  demand(): Promise<KeySet | undefined>;
  status(): KeySourceStatus;
  /** Stops timers and watchers; idempotent. */
  close(): void;
}
