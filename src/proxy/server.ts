/**
 * The client-facing mTLS listener (HTTP/1.1 today; the pipeline does not
 * depend on the HTTP version, so HTTP/2 is a listener change).
 *
 * TLS-level refusals (no/untrusted/expired/revoked certificate) never reach
 * HTTP: they are audited as `tls_handshake` events. Parser-level refusals
 * (oversized head, slow headers) get our problem+json reply and an audit
 * event too, so nothing the listener refuses goes unrecorded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import { newEventId } from '../audit/event.ts';
import type { TlsMaterialStore } from '../tls/material.ts';
import { tlsVerifyError } from '../tls/peer.ts';
import { handshakeAuditEvent } from './audit-record.ts';
import type { AuditSink, HandlerDeps } from './handler.ts';
import { createRequestHandler } from './handler.ts';
import { sendProblemOnSocket } from './reply.ts';
import { createUpgradeHandler } from './upgrade.ts';

export interface ListenerDeps extends HandlerDeps {
  readonly material: TlsMaterialStore;
  readonly audit: AuditSink;
  readonly onHandshakeFailure: (reason: string) => void;
}

function clientErrorSpec(code: string | undefined): typeof Errors.REQ_MALFORMED {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return Errors.REQ_HEADERS_TOO_LARGE;
    case 'ERR_HTTP_REQUEST_TIMEOUT': return Errors.REQ_TIMEOUT;
    // llhttp refuses CL+TE, duplicate/invalid Content-Length and a non-final
    // chunked before the pipeline's own framing check can see them (RFC 9112 §6.3).
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH': return Errors.REQ_AMBIGUOUS_LENGTH;
    default: return Errors.REQ_MALFORMED;
  }
}

export function createListener(cfg: Config, deps: ListenerDeps): Server {
  const { listen } = cfg;
  const strict = cfg.tls.mode === 'strict';
  const server = createServer({
    ...deps.material.current.options,
    requestCert: true,
    // Verification failures are enforced in 'secureConnection' below rather
    // than by OpenSSL aborting the handshake: when Node aborts it, the cause,
    // the source address and the certificate are gone and the refusal could
    // only be audited as a bare ECONNRESET. Both modes refuse a bad
    // certificate; strict mode also refuses a missing one.
    rejectUnauthorized: false,
    maxHeaderSize: listen.maxHeaderBytes,
    headersTimeout: listen.headersTimeout,
    requestTimeout: listen.requestTimeout,
    keepAliveTimeout: listen.idleTimeout,
    // How often Node checks headersTimeout/requestTimeout (default 30 s would let slow-loris clients linger).
    connectionsCheckingInterval: Math.min(1000, listen.headersTimeout),
    // Nagle off: responses are small and latency matters more than packets.
    noDelay: true,
  });
  // No count limit in the parser: Node 24 reports too many fields as the same
  // HPE_HEADER_OVERFLOW as an oversized head, so the pipeline counts instead
  // (431 too_many_headers). maxHeaderSize still bounds the count.
  server.maxHeadersCount = 0;
  deps.material.onChange((m) => server.setSecureContext(m.options));

  const auditHandshake = (err: MeshgateError, socket: TLSSocket | Socket, code: string, fingerprint?: string): void => {
    deps.onHandshakeFailure(err.reason);
    deps.audit.append(handshakeAuditEvent(newEventId(), { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }, err, fingerprint, code));
  };

  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: TLSSocket) => {
    const code = e.code ?? 'ERR_TLS';
    // Clients that connect and leave without a handshake (health checks, port
    // scans) are not worth an event each.
    if (code === 'ECONNRESET') return;
    const openssl = (e as { reason?: string }).reason ?? '';
    const mapped = /certificate required|peer did not return a certificate/i.test(openssl + e.message) ? new MeshgateError(Errors.TLS_NO_PEER_CERT, code) : tlsVerifyError(verifyCode(e));
    auditHandshake(mapped, socket, code);
  });

  // Prepended so it runs before the HTTP layer attaches to the socket.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    // Renegotiation could swap the peer certificate under a memoized identity.
    socket.disableRenegotiation();
    if (socket.authorized) return;
    const cert = socket.getPeerX509Certificate();
    if (cert) {
      const code = String(socket.authorizationError ?? 'unauthorized');
      auditHandshake(tlsVerifyError(code), socket, code, createHash('sha256').update(cert.raw).digest('hex'));
      socket.destroy();
    } else if (strict) {
      auditHandshake(new MeshgateError(Errors.TLS_NO_PEER_CERT), socket, 'no_peer_certificate');
      socket.destroy();
    }
  });

  // The response in flight on each connection (HTTP/1.1 handles one at a time).
  const inflight = new WeakMap<Duplex, ServerResponse>();

  server.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => {
    if (e.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    const current = inflight.get(socket);
    if (current) {
      // llhttp hands a request to the handler and only then fails on its body
      // (a non-chunked Transfer-Encoding, a malformed chunk). That exchange
      // already owns the reply and the one audit event: a second response here
      // would double both. The pipeline's synchronous refusals are written by
      // the next turn; anything still open cannot continue on this stream.
      setImmediate(() => { if (!current.writableEnded) socket.destroy(); });
      return;
    }
    const err = new MeshgateError(clientErrorSpec(e.code));
    const id = newEventId();
    sendProblemOnSocket(socket, err, id);
    const s = socket as Socket;
    deps.metrics.request('', 'deny', err.reason, err.status, 0);
    deps.audit.append({
      ...handshakeAuditEvent(id, { ip: s.remoteAddress ?? '', port: s.remotePort ?? 0 }, err, undefined, e.code ?? 'parse_error'),
      type: 'request', status: err.status, tls: undefined,
    });
  });

  const handle = createRequestHandler(deps);
  const drain = { draining: false, open: new Set<ServerResponse>(), tunnels: new Set<Duplex>() };
  draining.set(server, drain);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inflight.set(socket, res);
    drain.open.add(res);
    if (drain.draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      drain.open.delete(res);
      if (inflight.get(socket) === res) inflight.delete(socket);
    });
    handle(req, res);
  });
  const upgrade = createUpgradeHandler(deps);
  // CONNECT would otherwise be dropped by Node without a reply or an audit event.
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(req, socket, head));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Upgraded sockets leave Node's connection tracking: closeAllConnections() cannot end them.
    drain.tunnels.add(socket);
    socket.once('close', () => drain.tunnels.delete(socket));
    upgrade(req, socket, head);
  });
  return server;
}

const draining = new WeakMap<NetServer, { draining: boolean; open: Set<ServerResponse>; tunnels: Set<Duplex> }>();

/**
 * Shutdown has begun: every response not yet started, and every request
 * still arriving on an open connection, is answered with `Connection: close`
 * (RFC 9112 §9.6), so no client reuses a connection that is about to go.
 */
export function startDraining(server: NetServer): void {
  const d = draining.get(server);
  if (!d) return;
  d.draining = true;
  for (const res of d.open) if (!res.headersSent) res.shouldKeepAlive = false;
}

/** Ends every upgraded (WebSocket) connection: they would otherwise keep `server.close()` waiting forever. */
export function closeTunnels(server: NetServer): void {
  for (const socket of draining.get(server)?.tunnels ?? []) socket.destroy();
}

/** The OpenSSL verify code hidden in a handshake error, if any. */
function verifyCode(e: NodeJS.ErrnoException): string | undefined {
  const text = `${(e as { reason?: string }).reason ?? ''} ${e.message}`.toLowerCase();
  if (text.includes('certificate revoked')) return 'CERT_REVOKED';
  if (text.includes('certificate expired') || text.includes('expired')) return 'CERT_HAS_EXPIRED';
  if (text.includes('unknown ca') || text.includes('unable to get local issuer') || text.includes('self-signed') || text.includes('self signed')) return 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
  if (text.includes('bad certificate') || text.includes('unsupported certificate')) return 'CERT_REJECTED';
  return e.code;
}
