/**
 * Field accessors over one audit record (the names of
 * src/analyzer/rules/fields.ts). Derived values — the decoded target, the
 * path shape — are computed at most once per event and only when a rule
 * asks for them: most events never need them.
 */
import type { AuditRecord } from '../../audit/event.ts';
import type { FieldName } from '../rules/fields.ts';
import type { Scope } from '../types.ts';

export type FieldValue = string | number | boolean | null;

/** One event as the rules see it. */
export class EventView {
  r: AuditRecord = undefined as unknown as AuditRecord;
  /** Event time, ms since the epoch (the record's `time`). */
  t = 0;
  #target: string | null | undefined;
  #shape: string | null | undefined;

  /** Points the view at another event (the engine reuses one view: no allocation per event). */
  reset(r: AuditRecord, t: number): this {
    this.r = r;
    this.t = t;
    this.#target = undefined;
    this.#shape = undefined;
    return this;
  }

  get target(): string | null {
    if (this.#target === undefined) {
      const p = this.r.rawPath ?? this.r.path;
      this.#target = p === null ? null : decodeOnce(p).toLowerCase();
    }
    return this.#target;
  }

  get pathShape(): string | null {
    if (this.#shape === undefined) this.#shape = this.r.path === null ? null : pathShape(this.r.path);
    return this.#shape;
  }
}

/** A view of one record (tests and tools; the engine reuses its own). */
export function viewOf(r: AuditRecord, t = Date.parse(r.time)): EventView {
  return new EventView().reset(r, t);
}

const nonEmpty = (s: string | null | undefined): string | null => (s ? s : null);

export const ACCESSORS: Readonly<Record<FieldName, (e: EventView) => FieldValue>> = Object.freeze({
  type: (e) => e.r.type,
  decision: (e) => e.r.decision,
  reason: (e) => e.r.reason,
  status: (e) => e.r.status,
  method: (e) => e.r.method,
  route: (e) => e.r.route,
  path: (e) => e.r.path,
  rawPath: (e) => e.r.rawPath,
  target: (e) => e.target,
  pathShape: (e) => e.pathShape,
  // A refused certificate is recorded with an empty SPIFFE ID: that is "no identity", not an identity.
  spiffe: (e) => nonEmpty(e.r.peer?.spiffeId),
  cert: (e) => nonEmpty(e.r.peer?.fingerprint),
  sub: (e) => nonEmpty(e.r.principal?.sub),
  iss: (e) => nonEmpty(e.r.principal?.iss),
  jti: (e) => nonEmpty(e.r.jti),
  tokenHash: (e) => nonEmpty(e.r.tokenHash),
  ip: (e) => nonEmpty(e.r.source?.ip),
  origin: (e) => {
    const s = e.r.peer?.spiffeId;
    if (s) return s;
    const ip = e.r.source?.ip;
    return ip ? `ip:${ip}` : null;
  },
  credential: (e) => nonEmpty(e.r.principal?.sub) ?? nonEmpty(e.r.tokenHash),
  tlsError: (e) => e.r.tls?.error ?? null,
  policyVersion: (e) => e.r.policyVersion,
  latencyMs: (e) => e.r.latencyMs,
  bytesIn: (e) => e.r.bytesIn,
  bytesOut: (e) => e.r.bytesOut,
  quarantined: (e) => (e.r.quarantine ? !e.r.quarantine.simulated : false),
});

/** The field an alert/decision scope reads. */
export const SCOPE_FIELD: Readonly<Record<Scope, FieldName>> = Object.freeze({ spiffe: 'spiffe', sub: 'sub', jti: 'jti', cert: 'cert', ip: 'ip' });

/** Value of `scope` in an event, or null when the event lacks it. */
export function scopeValue(e: EventView, scope: Scope): string | null {
  return ACCESSORS[SCOPE_FIELD[scope]](e) as string | null;
}

/**
 * Decodes valid %XX escapes once, byte by byte as Latin-1, leaving malformed
 * ones as they are: enough to expose ASCII attack markers (`%2e%2e`,
 * `%27`, `%3cscript`) without failing on the malformed input attackers send.
 */
export function decodeOnce(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * The endpoint a path addresses: segments that are not words — numbers,
 * UUIDs, hex digests, opaque tokens, names with punctuation — become `*`,
 * and at most 4 segments are kept. New-terms and distinct-count rules compare
 * endpoints, not objects: `/orders/17` and `/orders/18` are the same thing
 * to call. A word is a letter then up to 39 letters, `_`, `-` or `.` (but not
 * 12+ hex letters: a digest), or a version (`v2`).
 */
export function pathShape(path: string): string {
  let out = '';
  let i = 1;
  for (let n = 0; n < 4 && i <= path.length; n++) {
    let j = path.indexOf('/', i);
    if (j < 0) j = path.length;
    out += j === i ? '/' : isWord(path, i, j) ? `/${path.slice(i, j)}` : '/*';
    i = j + 1;
  }
  return out === '' ? '/' : out;
}

function isLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

function isWord(s: string, from: number, to: number): boolean {
  const len = to - from;
  const c0 = s.charCodeAt(from);
  if (!isLetter(c0)) return false;
  if ((c0 === 118 || c0 === 86) && len >= 2 && len <= 4) {
    // v1, v2, v10: a version is a word
    let digits = true;
    for (let k = from + 1; k < to; k++) {
      const c = s.charCodeAt(k);
      if (c < 48 || c > 57) digits = false;
    }
    if (digits) return true;
  }
  if (len > 40) return false;
  let hex = true;
  for (let k = from; k < to; k++) {
    const c = s.charCodeAt(k);
    if (!isLetter(c) && c !== 95 && c !== 45 && c !== 46) return false;
    if (hex && !((c >= 97 && c <= 102) || (c >= 65 && c <= 70))) hex = false;
  }
  return !(hex && len >= 12);
}
