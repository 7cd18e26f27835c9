import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { exportSPKI, SignJWT } from 'jose';
import { ManualClock } from '../../src/core/clock.ts';
import { MeshgateError } from '../../src/core/errors.ts';
import { JwtVerifier } from '../../src/jwt/verifier.ts';
import { AUD, b64, ISS, issuer, jwks, jwtConfig, makeKey, peer, rejectsWith, sign, tempDir, type TestKey } from './jwt-helpers.ts';

const tmp = tempDir();
let es: TestKey;
let es2: TestKey;
let rs: TestKey;
const clock = new ManualClock();
let v: JwtVerifier;

before(async () => {
  es = await makeKey('es-1', 'ES256');
  es2 = await makeKey('es-2', 'ES256');
  rs = await makeKey('rs-1', 'RS256');
  writeFileSync(tmp.path('jwks.json'), jwks(es, rs));
  v = await JwtVerifier.create(
    jwtConfig([issuer({ jwksFile: tmp.path('jwks.json'), algorithms: ['ES256', 'RS256'], requiredClaims: ['scope'] })]),
    { clock, watch: false },
  );
});
after(() => {
  v.close();
  tmp.cleanup();
});

const now = (): number => clock.now();
const sec = (): number => Math.floor(clock.now() / 1000);

