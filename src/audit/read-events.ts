/**
 * Reading audit records back in order (query, tail, replay, the analyzer).
 * Reading is not verifying: use `verifyAuditDir` to prove the chain.
 */
import path from 'node:path';
import { listSegments, openRecord } from './chain.ts';
import type { AuditRecord } from './event.ts';
import { readFileLines } from './lines.ts';

/** A line in an audit segment that is not a record. */
export class AuditFormatError extends Error {
  readonly segment: string;
  readonly line: number;
  constructor(segment: string, line: number, reason: string) {
    super(`${segment}:${line}: ${reason}`);
    this.name = 'AuditFormatError';
    this.segment = segment;
    this.line = line;
  }
}

/** A record and where it was read from. */
export interface LocatedRecord {
  readonly record: AuditRecord;
  readonly segment: string;
  readonly line: number;
}

async function firstSeq(file: string): Promise<number | undefined> {
  for await (const l of readFileLines(file)) {
    const r = openRecord(l.text);
    return r.ok ? r.seq : undefined;
  }
  return undefined;
}

/**
 * Yields records across all segments in seq order, starting at the first
 * record with `seq >= fromSeq`. A partial last line of the newest segment is
 * a write in progress (or a crash) and is not yielded; any other line that is
 * not a record throws AuditFormatError.
 */
export async function* readAuditRecords(dir: string, options: { fromSeq?: number } = {}): AsyncGenerator<LocatedRecord> {
  const fromSeq = options.fromSeq ?? 1;
  const segs = await listSegments(dir);
  let startIdx = 0;
  if (fromSeq > 1) {
    // Segments hold consecutive seq ranges: skip those that end before fromSeq.
    for (let i = segs.length - 1; i >= 0; i--) {
      const s = await firstSeq(path.join(dir, (segs[i] as { name: string }).name));
      if (s !== undefined && s <= fromSeq) {
        startIdx = i;
        break;
      }
    }
  }
  for (let i = startIdx; i < segs.length; i++) {
    const name = (segs[i] as { name: string }).name;
    const newest = i === segs.length - 1;
    for await (const l of readFileLines(path.join(dir, name))) {
      if (!l.complete) {
        if (newest) return;
        throw new AuditFormatError(name, l.line, 'partial record at the end of an older segment');
      }
      if (l.tooLong) throw new AuditFormatError(name, l.line, 'line too long');
      const r = openRecord(l.text);
      if (!r.ok) throw new AuditFormatError(name, l.line, r.reason);
      if (r.seq < fromSeq) continue;
      yield { record: r.record as unknown as AuditRecord, segment: name, line: l.line };
    }
  }
}

/** Yields the records of the log in `dir` from `fromSeq` (default 1) on, in order. */
export async function* readAuditEvents(dir: string, options: { fromSeq?: number } = {}): AsyncGenerator<AuditRecord> {
  for await (const r of readAuditRecords(dir, options)) yield r.record;
}
