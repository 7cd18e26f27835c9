/**
 * The upstream side: a service that is down or too slow gets the right
 * gateway error, and large bodies stream through in both directions without
 * being buffered (the upstream, the gateway and the client share this
 * process, so its RSS bounds all three).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { request } from 'undici';
import { startHarness, type Harness } from '../helpers/gateway.ts';

const MB = 1024 * 1024;
const TOTAL = 100 * MB;
const CHUNK = 64 * 1024;
const MAX_RSS_GROWTH = 64 * MB;

/** A 100 MB body made chunk by chunk (never held whole), hashed as it is produced. */
function generatedBody(total: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  const seed = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) seed[i] = (i * 31 + 7) & 0xff;
  let sent = 0;
  let n = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) { this.push(null); return; }
      const chunk = Buffer.from(seed.subarray(0, Math.min(CHUNK, total - sent)));
      chunk.writeUInt32BE(n++, 0);
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

// V8 frees Buffers' memory lazily: even a plain client→server upload in one
// process shows ~80 MB of collectable garbage before a GC gets to it, and
// malloc keeps what it grew to. "Flat memory" means nothing is *retained*, so
// each sample follows a young-generation GC (~1 ms; most streamed chunks die
// young) and every tenth a full one (chunks that sat in a stream buffer long
// enough to be promoted). A proxy that buffers the body still fails: holding
// the chunks of a 100 MB upload shows ~110 MB here.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;

/** Peak RSS growth over the baseline while `work` runs, sampled after a GC every 20 ms. */
async function rssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  let samples = 0;
  const retained = (): number => { gc({ type: samples++ % 10 === 0 ? 'major' : 'minor' }); return process.memoryUsage.rss(); };
  const base = retained();
  let peak = base;
  const timer = setInterval(() => { peak = Math.max(peak, retained()); }, 20);
  try {
    const result = await work();
    return { result, growth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

describe('upstream down', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ upstream: false }); });
  after(() => h.close());

  test('a request to a service that is not listening gets 502 upstream_unavailable', async () => {
    const r = await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) });
    assert.equal(r.status, 502);
    assert.equal(r.json().reason, 'upstream_unavailable');
    assert.equal(r.headers['content-type'], 'application/problem+json');
  });

  test('the 502 is audited as a deny with reason upstream_unavailable after an allow decision', async () => {
    await h.gateway.stop();
    const ev = (await h.auditEvents()).filter((e) => e.path === '/orders');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.status, 502);
    assert.equal(ev[0]?.reason, 'upstream_unavailable');
    assert.equal(ev[0]?.decision, 'deny');
  });
});

describe('upstream slow and streaming', () => {
  let h: Harness;
  let alice: string;
  before(async () => {
    h = await startHarness();
    alice = await h.pki.mintToken({ sub: 'alice', ttlSeconds: 600 });
  });
  after(() => h.close());

  test('a service slower than upstream.responseTimeout gets 504 upstream_timeout', async () => {
    const timers: NodeJS.Timeout[] = [];
    h.setUpstream((req, res) => {
      req.resume();
      timers.push(setTimeout(() => { if (!res.destroyed) res.end('late'); }, h.config.upstream.responseTimeout + 500));
    });
    try {
      const r = await h.request('/slow', { token: alice });
      assert.equal(r.status, 504);
      assert.equal(r.json().reason, 'upstream_timeout');
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  });

  test('a 100 MB upload streams through to the service with flat memory and identical bytes', async (t) => {
    let received: Promise<{ bytes: number; sha256: string }> | undefined;
    h.setUpstream((req, res) => {
      received = (async () => {
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const c of req as AsyncIterable<Buffer>) { bytes += c.length; hash.update(c); }
        const out = { bytes, sha256: hash.digest('hex') };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
        return out;
      })();
    });
    const body = generatedBody(TOTAL);
    const { result, growth } = await rssGrowth(async () => {
      const r = await request(h.url('/upload'), {
        dispatcher: h.dispatcher(), method: 'POST', body: body.stream,
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' },
      });
      return { status: r.statusCode, json: (await r.body.json()) as { bytes: number; sha256: string } };
    });
    assert.equal(result.status, 200);
    assert.ok(received, 'the service saw the upload');
    const seen = await received;
    assert.equal(seen.bytes, TOTAL);
    assert.equal(seen.sha256, body.digest());
    assert.deepEqual(result.json, seen);
    t.diagnostic(`RSS growth after GC: ${(growth / MB).toFixed(1)} MB`);
    assert.ok(growth < MAX_RSS_GROWTH, `RSS grew ${(growth / MB).toFixed(1)} MB during a ${TOTAL / MB} MB upload`);
  });

  test('a 100 MB download streams through to the client with flat memory and identical bytes', async (t) => {
    let sentDigest: (() => string) | undefined;
    h.setUpstream((req, res) => {
      req.resume();
      const body = generatedBody(TOTAL);
      sentDigest = body.digest;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': TOTAL });
      body.stream.pipe(res);
    });
    const { result, growth } = await rssGrowth(async () => {
      const r = await request(h.url('/download'), { dispatcher: h.dispatcher(), headers: { authorization: `Bearer ${alice}` } });
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const c of r.body as AsyncIterable<Buffer>) { bytes += c.length; hash.update(c); }
      return { status: r.statusCode, length: r.headers['content-length'], bytes, sha256: hash.digest('hex') };
    });
    assert.equal(result.status, 200);
    assert.equal(result.length, String(TOTAL));
    assert.equal(result.bytes, TOTAL);
    assert.ok(sentDigest);
    assert.equal(result.sha256, sentDigest());
    t.diagnostic(`RSS growth after GC: ${(growth / MB).toFixed(1)} MB`);
    assert.ok(growth < MAX_RSS_GROWTH, `RSS grew ${(growth / MB).toFixed(1)} MB during a ${TOTAL / MB} MB download`);
  });

  test('the audit events carry the byte counts of both transfers', async () => {
    await h.gateway.stop();
    const events = await h.auditEvents();
    const up = events.find((e) => e.path === '/upload');
    const down = events.find((e) => e.path === '/download');
    assert.equal(up?.bytesIn, TOTAL);
    assert.equal(up?.status, 200);
    assert.equal(down?.bytesOut, TOTAL);
    assert.equal(down?.status, 200);
    const slow = events.find((e) => e.path === '/slow');
    assert.equal(slow?.reason, 'upstream_timeout');
    assert.equal(slow?.status, 504);
  });
});

