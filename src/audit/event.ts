/**
 * Audit event schema v1 (PRODUCT §1.6). Fields are only ever added, never
 * renamed or re-typed: the analyzer, `policy replay` and external log
 * shippers read old segments with new code. `docs/audit-events.md` documents
 * every field; keep the two in step.
 */
import { randomUUID } from 'node:crypto';

/** Current schema version written into every event. */
export const AUDIT_SCHEMA_VERSION = 1;

/** What the shadow (candidate) policy would have decided (PRODUCT §1.4); never enforced. */
export interface ShadowResult {
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly rule: string | null;
  readonly policyVersion: string;
  /** True when the shadow decision differs from the enforced one. */
  readonly mismatch: boolean;
}

/**
 * One audited request, rejected TLS handshake, or alarm. An `alarm` event
 * (reason `path_confusion`) accompanies the request event with the same
 * `requestId` when the raw and canonical paths would be decided differently.
 */
export interface AuditEvent {
  readonly v: 1;
  readonly type: 'request' | 'tls_handshake' | 'alarm';
  /** Unique, time-ordered event id (UUIDv7, see `newEventId`). */
  readonly id: string;
  /** When the request (or handshake) started: ISO 8601 UTC with milliseconds. */
  readonly time: string;
  readonly requestId: string;
  readonly source: { readonly ip: string; readonly port: number };
  readonly peer: { readonly spiffeId: string; readonly fingerprint: string } | null;
  readonly principal: { readonly iss: string; readonly sub: string } | null;
  readonly jti: string | null;
  /** SHA-256 of the compact token (base64url). Never the token itself. */
  readonly tokenHash: string | null;
  readonly method: string | null;
  /** Canonical path: the one that was authorized and forwarded. */
  readonly path: string | null;
  /** The path as received, only when it differs from `path`; at most 2048 chars. */
  readonly rawPath: string | null;
  readonly route: string | null;
  readonly decision: 'allow' | 'deny';
  /** Stable reason code (`allowed` or an `Errors.X.reason`). */
  readonly reason: string;
  /** The policy line that decided, as written. */
  readonly rule: string | null;
  readonly policyVersion: string | null;
  /** HTTP status sent to the client; 0 for handshake failures. */
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly latencyMs: number;
  /** The shadow policy's would-be decision when `authz.shadow` is configured and the request reached authorization. */
  readonly shadow: ShadowResult | null;
  /** Present on `tls_handshake` events only. */
  readonly tls?: { readonly error: string };
  /** Present on `alarm` events: how severe the finding is. */
  readonly severity?: 'high';
  /** Present on `alarm` events of reason `path_confusion`: the decision the raw path would have got. */
  readonly alarm?: { readonly rawDecision: 'allow' | 'deny'; readonly rawRule: string | null };
  /** Present when a quarantine decision refused (or, simulated, would have refused) the request. */
  readonly quarantine?: { readonly decisionId: string; readonly scope: string; readonly simulated: boolean };
}

/** An event as stored: chain fields added by the writer (see docs/audit-events.md). */
export type AuditRecord = { readonly seq: number; readonly prev: string } & AuditEvent & { readonly hash: string };

/** Longest `rawPath` kept in an event; longer values are cut (attackers choose its length). */
export const RAW_PATH_MAX = 2048;

/** `rawPath` as it belongs in an event: null when equal to the canonical path, else truncated. */
export function auditRawPath(rawPath: string, canonicalPath: string | null): string | null {
  if (rawPath === canonicalPath) return null;
  return rawPath.length > RAW_PATH_MAX ? rawPath.slice(0, RAW_PATH_MAX) : rawPath;
}

let lastMs = -1;
let counter = 0;

/**
 * A new event id: a UUIDv7 (RFC 9562 §5.7) — 48-bit Unix milliseconds, then a
 * 12-bit counter in `rand_a` (RFC 9562 §6.2 method 1) so that ids made in the
 * same millisecond by this process still sort in creation order, then 62
 * random bits. Ids therefore sort by time as strings, which lets shippers and
 * the analyzer de-duplicate and window by id without parsing `time`.
 */
export function newEventId(nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    // Start low in the counter space so many ids fit in one millisecond.
    counter = Math.floor(Math.random() * 1024);
  } else {
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted (or the clock went back): borrow the next
      // millisecond rather than break ordering (RFC 9562 §6.2).
      lastMs++;
      counter = 0;
    }
  }
  const ts = lastMs.toString(16).padStart(12, '0');
  const r = randomUUID(); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx; keep its variant + random tail
  return `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${counter.toString(16).padStart(3, '0')}${r.slice(18)}`;
}
