/**
 * The admin listener (loopback by default): `/healthz` (the process is up),
 * `/readyz` (every component can serve and we are not draining; JSON detail
 * either way), `/metrics` (Prometheus text). The audit UI and its API land
 * here under `/ui/` and `/api/` in a later issue.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ComponentStatus } from '../core/status.ts';
import type { Metrics } from './metrics.ts';

export interface AdminDeps {
  readonly metrics: Metrics;
  readonly components: () => ComponentStatus[];
  readonly listening: () => boolean;
  readonly draining: () => boolean;
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

export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
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
  });
}
