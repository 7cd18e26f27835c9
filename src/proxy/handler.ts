/**
 * The HTTP front end: turns a Node request into a RequestInput, runs the
 * pipeline, forwards, and — whatever happened — records exactly one audit
 * event and one metric after the response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AuditEvent } from '../audit/event.ts';
import { newEventId } from '../audit/event.ts';
import type { Logger } from '../core/log.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import { socketPeer } from '../tls/peer.ts';
import { pathConfusionAuditEvent, requestAuditEvent } from './audit-record.ts';
import type { Upstream } from './forward.ts';
import { sendProblem, toMeshgateError } from './reply.ts';
import { RequestState, type RequestInput } from './state.ts';

export interface AuditSink {
  append(event: AuditEvent): void;
}

export interface RequestObserver {
  request(route: string, decision: string, reason: string, status: number, seconds: number): void;
  shadow(allowed: boolean, mismatch: boolean): void;
  alarm(reason: string): void;
}

export interface HandlerDeps {
  readonly admit: (state: RequestState) => Promise<void>;
  readonly upstream: Upstream;
  readonly audit: AuditSink;
  readonly metrics: RequestObserver;
  readonly log: Logger;
  readonly trustDomains: ReadonlySet<string>;
  /** tls.mode strict: a connection without a verified certificate never gets a request through. */
  readonly strictTls: boolean;
  /** WebSocket tunnels: closed after this much silence (0 or undefined: never). */
  readonly tunnelIdleMs?: number | undefined;
  /** WebSocket tunnels: re-checked every second (e.g. against new quarantines); false closes the tunnel. */
  readonly tunnelAllowed?: ((state: RequestState) => boolean) | undefined;
  readonly inflight: { count: number };
}

export function requestInput(req: IncomingMessage, deps: Pick<HandlerDeps, 'trustDomains' | 'strictTls'>, websocket: boolean): RequestInput {
  const socket = req.socket as TLSSocket;
  return {
    method: req.method ?? 'GET',
    rawTarget: req.url ?? '',
    headers: req.headers,
    headerCount: req.rawHeaders.length >>> 1,
    peer: socketPeer(socket, deps.trustDomains, deps.strictTls),
    source: { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    websocket,
  };
}

/** Records the request's audit event and metrics; never throws. */
export function finishRequest(deps: Pick<HandlerDeps, 'audit' | 'metrics' | 'log'>, state: RequestState): void {
  try {
    const event = requestAuditEvent(state);
    deps.audit.append(event);
    deps.metrics.request(event.route ?? '', event.decision, event.reason, event.status, event.latencyMs / 1000);
    if (event.shadow) deps.metrics.shadow(event.shadow.decision === 'allow', event.shadow.mismatch);
    const alarm = pathConfusionAuditEvent(state, event);
    if (alarm) {
      deps.audit.append(alarm);
      deps.metrics.alarm(alarm.reason);
      deps.log.warn({ requestId: state.id, rawPath: alarm.rawPath, path: alarm.path, decision: alarm.decision, rawDecision: alarm.alarm?.rawDecision }, 'path confusion: raw and canonical paths decided differently');
    }
  } catch (e) {
    deps.log.error({ err: e, requestId: state.id }, 'failed to record audit event');
  }
}

export function createRequestHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { log } = deps;
  return (req, res) => {
    const state = new RequestState(newEventId(), requestInput(req, deps, false), Date.now(), process.hrtime.bigint());
    deps.inflight.count++;
    const fail = (e: unknown): void => {
      const err = toMeshgateError(e);
      state.error = err;
      if (err.status >= 500 && err.cause !== undefined) log.warn({ requestId: state.id, code: err.code, err: err.cause }, 'request failed');
      if (res.headersSent || res.destroyed) {
        if (err.reason === Errors.GW_CLIENT_CLOSED.reason) state.status = 499;
        res.destroy();
        return;
      }
      if (err.reason === Errors.GW_CLIENT_CLOSED.reason) { state.status = 499; return; }
      // A refused request whose body was never read: close rather than drain
      // an arbitrarily large body just to keep the connection alive.
      state.status = err.status === 0 ? 403 : err.status;
      state.bytesOut = sendProblem(res, err, state.id, !req.complete);
    };
    const done = (): void => {
      deps.inflight.count--;
      if (state.error === undefined && res.destroyed && !res.writableFinished) state.error = new MeshgateError(Errors.GW_CLIENT_CLOSED);
      finishRequest(deps, state);
    };
    deps.admit(state)
      .then(() => deps.upstream.forward(state, req, res))
      .then(done, (e: unknown) => {
        try {
          fail(e);
        } finally {
          done();
        }
      });
  };
}
