/**
 * WebSocket upgrades: the same pipeline (peer, hygiene, normalize, route,
 * authn, authz) decides; only then is the upgrade sent upstream with undici
 * and the two sockets spliced. One audit event is written when the tunnel
 * closes, with the bytes that crossed it.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { newEventId } from '../audit/event.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import { upstreamError } from './forward.ts';
import { finishRequest, requestInput, type HandlerDeps } from './handler.ts';
import { sendProblemOnSocket, toMeshgateError } from './reply.ts';
import { RequestState } from './state.ts';

const STRIP = new Set(['connection', 'upgrade', 'transfer-encoding', 'keep-alive']);

export function createUpgradeHandler(deps: HandlerDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const isWebSocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    const state = new RequestState(newEventId(), requestInput(req, deps, isWebSocket), Date.now(), process.hrtime.bigint());
    deps.inflight.count++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      deps.inflight.count--;
      finishRequest(deps, state);
    };
    const refuse = (e: unknown): void => {
      const err = toMeshgateError(e);
      state.error = err;
      state.status = err.status === 0 ? 403 : err.status;
      state.bytesOut = sendProblemOnSocket(socket, err, state.id);
      finish();
    };
    socket.on('error', () => socket.destroy());
    // CONNECT asks a proxy for a tunnel; a sidecar has none to give (RFC 9110 §9.3.6).
    if (req.method === 'CONNECT') { refuse(new MeshgateError(Errors.REQ_TARGET_FORM, 'CONNECT is not supported')); return; }
    if (!isWebSocket) { refuse(new MeshgateError(Errors.REQ_MALFORMED, 'only WebSocket upgrades are supported')); return; }
    // RFC 6455 §4.1: the handshake is a GET. Any other method would be
    // authorized as itself and then reach the upstream as a GET tunnel.
    if (req.method !== 'GET') { refuse(new MeshgateError(Errors.REQ_UPGRADE_METHOD)); return; }
    deps.admit(state).then(async () => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(state.upstreamHeaders ?? {})) if (!STRIP.has(k)) headers[k] = v;
      let up;
      try {
        up = await deps.upstream.pool.upgrade({
          path: state.query ? `${state.path}?${state.query}` : (state.path as string),
          method: 'GET', headers, protocol: 'websocket',
        });
      } catch (e) {
        throw upstreamError(e);
      }
      if (socket.destroyed) { up.socket.destroy(); state.status = 499; finish(); return; }
      const lines = ['HTTP/1.1 101 Switching Protocols', 'connection: Upgrade', 'upgrade: websocket'];
      for (const [k, v] of Object.entries(up.headers)) {
        if (v === undefined || STRIP.has(k)) continue;
        for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      state.status = 101;
      if (head.length > 0) up.socket.write(head);
      socket.on('data', (c: Buffer) => { state.bytesIn += c.length; });
      up.socket.on('data', (c: Buffer) => { state.bytesOut += c.length; });
      socket.pipe(up.socket);
      up.socket.pipe(socket);
      // A tunnel is re-judged while it lives: it ends when the token expires,
      // when a quarantine now covers its identity, and after idleMs of silence.
      const timers: NodeJS.Timeout[] = [];
      const close = (): void => { for (const t of timers) clearTimeout(t); socket.destroy(); up.socket.destroy(); finish(); };
      socket.once('close', close);
      up.socket.once('close', close);
      socket.once('error', close);
      up.socket.once('error', close);
      const exp = state.principal?.exp;
      if (exp !== undefined) timers.push(setTimeout(close, Math.max(0, exp * 1000 - Date.now())).unref());
      const recheck = deps.tunnelAllowed;
      if (recheck) {
        const iv = setInterval(() => { if (!recheck(state)) close(); }, 1000).unref();
        timers.push(iv);
      }
      if (deps.tunnelIdleMs) {
        (socket as Socket).setTimeout(deps.tunnelIdleMs, close);
        (up.socket as Socket).setTimeout(deps.tunnelIdleMs, close);
      }
    }).catch(refuse);
  };
}