describe('JwtVerifier.verify', () => {
  test('a valid ES256 token yields a principal with iss, sub, jti, exp, token hash and frozen claims', async () => {
    const token = await sign(es, now(), { scope: 'read', jti: 'j-1', nested: { a: [1] } });
    const p = await v.verify(token, undefined);
    assert.equal(p.iss, ISS);
    assert.equal(p.sub, 'alice');
    assert.equal(p.jti, 'j-1');
    assert.equal(p.exp, sec() + 600);
    assert.equal(p.certBound, false);
    assert.match(p.tokenHash, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!JSON.stringify(p).includes(token), 'principal must never hold the token');
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.claims) && Object.isFrozen((p.claims['nested'] as { a: unknown[] }).a));
  });

  test('a valid RS256 token from the same issuer is accepted', async () => {
    const p = await v.verify(await sign(rs, now(), { scope: 'x' }), undefined);
    assert.equal(p.sub, 'alice');
  });

  test('a token without kid is verified with the keys that fit its alg', async () => {
    const token = await sign(es, now(), { scope: 'x' }, { kid: undefined });
    assert.equal((await v.verify(token, undefined)).sub, 'alice');
  });

  test('a tampered payload is rejected with reason jwt_bad_signature', async () => {
    const token = await sign(es, now(), { scope: 'read' });
    const [h, , s] = token.split('.');
    const forged = `${h}.${b64({ iss: ISS, aud: AUD, sub: 'admin', exp: sec() + 600, scope: 'read' })}.${s}`;
    const err = await rejectsWith(() => v.verify(forged, undefined), 'jwt_bad_signature');
    assert.equal(err.code, 'MG_ERR_JWT_SIGNATURE');
    assert.equal(err.status, 401);
  });

  test('a token signed by another key under a known kid is rejected with jwt_bad_signature', async () => {
    const token = await sign({ ...es2, kid: 'es-1' }, now(), { scope: 'read' });
    await rejectsWith(() => v.verify(token, undefined), 'jwt_bad_signature');
  });

  test('an alg none token is rejected with jwt_alg_not_allowed', async () => {
    const payload = b64({ iss: ISS, aud: AUD, sub: 'admin', exp: sec() + 600, scope: 'x' });
    await rejectsWith(() => v.verify(`${b64({ alg: 'none' })}.${payload}.`, undefined), 'jwt_alg_not_allowed');
    await rejectsWith(() => v.verify(`${b64({ alg: 'none', kid: 'es-1' })}.${payload}.c2ln`, undefined), 'jwt_alg_not_allowed');
  });

  test('an HS256 token signed with the issuer public key as HMAC secret (algorithm confusion) is rejected with jwt_alg_not_allowed', async () => {
    const { importJWK } = await import('jose');
    const pub = await importJWK(rs.publicJwk, 'RS256', { extractable: true });
    const pem = await exportSPKI(pub as Parameters<typeof exportSPKI>[0]);
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(rs.publicJwk))]) {
      const token = await new SignJWT({ iss: ISS, aud: AUD, sub: 'admin', exp: sec() + 600, scope: 'x' })
        .setProtectedHeader({ alg: 'HS256', kid: 'rs-1' })
        .sign(new Uint8Array(secret));
      const err = await rejectsWith(() => v.verify(token, undefined), 'jwt_alg_not_allowed');
      assert.equal(err.code, 'MG_ERR_JWT_ALG');
    }
  });

  test('an asymmetric alg outside the issuer allow-list is rejected with jwt_alg_not_allowed before any key lookup', async () => {
    const ps = await makeKey('unknown-kid', 'PS256');
    const before = v.stats().signatureChecks;
    await rejectsWith(async () => v.verify(await sign(ps, now(), { scope: 'x' }), undefined), 'jwt_alg_not_allowed');
    assert.equal(v.stats().signatureChecks, before);
  });

  test('an unknown kid from a file JWKS is rejected with jwt_unknown_key', async () => {
    const err = await rejectsWith(async () => v.verify(await sign({ ...es2, kid: 'nope' }, now(), { scope: 'x' }), undefined), 'jwt_unknown_key');
    assert.equal(err.code, 'MG_ERR_JWT_UNKNOWN_KID');
  });

  const cases: Array<[string, () => Promise<string>, string]> = [
    ['wrong audience', () => sign(es, now(), { scope: 'x', aud: 'billing' }), 'jwt_audience_invalid'],
    ['missing audience', () => sign(es, now(), { scope: 'x', aud: undefined }), 'jwt_audience_invalid'],
    ['unknown issuer', () => sign(es, now(), { scope: 'x', iss: 'https://evil.example' }), 'jwt_issuer_invalid'],
    ['missing issuer', () => sign(es, now(), { scope: 'x', iss: undefined }), 'jwt_issuer_invalid'],
    ['issuer differing only in case', () => sign(es, now(), { scope: 'x', iss: ISS.toUpperCase() }), 'jwt_issuer_invalid'],
    ['expired beyond the skew', () => sign(es, now(), { scope: 'x', exp: sec() - 31 }), 'jwt_expired'],
    ['nbf beyond the skew', () => sign(es, now(), { scope: 'x', nbf: sec() + 31 }), 'jwt_not_yet_valid'],
    ['missing required claim', () => sign(es, now()), 'jwt_claim_invalid'],
    ['missing exp', () => sign(es, now(), { scope: 'x', exp: undefined }), 'jwt_claim_invalid'],
    ['non-numeric exp', () => sign(es, now(), { scope: 'x', exp: 'tomorrow' as unknown as number }), 'jwt_claim_invalid'],
    ['missing sub', () => sign(es, now(), { scope: 'x', sub: undefined }), 'jwt_claim_invalid'],
    ['numeric sub', () => sign(es, now(), { scope: 'x', sub: 42 as unknown as string }), 'jwt_claim_invalid'],
    ['crit header', async () => `${b64({ alg: 'ES256', kid: 'es-1', crit: ['x-ext'], 'x-ext': 1 })}.${b64({ iss: ISS, aud: AUD, sub: 'a', exp: sec() + 60, scope: 'x' })}.c2ln`, 'jwt_malformed'],
    ['garbage', async () => 'not-a-token', 'jwt_malformed'],
    ['JWE-shaped (five parts)', async () => 'a.b.c.d.e', 'jwt_malformed'],
    ['non-JSON header', async () => `${Buffer.from('x').toString('base64url')}.${b64({})}.c2ln`, 'jwt_malformed'],
    ['array payload', async () => `${b64({ alg: 'ES256' })}.${b64([1])}.c2ln`, 'jwt_malformed'],
    ['oversized token', async () => 'a'.repeat(20_000), 'jwt_malformed'],
  ];
  for (const [name, make, reason] of cases) {
    test(`a token with ${name} is rejected with reason ${reason}`, async () => {
      const token = await make();
      const err = await rejectsWith(() => v.verify(token, undefined), reason);
      assert.ok(err instanceof MeshgateError);
      assert.equal(err.status, 401);
    });
  }

  test('jose failures are wrapped with the original error as cause', async () => {
    const err = await rejectsWith(async () => v.verify(await sign(es, now(), { scope: 'x', exp: sec() - 100 }), undefined), 'jwt_expired');
    assert.equal((err.cause as { code?: string }).code, 'ERR_JWT_EXPIRED');
  });

  test('exp and nbf within the clock skew are tolerated on both sides', async () => {
    assert.equal((await v.verify(await sign(es, now(), { scope: 'x', exp: sec() - 29 }), undefined)).sub, 'alice');
    assert.equal((await v.verify(await sign(es, now(), { scope: 'x', nbf: sec() + 29 }), undefined)).sub, 'alice');
  });
});

