/**
 * One rule, compiled: its filter predicate, how events are grouped, its
 * detector, and the bounded table of per-group state (idle groups are
 * evicted by event time; at the cap, the stalest go first).
 */
import { createHash } from 'node:crypto';
import type { RuleSpec } from '../rules/schema.ts';
import type { Scope } from '../types.ts';
import type { Detector } from './detector.ts';
import { ewmaDetector } from './detectors/ewma.ts';
import { leakyDetector } from './detectors/leaky.ts';
import { newTermsDetector } from './detectors/new-terms.ts';
import { sequenceDetector } from './detectors/sequence.ts';
import { singleDetector } from './detectors/single.ts';
import { thresholdDetector } from './detectors/threshold.ts';
import { scopeValue, type EventView } from './fields.ts';
import { compileFilter, type Predicate } from './filter.ts';

/** Default de-duplication window per kind when the rule sets no `dedup`. */
function defaultDedup(r: RuleSpec): number {
  switch (r.kind) {
    case 'leaky':
      return Math.max(60_000, (r.capacity + 1) * r.leakSpeed);
    case 'threshold':
    case 'sequence':
      return r.window;
    case 'new_terms':
      return 3_600_000;
    case 'ewma':
      return Math.max(10 * r.bucket, 600_000);
    case 'single':
      return 600_000;
  }
}

export function makeDetector(r: RuleSpec, evidenceLimit: number): Detector {
  switch (r.kind) {
    case 'leaky':
      return leakyDetector(r, evidenceLimit) as Detector;
    case 'threshold':
      return thresholdDetector(r, evidenceLimit) as Detector;
    case 'single':
      return singleDetector(r) as Detector;
    case 'sequence':
      return sequenceDetector(r, evidenceLimit) as Detector;
    case 'new_terms':
      return newTermsDetector(r) as Detector;
    case 'ewma':
      return ewmaDetector(r, evidenceLimit) as Detector;
  }
}

export interface GroupEntry {
  s: unknown;
  /** Watermark when last touched. */
  seen: number;
}

export const GLOBAL_KEY = '*';

export class RuleRuntime {
  readonly spec: RuleSpec;
  readonly pred: Predicate;
  readonly detector: Detector;
  readonly dedupMs: number;
  /** Hash of the rule's definition: snapshot state is only restored into an identical rule. */
  readonly defHash: string;
  readonly global: boolean;
  /** The groupBy scopes, in order (one placeholder for global rules). */
  readonly scopes: readonly Scope[];
  /**
   * Group state, one table per scope, keyed by the raw value: the strings come
   * straight from the parsed record (hashed once by V8), no key is built per event.
   */
  readonly tables: Map<string, GroupEntry>[];
  /** Set by `locate`: the event's group. */
  scopeIdx = 0;
  value = '';
  #lastSweep = -Infinity;
  evictions = 0;
  matched = 0;

  constructor(spec: RuleSpec, evidenceLimit: number) {
    this.spec = spec;
    this.pred = compileFilter(spec.filter);
    this.detector = makeDetector(spec, evidenceLimit);
    this.dedupMs = spec.dedup ?? defaultDedup(spec);
    this.defHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
    this.global = spec.groupBy === 'global';
    this.scopes = spec.groupBy === 'global' ? ['spiffe'] : typeof spec.groupBy === 'string' ? [spec.groupBy] : spec.groupBy;
    this.tables = this.scopes.map(() => new Map());
  }

  get scope(): Scope {
    return this.scopes[this.scopeIdx] as Scope;
  }

  /** Finds the event's group — the first scope of groupBy the event has — into scopeIdx/value; false when it has none. */
  locate(e: EventView): boolean {
    if (this.global) {
      this.scopeIdx = 0;
      this.value = GLOBAL_KEY;
      return true;
    }
    const scopes = this.scopes;
    for (let i = 0; i < scopes.length; i++) {
      const v = scopeValue(e, scopes[i] as Scope);
      if (v !== null) {
        this.scopeIdx = i;
        this.value = v;
        return true;
      }
    }
    return false;
  }

  groupCount(): number {
    let n = 0;
    for (const t of this.tables) n += t.size;
    return n;
  }

  /** The state of the group found by `locate`, created if new; stamped with the watermark. */
  touch(e: EventView, watermark: number): GroupEntry {
    const table = this.tables[this.scopeIdx] as Map<string, GroupEntry>;
    let g = table.get(this.value);
    if (g === undefined) {
      if (this.groupCount() >= this.spec.maxGroups) this.#makeRoom(watermark);
      g = { s: this.detector.create(e), seen: watermark };
      table.set(this.value, g);
    } else g.seen = watermark;
    if (watermark - this.#lastSweep >= this.detector.idleMs / 8) this.#sweep(watermark);
    return g;
  }

  /**
   * Drops groups idle for longer than the detector's idle time. A full scan,
   * but at most once per idle/8 of event time: cheaper than keeping the table
   * in LRU order on every event (a Map delete + set per touch cost a quarter
   * of the engine's time).
   */
  #sweep(watermark: number): void {
    this.#lastSweep = watermark;
    const limit = watermark - this.detector.idleMs;
    for (const table of this.tables) {
      for (const [k, g] of table) {
        if (g.seen < limit) {
          table.delete(k);
          this.evictions++;
        }
      }
    }
  }

  /** At the cap: drop idle groups, else the stalest tenth (counted; they are learnt again if they return). */
  #makeRoom(watermark: number): void {
    this.#sweep(watermark);
    if (this.groupCount() < this.spec.maxGroups) return;
    const all: [Map<string, GroupEntry>, string, number][] = [];
    for (const t of this.tables) for (const [k, g] of t) all.push([t, k, g.seen]);
    all.sort((a, b) => a[2] - b[2]);
    const n = Math.max(1, Math.floor(this.spec.maxGroups / 10));
    for (let i = 0; i < n && i < all.length; i++) {
      const [t, k] = all[i] as [Map<string, GroupEntry>, string, number];
      t.delete(k);
      this.evictions++;
    }
  }
}
