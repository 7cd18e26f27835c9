/**
 * Token generator for the fast-verify differential test: real keys, a JWKS
 * file, and a fast-check arbitrary of token recipes — valid tokens and
 * tokens mutated in every way a forger or a broken issuer would try.
 */
import { constants, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';

export const ISS = 'https://issuer.diff';
/** Clock time of every run: a fractional second, so `now` flooring matters. */
export const NOW_MS = Date.UTC(2026, 0, 1) + 700;
const NOW = Math.floor(NOW_MS / 1000);

/** A signing key: `jwk` alg is published unless `anyAlg`; `inJwks` false for outsiders (wrong key). */
export interface DiffKey {
  readonly kid: string;
  readonly alg: string;
  readonly anyAlg: boolean;
  readonly inJwks: boolean;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function key(kid: string, alg: string, inJwks = true, anyAlg = false): DiffKey {
  const pair = alg.startsWith('ES')
    ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
    : alg.startsWith('RS') || alg.startsWith('PS') ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ed25519');
  return { kid, alg, anyAlg, inJwks, ...pair };
}

export function makeKeys(): DiffKey[] {
  return [
    key('es-1', 'ES256'), key('es-2', 'ES256'), key('es384', 'ES384'), key('rs-1', 'RS256'), key('ps-1', 'PS256'),
    key('rsa-any', 'RS256', true, true), key('ed-1', 'EdDSA'), key('ed-any', 'Ed25519', true, true),
    key('es-out', 'ES256', false), key('rs-out', 'RS256', false), key('ed-out', 'EdDSA', false),
  ];
}

export function jwksOf(keys: readonly DiffKey[]): string {
  return JSON.stringify({
    keys: keys.filter((k) => k.inJwks).map((k) => ({
      ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, use: 'sig', ...(k.anyAlg ? {} : { alg: k.alg }),
    })),
  });
}

/** Issuer configurations the runs rotate through (skew in ms). */
export const CONFIGS = [
  { algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA', 'Ed25519'], audiences: ['orders', 'billing'], requiredClaims: [] as string[], skew: 30_000, typ: undefined },
  { algorithms: ['ES256', 'ES384'], audiences: ['orders'], requiredClaims: ['scope', 'jti'], skew: 0, typ: 'JWT' },
  { algorithms: ['RS256', 'PS256', 'EdDSA'], audiences: ['billing'], requiredClaims: ['nbf', 'aud'], skew: 1_500, typ: 'at+jwt' },
] as const;

const HUGE = '__HUGE__';
const NEG_HUGE = '__NEG_HUGE__';
const omit = 'omit' as const;

function timeClaim(base: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: fc.integer({ min: -45, max: 45 }).map((d) => base + NOW + d), weight: 6 },
    { arbitrary: fc.constantFrom(NOW - 30.5, NOW - 1.5, NOW + 1.5, NOW + 30.5, NOW + 0.25, NOW + 1e10, -1), weight: 2 },
    { arbitrary: fc.constantFrom(omit, HUGE, NEG_HUGE, String(NOW + 600), null, [NOW + 600], true), weight: 1 },
  );
}

const claimsArb = fc.record({
  iss: fc.oneof({ arbitrary: fc.constant(ISS), weight: 12 }, { arbitrary: fc.constantFrom(omit, `${ISS}/`, 'https://other', 42, null), weight: 1 }),
  aud: fc.oneof({ arbitrary: fc.constantFrom('orders', 'billing', ['x', 'billing'], ['orders']), weight: 10 },
    { arbitrary: fc.constantFrom(omit, 'other', [], [1, 'orders'], 5, null, { orders: 1 }), weight: 1 }),
  sub: fc.oneof({ arbitrary: fc.constant('alice'), weight: 10 }, { arbitrary: fc.constantFrom(omit, '', 'anonymous', 7), weight: 1 }),
  exp: fc.oneof({ arbitrary: fc.constant(NOW + 600), weight: 4 }, { arbitrary: timeClaim(0), weight: 2 }),
  nbf: fc.oneof({ arbitrary: fc.constant(omit), weight: 2 }, { arbitrary: fc.constant(NOW - 10), weight: 2 }, { arbitrary: timeClaim(0), weight: 2 }),
  iat: fc.oneof({ arbitrary: fc.constant(NOW), weight: 4 }, { arbitrary: fc.constantFrom(omit, 'yesterday', HUGE, NOW + 1e6, null), weight: 1 }),
  scope: fc.constantFrom('read', 'read', omit, 3),
  jti: fc.constantFrom('j-1', 'j-1', omit, 9),
  cnf: fc.constantFrom(omit, omit, omit, omit, { 'x5t#S256': 'abc' }, { jkt: 'x' }),
});

/** Raw edits of the payload JSON text (what a JSON encoder would never produce). */
const payloadRawArb = fc.oneof({ arbitrary: fc.constant('none'), weight: 12 }, {
  arbitrary: fc.constantFrom('dupExpLast', 'dupExpFirst', 'dupIssLast', 'dupSubLast', 'dupProto', 'array', 'string', 'number',
    'null', 'invalidJson', 'bom', 'badUtf8', 'empty', 'trailingGarbage', 'whitespace'),
  weight: 3,
});
const headerRawArb = fc.oneof({ arbitrary: fc.constant('none'), weight: 12 }, {
  arbitrary: fc.constantFrom('critB64', 'critX', 'b64false', 'jwk', 'dupAlgNoneFirst', 'dupAlgNoneLast', 'array', 'string',
    'bom', 'badUtf8', 'empty', 'algNumber', 'typNumber', 'kidNumber'),
  weight: 3,
});
/** Text edits of the encoded header/payload before signing (the signature covers them). */
const preSignArb = fc.oneof({ arbitrary: fc.constant('none'), weight: 12 }, {
  arbitrary: fc.constantFrom('padHeader', 'padPayload', 'wsHeader', 'wsPayload', 'nonCanonHeader', 'nonCanonPayload', 'plusPayload'),
  weight: 2,
});
const PART_CHARS = 'AQgw_-9Zaz=+/ .é\n';
/** Edits after signing. */
const postArb = fc.oneof(
  { arbitrary: fc.constant({ kind: 'none' as string, part: 0, n: 0 }), weight: 10 },
  {
    arbitrary: fc.record({
      kind: fc.constantFrom('bitflip', 'charReplace', 'padSig', 'nonCanonSig', 'truncateSig', 'emptySig', 'extraParts', 'dropPart',
        'wsSig', 'json', 'sigFromOtherAlg', 'appendSig', 'ecdsaEdge', 'ecdsaEdge'),
      part: fc.integer({ min: 0, max: 2 }),
      n: fc.nat(),
    }),
    weight: 4,
  },
);

export const recipeArb = fc.record({
  /** `valid`: a token the configuration accepts; `claims`: only claims vary; `mutant`: every dimension varies. */
  mode: fc.oneof({ arbitrary: fc.constant('valid'), weight: 2 }, { arbitrary: fc.constant('claims'), weight: 3 }, { arbitrary: fc.constant('mutant'), weight: 5 }),
  cfg: fc.integer({ min: 0, max: CONFIGS.length - 1 }),
  /** `fit`: a key whose alg the configuration allows (most runs), else any key. */
  keyPick: fc.oneof({ arbitrary: fc.constant('fit'), weight: 8 }, { arbitrary: fc.constant('any'), weight: 2 }),
  keyIdx: fc.nat(),
  headerAlg: fc.oneof({ arbitrary: fc.constant('same'), weight: 10 },
    { arbitrary: fc.constantFrom('ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519', 'HS256', 'none', 'RS512', ''), weight: 2 }),
  kid: fc.oneof({ arbitrary: fc.constant('own'), weight: 6 }, { arbitrary: fc.constantFrom('absent', 'other', 'unknown'), weight: 1 }),
  typ: fc.oneof({ arbitrary: fc.constant('fit'), weight: 6 },
    { arbitrary: fc.constantFrom(undefined, 'JWT', 'jwt', 'application/jwt', 'at+jwt', 'application/at+JWT', 'JOSE', 'AT+JWT'), weight: 3 }),
  claims: claimsArb,
  payloadRaw: payloadRawArb,
  headerRaw: headerRawArb,
  preSign: preSignArb,
  sigVariant: fc.oneof({ arbitrary: fc.constant('ok'), weight: 12 }, { arbitrary: fc.constantFrom('pssSalt20', 'pssSaltMax', 'derEcdsa'), weight: 1 }),
  post: postArb,
});
export type Recipe = typeof recipeArb extends fc.Arbitrary<infer T> ? T : never;

const enc = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Curve orders (SEC 2 §2.4.2, §2.5.1): for high-S and out-of-range R/S signatures. */
const ORDER: Readonly<Record<string, bigint>> = {
  ES256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551n,
  ES384: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973n,
};
const toBig = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
const toBuf = (v: bigint, n: number): Buffer => Buffer.from(v.toString(16).padStart(2 * n, '0').slice(-2 * n), 'hex');

/** R || S edits: s → n − s (still valid: ECDSA has no low-S rule), zero R or S, R = n, S zero-extended, all-ones S. */
function ecdsaEdge(sig: Buffer, alg: string, n: number): Buffer {
  const order = ORDER[alg];
  if (order === undefined || sig.length % 2 !== 0) return sig;
  const half = sig.length / 2;
  const r = sig.subarray(0, half);
  const sv = toBig(sig.subarray(half));
  switch (n % 6) {
    case 0: return Buffer.concat([r, toBuf(order - sv, half)]);
    case 1: return Buffer.concat([Buffer.alloc(half), sig.subarray(half)]);
    case 2: return Buffer.concat([r, Buffer.alloc(half)]);
    case 3: return Buffer.concat([toBuf(order, half), sig.subarray(half)]);
    case 4: return Buffer.concat([r, Buffer.alloc(1), sig.subarray(half)]); // same S, one byte longer
    default: return Buffer.concat([r, Buffer.alloc(half, 0xff)]);
  }
}
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Changes the unused low bits of the last character (a non-canonical encoding of the same bytes). */
function nonCanonical(s: string): string {
  const spare = s.length % 4 === 2 ? 4 : s.length % 4 === 3 ? 2 : 0;
  if (spare === 0) return s;
  const i = B64.indexOf(s[s.length - 1] as string);
  return s.slice(0, -1) + B64[(i | ((1 << spare) - 1))];
}

function rawPayload(json: string, kind: string): Buffer {
  const body = json.slice(1, -1);
  switch (kind) {
    case 'dupExpLast': return Buffer.from(`{${body},"exp":${NOW - 100}}`);
    case 'dupExpFirst': return Buffer.from(`{"exp":${NOW - 100},${body}}`);
    case 'dupIssLast': return Buffer.from(`{${body},"iss":"https://other"}`);
    case 'dupSubLast': return Buffer.from(`{${body},"sub":"mallory"}`);
    case 'dupProto': return Buffer.from(`{${body},"__proto__":{"sub":"x"}}`);
    case 'array': return Buffer.from(`[${json}]`);
    case 'string': return Buffer.from(JSON.stringify(json));
    case 'number': return Buffer.from('12');
    case 'null': return Buffer.from('null');
    case 'invalidJson': return Buffer.from(`${json.slice(0, -1)},}`);
    case 'bom': return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]);
    case 'badUtf8': return Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from(',"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    case 'empty': return Buffer.alloc(0);
    case 'trailingGarbage': return Buffer.from(`${json}x`);
    case 'whitespace': return Buffer.from(` \n${json}\t `);
    default: return Buffer.from(json);
  }
}

