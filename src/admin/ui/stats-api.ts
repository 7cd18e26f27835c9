/**
 * `GET /api/stats/timeseries?bucket=1m&since=1h[&until=…]` — requests,
 * denials and alerts per bucket (the overview charts) — and
 * `GET /api/stats/top?by=identity|route|…&decision=deny&since=24h` — the
 * largest groups of events selected by the audit filters (`aggregate`, the
 * same counting as `meshgate audit query --group-by`).
 */
import express, { type Request, type Response, type Router } from 'express';
import { aggregate, GROUP_BY, parseTimeFlag, queryAudit, QUERY_FLAGS, recordsOf, type Aggregation, type GroupBy } from '../../audit/query/index.ts';
import { parseDuration } from '../../core/duration.ts';
import { auditFilter, clientSignal, isMissing, type ApiContext } from './api-context.ts';
import { methodNotAllowed } from './method-not-allowed.ts';
import { badParam } from './problem.ts';
import { enumParam, intParam, readQuery } from './query-params.ts';
import { buildTimeseries, MAX_BUCKETS } from './timeseries.ts';

function timeParam(q: Readonly<Record<string, string>>, name: string, def: string, now: number): number {
  const t = parseTimeFlag(q[name] ?? def, now);
  if (t === undefined) throw badParam(name, 'expected a duration back from now (30m, 1h, 7d), now, or an ISO date-time with a zone');
  return t;
}

/** The stats routes (mounted under /api, behind requireAdmin). */
export function statsApi(ctx: ApiContext): Router {
  const r = express.Router();
  r.route('/stats/timeseries').get(async (req: Request, res: Response) => {
    const q = readQuery(req, ['bucket', 'since', 'until']);
    const now = ctx.clock.now();
    const bucketMs = parseDuration(q['bucket'] ?? '1m');
    if (bucketMs === undefined || bucketMs < 1000 || bucketMs > 86_400_000) throw badParam('bucket', 'expected a duration from 1s to 1d (e.g. 1m, 5m, 1h)');
    const from = timeParam(q, 'since', '1h', now);
    const to = timeParam(q, 'until', 'now', now);
    if (to <= from) throw badParam('until', 'is not after since');
    const n = Math.ceil((to - Math.floor(from / bucketMs) * bucketMs) / bucketMs);
    if (n > MAX_BUCKETS) throw badParam('bucket', `${n} buckets in that range; at most ${MAX_BUCKETS} (use a wider bucket)`);
    const { alerts } = await ctx.alerts.list();
    const ts = await buildTimeseries(ctx.deps.auditDir, alerts, from, to, bucketMs, clientSignal(res));
    res.setHeader('cache-control', 'no-store');
    res.json(ts);
  }).all(methodNotAllowed);

  r.route('/stats/top').get(async (req: Request, res: Response) => {
    const q = readQuery(req, [...QUERY_FLAGS, 'by', 'limit']);
    const by = enumParam(q, 'by', GROUP_BY, 'identity') as GroupBy;
    const limit = intParam(q, 'limit', 10, 1, 100);
    const filter = auditFilter(q, ctx.clock.now());
    let agg: Aggregation;
    try {
      agg = await aggregate(recordsOf(queryAudit(ctx.deps.auditDir, filter, { signal: clientSignal(res) })), by);
    } catch (err) {
      if (!isMissing(err)) throw err;
      agg = { groupBy: by, total: 0, groups: [], overflow: 0 };
    }
    res.setHeader('cache-control', 'no-store');
    res.json({ by, total: agg.total, groups: agg.groups.slice(0, limit), distinct: agg.groups.length, overflow: agg.overflow, filter });
  }).all(methodNotAllowed);
  return r;
}
