import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createCa } from '../../src/pki/create-ca.ts';
import { issueCert } from '../../src/pki/issue-cert.ts';
import { createJwtKey, jwksForKey, jwtKeyId, loadJwtKey } from '../../src/pki/jwt-key.ts';
import { DEFAULT_ISSUER, certThumbprintS256, mintToken } from '../../src/pki/mint-token.ts';

const keyPem = createJwtKey();
const jwks = await jwksForKey(keyPem);
const keySet = createLocalJWKSet(structuredClone(jwks) as Parameters<typeof createLocalJWKSet>[0]);
const verifyOpts = { issuer: DEFAULT_ISSUER, audience: 'orders', algorithms: ['ES256'] };

/** jose error code of a rejected promise. */
async function joseCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

test('the JWT key is a P-256 PKCS#8 key and the JWKS publishes only its public half', () => {
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.equal(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(jwks.keys.length, 1);
  const jwk = jwks.keys[0]!;
  assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  assert.equal(jwk.alg, 'ES256');
  assert.equal(jwk.use, 'sig');
  assert.ok(!('d' in jwk), 'no private member');
});

test('the kid is the RFC 7638 thumbprint of the public JWK', async () => {
  const { crv, kty, x, y } = jwks.keys[0]!;
  // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
  const canonical = JSON.stringify({ crv, kty, x, y });
  const expected = createHash('sha256').update(canonical).digest('base64url');
  assert.equal(jwks.keys[0]!.kid, expected);
  assert.equal(await jwtKeyId(keyPem), expected);
});

test('a minted token verifies with jose against the JWKS and carries the requested claims', async () => {
  const token = await mintToken({ keyPem, sub: 'alice', aud: 'orders', ttlSeconds: 120, claims: { scope: 'orders:read', admin: true, nbf: 1 } });
  const header = decodeProtectedHeader(token);
  assert.deepEqual(header, { alg: 'ES256', kid: jwks.keys[0]!.kid, typ: 'JWT' });
  const { payload } = await jwtVerify(token, keySet, verifyOpts);
  assert.equal(payload.iss, DEFAULT_ISSUER);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.aud, 'orders');
  assert.equal(payload['scope'], 'orders:read');
  assert.equal(payload['admin'], true);
  assert.equal(payload.exp! - payload.iat!, 120);
  assert.match(payload.jti ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(payload['cnf'], undefined);
});

test('tokens get distinct random jtis unless one is given, and may have several audiences', async () => {
  const a = await jwtVerify(await mintToken({ keyPem, sub: 's', aud: ['orders', 'billing'] }), keySet, verifyOpts);
  const b = await jwtVerify(await mintToken({ keyPem, sub: 's', aud: 'orders', jti: 'fixed-1' }), keySet, verifyOpts);
  assert.deepEqual(a.payload.aud, ['orders', 'billing']);
  assert.equal(b.payload.jti, 'fixed-1');
  const c = await jwtVerify(await mintToken({ keyPem, sub: 's', aud: 'orders' }), keySet, verifyOpts);
  assert.notEqual(a.payload.jti, c.payload.jti);
});

test('a certificate-bound token carries cnf x5t#S256 = base64url SHA-256 of the certificate DER (RFC 8705 §3.1)', async () => {
  const ca = createCa({ commonName: 'tok CA', trustDomain: 'mesh.local', days: 1 });
  const cert = issueCert({ ca, commonName: 'c', spiffeIds: ['spiffe://mesh.local/c'], keyPem: ca.keyPem });
  const token = await mintToken({ keyPem, sub: 'spiffe://mesh.local/c', aud: 'orders', bindCertPem: cert.certPem });
  const { payload } = await jwtVerify(token, keySet, verifyOpts);
  const fromNode = Buffer.from(new X509Certificate(cert.certPem).fingerprint256.replace(/:/g, ''), 'hex').toString('base64url');
  assert.deepEqual(payload['cnf'], { 'x5t#S256': fromNode });
  assert.equal(certThumbprintS256(cert.certPem), fromNode);
  assert.throws(() => certThumbprintS256('not a cert'), TypeError);
});

test('a token minted in the past is expired for jose (ERR_JWT_EXPIRED)', async () => {
  const token = await mintToken({ keyPem, sub: 's', aud: 'orders', ttlSeconds: 60, now: Date.now() - 3_600_000 });
  assert.equal(await joseCode(jwtVerify(token, keySet, verifyOpts)), 'ERR_JWT_EXPIRED');
  const dated = await mintToken({ keyPem, sub: 's', aud: 'orders', now: new Date(Date.UTC(2020, 0, 1)) });
  assert.equal((await jwtVerify(dated, keySet, { ...verifyOpts, currentDate: new Date(Date.UTC(2020, 0, 1, 0, 1)) })).payload.iat, Date.UTC(2020, 0, 1) / 1000);
});

test('a token with an unknown kid or from another key does not verify against the JWKS', async () => {
  const unknown = await mintToken({ keyPem, sub: 's', aud: 'orders', kid: 'not-in-jwks' });
  assert.equal(await joseCode(jwtVerify(unknown, keySet, verifyOpts)), 'ERR_JWKS_NO_MATCHING_KEY');
  const forged = await mintToken({ keyPem: createJwtKey(), sub: 's', aud: 'orders', kid: jwks.keys[0]!.kid });
  assert.equal(await joseCode(jwtVerify(forged, keySet, verifyOpts)), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
});

test('misuse is a TypeError: reserved claims, non-integer ttl, keys that are not P-256', async () => {
  for (const claim of ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'cnf']) {
    await assert.rejects(mintToken({ keyPem, sub: 's', aud: 'a', claims: { [claim]: 'x' } }), TypeError, claim);
  }
  await assert.rejects(mintToken({ keyPem, sub: 's', aud: 'a', ttlSeconds: 1.5 }), TypeError);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await assert.rejects(mintToken({ keyPem: p384, sub: 's', aud: 'a' }), /P-256/);
  await assert.rejects(mintToken({ keyPem: rsa, sub: 's', aud: 'a' }), /P-256/);
  assert.throws(() => loadJwtKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), (e: unknown) => e instanceof TypeError && !/AAAA/.test(e.message));
  await assert.rejects(jwksForKey(p384), TypeError);
});
