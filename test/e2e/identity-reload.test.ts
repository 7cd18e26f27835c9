/**
 * End to end: hot reload without dropping traffic (PRODUCT §1.1, §1.3, §1.9).
 * The gateway certificate, the policy and the JWKS file are replaced while
 * the gateway runs: good files take effect for new work while open
 * connections and in-flight requests carry on; broken files are rejected,
 * counted and shown in /readyz, and the last good material keeps serving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import type { ComponentStatus } from '../../src/core/status.ts';
import { gatewaySpiffeId } from '../../src/pki/dev-pki.ts';
import { generateRsaKey } from '../../src/pki/forge-cert.ts';
import { issueCert } from '../../src/pki/issue-cert.ts';
import { createJwtKey, jwksForKey } from '../../src/pki/jwt-key.ts';
import { writeFileAtomic } from '../../src/pki/write-file-atomic.ts';
import { POLICY, startHarness, type Harness } from '../helpers/gateway.ts';

async function component(h: Harness, name: string): Promise<ComponentStatus & { httpStatus: number }> {
  const r = await fetch(h.adminUrl('/readyz'));
  const body = await r.json() as { components: ComponentStatus[] };
  const c = body.components.find((x) => x.name === name);
  assert.ok(c, `readyz lists ${name}`);
  return { ...c, httpStatus: r.status };
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    v = await read();
  }
  assert.ok(ok(v), `timed out waiting for ${what}: ${JSON.stringify(v)}`);
  return v;
}

async function reloadsMetric(h: Harness, comp: string, result: 'success' | 'failure'): Promise<number | undefined> {
  const text = await (await fetch(h.adminUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`meshgate_reloads_total{component="${comp}",result="${result}"}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A keep-alive HTTP/1.1 client on one TLS connection, one request at a time. */
interface KeepAlive {
  readonly socket: TLSSocket;
  /** Serial number (hex, upper case as Node reports it) of the certificate the gateway served. */
  readonly servedSerial: string;
  send(path: string): Promise<number>;
  close(): void;
}

