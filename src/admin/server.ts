/**
 * The admin listener (loopback by default): `/healthz` (the process is up),
 * `/readyz` (every component can serve and we are not draining; JSON detail
 * either way), `/metrics` (Prometheus text), and — when `ui` is given — the
 * audit review web UI under `/ui/` and its API under `/api/` (an express app,
 * src/admin/ui/). With `tls`, the listener serves HTTPS with the gateway's
 * TLS material and asks for (never requires) a client certificate, so an
 * admin SPIFFE ID can sign in to the UI automatically.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { ComponentStatus } from '../core/status.ts';
import { createAdminApp } from './ui/create-admin-app.ts';
import type { AdminUiDeps } from './ui/deps.ts';

/** HTTPS for the admin listener, from the gateway's own (hot-reloaded) TLS material. */
export interface AdminTls {
  /** The current server certificate, key, client CA bundle and CRLs. */
  readonly context: () => SecureContextOptions;
  /** Calls `cb` with new material after each accepted reload. */
  readonly onChange: (cb: (context: SecureContextOptions) => void) => void;
  /** The verified SPIFFE ID of the connection's client certificate, or undefined (none, unverified, not a valid SVID). */
  readonly peerSpiffeId: (socket: TLSSocket) => string | undefined;
}

/** Where /metrics comes from: one process's registry, or the cluster primary's aggregate. */
export interface MetricsEndpoint {
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };
}

export interface AdminDeps {
  readonly metrics: MetricsEndpoint;
  readonly components: () => ComponentStatus[];
  readonly listening: () => boolean;
  readonly draining: () => boolean;
  /** The audit review UI and API; absent: /ui/ and /api/ answer 404. */
  readonly ui?: AdminUiDeps | undefined;
  /** Serve HTTPS (admin.tls); absent: plain HTTP. */
  readonly tls?: AdminTls | undefined;
}

export interface Readiness {
  readonly ready: boolean;
  readonly listening: boolean;
  readonly draining: boolean;
  readonly components: ComponentStatus[];
}

export function readiness(deps: AdminDeps): Readiness {
  const components = deps.components();
  const listening = deps.listening();
  const draining = deps.draining();
  return { ready: listening && !draining && components.every((c) => c.ready), listening, draining, components };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function isUiPath(path: string): boolean {
  return path === '/ui' || path.startsWith('/ui/') || path === '/api' || path.startsWith('/api/');
}

/** The admin listener (not yet listening). */
export function createAdminServer(deps: AdminDeps): Server {
  const tls = deps.tls;
  const app = deps.ui ? createAdminApp(deps.ui, {
    secure: tls !== undefined,
    peerSpiffeId: (req) => (tls && 'encrypted' in req.socket ? tls.peerSpiffeId(req.socket as TLSSocket) : undefined),
  }) : undefined;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (app && isUiPath(path)) {
      app(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') { json(res, 405, { error: 'method not allowed' }); return; }
    switch (path) {
      case '/healthz':
        json(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const r = readiness(deps);
        json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r });
        return;
      }
      case '/metrics':
        deps.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
          res.end(text);
        }, () => json(res, 500, { error: 'metrics collection failed' }));
        return;
      default:
        json(res, 404, { error: 'not found' });
    }
  };
  if (!tls) return createServer(handler);
  // Client certificates are optional here: the admin token must keep working
  // for browsers without one. Verification still runs (rejectUnauthorized off
  // only lets the handshake finish); peerSpiffeId trusts authorized sockets only.
  const server = createHttpsServer({ ...tls.context(), requestCert: true, rejectUnauthorized: false }, handler);
  tls.onChange((context) => server.setSecureContext(context));
  return server;
}
