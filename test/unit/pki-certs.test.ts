import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createCa } from '../../src/pki/create-ca.ts';
import { issueCert } from '../../src/pki/issue-cert.ts';
import { normalizeSerialHex, randomSerialHex } from '../../src/pki/serial-number.ts';
import { parseSpiffeId, trustDomainError } from '../../src/core/spiffe-id.ts';

const now = new Date();
const ca = createCa({ commonName: 'test CA', trustDomain: 'mesh.local', days: 30, now });
const caX509 = new X509Certificate(ca.certPem);
const leaf = issueCert({ ca, commonName: 'web', spiffeIds: ['spiffe://mesh.local/ns/default/sa/web'] });
const x = new X509Certificate(leaf.certPem);

/** Hex of the DER from the extension's OID onwards (`oidBytes`: hex of the OID value), or undefined. */
function extensionDer(cert: X509Certificate, oidBytes: string): string | undefined {
  const hex = cert.raw.toString('hex');
  const i = hex.indexOf(`0603${oidBytes}`);
  return i < 0 ? undefined : hex.slice(i, i + 40);
}

test('a CA certificate is self-signed, cA=true, signs CRLs and names its trust domain', () => {
  assert.equal(caX509.ca, true);
  assert.equal(caX509.checkIssued(caX509), true);
  assert.equal(caX509.verify(caX509.publicKey), true);
  assert.equal(caX509.subjectAltName, 'URI:spiffe://mesh.local');
  assert.equal(caX509.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  // keyUsage (2.5.29.15) critical: 0603551d0f 0101ff
  assert.match(extensionDer(caX509, '551d0f') ?? '', /^0603551d0f0101ff/);
});

test('a leaf certificate is signed by the CA, cA=false, and carries exactly the given SPIFFE ID', () => {
  assert.equal(x.ca, false);
  assert.equal(x.checkIssued(caX509), true);
  assert.equal(x.verify(caX509.publicKey), true);
  assert.equal(x.subjectAltName, 'URI:spiffe://mesh.local/ns/default/sa/web');
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']); // clientAuth only by default
  // basicConstraints (2.5.29.19) is critical
  assert.match(extensionDer(x, '551d13') ?? '', /^0603551d130101ff/);
  assert.equal(x.checkPrivateKey(createPrivateKey(leaf.keyPem)), true);
});

test('serial numbers are 16 random positive bytes and reported as node reports them', () => {
  assert.match(leaf.serialNumber, /^[0-9a-f]{32}$/);
  assert.equal(leaf.serialNumber, x.serialNumber.toLowerCase());
  const serials = new Set(Array.from({ length: 200 }, () => randomSerialHex()));
  assert.equal(serials.size, 200);
  for (const s of serials) {
    assert.ok(Number.parseInt(s.slice(0, 2), 16) < 0x80, 'high bit clear');
    assert.notEqual(s.slice(0, 2), '00', 'minimal DER');
  }
});

test('serials from openssl, node and forge normalize to one form', () => {
  assert.equal(normalizeSerialHex('0A:BC'), '0abc');
  assert.equal(normalizeSerialHex('00ff'), 'ff');
  assert.equal(normalizeSerialHex('ABC'), '0abc');
  assert.equal(normalizeSerialHex('0'), '00');
  assert.throws(() => normalizeSerialHex('xyz'), TypeError);
});

test('a server certificate carries DNS and IP SANs and both key purposes when asked', () => {
  const c = issueCert({ ca, commonName: 'gw', spiffeIds: ['spiffe://mesh.local/meshgate'], dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], serverAuth: true });
  const cx = new X509Certificate(c.certPem);
  assert.equal(cx.subjectAltName, 'URI:spiffe://mesh.local/meshgate, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.deepEqual([...(cx.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(cx.checkHost('localhost'), 'localhost');
  assert.equal(cx.checkIP('127.0.0.1'), '127.0.0.1');
});

test('adversarial certificates can be built: two URIs, no URI, cA=true leaf, past and future validity', () => {
  const two = new X509Certificate(issueCert({ ca, commonName: 'a', spiffeIds: ['spiffe://mesh.local/a', 'spiffe://mesh.local/b'], keyPem: leaf.keyPem }).certPem);
  assert.equal(two.subjectAltName, 'URI:spiffe://mesh.local/a, URI:spiffe://mesh.local/b');
  const none = new X509Certificate(issueCert({ ca, commonName: 'n', spiffeIds: [], keyPem: leaf.keyPem }).certPem);
  assert.equal(none.subjectAltName, undefined);
  const inter = new X509Certificate(issueCert({ ca, commonName: 'i', spiffeIds: ['spiffe://mesh.local/i'], isCa: true, keyPem: leaf.keyPem }).certPem);
  assert.equal(inter.ca, true);
  assert.equal(inter.checkIssued(caX509), true);
  const day = 86_400_000;
  const expired = new X509Certificate(issueCert({ ca, commonName: 'e', spiffeIds: [], notBefore: new Date(now.getTime() - 5 * day), notAfter: new Date(now.getTime() - day), keyPem: leaf.keyPem }).certPem);
  assert.ok(expired.validToDate.getTime() < now.getTime());
  const future = new X509Certificate(issueCert({ ca, commonName: 'f', spiffeIds: [], notBefore: new Date(now.getTime() + day), keyPem: leaf.keyPem, days: 5 }).certPem);
  assert.ok(future.validFromDate.getTime() > now.getTime());
});

test('a reused key gives a different certificate with the same public key', () => {
  const a = issueCert({ ca, commonName: 'a', spiffeIds: ['spiffe://mesh.local/a'], keyPem: leaf.keyPem });
  assert.equal(a.keyPem, leaf.keyPem);
  assert.notEqual(a.serialNumber, leaf.serialNumber);
  assert.notEqual(new X509Certificate(a.certPem).fingerprint256, x.fingerprint256);
});

test('a certificate from another CA does not verify against this CA', () => {
  const other = createCa({ commonName: 'other CA', trustDomain: 'other.test', days: 30 });
  const c = new X509Certificate(issueCert({ ca: other, commonName: 'o', spiffeIds: ['spiffe://mesh.local/a'], keyPem: leaf.keyPem }).certPem);
  assert.equal(c.checkIssued(caX509), false);
  assert.equal(c.verify(caX509.publicKey), false);
});

test('misuse is a TypeError: bad trust domain, bad days, mismatched CA pair, bad IP, empty validity', () => {
  assert.throws(() => createCa({ commonName: 'x', trustDomain: 'Mesh.Local', days: 1 }), TypeError);
  assert.throws(() => createCa({ commonName: 'x', trustDomain: 'mesh.local', days: 0 }), TypeError);
  assert.throws(() => createCa({ commonName: ' ', trustDomain: 'mesh.local', days: 1 }), TypeError);
  assert.throws(() => issueCert({ ca: { certPem: ca.certPem, keyPem: leaf.keyPem }, commonName: 'x', spiffeIds: [] }), /does not match/);
  assert.throws(() => issueCert({ ca: { certPem: leaf.certPem, keyPem: leaf.keyPem }, commonName: 'x', spiffeIds: [] }), /not a CA/);
  assert.throws(() => issueCert({ ca, commonName: 'x', spiffeIds: [], ipAddresses: ['localhost'] }), TypeError);
  assert.throws(() => issueCert({ ca, commonName: 'x', spiffeIds: [], notBefore: now, notAfter: now }), TypeError);
  assert.throws(() => issueCert({ ca: { certPem: 'garbage', keyPem: 'garbage' }, commonName: 'x', spiffeIds: [] }), TypeError);
});

test('SPIFFE IDs are validated per the SPIFFE-ID spec', () => {
  const good: [string, string, string][] = [
    ['spiffe://mesh.local/ns/default/sa/web', 'mesh.local', '/ns/default/sa/web'],
    ['spiffe://example.org/a_b-c.d', 'example.org', '/a_b-c.d'],
    ['spiffe://td/Upper/Case/Path', 'td', '/Upper/Case/Path'],
  ];
  for (const [id, td, path] of good) assert.deepEqual(parseSpiffeId(id), { ok: true, trustDomain: td, path }, id);
  const bad: [string, RegExp][] = [
    ['https://mesh.local/a', /must start with/],
    ['SPIFFE://mesh.local/a', /lower-case/],
    ['spiffe://Mesh.local/a', /lower case/],
    ['spiffe://mesh.local:8443/a', /port/],
    ['spiffe://user@mesh.local/a', /userinfo/],
    ['spiffe:///a', /empty/],
    ['spiffe://mesh.local', /no path/],
    ['spiffe://mesh.local/', /must not end/],
    ['spiffe://mesh.local/a//b', /empty/],
    ['spiffe://mesh.local/a/./b', /"\."/],
    ['spiffe://mesh.local/a/../b', /"\."/],
    ['spiffe://mesh.local/a?x=1', /query/],
    ['spiffe://mesh.local/a#f', /fragment/],
    ['spiffe://mesh.local/a%2Fb', /percent/],
    ['spiffe://mesh.local/a b', /path segments may contain/],
    ['spiffe://mesh.local/é', /path segments may contain/],
    [`spiffe://mesh.local/${'a'.repeat(2100)}`, /longer than/],
  ];
  for (const [id, re] of bad) {
    const r = parseSpiffeId(id);
    assert.equal(r.ok, false, id);
    if (!r.ok) assert.match(r.error, re, id);
  }
  assert.deepEqual(parseSpiffeId('spiffe://mesh.local', { requirePath: false }), { ok: true, trustDomain: 'mesh.local', path: '' });
  assert.equal(trustDomainError('mesh.local'), undefined);
  assert.match(trustDomainError('') ?? '', /empty/);
});
