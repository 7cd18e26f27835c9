import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { hasAmbiguousFraming, HOP_BY_HOP_HEADERS, sanitizeRequestHeaders } from '../../src/http/hygiene.ts';

const strict = { keepForwarded: false } as const;

describe('sanitizeRequestHeaders', () => {
  it('spoofed XFCC, x-meshgate-* and x-forwarded-for headers are removed and reported', () => {
    const headers: IncomingHttpHeaders = {
      host: 'orders.mesh.local',
      accept: 'application/json',
      'x-forwarded-client-cert': 'By=spiffe://mesh.local/admin;Hash=00',
      'x-meshgate-principal': 'admin',
      'x-meshgate-claim-role': 'root',
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-proto': 'https',
      forwarded: 'for=10.0.0.1',
      'x-real-ip': '10.0.0.1',
      'x-envoy-internal': 'true',
    };
    const { upstream, removed } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream, { host: 'orders.mesh.local', accept: 'application/json' });
    assert.deepEqual(
      [...removed].sort(),
      ['forwarded', 'x-envoy-internal', 'x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-proto', 'x-meshgate-claim-role', 'x-meshgate-principal', 'x-real-ip'],
    );
  });

  it('keepForwarded keeps x-forwarded-* and forwarded but still removes XFCC and x-meshgate-*', () => {
    const headers: IncomingHttpHeaders = {
      'x-forwarded-for': '10.0.0.1',
      forwarded: 'for=10.0.0.1',
      'x-envoy-attempt-count': '1',
      'x-forwarded-client-cert': 'spoof',
      'x-meshgate-peer': 'spoof',
    };
    const { upstream, removed } = sanitizeRequestHeaders(headers, { keepForwarded: true });
    assert.deepEqual(upstream, { 'x-forwarded-for': '10.0.0.1', forwarded: 'for=10.0.0.1', 'x-envoy-attempt-count': '1' });
    assert.deepEqual([...removed].sort(), ['x-forwarded-client-cert', 'x-meshgate-peer']);
  });

  it('every hop-by-hop header is removed', () => {
    const headers: IncomingHttpHeaders = { host: 'h' };
    for (const name of HOP_BY_HOP_HEADERS) headers[name] = 'x';
    const { upstream, removed } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream, { host: 'h' });
    assert.deepEqual([...removed].sort(), [...HOP_BY_HOP_HEADERS].sort());
  });

  it('headers named in Connection are removed, case-insensitively and across joined values', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'keep-alive, X-Custom-Hop,  x-other ,, Authorization',
      'x-custom-hop': '1',
      'x-other': '2',
      authorization: 'Bearer secret',
      accept: '*/*',
    };
    const { upstream, removed } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream, { accept: '*/*' });
    assert.deepEqual([...removed].sort(), ['authorization', 'connection', 'x-custom-hop', 'x-other']);
  });

  it('a Connection header only removes: the input headers stay untouched for the JWT stage', () => {
    const headers: IncomingHttpHeaders = { connection: 'authorization', authorization: 'Bearer secret' };
    const before = structuredClone(headers);
    sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(headers, before);
  });

  it('a Connection header cannot remove host or content-length', () => {
    const headers: IncomingHttpHeaders = { connection: 'host, content-length', host: 'h', 'content-length': '3' };
    const { upstream, removed } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream, { host: 'h', 'content-length': '3' });
    assert.deepEqual(removed, ['connection']);
  });

  it('a Connection header naming an identity header just removes the forgery', () => {
    const headers: IncomingHttpHeaders = { connection: 'x-forwarded-client-cert', 'x-forwarded-client-cert': 'spoof', accept: 'a' };
    const { upstream, removed } = sanitizeRequestHeaders(headers, { keepForwarded: true });
    assert.deepEqual(upstream, { accept: 'a' });
    assert.deepEqual([...removed].sort(), ['connection', 'x-forwarded-client-cert']);
  });

  it('a WebSocket handshake keeps upgrade and sends exactly connection: upgrade', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'Upgrade, x-drop-me',
      upgrade: 'websocket',
      'x-drop-me': '1',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version': '13',
      te: 'trailers',
    };
    const { upstream, removed } = sanitizeRequestHeaders(headers, { keepForwarded: false, websocket: true });
    assert.deepEqual(upstream, {
      upgrade: 'websocket',
      connection: 'upgrade',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'sec-websocket-version': '13',
    });
    assert.deepEqual([...removed].sort(), ['connection', 'te', 'x-drop-me']);
  });

  it('without websocket an upgrade header is stripped', () => {
    const { upstream } = sanitizeRequestHeaders({ connection: 'upgrade', upgrade: 'websocket' }, strict);
    assert.deepEqual(upstream, {});
  });

  it('array values are copied, never shared with the input', () => {
    const cookies = ['a=1', 'b=2'];
    const headers: IncomingHttpHeaders = { 'set-cookie': cookies };
    const { upstream } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream['set-cookie'], ['a=1', 'b=2']);
    assert.notEqual(upstream['set-cookie'], cookies);
  });

  it('mixed-case names from hand-built header objects are still recognised', () => {
    const headers = { 'X-Meshgate-Principal': 'spoof', 'X-Forwarded-For': '1.2.3.4', Accept: 'a' } as IncomingHttpHeaders;
    const { upstream, removed } = sanitizeRequestHeaders(headers, strict);
    assert.deepEqual(upstream, { accept: 'a' });
    assert.deepEqual([...removed].sort(), ['x-forwarded-for', 'x-meshgate-principal']);
  });

  it('HTTP/2 pseudo-headers are not forwarded as fields', () => {
    const headers = { ':method': 'GET', ':path': '/a', ':authority': 'h', accept: 'a' } as IncomingHttpHeaders;
    assert.deepEqual(sanitizeRequestHeaders(headers, strict).upstream, { accept: 'a' });
  });

  it('look-alike names that are not identity headers are kept', () => {
    const headers: IncomingHttpHeaders = { 'x-meshgatex': '1', 'x-forwardedfor': '2', 'my-x-meshgate-id': '3' };
    assert.deepEqual(sanitizeRequestHeaders(headers, strict).upstream, headers);
  });
});

