/**
 * The admin web UI (`/ui/`) and its JSON API (`/api/`), as one express app
 * the admin listener hands those paths to (src/admin/server.ts).
 *
 * Order matters:
 *   1. helmet on everything: strict CSP (no inline script or style, no
 *      framing, Trusted Types so no string can become HTML), no referrer.
 *   2. sign-in (the only unauthenticated POST) and the static assets, which
 *      hold no data.
 *   3. the UI page and EVERY /api path behind authentication — unknown API
 *      paths too, so an anonymous caller cannot even map the API.
 *   4. one error handler: problem+json with the catalogue code.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type Request, type Response } from 'express';
import helmet from 'helmet';
import { systemClock } from '../../core/clock.ts';
import { Errors } from '../../core/errors.ts';
import { requireAdmin, requireAdminPage, type AuthContext } from './admin-auth.ts';
import { alertsApi } from './alerts-api.ts';
import { apiContext } from './api-context.ts';
import type { AdminTransport, AdminUiDeps } from './deps.ts';
import { eventsApi } from './events-api.ts';
import { ApiError, problemHandler } from './problem.ts';
import { sessionApi, signInRoutes } from './session-routes.ts';
import { SessionStore } from './session-store.ts';
import { SignInLimiter } from './sign-in-limiter.ts';
import { statsApi } from './stats-api.ts';
import { stateApi } from './state-api.ts';

/** The static front end (plain ES modules and CSS, no build step). */
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

/** uPlot's distribution folder (served at /ui/vendor/). */
function uplotDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('uplot'));
}

/** Tunables for tests. */
export interface AdminAppOptions {
  readonly sessions?: SessionStore;
  readonly limiter?: SignInLimiter;
}

/** Builds the app. `transport` says whether the listener is HTTPS and who the client certificate names. */
export function createAdminApp(deps: AdminUiDeps, transport: AdminTransport, opts: AdminAppOptions = {}): Express {
  const clock = deps.clock ?? systemClock;
  const auth: AuthContext = {
    token: deps.token,
    spiffeIds: new Set(deps.spiffeIds),
    sessions: opts.sessions ?? new SessionStore({ clock, ...(deps.sessionTtlMs !== undefined ? { ttlMs: deps.sessionTtlMs } : {}) }),
    limiter: opts.limiter ?? new SignInLimiter({ clock }),
    transport,
  };
  const ctx = apiContext(deps, clock);
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        'style-src': ["'self'"],
        'img-src': ["'self'"],
        'connect-src': ["'self'"],
        'font-src': ["'self'"],
        'object-src': ["'none'"],
        'base-uri': ["'none'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'require-trusted-types-for': ["'script'"],
        'trusted-types': ["'none'"],
        ...(transport.secure ? { 'upgrade-insecure-requests': [] } : {}),
      },
    },
    strictTransportSecurity: transport.secure ? { maxAge: 31_536_000 } : false,
    // Not no-referrer: under it browsers send `Origin: null` on form posts, and the sign-in origin check needs the origin.
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  }));

  const page = (name: string) => (_req: Request, res: Response): void => {
    res.setHeader('cache-control', 'no-store');
    res.sendFile(path.join(STATIC_DIR, name));
  };
  app.use(signInRoutes(auth, path.join(STATIC_DIR, 'sign-in.html')));
  // Non-strict routing lets '/ui' match '/ui/' as well: only the bare path is redirected.
  app.get('/ui', (req, res, next) => (req.path === '/ui' ? res.redirect(301, '/ui/') : next()));
  app.get(['/ui/', '/ui/index.html'], requireAdminPage(auth), page('index.html'));
  const vendor = uplotDir();
  app.get('/ui/vendor/uPlot.esm.js', (_req, res) => res.sendFile(path.join(vendor, 'uPlot.esm.js')));
  app.get('/ui/vendor/uPlot.min.css', (_req, res) => res.sendFile(path.join(vendor, 'uPlot.min.css')));
  app.use('/ui', express.static(STATIC_DIR, { index: false, redirect: false, dotfiles: 'deny' }));

  const api = express.Router();
  api.use(requireAdmin(auth));
  api.use(express.json({ limit: '16kb', type: 'application/json', strict: true }));
  api.use(sessionApi(auth));
  api.use(eventsApi(ctx));
  api.use(statsApi(ctx));
  api.use(alertsApi(ctx));
  api.use(stateApi(ctx));
  api.use((req, _res, next) => next(new ApiError(Errors.ADMIN_NOT_FOUND, `no API endpoint ${req.method} /api${req.path}`)));
  app.use('/api', api);
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  app.use(problemHandler(deps.log));
  return app;
}
