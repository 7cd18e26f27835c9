/**
 * Signs development JWTs (ES256), optionally bound to a client certificate.
 */
import { X509Certificate, createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { jwtKeyId, loadJwtKey } from './jwt-key.ts';

export interface MintTokenOptions {
  /** PKCS#8 PEM of the P-256 signing key. */
  readonly keyPem: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  /** Default `https://issuer.mesh.local`. */
  readonly iss?: string;
  /** Lifetime; exp = iat + ttlSeconds (default 300; negative gives an expired token). */
  readonly ttlSeconds?: number;
  /** Extra claims. Must not name a claim set from the options (iss, sub, aud, iat, exp, jti, cnf). */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Bind the token to this certificate (PEM): RFC 8705 §3.1 `cnf["x5t#S256"]`. */
  readonly bindCertPem?: string;
  /** Default: a random UUID. */
  readonly jti?: string;
  /** Header `kid`; default the RFC 7638 thumbprint of the key (what jwksForKey publishes). */
  readonly kid?: string;
  /** Issue time (default: now); ms since the epoch or a Date. */
  readonly now?: number | Date;
}

export const DEFAULT_ISSUER = 'https://issuer.mesh.local';
export const DEFAULT_TTL_SECONDS = 300;
/** Claims mintToken sets itself; `claims` may not override them. `nbf` is free for tests. */
export const RESERVED_CLAIMS: readonly string[] = ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'cnf'];

/**
 * RFC 8705 §3.1: base64url SHA-256 of the DER certificate, the value of
 * `cnf["x5t#S256"]`. TypeError when `certPem` is not a certificate.
 */
export function certThumbprintS256(certPem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new TypeError('not a PEM X.509 certificate');
  }
  return createHash('sha256').update(cert.raw).digest('base64url');
}

/**
 * Returns a compact JWS: header { alg: ES256, kid, typ: JWT }, payload
 * { ...claims, iss, sub, aud, iat, exp, jti[, cnf] }. Throws TypeError for
 * misuse (bad key, reserved claim in `claims`, non-integer ttl).
 */
export async function mintToken(opts: MintTokenOptions): Promise<string> {
  const key = loadJwtKey(opts.keyPem);
  const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isSafeInteger(ttl)) throw new TypeError('ttlSeconds must be an integer');
  const claims = opts.claims ?? {};
  for (const name of RESERVED_CLAIMS) {
    if (Object.hasOwn(claims, name)) throw new TypeError(`claim "${name}" is set by its own option, not through claims`);
  }
  const nowMs = opts.now === undefined ? Date.now() : typeof opts.now === 'number' ? opts.now : opts.now.getTime();
  const iat = Math.floor(nowMs / 1000);
  const payload: Record<string, unknown> = { ...claims };
  if (opts.bindCertPem !== undefined) payload['cnf'] = { 'x5t#S256': certThumbprintS256(opts.bindCertPem) };
  const aud = typeof opts.aud === 'string' ? opts.aud : [...opts.aud];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? (await jwtKeyId(key)), typ: 'JWT' })
    .setIssuer(opts.iss ?? DEFAULT_ISSUER)
    .setSubject(opts.sub)
    .setAudience(aud)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl)
    .setJti(opts.jti ?? randomUUID())
    .sign(key);
}
