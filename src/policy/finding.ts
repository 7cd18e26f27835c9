/** One result of `policy check`: what is wrong, how badly, and where. */

/** `error` fails the check (exit 1); `warning` is reported only. */
export type Severity = 'error' | 'warning';

/** Stable finding codes (API for `--json` consumers: add, never rename). */
export type FindingCode =
  | 'syntax' | 'unknown-function' | 'unknown-field'
  | 'never-matches' | 'invalid-pattern' | 'deny-raw-path' | 'raw-path'
  | 'text-after-wildcard' | 'regex-in-pattern' | 'shadowed' | 'subject' | 'effect' | 'unused-rule';

/** A finding with its location. `line` is undefined when it concerns a whole file. */
export interface Finding {
  readonly severity: Severity;
  readonly code: FindingCode;
  readonly file: string;
  readonly line: number | undefined;
  readonly message: string;
  /** The policy line as written, when the finding is about one. */
  readonly rule?: string | undefined;
}

/** Orders findings by file, then line, errors first on the same line. */
export function compareFindings(a: Finding, b: Finding): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  const la = a.line ?? 0;
  const lb = b.line ?? 0;
  if (la !== lb) return la - lb;
  return a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1;
}
