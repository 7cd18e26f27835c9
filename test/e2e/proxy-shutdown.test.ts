/**
 * Graceful shutdown: `gateway.stop()` reports not-ready, refuses new
 * connections, lets in-flight requests finish, and loses no audit event.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { rawStatus, startHarness } from '../helpers/gateway.ts';

const SLOW_MS = 500;

test('stop() lets an in-flight request finish with 200 while /readyz says 503 draining and new connections are refused', async () => {
  const h = await startHarness();
  try {
    const alice = await h.pki.mintToken({ sub: 'alice' });
    let arrived!: () => void;
    const inUpstream = new Promise<void>((r) => { arrived = r; });
    h.setUpstream((req, res) => {
      req.resume();
      arrived();
      setTimeout(() => res.end('finished'), SLOW_MS);
    });
    const inflight = h.request('/slow', { token: alice });
    await inUpstream;
    const port = h.gateway.address.port;
    const stopping = h.gateway.stop();

    const ready = await request(h.adminUrl('/readyz'));
    const detail = (await ready.body.json()) as { status: string; draining: boolean; ready: boolean };
    assert.equal(ready.statusCode, 503);
    assert.equal(detail.status, 'not ready');
    assert.equal(detail.draining, true);

    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, ...h.pki.tlsClientOptions() });
      s.on('secureConnect', () => { s.destroy(); resolve('connected'); });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');

    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.text, 'finished');
    await stopping;

    const events = await h.auditEvents();
    const slow = events.filter((e) => e.path === '/slow');
    assert.equal(slow.length, 1, 'the drained request was audited before the log closed');
    assert.equal(slow[0]?.status, 200);
    assert.equal(slow[0]?.reason, 'allowed');
  } finally {
    await h.close();
  }
});

test('a keep-alive connection carrying a request when stop() starts is closed after that response, not reused', async () => {
  const h = await startHarness();
  try {
    const alice = await h.pki.mintToken({ sub: 'alice' });
    let arrived!: () => void;
    const inUpstream = new Promise<void>((r) => { arrived = r; });
    h.setUpstream((req, res) => {
      req.resume();
      arrived();
      setTimeout(() => res.end('finished'), SLOW_MS);
    });
    const s = connect({ host: '127.0.0.1', port: h.gateway.address.port, ...h.pki.tlsClientOptions() });
    let text = '';
    s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    s.on('error', () => {});
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.write(`GET /slow HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${alice}\r\n\r\n`);
    await inUpstream;
    const stopping = h.gateway.stop();
    await closed;
    await stopping;
    assert.equal(rawStatus(text), 200);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.match(text, /finished$/);
  } finally {
    await h.close();
  }
});

/** Rejects if `p` has not settled after `ms`: a hung stop() must fail the test, not the run. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

test('a request still running at listen.drainTimeout is cut off, and its audit event is still written', async () => {
  const h = await startHarness({ patch: (cfg) => ({ ...cfg, upstream: { ...cfg.upstream, responseTimeout: '30s' } }) });
  const timers: NodeJS.Timeout[] = [];
  try {
    const alice = await h.pki.mintToken({ sub: 'alice' });
    let arrived!: () => void;
    const inUpstream = new Promise<void>((r) => { arrived = r; });
    h.setUpstream((req, res) => {
      req.resume();
      arrived();
      timers.push(setTimeout(() => { if (!res.destroyed) res.end('too late'); }, 20_000));
    });
    const inflight = h.request('/slow', { token: alice }).then((r) => r.status, (e: Error) => e.name);
    await inUpstream;
    await within(h.gateway.stop(), h.config.listen.drainTimeout + 5000, 'stop()');
    assert.notEqual(await inflight, 200);
    const events = (await h.auditEvents()).filter((e) => e.path === '/slow');
    assert.equal(events.length, 1, 'the cut-off request was audited before the log closed');
    assert.equal(events[0]?.decision, 'deny');
    assert.equal(events[0]?.reason, 'client_closed_request');
  } finally {
    for (const t of timers) clearTimeout(t);
    await h.close();
  }
});

test('an open WebSocket tunnel does not hold stop() past listen.drainTimeout: it is closed and audited with status 101', { timeout: 20_000 }, async () => {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(d)));
  const h = await startHarness({ upstreamUpgrade: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)) });
  let ws: WebSocket | undefined;
  try {
    const alice = await h.pki.mintToken({ sub: 'alice' });
    ws = new WebSocket(h.url('/ws').replace(/^https:/, 'wss:'), { ...h.pki.tlsClientOptions(), headers: { authorization: `Bearer ${alice}` } });
    ws.on('error', () => {});
    const client = ws;
    await new Promise<void>((resolve, reject) => { client.once('open', () => resolve()); client.once('unexpected-response', () => reject(new Error('upgrade refused'))); });
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    await within(h.gateway.stop(), h.config.listen.drainTimeout + 5000, 'stop() with an open WebSocket');
    await within(clientClosed, 2000, 'the client seeing the tunnel close');
    const events = (await h.auditEvents()).filter((e) => e.path === '/ws');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.status, 101);
    assert.equal(events[0]?.reason, 'allowed');
  } finally {
    // If the gateway failed to end the tunnel, end it here so close() cannot hang too.
    ws?.terminate();
    await h.close();
    await new Promise((r) => wss.close(r));
  }
});
