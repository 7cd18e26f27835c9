/**
 * `GET /api/decisions` (quarantine decisions and exceptions, `?all=true`
 * with expired ones), `GET /api/chain` (the last audit-chain verification)
 * and `POST /api/chain/verify` (verify now).
 */
import express, { type Request, type Response, type Router } from 'express';
import { jsonBody, type ApiContext } from './api-context.ts';
import { methodNotAllowed } from './method-not-allowed.ts';
import { boolParam, readQuery } from './query-params.ts';

/** The decisions and chain routes (mounted under /api, behind requireAdmin). */
export function stateApi(ctx: ApiContext): Router {
  const r = express.Router();
  r.route('/decisions').get(async (req: Request, res: Response) => {
    const q = readQuery(req, ['all']);
    const store = await ctx.decisions();
    const list = await store.list({ includeExpired: boolParam(q, 'all', false) });
    res.setHeader('cache-control', 'no-store');
    res.json(list);
  }).all(methodNotAllowed);

  r.route('/chain').get((req: Request, res: Response) => {
    readQuery(req, []);
    res.setHeader('cache-control', 'no-store');
    res.json(ctx.chain.state());
  }).all(methodNotAllowed);

  r.route('/chain/verify').post(async (req: Request, res: Response) => {
    readQuery(req, []);
    jsonBody(req, []);
    const run = await ctx.chain.verify();
    ctx.deps.log.info({ ok: run.ok, records: run.records, problem: run.problem?.kind }, 'admin: audit chain verified');
    res.setHeader('cache-control', 'no-store');
    res.json({ running: false, last: run });
  }).all(methodNotAllowed);
  return r;
}
