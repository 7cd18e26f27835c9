/**
 * Leaky bucket, as CrowdSec's `leaky` scenarios: every matching event pours
 * one unit, the bucket leaks one unit per `leakSpeed`, and the event that
 * would take it past `capacity` overflows it (capacity 5 → fires on the 6th
 * event poured faster than the leak). After an overflow the bucket starts
 * empty, as CrowdSec discards an overflowed bucket. With `distinct`, a value
 * already in the bucket is not poured again (CrowdSec's `distinct`), so six
 * requests to the same path are one unit.
 *
 * The leak is continuous (level decays by elapsed/leakSpeed), which is the
 * same arithmetic as CrowdSec's token-bucket limiter seen from the other side.
 */
import type { LeakyRule } from '../../rules/schema.ts';
import { fmtDuration, pushBounded, type Detector, type Observation } from '../detector.ts';
import { ACCESSORS, type EventView } from '../fields.ts';

interface LeakyState {
  level: number;
  last: number;
  first: number;
  poured: number;
  ids: string[];
  /** Values in the bucket (distinct only). */
  seen: Set<string | number | boolean> | null;
}

interface SavedLeaky {
  level: number;
  last: number;
  first: number;
  poured: number;
  ids: string[];
  seen: (string | number | boolean)[] | null;
}

export function leakyDetector(rule: LeakyRule, evidenceLimit: number): Detector<LeakyState> {
  const { capacity, leakSpeed } = rule;
  const distinct = rule.distinct === undefined ? undefined : ACCESSORS[rule.distinct];
  const cap = Math.min(evidenceLimit, capacity + 1);
  const what = rule.distinct ? `distinct ${rule.distinct} values` : 'matching events';
  const reset = (s: LeakyState, t: number): void => {
    s.level = 0;
    s.first = t;
    s.poured = 0;
    s.ids = [];
    s.seen?.clear();
  };
  return {
    // A bucket is empty, hence forgettable, once a full one has leaked out.
    idleMs: rule.idle ?? capacity * leakSpeed + leakSpeed,
    stateful: true,
    create: (e) => ({ level: 0, last: e.t, first: e.t, poured: 0, ids: [], seen: distinct ? new Set() : null }),
    observe(s, e: EventView): Observation {
      const t = Math.max(e.t, s.last);
      s.level = Math.max(0, s.level - (t - s.last) / leakSpeed);
      s.last = t;
      if (s.level === 0) reset(s, e.t);
      if (distinct && s.seen) {
        const v = distinct(e);
        if (v === null || s.seen.has(v)) return true;
        s.seen.add(v);
      }
      s.level += 1;
      s.poured += 1;
      pushBounded(s.ids, e.r.id, cap);
      if (s.level <= capacity) return true;
      const fired = {
        count: s.poured,
        firstSeen: s.first,
        evidence: s.ids,
        summary: `${s.poured} ${what} in ${fmtDuration(t - s.first)} overflowed a bucket of capacity ${capacity} leaking 1 per ${fmtDuration(leakSpeed)}`,
      };
      reset(s, t);
      return fired;
    },
    save: (s): SavedLeaky => ({ level: s.level, last: s.last, first: s.first, poured: s.poured, ids: s.ids.slice(), seen: s.seen ? [...s.seen] : null }),
    load: (v) => {
      const o = v as SavedLeaky;
      return { level: o.level, last: o.last, first: o.first, poured: o.poured, ids: [...o.ids], seen: o.seen ? new Set(o.seen) : distinct ? new Set() : null };
    },
  };
}
