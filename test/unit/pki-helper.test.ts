import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { parseCrl } from '../../src/pki/parse-crl.ts';
import { makeTestPki, TEST_AUDIENCE, TEST_ISSUER, type TestPki } from '../helpers/pki.ts';

const root = mkdtempSync(join(tmpdir(), 'meshgate-pki-helper-'));
after(() => rmSync(root, { recursive: true, force: true }));
const pki: TestPki = await makeTestPki(join(root, 'pki'), { trustDomain: 'mesh.local' });

/** Connects with `cert`; the server (rejectUnauthorized: false) reports what OpenSSL concluded. */
async function verdict(p: TestPki, cert = p.client): Promise<string> {
  const srv = tls.createServer({ ...p.tlsServerOptions(), rejectUnauthorized: false }, (s) => {
    s.end(s.authorized ? 'authorized' : String(s.authorizationError));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ...p.tlsClientOptions(cert) });
      let buf = '';
      sock.on('data', (d: Buffer) => { buf += d.toString(); });
      sock.on('end', () => resolve(buf));
      sock.on('error', reject);
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

test('makeTestPki writes the certs-init layout plus client.crt/key, keys mode 0600', () => {
  for (const f of ['ca.crt', 'ca.key', 'gateway.crt', 'gateway.key', 'jwt.key', 'jwks.json', 'ca.crl', 'client.crt', 'client.key']) {
    const st = statSync(join(pki.dir, f));
    assert.equal((st.mode & 0o777) === 0o600, f.endsWith('.key'), f);
  }
  assert.deepEqual(JSON.parse(readFileSync(pki.paths.jwks, 'utf8')), pki.jwks);
  assert.deepEqual(parseCrl(readFileSync(pki.paths.crl, 'utf8'), { ca: pki.ca }).revoked, []);
  assert.deepEqual(pki.client.spiffeIds, ['spiffe://mesh.local/ns/default/sa/client']);
});

test('the client certificate passes real TLS client verification against the gateway config', async () => {
  assert.equal(await verdict(pki), 'authorized');
});

test('adversarial certificates: TLS refuses the broken chains, the rest reach the SPIFFE checks', async () => {
  const adv = pki.adversarial();
  const expected: Record<keyof typeof adv, string> = {
    expired: 'CERT_HAS_EXPIRED',
    notYetValid: 'CERT_NOT_YET_VALID',
    otherCa: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    serverAuthOnly: 'INVALID_PURPOSE',
    // these chain correctly: the gateway's own identity checks must reject them
    twoUris: 'authorized',
    caAsClient: 'authorized',
    otherTrustDomain: 'authorized',
    noUri: 'authorized',
    invalidSpiffeId: 'authorized',
  };
  for (const [k, want] of Object.entries(expected)) {
    assert.equal(await verdict(pki, adv[k as keyof typeof adv]), want, k);
  }
  assert.equal(pki.adversarial(), adv, 'created once');
});

test('revoke rewrites ca.crl so the next handshake with that certificate is CERT_REVOKED', async () => {
  const victim = pki.issueClient({ name: 'victim' });
  assert.equal(await verdict(pki, victim), 'authorized');
  pki.revoke(victim);
  pki.revoke(victim.serialNumber); // idempotent
  assert.equal(await verdict(pki, victim), 'CERT_REVOKED');
  assert.equal(await verdict(pki), 'authorized');
  assert.equal(parseCrl(readFileSync(pki.paths.crl, 'utf8')).revoked.length, 1);
});

test('mintToken defaults to the client identity and verifies against the written JWKS', async () => {
  const keys = createLocalJWKSet(JSON.parse(readFileSync(pki.paths.jwks, 'utf8')));
  const { payload, protectedHeader } = await jwtVerify(await pki.mintToken({ bindCertPem: pki.client.certPem }), keys, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
  assert.equal(payload.sub, pki.client.spiffeIds[0]);
  assert.equal(protectedHeader.kid, pki.kid);
  assert.ok((payload['cnf'] as Record<string, string>)['x5t#S256']);
});

test('two test PKIs do not trust each other', async () => {
  const other = await makeTestPki(join(root, 'other'), { trustDomain: 'other.test' });
  assert.equal(await verdict(pki, other.client), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});
