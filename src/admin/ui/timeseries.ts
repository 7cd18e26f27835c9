/**
 * Requests, denials and alerts per time bucket, for the overview charts.
 * Events come from the audit log through the query library (a time-range
 * filter, so the prefilter skips lines outside it unparsed); alerts are
 * counted once per alert id, in the bucket of their `firstSeen`.
 */
import type { Alert } from '../../analyzer/types.ts';
import { queryAudit, type DamagedLine } from '../../audit/query/index.ts';

/** Most buckets one request may ask for. */
export const MAX_BUCKETS = 1500;

/** Counts per bucket; `t[i]` is the start of bucket i (epoch ms), buckets are `bucketMs` wide. */
export interface Timeseries {
  readonly bucketMs: number;
  readonly from: number;
  readonly to: number;
  readonly t: number[];
  /** Audited requests and refused TLS handshakes (alarm events are extra records about a request, not requests). */
  readonly requests: number[];
  readonly denials: number[];
  readonly alerts: number[];
  readonly damaged: number;
  readonly damagedLines: readonly DamagedLine[];
}

/** Bucket starts from `from` (rounded down to a bucket boundary) up to `to`. */
export function bucketStarts(from: number, to: number, bucketMs: number): number[] {
  if (!(bucketMs > 0) || !(to > from)) throw new TypeError('bucketStarts: need bucketMs > 0 and to > from');
  const first = Math.floor(from / bucketMs) * bucketMs;
  const n = Math.ceil((to - first) / bucketMs);
  if (n > MAX_BUCKETS) throw new RangeError(`${n} buckets; at most ${MAX_BUCKETS}`);
  return Array.from({ length: n }, (_, i) => first + i * bucketMs);
}

/** Counts the audit log in `auditDir` and `alerts` into buckets over [from, to). */
export async function buildTimeseries(auditDir: string, alerts: readonly Alert[], from: number, to: number, bucketMs: number, signal?: AbortSignal): Promise<Timeseries> {
  const t = bucketStarts(from, to, bucketMs);
  const first = t[0] as number;
  const requests = t.map(() => 0);
  const denials = t.map(() => 0);
  const alertCounts = t.map(() => 0);
  const slot = (ms: number): number => (ms >= first && ms < to ? Math.floor((ms - first) / bucketMs) : -1);
  const q = queryAudit(auditDir, { since: first, until: to }, signal ? { signal } : {});
  try {
    for await (const hit of q) {
      const r = hit.record;
      if (r.type === 'alarm') continue;
      const i = slot(Date.parse(r.time));
      if (i < 0) continue;
      requests[i] = (requests[i] as number) + 1;
      if (r.decision === 'deny') denials[i] = (denials[i] as number) + 1;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const a of alerts) {
    const i = slot(Date.parse(a.firstSeen));
    if (i >= 0) alertCounts[i] = (alertCounts[i] as number) + 1;
  }
  return { bucketMs, from: first, to, t, requests, denials, alerts: alertCounts, damaged: q.stats.damaged, damagedLines: q.stats.damagedLines.slice(0, 10) };
}
