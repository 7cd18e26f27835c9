import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../../src/audit/event.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { explainRequest, type ExplainQuery, type ExplainReport } from '../../src/policy/explain.ts';
import type { IssuedCert } from '../../src/pki/issue-cert.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';
import type { TestCert } from '../helpers/pki.ts';

interface Case {
  readonly name: string;
  readonly path: string;
  readonly method?: string;
  /** Client certificate (default the PKI's client); null = none. */
  readonly cert?: TestCert | null;
  readonly token?: () => Promise<string>;
}

async function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('policy explain agrees with the running proxy', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  test('status, reason and matched rule are the same for every request, stage by stage', async () => {
    const alice = () => h.pki.mintToken({ sub: 'alice' });
    const cases: Case[] = [
      { name: 'reader allowed', path: '/orders', token: alice },
      { name: 'deny rule', path: '/orders/secret', token: alice },
      { name: 'deny rule reached through a raw path', path: '/orders/x/../secret', token: alice },
      { name: 'no matching rule for the method', path: '/orders', method: 'DELETE', token: alice },
      { name: 'token required', path: '/orders' },
      { name: 'mtls route, peer as subject', path: '/svc/a' },
      { name: 'dot-dot into the mtls route', path: '/public/../svc/a' },
      { name: 'public route, peer is not anonymous', path: '/public/x' },
      { name: 'encoded slash refused before routing', path: '/orders%2Fsecret', token: alice },
      { name: 'unbound token on a bound route', path: '/bound/x', token: alice },
      { name: 'bound token on a bound route', path: '/bound/x', token: () => h.pki.mintToken({ sub: 'alice', bindCertPem: h.pki.client.certPem }) },
      { name: 'expired token', path: '/orders', token: () => h.pki.mintToken({ sub: 'alice', ttlSeconds: -600 }) },
      { name: 'certificate from another trust domain', path: '/svc/a', cert: h.pki.adversarial().otherTrustDomain },
    ];
    const explained: ExplainReport[] = [];
    for (const c of cases) {
      const token = c.token ? await c.token() : undefined;
      const cert = c.cert === undefined ? h.pki.client : c.cert;
      const res = await h.request(c.path, { method: c.method ?? 'GET', ...(token ? { token } : {}), cert: cert as IssuedCert | null });
      const query: ExplainQuery = { method: c.method ?? 'GET', path: c.path, certFile: cert?.certPath, token };
      const ex = await explainRequest(h.config, query);
      explained.push(ex);
      const gotReason = res.status === 200 ? 'allowed' : res.json<{ reason: string }>().reason;
      assert.deepEqual({ status: ex.allowed ? 200 : ex.status, reason: ex.reason }, { status: res.status, reason: gotReason }, c.name);
    }
    // The audit log records what the proxy decided: the same rule and canonical path as explain.
    const events = (await h.auditEvents()).filter((e: AuditRecord) => e.type === 'request');
    assert.equal(events.length, cases.length);
    events.forEach((e, i) => {
      const ex = explained[i]!;
      assert.equal(ex.decision?.matchedRule ?? null, e.rule, cases[i]!.name);
      assert.equal(ex.canonicalPath ?? null, e.path, cases[i]!.name);
      assert.equal(ex.route ?? null, e.route, cases[i]!.name);
    });
  });

  test('a certificate from an untrusted CA: the proxy drops the connection, explain says so (status 0)', async () => {
    const bad = h.pki.adversarial().otherCa;
    await assert.rejects(h.request('/svc/a', { cert: bad }));
    const ex = await explainRequest(h.config, { method: 'GET', path: '/svc/a', certFile: bad.certPath });
    assert.equal(ex.status, 0);
    assert.equal(ex.reason, 'peer_cert_untrusted');
    assert.deepEqual(ex.stages.map((s) => s.verdict), ['fail', 'not-reached', 'not-reached', 'not-reached', 'not-reached', 'not-reached']);
    const handshake = (await h.auditEvents()).filter((e) => e.type === 'tls_handshake').at(-1);
    assert.equal(handshake?.reason, ex.reason);
  });

  test('each stage is reported: canonical path, route, principal and the authz rule', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    const ex = await explainRequest(h.config, { method: 'GET', path: '/orders/./42?x=1', certFile: h.pki.client.certPath, token });
    assert.equal(ex.allowed, true);
    assert.deepEqual(ex.stages.map((s) => [s.stage, s.verdict]), [['tls', 'ok'], ['hygiene', 'ok'], ['normalize', 'ok'], ['route', 'ok'], ['jwt', 'ok'], ['authz', 'ok']]);
    assert.match(ex.stages[2]!.summary, /canonical path \/orders\/42 \(raw \/orders\/\.\/42\)/);
    assert.deepEqual(ex.principal, { iss: 'https://issuer.mesh.local', sub: 'alice', verified: true });
    assert.equal(ex.decision?.matchedRule, 'policy.csv:4: p, reader, /orders/:id, GET, allow');
    assert.deepEqual({ ...ex.tuple, claims: undefined }, { sub: 'alice', peer: h.pki.client.spiffeIds[0], obj: '/orders/42', act: 'GET', claims: undefined });
  });

  test('the CLI reads meshgate.yaml, marks an assumed principal, and exits 0 allowed / 1 denied', async () => {
    const p = h.pki.paths;
    const yaml = `listen: { port: 0 }
upstream: { url: "http://127.0.0.1:1" }
tls: { cert: ${p.gatewayCert}, key: ${p.gatewayKey}, clientCa: ${p.caCert}, trustDomains: [${h.pki.trustDomain}] }
jwt:
  issuers:
    - { issuer: "https://issuer.mesh.local", audiences: [orders], jwksFile: ${p.jwks}, algorithms: [ES256] }
authz: { model: ${h.config.authz.model}, policy: ${h.config.authz.policy} }
routes:
  - { name: default, match: { pathPrefix: / }, auth: mtls+jwt }
audit: { dir: audit }
`;
    fs.writeFileSync(path.join(h.dir, 'explain.yaml'), yaml);
    const spiffe = h.pki.client.spiffeIds[0]!;
    const allowed = await run(['policy', 'explain', '-c', 'explain.yaml', '--path', '/orders/1', '--spiffe', spiffe, '--sub', 'alice'], h.dir);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /^ {2}jwt +ok +principal alice \(iss -, assumed, not verified\)$/m);
    assert.match(allowed.stdout, /^note: JWT: assumed \(not verified\)/m);
    assert.match(allowed.stdout, /^result: ALLOWED/m);
    const denied = await run(['policy', 'explain', '-c', 'explain.yaml', '--path', '/orders/secret', '--spiffe', spiffe, '--sub', 'alice', '--json'], h.dir);
    assert.equal(denied.code, 1);
    const r = JSON.parse(denied.stdout) as ExplainReport;
    assert.deepEqual([r.status, r.reason, r.decision?.matchedRule], [403, 'authz_deny_rule', 'policy.csv:5: p, alice, /orders/secret, GET, deny']);
    const token = await h.pki.mintToken({ sub: 'alice' });
    const withToken = await run(['policy', 'explain', '-c', 'explain.yaml', '--path', '/orders', '--cert', h.pki.client.certPath, '--token', token], h.dir);
    assert.equal(withToken.code, 0, withToken.stdout + withToken.stderr);
    assert.ok(!withToken.stdout.includes(token), 'the token is never printed');
    assert.equal((await run(['policy', 'explain', '-c', 'explain.yaml'], h.dir)).code, 2);
    assert.equal((await run(['policy', 'explain', '-c', 'explain.yaml', '--path', '/x', '--claims', '{}'], h.dir)).code, 2);
    assert.equal((await run(['policy', 'explain', '-c', 'missing.yaml', '--path', '/x'], h.dir)).code, 2);
  });
});
