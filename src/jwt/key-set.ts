/**
 * An imported JWKS: public verification keys, imported once per JWKS
 * version and looked up by `kid` and `alg` on every token.
 *
 * Import is deliberately picky (RFC 7517 §4): only asymmetric public keys
 * meant for signatures are kept. A symmetric (`oct`) key is never usable —
 * verifying with one is the algorithm-confusion attack — and a JWK with
 * private members is a publishing mistake we refuse to propagate.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/** Algorithms meshgate verifies, and the key type/curve each one requires. */
const ALG_KEY: Readonly<Record<string, { kty: string; crv?: string }>> = Object.freeze({
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  RS256: { kty: 'RSA' }, RS384: { kty: 'RSA' }, RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' }, PS384: { kty: 'RSA' }, PS512: { kty: 'RSA' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
});

/** True for an asymmetric signature algorithm meshgate can verify. */
export function isSupportedAlg(alg: string): boolean {
  return Object.hasOwn(ALG_KEY, alg);
}

/** Members that only a private or symmetric JWK carries (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
/** RFC 7518 §3.3: RSA keys below 2048 bits must not be used (jose refuses them too). */
const MIN_RSA_BITS = 2048;

/** One imported verification key. */
export interface VerificationKey {
  readonly kid: string | undefined;
  /** The JWK `alg` when published: the key is then usable with that algorithm only. */
  readonly alg: string | undefined;
  readonly kty: string;
  readonly crv: string | undefined;
  readonly key: KeyObject;
}

/** An immutable set of verification keys; identity changes whenever the JWKS content changes. */
export class KeySet {
  /** SHA-256 (hex, first 16 chars) of the JWKS document the keys came from. */
  readonly version: string;
  readonly size: number;
  /** Why individual JWKs were skipped (kid and reason only; never key material). */
  readonly ignored: readonly string[];
  readonly #byKid: Map<string, VerificationKey[]>;
  readonly #all: readonly VerificationKey[];

  constructor(keys: readonly VerificationKey[], version: string, ignored: readonly string[]) {
    this.version = version;
    this.size = keys.length;
    this.ignored = Object.freeze([...ignored]);
    this.#all = Object.freeze([...keys]);
    this.#byKid = new Map();
    for (const k of keys) {
      if (k.kid === undefined) continue;
      const list = this.#byKid.get(k.kid);
      if (list) list.push(k);
      else this.#byKid.set(k.kid, [k]);
    }
  }

  /** True when some key carries this `kid` (whatever its algorithm). */
  hasKid(kid: string): boolean {
    return this.#byKid.has(kid);
  }

  /**
   * Keys that may verify a token with this `alg`: by `kid` when the token
   * names one, otherwise every key whose type (and JWK `alg`, if any) fits.
   */
  candidates(kid: string | undefined, alg: string): VerificationKey[] {
    const pool = kid === undefined ? this.#all : this.#byKid.get(kid);
    if (!pool) return [];
    const want = ALG_KEY[alg];
    if (!want) return [];
    const out: VerificationKey[] = [];
    for (const k of pool) {
      if (k.kty !== want.kty || (want.crv !== undefined && k.crv !== want.crv)) continue;
      if (k.alg !== undefined && k.alg !== alg) continue;
      out.push(k);
    }
    return out;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(kid: unknown, index: number): string {
  return typeof kid === 'string' ? `kid ${JSON.stringify(kid.slice(0, 64))}` : `key #${index}`;
}

/** Imports one JWK, or returns the reason it is not a usable verification key. */
function importOne(jwk: Record<string, unknown>): VerificationKey | string {
  const { kty, kid, alg, use, crv } = jwk;
  if (typeof kty !== 'string') return 'missing kty';
  if (kty === 'oct') return 'symmetric key (kty oct) is never used for verification';
  if (kty !== 'EC' && kty !== 'RSA' && kty !== 'OKP') return `unsupported kty ${JSON.stringify(kty)}`;
  if (kid !== undefined && typeof kid !== 'string') return 'kid is not a string';
  if (use !== undefined && use !== 'sig') return `use ${JSON.stringify(use)} is not "sig"`;
  if (jwk['key_ops'] !== undefined && !(Array.isArray(jwk['key_ops']) && jwk['key_ops'].includes('verify'))) {
    return 'key_ops does not include "verify"';
  }
  if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined)) return 'private key material published in a JWKS';
  if (alg !== undefined) {
    if (typeof alg !== 'string' || !isSupportedAlg(alg)) return `unsupported alg ${JSON.stringify(alg)}`;
    const want = ALG_KEY[alg];
    if (want && (want.kty !== kty || (want.crv !== undefined && want.crv !== crv))) return `alg ${alg} does not fit kty ${kty}`;
  }
  if (crv !== undefined && typeof crv !== 'string') return 'crv is not a string';
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (e) {
    return `cannot import: ${(e as Error).message}`;
  }
  if (key.type !== 'public') return 'not a public key';
  if (kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return `RSA key shorter than ${MIN_RSA_BITS} bits`;
  if (kty === 'OKP' && crv !== 'Ed25519') return `unsupported OKP curve ${JSON.stringify(crv)}`;
  return { kid, alg, kty, crv, key };
}

/**
 * Parses and imports a JWKS document. Throws an Error (message safe to log)
 * when the document is not a JWKS or holds no usable key: serving an empty
 * key set would reject every token, so callers keep their previous keys.
 */
export function importJwks(text: string | Uint8Array): KeySet {
  const raw = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  const version = createHash('sha256').update(raw).digest('hex').slice(0, 16);
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw new Error(`not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(doc) || !Array.isArray(doc['keys'])) throw new Error('not a JWKS: expected an object with a "keys" array');
  const keys: VerificationKey[] = [];
  const ignored: string[] = [];
  doc['keys'].forEach((jwk: unknown, i: number) => {
    if (!isPlainObject(jwk)) {
      ignored.push(`key #${i}: not an object`);
      return;
    }
    const r = importOne(jwk);
    if (typeof r === 'string') ignored.push(`${describe(jwk['kid'], i)}: ${r}`);
    else keys.push(r);
  });
  if (keys.length === 0) {
    throw new Error(`no usable signature verification key${ignored.length ? ` (${ignored.join('; ')})` : ''}`);
  }
  return new KeySet(keys, version, ignored);
}