function rawHeader(h: Record<string, unknown>, kind: string): Buffer {
  const json = JSON.stringify(h);
  const body = json.slice(1, -1);
  switch (kind) {
    case 'critB64': return Buffer.from(JSON.stringify({ ...h, b64: true, crit: ['b64'] }));
    case 'critX': return Buffer.from(JSON.stringify({ ...h, x: 1, crit: ['x'] }));
    case 'b64false': return Buffer.from(JSON.stringify({ ...h, b64: false }));
    case 'jwk': return Buffer.from(JSON.stringify({ ...h, jwk: { kty: 'oct', k: 'AAAA' }, jku: 'https://evil' }));
    case 'dupAlgNoneFirst': return Buffer.from(`{"alg":"none",${body}}`);
    case 'dupAlgNoneLast': return Buffer.from(`{${body},"alg":"none"}`);
    case 'array': return Buffer.from(`[${json}]`);
    case 'string': return Buffer.from(JSON.stringify(json));
    case 'bom': return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]);
    case 'badUtf8': return Buffer.concat([Buffer.from(`{${body},"x":"`), Buffer.from([0xff]), Buffer.from('"}')]);
    case 'empty': return Buffer.alloc(0);
    case 'algNumber': return Buffer.from(JSON.stringify({ ...h, alg: 256 }));
    case 'typNumber': return Buffer.from(JSON.stringify({ ...h, typ: 5 }));
    case 'kidNumber': return Buffer.from(JSON.stringify({ ...h, kid: 5 }));
    default: return Buffer.from(json);
  }
}

