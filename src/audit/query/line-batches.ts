/**
 * Reads a segment as batches of lines: one UTF-8 decode and one split per
 * read of a few MiB instead of an async step and a decode per line, which
 * makes a scan of 1,000,000 records ~2.5x faster than `readFileLines`.
 * Reports what a query must not skip silently: an over-long line and a
 * last line without a newline (torn, or still being written).
 */
import { open } from 'node:fs/promises';
import { MAX_LINE_BYTES } from '../lines.ts';

/**
 * What a read found: complete lines; one line longer than the limit (its
 * text is not kept); or, last, a final line without a newline.
 */
export type LineBatch =
  | { readonly kind: 'lines'; readonly first: number; readonly lines: readonly string[]; readonly end: number; readonly bytesRead: number }
  | { readonly kind: 'overlong'; readonly first: number; readonly end: number; readonly bytesRead: number }
  | { readonly kind: 'partial'; readonly first: number; readonly end: number; readonly bytesRead: number };
// `first`: line number (1-based) of the first line; `end`: byte offset just
// after the batch's last newline, where reading may resume (for `partial`:
// where the partial line starts); `bytesRead`: bytes read so far, for progress.

const READ_BYTES = 4 * 1024 * 1024;

/**
 * Yields the complete lines of `file` from byte `start` (line number
 * `firstLine` there) in batches, then a `partial` batch when the file does
 * not end with a newline. Memory: one read buffer, grown up to one line of
 * MAX_LINE_BYTES; longer lines are reported as `overlong` and skipped.
 */
export async function* readLineBatches(file: string, start = 0, firstLine = 1): AsyncGenerator<LineBatch> {
  const fh = await open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_BYTES);
    let have = 0; // bytes of buf in use, starting at file offset `base`
    let base = start;
    let line = firstLine;
    let skipping = false; // inside an over-long line: discard up to its newline
    for (;;) {
      if (have === buf.length) {
        if (buf.length < MAX_LINE_BYTES) {
          const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, MAX_LINE_BYTES));
          buf.copy(bigger, 0, 0, have);
          buf = bigger;
        } else {
          // One line fills the largest buffer: report it, drop it, find its end.
          if (!skipping) yield { kind: 'overlong', first: line, end: base, bytesRead: base - start + have };
          skipping = true;
          base += have;
          have = 0;
        }
      }
      const { bytesRead } = await fh.read(buf, have, buf.length - have, base + have);
      if (bytesRead === 0) break;
      const from = have;
      have += bytesRead;
      if (skipping) {
        const nl = buf.indexOf(10, from);
        if (nl === -1 || nl >= have) continue;
        skipping = false;
        line++;
        buf.copy(buf, 0, nl + 1, have);
        base += nl + 1;
        have -= nl + 1;
        // The rest of this read holds the lines after it: fall through.
      }
      // (A negative offset would make lastIndexOf search stale bytes from the end.)
      const lastNl = have === 0 ? -1 : buf.lastIndexOf(10, have - 1);
      if (lastNl === -1) continue;
      // Cutting at a newline byte never splits a UTF-8 sequence.
      const lines = buf.toString('utf8', 0, lastNl).split('\n');
      const end = base + lastNl + 1;
      yield { kind: 'lines', first: line, lines, end, bytesRead: end - start };
      line += lines.length;
      buf.copy(buf, 0, lastNl + 1, have);
      have -= lastNl + 1;
      base = end;
    }
    // An over-long last line was reported already.
    if (have > 0 && !skipping) yield { kind: 'partial', first: line, end: base, bytesRead: base - start + have };
  } finally {
    await fh.close();
  }
}
