/**
 * Ordered sequence within a window ("≥ 5 authentication failures, then a
 * success, for the same identity within 5 minutes"). Step 1 is counted over
 * a sliding window (its newest `count` matches), later steps in order. More
 * step-1 events after step 1 is complete slide the window forward instead of
 * resetting it: failures that continue are still the same attack. The whole
 * sequence must fit in `window`, measured from the oldest of the step-1
 * matches that count.
 */
import type { SequenceRule } from '../../rules/schema.ts';
import { fmtDuration, pushBounded, type Detector, type Observation } from '../detector.ts';
import type { EventView } from '../fields.ts';
import { compileFilter } from '../filter.ts';

interface SequenceState {
  last: number;
  stage: number;
  /** Times of the newest step-1 matches (at most steps[0].count). */
  t0: number[];
  /** Step-1 matches in the current attempt (may exceed steps[0].count). */
  n0: number;
  counts: number[];
  ids: string[];
}

export function sequenceDetector(rule: SequenceRule, evidenceLimit: number): Detector<SequenceState> {
  const W = rule.window;
  const steps = rule.steps.map((s) => ({ pred: compileFilter(s.filter), count: s.count }));
  const c0 = (steps[0] as { count: number }).count;
  const fresh = (): number[] => steps.map(() => 0);
  const reset = (s: SequenceState): void => {
    s.stage = 0;
    s.t0 = [];
    s.n0 = 0;
    s.counts = fresh();
    s.ids = [];
  };
  return {
    idleMs: rule.idle ?? W,
    stateful: true,
    create: (e) => ({ last: e.t, stage: 0, t0: [], n0: 0, counts: fresh(), ids: [] }),
    observe(s, e: EventView): Observation {
      const t = Math.max(e.t, s.last);
      s.last = t;
      while (s.t0.length > 0 && (s.t0[0] as number) < t - W) s.t0.shift();
      if (s.t0.length < c0 && s.stage > 0) {
        // The first step fell out of the window: this attempt is over.
        s.stage = 0;
        s.counts = fresh();
      }
      if (s.stage === 0 && s.n0 !== s.t0.length) {
        // Step-1 matches expired: so does their evidence.
        s.n0 = s.t0.length;
        s.ids = s.ids.slice(Math.max(0, s.ids.length - s.n0));
      }
      const cur = s.stage >= 1 ? steps[s.stage] : undefined;
      if (cur && cur.pred(e)) {
        s.counts[s.stage] = (s.counts[s.stage] ?? 0) + 1;
        pushBounded(s.ids, e.r.id, evidenceLimit);
        if ((s.counts[s.stage] as number) >= cur.count) s.stage += 1;
        if (s.stage < steps.length) return true;
        const later = s.counts.slice(1).reduce((a, b) => a + b, 0);
        const fired = {
          count: s.n0 + later,
          firstSeen: s.t0[0] as number,
          evidence: s.ids,
          summary: `${[s.n0, ...s.counts.slice(1)].map((n, i) => `${n}× step ${i + 1}`).join(' then ')} within ${fmtDuration(W)}`,
        };
        reset(s);
        return fired;
      }
      if ((steps[0] as { pred: (e: EventView) => boolean }).pred(e)) {
        pushBounded(s.t0, t, c0);
        s.n0 += 1;
        pushBounded(s.ids, e.r.id, evidenceLimit);
        if (s.stage === 0 && s.t0.length >= c0) s.stage = 1;
        return true;
      }
      for (let j = 1; j < s.stage; j++) if ((steps[j] as { pred: (e: EventView) => boolean }).pred(e)) return true;
      return false;
    },
    save: (s) => ({ ...s, t0: s.t0.slice(), counts: s.counts.slice(), ids: s.ids.slice() }),
    load: (v) => {
      const o = v as SequenceState;
      return { last: o.last, stage: o.stage, t0: [...o.t0], n0: o.n0, counts: [...o.counts], ids: [...o.ids] };
    },
  };
}
