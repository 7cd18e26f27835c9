/**
 * The dev JWT signing key (ES256, P-256) and the JWKS that publishes it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';

/** A public JWK as published in a JWKS (EC P-256 members plus metadata). */
export interface PublicJwk {
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly kid: string;
  readonly alg: 'ES256';
  readonly use: 'sig';
}

/** A JSON Web Key Set (RFC 7517 §5). */
export interface Jwks {
  readonly keys: readonly PublicJwk[];
}

/** A new P-256 private key as PKCS#8 PEM (the content of `jwt.key`). */
export function createJwtKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Loads an ES256 signing key; TypeError (caller misuse) when the PEM is not a
 * P-256 private key. The message never includes the key.
 */
export function loadJwtKey(keyPem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new TypeError('JWT key is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('JWT key must be an EC P-256 key (ES256)');
  }
  return key;
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of the key's public JWK: its `kid`. */
export async function jwtKeyId(key: KeyObject | string): Promise<string> {
  const k = typeof key === 'string' ? loadJwtKey(key) : key;
  const { kty, crv, x, y } = createPublicKey(k).export({ format: 'jwk' });
  return calculateJwkThumbprint({ kty, crv, x, y }, 'sha256');
}

/**
 * The JWKS for a signing key: one public JWK with kid = RFC 7638 thumbprint,
 * alg ES256, use sig. Only public members are copied (never `d`).
 */
export async function jwksForKey(keyPem: string): Promise<Jwks> {
  const key = loadJwtKey(keyPem);
  const { kty, crv, x, y } = createPublicKey(key).export({ format: 'jwk' });
  if (kty === undefined) throw new TypeError('JWT key has no key type');
  const kid = await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256');
  return { keys: [{ kty, crv, x, y, kid, alg: 'ES256', use: 'sig' }] };
}