describe('failures in the middle of a response', () => {
  let h: Harness;
  let alice: string;
  before(async () => {
    h = await startHarness();
    alice = await h.pki.mintToken({ sub: 'alice', ttlSeconds: 600 });
  });
  after(() => h.close());

  test('a client that disconnects mid-download makes meshgate abort the upstream request', { timeout: 15_000 }, async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => { upstreamClosed = r; });
    const timers: NodeJS.Timeout[] = [];
    h.setUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Endless body: only an abort from meshgate ends this response.
      const tick = (): void => { if (!res.destroyed) { res.write(Buffer.alloc(16 * 1024)); timers.push(setTimeout(tick, 5)); } };
      tick();
      res.on('close', () => upstreamClosed());
    });
    try {
      const r = await request(h.url('/orders/endless'), { dispatcher: h.dispatcher(), headers: { authorization: `Bearer ${alice}` } });
      assert.equal(r.statusCode, 200);
      let got = 0;
      for await (const c of r.body) {
        got += (c as Buffer).length;
        if (got > 64 * 1024) break; // leaves the loop: undici destroys the response stream
      }
      await closed;
    } finally {
      for (const t of timers) clearTimeout(t);
    }
    const ev = (await h.auditEvents()).filter((e) => e.path === '/orders/endless');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.status, 200, 'the upstream status is what was sent');
    assert.equal(ev[0]?.reason, 'client_closed_request');
    assert.ok((ev[0]?.bytesOut ?? 0) > 64 * 1024, `bytesOut ${ev[0]?.bytesOut}`);
  });

  test('a service that dies mid-body cuts the client response off instead of ending it cleanly, and is audited', { timeout: 15_000 }, async () => {
    h.setUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
      res.write('x'.repeat(1000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const r = await request(h.url('/orders/dies'), { dispatcher: h.dispatcher(), headers: { authorization: `Bearer ${alice}` } });
    assert.equal(r.statusCode, 200);
    await assert.rejects(r.body.text(), 'a truncated body must not look complete');
    const ev = (await h.auditEvents()).filter((e) => e.path === '/orders/dies');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.status, 200);
    assert.match(String(ev[0]?.reason), /^upstream_/);
    assert.equal(ev[0]?.bytesOut, 1000);
  });

  test('the client sees one x-request-id, the audited one, even when the service sends its own', async () => {
    h.setUpstream((req, res) => { req.resume(); res.writeHead(200, { 'x-request-id': 'chosen-by-the-service', 'content-length': 2 }); res.end('ok'); });
    const r = await request(h.url('/orders/rid'), { dispatcher: h.dispatcher(), headers: { authorization: `Bearer ${alice}` } });
    await r.body.text();
    const ev = (await h.auditEvents()).filter((e) => e.path === '/orders/rid');
    assert.equal(ev.length, 1);
    assert.equal(r.headers['x-request-id'], ev[0]?.id);
  });
});
