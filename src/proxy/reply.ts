/**
 * The one place that turns a refusal into bytes on the wire (linkerd's
 * ServerRescue, Envoy's local reply). Bodies are RFC 9457
 * `application/problem+json` with a stable code and reason — never a stack
 * trace or a library message; the underlying cause is logged by the caller.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { Errors, MeshgateError } from '../core/errors.ts';
import { securityHeaders } from './security-headers.ts';

/** Any thrown value as a MeshgateError; unknown errors become internal_error with the original as cause. */
export function toMeshgateError(e: unknown): MeshgateError {
  if (e instanceof MeshgateError) return e;
  return new MeshgateError(Errors.GW_INTERNAL, undefined, { cause: e });
}

/** HTTP status for an error; handshake-level errors (status 0) surfacing on a request are 403. */
export function httpStatus(err: MeshgateError): number {
  return err.status === 0 ? 403 : err.status;
}

export function problemBody(err: MeshgateError, requestId: string): string {
  const status = httpStatus(err);
  return JSON.stringify({
    type: `https://meshgate.dev/errors#${err.code}`,
    title: err.title,
    status,
    code: err.code,
    reason: err.reason,
    ...(err.detail !== undefined && err.status !== 500 ? { detail: err.detail } : {}),
    requestId,
  });
}

/** Sends the local reply for `err` on an HTTP response (headers not yet sent). */
export function sendProblem(res: ServerResponse, err: MeshgateError, requestId: string, closeConnection = false): number {
  const status = httpStatus(err);
  const body = problemBody(err, requestId);
  const headers: Record<string, string | number> = {
    ...securityHeaders(),
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (status === 401) headers['www-authenticate'] = err.reason.startsWith('jwt') || err.reason === 'jwks_unavailable' ? `Bearer error="invalid_token"` : 'Bearer';
  if (closeConnection) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
  return Buffer.byteLength(body);
}

/** The same reply written raw on a socket (WebSocket upgrades, parser errors). */
export function sendProblemOnSocket(socket: Duplex, err: MeshgateError, requestId: string): number {
  const status = httpStatus(err);
  const body = problemBody(err, requestId);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    `x-request-id: ${requestId}`,
    'connection: close',
  ];
  if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
  return Buffer.byteLength(body);
}