function signWith(k: DiffKey, input: string, variant: string): Buffer {
  const data = Buffer.from(input, 'latin1');
  if (k.alg.startsWith('ES')) {
    return cryptoSign(`sha${k.alg.slice(2)}`, data, { key: k.privateKey, dsaEncoding: variant === 'derEcdsa' ? 'der' : 'ieee-p1363' });
  }
  if (k.alg.startsWith('PS')) {
    const saltLength = variant === 'pssSalt20' ? 20 : variant === 'pssSaltMax' ? constants.RSA_PSS_SALTLEN_MAX_SIGN : 32;
    return cryptoSign('sha256', data, { key: k.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
  }
  if (k.alg.startsWith('RS')) return cryptoSign('sha256', data, k.privateKey);
  return cryptoSign(null, data, k.privateKey);
}

/** Builds the token a recipe describes. */
export function buildToken(recipe: Recipe, keys: readonly DiffKey[]): { token: string; key: DiffKey } {
  const r = recipe.mode === 'mutant' ? recipe : {
    ...recipe, keyPick: 'fit', headerAlg: 'same', kid: 'own', typ: 'fit', payloadRaw: 'none', headerRaw: 'none', preSign: 'none',
    sigVariant: 'ok', post: { kind: 'none', part: 0, n: 0 },
    claims: recipe.mode === 'claims' ? recipe.claims : {
      iss: ISS, aud: (CONFIGS[recipe.cfg] as (typeof CONFIGS)[number]).audiences[0], sub: 'alice', exp: NOW + 600, nbf: NOW - 10, iat: NOW, scope: 'read', jti: 'j-1', cnf: omit,
    },
  };
  const cfg = CONFIGS[r.cfg] as (typeof CONFIGS)[number];
  const pool = r.keyPick === 'fit' ? keys.filter((x) => (cfg.algorithms as readonly string[]).includes(x.alg)) : keys;
  const k = pool[r.keyIdx % pool.length] as DiffKey;
  const alg = r.headerAlg === 'same' ? k.alg : r.headerAlg;
  const typ = r.typ === 'fit' ? cfg.typ : r.typ;
  const inJwks = keys.filter((x) => x.inJwks);
  const other = inJwks.find((x) => x.kid !== k.kid && x.alg === k.alg) ?? inJwks[0] as DiffKey;
  const kid = r.kid === 'own' ? (k.inJwks ? k.kid : other.kid) : r.kid === 'other' ? other.kid : r.kid === 'unknown' ? 'nope' : undefined;
  const header: Record<string, unknown> = { alg, ...(kid === undefined ? {} : { kid }), ...(typ === undefined ? {} : { typ }) };
  const claims: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(r.claims)) if (v !== omit) claims[name] = v;
  const json = JSON.stringify(claims).replaceAll(`"${HUGE}"`, '1e400').replaceAll(`"${NEG_HUGE}"`, '-1e400');
  let h = enc(rawHeader(header, r.headerRaw));
  let p = enc(rawPayload(json, r.payloadRaw));
  switch (r.preSign) {
    case 'padHeader': h += '='.repeat((4 - (h.length % 4)) % 4 || 4); break;
    case 'padPayload': p += '='.repeat((4 - (p.length % 4)) % 4 || 4); break;
    case 'wsHeader': h = `${h.slice(0, 4)} ${h.slice(4)}`; break;
    case 'wsPayload': p = `${p.slice(0, 4)}\n${p.slice(4)}`; break;
    case 'nonCanonHeader': h = nonCanonical(h); break;
    case 'nonCanonPayload': p = nonCanonical(p); break;
    case 'plusPayload': p = p.replace(/-|_/, '+'); break;
  }
  let s = enc(signWith(k, `${h}.${p}`, r.sigVariant));
  const parts = [h, p, s];
  const { kind, part, n } = r.post;
  const target = parts[part] as string;
  switch (kind) {
    case 'bitflip': {
      const bytes = Buffer.from(target, 'base64url');
      if (bytes.length > 0) {
        const bit = n % (bytes.length * 8);
        bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
        parts[part] = enc(bytes);
      }
      break;
    }
    case 'charReplace': if (target.length > 0) {
      const i = n % target.length;
      parts[part] = target.slice(0, i) + (PART_CHARS[Math.floor(n / target.length) % PART_CHARS.length] as string) + target.slice(i + 1);
    } break;
    case 'padSig': parts[2] = `${s}${'='.repeat((4 - (s.length % 4)) % 4 || 4)}`; break;
    case 'nonCanonSig': parts[2] = nonCanonical(s); break;
    case 'truncateSig': parts[2] = s.slice(0, n % Math.max(1, s.length)); break;
    case 'emptySig': parts[2] = ''; break;
    case 'appendSig': parts[2] = s + enc(Buffer.from([n & 255])); break;
    case 'wsSig': parts[2] = `${s.slice(0, 8)} ${s.slice(8)}`; break;
    case 'sigFromOtherAlg': {
      const o = keys[(r.keyIdx + 1 + (n % (keys.length - 1))) % keys.length] as DiffKey;
      s = enc(signWith(o, `${h}.${p}`, 'ok'));
      parts[2] = s;
      break;
    }
    case 'ecdsaEdge': parts[2] = enc(ecdsaEdge(Buffer.from(s, 'base64url'), k.alg, n)); break;
    case 'extraParts': return { token: `${parts.join('.')}.${enc('x')}.${enc('y')}`, key: k };
    case 'dropPart': parts.splice(part, 1); break;
    case 'json': return { token: JSON.stringify({ protected: h, payload: p, signature: s }), key: k };
  }
  return { token: parts.join('.'), key: k };
}
