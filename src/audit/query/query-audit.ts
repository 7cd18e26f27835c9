/**
 * `queryAudit`: the records of an audit dir that satisfy a filter, across
 * rotated segments, oldest or newest first, with offset and limit. Streams:
 * memory is one read buffer plus, newest first, the hits of one segment
 * (at most offset + limit of them when a limit is set).
 *
 * Every segment is read (no skipping by time): `time` is when a request
 * started but records are written when it ends, so segment time ranges
 * overlap by up to the longest request — unbounded for WebSockets.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { listSegments, segmentFileName } from '../chain.ts';
import type { AuditRecord } from '../event.ts';
import type { AuditFilter } from './filter.ts';
import { readLineBatches } from './line-batches.ts';
import { judgeLine, lineJudge, newScanStats, reportDamage, type DamagedLine, type LineJudge, type LogPosition, type QueryHit, type ScanStats } from './scan.ts';

export type { DamagedLine, LogPosition, QueryHit } from './scan.ts';

/** Options of `queryAudit`. */
export interface QueryOptions {
  /** Most hits to yield; undefined or 0: all. */
  readonly limit?: number;
  /** Matching records to skip first (in `order`). */
  readonly offset?: number;
  /** `asc`: oldest first (default); `desc`: newest first. */
  readonly order?: 'asc' | 'desc';
  /** Called for each damaged line as it is found (they are also counted in `stats`). */
  readonly onDamaged?: (d: DamagedLine) => void;
  /** Called after each read (a few MiB). */
  readonly onProgress?: (p: QueryProgress) => void;
  /** Stops the scan; iteration then ends normally with `stats.aborted` set. */
  readonly signal?: AbortSignal;
}

/** Progress of a running query. */
export interface QueryProgress {
  readonly segment: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly scanned: number;
  readonly matched: number;
}

/** What a query did; complete once iteration has ended. */
export interface QueryStats extends ScanStats {
  /** Segment files found. */
  segments: number;
  /** Segment files read (fewer when a limit was reached first). */
  segmentsRead: number;
  /** True when iteration stopped at `limit`: more records may match. */
  limited: boolean;
  aborted: boolean;
  /**
   * A final line without a newline in the newest segment: a write in
   * progress (or a crash not yet recovered). Not a record, not damage.
   */
  incomplete: DamagedLine | undefined;
  /** End of the newest segment's complete lines, once it was read (where `followAudit` starts). */
  end: LogPosition | undefined;
}

/** A running query: iterate it for the hits; `stats` is filled as it runs. */
export interface AuditQuery extends AsyncIterable<QueryHit> {
  readonly stats: Readonly<QueryStats>;
}

interface Seg { readonly name: string; readonly n: number; readonly file: string; readonly size: number }

interface Run {
  readonly segs: readonly Seg[];
  readonly judge: LineJudge;
  readonly stats: QueryStats;
  readonly opts: QueryOptions;
  bytesTotal: number;
  bytesBefore: number;
}

/**
 * The hits of one segment, in order, one array per read (an async step per
 * hit would cost more than the parse). Damaged and incomplete lines are
 * reported as found.
 */
async function* segmentHits(run: Run, seg: Seg, newest: boolean): AsyncGenerator<QueryHit[]> {
  const { judge, stats, opts } = run;
  stats.segmentsRead++;
  let end: LogPosition = { segment: seg.name, n: seg.n, offset: 0, line: 1 };
  for await (const b of readLineBatches(seg.file)) {
    if (b.kind === 'lines') {
      const hits: QueryHit[] = [];
      for (let i = 0; i < b.lines.length; i++) {
        const hit = judgeLine(judge, b.lines[i] as string, seg.name, b.first + i);
        if (hit) hits.push(hit);
      }
      if (hits.length > 0) yield hits;
      end = { segment: seg.name, n: seg.n, offset: b.end, line: b.first + b.lines.length };
    } else if (b.kind === 'overlong') {
      stats.scanned++;
      reportDamage(judge, { segment: seg.name, line: b.first, reason: 'line longer than 16 MiB' });
    } else if (newest) {
      stats.incomplete = { segment: seg.name, line: b.first, reason: 'incomplete last line (a write in progress?)' };
    } else {
      stats.scanned++;
      reportDamage(judge, { segment: seg.name, line: b.first, reason: 'incomplete line at the end of an older segment' });
    }
    opts.onProgress?.({ segment: seg.name, bytesDone: run.bytesBefore + b.bytesRead, bytesTotal: run.bytesTotal, scanned: stats.scanned, matched: stats.matched });
    if (opts.signal?.aborted) {
      stats.aborted = true;
      return;
    }
  }
  if (newest) stats.end = end;
  run.bytesBefore += seg.size;
}

