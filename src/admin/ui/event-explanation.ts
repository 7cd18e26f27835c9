/**
 * The decision explanation of a recorded audit event: which pipeline stage
 * decided, with what reason, rule, shadow result and quarantine — read from
 * the event alone, exactly as the gateway recorded it. The stage that
 * refused comes from the error catalogue (the reason's `MG_ERR_<AREA>_…`
 * code), the same mapping `docs/lifecycle.md` draws, so it is never guessed
 * from the status.
 */
import type { AuditRecord } from '../../audit/event.ts';
import { Errors, type ErrorSpec } from '../../core/errors.ts';

/** Stages in request order (src/proxy/pipeline.ts). */
export const STAGES = ['tls', 'normalize', 'route', 'authn', 'authz', 'quarantine', 'upstream'] as const;

export type StageName = (typeof STAGES)[number];

/** One stage as recorded. */
export interface StageLine {
  readonly stage: StageName;
  readonly verdict: 'ok' | 'fail' | 'not-reached';
  readonly summary: string;
}

/** What the event says about its decision. */
export interface RecordedExplanation {
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  /** Catalogue code and title of the refusal (undefined when allowed or the reason is not in the catalogue). */
  readonly code: string | undefined;
  readonly title: string | undefined;
  readonly stages: readonly StageLine[];
  readonly rule: string | null;
  readonly policyVersion: string | null;
  readonly shadow: AuditRecord['shadow'];
  readonly quarantine: AuditRecord['quarantine'] | null;
  readonly notes: readonly string[];
}

const BY_REASON: ReadonlyMap<string, ErrorSpec> = new Map(Object.values(Errors).map((s) => [s.reason, s]));

/** The stage that refuses with `reason`, or undefined for reasons outside the catalogue. */
export function stageOfReason(reason: string): StageName | 'gateway' | undefined {
  const spec = BY_REASON.get(reason);
  if (!spec) return undefined;
  if (spec === Errors.TLS_PEER_CERT_REQUIRED) return 'authn'; // the route's requirement, checked after routing
  if (spec === Errors.AUTHZ_QUARANTINED) return 'quarantine';
  const area = spec.code.split('_')[2];
  switch (area) {
    case 'TLS': return 'tls';
    case 'REQ': return 'normalize';
    case 'ROUTE': return 'route';
    case 'JWT': return 'authn';
    case 'AUTHZ': return 'authz';
    case 'UPSTREAM': return 'upstream';
    default: return 'gateway';
  }
}

function okSummary(r: AuditRecord, stage: StageName): string {
  switch (stage) {
    case 'tls': return r.peer && r.peer.spiffeId !== '' ? `peer ${r.peer.spiffeId} (certificate sha256 ${r.peer.fingerprint.slice(0, 16)}…)` : 'no client certificate: no peer identity';
    case 'normalize': return r.path === null ? '-' : r.rawPath !== null ? `canonical path ${r.path} (received ${r.rawPath})` : `canonical path ${r.path}`;
    case 'route': return r.route === null ? '-' : `route ${r.route}`;
    case 'authn': return r.principal ? `token of ${r.principal.sub} (iss ${r.principal.iss}${r.jti ? `, jti ${r.jti}` : ''})` : 'no token (the route does not require one)';
    case 'authz': return `allow: ${r.rule ?? '(no rule recorded)'}${r.policyVersion ? ` — policy ${r.policyVersion}` : ''}`;
    case 'quarantine': return r.quarantine ? `decision ${r.quarantine.decisionId} (${r.quarantine.scope}) is simulated: would have blocked, did not` : 'no quarantine decision covers this request';
    case 'upstream': return r.status > 0 ? `upstream answered ${r.status} (${r.bytesOut} bytes, ${r.latencyMs} ms)` : '-';
  }
}

function failSummary(r: AuditRecord, stage: StageName, spec: ErrorSpec | undefined): string {
  const what = `${r.reason}${spec ? ` — ${spec.title}` : ''}`;
  if (stage === 'authz') return `deny: ${what}; rule ${r.rule ?? '(none: deny by default)'}${r.policyVersion ? ` — policy ${r.policyVersion}` : ''}`;
  if (stage === 'quarantine' && r.quarantine) return `${what}: decision ${r.quarantine.decisionId} (${r.quarantine.scope})`;
  if (stage === 'tls' && r.tls) return `${what} (${r.tls.error})`;
  return what;
}

/** Explains `r` from its own fields. */
export function explainRecorded(r: AuditRecord): RecordedExplanation {
  const spec = r.decision === 'deny' ? BY_REASON.get(r.reason) : undefined;
  const notes: string[] = [];
  let failAt: StageName | 'gateway' | undefined = r.decision === 'deny' ? stageOfReason(r.reason) : undefined;
  if (r.type === 'tls_handshake') failAt = 'tls';
  if (r.type === 'alarm') {
    notes.push(r.alarm
      ? `path confusion alarm: the raw path ${r.rawPath ?? ''} would have been ${r.alarm.rawDecision === 'allow' ? 'allowed' : 'denied'} (rule ${r.alarm.rawRule ?? 'none'}) while the canonical path ${r.path ?? ''} was decided by ${r.rule ?? 'no rule'}`
      : `alarm event (${r.reason})`);
  } else if (r.decision === 'deny' && failAt === undefined) {
    notes.push(`reason ${r.reason} is not in the error catalogue (docs/errors.md): written by another meshgate version?`);
  } else if (failAt === 'gateway') {
    notes.push(`refused by the gateway itself: ${r.reason}${spec ? ` — ${spec.title}` : ''}`);
  }
  if (r.shadow) {
    notes.push(`shadow policy ${r.shadow.policyVersion} (never enforced) would ${r.shadow.decision}: ${r.shadow.reason}; rule ${r.shadow.rule ?? '(none)'}${r.shadow.mismatch ? ' — MISMATCH with the enforced decision' : ''}`);
  }
  const stages: StageLine[] = [];
  if (r.type !== 'alarm') {
    let failed = false;
    for (const stage of STAGES) {
      if (failed) stages.push({ stage, verdict: 'not-reached', summary: 'not reached' });
      else if (stage === failAt) {
        failed = true;
        stages.push({ stage, verdict: 'fail', summary: failSummary(r, stage, spec) });
      } else stages.push({ stage, verdict: 'ok', summary: okSummary(r, stage) });
    }
  }
  return {
    decision: r.decision, reason: r.reason, code: spec?.code, title: spec?.title, stages,
    rule: r.rule, policyVersion: r.policyVersion, shadow: r.shadow ?? null, quarantine: r.quarantine ?? null, notes,
  };
}
