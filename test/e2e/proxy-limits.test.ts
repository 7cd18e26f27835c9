/**
 * Limits and timeouts on the client side of the listener: head size, header
 * count, body size (declared and streamed), slow heads and ambiguous framing.
 * Each refusal has its status, its reason, and its audit event.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { rawJson, rawStatus, startHarness, type Harness } from '../helpers/gateway.ts';

const MAX_BODY = 4096;
let h: Harness;
let alice: string;

before(async () => {
  h = await startHarness({ patch: (cfg) => ({ ...cfg, listen: { ...cfg.listen, maxBodyBytes: MAX_BODY } }) });
  alice = await h.pki.mintToken({ sub: 'alice' });
});
after(() => h.close());

/** Writes `head` over mTLS and reports what came back and whether the server closed the connection. */
function openRaw(head: string, giveUpMs: number): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: h.gateway.address.port, ...h.pki.tlsClientOptions() });
    let text = '';
    let gaveUp = false;
    const timer = setTimeout(() => { gaveUp = true; s.destroy(); }, giveUpMs);
    s.on('secureConnect', () => s.write(head));
    s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ text, closedByServer: !gaveUp }); });
  });
}

test('a 20 KB header is refused with 431 headers_too_large', async () => {
  const r = await h.request('/orders', { token: alice, headers: { 'x-big': 'a'.repeat(20_000) } });
  assert.equal(r.status, 431);
  assert.equal(r.json().reason, 'headers_too_large');
});

/** A GET head with exactly `fields` header fields (Host, Authorization and Connection included). */
function headWithFields(fields: number): string {
  let head = `GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${alice}\r\nConnection: close\r\n`;
  for (let i = 3; i < fields; i++) head += `x-h-${i}: v\r\n`;
  return `${head}\r\n`;
}

test('one header field more than listen.maxHeaders is refused with 431 too_many_headers', async () => {
  h.upstreamRequests.length = 0;
  const r = await openRaw(headWithFields(h.config.listen.maxHeaders + 1), 5000);
  assert.equal(rawStatus(r.text), 431);
  assert.equal(rawJson(r.text).reason, 'too_many_headers');
  assert.equal(h.upstreamRequests.length, 0);
});

test('many more header fields than listen.maxHeaders (but a small head) is still 431 too_many_headers', async () => {
  const r = await openRaw(headWithFields(h.config.listen.maxHeaders * 3), 5000);
  assert.equal(rawStatus(r.text), 431);
  assert.equal(rawJson(r.text).reason, 'too_many_headers');
});

test('exactly listen.maxHeaders header fields are accepted', async () => {
  const r = await openRaw(headWithFields(h.config.listen.maxHeaders), 5000);
  assert.equal(rawStatus(r.text), 200);
});

test('a body with a Content-Length over maxBodyBytes is refused with 413 body_too_large before the upstream sees it', async () => {
  h.upstreamRequests.length = 0;
  const r = await h.request('/upload', { token: alice, method: 'POST', body: Buffer.alloc(MAX_BODY + 1, 0x61) });
  assert.equal(r.status, 413);
  assert.equal(r.json().reason, 'body_too_large');
  assert.equal(h.upstreamRequests.length, 0);
});

test('a body of exactly maxBodyBytes is forwarded', async () => {
  const r = await h.request('/upload', { token: alice, method: 'POST', body: Buffer.alloc(MAX_BODY, 0x61) });
  assert.equal(r.status, 200);
});

test('a chunked body (no Content-Length) that grows past maxBodyBytes is answered 413 body_too_large', async () => {
  let sent = 0;
  const body = new Readable({
    read() {
      // Never ends on its own: only the gateway's limit can stop this upload.
      if (sent > MAX_BODY * 64) { this.push(null); return; }
      sent += 1024;
      this.push(Buffer.alloc(1024, 0x62));
    },
  });
  const r = await request(h.url('/upload'), {
    dispatcher: h.dispatcher(), method: 'POST', body,
    headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' },
  });
  const text = await r.body.text();
  assert.equal(r.statusCode, 413);
  assert.equal(JSON.parse(text).reason, 'body_too_large');
});

test('a request head that never completes is closed with 408 request_timeout after listen.headersTimeout', async () => {
  const r = await openRaw('GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n', h.config.listen.headersTimeout + 8000);
  assert.equal(r.closedByServer, true, 'the gateway closed the connection');
  assert.equal(rawStatus(r.text), 408);
  assert.equal(rawJson(r.text).reason, 'request_timeout');
});

const AMBIGUOUS: readonly { name: string; framing: string }[] = [
  { name: 'Content-Length together with Transfer-Encoding', framing: 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n' },
  { name: 'Transfer-Encoding together with Content-Length', framing: 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n' },
  { name: 'two different Content-Length values', framing: 'Content-Length: 5\r\nContent-Length: 6\r\n' },
  { name: 'a Transfer-Encoding whose final coding is not chunked', framing: 'Transfer-Encoding: gzip\r\n' },
];

for (const c of AMBIGUOUS) {
  test(`${c.name} is refused with one 400 ambiguous_body_length and nothing reaches the upstream`, async () => {
    h.upstreamRequests.length = 0;
    const head = `POST /upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${alice}\r\n${c.framing}\r\n0\r\n\r\n`;
    const r = await openRaw(head, 5000);
    assert.equal(rawStatus(r.text), 400);
    assert.equal(rawJson(r.text).reason, 'ambiguous_body_length');
    assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response on the connection');
    assert.equal(h.upstreamRequests.length, 0);
  });
}

test('a malformed chunk in the body of an admitted request closes the connection and is audited once', async () => {
  const head = `POST /upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${alice}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ-not-hex\r\n`;
  const r = await openRaw(head, 5000);
  assert.equal(r.closedByServer, true);
  assert.doesNotMatch(r.text, /^HTTP\/1\.1 200/);
});

test('every refusal above is audited with its reason and status', async () => {
  await h.gateway.stop();
  const events = await h.auditEvents();
  const byReason = (reason: string) => events.filter((e) => e.reason === reason);
  for (const [reason, status] of [['headers_too_large', 431], ['too_many_headers', 431], ['body_too_large', 413], ['request_timeout', 408], ['ambiguous_body_length', 400]] as const) {
    const found = byReason(reason);
    assert.ok(found.length >= 1, `an audit event with reason ${reason}`);
    for (const e of found) {
      assert.equal(e.status, status, `${reason} is audited with status ${status}`);
      assert.equal(e.decision, 'deny');
    }
  }
  // Declared and streamed oversize bodies are one event each; one per framing case.
  assert.equal(byReason('body_too_large').length, 2);
  assert.equal(byReason('ambiguous_body_length').length, AMBIGUOUS.length);
  assert.equal(byReason('too_many_headers').length, 2);
  const chunk = events.filter((e) => e.path === '/upload' && e.decision === 'deny' && e.reason !== 'body_too_large' && e.reason !== 'ambiguous_body_length');
  assert.equal(chunk.length, 1, `one event for the malformed chunk, got ${JSON.stringify(chunk.map((e) => e.reason))}`);
});
