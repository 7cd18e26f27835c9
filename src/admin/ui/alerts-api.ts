/**
 * Alerts: `GET /api/alerts` (list with acknowledgement state),
 * `GET /api/alerts/:id` (the alert, its evidence events from the audit log,
 * its quarantine decision and matching exceptions), `POST …/ack`, and
 * `POST …/false-positive`, which creates an exception for the alert's rule
 * and scope/value through DecisionStore.addException, deletes the decision
 * the alert ordered (if any), and acknowledges the alert.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { Alert, Decision, Exception, Severity } from '../../analyzer/types.ts';
import { parseTimeFlag } from '../../audit/query/index.ts';
import { parseDuration } from '../../core/duration.ts';
import { Errors } from '../../core/errors.ts';
import { authOf } from './admin-auth.ts';
import { actorOf, clientSignal, jsonBody, textField, type ApiContext } from './api-context.ts';
import { SEVERITIES } from './alert-index.ts';
import { findEvents } from './find-events.ts';
import { methodNotAllowed } from './method-not-allowed.ts';
import { ApiError, badParam } from './problem.ts';
import { alertIdParam, enumParam, pageParams, readQuery } from './query-params.ts';

/** Longest false-positive exception the UI may create (a misfire should be looked at again). */
const MAX_EXCEPTION_MS = 90 * 86_400_000;

async function alertOr404(ctx: ApiContext, req: Request): Promise<Alert> {
  const id = alertIdParam(req.params['id'] as string | undefined);
  const alert = await ctx.alerts.get(id);
  if (!alert) throw new ApiError(Errors.ADMIN_NOT_FOUND, `no alert ${id}`);
  return alert;
}

async function decisionOf(ctx: ApiContext, alert: Alert): Promise<Decision | undefined> {
  const store = await ctx.decisions();
  const { decisions } = await store.list({ includeExpired: true });
  return decisions.find((d) => (alert.decisionId !== undefined && d.id === alert.decisionId) || d.alertId === alert.id);
}

/** The alerts routes (mounted under /api, behind requireAdmin). */
export function alertsApi(ctx: ApiContext): Router {
  const r = express.Router();
  r.route('/alerts').get(async (req: Request, res: Response) => {
    const q = readQuery(req, ['since', 'rule', 'severity', 'state', 'limit', 'offset']);
    const { limit, offset } = pageParams(q);
    let since = -Infinity;
    if (q['since'] !== undefined) {
      const t = parseTimeFlag(q['since'], ctx.clock.now());
      if (t === undefined) throw badParam('since', 'expected a duration back from now (1h, 7d) or an ISO date-time with a zone');
      since = t;
    }
    const rule = q['rule'];
    if (rule !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(rule)) throw badParam('rule', 'expected a rule name');
    const minSev = SEVERITIES.indexOf(enumParam(q, 'severity', SEVERITIES, 'low') as Severity);
    const state = enumParam(q, 'state', ['open', 'acked', 'all'] as const, 'all');
    const [{ alerts, skipped }, acks] = await Promise.all([ctx.alerts.list(), ctx.acks.all()]);
    const selected = alerts
      .filter((a) => Date.parse(a.lastSeen) >= since && (rule === undefined || a.rule === rule) && SEVERITIES.indexOf(a.severity) >= minSev)
      .map((a) => ({ ...a, ack: acks[a.id] ?? null }))
      .filter((a) => state === 'all' || (state === 'acked') === (a.ack !== null));
    res.setHeader('cache-control', 'no-store');
    res.json({
      items: selected.slice(offset, offset + limit),
      page: { limit, offset, total: selected.length, nextOffset: offset + limit < selected.length ? offset + limit : null, prevOffset: offset > 0 ? Math.max(0, offset - limit) : null },
      unreadableLines: skipped,
    });
  }).all(methodNotAllowed);

  r.route('/alerts/:id').get(async (req: Request, res: Response) => {
    readQuery(req, []);
    const alert = await alertOr404(ctx, req);
    const [acks, found, decision, store] = await Promise.all([
      ctx.acks.all(), findEvents(ctx.deps.auditDir, alert.evidence, { signal: clientSignal(res) }), decisionOf(ctx, alert), ctx.decisions(),
    ]);
    const { exceptions } = await store.list();
    res.setHeader('cache-control', 'no-store');
    res.json({
      alert, ack: acks[alert.id] ?? null, decision: decision ?? null,
      exceptions: exceptions.filter((x) => (x.rule === alert.rule || x.rule === '*') && x.scope === alert.scope && x.value === alert.value),
      evidence: found.events, missingEvidence: found.missing, damagedLines: found.damaged,
    });
  }).all(methodNotAllowed);

  r.route('/alerts/:id/ack').post(async (req: Request, res: Response) => {
    readQuery(req, []);
    const body = jsonBody(req, ['note']);
    const note = textField(body, 'note', 500);
    const alert = await alertOr404(ctx, req);
    const ack = await ctx.acks.ack(alert.id, actorOf(authOf(res)), note === undefined ? {} : { note });
    ctx.deps.log.info({ alert: alert.id, by: ack.by }, 'admin: alert acknowledged');
    res.json({ id: alert.id, ack });
  }).all(methodNotAllowed);

  r.route('/alerts/:id/false-positive').post(async (req: Request, res: Response) => {
    readQuery(req, []);
    const body = jsonBody(req, ['duration', 'note']);
    const note = textField(body, 'note', 500);
    const durationText = textField(body, 'duration', 16) ?? '7d';
    const durationMs = parseDuration(durationText);
    if (durationMs === undefined || durationMs <= 0 || durationMs > MAX_EXCEPTION_MS) throw badParam('duration', 'expected a duration up to 90d (e.g. 1h, 7d)');
    const alert = await alertOr404(ctx, req);
    const store = await ctx.decisions();
    const exception: Exception = await store.addException({
      rule: alert.rule, scope: alert.scope, value: alert.value, durationMs,
      note: note ?? `false positive: alert ${alert.id}`,
    });
    // The exception stops new alerts and quarantines; the one already in force is lifted here.
    const decision = await decisionOf(ctx, alert);
    const removed = decision ? await store.remove(decision.id) : undefined;
    const by = actorOf(authOf(res));
    const ack = await ctx.acks.ack(alert.id, by, {
      ...(note === undefined ? {} : { note }),
      falsePositive: { exceptionId: exception.id, removedDecisionId: removed ? removed.id : null },
    });
    ctx.deps.log.info({ alert: alert.id, by, exception: exception.id, removedDecision: removed?.id }, 'admin: alert marked false positive');
    res.json({ id: alert.id, exception, removedDecision: removed ?? null, ack });
  }).all(methodNotAllowed);
  return r;
}
