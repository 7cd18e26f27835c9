/**
 * The one duration format used everywhere in config and CLI flags:
 * an integer followed by a unit — `ms`, `s`, `m`, `h`, `d` (e.g. `250ms`, `30s`, `5m`).
 * A bare integer is rejected so that nobody guesses the unit.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RE = /^(\d+)(ms|s|m|h|d)$/;

/** Parse a duration into milliseconds; returns undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = RE.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = UNITS[m[2] as string] as number;
  const ms = n * unit;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Like parseDuration but throws TypeError (caller misuse) when malformed. */
export function durationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new TypeError(`invalid duration ${JSON.stringify(text)} (expected e.g. 500ms, 30s, 5m, 1h)`);
  return ms;
}
