import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { createCa } from '../../src/pki/create-ca.ts';
import { createCrl } from '../../src/pki/create-crl.ts';
import { issueCert, type IssuedCert } from '../../src/pki/issue-cert.ts';
import { InvalidCrlError, parseCrl } from '../../src/pki/parse-crl.ts';
import { revokeSerial } from '../../src/pki/revoke-serial.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-pki-crl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const now = new Date();
const ca = createCa({ commonName: 'CRL test CA', trustDomain: 'mesh.local', days: 30, now });
const server = issueCert({ ca, commonName: 'gw', spiffeIds: ['spiffe://mesh.local/meshgate'], dnsNames: ['localhost'], serverAuth: true, clientAuth: false });
const good = issueCert({ ca, commonName: 'good', spiffeIds: ['spiffe://mesh.local/good'], keyPem: server.keyPem });
const bad = issueCert({ ca, commonName: 'bad', spiffeIds: ['spiffe://mesh.local/bad'], keyPem: server.keyPem });
const opensslAvailable = spawnSync('openssl', ['version']).status === 0;

/** Handshake as `client` against a server using `crl`; what the server saw and the bytes the client got. */
async function handshake(crl: string, client: IssuedCert, rejectUnauthorized: boolean): Promise<{ data: string; serverSaw: string | undefined }> {
  let serverSaw: string | undefined;
  const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, crl, requestCert: true, rejectUnauthorized }, (s) => {
    serverSaw = s.authorized ? 'authorized' : String(s.authorizationError);
    s.end('ok');
  });
  srv.on('tlsClientError', () => { /* expected for refused clients */ });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  try {
    const data = await new Promise<string>((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.certPem, key: client.keyPem, cert: client.certPem });
      let buf = '';
      sock.on('data', (d: Buffer) => { buf += d.toString(); });
      sock.on('end', () => resolve(buf));
      sock.on('close', () => resolve(buf));
      sock.on('error', () => resolve(buf));
    });
    return { data, serverSaw };
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

test('node rejects the handshake of a revoked client certificate and accepts a non-revoked one', async () => {
  const crl = createCrl({ ca, revoked: [{ serialNumber: bad.serialNumber, revocationDate: now }], now });
  const revoked = await handshake(crl, bad, true);
  assert.equal(revoked.data, '', 'revoked client must not get application data');
  assert.equal(revoked.serverSaw, undefined, 'server must not accept the revoked connection');
  const ok = await handshake(crl, good, true);
  assert.equal(ok.data, 'ok');
  assert.equal(ok.serverSaw, 'authorized');
});

test('the refusal is OpenSSL CERT_REVOKED, and the same certificate passes with an empty CRL', async () => {
  const withEntry = createCrl({ ca, revoked: [{ serialNumber: bad.serialNumber, revocationDate: now }], now });
  assert.equal((await handshake(withEntry, bad, false)).serverSaw, 'CERT_REVOKED');
  const empty = createCrl({ ca, now });
  assert.equal((await handshake(empty, bad, false)).serverSaw, 'authorized');
});

test('an expired CRL makes OpenSSL refuse every client (why the dev CRL lives long)', async () => {
  const old = new Date(now.getTime() - 40 * 86_400_000);
  const stale = createCrl({ ca, now: old, days: 1 });
  assert.equal((await handshake(stale, good, false)).serverSaw, 'CRL_HAS_EXPIRED');
});

