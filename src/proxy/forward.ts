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

/**
 * Writes one upstream response into the client's response: status and
 * headers (hop-by-hop dropped, security headers filled in, our request id),
 * then the body with backpressure both ways. Settles once the response has
 * been handed to the client's socket ('finish'), as undici's stream() did: a
 * client that goes away before that aborts the upstream request, or — when
 * the upstream had already finished — is recorded as client_closed_request.
 */
class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #state: RequestState;
  readonly #res: ServerResponse;
  readonly #resolve: () => void;
  readonly #reject: (e: MeshgateError) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #started = false;
  /** The upstream response is complete and res.end() was called. */
  #ended = false;
  #settled = false;

  constructor(state: RequestState, res: ServerResponse, resolve: () => void, reject: (e: MeshgateError) => void) {
    this.#state = state;
    this.#res = res;
    this.#resolve = resolve;
    this.#reject = reject;
    res.once('close', this.#onClose);
  }

  readonly #onClose = (): void => {
    if (this.#res.writableFinished) return;
    const gone = new MeshgateError(Errors.GW_CLIENT_CLOSED);
    if (this.#ended) {
      // The upstream finished, the client did not get all of it.
      this.#state.error = gone;
      this.#settle();
      return;
    }
    this.#controller?.abort(gone);
  };

  readonly #onDrain = (): void => { this.#controller?.resume(); };

  readonly #onFinish = (): void => { this.#settle(); };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The client left before the request went out.
    if (this.#res.destroyed && !this.#res.writableFinished) controller.abort(new MeshgateError(Errors.GW_CLIENT_CLOSED));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, upstreamHeaders: Record<string, string | string[]>): void {
    if (statusCode < 200) return; // 1xx informational: the final response follows
    const state = this.#state;
    const out: (string | string[])[] = [];
    for (const k in upstreamHeaders) {
      const v = upstreamHeaders[k];
      // The request id is ours: an upstream's copy must not come first in the client's view.
      if (v !== undefined && !RESPONSE_DROP.has(k) && k !== 'x-request-id') out.push(k, v);
    }
    const sec = securityHeaders();
    for (const k in sec) if (upstreamHeaders[k] === undefined) out.push(k, sec[k] as string);
    out.push('x-request-id', state.id);
    // If writeHead throws (a header Node refuses), nothing was sent: the caller answers 502.
    this.#res.writeHead(statusCode, out as string[]);
    state.status = statusCode;
    this.#started = true;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#state.bytesOut += chunk.length;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#res.off('drain', this.#onDrain);
    this.#res.end();
    if (this.#res.writableFinished) this.#settle();
    else if (this.#res.destroyed) this.#onClose(); // gone already: no 'finish' will come
    else this.#res.once('finish', this.#onFinish);
  }

  onResponseError(_c: Dispatcher.DispatchController, e: Error): void {
    // After the end (a throw in onResponseEnd makes undici report it here), the response is already settled or settling.
    if (this.#ended || this.#settled) return;
    const err = upstreamError(e);
    if (!this.#started) {
      this.#settle(err);
      return;
    }
    // Headers are gone; the only honest signal left is an aborted stream.
    this.#state.error = err;
    this.#res.destroy();
    this.#settle();
  }

  /** Resolves (or rejects with `err`) once, and removes every listener this relay added. */
  #settle(err?: MeshgateError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#res.off('close', this.#onClose);
    this.#res.off('drain', this.#onDrain);
    this.#res.off('finish', this.#onFinish);
    if (err) this.#reject(err);
    else this.#resolve();
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
  forward(state: RequestState, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = state.upstreamHeaders as Record<string, string | string[]>;
    // Node already answered `Expect: 100-continue`; undici refuses the header.
    delete headers.expect;
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
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
    return new Promise<void>((resolve, reject) => {
      // undici's dispatch() with our own handler rather than stream(): no
      // AbortController, AsyncResource or end-of-stream listeners per request
      // (together several µs of the request path in the profile).
      this.pool.dispatch({
        path: state.query ? `${state.path}?${state.query}` : (state.path as string),
        method: state.input.method as Dispatcher.HttpMethod,
        headers,
        body,
      }, new ResponseRelay(state, res, resolve, reject));
    });
  }

  close(): Promise<void> { return this.pool.close(); }
}
