/**
 * Following a live audit log (PRODUCT §1.7): yields records across segments
 * in seq order and keeps waiting for more, like `tail -F` over the rotated
 * segment files. The following itself — complete lines only, rotation, a
 * folder watch with polling as the backstop — is `LineFollower`'s
 * (src/audit/line-follower.ts); this module parses lines into records.
 */
import { openRecord, segmentFileName } from '../audit/chain.ts';
import type { AuditRecord } from '../audit/event.ts';
import { DirWaker, LineFollower, segmentFor } from '../audit/line-follower.ts';

export interface FollowOptions {
  /** First seq wanted (default 1). */
  readonly fromSeq?: number;
  /** Polling backstop interval (default 250 ms). */
  readonly pollMs?: number;
  /** Ends the iteration (it returns normally). */
  readonly signal?: AbortSignal;
  /** Called for a line that is not a record; it is skipped (the chain is `audit verify`'s business). */
  readonly onSkip?: (info: { segment: string; offset: number; reason: string }) => void;
  /** Most records per batch (default 1024). */
  readonly batchSize?: number;
}

const SKIPPED = {
  overlong: 'line too long',
  torn: 'partial record at the end of an older segment',
  shrank: 'segment shrank while followed (truncated?)',
} as const;

function seqOf(line: Buffer): number | undefined {
  const r = openRecord(line.toString('utf8'));
  return r.ok ? r.seq : undefined;
}

/**
 * Yields batches of records with seq ≥ `fromSeq`, in order, from the audit
 * log in `dir`, and keeps following it until `signal` aborts (or the consumer
 * stops iterating). The folder may not exist yet.
 */
export async function* followAuditBatches(dir: string, opts: FollowOptions = {}): AsyncGenerator<AuditRecord[]> {
  const fromSeq = opts.fromSeq ?? 1;
  const batchSize = opts.batchSize ?? 1024;
  const pollMs = opts.pollMs ?? 250;
  const { signal } = opts;
  const waker = new DirWaker(dir);
  const lines = new LineFollower(dir);
  try {
    for (;;) {
      if (signal?.aborted) return;
      const start = await segmentFor(dir, fromSeq, seqOf);
      if (start) {
        lines.moveTo({ segment: start.segment, offset: 0 });
        break;
      }
      await waker.wait(pollMs, signal);
    }
    while (!signal?.aborted) {
      const r = await lines.read();
      if (r === undefined) {
        await waker.wait(pollMs, signal);
        continue;
      }
      if (r.kind !== 'lines') {
        opts.onSkip?.({ segment: segmentFileName(r.segment), offset: r.offset, reason: SKIPPED[r.kind] });
        continue;
      }
      const b = r.bytes;
      let batch: AuditRecord[] = [];
      for (let start = 0, nl = b.indexOf(10); nl !== -1; start = nl + 1, nl = b.indexOf(10, start)) {
        const rec = openRecord(b.toString('utf8', start, nl));
        if (!rec.ok) opts.onSkip?.({ segment: segmentFileName(r.segment), offset: r.offset + start, reason: rec.reason });
        else if (rec.seq >= fromSeq) batch.push(rec.record as unknown as AuditRecord);
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    }
  } finally {
    waker.close();
    await lines.close();
  }
}

/** Yields the records of `followAuditBatches` one at a time. */
export async function* followAudit(dir: string, opts: FollowOptions = {}): AsyncGenerator<AuditRecord> {
  for await (const batch of followAuditBatches(dir, opts)) yield* batch;
}
