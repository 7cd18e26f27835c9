/**
 * Synchronous compact-JWT verification with node:crypto on pre-imported
 * KeyObjects: the cache-miss path of JwtVerifier.
 *
 * jose's `jwtVerify` goes through WebCrypto, which is async (a threadpool
 * hop per token) and re-wraps the KeyObject as a CryptoKey; the signature
 * check itself is the same OpenSSL primitive. This module performs the
 * same steps in the same order as jose 6 (`jwtVerify` → `verifyCompact` →
 * `validateClaimsSet`) and throws jose's own error classes, so
 * mapJoseError gives every failure exactly the code and reason the jose
 * path gave. test/unit/jwt-fast-verify.test.ts holds the two
 * paths to the same answers.
 *
 * Deliberately stricter than jose on its own (never looser): base64url
 * must use the URL alphabet without padding or whitespace (jose's atob
 * fallback tolerates both), and any `crit` header is refused (RFC 7515
 * §4.1.11: we implement no extension, and `b64: false` — RFC 7797 — is
 * never acceptable in a JWT). decodeToken refuses those tokens earlier
 * anyway, so the verifier's answers are unchanged.
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { errors, type JWTPayload } from 'jose';

/** The subset of jose's JWTVerifyOptions the verifier uses; a value of this type is also valid for jose. */
export interface FastJwtVerifyOptions {
  readonly algorithms: readonly string[];
  readonly issuer: string;
  readonly audience: readonly string[];
  /** Seconds (may be fractional), >= 0. */
  readonly clockTolerance: number;
  readonly currentDate: Date;
  readonly requiredClaims: readonly string[];
  readonly typ?: string;
}

interface AlgSpec {
  /** Digest for crypto.verify; null for EdDSA, which hashes internally (RFC 8037 §3.1). */
  readonly hash: string | null;
  readonly keyType: readonly string[];
  readonly curve?: string;
  readonly padding?: number;
  /** RFC 7518 §3.5: the PSS salt is as long as the hash output. */
  readonly saltLength?: number;
  /** RFC 7518 §3.4: ECDSA signatures are R || S, each this many bytes (not DER). */
  readonly rsBytes?: number;
}

const PSS = constants.RSA_PKCS1_PSS_PADDING;
const ALGS: Readonly<Record<string, AlgSpec>> = Object.freeze({
  ES256: { hash: 'sha256', keyType: ['ec'], curve: 'prime256v1', rsBytes: 32 },
  ES384: { hash: 'sha384', keyType: ['ec'], curve: 'secp384r1', rsBytes: 48 },
  ES512: { hash: 'sha512', keyType: ['ec'], curve: 'secp521r1', rsBytes: 66 },
  RS256: { hash: 'sha256', keyType: ['rsa'] },
  RS384: { hash: 'sha384', keyType: ['rsa'] },
  RS512: { hash: 'sha512', keyType: ['rsa'] },
  PS256: { hash: 'sha256', keyType: ['rsa', 'rsa-pss'], padding: PSS, saltLength: 32 },
  PS384: { hash: 'sha384', keyType: ['rsa', 'rsa-pss'], padding: PSS, saltLength: 48 },
  PS512: { hash: 'sha512', keyType: ['rsa', 'rsa-pss'], padding: PSS, saltLength: 64 },
  EdDSA: { hash: null, keyType: ['ed25519'] },
  Ed25519: { hash: null, keyType: ['ed25519'] },
});

/** RFC 7518 §3.3 / §3.5: RSA keys below 2048 bits are refused (jose's checkModulusLength). */
const MIN_RSA_BITS = 2048;
const B64URL = /^[A-Za-z0-9_-]*$/;
const ASCII = /^[\x00-\x7f]*$/;
// Same decoder as jose: fatal on invalid UTF-8, BOM stripped.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict base64url (RFC 7515 §2, RFC 4648 §5 without padding); undefined when not. */
function b64urlDecode(s: string): Buffer | undefined {
  if (s.length % 4 === 1 || !B64URL.test(s)) return undefined;
  return Buffer.from(s, 'base64url');
}

/** jose's isObject: a plain JSON object, not an array or null. */
function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** jose's typ normalisation (RFC 7515 §4.1.9: the `application/` prefix may be omitted). */
function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
}

/** KeyObjects are immutable: once a key passed checkKey for an alg, it always will. */
const checkedKeys = new WeakMap<KeyObject, Set<string>>();

