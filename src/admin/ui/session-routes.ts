/**
 * Sign-in and sign-out. The sign-in form posts the admin token once
 * (`POST /ui/sign-in`, urlencoded); the answer is a redirect with an HttpOnly
 * session cookie, so the token never sits in the page, in storage or in a
 * URL. Failures redirect back with a fixed error word, never the input.
 */
import express, { type Request, type Response, type Router } from 'express';
import { methodNotAllowed } from './method-not-allowed.ts';
import { authenticate, authOf, checkSameOrigin, sessionCookie, sourceOf, tokenAccepted, type AuthContext } from './admin-auth.ts';

const SIGN_IN_PAGE = '/ui/sign-in';

/** `/ui/sign-in` (GET page is static; POST here) — mounted at the app root. */
export function signInRoutes(ctx: AuthContext, page: string): Router {
  const r = express.Router();
  r.get(SIGN_IN_PAGE, (req: Request, res: Response) => {
    // Already signed in (a session, or an admin certificate): straight to the UI.
    try {
      authenticate(ctx, req, res);
      res.redirect(303, '/ui/');
    } catch {
      res.setHeader('cache-control', 'no-store');
      res.sendFile(page);
    }
  });
  r.post(SIGN_IN_PAGE, express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 4 }), (req: Request, res: Response) => {
    // Login CSRF: a page elsewhere must not sign this browser in to a session it chose.
    checkSameOrigin(req, ctx.transport.secure);
    const source = sourceOf(req);
    res.setHeader('cache-control', 'no-store');
    if (ctx.limiter.retryAfterMs(source) > 0) {
      res.redirect(303, `${SIGN_IN_PAGE}?error=rate`);
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const token = typeof body['token'] === 'string' ? body['token'].trim() : '';
    if (token === '' || !tokenAccepted(ctx, source, token)) {
      res.redirect(303, `${SIGN_IN_PAGE}?error=bad`);
      return;
    }
    // A new id at every sign-in (no session fixation): any cookie sent along is ignored.
    const session = ctx.sessions.create('token');
    res.append('set-cookie', sessionCookie(ctx, session));
    res.redirect(303, '/ui/');
  });
  return r;
}

/** `GET /api/session`, `POST /api/session/sign-out` — mounted under /api, behind requireAdmin. */
export function sessionApi(ctx: AuthContext): Router {
  const r = express.Router();
  r.route('/session').get((_req: Request, res: Response) => {
    const a = authOf(res);
    res.json(a.session
      ? { via: a.session.via, spiffeId: a.session.spiffeId ?? null, csrfToken: a.session.csrfToken, expiresAt: new Date(a.session.expiresAt).toISOString() }
      : { via: 'token', spiffeId: null, csrfToken: null, expiresAt: null });
  }).all(methodNotAllowed);
  r.route('/session/sign-out').post((_req: Request, res: Response) => {
    const a = authOf(res);
    if (a.session) ctx.sessions.delete(a.session.id);
    res.append('set-cookie', sessionCookie(ctx, undefined));
    res.status(204).end();
  }).all(methodNotAllowed);
  return r;
}
