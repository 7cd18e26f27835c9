/**
 * A small deterministic DetectionEngine for the analyzer-run, decisions and
 * alerts tests (the real engine lives in src/analyzer/engine/): every 3rd
 * denied request of a token subject raises an alert, every 6th also orders a
 * quarantine of that subject. Its state is plain JSON, like the real one's.
 */
import { newEventId, type AuditEvent, type AuditRecord } from '../../src/audit/event.ts';
import type { Alert, DetectionEngine, EngineOutput, RemediationOrder } from '../../src/analyzer/types.ts';

interface State {
  counts: Record<string, number>;
  recent: Record<string, string[]>;
  first: Record<string, string>;
}

export const FAKE_RULE = 'fake-brute';

export function createFakeEngine(opts: { simulated?: boolean; durationMs?: number } = {}): DetectionEngine & { processed: number } {
  let s: State = { counts: {}, recent: {}, first: {} };
  const engine = {
    processed: 0,
    process(r: AuditRecord): EngineOutput {
      engine.processed++;
      const sub = r.principal?.sub;
      if (r.decision !== 'deny' || !sub) return { alerts: [], remediations: [] };
      const n = (s.counts[sub] ?? 0) + 1;
      s.counts[sub] = n;
      const recent = [...(s.recent[sub] ?? []), r.id].slice(-3);
      s.recent[sub] = recent;
      if (n % 3 === 1) s.first[sub] = r.time;
      if (n % 3 !== 0) return { alerts: [], remediations: [] };
      const alert: Alert = {
        v: 1, id: `al-${sub}-${n / 3}`, rule: FAKE_RULE, severity: 'high', title: 'Fake brute force', scope: 'sub', value: sub,
        firstSeen: s.first[sub] ?? r.time, lastSeen: r.time, count: 3, evidence: recent, summary: `3 denied requests by ${sub}`,
      };
      const remediations: RemediationOrder[] = n % 6 === 0
        ? [{ rule: FAKE_RULE, alertId: alert.id, scope: 'sub', value: sub, durationMs: opts.durationMs ?? 60_000, simulated: opts.simulated ?? false }]
        : [];
      return { alerts: [alert], remediations };
    },
    snapshot(): unknown {
      return structuredClone(s);
    },
    restore(state: unknown): void {
      s = structuredClone(state) as State;
    },
  };
  return engine;
}

/** The engine-module shape the embedded analyzer and `analyzer run` load (see src/analyzer/engine-factory.ts). */
export async function createEngineFromRules(_rulesFile: string): Promise<DetectionEngine> {
  return createFakeEngine();
}

export const T0 = Date.UTC(2026, 0, 1);

/** Audit event i: subject user-(i mod 4), one second apart; every 5th allowed, the rest denied. */
export function auditEvent(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(T0 + i), time: new Date(T0 + i * 1000).toISOString(), requestId: `req-${i}`,
    source: { ip: '10.0.0.1', port: 40000 }, peer: null, principal: { iss: 'https://issuer', sub: `user-${i % 4}` }, jti: `j-${i}`,
    tokenHash: 'aGFzaA', method: 'POST', path: `/pay/${i}`, rawPath: null, route: 'pay', decision: i % 5 === 0 ? 'allow' : 'deny',
    reason: i % 5 === 0 ? 'allowed' : 'authz_no_matching_rule', rule: null, policyVersion: 'v1', status: i % 5 === 0 ? 200 : 403,
    bytesIn: 10, bytesOut: 10, latencyMs: 1, shadow: null, ...over,
  };
}
