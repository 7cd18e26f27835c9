import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Alert } from '../../src/analyzer/types.ts';
import { WebhookSink, type WebhookPayload } from '../../src/analyzer/sinks/webhook-sink.ts';

function alert(i: number): Alert {
  return {
    v: 1, id: `al-${i}`, rule: 'brute', severity: 'high', title: 'Brute force', scope: 'sub', value: 'mallory',
    firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-01T00:00:09.000Z', count: 6, evidence: [`e-${i}`], summary: '6 failures',
  };
}

interface Hit {
  headers: http.IncomingHttpHeaders;
  body: WebhookPayload;
  url: string;
}

/** A webhook receiver on 127.0.0.1:0; `respond` decides each reply (return false to never answer). */
async function receiver(t: { after: (fn: () => Promise<void>) => void }, respond: (hit: Hit, n: number, res: http.ServerResponse) => boolean | void) {
  const hits: Hit[] = [];
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as WebhookPayload, url: req.url ?? '' };
      hits.push(hit);
      open.add(res);
      res.on('close', () => open.delete(res));
      if (respond(hit, hits.length, res) === false) return;
      if (!res.headersSent) res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const r of open) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { hits, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/S3CRET-PATH`, open };
}

test('each alert is POSTed as {v, type, alert} JSON with its id header and the configured headers', async (t) => {
  const r = await receiver(t, (_h, _n, res) => { res.statusCode = 204; });
  const sink = new WebhookSink({ url: r.url, timeoutMs: 2000, maxQueue: 10, headers: { authorization: 'Bearer hook-token', 'x-team': 'sec' } });
  sink.emit(alert(1));
  sink.emit(alert(2));
  await sink.flush();
  assert.equal(r.hits.length, 2);
  const h = r.hits[0] as Hit;
  assert.deepEqual(h.body, { v: 1, type: 'alert', alert: alert(1) });
  assert.equal(h.headers['content-type'], 'application/json');
  assert.equal(h.headers['x-meshgate-alert-id'], 'al-1');
  assert.equal(h.headers.authorization, 'Bearer hook-token');
  assert.equal(h.headers['x-team'], 'sec');
  assert.equal(h.url, '/hooks/S3CRET-PATH');
  assert.deepEqual(sink.stats(), { emitted: 2, delivered: 2, failed: 0, dropped: 0, queued: 0 });
  await sink.close();
});

test('5xx and 429 replies are retried with backoff until delivered', async (t) => {
  const r = await receiver(t, (_h, n, res) => { res.statusCode = n === 1 ? 503 : n === 2 ? 429 : 200; });
  const sink = new WebhookSink({ url: r.url, timeoutMs: 2000, maxQueue: 10, retryBaseMs: 5, retryMaxMs: 20 });
  sink.emit(alert(1));
  await sink.flush();
  assert.equal(r.hits.length, 3);
  assert.ok(r.hits.every((h) => h.body.alert.id === 'al-1'));
  assert.equal(sink.stats().delivered, 1);
  assert.equal(sink.stats().failed, 0);
});

test('a 4xx reply other than 408/425/429 is a permanent failure and not retried', async (t) => {
  const r = await receiver(t, (_h, _n, res) => { res.statusCode = 400; });
  const sink = new WebhookSink({ url: r.url, timeoutMs: 2000, maxQueue: 10, retryBaseMs: 1 });
  sink.emit(alert(1));
  await sink.flush();
  assert.equal(r.hits.length, 1);
  assert.equal(sink.stats().failed, 1);
});

test('a receiver that never answers times out; attempts are bounded and the failure counted', async (t) => {
  const r = await receiver(t, () => false);
  const sink = new WebhookSink({ url: r.url, timeoutMs: 100, maxQueue: 10, maxAttempts: 2, retryBaseMs: 1 });
  sink.emit(alert(1));
  await sink.flush();
  assert.equal(r.hits.length, 2);
  assert.deepEqual(sink.stats(), { emitted: 1, delivered: 0, failed: 1, dropped: 0, queued: 0 });
});

test('the queue is bounded: the oldest queued alerts are dropped and counted, emit never waits', async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => { release = r; });
  const r = await receiver(t, (_h, n, res) => {
    if (n > 1) return;
    void gate.then(() => res.end());
    return false;
  });
  const sink = new WebhookSink({ url: r.url, timeoutMs: 5000, maxQueue: 3, retryBaseMs: 1 });
  sink.emit(alert(0)); // in flight, held by the receiver
  while (r.hits.length === 0) await new Promise((res) => setTimeout(res, 5));
  for (let i = 1; i <= 6; i++) sink.emit(alert(i)); // returns at once each time
  assert.equal(sink.stats().queued, 3);
  assert.equal(sink.stats().dropped, 3);
  release();
  await sink.flush();
  assert.deepEqual(r.hits.map((h) => h.body.alert.id), ['al-0', 'al-4', 'al-5', 'al-6']);
  assert.equal(sink.stats().delivered, 4);
});

test('an unreachable webhook fails after its retries, and the secret URL path and headers never reach the log', async (t) => {
  // Reserve a port and close it again: connections are refused.
  const s = http.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }));
  const sink = new WebhookSink({ url: `http://127.0.0.1:${port}/hooks/S3CRET-PATH?token=abc`, timeoutMs: 500, maxQueue: 10, maxAttempts: 3, retryBaseMs: 1, headers: { authorization: 'Bearer hook-token' }, logger });
  sink.emit(alert(1));
  await sink.flush();
  assert.equal(sink.stats().failed, 1);
  const log = lines.join('');
  assert.match(log, /webhook delivery failed after retries/);
  assert.match(log, new RegExp(`http://127.0.0.1:${port}`));
  assert.doesNotMatch(log, /S3CRET|token=abc|hook-token/);
  t.after(() => sink.close());
});

test('close abandons what cannot be delivered within the grace period and counts it as dropped', async (t) => {
  const r = await receiver(t, () => false);
  const sink = new WebhookSink({ url: r.url, timeoutMs: 10_000, maxQueue: 10 });
  sink.emit(alert(1));
  sink.emit(alert(2));
  while (r.hits.length === 0) await new Promise((res) => setTimeout(res, 5));
  await sink.close(20);
  const st = sink.stats();
  assert.equal(st.delivered, 0);
  assert.equal(st.dropped, 2);
  sink.emit(alert(3));
  assert.equal(sink.stats().dropped, 3, 'alerts after close are dropped');
});
