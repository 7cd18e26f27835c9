/**
 * `followAudit`: the records appended to an audit log from a position on,
 * as they are written — across rotation into new segments — until aborted
 * (`meshgate audit tail -f`, and the web UI's live view). The following
 * itself is `LineFollower`'s (../line-follower.ts); this module judges lines
 * and keeps line numbers.
 */
import { segmentFileName } from '../chain.ts';
import { DirWaker, LineFollower, type FollowedLines } from '../line-follower.ts';
import type { AuditFilter } from './filter.ts';
import { judgeLine, lineJudge, newScanStats, reportDamage, type DamagedLine, type LogPosition, type QueryHit, type ScanStats } from './scan.ts';

/** Options of `followAudit`. */
export interface FollowOptions {
  /** Ends the follow: iteration then finishes normally. */
  readonly signal: AbortSignal;
  readonly onDamaged?: (d: DamagedLine) => void;
  /**
   * Longest wait between looks at the log (default 250 ms). File-system
   * events wake the follower sooner; polling covers file systems without them.
   */
  readonly pollMs?: number;
}

/** A running follow: iterate it for the hits. */
export interface AuditFollow extends AsyncIterable<QueryHit> {
  readonly stats: Readonly<ScanStats>;
  /** The next byte to read. */
  readonly position: LogPosition;
}

function damage(r: Exclude<FollowedLines, { kind: 'lines' }>): string {
  if (r.kind === 'shrank') return `segment shrank from ${r.offset} to ${r.size} bytes while followed (truncated?)`;
  return r.kind === 'overlong' ? 'line longer than 16 MiB' : 'incomplete line at the end of an older segment';
}

/**
 * Follows the log in `dir` from `from` (e.g. `queryAudit(…).stats.end`),
 * yielding records that satisfy `filter` as they are appended, and moving
 * on to segment N+1 when the writer rotates. Runs until `signal` aborts.
 * Damaged lines are reported and counted, and following goes on.
 */
export function followAudit(dir: string, filter: AuditFilter, from: LogPosition, options: FollowOptions): AuditFollow {
  const stats = newScanStats();
  let pos = from;
  const pollMs = options.pollMs ?? 250;
  const { signal } = options;
  const lines = new LineFollower(dir, { segment: from.n, offset: from.offset });
  /** `pos` at `lines`' position, with the line number moved on by `passed` lines (back to 1 in a new segment). */
  const advance = (passed: number): void => {
    const p = lines.position;
    pos = { segment: segmentFileName(p.segment), n: p.segment, offset: p.offset, line: p.segment === pos.n ? pos.line + passed : 1 };
  };
  async function* iterate(): AsyncGenerator<QueryHit> {
    const j = lineJudge(filter, stats, options.onDamaged);
    const waker = new DirWaker(dir);
    try {
      while (!signal.aborted) {
        const r = await lines.read();
        if (r === undefined) {
          advance(0); // an empty segment may have been reached
          await waker.wait(pollMs, signal);
          continue;
        }
        const segment = segmentFileName(r.segment);
        const first = r.segment === pos.n ? pos.line : 1;
        if (r.kind !== 'lines') {
          if (r.kind !== 'shrank') j.stats.scanned++;
          reportDamage(j, { segment, line: first, reason: damage(r) });
          pos = { segment, n: r.segment, offset: r.offset, line: first };
          advance(r.kind === 'shrank' ? 0 : 1);
          continue;
        }
        const b = r.bytes;
        let line = first;
        for (let start = 0, nl = b.indexOf(10); nl !== -1; start = nl + 1, nl = b.indexOf(10, start), line++) {
          const hit = judgeLine(j, b.toString('utf8', start, nl), segment, line);
          if (hit) yield hit;
        }
        pos = { segment, n: r.segment, offset: r.offset + b.length, line };
      }
    } finally {
      waker.close();
      await lines.close();
    }
  }
  return {
    stats,
    get position(): LogPosition { return pos; },
    [Symbol.asyncIterator]: iterate,
  };
}
