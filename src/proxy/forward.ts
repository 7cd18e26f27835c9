/**
 * Forwarding to the local service with undici: a connection pool, streaming
 * bodies in both directions (constant memory for any size), and upstream
 * timeouts. Wraps undici (STYLE: one module per dependency): undici errors
 * become our codes here, with the original as `cause`.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Config } from '../config/schema.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import { securityHeaders } from './security-headers.ts';
import type { RequestState } from './state.ts';

/** Response headers that are hop-by-hop (RFC 9110 §7.6.1) or framing we redo ourselves. */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate']);

export function upstreamError(e: unknown): MeshgateError {
  if (e instanceof MeshgateError) return e;
  const code = (e as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return new MeshgateError(Errors.UPSTREAM_TIMEOUT, undefined, { cause: e });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      return new MeshgateError(Errors.UPSTREAM_UNAVAILABLE, undefined, { cause: e });
    default:
      return new MeshgateError(Errors.UPSTREAM_ERROR, undefined, { cause: e });
  }
}

export class Upstream {
  readonly pool: Pool;
  readonly #maxBody: number;

  constructor(cfg: Config['upstream'], maxBodyBytes: number) {
    const t = cfg.tls;
    this.pool = new Pool(new URL(cfg.url).origin, {
      connections: cfg.connections,
      pipelining: 1,
      headersTimeout: cfg.responseTimeout,
      bodyTimeout: cfg.bodyTimeout,
      keepAliveTimeout: 4_000,
      connect: {
        timeout: cfg.connectTimeout,
        ...(t?.ca ? { ca: readFileSync(t.ca) } : {}),
        ...(t?.cert ? { cert: readFileSync(t.cert) } : {}),
        ...(t?.key ? { key: readFileSync(t.key) } : {}),
        ...(t?.serverName ? { servername: t.serverName } : {}),
      },
    });
    this.#maxBody = maxBodyBytes;
  }

  /**
   * Streams `req` to the upstream and the answer back to `res`. Resolves when
   * the response is complete; rejects with a MeshgateError when nothing has
   * been sent to the client yet (the caller replies), and destroys the
   * response when the failure happens mid-body (nothing else is honest).
   */
  async forward(state: RequestState, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = state.upstreamHeaders as Record<string, string | string[]>;
    // Node already answered `Expect: 100-continue`; undici refuses the header.
    delete headers.expect;
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const abort = new AbortController();
    const onClose = (): void => { if (!res.writableFinished) abort.abort(new MeshgateError(Errors.GW_CLIENT_CLOSED)); };
    res.once('close', onClose);
    let body: Readable | null = null;
    if (hasBody) {
      const max = this.#maxBody;
      body = req.pipe(new Transform({
        transform(chunk: Buffer, _enc, cb) {
          state.bytesIn += chunk.length;
          if (state.bytesIn > max) cb(new MeshgateError(Errors.REQ_BODY_TOO_LARGE));
          else cb(null, chunk);
        },
      }));
    }
    // `stream()` writes the upstream body straight into `res` (no intermediate
    // Readable, no stream.pipeline: its per-request AbortController and
    // DOMException showed up as ~4% of CPU in the profile).
    let started = false;
    try {
      await this.pool.stream({
        path: state.query ? `${state.path}?${state.query}` : (state.path as string),
        method: state.input.method as Dispatcher.HttpMethod,
        headers,
        body,
        signal: abort.signal,
      }, ({ statusCode, headers: upstreamHeaders }) => {
        const out: Record<string, string | string[]> = { ...securityHeaders() };
        for (const [k, v] of Object.entries(upstreamHeaders)) {
          if (v !== undefined && !RESPONSE_DROP.has(k)) out[k] = v;
        }
        out['x-request-id'] = state.id;
        state.status = statusCode;
        started = true;
        res.writeHead(statusCode, out);
        // undici enforces that a body matches its content-length, so the
        // declared length is the exact byte count; only bodies without one pay
        // for a counting stream.
        const declared = upstreamHeaders['content-length'];
        if (declared !== undefined && !Array.isArray(declared)) {
          const bodiless = state.input.method === 'HEAD' || statusCode === 204 || statusCode === 304;
          state.bytesOut = bodiless ? 0 : Number(declared);
          return res;
        }
        const counter = new Transform({ transform(chunk: Buffer, _e, cb) { state.bytesOut += chunk.length; cb(null, chunk); } });
        counter.pipe(res);
        return counter;
      });
    } catch (e) {
      const err = upstreamError(abort.signal.aborted ? abort.signal.reason : e);
      if (!started) throw err;
      // Headers are gone; the only honest signal left is an aborted stream.
      state.error = err;
      res.destroy();
    } finally {
      res.off('close', onClose);
    }
  }

  close(): Promise<void> { return this.pool.close(); }
}
