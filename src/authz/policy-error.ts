/**
 * A model or policy that cannot be loaded. Carries the file and (when known)
 * the 1-based line, so a rejected hot reload can say exactly where the edit
 * broke (PRODUCT §1.9). The message is `file:line: reason`, safe to log and
 * show in `/readyz`: policies hold no secrets.
 */
export class PolicyError extends Error {
  /** Path of the offending file, as it was given to the loader. */
  readonly file: string;
  /** 1-based line in `file`, undefined when the problem is not tied to one line. */
  readonly line: number | undefined;
  /** Human-readable reason without the location prefix. */
  readonly reason: string;

  constructor(file: string, line: number | undefined, reason: string, options?: { cause?: unknown }) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`, options);
    this.name = 'PolicyError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** True for a PolicyError. */
export function isPolicyError(e: unknown): e is PolicyError {
  return e instanceof PolicyError;
}
