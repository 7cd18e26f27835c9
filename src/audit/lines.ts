/**
 * Streaming line reader for audit segments. Unlike `readline` it reports
 * whether the last line was newline-terminated, which is how a torn write
 * (crash mid-record) is told apart from a complete record, and it bounds the
 * memory one line may take.
 */
import { open } from 'node:fs/promises';

/** One line of a file, without its newline. */
export interface FileLine {
  readonly text: string;
  /** 1-based line number. */
  readonly line: number;
  /** Byte offset of the line's first byte. */
  readonly offset: number;
  /** False for a last line with no trailing newline (torn or still being written). */
  readonly complete: boolean;
  /** True when the line exceeded `maxLineBytes`; `text` is then empty. */
  readonly tooLong: boolean;
}

/** Longest line kept; longer lines are reported as `tooLong` and skipped. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const CHUNK = 1024 * 1024;

/** Yields the lines of `file` from byte `start` in constant memory (plus one line). */
export async function* readFileLines(file: string, start = 0, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<FileLine> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = start;
    let lineNo = 0;
    let lineStart = start;
    let carry: Buffer[] = [];
    let carryLen = 0;
    let overflow = false;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let s = 0;
      for (;;) {
        const nl = chunk.indexOf(10, s);
        if (nl === -1) break;
        lineNo++;
        let text = '';
        if (!overflow) {
          if (carryLen === 0) text = chunk.toString('utf8', s, nl);
          else {
            carry.push(chunk.subarray(s, nl));
            text = Buffer.concat(carry).toString('utf8');
          }
        }
        const tooLong = overflow || nl - s + carryLen > maxLineBytes;
        yield { text: tooLong ? '' : text, line: lineNo, offset: lineStart, complete: true, tooLong };
        carry = [];
        carryLen = 0;
        overflow = false;
        s = nl + 1;
        lineStart = pos + s;
      }
      if (s < bytesRead && !overflow) {
        // The buffer is reused by the next read: copy the partial line out.
        carry.push(Buffer.from(chunk.subarray(s)));
        carryLen += bytesRead - s;
        if (carryLen > maxLineBytes) {
          overflow = true;
          carry = [];
        }
      } else if (s < bytesRead) {
        carryLen += bytesRead - s;
      }
      pos += bytesRead;
    }
    if (carryLen > 0 || overflow) {
      lineNo++;
      yield { text: overflow ? '' : Buffer.concat(carry).toString('utf8'), line: lineNo, offset: lineStart, complete: false, tooLong: overflow };
    }
  } finally {
    await fh.close();
  }
}
