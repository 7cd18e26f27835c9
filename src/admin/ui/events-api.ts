/**
 * `GET /api/events` — the audit log through the same filters as
 * `meshgate audit query` (same parameter names), newest first, paginated —
 * and `GET /api/events/:id` — one event with its decision explanation.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { AuditRecord } from '../../audit/event.ts';
import { parseQuery, queryAudit, QUERY_FLAGS } from '../../audit/query/index.ts';
import { Errors } from '../../core/errors.ts';
import type { ExplainReport } from '../../policy/explain.ts';
import { auditFilter, clientSignal, isMissing, type ApiContext } from './api-context.ts';
import { explainRecorded } from './event-explanation.ts';
import { findEvents } from './find-events.ts';
import { ApiError } from './problem.ts';
import { boolParam, enumParam, eventIdParam, pageParams, readQuery } from './query-params.ts';
import { methodNotAllowed } from './method-not-allowed.ts';

/** The current policy's verdict on a recorded request, or why there is none. */
export type CurrentVerdict =
  | { readonly report: ExplainReport; readonly flipped: boolean }
  | { readonly error: string }
  | null;

async function currentVerdict(ctx: ApiContext, e: AuditRecord): Promise<CurrentVerdict> {
  const explain = ctx.deps.explain;
  if (!explain || e.type !== 'request' || e.method === null || (e.path === null && e.rawPath === null)) return null;
  const spiffe = e.peer && e.peer.spiffeId !== '' ? e.peer.spiffeId : undefined;
  try {
    const report = await explain({ method: e.method, path: e.rawPath ?? (e.path as string), spiffe, sub: e.principal?.sub });
    return { report, flipped: report.allowed !== (e.decision === 'allow') };
  } catch (err) {
    ctx.deps.log.warn({ err, event: e.id }, 'admin: explain of a recorded request failed');
    return { error: (err as Error).message };
  }
}

async function related(ctx: ApiContext, e: AuditRecord): Promise<AuditRecord[]> {
  let filter;
  try {
    filter = parseQuery({ 'request-id': e.requestId });
  } catch {
    return []; // a request id the filter refuses (control characters) cannot have siblings we could find
  }
  const out: AuditRecord[] = [];
  try {
    for await (const h of queryAudit(ctx.deps.auditDir, filter, { limit: 20 })) if (h.record.id !== e.id) out.push(h.record);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  return out;
}

/** The events routes (mounted under /api, behind requireAdmin). */
export function eventsApi(ctx: ApiContext): Router {
  const r = express.Router();
  r.route('/events').get(async (req: Request, res: Response) => {
    const q = readQuery(req, [...QUERY_FLAGS, 'limit', 'offset', 'order']);
    const filter = auditFilter(q, ctx.clock.now());
    const { limit, offset } = pageParams(q);
    const order = enumParam(q, 'order', ['desc', 'asc'] as const, 'desc') ?? 'desc';
    // One more than asked: whether a next page exists, without counting every match.
    const query = queryAudit(ctx.deps.auditDir, filter, { order, offset, limit: limit + 1, signal: clientSignal(res) });
    const items: AuditRecord[] = [];
    try {
      for await (const h of query) items.push(h.record);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    const more = items.length > limit;
    res.setHeader('cache-control', 'no-store');
    res.json({
      items: items.slice(0, limit),
      page: { limit, offset, order, nextOffset: more ? offset + limit : null, prevOffset: offset > 0 ? Math.max(0, offset - limit) : null },
      filter,
      scanned: query.stats.scanned,
      damaged: query.stats.damaged,
      damagedLines: query.stats.damagedLines.slice(0, 10),
    });
  }).all(methodNotAllowed);

  r.route('/events/:id').get(async (req: Request, res: Response) => {
    const q = readQuery(req, ['explain']);
    const id = eventIdParam(req.params['id'] as string | undefined);
    const found = await findEvents(ctx.deps.auditDir, [id], { signal: clientSignal(res) });
    const event = found.events[0];
    if (!event) throw new ApiError(Errors.ADMIN_NOT_FOUND, `no audit event ${id}`);
    const [current, siblings, alerts] = await Promise.all([
      boolParam(q, 'explain', true) ? currentVerdict(ctx, event) : Promise.resolve(null),
      related(ctx, event),
      ctx.alerts.list(),
    ]);
    res.setHeader('cache-control', 'no-store');
    res.json({
      event,
      explanation: explainRecorded(event),
      current,
      related: siblings,
      alerts: alerts.alerts.filter((a) => a.evidence.includes(id)).map((a) => ({ id: a.id, rule: a.rule, severity: a.severity, title: a.title })),
      damagedLines: found.damaged,
    });
  }).all(methodNotAllowed);
  return r;
}
