/**
 * Event time parsing for the engine's hot path. Audit `time` is always
 * `YYYY-MM-DDTHH:MM:SS.mmmZ` (docs/audit-events.md) and consecutive events
 * share their minute, so the minute is parsed once (Date.parse) and the
 * seconds and milliseconds are read from the digits. Anything else goes
 * through Date.parse: the result is always what Date.parse would say.
 */
export class TimeParser {
  #prefix = '';
  #base = NaN;

  /** Milliseconds since the epoch, or NaN. */
  parse(s: string): number {
    if (s.length === 24 && s.charCodeAt(23) === 90 /* Z */ && s.charCodeAt(19) === 46 /* . */ && s.charCodeAt(16) === 58 /* : */) {
      if (!s.startsWith(this.#prefix) || this.#prefix === '') {
        this.#prefix = s.slice(0, 16);
        this.#base = Date.parse(`${this.#prefix}:00.000Z`);
      }
      const d = (i: number): number => s.charCodeAt(i) - 48;
      const ss = d(17) * 10 + d(18);
      const ms = d(20) * 100 + d(21) * 10 + d(22);
      if (ss >= 0 && ss <= 59 && ms >= 0 && ms <= 999 && Number.isFinite(this.#base) && isDigits(s)) return this.#base + ss * 1000 + ms;
    }
    return Date.parse(s);
  }
}

function isDigits(s: string): boolean {
  for (const i of [17, 18, 20, 21, 22]) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
