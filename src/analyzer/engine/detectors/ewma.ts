/**
 * EWMA anomaly: the measure of the current time bucket (request count, sum of
 * a field such as bytesOut, or the share of events matching `numerator`) is
 * compared with an exponentially weighted moving mean and variance of past
 * buckets (Welford-style EW updates; alpha = weight of the newest bucket).
 * Fires after `warmup` non-empty buckets when the bucket reaches `minValue`
 * and both configured tests hold: z-score ≥ `minZ`, value ≥ `minFactor` ×
 * mean. Count and sum only grow within a bucket, so they are tested on every
 * event (detection does not wait for the bucket to end); a ratio is tested
 * once `minEvents` events are in the bucket (its baseline learns from every
 * non-empty bucket).
 *
 * The standard deviation has a floor — Poisson (√mean) for counts, 10 % of
 * the mean for sums, binomial for ratios — so a perfectly flat baseline does
 * not turn one extra request into an infinite z-score. A bucket that fired
 * updates the baseline with the firing boundary, not its own value: a
 * sustained attack must not become the new normal within minutes, while a
 * lasting legitimate shift is still absorbed over time.
 */
import type { EwmaRule } from '../../rules/schema.ts';
import type { Scope } from '../../types.ts';
import { fmtDuration, pushBounded, type Detector, type Observation } from '../detector.ts';
import { ACCESSORS, scopeValue, type EventView } from '../fields.ts';
import { compileFilter } from '../filter.ts';

interface EwmaState {
  bucket: number;
  x: number;
  num: number;
  den: number;
  mean: number;
  var: number;
  n: number;
  fired: boolean;
  cnt: number;
  first: number;
  ids: string[];
  /** Global rules: events per attributed identity in the current bucket, one map per `attribute` scope. */
  top: Map<string, number>[] | null;
}

/** Empty buckets folded into the baseline at most (beyond it the mean is ~0 anyway). */
const MAX_ZERO_FOLDS = 500;
const TOP_MAX = 1000;

