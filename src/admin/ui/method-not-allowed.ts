/**
 * The 405 answer for a known admin API path with another method. Mounted
 * with `.all()` after a route's handlers, so it only sees the methods they
 * did not take; `Allow` lists the ones that would work.
 */
import type { NextFunction, Request, Response } from 'express';
import { Errors } from '../../core/errors.ts';
import { ApiError } from './problem.ts';

/** Express handler: 405 problem+json with `Allow`. */
export function methodNotAllowed(req: Request, _res: Response, next: NextFunction): void {
  const route = (req as Request & { route?: { methods?: Record<string, boolean> } }).route;
  const allow = Object.keys(route?.methods ?? {}).filter((m) => m !== '_all').map((m) => m.toUpperCase());
  if (allow.includes('GET')) allow.push('HEAD');
  next(new ApiError(Errors.ADMIN_METHOD, `${req.method} is not allowed here`, { headers: { allow: allow.join(', ') } }));
}
