/**
 * End to end: JWT verification on a running gateway (PRODUCT §1.3) — forged
 * and invalid tokens, RFC 8705 certificate binding, and a remote JWKS that
 * rotates keys and goes down. Every case asserts the HTTP status, the
 * problem+json reason and the audited reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { AuditRecord } from '../../src/audit/event.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createJwtKey, jwksForKey, type Jwks } from '../../src/pki/jwt-key.ts';
import { startHarness, type Harness, type HarnessResponse } from '../helpers/gateway.ts';
import type { TestCert } from '../helpers/pki.ts';

const ISSUER = 'https://issuer.mesh.local';

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** Polls the audit log (flushed every fsyncInterval) for the event of `requestId`. */
async function auditOf(h: Harness, requestId: string): Promise<AuditRecord> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    const hit = (await h.auditEvents()).find((e) => e.requestId === requestId);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  return assert.fail(`no audit event for request ${requestId}`);
}

/** Asserts a local reply: status, problem+json reason, and the same reason in the audit log. */
async function assertRefused(h: Harness, r: HarnessResponse, status: number, reason: string): Promise<AuditRecord> {
  assert.equal(r.status, status, `expected ${status} ${reason}, got ${r.status} ${r.text}`);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = r.json<{ reason: string; requestId: string }>();
  assert.equal(body.reason, reason);
  if (status === 401) assert.match(String(r.headers['www-authenticate']), /^Bearer/);
  const e = await auditOf(h, body.requestId);
  assert.equal(e.reason, reason);
  assert.equal(e.status, status);
  assert.equal(e.decision, 'deny');
  return e;
}

async function poll<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    v = await read();
  }
  assert.ok(ok(v), `timed out waiting for ${what}: ${JSON.stringify(v)}`);
  return v;
}

