/**
 * The event fields a detection rule may test, group on or count. Each name
 * maps to one value of an audit record (docs/audit-events.md), or to a value
 * derived from it; docs/detections.md lists them with their meaning. The
 * engine's accessors (src/analyzer/engine/fields.ts) are typed against this
 * list, so a field cannot be documented here and missing there.
 */

/** Value kind of a field: decides which operators a filter may use on it. */
export type FieldKind = 'string' | 'number' | 'boolean';

export const FIELD_KINDS = Object.freeze({
  type: 'string',
  decision: 'string',
  reason: 'string',
  status: 'number',
  method: 'string',
  route: 'string',
  path: 'string',
  rawPath: 'string',
  /** rawPath (else path), percent-decoded once and lower-cased: what injection markers are matched against. */
  target: 'string',
  /** path with id-like segments replaced by `*` (at most 4 segments): "which endpoint", not "which object". */
  pathShape: 'string',
  spiffe: 'string',
  cert: 'string',
  sub: 'string',
  iss: 'string',
  jti: 'string',
  tokenHash: 'string',
  ip: 'string',
  /** Who sent it: the peer's SPIFFE ID, else `ip:<source ip>`. */
  origin: 'string',
  /** Which credential: the verified subject, else the token hash. */
  credential: 'string',
  tlsError: 'string',
  policyVersion: 'string',
  latencyMs: 'number',
  bytesIn: 'number',
  bytesOut: 'number',
  /** The request was refused (or, simulated, would have been) by a quarantine decision. */
  quarantined: 'boolean',
} as const satisfies Record<string, FieldKind>);

export type FieldName = keyof typeof FIELD_KINDS;

export const FIELD_NAMES = Object.freeze(Object.keys(FIELD_KINDS) as FieldName[]);

export function isFieldName(s: string): s is FieldName {
  return Object.hasOwn(FIELD_KINDS, s);
}