async function* ascending(run: Run, skip: number, limit: number): AsyncGenerator<QueryHit> {
  let skipped = 0;
  let yielded = 0;
  for (let i = 0; i < run.segs.length && !run.stats.aborted; i++) {
    for await (const hits of segmentHits(run, run.segs[i] as Seg, i === run.segs.length - 1)) {
      for (const h of hits) {
        if (skipped < skip) {
          skipped++;
          continue;
        }
        yield h;
        if (++yielded >= limit) {
          run.stats.limited = true;
          return;
        }
      }
    }
  }
}

async function* descending(run: Run, skip: number, limit: number): AsyncGenerator<QueryHit> {
  let taken = 0; // hits skipped or yielded so far
  const want = skip + limit;
  for (let i = run.segs.length - 1; i >= 0; i--) {
    // Keep only the newest `want - taken` hits of this segment (a ring).
    const cap = want - taken;
    const ring: QueryHit[] = [];
    let start = 0;
    for await (const hits of segmentHits(run, run.segs[i] as Seg, i === run.segs.length - 1)) {
      for (const h of hits) {
        if (ring.length < cap) ring.push(h);
        else {
          ring[start] = h;
          start = (start + 1) % ring.length;
        }
      }
    }
    if (run.stats.aborted) return;
    for (let k = ring.length - 1; k >= 0; k--) {
      const h = ring[(start + k) % ring.length] as QueryHit;
      taken++;
      if (taken > skip) yield h;
      if (taken >= want) {
        run.stats.limited = true;
        return;
      }
    }
  }
}

function checkCount(name: string, v: number | undefined): number {
  if (v === undefined) return 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`queryAudit: ${name} must be a non-negative integer`);
  return v;
}

/**
 * Queries the audit log in `dir`. Throws (on first iteration) only when
 * `dir` cannot be read; damaged lines are reported through `onDamaged` and
 * `stats`, and the scan goes on past them.
 */
export function queryAudit(dir: string, filter: AuditFilter, options: QueryOptions = {}): AuditQuery {
  const skip = checkCount('offset', options.offset);
  const limit = checkCount('limit', options.limit) || Infinity;
  const order = options.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw new TypeError('queryAudit: order must be asc or desc');
  const stats: QueryStats = { ...newScanStats(), segments: 0, segmentsRead: 0, limited: false, aborted: false, incomplete: undefined, end: undefined };
  async function* iterate(): AsyncGenerator<QueryHit> {
    const listed = await listSegments(dir);
    const segs: Seg[] = [];
    for (const s of listed) {
      const file = path.join(dir, s.name);
      segs.push({ ...s, file, size: (await stat(file)).size });
    }
    stats.segments = segs.length;
    if (segs.length === 0) stats.end = { segment: segmentFileName(1), n: 1, offset: 0, line: 1 };
    const run: Run = { segs, judge: lineJudge(filter, stats, options.onDamaged), stats, opts: options, bytesTotal: segs.reduce((n, s) => n + s.size, 0), bytesBefore: 0 };
    yield* order === 'asc' ? ascending(run, skip, limit) : descending(run, skip, limit);
  }
  return { stats, [Symbol.asyncIterator]: iterate };
}

/** The records of `hits` (e.g. a query, for `aggregate`). */
export async function* recordsOf(hits: AsyncIterable<QueryHit>): AsyncGenerator<AuditRecord> {
  for await (const h of hits) yield h.record;
}
