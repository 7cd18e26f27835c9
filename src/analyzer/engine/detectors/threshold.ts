/**
 * Counter over a window: fires when at least `count` matching events (or,
 * with `distinct`, `count` distinct values of a field) fall within `window`.
 * Sliding windows keep only what the decision needs — the newest `count`
 * timestamps, or at most `count` distinct values with their last time —
 * so a group's state is O(count) whatever the traffic. Tumbling windows are
 * aligned to multiples of `window` in event time (deterministic across
 * restarts and replicas) and fire at most once per window.
 */
import type { ThresholdRule } from '../../rules/schema.ts';
import { fmtDuration, pushBounded, type Detector, type Observation, type Trigger } from '../detector.ts';
import { ACCESSORS, type EventView } from '../fields.ts';

type Key = string | number | boolean;

interface ThresholdState {
  last: number;
  /** Sliding count: newest `count` event times and ids. */
  times: number[];
  ids: string[];
  /** Distinct: value → [last time, id of the event that brought it]. */
  values: Map<Key, [number, string]> | null;
  /** Distinct: a lower bound of the oldest last time in `values`. */
  oldest: number;
  /** Tumbling: start of the current window, events in it, fired already. */
  bucket: number;
  n: number;
  fired: boolean;
}

export function thresholdDetector(rule: ThresholdRule, evidenceLimit: number): Detector<ThresholdState> {
  const { window: W, count: N } = rule;
  const distinct = rule.distinct === undefined ? undefined : ACCESSORS[rule.distinct];
  const cap = Math.min(evidenceLimit, N);
  const tumbling = rule.windowType === 'tumbling';
  const what = rule.distinct ? `distinct ${rule.distinct} values` : 'matching events';

  const fire = (n: number, first: number, ids: readonly string[]): Trigger => ({
    count: n,
    firstSeen: first,
    evidence: ids.slice(-cap),
    summary: `${n} ${what} within ${fmtDuration(W)} (threshold ${N})`,
  });

  const observeDistinct = (s: ThresholdState, e: EventView, t: number): Observation => {
    const v = (distinct as (e: EventView) => Key | null)(e);
    if (v === null) return true;
    const m = s.values as Map<Key, [number, string]>;
    const prev = m.get(v);
    if (prev) prev[0] = t;
    else {
      m.set(v, [t, e.r.id]);
      if (m.size === 1) s.oldest = t;
    }
    // Expire and trim only when something may be stale or over the bound (N is small).
    if (m.size > N || s.oldest < t - W) {
      s.oldest = Infinity;
      let minKey: Key | undefined;
      for (const [k, [lt]] of m) {
        if (lt < t - W) m.delete(k);
        else if (lt < s.oldest) {
          s.oldest = lt;
          minKey = k;
        }
      }
      if (m.size > N && minKey !== undefined) {
        m.delete(minKey);
        s.oldest = Infinity;
        for (const [lt] of m.values()) if (lt < s.oldest) s.oldest = lt;
      }
    }
    if (m.size < N) return true;
    const entries = [...m.values()].sort((a, b) => a[0] - b[0]);
    m.clear();
    return fire(N, (entries[0] as [number, string])[0], entries.map(([, id]) => id));
  };

  return {
    idleMs: rule.idle ?? W,
    stateful: true,
    create: (e) => ({ last: e.t, times: [], ids: [], values: distinct ? new Map() : null, oldest: Infinity, bucket: Math.floor(e.t / W) * W, n: 0, fired: false }),
    observe(s, e): Observation {
      const t = Math.max(e.t, s.last);
      s.last = t;
      if (tumbling) {
        const b = Math.floor(t / W) * W;
        if (b !== s.bucket) {
          s.bucket = b;
          s.n = 0;
          s.fired = false;
          s.ids = [];
          s.times = [];
          s.values?.clear();
        }
        if (s.fired) return true;
        if (distinct) {
          const v = distinct(e);
          if (v === null) return true;
          const m = s.values as Map<Key, [number, string]>;
          if (!m.has(v)) m.set(v, [t, e.r.id]);
          if (m.size < N) return true;
          s.fired = true;
          const entries = [...m.values()];
          return fire(N, (entries[0] as [number, string])[0], entries.map(([, id]) => id));
        }
        s.n += 1;
        pushBounded(s.ids, e.r.id, cap);
        if (s.times.length === 0) s.times.push(t);
        if (s.n < N) return true;
        s.fired = true;
        return fire(s.n, s.times[0] as number, s.ids);
      }
      if (distinct) return observeDistinct(s, e, t);
      pushBounded(s.times, t, N);
      pushBounded(s.ids, e.r.id, cap);
      if (s.times.length < N || t - (s.times[0] as number) > W) return true;
      const trig = fire(N, s.times[0] as number, s.ids);
      s.times = [];
      s.ids = [];
      return trig;
    },
    save: (s) => ({ last: s.last, times: s.times.slice(), ids: s.ids.slice(), values: s.values ? Array.from(s.values, ([k, [lt, id]]) => [k, [lt, id]]) : null, oldest: Number.isFinite(s.oldest) ? s.oldest : null, bucket: s.bucket, n: s.n, fired: s.fired }),
    load: (v) => {
      const o = v as { last: number; times: number[]; ids: string[]; values: [Key, [number, string]][] | null; oldest: number | null; bucket: number; n: number; fired: boolean };
      return { last: o.last, times: [...o.times], ids: [...o.ids], values: distinct ? new Map(o.values ?? []) : null, oldest: o.oldest ?? Infinity, bucket: o.bucket, n: o.n, fired: o.fired };
    },
  };
}