function checkKey(alg: string, spec: AlgSpec, key: KeyObject): void {
  const checked = checkedKeys.get(key);
  if (checked?.has(alg)) return;
  // Same failures jose's prepareKey/checkModulusLength raise (TypeError → jwt_bad_signature).
  if (key.type !== 'public') throw new TypeError(`KeyObject instances must be of type "public" for the ${alg} algorithm`);
  const type = key.asymmetricKeyType ?? '';
  if (!spec.keyType.includes(type)) throw new TypeError(`key type ${type} is not usable with ${alg}`);
  const details = key.asymmetricKeyDetails;
  if (spec.curve !== undefined && details?.namedCurve !== spec.curve) throw new TypeError(`key curve is not usable with ${alg}`);
  if (type.startsWith('rsa') && (details?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new TypeError(`${alg} requires key modulusLength to be 2048 bits or larger`);
  }
  if (checked) checked.add(alg);
  else checkedKeys.set(key, new Set([alg]));
}

/** One DER INTEGER (X.690 §8.3) holding the unsigned big-endian `v`, minimally encoded. */
function derInteger(v: Buffer): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = v.subarray(i);
  const pad = ((body[0] as number) & 0x80) !== 0 ? 1 : 0;
  const out = Buffer.allocUnsafe(2 + pad + body.length);
  out[0] = 0x02;
  out[1] = pad + body.length;
  if (pad) out[2] = 0;
  body.copy(out, 2 + pad);
  return out;
}

/**
 * R || S → DER ECDSA-Sig-Value (RFC 3279 §2.2.3), exactly what node does
 * for `dsaEncoding: 'ieee-p1363'`; done here because node's conversion
 * looks up the key's curve order through a legacy EC_KEY export on every
 * call. The wrong length is
 * a failed verification, as in node and WebCrypto.
 */
function p1363ToDer(sig: Buffer, n: number): Buffer | undefined {
  if (sig.length !== 2 * n) return undefined;
  const r = derInteger(sig.subarray(0, n));
  const s = derInteger(sig.subarray(n));
  const len = r.length + s.length;
  const head = len < 0x80 ? Buffer.from([0x30, len]) : Buffer.from([0x30, 0x81, len]);
  return Buffer.concat([head, r, s], head.length + len);
}

function verifySignature(spec: AlgSpec, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  if (spec.rsBytes !== undefined) {
    const der = p1363ToDer(signature, spec.rsBytes);
    // The bare KeyObject (DER is the default encoding): an options object
    // costs node another 10–15 µs per call.
    return der !== undefined && cryptoVerify(spec.hash, input, key, der);
  }
  if (spec.padding !== undefined) return cryptoVerify(spec.hash, input, { key, padding: spec.padding, saltLength: spec.saltLength as number }, signature);
  return cryptoVerify(spec.hash, input, key, signature);
}

function claimFailed(message: string, payload: JWTPayload, claim: string, reason: string): errors.JWTClaimValidationFailed {
  return new errors.JWTClaimValidationFailed(message, payload, claim, reason);
}

/** jose's validateNumericDate: present ⇒ typeof number (JSON's 1e400 is Infinity and passes, as in jose). */
function numericDate(claims: JWTPayload, claim: 'iat' | 'nbf' | 'exp'): number | undefined {
  const v = claims[claim];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw claimFailed(`"${claim}" claim must be a number`, claims, claim, 'invalid');
  return v;
}

