/**
 * Admin API errors as RFC 9457 problem details (`application/problem+json`).
 * Every refusal carries the catalogue's stable `code` and `reason`; a bad
 * parameter also names itself in `param`, so a script can tell which input
 * to fix. Library messages and stacks never reach the body (they are logged).
 */
import type { NextFunction, Request, Response } from 'express';
import { Errors, MeshgateError, type ErrorSpec } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';

/** A refusal of an admin request: a catalogue error plus, for bad input, the parameter it is about. */
export class ApiError extends MeshgateError {
  readonly param: string | undefined;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(s: ErrorSpec, detail?: string, options: { param?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(s, detail, { cause: options.cause });
    this.name = 'ApiError';
    this.param = options.param;
    this.headers = options.headers ?? {};
  }
}

/** A 400 naming the parameter. */
export function badParam(param: string, detail: string): ApiError {
  return new ApiError(Errors.ADMIN_BAD_PARAM, `${param}: ${detail}`, { param });
}

/** The problem document for `err` (RFC 9457 §3.1 members plus our code/reason/param). */
export function problemBody(err: MeshgateError, instance?: string): Record<string, unknown> {
  return {
    type: `https://meshgate.dev/errors#${err.code}`,
    title: err.title,
    status: err.status,
    ...(err.detail ? { detail: err.detail } : {}),
    code: err.code,
    reason: err.reason,
    ...(err instanceof ApiError && err.param !== undefined ? { param: err.param } : {}),
    ...(instance ? { instance } : {}),
  };
}

/** Writes `err` as problem+json. */
export function sendProblem(res: Response, err: MeshgateError, instance?: string): void {
  if (err instanceof ApiError) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).type('application/problem+json').setHeader('cache-control', 'no-store');
  res.send(JSON.stringify(problemBody(err, instance)));
}

/** Express error handler: our errors as they are, body-parser errors as 400, anything else 500 (logged). */
export function problemHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof MeshgateError) {
      sendProblem(res, err, req.path);
      return;
    }
    const e = err as { type?: unknown; status?: unknown };
    // body-parser's own errors (bad JSON, too large, wrong charset) are the client's input problems.
    if (typeof e.type === 'string' && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      sendProblem(res, badParam('body', e.type === 'entity.too.large' ? 'request body too large' : 'request body is not valid JSON'), req.path);
      return;
    }
    log.error({ err, path: req.path }, 'admin API request failed');
    sendProblem(res, new MeshgateError(Errors.GW_INTERNAL), req.path);
  };
}
