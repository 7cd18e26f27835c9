/**
 * `followAudit`: the records appended to an audit log from a position on,
 * as they are written — across rotation into new segments — until aborted
 * (`meshgate audit tail -f`, and the web UI's live view).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { segmentFileName } from '../chain.ts';
import type { AuditFilter } from './filter.ts';
import { readLineBatches } from './line-batches.ts';
import { judgeLine, lineJudge, newScanStats, reportDamage, type DamagedLine, type LineJudge, type LogPosition, type QueryHit, type ScanStats } from './scan.ts';

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

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Resolves on a change in `dir`, after `ms`, or on abort — whichever is first. */
class Waker {
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  constructor(dir: string) {
    try {
      this.#watcher = watch(dir, { persistent: false }, () => this.#wake?.());
      this.#watcher.on('error', () => this.close());
    } catch {
      // No file-system events here (or the dir is gone): polling still works.
    }
  }
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.#wake = done;
    });
  }
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}

/**
 * Reads segment `pos` from its offset to the end, yielding hits. `final`:
 * a newer segment exists, so a last line without a newline will never be
 * completed (damage); otherwise it is a write in progress and is re-read
 * later. Returns the new position.
 */
async function* drain(dir: string, j: LineJudge, pos: { current: LogPosition }, final: boolean, signal: AbortSignal): AsyncGenerator<QueryHit> {
  const p = pos.current;
  for await (const b of readLineBatches(path.join(dir, p.segment), p.offset, p.line)) {
    if (b.kind === 'lines') {
      for (let i = 0; i < b.lines.length; i++) {
        const hit = judgeLine(j, b.lines[i] as string, p.segment, b.first + i);
        if (hit) yield hit;
      }
      pos.current = { ...p, offset: b.end, line: b.first + b.lines.length };
    } else if (b.kind === 'overlong') {
      j.stats.scanned++;
      reportDamage(j, { segment: p.segment, line: b.first, reason: 'line longer than 16 MiB' });
    } else if (final) {
      j.stats.scanned++;
      reportDamage(j, { segment: p.segment, line: b.first, reason: 'incomplete line at the end of an older segment' });
    }
    if (signal.aborted) return;
  }
}

/**
 * Follows the log in `dir` from `from` (e.g. `queryAudit(…).stats.end`),
 * yielding records that satisfy `filter` as they are appended, and moving
 * on to segment N+1 when the writer rotates. Runs until `signal` aborts.
 * Damaged lines are reported and counted, and following goes on.
 */
export function followAudit(dir: string, filter: AuditFilter, from: LogPosition, options: FollowOptions): AuditFollow {
  const stats = newScanStats();
  const pos = { current: from };
  const pollMs = options.pollMs ?? 250;
  const { signal } = options;
  async function* iterate(): AsyncGenerator<QueryHit> {
    const j = lineJudge(filter, stats, options.onDamaged);
    const waker = new Waker(dir);
    try {
      while (!signal.aborted) {
        const cur = pos.current;
        const file = path.join(dir, cur.segment);
        // Look for the next segment before reading: once it exists the writer
        // has finished this one, so one more read reaches its true end.
        const nextName = segmentFileName(cur.n + 1);
        const rotated = (await sizeOf(path.join(dir, nextName))) !== undefined;
        const size = await sizeOf(file);
        if (size !== undefined && size < cur.offset) {
          reportDamage(j, { segment: cur.segment, line: cur.line, reason: `segment shrank from ${cur.offset} to ${size} bytes while followed (truncated?)` });
          pos.current = { ...cur, offset: size };
        } else if (size !== undefined && size > cur.offset) {
          yield* drain(dir, j, pos, rotated, signal);
        }
        if (rotated) {
          pos.current = { segment: nextName, n: cur.n + 1, offset: 0, line: 1 };
          continue;
        }
        if (pos.current.offset === cur.offset) await waker.wait(pollMs, signal);
      }
    } finally {
      waker.close();
    }
  }
  return {
    stats,
    get position(): LogPosition { return pos.current; },
    [Symbol.asyncIterator]: iterate,
  };
}