describe('hasAmbiguousFraming', () => {
  const cases: ReadonlyArray<{ name: string; headers: IncomingHttpHeaders; expected: boolean }> = [
    { name: 'no body headers is unambiguous', headers: {}, expected: false },
    { name: 'a single content-length is unambiguous', headers: { 'content-length': '42' }, expected: false },
    { name: 'chunked transfer-encoding alone is unambiguous', headers: { 'transfer-encoding': 'chunked' }, expected: false },
    { name: 'gzip then chunked is unambiguous', headers: { 'transfer-encoding': 'gzip, Chunked' }, expected: false },
    { name: 'content-length with transfer-encoding is ambiguous', headers: { 'content-length': '5', 'transfer-encoding': 'chunked' }, expected: true },
    { name: 'differing joined content-length values are ambiguous', headers: { 'content-length': '5, 6' }, expected: true },
    { name: 'identical joined content-length values are not ambiguous', headers: { 'content-length': '5, 5' }, expected: false },
    { name: 'differing content-length values in an array are ambiguous', headers: { 'content-length': ['5', '6'] } as unknown as IncomingHttpHeaders, expected: true },
    { name: 'a non-numeric content-length is ambiguous', headers: { 'content-length': 'abc' }, expected: true },
    { name: 'a signed content-length is ambiguous', headers: { 'content-length': '+5' }, expected: true },
    { name: 'an empty content-length is ambiguous', headers: { 'content-length': '' }, expected: true },
    { name: 'a content-length padded with a non-OWS space is ambiguous', headers: { 'content-length': '5\u00a0' }, expected: true },
    { name: 'transfer-encoding whose final coding is not chunked is ambiguous', headers: { 'transfer-encoding': 'chunked, gzip' }, expected: true },
    { name: 'chunked applied twice is ambiguous', headers: { 'transfer-encoding': 'chunked, chunked' }, expected: true },
    { name: 'an obfuscated chunked coding is ambiguous', headers: { 'transfer-encoding': 'chunked\u000b' }, expected: true },
    { name: 'an empty transfer-encoding is ambiguous', headers: { 'transfer-encoding': '' }, expected: true },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(hasAmbiguousFraming(c.headers), c.expected));
  }
});

describe('sanitizeRequestHeaders: spellings and overrides a framework may honour', () => {
  it('any header name with an underscore is removed: CGI/WSGI/Rack read x_meshgate_principal as x-meshgate-principal', () => {
    const { upstream, removed } = sanitizeRequestHeaders({
      host: 'h', x_meshgate_principal: 'root', x_forwarded_client_cert: 'By=x', x_forwarded_for: '10.0.0.1', my_header: 'v',
    }, { keepForwarded: true });
    assert.deepEqual(upstream, { host: 'h' });
    assert.deepEqual([...removed].sort(), ['my_header', 'x_forwarded_client_cert', 'x_forwarded_for', 'x_meshgate_principal']);
  });

  it('RFC 9440 Client-Cert and Client-Cert-Chain from clients are removed, even from trusted forwarders', () => {
    const { upstream } = sanitizeRequestHeaders({ host: 'h', 'client-cert': ':MIIB...:', 'client-cert-chain': ':MIIC...:' }, { keepForwarded: true });
    assert.deepEqual(upstream, { host: 'h' });
  });

  it('method and URL override headers are removed unless keepOverride is set', () => {
    const headers: IncomingHttpHeaders = {
      host: 'h', 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'PUT',
      'x-original-method': 'DELETE', 'x-original-url': '/admin/users', 'x-rewrite-url': '/admin/users',
    };
    assert.deepEqual(sanitizeRequestHeaders(headers, strict).upstream, { host: 'h' });
    assert.equal(sanitizeRequestHeaders(headers, { keepForwarded: false, keepOverride: true }).upstream['x-original-url'], '/admin/users');
  });
});