test('a CRL round-trips: serials, dates, CRL number; the revoked list is absent when empty', () => {
  const t = new Date(Date.UTC(2030, 5, 1, 12, 0, 0));
  const late = new Date(Date.UTC(2051, 0, 2, 3, 4, 5)); // GeneralizedTime range (RFC 5280 §5.1.2.4)
  const pem = createCrl({ ca, revoked: [{ serialNumber: good.serialNumber, revocationDate: t }, { serialNumber: '00FF', revocationDate: late }, { serialNumber: 'ff', revocationDate: t }], crlNumber: 41n, now });
  assert.match(pem, /^-----BEGIN X509 CRL-----\n/);
  const parsed = parseCrl(pem, { ca });
  assert.equal(parsed.crlNumber, 41n);
  assert.deepEqual(parsed.revoked.map((r) => r.serialNumber), [good.serialNumber, 'ff']);
  assert.deepEqual(parsed.revoked.map((r) => r.revocationDate.toISOString()), [t.toISOString(), late.toISOString()]);
  assert.ok(parsed.nextUpdate && parsed.nextUpdate.getTime() > now.getTime());
  assert.ok(parsed.thisUpdate.getTime() <= now.getTime());
  const emptyPem = createCrl({ ca, now });
  assert.deepEqual(parseCrl(emptyPem, { ca }).revoked, []);
  // RFC 5280 §5.1.2.6: no empty SEQUENCE; TBSCertList = version, sig alg, issuer, this/nextUpdate, [0] extensions
  const tbs = forge.asn1.fromDer(Buffer.from(emptyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('binary')).value[0] as forge.asn1.Asn1;
  assert.equal((tbs.value as forge.asn1.Asn1[]).length, 6);
});

test('openssl accepts the CRL, verifies its signature, and lists the revoked serial', { skip: !opensslAvailable && 'openssl not installed' }, () => {
  const crlPath = join(dir, 'ca.crl');
  const caPath = join(dir, 'ca.crt');
  writeFileSync(crlPath, createCrl({ ca, revoked: [{ serialNumber: bad.serialNumber, revocationDate: now }], crlNumber: 7n, now }));
  writeFileSync(caPath, ca.certPem);
  const r = spawnSync('openssl', ['crl', '-in', crlPath, '-noout', '-text', '-CAfile', caPath], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /verify OK/);
  assert.match(r.stdout, /Version 2/);
  assert.match(r.stdout, /X509v3 CRL Number: \n\s+7/);
  assert.match(r.stdout, /X509v3 Authority Key Identifier/);
  assert.match(r.stdout, new RegExp(`Serial Number: ${bad.serialNumber.toUpperCase()}`));
  const empty = join(dir, 'empty.crl');
  writeFileSync(empty, createCrl({ ca, now }));
  assert.match(execFileSync('openssl', ['crl', '-in', empty, '-noout', '-text'], { encoding: 'utf8' }), /No Revoked Certificates/);
});

test('revoking appends, bumps the CRL number, and is idempotent', () => {
  const first = revokeSerial({ ca, crlPem: undefined, serialNumber: good.serialNumber, now });
  assert.equal(first.crlNumber, 1n);
  const second = revokeSerial({ ca, crlPem: first.crlPem, serialNumber: bad.serialNumber, now });
  assert.equal(second.crlNumber, 2n);
  assert.deepEqual(parseCrl(second.crlPem).revoked.map((r) => r.serialNumber), [good.serialNumber, bad.serialNumber]);
  const again = revokeSerial({ ca, crlPem: second.crlPem, serialNumber: bad.serialNumber.toUpperCase(), now });
  assert.equal(again.alreadyRevoked, true);
  assert.equal(again.crlPem, second.crlPem);
});

test('a CRL from another CA, a tampered CRL or garbage is refused, never extended', () => {
  const other = createCa({ commonName: 'other CA', trustDomain: 'other.test', days: 30, keyPem: server.keyPem });
  const foreign = createCrl({ ca: other, now });
  assert.throws(() => revokeSerial({ ca, crlPem: foreign, serialNumber: 'aa', now }), (e: unknown) => e instanceof InvalidCrlError && /issuer is not this CA/.test(e.message));

  const pem = createCrl({ ca, revoked: [{ serialNumber: bad.serialNumber, revocationDate: now }], now });
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const at = der.indexOf(Buffer.from(bad.serialNumber, 'hex'));
  assert.ok(at > 0);
  der[at + 3] = der[at + 3]! ^ 0x01; // un-revoke by editing the serial
  const tampered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
  assert.throws(() => parseCrl(tampered, { ca }), /signature does not verify/);
  assert.doesNotThrow(() => parseCrl(tampered), 'structure alone is still readable without a CA');

  assert.throws(() => parseCrl('not a crl'), InvalidCrlError);
  assert.throws(() => parseCrl('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'), InvalidCrlError);
});

test('createCrl misuse is a TypeError', () => {
  assert.throws(() => createCrl({ ca: { certPem: ca.certPem, keyPem: server.keyPem } }), TypeError);
  assert.throws(() => createCrl({ ca, crlNumber: -1n }), TypeError);
  assert.throws(() => createCrl({ ca, revoked: [{ serialNumber: 'zz', revocationDate: now }] }), TypeError);
  assert.throws(() => createCrl({ ca, days: 0 }), TypeError);
});
