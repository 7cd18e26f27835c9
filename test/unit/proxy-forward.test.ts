import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Upstream } from '../../src/proxy/forward.ts';
import type { RequestState } from '../../src/proxy/state.ts';

/** A client response whose bytes never leave the process: the client stopped reading and the socket's buffers are full. */
class StuckResponse extends Writable {
  headersSent = false;
  statusCode = 0;
  constructor() { super({ highWaterMark: 16 * 1024 }); }
  writeHead(status: number): this { this.headersSent = true; this.statusCode = status; return this; }
  override _write(_c: Buffer, _e: BufferEncoding, _cb: () => void): void { /* never flushed */ }
}

let server: Server;
let upstream: Upstream;
before(async () => {
  server = createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-length': 4096 }); res.end(Buffer.alloc(4096)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  upstream = new Upstream({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: 2, responseTimeout: 2000, bodyTimeout: 2000, connectTimeout: 2000 } as never, 1_000_000);
});
after(async () => { await upstream.close(); server.close(); });

function state(): RequestState {
  return { id: 'req-1', upstreamHeaders: {}, path: '/x', query: undefined, input: { method: 'GET' }, status: 0, bytesOut: 0, bytesIn: 0, error: undefined } as unknown as RequestState;
}

test('a response is settled only once the client has it; a client that leaves with the end undelivered is recorded as client_closed_request', async () => {
  const res = new StuckResponse();
  const s = state();
  let settled = 'pending';
  const p = upstream.forward(s, { headers: {} } as IncomingMessage, res as unknown as ServerResponse)
    .then(() => { settled = 'resolved'; }, (e: { reason?: string }) => { settled = `rejected ${e.reason}`; });
  // The upstream is done long before this; the client has not taken the bytes.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.status, 200);
  assert.equal(settled, 'pending', 'not audited as delivered while the tail is still buffered');
  res.destroy();
  await p;
  assert.equal(settled, 'resolved');
  assert.equal(s.error?.reason, 'client_closed_request');
});
