/**
 * Who is calling the admin UI and API, decided once per request, fail closed:
 *
 *   1. `Authorization: Bearer <admin token>` (scripts) — compared in constant
 *      time, rate-limited on failure. A browser never sends this header on
 *      its own, so it needs no CSRF token.
 *   2. The session cookie (after the sign-in form, or 3.).
 *   3. A verified client certificate whose SPIFFE ID is in `admin.spiffeIds`
 *      (admin listener in TLS mode) opens a session on a safe (GET/HEAD)
 *      request; the session stays bound to that SPIFFE ID.
 *
 * Anything else is 401. A cookie or a client certificate is sent by the
 * browser automatically, so every POST authenticated by a session must also
 * carry the session's CSRF token in `x-csrf-token` and must not come from
 * another site (`Origin`, `Sec-Fetch-Site`); SameSite=Strict is the first
 * line, the token the second.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { Errors } from '../../core/errors.ts';
import type { AdminTransport } from './deps.ts';
import { ApiError } from './problem.ts';
import { safeEqual, type Session, type SessionStore } from './session-store.ts';
import type { SignInLimiter } from './sign-in-limiter.ts';

/** The caller, stored in `res.locals.auth` by the middleware. */
export interface AdminAuth {
  readonly via: 'token' | 'session';
  readonly session: Session | undefined;
}

/** Header the UI sends its CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

/** Everything the checks need. */
export interface AuthContext {
  readonly token: string | undefined;
  readonly spiffeIds: ReadonlySet<string>;
  readonly sessions: SessionStore;
  readonly limiter: SignInLimiter;
  readonly transport: AdminTransport;
}

/** The session cookie's name: `__Host-` (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2) over TLS. */
export function cookieName(secure: boolean): string {
  return secure ? '__Host-mg_session' : 'mg_session';
}

/** A cookie value from the request, or undefined. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `Set-Cookie` for a new session, or (session undefined) one that deletes it. */
export function sessionCookie(ctx: AuthContext, session: Session | undefined): string {
  const attrs = `Path=/; HttpOnly; SameSite=Strict${ctx.transport.secure ? '; Secure' : ''}`;
  const name = cookieName(ctx.transport.secure);
  if (!session) return `${name}=; ${attrs}; Max-Age=0`;
  return `${name}=${session.id}; ${attrs}; Max-Age=${Math.floor(ctx.sessions.ttlMs / 1000)}`;
}

/** The address failures are counted against: the TCP peer (the admin listener trusts no forwarding header). */
export function sourceOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** Throws 429 when the source is locked out of token attempts. */
export function checkLimit(ctx: AuthContext, source: string): void {
  const wait = ctx.limiter.retryAfterMs(source);
  if (wait > 0) {
    throw new ApiError(Errors.ADMIN_RATE_LIMITED, undefined, { headers: { 'retry-after': String(Math.ceil(wait / 1000)) } });
  }
}

/** Compares a presented token with the admin token; counts a failure. Never logs or echoes it. */
export function tokenAccepted(ctx: AuthContext, source: string, presented: string): boolean {
  const ok = ctx.token !== undefined && ctx.token.length > 0 && safeEqual(presented, ctx.token);
  if (ok) ctx.limiter.succeed(source);
  else ctx.limiter.fail(source);
  return ok;
}

/**
 * Refuses a request sent by another site. `Sec-Fetch-Site` (Fetch Metadata)
 * and `Origin` are set by browsers and cannot be forged by page script;
 * clients that send neither (curl) are not browsers and carry no cookie of ours
 * by accident.
 */
export function checkSameOrigin(req: IncomingMessage, secure: boolean): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new ApiError(Errors.ADMIN_CSRF, 'cross-site request');
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `${secure ? 'https' : 'http'}://${req.headers.host ?? ''}`) {
    throw new ApiError(Errors.ADMIN_CSRF, 'request from another origin');
  }
}

function isSafe(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** Decides who the caller is, or throws 401/429/403. May open a session (mTLS) and set its cookie. */
export function authenticate(ctx: AuthContext, req: Request, res: Response): AdminAuth {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer +(\S+) *$/i.exec(header);
    if (!m) throw new ApiError(Errors.ADMIN_BAD_CREDENTIALS, 'expected Authorization: Bearer <admin token>');
    const source = sourceOf(req);
    checkLimit(ctx, source);
    if (!tokenAccepted(ctx, source, m[1] as string)) throw new ApiError(Errors.ADMIN_BAD_CREDENTIALS);
    return { via: 'token', session: undefined };
  }
  const peer = ctx.transport.peerSpiffeId(req);
  const sid = readCookie(req, cookieName(ctx.transport.secure));
  let session = ctx.sessions.get(sid);
  // A session opened by a certificate is only good on a connection with that certificate.
  if (session && session.via === 'spiffe' && session.spiffeId !== peer) {
    ctx.sessions.delete(session.id);
    session = undefined;
  }
  if (!session && peer !== undefined && ctx.spiffeIds.has(peer) && isSafe(req.method)) {
    session = ctx.sessions.create('spiffe', peer);
    res.append('set-cookie', sessionCookie(ctx, session));
  }
  if (!session) throw new ApiError(Errors.ADMIN_UNAUTHENTICATED);
  if (!isSafe(req.method)) {
    checkSameOrigin(req, ctx.transport.secure);
    const sent = req.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !safeEqual(sent, session.csrfToken)) throw new ApiError(Errors.ADMIN_CSRF, `missing or wrong ${CSRF_HEADER} header`);
  }
  return { via: 'session', session };
}

/** Middleware for /api: authenticates or answers with the problem. */
export function requireAdmin(ctx: AuthContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    try {
      res.locals['auth'] = authenticate(ctx, req, res);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** Middleware for UI pages: a caller who is not signed in is sent to the sign-in page. */
export function requireAdminPage(ctx: AuthContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    try {
      res.locals['auth'] = authenticate(ctx, req, res);
      next();
    } catch {
      res.redirect(303, '/ui/sign-in');
    }
  };
}

/** The caller the middleware stored. */
export function authOf(res: Response): AdminAuth {
  const a = res.locals['auth'] as AdminAuth | undefined;
  if (!a) throw new TypeError('authOf: route is not behind requireAdmin');
  return a;
}