describe('JWT verification with a local JWKS file', () => {
  let h: Harness;
  let clientB: TestCert;
  before(async () => {
    h = await startHarness();
    clientB = h.pki.issueClient({ name: 'client-b' });
  });
  after(() => h.close());

  const now = (): number => Math.floor(Date.now() / 1000);

  const cases: { name: string; path?: string; cert?: () => TestCert; token: () => Promise<string | undefined>; status: number; reason: string; verified?: boolean }[] = [
    { name: 'a jwt route without a token gets 401 jwt_missing', token: async () => undefined, status: 401, reason: 'jwt_missing' },
    {
      name: 'a token signed by another key under the trusted kid gets 401 jwt_bad_signature',
      token: () => h.pki.mintToken({ sub: 'alice', keyPem: createJwtKey(), kid: h.pki.kid }), status: 401, reason: 'jwt_bad_signature',
    },
    {
      name: 'a token whose signature was tampered with gets 401 jwt_bad_signature',
      token: async () => {
        const [hd, pl, sig] = (await h.pki.mintToken({ sub: 'alice' })).split('.') as [string, string, string];
        const flipped = `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
        return `${hd}.${pl}.${flipped}`;
      },
      status: 401, reason: 'jwt_bad_signature',
    },
    {
      name: 'an unsigned alg:none token gets 401 jwt_alg_not_allowed',
      token: async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: ISSUER, aud: 'orders', sub: 'root', exp: now() + 300 })}.`,
      status: 401, reason: 'jwt_alg_not_allowed',
    },
    {
      // The classic algorithm-confusion forgery (RFC 8725 §2.1): HMAC keyed with the issuer's public key.
      name: 'an HS256 token keyed with the issuer public key gets 401 jwt_alg_not_allowed',
      token: () => {
        const pub = createPublicKey({ key: h.pki.jwks.keys[0] as unknown as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        return new SignJWT({ sub: 'root' }).setProtectedHeader({ alg: 'HS256', kid: h.pki.kid, typ: 'JWT' })
          .setIssuer(ISSUER).setAudience('orders').setIssuedAt().setExpirationTime('5m').sign(Buffer.from(pub));
      },
      status: 401, reason: 'jwt_alg_not_allowed',
    },
    {
      name: 'a token signed with a key the JWKS does not publish gets 401 jwt_unknown_key',
      token: () => h.pki.mintToken({ sub: 'alice', keyPem: createJwtKey() }), status: 401, reason: 'jwt_unknown_key',
    },
    { name: 'a token for another audience gets 401 jwt_audience_invalid', token: () => h.pki.mintToken({ sub: 'alice', aud: 'billing' }), status: 401, reason: 'jwt_audience_invalid' },
    { name: 'a token from an unknown issuer gets 401 jwt_issuer_invalid', token: () => h.pki.mintToken({ sub: 'alice', iss: 'https://evil.example' }), status: 401, reason: 'jwt_issuer_invalid' },
    // Expired by more than the 30 s default clock skew.
    { name: 'an expired token gets 401 jwt_expired', token: () => h.pki.mintToken({ sub: 'alice', ttlSeconds: -120 }), status: 401, reason: 'jwt_expired' },
    {
      name: 'a token whose nbf is in the future gets 401 jwt_not_yet_valid',
      token: () => h.pki.mintToken({ sub: 'alice', claims: { nbf: now() + 3600 } }), status: 401, reason: 'jwt_not_yet_valid',
    },
    { name: 'a malformed token gets 401 jwt_malformed', token: async () => 'not-a-jwt', status: 401, reason: 'jwt_malformed' },
    {
      name: 'a token bound to client A presented with client B gets 401 jwt_cert_binding_mismatch',
      cert: () => clientB,
      token: () => h.pki.mintToken({ sub: 'alice', bindCertPem: h.pki.client.certPem }), status: 401, reason: 'jwt_cert_binding_mismatch',
    },
    {
      name: 'an unbound token on a route that requires binding gets 401 jwt_cert_binding_required',
      // The token itself is valid: the audit shows who was refused.
      path: '/bound/x', token: () => h.pki.mintToken({ sub: 'alice' }), status: 401, reason: 'jwt_cert_binding_required', verified: true,
    },
    {
      name: 'an invalid token on an auth:none route is refused with 401, not ignored',
      path: '/public/x', token: () => h.pki.mintToken({ sub: 'alice', keyPem: createJwtKey(), kid: h.pki.kid }), status: 401, reason: 'jwt_bad_signature',
    },
    {
      name: 'an expired token on an auth:none route is refused with 401, not ignored',
      path: '/healthz', token: () => h.pki.mintToken({ sub: 'alice', ttlSeconds: -120 }), status: 401, reason: 'jwt_expired',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const token = await c.token();
      const r = await h.request(c.path ?? '/orders', { ...(token !== undefined ? { token } : {}), ...(c.cert ? { cert: c.cert() } : {}) });
      const e = await assertRefused(h, r, c.status, c.reason);
      if (c.verified) assert.deepEqual(e.principal, { iss: ISSUER, sub: 'alice' });
      else assert.equal(e.principal, null, 'an invalid token yields no principal');
    });
  }

  test('no refused token reached the upstream', () => {
    assert.equal(h.upstreamRequests.length, 0);
  });

  test('a valid token is accepted and audited by hash and jti, never the token itself', async () => {
    const token = await h.pki.mintToken({ sub: 'alice', jti: 'jti-e2e-1' });
    const r = await h.request('/orders', { token });
    assert.equal(r.status, 200);
    const e = await poll('the allowed /orders event', () => h.auditEvents(), (all) => all.some((x) => x.jti === 'jti-e2e-1'));
    const ev = e.find((x) => x.jti === 'jti-e2e-1')!;
    assert.equal(ev.reason, 'allowed');
    assert.deepEqual(ev.principal, { iss: ISSUER, sub: 'alice' });
    assert.ok(ev.tokenHash);
    assert.ok(!JSON.stringify(e).includes(token.split('.')[2]!), 'the token signature never appears in the audit log');
  });

  test('a token bound to the presented certificate is accepted on a binding-required route (200)', async () => {
    const token = await h.pki.mintToken({ sub: 'alice', bindCertPem: h.pki.client.certPem });
    const r = await h.request('/bound/x', { token });
    assert.equal(r.status, 200, r.text);
    assert.equal(h.upstreamRequests.at(-1)?.url, '/bound/x');
  });

  test('the same bound token is refused over client B even after it was accepted over client A (cache hit)', async () => {
    const token = await h.pki.mintToken({ sub: 'alice', bindCertPem: h.pki.client.certPem });
    assert.equal((await h.request('/bound/x', { token })).status, 200);
    await assertRefused(h, await h.request('/bound/x', { token, cert: clientB }), 401, 'jwt_cert_binding_mismatch');
  });
});

/** A JWKS endpoint the tests can rotate and take down. */
interface JwksEndpoint {
  readonly url: string;
  jwks: Jwks;
  up: boolean;
  hits: number;
  close(): Promise<void>;
}

async function startJwksEndpoint(initial: Jwks): Promise<JwksEndpoint> {
  const ep = { jwks: initial, up: true, hits: 0 } as JwksEndpoint & { url: string; close(): Promise<void> };
  const server: Server = createServer((_req, res) => {
    ep.hits++;
    if (!ep.up) { res.writeHead(503).end(); return; }
    const body = JSON.stringify(ep.jwks);
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  Object.assign(ep, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    close: async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  });
  return ep;
}

function remoteIssuer(url: string, timings: { refreshInterval: string; maxStale: string; refetchCooldown: string }) {
  return (cfg: ConfigInput): ConfigInput => ({
    ...cfg,
    jwt: { issuers: [{ issuer: ISSUER, audiences: ['orders'], jwksUrl: url, algorithms: ['ES256'], fetchTimeout: '1s', ...timings }] },
  });
}

interface JwksStatus { name: string; state: string; ready: boolean; reloads: number; staleSeconds?: number; keys: number }
async function readyz(h: Harness): Promise<{ httpStatus: number; ready: boolean; jwks: JwksStatus }> {
  const r = await fetch(h.adminUrl('/readyz'));
  const body = await r.json() as { ready: boolean; components: JwksStatus[] };
  const jwks = body.components.find((c) => c.name === `jwks:${ISSUER}`);
  assert.ok(jwks, 'readyz lists the issuer JWKS');
  return { httpStatus: r.status, ready: body.ready, jwks };
}

async function jwksStaleMetric(h: Harness): Promise<string | undefined> {
  const text = await (await fetch(h.adminUrl('/metrics'))).text();
  return text.split('\n').find((l) => l.startsWith(`meshgate_jwks_stale{component="jwks:${ISSUER}"}`));
}

describe('remote JWKS: key rotation is picked up by a refetch on an unknown kid', () => {
  let h: Harness;
  let ep: JwksEndpoint;
  before(async () => {
    ep = await startJwksEndpoint({ keys: [] });
    // A long refresh interval: only the kid-triggered refetch can discover the new key.
    h = await startHarness({
      patch: (cfg, _dir, pki) => { ep.jwks = pki.jwks; return remoteIssuer(ep.url, { refreshInterval: '5m', maxStale: '1h', refetchCooldown: '30s' })(cfg); },
    });
  });
  after(async () => { await h.close(); await ep.close(); });

  test('a token signed with the published key is accepted', async () => {
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) })).status, 200);
  });

  test('the first token with a rotated-in kid succeeds after one refetch, and invented kids within the cooldown fetch nothing', async () => {
    const newKey = createJwtKey();
    const newJwks = await jwksForKey(newKey);
    ep.jwks = { keys: [...h.pki.jwks.keys, ...newJwks.keys] };
    const hitsBefore = ep.hits;
    const r = await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice', keyPem: newKey }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(ep.hits, hitsBefore + 1, 'exactly one refetch');
    const forged = await h.pki.mintToken({ sub: 'alice', keyPem: createJwtKey(), kid: 'invented-kid' });
    await assertRefused(h, await h.request('/orders', { token: forged }), 401, 'jwt_unknown_key');
    assert.equal(ep.hits, hitsBefore + 1, 'the refetch cooldown bounds fetches an attacker can cause');
  });
});

