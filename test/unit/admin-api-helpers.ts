/**
 * Shared fixture of the admin API tests: a real audit log written by the
 * AuditWriter, a real alerts.jsonl written by the analyzer's AlertsLog, a
 * quarantine decision in a real decisions.json, and the admin express app
 * over them on 127.0.0.1, port 0.
 */
import fs from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { AlertsLog } from '../../src/analyzer/sinks/alerts-log.ts';
import type { Alert, Decision } from '../../src/analyzer/types.ts';
import { newEventId, type AuditEvent } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { silentLogger } from '../../src/core/log.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { createAdminApp } from '../../src/admin/ui/create-admin-app.ts';
import type { AdminUiDeps } from '../../src/admin/ui/deps.ts';
import { SessionStore } from '../../src/admin/ui/session-store.ts';
import { SignInLimiter } from '../../src/admin/ui/sign-in-limiter.ts';

export const TOKEN = 'test-admin-token-0123456789';
/** "Now" of every fixture: a minute boundary, so bucket counts are exact. */
export const NOW = Math.floor(Date.now() / 60_000) * 60_000;
export const ADMIN_SPIFFE = 'spiffe://mesh.local/ns/ops/sa/admin';
/** Header the fixture's fake transport reads the "verified" client SPIFFE ID from (unit tests only). */
export const PEER_HEADER = 'x-test-peer-spiffe';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A request event `minutesAgo` before NOW. */
export function event(minutesAgo: number, over: Partial<Mutable<AuditEvent>> = {}): AuditEvent {
  const t = NOW - minutesAgo * 60_000 + 1000;
  return {
    v: 1, type: 'request', id: newEventId(t), time: new Date(t).toISOString(), requestId: `req-${minutesAgo}-${Math.random().toString(36).slice(2, 8)}`,
    source: { ip: '10.0.0.7', port: 40000 }, peer: { spiffeId: 'spiffe://mesh.local/ns/prod/sa/web', fingerprint: 'ab'.repeat(32) },
    principal: { iss: 'https://issuer.mesh.local', sub: 'alice' }, jti: null, tokenHash: 'aGFzaA',
    method: 'GET', path: '/orders/1', rawPath: null, route: 'default', decision: 'allow', reason: 'allowed',
    rule: 'policy.csv:3: p, reader, /orders/:id, GET, allow', policyVersion: 'v1', status: 200, bytesIn: 0, bytesOut: 10, latencyMs: 3, shadow: null,
    ...over,
  };
}

export interface Fixture {
  readonly dir: string;
  readonly auditDir: string;
  readonly analyzerDir: string;
  readonly clock: ManualClock;
  readonly server: Server;
  readonly events: AuditEvent[];
  readonly alerts: Alert[];
  readonly decision: Decision;
  readonly limiter: SignInLimiter;
  readonly sessions: SessionStore;
  close(): Promise<void>;
}

/** The traffic of the fixture, oldest first: 6 allowed, 4 denied for mallory (one route), 1 handshake refusal. */
function traffic(): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let m = 50; m >= 45; m--) out.push(event(m));
  for (let m = 30; m >= 27; m--) {
    out.push(event(m, {
      principal: { iss: 'https://issuer.mesh.local', sub: 'mallory' }, path: `/admin/users/${m}`, decision: 'deny',
      reason: 'authz_no_matching_rule', rule: null, status: 403,
    }));
  }
  out.push(event(10, { type: 'tls_handshake', peer: null, principal: null, method: null, path: null, route: null, decision: 'deny', reason: 'peer_cert_untrusted', rule: null, policyVersion: null, status: 0, tls: { error: 'UNABLE_TO_GET_ISSUER_CERT' } }));
  return out;
}

/** Builds the fixture. `secure` makes the app set Secure cookies (as over TLS). */
export async function startFixture(opts: { secure?: boolean; deps?: Partial<AdminUiDeps>; writeAlerts?: boolean } = {}): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-admin-api-'));
  const auditDir = path.join(dir, 'audit');
  const analyzerDir = path.join(auditDir, 'analyzer');
  const events = traffic();
  const w = new AuditWriter({ dir: auditDir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  for (const e of events) w.append(e);
  await w.close();
  fs.mkdirSync(analyzerDir, { recursive: true });

  const clock = new ManualClock(NOW);
  const denied = events.filter((e) => e.decision === 'deny' && e.type === 'request');
  const store = await DecisionStore.open(analyzerDir, { clock });
  const alertA = 'a'.repeat(32);
  const alertB = 'b'.repeat(32);
  const added = await store.add({ rule: 'privilege-probing', alertId: alertA, scope: 'sub', value: 'mallory', durationMs: 3_600_000, simulated: false }, { at: NOW - 27 * 60_000 });
  if (added.status !== 'created') throw new Error('fixture decision not created');
  const alerts: Alert[] = [
    {
      v: 1, id: alertA, rule: 'privilege-probing', severity: 'high', title: 'Privilege probing', scope: 'sub', value: 'mallory',
      firstSeen: denied[0]!.time, lastSeen: denied.at(-1)!.time, count: denied.length, evidence: denied.map((e) => e.id),
      decisionId: added.decision.id, summary: `${denied.length} denied requests to ${denied.length} routes in 5m`, revision: 1,
    },
    {
      v: 1, id: alertB, rule: 'tls-probe', severity: 'low', title: 'Untrusted client certificates', scope: 'ip', value: '10.0.0.7',
      firstSeen: events.at(-1)!.time, lastSeen: events.at(-1)!.time, count: 1, evidence: [events.at(-1)!.id, newEventId(NOW - 3_600_000 * 48)],
      summary: '1 refused handshake', revision: 1,
    },
  ];
  if (opts.writeAlerts !== false) {
    const log = await AlertsLog.open(analyzerDir);
    for (const a of alerts) log.emit(a);
    await log.close();
  }
  const limiter = new SignInLimiter({ clock });
  const sessions = new SessionStore({ clock });
  const deps: AdminUiDeps = { token: TOKEN, spiffeIds: [ADMIN_SPIFFE], auditDir, analyzerDir, log: silentLogger, clock, ...opts.deps };
  const app = createAdminApp(deps, {
    secure: opts.secure ?? false,
    peerSpiffeId: (req: IncomingMessage) => {
      const v = req.headers[PEER_HEADER];
      return typeof v === 'string' ? v : undefined;
    },
  }, { limiter, sessions });
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    dir, auditDir, analyzerDir, clock, server, events, alerts, decision: added.decision, limiter, sessions,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `Authorization` header value for the admin token. */
export const BEARER = `Bearer ${TOKEN}`;