describe('verified-token cache', () => {
  test('a cache hit returns the same principal without verifying the signature again', async () => {
    const token = await sign(es, now(), { scope: 'x', jti: 'cache-1' });
    const s0 = v.stats();
    const p1 = await v.verify(token, undefined);
    const p2 = await v.verify(token, undefined);
    const s1 = v.stats();
    assert.equal(p1, p2);
    assert.equal(s1.signatureChecks - s0.signatureChecks, 1);
    assert.equal(s1.cacheHits - s0.cacheHits, 1);
  });

  test('a cached token is rejected once the clock passes its exp, never served past it', async () => {
    const c = new ManualClock();
    const vv = await JwtVerifier.create(jwtConfig([issuer({ jwksFile: tmp.path('jwks.json') })], { clockSkew: 0 }), { clock: c, watch: false });
    try {
      const token = await sign(es, c.now(), { exp: Math.floor(c.now() / 1000) + 60 });
      await vv.verify(token, undefined);
      c.advance(59_000);
      await vv.verify(token, undefined);
      assert.equal(vv.stats().cacheHits, 1);
      c.advance(1_000);
      await rejectsWith(() => vv.verify(token, undefined), 'jwt_expired');
    } finally {
      vv.close();
    }
  });

  test('a cache entry is re-verified after five minutes even when exp is later', async () => {
    const c = new ManualClock();
    const vv = await JwtVerifier.create(jwtConfig([issuer({ jwksFile: tmp.path('jwks.json') })]), { clock: c, watch: false });
    try {
      const token = await sign(es, c.now(), { exp: Math.floor(c.now() / 1000) + 3600 });
      await vv.verify(token, undefined);
      c.advance(5 * 60_000);
      await vv.verify(token, undefined);
      assert.deepEqual([vv.stats().cacheHits, vv.stats().signatureChecks], [0, 2]);
    } finally {
      vv.close();
    }
  });

  test('cacheEntries 0 disables the cache', async () => {
    const vv = await JwtVerifier.create(jwtConfig([issuer({ jwksFile: tmp.path('jwks.json') })], { cacheEntries: 0 }), { clock, watch: false });
    try {
      const token = await sign(es, now());
      await vv.verify(token, undefined);
      await vv.verify(token, undefined);
      assert.deepEqual([vv.stats().cacheHits, vv.stats().signatureChecks, vv.stats().cacheSize], [0, 2, 0]);
    } finally {
      vv.close();
    }
  });
});

describe('RFC 8705 certificate-bound tokens', () => {
  const certA = 'A'.repeat(43);
  const certB = 'B'.repeat(43);

  test('a token bound to the presented certificate is accepted and marked certBound', async () => {
    const token = await sign(es, now(), { scope: 'x', cnf: { 'x5t#S256': certA } });
    assert.equal((await v.verify(token, peer(certA))).certBound, true);
  });

  test('a token bound to certificate A presented with certificate B or none is rejected, also on a cache hit', async () => {
    const token = await sign(es, now(), { scope: 'x', cnf: { 'x5t#S256': certA } });
    await v.verify(token, peer(certA));
    const hits = v.stats().cacheHits;
    for (const p of [peer(certB), undefined, peer(certA.slice(1)), peer('')]) {
      const err = await rejectsWith(() => v.verify(token, p), 'jwt_cert_binding_mismatch');
      assert.equal(err.code, 'MG_ERR_JWT_CNF_MISMATCH');
    }
    assert.equal(v.stats().cacheHits - hits, 4);
  });

  test('the synchronous cache lookup enforces the binding too, and answers only for tokens verified before', async () => {
    const token = await sign(es, now(), { scope: 'x', cnf: { 'x5t#S256': certA } });
    assert.equal(v.cached(token, peer(certA)), undefined, 'never verified: the caller must verify');
    await v.verify(token, peer(certA));
    assert.equal(v.cached(token, peer(certA))?.certBound, true);
    for (const p of [peer(certB), undefined]) {
      assert.throws(() => v.cached(token, p), (e: unknown) => (e as { reason?: string }).reason === 'jwt_cert_binding_mismatch');
    }
    const forged = `${token.slice(0, -2)}${token.endsWith('A') ? 'B' : 'A'}x`;
    assert.equal(v.cached(forged, peer(certA)), undefined, 'a different string is a different token');
  });

  test('a token with an unsupported confirmation method is rejected, never treated as a bearer token', async () => {
    const token = await sign(es, now(), { scope: 'x', cnf: { jkt: 'abc' } });
    await rejectsWith(() => v.verify(token, peer(certA)), 'jwt_cert_binding_mismatch');
  });

  test('a malformed cnf claim is rejected with jwt_claim_invalid', async () => {
    await rejectsWith(async () => v.verify(await sign(es, now(), { scope: 'x', cnf: 'x' }), peer(certA)), 'jwt_claim_invalid');
    await rejectsWith(async () => v.verify(await sign(es, now(), { scope: 'x', cnf: { 'x5t#S256': 7 } }), peer(certA)), 'jwt_claim_invalid');
  });
});

describe('JwtVerifier.create', () => {
  test('a duplicate issuer is a configuration error', async () => {
    const f = tmp.path('jwks.json');
    await assert.rejects(() => JwtVerifier.create(jwtConfig([issuer({ jwksFile: f }), issuer({ jwksFile: f })]), { watch: false }), TypeError);
  });

  test('an HMAC algorithm in the allow-list is a configuration error', async () => {
    await assert.rejects(() => JwtVerifier.create(jwtConfig([issuer({ jwksFile: tmp.path('jwks.json'), algorithms: ['HS256' as 'ES256'] })]), { watch: false }), TypeError);
  });

  test('status reports one ready component per issuer with its key count', () => {
    const [s] = v.status();
    assert.equal(s?.name, `jwks:${ISS}`);
    assert.equal(s?.ready, true);
    assert.equal(s?.state, 'ok');
    assert.equal(s?.keys, 2);
  });
});
