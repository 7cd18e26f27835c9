/**
 * Recorded events for `policy replay`, from audit folders or single segment
 * files, in order. Reading is not verifying (`meshgate audit verify` proves
 * the chain); a line that is not a record stops the replay with its location.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { openRecord } from '../audit/chain.ts';
import type { AuditRecord } from '../audit/event.ts';
import { readFileLines } from '../audit/lines.ts';
import { AuditFormatError, readAuditRecords } from '../audit/read-events.ts';

/** Yields every record of the given audit folders and segment files, one source after another. */
export async function* recordedEvents(sources: readonly string[]): AsyncGenerator<AuditRecord> {
  for (const src of sources) {
    let isDir: boolean;
    try {
      isDir = (await stat(src)).isDirectory();
    } catch (e) {
      throw new Error(`cannot read ${src} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e });
    }
    if (isDir) {
      for await (const r of readAuditRecords(src)) yield r.record;
      continue;
    }
    const name = path.basename(src);
    for await (const l of readFileLines(src)) {
      // A segment being written ends in a partial line: it is not a record yet.
      if (!l.complete) return;
      if (l.tooLong) throw new AuditFormatError(name, l.line, 'line too long');
      const r = openRecord(l.text);
      if (!r.ok) throw new AuditFormatError(name, l.line, r.reason);
      yield r.record as unknown as AuditRecord;
    }
  }
}
