/**
 * State shared by the admin API routes, and small helpers they all use:
 * audit filters from query strings (the CLI's `parseQuery`, errors turned
 * into 400s naming the parameter), an abort signal tied to the client
 * connection, strict JSON bodies.
 */
import type { Request, Response } from 'express';
import { parseQuery, QueryFlagError, QUERY_FLAGS, type AuditFilter } from '../../audit/query/index.ts';
import type { Clock } from '../../core/clock.ts';
import { DecisionStore } from '../../decisions/decision-store.ts';
import { AckStore } from './ack-store.ts';
import type { AdminAuth } from './admin-auth.ts';
import { AlertIndex } from './alert-index.ts';
import { ChainStatus } from './chain-status.ts';
import type { AdminUiDeps } from './deps.ts';
import { badParam } from './problem.ts';
import { pick } from './query-params.ts';

/** What the routes share. */
export interface ApiContext {
  readonly deps: AdminUiDeps;
  readonly clock: Clock;
  readonly alerts: AlertIndex;
  readonly acks: AckStore;
  readonly chain: ChainStatus;
  /** The decisions store, opened on first use (opening creates the state folder). */
  decisions(): Promise<DecisionStore>;
}

/** Builds the shared state for one app. */
export function apiContext(deps: AdminUiDeps, clock: Clock): ApiContext {
  let store: Promise<DecisionStore> | undefined;
  return {
    deps, clock,
    alerts: new AlertIndex(deps.analyzerDir),
    acks: new AckStore(deps.analyzerDir, { clock }),
    chain: new ChainStatus(deps.auditDir, { clock }),
    decisions() {
      store ??= DecisionStore.open(deps.analyzerDir, { clock }).catch((err: unknown) => {
        store = undefined; // a broken file may be fixed: try again next time
        throw err;
      });
      return store;
    },
  };
}

/** The audit filter of the query-string members that are filter flags; 400 naming the flag on a bad value. */
export function auditFilter(q: Readonly<Record<string, string>>, now: number): AuditFilter {
  try {
    return parseQuery(pick(q, QUERY_FLAGS), { now });
  } catch (err) {
    if (err instanceof QueryFlagError) throw badParam(err.flag, err.message.replace(/^--[^:]*: /, ''));
    throw err;
  }
}

/** Aborts when the client goes away before the response is sent (stops a long scan). */
export function clientSignal(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => { if (!res.writableFinished) ac.abort(); });
  return ac.signal;
}

/**
 * The JSON body as an object with only `allowed` keys. An empty body is `{}`;
 * any other content type, or an unknown key, is a 400 naming it.
 */
export function jsonBody(req: Request, allowed: readonly string[]): Record<string, unknown> {
  const length = Number(req.headers['content-length'] ?? 0);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (length === 0 && !chunked) return {};
  if (!req.is('application/json')) throw badParam('content-type', 'expected application/json');
  const body = req.body as unknown;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badParam('body', 'expected a JSON object');
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw badParam(k, `unknown field (known: ${allowed.join(', ') || 'none'})`);
  return body as Record<string, unknown>;
}

/** An optional string field of at most `max` characters, without control characters. */
export function textField(body: Readonly<Record<string, unknown>>, name: string, max: number): string | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badParam(name, 'expected a string');
  if (v.length > max) throw badParam(name, `longer than ${max} characters`);
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(v)) throw badParam(name, 'contains control characters');
  return v;
}

/** Who did it, for acknowledgements: the admin's SPIFFE ID, or `token`. */
export function actorOf(auth: AdminAuth): string {
  return auth.session?.spiffeId ?? 'token';
}

/** True for a missing audit dir or state file (an idle or new deployment), which reads as empty. */
export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
