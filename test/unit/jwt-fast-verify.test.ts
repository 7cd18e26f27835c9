import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { jwtVerify } from 'jose';
import { ManualClock } from '../../src/core/clock.ts';
import { MeshgateError } from '../../src/core/errors.ts';
import { verifyJwtSync } from '../../src/jwt/fast-verify.ts';
import { mapJoseError } from '../../src/jwt/map-jose-error.ts';
import { JwtVerifier } from '../../src/jwt/verifier.ts';
import { issuer, jwtConfig, tempDir } from './jwt-helpers.ts';
import { buildToken, CONFIGS, ISS, jwksOf, makeKeys, NOW_MS, recipeArb, type DiffKey, type Recipe } from './jwt-fast-verify-tokens.ts';

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string; readonly detail: string | undefined };

function failed(e: unknown): Outcome {
  const m = mapJoseError(e);
  return { ok: false, reason: m.reason, detail: m.detail };
}

async function outcome(fn: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return failed(e);
  }
}

/** The options JwtVerifier passes, for one issuer configuration (mutable arrays so jose accepts the same object). */
function rawOptions(cfg: (typeof CONFIGS)[number]) {
  return {
    algorithms: [...cfg.algorithms] as string[],
    issuer: ISS,
    audience: [...cfg.audiences] as string[],
    clockTolerance: cfg.skew / 1000,
    currentDate: new Date(NOW_MS),
    requiredClaims: [...new Set(['exp', 'sub', ...cfg.requiredClaims])],
    ...(cfg.typ === undefined ? {} : { typ: cfg.typ as string }),
  };
}

/** Encodings jose's atob-based decoder tolerates and the node path refuses: padding, whitespace, `crit`. */
function laxForJose(token: string): boolean {
  if (/[=\s]/.test(token)) return true;
  try {
    const h: unknown = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8'));
    return typeof h === 'object' && h !== null && 'crit' in h;
  } catch {
    return false;
  }
}

const tmp = tempDir();
const clock = new ManualClock(NOW_MS);
let keys: DiffKey[];
const pairs: { node: JwtVerifier; jose: JwtVerifier }[] = [];

before(async () => {
  keys = makeKeys();
  writeFileSync(tmp.path('jwks.json'), jwksOf(keys));
  for (const c of CONFIGS) {
    const cfg = jwtConfig([issuer({
      issuer: ISS, jwksFile: tmp.path('jwks.json'), algorithms: [...c.algorithms] as never, audiences: [...c.audiences],
      requiredClaims: [...c.requiredClaims], ...(c.typ === undefined ? {} : { typ: c.typ }),
    })], { clockSkew: c.skew, cacheEntries: 0 });
    pairs.push({
      node: await JwtVerifier.create(cfg, { clock, watch: false }),
      jose: await JwtVerifier.create(cfg, { clock, watch: false, signatureEngine: 'jose' }),
    });
  }
});
after(() => {
  for (const p of pairs) { p.node.close(); p.jose.close(); }
  tmp.cleanup();
});

describe('node:crypto verify path against jose (differential)', () => {
  test('the verifier accepts and rejects exactly the same tokens, with the same reason, on either engine', async (t) => {
    const seen = new Map<string, number>();
    await fc.assert(fc.asyncProperty(recipeArb, async (r: Recipe) => {
      const { token, key: signer } = buildToken(r, keys);
      const pair = pairs[r.cfg] as (typeof pairs)[number];
      const before = [pair.node.stats().signatureChecks, pair.jose.stats().signatureChecks];
      const fast = await outcome(() => pair.node.verify(token, undefined));
      const ref = await outcome(() => pair.jose.verify(token, undefined));
      assert.deepEqual(fast, ref, `token ${token}`);
      assert.equal(pair.node.stats().signatureChecks - (before[0] as number), pair.jose.stats().signatureChecks - (before[1] as number), 'same keys tried');
      const label = fast.ok ? 'accepted' : fast.reason;
      seen.set(label, (seen.get(label) ?? 0) + 1);

      // The same token straight into both verify functions, skipping decodeToken.
      const cfg = CONFIGS[r.cfg] as (typeof CONFIGS)[number];
      // The signer's own key, or (kid mutated) a neighbour: wrong key, or wrong key type.
      const k = r.kid === 'own' ? signer : keys[(keys.indexOf(signer) + 1) % keys.length] as DiffKey;
      const options = rawOptions(cfg);
      const rawFast = await outcome(() => verifyJwtSync(token, k.publicKey, options));
      const rawRef = await outcome(() => jwtVerify(token, k.publicKey, options).then((v) => v.payload));
      if (laxForJose(token) && !rawFast.ok && rawFast.reason === 'jwt_malformed') return;
      assert.deepEqual(rawFast, rawRef, `raw token ${token}`);
    }), { numRuns: 5_000 });
    t.diagnostic(JSON.stringify(Object.fromEntries([...seen].sort((a, b) => b[1] - a[1]))));
    // The generator must exercise both sides, or the property proves nothing.
    assert.ok((seen.get('accepted') ?? 0) >= 250, 'enough valid tokens');
    for (const reason of ['jwt_malformed', 'jwt_bad_signature', 'jwt_expired', 'jwt_not_yet_valid', 'jwt_audience_invalid',
      'jwt_issuer_invalid', 'jwt_claim_invalid', 'jwt_alg_not_allowed', 'jwt_unknown_key']) {
      assert.ok((seen.get(reason) ?? 0) > 0, `no run produced ${reason}`);
    }
  });
});