function openKeepAlive(h: Harness): Promise<KeepAlive> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: h.gateway.address.port, ...h.pki.tlsClientOptions() });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      resolve({
        socket,
        servedSerial: socket.getPeerX509Certificate()!.serialNumber,
        send(path) {
          return new Promise((res, rej) => {
            let buf = '';
            const onData = (c: Buffer): void => {
              buf += c.toString('latin1');
              const head = buf.indexOf('\r\n\r\n');
              if (head === -1) return;
              const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
              if (buf.length - head - 4 < len) return;
              socket.off('data', onData);
              socket.off('close', onClose);
              res(Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0));
            };
            const onClose = (): void => rej(new Error(`connection closed before the response to ${path}: ${JSON.stringify(buf.slice(0, 100))}`));
            socket.on('data', onData);
            socket.once('close', onClose);
            socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n\r\n`);
          });
        },
        close() { socket.destroy(); },
      });
    });
  });
}

async function servedSerial(h: Harness): Promise<string> {
  const c = await openKeepAlive(h);
  c.close();
  return c.servedSerial;
}

describe('TLS material hot reload', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  test('a new gateway certificate is served to new connections while an open connection and an in-flight request keep working', async () => {
    const conn = await openKeepAlive(h);
    assert.equal(await conn.send('/svc/a'), 200);
    const oldSerial = conn.servedSerial;
    const before = await component(h, 'tls');

    // Hold one request in flight at the upstream across the swap.
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let arrived!: () => void;
    const inUpstream = new Promise<void>((r) => { arrived = r; });
    h.setUpstream((req, res) => {
      req.resume();
      arrived();
      void held.then(() => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
    });
    const inflight = openKeepAlive(h).then(async (c) => { try { return await c.send('/svc/slow'); } finally { c.close(); } });
    await inUpstream;

    const key = generateRsaKey().keyPem;
    const next = issueCert({
      ca: h.pki.ca, commonName: 'meshgate', spiffeIds: [gatewaySpiffeId(h.pki.trustDomain)],
      dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], serverAuth: true, clientAuth: true, keyPem: key,
    });
    // Key first, then certificate, back to back: the watcher's debounce sees one change.
    writeFileAtomic(h.pki.paths.gatewayKey, next.keyPem, 0o600);
    writeFileAtomic(h.pki.paths.gatewayCert, next.certPem);
    const after = await until('the TLS reload', () => component(h, 'tls'), (c) => c.reloads > before.reloads);
    assert.notEqual(after.version, before.version);
    assert.equal(after.reloadFailures, before.reloadFailures, 'the cert/key pair was swapped as a whole');
    assert.equal(after.state, 'ok');

    release();
    assert.equal(await inflight, 200, 'the in-flight request completed');
    h.setUpstream((req, res) => { req.resume(); res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });

    assert.equal(await conn.send('/svc/b'), 200, 'the open connection keeps working');
    // (Node clears the client's view of the peer certificate once TLS 1.3 session tickets arrive, so
    // the old session is shown by the connection itself staying open, not by re-reading the serial.)
    assert.equal(conn.socket.destroyed, false, 'the same connection is still open');
    conn.close();
    const fresh = await servedSerial(h);
    assert.equal(fresh.toLowerCase(), next.serialNumber.toLowerCase(), 'new connections get the new certificate');
    assert.notEqual(fresh, oldSerial);
  });

  test('a broken certificate file is rejected: the last good certificate keeps serving, /readyz shows lastError and the failure is counted', async () => {
    const servingBefore = await servedSerial(h);
    const before = await component(h, 'tls');
    const failuresMetric = (await reloadsMetric(h, 'tls', 'failure')) ?? 0;
    writeFileSync(h.pki.paths.gatewayCert, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    const after = await until('the rejected TLS reload', () => component(h, 'tls'), (c) => c.reloadFailures > before.reloadFailures);
    assert.match(after.lastError ?? '', /gateway\.crt/, 'the error names the file');
    assert.equal(after.version, before.version, 'the previous material is still in use');
    assert.equal(after.state, 'degraded');
    assert.equal(after.httpStatus, 200, 'the gateway still serves, so it stays ready');
    assert.equal(await reloadsMetric(h, 'tls', 'failure'), failuresMetric + 1);

    assert.equal(await servedSerial(h), servingBefore, 'new connections still get the last good certificate');
    const conn = await openKeepAlive(h);
    assert.equal(await conn.send('/svc/c'), 200);
    conn.close();
  });
});

describe('policy hot reload', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());
  const policyPath = (): string => h.config.authz.policy;

  test('a valid policy edit changes decisions within about a second', async () => {
    const token = await h.pki.mintToken({ sub: 'bob' });
    const denied = await h.request('/orders', { token });
    assert.equal(denied.status, 403);
    assert.equal(denied.json<{ reason: string }>().reason, 'authz_no_matching_rule');
    const before = await component(h, 'policy');
    writeFileAtomic(policyPath(), `${POLICY}g, bob, reader\n`);
    const after = await until('the policy reload', () => component(h, 'policy'), (c) => c.reloads > before.reloads, 3000);
    assert.notEqual(after.version, before.version);
    const allowed = await h.request('/orders', { token });
    assert.equal(allowed.status, 200, allowed.text);
    const e = await until('the audit event of the allowed request', () => h.auditEvents(), (all) => all.some((x) => x.requestId === allowed.headers['x-request-id']));
    const ev = e.find((x) => x.requestId === allowed.headers['x-request-id'])!;
    assert.equal(ev.reason, 'allowed');
    assert.equal(ev.policyVersion, after.version, 'the decision names the new policy version');
  });

  test('a broken policy edit is rejected with file:line in /readyz and the last good policy keeps deciding', async () => {
    const good = readFileSync(policyPath(), 'utf8');
    const before = await component(h, 'policy');
    const failuresMetric = (await reloadsMetric(h, 'policy', 'failure')) ?? 0;
    // Line 3 is not a valid policy line (a rule type the model does not define).
    writeFileAtomic(policyPath(), `p, anonymous, /healthz, GET, allow\np, bob, /orders, GET, allow\nq, nonsense\n`);
    const after = await until('the rejected policy reload', () => component(h, 'policy'), (c) => c.reloadFailures > before.reloadFailures, 3000);
    assert.match(after.lastError ?? '', /policy\.csv:3\b/, `lastError names the file and line: ${after.lastError}`);
    assert.equal(after.version, before.version);
    assert.equal(after.httpStatus, 200);
    assert.equal(await reloadsMetric(h, 'policy', 'failure'), failuresMetric + 1);
    // Old policy: bob is a reader (from the previous test), alice is still denied /orders/secret.
    assert.equal((await h.request('/orders/7', { token: await h.pki.mintToken({ sub: 'bob' }) })).status, 200);
    const deny = await h.request('/orders/secret', { token: await h.pki.mintToken({ sub: 'alice' }) });
    assert.equal(deny.status, 403);
    assert.equal(deny.json<{ reason: string }>().reason, 'authz_deny_rule');

    // Fixing the file clears the error.
    writeFileAtomic(policyPath(), good);
    const fixed = await until('the policy to recover', () => component(h, 'policy'), (c) => c.state === 'ok', 3000);
    assert.equal(fixed.lastError, undefined);
  });
});

describe('JWKS file hot reload', () => {
  let h: Harness;
  let rotatedKey = '';
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  test('a rotated JWKS file is picked up: the new key verifies and the retired key no longer does', async () => {
    const oldToken = await h.pki.mintToken({ sub: 'alice' });
    assert.equal((await h.request('/orders', { token: oldToken })).status, 200);
    const newKey = createJwtKey();
    rotatedKey = newKey;
    const before = await component(h, 'jwks:https://issuer.mesh.local');
    writeFileAtomic(h.pki.paths.jwks, `${JSON.stringify(await jwksForKey(newKey))}\n`);
    await until('the JWKS reload', () => component(h, 'jwks:https://issuer.mesh.local'), (c) => c.reloads > before.reloads, 3000);
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice', keyPem: newKey }) })).status, 200);
    // The cached verification of the old token must not outlive its key.
    const r = await h.request('/orders', { token: oldToken });
    assert.equal(r.status, 401);
    assert.equal(r.json<{ reason: string }>().reason, 'jwt_unknown_key');
  });

  test('a broken JWKS file is rejected and the current keys keep verifying', async () => {
    assert.ok(rotatedKey, 'runs after the rotation test');
    const before = await component(h, 'jwks:https://issuer.mesh.local');
    writeFileAtomic(h.pki.paths.jwks, '{"keys": [');
    const after = await until('the rejected JWKS reload', () => component(h, 'jwks:https://issuer.mesh.local'), (c) => c.reloadFailures > before.reloadFailures, 3000);
    assert.match(after.lastError ?? '', /JSON/);
    assert.equal(after.version, before.version);
    assert.equal(after.httpStatus, 200);
    assert.equal(await reloadsMetric(h, 'jwks:https://issuer.mesh.local', 'failure'), 1);
    // A token never seen before (no cache hit) still verifies with the last good keys.
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice', keyPem: rotatedKey }) })).status, 200);
    const r = await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice', keyPem: createJwtKey() }) });
    assert.equal(r.status, 401);
    assert.equal(r.json<{ reason: string }>().reason, 'jwt_unknown_key');
  });
});
