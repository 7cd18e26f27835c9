/**
 * `aggregate`: counts of records per group (`--group-by`, and the web UI's
 * "top denied identities and routes"), largest first.
 */
import type { AuditRecord } from '../event.ts';
import { identityOf } from './filter.ts';

/** What records can be grouped by. */
export const GROUP_BY = ['identity', 'route', 'reason', 'status', 'decision', 'method', 'path', 'type'] as const;

export type GroupBy = (typeof GROUP_BY)[number];

/** One group: `key` null for records without the field (no identity, no route, …). */
export interface GroupCount {
  readonly key: string | null;
  readonly count: number;
}

/** Counts per group, sorted by count (desc), then key. */
export interface Aggregation {
  readonly groupBy: GroupBy;
  /** Records counted. */
  readonly total: number;
  readonly groups: readonly GroupCount[];
  /**
   * Records whose key arrived after `maxGroups` distinct keys were held
   * (attackers choose paths freely, so keys are capped): counted here, in
   * no group. 0 unless the cap was reached.
   */
  readonly overflow: number;
}

/** Default cap on distinct keys held in memory. */
export const MAX_GROUPS = 100_000;

/** The group key of `record`: identity as `identityOf`; other fields as stored, stringified. */
export function groupKey(record: AuditRecord, by: GroupBy): string | null {
  if (by === 'identity') return identityOf(record) ?? null;
  const v = (record as unknown as Record<string, unknown>)[by];
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return null;
}

/** True when `s` names a GroupBy. */
export function isGroupBy(s: string): s is GroupBy {
  return (GROUP_BY as readonly string[]).includes(s);
}

/** Counts `records` per `groupBy` key. */
export async function aggregate(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  groupBy: GroupBy,
  options: { maxGroups?: number } = {},
): Promise<Aggregation> {
  if (!isGroupBy(groupBy)) throw new TypeError(`aggregate: unknown groupBy ${JSON.stringify(groupBy)}`);
  const max = options.maxGroups ?? MAX_GROUPS;
  const counts = new Map<string | null, number>();
  let total = 0;
  let overflow = 0;
  for await (const r of records) {
    total++;
    const k = groupKey(r, groupBy);
    const c = counts.get(k);
    if (c !== undefined) counts.set(k, c + 1);
    else if (counts.size < max) counts.set(k, 1);
    else overflow++;
  }
  const groups = [...counts].map(([key, count]) => ({ key, count }));
  groups.sort((a, b) => b.count - a.count || compareKeys(a.key, b.key));
  return { groupBy, total, groups, overflow };
}

function compareKeys(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  // Numeric keys (status) in numeric order; others by code unit, locale-free.
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : 1;
}
