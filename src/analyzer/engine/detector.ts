/**
 * The contract between the engine and one rule kind. The engine filters and
 * groups events; a detector keeps the per-group state of its kind and says,
 * for each matching event, whether the rule fires. Everything is in event
 * time: detectors never read a clock.
 */
import type { Scope } from '../types.ts';
import type { EventView } from './fields.ts';

/** The rule fired on this event. */
export interface Trigger {
  /** Events counted in the state that fired (e.g. 6 for a bucket of capacity 5). */
  readonly count: number;
  /** Event time (ms) of the first of those events. */
  readonly firstSeen: number;
  /** Their ids, oldest first, at most the engine's evidence limit. */
  readonly evidence: readonly string[];
  /** One line for people: what was counted against what. */
  readonly summary: string;
  /** Global rules only: the identity the alert is attributed to (top contributor). */
  readonly attribution?: { readonly scope: Scope; readonly value: string };
}

/**
 * A Trigger when the rule fires; otherwise whether the event counts towards
 * an alert already open for the group (it then updates count and lastSeen).
 */
export type Observation = Trigger | boolean;

export interface Detector<S = unknown> {
  /** Group state not touched for this long (event time) is dropped. */
  readonly idleMs: number;
  /** False for kinds without per-group state (single): the engine skips the group table. */
  readonly stateful: boolean;
  create(e: EventView): S;
  observe(state: S, e: EventView): Observation;
  /** JSON-serializable form of a group's state (engine snapshots), sharing nothing the detector mutates later. */
  save(state: S): unknown;
  load(saved: unknown): S;
}

/** Keeps the newest `cap` items of `arr` (small arrays: evidence rings). */
export function pushBounded<T>(arr: T[], item: T, cap: number): void {
  arr.push(item);
  if (arr.length > cap) arr.splice(0, arr.length - cap);
}

/** `9m`, `10s`, `1h30m`, `250ms`: durations as people write them in rules. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let s = Math.round(ms / 1000);
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join('');
}

/** An attacker-chosen string made safe for a one-line summary. */
export function quote(s: string, max = 80): string {
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return JSON.stringify(clean.length > max ? `${clean.slice(0, max)}…` : clean);
}