describe('remote JWKS outage: stale keys serve until maxStale, then jwks_unavailable', () => {
  let h: Harness;
  let ep: JwksEndpoint;
  before(async () => {
    ep = await startJwksEndpoint({ keys: [] });
    h = await startHarness({
      patch: (cfg, _dir, pki) => { ep.jwks = pki.jwks; return remoteIssuer(ep.url, { refreshInterval: '1s', maxStale: '2s', refetchCooldown: '1s' })(cfg); },
    });
  });
  after(async () => { await h.close(); await ep.close(); });

  test('while the JWKS endpoint is down the last good keys keep serving, visibly stale, then tokens fail with 401 jwks_unavailable', async () => {
    const ok = await readyz(h);
    assert.equal(ok.jwks.state, 'ok');
    assert.match(String(await jwksStaleMetric(h)), / 0$/);
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) })).status, 200);

    ep.up = false;
    const stale = await poll('the JWKS to turn stale', () => readyz(h), (s) => s.jwks.state === 'stale' || s.jwks.state === 'unavailable');
    assert.equal(stale.jwks.state, 'stale', 'stale before unavailable');
    assert.equal(stale.jwks.ready, true);
    assert.equal(stale.httpStatus, 200, 'stale keys keep the gateway ready');
    assert.equal(typeof stale.jwks.staleSeconds, 'number');
    assert.match(String(await jwksStaleMetric(h)), / 1$/);
    // A token never seen before (no cache hit) is verified with the stale keys.
    const fresh = await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice', jti: 'during-outage' }) });
    assert.equal(fresh.status, 200, fresh.text);

    const gone = await poll('the stale keys to expire', () => readyz(h), (s) => s.jwks.state === 'unavailable');
    assert.equal(gone.jwks.ready, false);
    assert.equal(gone.httpStatus, 503, 'without keys the gateway reports not ready');
    await assertRefused(h, await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) }), 401, 'jwks_unavailable');

    ep.up = true;
    const back = await poll('the JWKS to recover', () => readyz(h), (s) => s.jwks.state === 'ok');
    assert.equal(back.httpStatus, 200);
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) })).status, 200);
  });
});