export function ewmaDetector(rule: EwmaRule, evidenceLimit: number): Detector<EwmaState> {
  const B = rule.bucket;
  const a = rule.alpha;
  const global = rule.groupBy === 'global';
  const attribute: readonly Scope[] = rule.attribute ?? ['spiffe', 'ip'];
  const field = rule.field === undefined ? undefined : ACCESSORS[rule.field];
  const numerator = rule.numerator === undefined ? undefined : compileFilter(rule.numerator);
  const label = rule.measure === 'count' ? 'events' : rule.measure === 'sum' ? `sum of ${rule.field}` : 'matching share';

  const value = (s: EwmaState): number | undefined => {
    if (rule.measure === 'ratio') return s.den >= rule.minEvents ? s.num / s.den : undefined;
    return s.x;
  };
  const sdEff = (s: EwmaState): number => {
    const sd = Math.sqrt(Math.max(0, s.var));
    if (rule.measure === 'count') return Math.max(sd, Math.sqrt(Math.max(s.mean, 1)));
    if (rule.measure === 'sum') return Math.max(sd, 0.1 * s.mean, 1);
    return Math.max(sd, Math.sqrt((s.mean * (1 - s.mean)) / Math.max(s.den, 1)), 0.02);
  };
  /** Smallest bucket value that passes every configured test. */
  const boundary = (s: EwmaState): number => {
    let b = rule.minValue;
    if (rule.minFactor !== undefined) b = Math.max(b, rule.minFactor * s.mean);
    if (rule.minZ !== undefined) b = Math.max(b, s.mean + rule.minZ * sdEff(s));
    return b;
  };
  const fold = (s: EwmaState, v: number): void => {
    if (s.n === 0) {
      s.mean = v;
      s.var = 0;
    } else {
      const diff = v - s.mean;
      const incr = a * diff;
      s.mean += incr;
      s.var = (1 - a) * (s.var + diff * incr);
    }
  };
  const closeBucket = (s: EwmaState, next: number): void => {
    // The baseline learns from every bucket with data, small ones included, or a
    // low-volume workload would never warm up; only firing needs minEvents.
    const v = rule.measure === 'ratio' ? (s.den > 0 ? s.num / s.den : undefined) : s.x;
    if (v !== undefined && s.cnt > 0) {
      fold(s, s.fired ? Math.min(v, boundary(s)) : v);
      s.n += 1;
    }
    if (rule.measure !== 'ratio' && s.n > 0) {
      // Buckets without events are zeros of a count or a sum (not of a ratio).
      const gaps = Math.min(MAX_ZERO_FOLDS, Math.max(0, Math.round((next - s.bucket) / B) - 1));
      for (let i = 0; i < gaps; i++) fold(s, 0);
    }
    s.bucket = next;
    s.x = s.num = s.den = s.cnt = 0;
    s.fired = false;
    s.ids = [];
    if (s.top) for (const m of s.top) m.clear();
  };

  return {
    idleMs: rule.idle ?? Math.max(2 * 3_600_000, 10 * B),
    stateful: true,
    create: (e) => ({ bucket: Math.floor(e.t / B) * B, x: 0, num: 0, den: 0, mean: 0, var: 0, n: 0, fired: false, cnt: 0, first: e.t, ids: [], top: global ? attribute.map(() => new Map()) : null }),
    observe(s, e: EventView): Observation {
      const b = Math.floor(e.t / B) * B;
      // Late events (older than the current bucket) are counted in the current one.
      if (b > s.bucket) closeBucket(s, b);
      if (s.cnt === 0) s.first = e.t;
      s.cnt += 1;
      let contributes = true;
      if (rule.measure === 'count') s.x += 1;
      else if (rule.measure === 'sum') {
        const v = (field as (e: EventView) => unknown)(e);
        s.x += typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
      } else {
        s.den += 1;
        contributes = (numerator as (e: EventView) => boolean)(e);
        if (contributes) s.num += 1;
      }
      if (contributes) pushBounded(s.ids, e.r.id, evidenceLimit);
      if (s.top) {
        for (let i = 0; i < attribute.length; i++) {
          const v = scopeValue(e, attribute[i] as Scope);
          if (v === null) continue;
          const m = s.top[i] as Map<string, number>;
          const c = m.get(v);
          if (c !== undefined) m.set(v, c + 1);
          else if (m.size < TOP_MAX) m.set(v, 1);
          break;
        }
      }
      if (s.fired || s.n < rule.warmup) return contributes;
      const v = value(s);
      if (v === undefined || v < rule.minValue) return contributes;
      const sd = sdEff(s);
      const z = (v - s.mean) / sd;
      const factor = s.mean > 0 ? v / s.mean : Infinity;
      if (rule.minZ !== undefined && z < rule.minZ) return contributes;
      if (rule.minFactor !== undefined && factor < rule.minFactor) return contributes;
      s.fired = true;
      const show = (x: number): string => (rule.measure === 'ratio' ? `${(x * 100).toFixed(1)}%` : x >= 100 ? x.toFixed(0) : x.toFixed(2));
      let attribution: { scope: Scope; value: string } | undefined;
      if (s.top) {
        // Top contributor; ties go to the earlier scope, then the smaller value (deterministic).
        let best: [number, string, number] | undefined;
        s.top.forEach((m, i) => {
          for (const [v, c] of m) if (!best || c > best[2] || (c === best[2] && (i < best[0] || (i === best[0] && v < best[1])))) best = [i, v, c];
        });
        if (best) attribution = { scope: attribute[best[0]] as Scope, value: best[1] };
      }
      return {
        count: rule.measure === 'ratio' ? s.num : s.cnt,
        firstSeen: s.first,
        evidence: s.ids,
        summary: `${label} ${show(v)} in a ${fmtDuration(B)} bucket vs baseline ${show(s.mean)} (z ${Number.isFinite(z) ? z.toFixed(1) : '∞'}, ×${Number.isFinite(factor) ? factor.toFixed(1) : '∞'})`,
        ...(attribution ? { attribution } : {}),
      };
    },
    save: (s) => ({ ...s, ids: s.ids.slice(), top: s.top ? s.top.map((m) => [...m]) : null }),
    load: (v) => {
      const o = v as Omit<EwmaState, 'top'> & { top: [string, number][][] | null };
      return { ...o, ids: [...o.ids], top: global ? attribute.map((_, i) => new Map(o.top?.[i] ?? [])) : null };
    },
  };
}