describe('verifyJwtSync', () => {
  const nowSec = Math.floor(NOW_MS / 1000);
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = { iss: ISS, aud: 'orders', sub: 'alice', exp: nowSec + 60 };
  const options = rawOptions(CONFIGS[0]);
  function token(alg: string, sig: (input: Buffer) => Buffer, header: Record<string, unknown> = {}): string {
    const input = `${enc({ alg, ...header })}.${enc(claims)}`;
    return `${input}.${sig(Buffer.from(input)).toString('base64url')}`;
  }
  const reasonOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      const m = mapJoseError(e);
      assert.ok(m instanceof MeshgateError);
      return m.reason;
    }
    return 'accepted';
  };
  const ps = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pss = (saltLength: number) => (i: Buffer): Buffer => cryptoSign('sha256', i, { key: ps.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });

  test('PS256 accepts a 32-byte salt and refuses any other salt length (RFC 7518 §3.5)', () => {
    assert.equal(reasonOf(() => verifyJwtSync(token('PS256', pss(32)), ps.publicKey, options)), 'accepted');
    assert.equal(reasonOf(() => verifyJwtSync(token('PS256', pss(20)), ps.publicKey, options)), 'jwt_bad_signature');
    assert.equal(reasonOf(() => verifyJwtSync(token('PS256', pss(64)), ps.publicKey, options)), 'jwt_bad_signature');
  });

  test('an ES256 signature in DER form is rejected with jwt_bad_signature (RFC 7518 §3.4 requires R || S)', () => {
    const der = token('ES256', (i) => cryptoSign('sha256', i, { key: es.privateKey, dsaEncoding: 'der' }));
    assert.equal(reasonOf(() => verifyJwtSync(der, es.publicKey, options)), 'jwt_bad_signature');
  });

  test('padded or whitespace-laden base64url is rejected as jwt_malformed even when signed', () => {
    const p1363 = (i: Buffer): Buffer => cryptoSign('sha256', i, { key: es.privateKey, dsaEncoding: 'ieee-p1363' });
    const good = token('ES256', p1363);
    assert.equal(reasonOf(() => verifyJwtSync(good, es.publicKey, options)), 'accepted');
    const [h, p] = good.split('.') as [string, string];
    for (const [hh, pp] of [[`${h}=`, p], [h, `${p}==`], [`${h.slice(0, 5)} ${h.slice(5)}`, p]] as const) {
      const t = `${hh}.${pp}.${p1363(Buffer.from(`${hh}.${pp}`)).toString('base64url')}`;
      assert.equal(reasonOf(() => verifyJwtSync(t, es.publicKey, options)), 'jwt_malformed', t);
    }
  });

  test('a crit header is rejected as jwt_malformed even when it names only b64', () => {
    const t = token('ES256', (i) => cryptoSign('sha256', i, { key: es.privateKey, dsaEncoding: 'ieee-p1363' }), { b64: true, crit: ['b64'] });
    assert.equal(reasonOf(() => verifyJwtSync(t, es.publicKey, options)), 'jwt_malformed');
  });

  test('a key of the wrong type or an RSA key under 2048 bits is never used: jwt_bad_signature', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rs = token('RS256', (i) => cryptoSign('sha256', i, small.privateKey));
    assert.equal(reasonOf(() => verifyJwtSync(rs, small.publicKey, options)), 'jwt_bad_signature');
    assert.equal(reasonOf(() => verifyJwtSync(rs, es.publicKey, options)), 'jwt_bad_signature');
  });
});
