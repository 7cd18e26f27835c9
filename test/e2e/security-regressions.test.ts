/**
 * Regression tests for the findings of the request-path security review:
 * each case failed (the attack worked) before its fix.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parseConfigText, ConfigError } from '../../src/config/load.ts';
import { POLICY, rawJson, rawStatus, startHarness, type Harness } from '../helpers/gateway.ts';

describe('request-path hardening', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  test('identity headers spelled with underscores or as RFC 9440 Client-Cert never reach the upstream', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    h.upstreamRequests.length = 0;
    const r = await h.raw(`GET /orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nx_meshgate_principal: root\r\nx_forwarded_client_cert: By=evil\r\nClient-Cert: :AAAA:\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(r), 200);
    const seen = h.upstreamRequests[0]?.headers ?? {};
    assert.equal(seen['x-meshgate-principal'], 'alice');
    for (const name of Object.keys(seen)) assert.ok(!name.includes('_'), `upstream received ${name}`);
    assert.equal(seen['client-cert'], undefined);
  });

  test('method and URL override headers are stripped', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    h.upstreamRequests.length = 0;
    const r = await h.request('/orders', { token, headers: { 'x-http-method-override': 'DELETE', 'x-original-url': '/admin/users', 'x-rewrite-url': '/admin/users' } });
    assert.equal(r.status, 200);
    const seen = h.upstreamRequests[0]?.headers ?? {};
    assert.deepEqual([seen['x-http-method-override'], seen['x-original-url'], seen['x-rewrite-url']], [undefined, undefined, undefined]);
  });

  test('a ";" path parameter is refused (400 path_parameter): Java servers would serve /orders/secret for /orders/secret;x', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    for (const path of ['/orders/secret;x', '/orders/secret;', '/orders;jsessionid=1/secret']) {
      const r = await h.raw(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
      assert.equal(rawStatus(r), 400, path);
      assert.equal(rawJson<{ reason: string }>(r).reason, 'path_parameter', path);
    }
  });

  test('a WebSocket upgrade with a method other than GET is refused before authorization', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    const r = await h.raw(`POST /ws HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n`);
    assert.equal(rawStatus(r), 400);
    assert.equal(rawJson<{ reason: string }>(r).reason, 'upgrade_method_invalid');
  });

  test('CONNECT is answered 400 bad_request_target and audited', async () => {
    const r = await h.raw('CONNECT orders.internal:443 HTTP/1.1\r\nHost: orders.internal:443\r\n\r\n');
    assert.equal(rawStatus(r), 400);
    assert.equal(rawJson<{ reason: string }>(r).reason, 'bad_request_target');
    const events = await h.auditEvents();
    assert.ok(events.some((e) => e.method === 'CONNECT' && e.reason === 'bad_request_target'));
  });

  test('a token cannot claim the subject "anonymous"', async () => {
    const token = await h.pki.mintToken({ sub: 'anonymous' });
    const r = await h.request('/public/x', { token });
    assert.equal(r.status, 401);
    assert.equal(r.json().reason, 'jwt_claim_invalid');
  });
});

describe('issuer mix-up', () => {
  test('two issuers without distinct subject prefixes are a configuration error', () => {
    const text = `upstream: { url: "http://127.0.0.1:1" }
tls: { cert: c, key: k, clientCa: ca, trustDomains: [mesh.local] }
jwt:
  issuers:
    - { issuer: "https://a", audiences: [x], jwksFile: a.json, algorithms: [ES256] }
    - { issuer: "https://b", audiences: [x], jwksFile: b.json, algorithms: [ES256], subjectPrefix: "b:" }
authz: { model: m, policy: p }
routes: [{ match: { pathPrefix: / }, auth: jwt }]
audit: { dir: a }
`;
    assert.throws(() => parseConfigText(text, { baseDir: '/tmp', env: {} }), (e: unknown) =>
      e instanceof ConfigError && e.issues.some((i) => i.path === 'jwt.issuers[0].subjectPrefix'));
  });

  test("a partner issuer's sub: root is partner:root, not the main issuer's root", async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const partnerJwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'p1', alg: 'ES256', use: 'sig' }] });
    const h = await startHarness({
      policy: `${POLICY}g, mesh:root, admin\n`,
      patch: (cfg, dir) => {
        const jwksFile = join(dir, 'partner-jwks.json');
        writeFileSync(jwksFile, partnerJwks);
        const main = (cfg.jwt as { issuers: Record<string, unknown>[] }).issuers[0];
        return {
          ...cfg,
          jwt: {
            issuers: [
              { ...main, subjectPrefix: 'mesh:' },
              { issuer: 'https://partner.example', audiences: ['orders'], jwksFile, algorithms: ['ES256'], subjectPrefix: 'partner:' },
            ],
          },
        } as typeof cfg;
      },
    });
    try {
      const forged = await new SignJWT({ aud: 'orders' }).setProtectedHeader({ alg: 'ES256', kid: 'p1', typ: 'JWT' })
        .setIssuer('https://partner.example').setSubject('root').setIssuedAt().setExpirationTime('5m').sign(privateKey);
      const r = await h.request('/admin/users', { token: forged });
      assert.equal(r.status, 403, 'the partner cannot act as root');
      assert.equal(r.json().reason, 'authz_no_matching_rule');
      const real = await h.request('/admin/users', { token: await h.pki.mintToken({ sub: 'root' }) });
      assert.equal(real.status, 200, "the main issuer's root (mesh:root) keeps its grant");
      const events = await h.auditEvents();
      assert.deepEqual(events.filter((e) => e.path === '/admin/users').map((e) => e.principal?.sub), ['partner:root', 'mesh:root']);
    } finally {
      await h.close();
    }
  });
});

describe('token type (RFC 8725 §3.11)', () => {
  test('with jwt typ configured, a token of another type from the same issuer is refused', async () => {
    const h = await startHarness({
      patch: (cfg) => {
        const main = (cfg.jwt as { issuers: Record<string, unknown>[] }).issuers[0];
        return { ...cfg, jwt: { issuers: [{ ...main, typ: 'at+jwt' }] } } as typeof cfg;
      },
    });
    try {
      const idToken = await h.pki.mintToken({ sub: 'alice' }); // typ: JWT
      const r = await h.request('/orders', { token: idToken });
      assert.equal(r.status, 401);
      assert.equal(r.json().reason, 'jwt_claim_invalid');
    } finally {
      await h.close();
    }
  });
});

describe('audit evidence of refused requests', () => {
  test('requests refused before authorization still carry the policy version, and a refused token leaves its hash (never the token)', async () => {
    const h = await startHarness();
    try {
      const good = await h.pki.mintToken({ sub: 'alice' });
      const tampered = `${good.slice(0, -4)}AAAA`;
      assert.equal((await h.request('/orders', { token: tampered })).status, 401);
      assert.equal((await h.request('/orders')).status, 401);
      const events = await h.auditEvents();
      const [bad, missing] = events.filter((e) => e.type === 'request');
      const ready = await (await fetch(h.adminUrl('/readyz'))).json() as { components: { name: string; version?: string }[] };
      const version = ready.components.find((c) => c.name === 'policy')?.version;
      assert.equal(bad?.reason, 'jwt_bad_signature');
      assert.equal(bad?.policyVersion, version);
      assert.equal(missing?.policyVersion, version);
      const { createHash } = await import('node:crypto');
      assert.equal(bad?.tokenHash, createHash('sha256').update(tampered).digest('base64url'));
      assert.equal(bad?.principal, null, 'an unverified token yields no principal');
      assert.equal(missing?.tokenHash, null);
    } finally {
      await h.close();
    }
  });
});
