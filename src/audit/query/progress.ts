/**
 * A one-line progress display for long scans, redrawn in place on a
 * terminal's stderr at most every `intervalMs`. Only for terminals: in a
 * pipe or a log file the redraws would be noise.
 */
import type { Writable } from 'node:stream';
import type { QueryProgress } from './query-audit.ts';

const CLEAR = '\r\u001b[2K';

/** `1234567` → `1,234,567`. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Throttled, erasable status line. */
export class ProgressLine {
  readonly #out: Writable;
  readonly #intervalMs: number;
  #last = 0;
  #shown = false;

  constructor(out: Writable, options: { intervalMs?: number } = {}) {
    this.#out = out;
    this.#intervalMs = options.intervalMs ?? 100;
  }

  /** Draws `p` unless one was drawn less than `intervalMs` ago. */
  update(p: QueryProgress): void {
    const now = Date.now();
    if (now - this.#last < this.#intervalMs) return;
    this.#last = now;
    const pct = p.bytesTotal > 0 ? Math.min(100, Math.floor((100 * p.bytesDone) / p.bytesTotal)) : 100;
    this.#out.write(`${CLEAR}scanning ${p.segment} ${String(pct).padStart(3)}%  ${formatCount(p.scanned)} records, ${formatCount(p.matched)} matching`);
    this.#shown = true;
  }

  /** Erases the line (before other output goes to the same terminal). */
  clear(): void {
    if (!this.#shown) return;
    this.#out.write(CLEAR);
    this.#shown = false;
  }
}
