/**
 * The per-line step shared by `queryAudit` and `followAudit`: framing check,
 * prefilter, parse, `matches`. A line that is not a record is reported
 * (never skipped silently) and counted; reading is not verifying, so a
 * record that parses is trusted as it stands (`audit verify` proves it).
 */
import type { AuditRecord } from '../event.ts';
import { matches, type AuditFilter } from './filter.ts';
import { compilePrefilter, framingProblem, type LinePrefilter } from './prefilter.ts';

/** A matching record, its exact stored line, and where it is. */
export interface QueryHit {
  readonly record: AuditRecord;
  /** The line as stored (without newline): byte-exact, so its hash can be checked. */
  readonly text: string;
  readonly segment: string;
  /** 1-based line number in `segment`. */
  readonly line: number;
}

/** A line that is not a record. */
export interface DamagedLine {
  readonly segment: string;
  readonly line: number;
  readonly reason: string;
}

/** Where a reader stopped in the log: the next byte to read and its line number. */
export interface LogPosition {
  readonly segment: string;
  /** Segment number (audit-000007.jsonl → 7). */
  readonly n: number;
  readonly offset: number;
  readonly line: number;
}

/** Counters of a query or follow, updated as it runs. */
export interface ScanStats {
  /** Lines read (records and damaged lines). */
  scanned: number;
  /** Records that satisfied the filter (including any skipped by `offset`). */
  matched: number;
  /** Damaged lines seen; the first DAMAGE_KEPT are in `damagedLines`. */
  damaged: number;
  readonly damagedLines: DamagedLine[];
}

/** How many damaged lines are kept in full in the stats. */
export const DAMAGE_KEPT = 100;

/** The compiled filter plus where to report. */
export interface LineJudge {
  readonly filter: AuditFilter;
  readonly pre: LinePrefilter;
  readonly stats: ScanStats;
  readonly onDamaged: ((d: DamagedLine) => void) | undefined;
}

/** Zeroed counters. */
export function newScanStats(): ScanStats {
  return { scanned: 0, matched: 0, damaged: 0, damagedLines: [] };
}

/** Compiles `filter` (and its prefilter) for `judgeLine`. */
export function lineJudge(filter: AuditFilter, stats: ScanStats, onDamaged?: (d: DamagedLine) => void): LineJudge {
  return { filter, pre: compilePrefilter(filter), stats, onDamaged };
}

/** Counts and reports a damaged line. */
export function reportDamage(j: LineJudge, d: DamagedLine): void {
  j.stats.damaged++;
  if (j.stats.damagedLines.length < DAMAGE_KEPT) j.stats.damagedLines.push(d);
  j.onDamaged?.(d);
}

/** Judges one line: the hit when it matches, undefined when not (damage is reported). */
export function judgeLine(j: LineJudge, text: string, segment: string, line: number): QueryHit | undefined {
  j.stats.scanned++;
  const bad = framingProblem(text);
  if (bad !== undefined) {
    reportDamage(j, { segment, line, reason: bad });
    return undefined;
  }
  if (!j.pre(text)) return undefined;
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    reportDamage(j, { segment, line, reason: 'line is not valid JSON' });
    return undefined;
  }
  const r = rec as { time?: unknown; type?: unknown; decision?: unknown };
  if (typeof r.time !== 'string' || typeof r.type !== 'string' || typeof r.decision !== 'string') {
    reportDamage(j, { segment, line, reason: 'record lacks "time", "type" or "decision"' });
    return undefined;
  }
  const record = rec as AuditRecord;
  if (!matches(record, j.filter)) return undefined;
  j.stats.matched++;
  return { record, text, segment, line };
}