/** RFC 7519 §7.2 steps 7–10 after the signature: claims, in jose's order (typ, presence, iss, aud, iat, nbf, exp). */
function validateClaims(header: Record<string, unknown>, payloadBytes: Buffer, o: FastJwtVerifyOptions): JWTPayload {
  let claims: unknown;
  try {
    claims = JSON.parse(utf8.decode(payloadBytes));
  } catch (cause) {
    throw new errors.JWTInvalid('JWT Claims Set must be a top-level JSON object', { cause });
  }
  if (!isJsonObject(claims)) throw new errors.JWTInvalid('JWT Claims Set must be a top-level JSON object');
  const c = claims as JWTPayload;
  if (o.typ !== undefined && (typeof header['typ'] !== 'string' || normalizeTyp(header['typ']) !== normalizeTyp(o.typ))) {
    throw claimFailed('unexpected "typ" JWT header value', c, 'typ', 'check_failed');
  }
  // jose checks presence in this order: iss, aud, then requiredClaims last-to-first.
  for (const claim of new Set([...o.requiredClaims, 'aud', 'iss'].reverse())) {
    if (!Object.hasOwn(c, claim)) throw claimFailed(`missing required "${claim}" claim`, c, claim, 'missing');
  }
  if (c.iss !== o.issuer) throw claimFailed('unexpected "iss" claim value', c, 'iss', 'check_failed');
  // RFC 7519 §4.1.3: accepted when any configured audience is (one of) the token's.
  const aud: unknown = c.aud;
  const audOk = typeof aud === 'string' ? o.audience.includes(aud) : Array.isArray(aud) && o.audience.some((a) => aud.includes(a));
  if (!audOk) throw claimFailed('unexpected "aud" claim value', c, 'aud', 'check_failed');
  const tolerance = o.clockTolerance;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('Invalid clockTolerance option input');
  const now = Math.floor(o.currentDate.getTime() / 1000);
  if (!Number.isFinite(now)) throw new TypeError('Invalid currentDate option input');
  numericDate(c, 'iat');
  const nbf = numericDate(c, 'nbf');
  // RFC 7519 §4.1.5 / §4.1.4, with the configured clock skew either way.
  if (nbf !== undefined && nbf > now + tolerance) throw claimFailed('"nbf" claim timestamp check failed', c, 'nbf', 'check_failed');
  const exp = numericDate(c, 'exp');
  if (exp !== undefined && exp <= now - tolerance) {
    throw new errors.JWTExpired('"exp" claim timestamp check failed', c, 'exp', 'check_failed');
  }
  return c;
}

/**
 * Verifies a compact JWS JWT with `key` and validates its claims, like
 * jose's `jwtVerify(token, key, options)` but synchronously. Throws jose
 * error classes (JWSInvalid, JOSEAlgNotAllowed, JWSSignatureVerificationFailed,
 * JWTInvalid, JWTClaimValidationFailed, JWTExpired) for untrusted-input
 * failures and TypeError for a key that cannot serve the token's alg.
 */
export function verifyJwtSync(token: string, key: KeyObject, options: FastJwtVerifyOptions): JWTPayload {
  if (typeof token !== 'string') throw new errors.JWSInvalid('Compact JWS must be a string or Uint8Array');
  // RFC 7515 §7.1: exactly three parts; a JWE (five) or JWS JSON serialization never gets here.
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) throw new errors.JWSInvalid('Invalid Compact JWS');
  const encodedHeader = token.slice(0, first);
  const encodedPayload = token.slice(first + 1, second);

  const headerBytes = b64urlDecode(encodedHeader);
  let header: unknown;
  try {
    if (headerBytes === undefined) throw new TypeError('The input to be decoded is not correctly encoded.');
    header = JSON.parse(utf8.decode(headerBytes));
  } catch (cause) {
    throw new errors.JWSInvalid('JWS Protected Header is invalid', { cause });
  }
  if (!isJsonObject(header)) throw new errors.JWSInvalid('JWS Protected Header is invalid');
  if (header['crit'] !== undefined) throw new errors.JWSInvalid('"crit" (Critical) Header Parameter is not supported');
  const alg = header['alg'];
  if (typeof alg !== 'string' || alg === '') throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (!options.algorithms.includes(alg)) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  const spec = Object.hasOwn(ALGS, alg) ? ALGS[alg] : undefined;
  if (spec === undefined) throw new errors.JOSENotSupported(`alg ${alg} is not supported`);
  if (!ASCII.test(encodedPayload)) throw new errors.JWSInvalid('The payload is not a valid base64url string');
  const signature = b64urlDecode(token.slice(second + 1));
  if (signature === undefined) throw new errors.JWSInvalid('Failed to base64url decode the signature');
  checkKey(alg, spec, key);

  // RFC 7515 §5.2 step 8: the signing input is the ASCII of the first two parts as received.
  const input = Buffer.from(token.slice(0, second), 'latin1');
  let verified: boolean;
  try {
    verified = verifySignature(spec, key, input, signature);
  } catch (cause) {
    throw new errors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!verified) throw new errors.JWSSignatureVerificationFailed();

  const payloadBytes = b64urlDecode(encodedPayload);
  if (payloadBytes === undefined) throw new errors.JWSInvalid('Failed to base64url decode the payload');
  return validateClaims(header, payloadBytes, options);
}
