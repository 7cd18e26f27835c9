/**
 * Builds the audit event for a finished request or refused handshake from
 * the typed request state. The only place that decides what is recorded: a
 * token's hash and `jti`, never the token; the canonical path, and the raw
 * one only when it differs.
 */
import { newEventId, type AuditEvent, type ShadowResult } from '../audit/event.ts';
import { REASON_ALLOWED, type MeshgateError } from '../core/errors.ts';
import type { RequestState } from './state.ts';

const MAX_RAW_PATH = 2048;

function rawPathOf(state: RequestState): string | null {
  const raw = state.input.rawTarget;
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  return rawPath === state.path ? null : rawPath.slice(0, MAX_RAW_PATH);
}

export function requestAuditEvent(state: RequestState): AuditEvent {
  const err = state.error;
  const p = state.principal;
  const allowed = err === undefined && state.decision?.allowed === true;
  return {
    v: 1,
    type: 'request',
    id: state.id,
    time: new Date(state.startedAt).toISOString(),
    requestId: state.id,
    source: state.input.source,
    peer: state.peer ? { spiffeId: state.peer.spiffeId, fingerprint: state.peer.fingerprint256 }
      : state.peerFingerprint ? { spiffeId: '', fingerprint: state.peerFingerprint } : null,
    principal: p ? { iss: p.iss, sub: p.sub } : null,
    jti: p?.jti ?? null,
    tokenHash: p?.tokenHash ?? state.refusedTokenHash ?? null,
    method: state.input.method,
    path: state.path ?? null,
    rawPath: rawPathOf(state),
    route: state.route?.name ?? null,
    decision: allowed ? 'allow' : 'deny',
    reason: err ? err.reason : allowed ? REASON_ALLOWED : (state.decision?.reason ?? 'internal_error'),
    rule: state.decision?.matchedRule ?? null,
    policyVersion: state.decision?.policyVersion ?? state.policyVersion ?? null,
    status: state.status,
    bytesIn: state.bytesIn,
    bytesOut: state.bytesOut,
    latencyMs: Math.round(state.elapsedMs() * 1000) / 1000,
    shadow: shadowResult(state, allowed),
    ...(state.quarantine ? { quarantine: state.quarantine } : {}),
  };
}

function shadowResult(state: RequestState, allowed: boolean): ShadowResult | null {
  const s = state.shadow;
  if (!s) return null;
  return { decision: s.allowed ? 'allow' : 'deny', reason: s.reason, rule: s.matchedRule ?? null, policyVersion: s.policyVersion, mismatch: s.allowed !== allowed };
}

/**
 * The high-severity companion event of a request whose raw path would have
 * been decided differently from its canonical path (PRODUCT §1.4 ★).
 */
export function pathConfusionAuditEvent(state: RequestState, request: AuditEvent): AuditEvent | undefined {
  const raw = state.pathConfusion;
  if (!raw) return undefined;
  return {
    ...request,
    type: 'alarm',
    id: newEventId(),
    reason: 'path_confusion',
    severity: 'high',
    alarm: { rawDecision: raw.allowed ? 'allow' : 'deny', rawRule: raw.matchedRule ?? null },
    shadow: null,
  };
}

export function handshakeAuditEvent(id: string, source: { ip: string; port: number }, err: MeshgateError, fingerprint: string | undefined, tlsCode: string): AuditEvent {
  return {
    v: 1,
    type: 'tls_handshake',
    id,
    time: new Date().toISOString(),
    requestId: id,
    source,
    peer: fingerprint ? { spiffeId: '', fingerprint } : null,
    principal: null,
    jti: null,
    tokenHash: null,
    method: null,
    path: null,
    rawPath: null,
    route: null,
    decision: 'deny',
    reason: err.reason,
    rule: null,
    policyVersion: null,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    latencyMs: 0,
    shadow: null,
    tls: { error: tlsCode },
  };
}
