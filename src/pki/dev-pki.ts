/**
 * The dev PKI folder that `meshgate certs init` writes and the canonical
 * configuration reads (PRODUCT §2): file names, contents, and writing them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, type CertifiedKey } from './create-ca.ts';
import { createCrl } from './create-crl.ts';
import { issueCert, type IssuedCert } from './issue-cert.ts';
import { createJwtKey, jwksForKey, type Jwks } from './jwt-key.ts';
import { writeFileAtomic } from './write-file-atomic.ts';

/** File names inside the PKI folder (fixed interface, PRODUCT §2). */
export const PKI_FILES = Object.freeze({
  caCert: 'ca.crt',
  caKey: 'ca.key',
  gatewayCert: 'gateway.crt',
  gatewayKey: 'gateway.key',
  jwtKey: 'jwt.key',
  jwks: 'jwks.json',
  crl: 'ca.crl',
});

export type PkiFile = keyof typeof PKI_FILES;
export type PkiPaths = Readonly<Record<PkiFile, string>>;

export const DEFAULT_TRUST_DOMAIN = 'mesh.local';
export const CA_DAYS = 3650;
export const GATEWAY_DAYS = 365;
/**
 * CRL lifetime. Once nextUpdate passes, OpenSSL rejects every client of a
 * gateway configured with the CRL, so a dev CRL lives long; each
 * `certs revoke` re-signs it with a fresh nextUpdate.
 */
export const CRL_DAYS = 365;

/** The absolute paths of the PKI files in `dir`. */
export function pkiPaths(dir: string): PkiPaths {
  const out = {} as Record<PkiFile, string>;
  for (const [k, name] of Object.entries(PKI_FILES)) out[k as PkiFile] = join(dir, name);
  return out;
}

/** The SPIFFE ID of the gateway in a trust domain. */
export function gatewaySpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/meshgate`;
}

/** Everything `certs init` creates, in memory. */
export interface DevPki {
  readonly trustDomain: string;
  readonly ca: CertifiedKey;
  readonly gateway: IssuedCert;
  readonly jwtKeyPem: string;
  readonly jwks: Jwks;
  /** An empty CRL, so a config with `crl:` works before anything is revoked. */
  readonly crlPem: string;
}

/**
 * Creates a CA, a gateway certificate (SAN DNS localhost, IP 127.0.0.1 and
 * ::1, URI spiffe://TD/meshgate; serverAuth, and clientAuth so the same cert
 * can do mTLS to the upstream), an ES256 JWT key with its JWKS, and an empty
 * CRL. `leafKeyPem` reuses an RSA key for the gateway (tests only).
 */
export async function createDevPki(opts: { trustDomain: string; now?: Date; leafKeyPem?: string }): Promise<DevPki> {
  const now = opts.now ?? new Date();
  const ca = createCa({ commonName: `meshgate dev CA (${opts.trustDomain})`, trustDomain: opts.trustDomain, days: CA_DAYS, now });
  const gateway = issueCert({
    ca,
    commonName: 'meshgate',
    spiffeIds: [gatewaySpiffeId(opts.trustDomain)],
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    serverAuth: true,
    clientAuth: true,
    days: GATEWAY_DAYS,
    now,
    ...(opts.leafKeyPem !== undefined ? { keyPem: opts.leafKeyPem } : {}),
  });
  const jwtKeyPem = createJwtKey();
  const jwks = await jwksForKey(jwtKeyPem);
  const crlPem = createCrl({ ca, now, days: CRL_DAYS });
  return { trustDomain: opts.trustDomain, ca, gateway, jwtKeyPem, jwks, crlPem };
}

/** The PKI files that already exist in `dir` (absolute paths). */
export function existingPkiFiles(dir: string): string[] {
  return Object.values(pkiPaths(dir)).filter((p) => existsSync(p));
}

/**
 * Writes the PKI into `dir` (which must exist), each file atomically; private
 * keys with mode 0600. Returns the paths written, in a stable order.
 * Overwrites: the caller decides (certs init refuses without --force).
 */
export function writeDevPki(dir: string, pki: DevPki): PkiPaths {
  const p = pkiPaths(dir);
  writeFileAtomic(p.caKey, pki.ca.keyPem, 0o600);
  writeFileAtomic(p.caCert, pki.ca.certPem);
  writeFileAtomic(p.gatewayKey, pki.gateway.keyPem, 0o600);
  writeFileAtomic(p.gatewayCert, pki.gateway.certPem);
  writeFileAtomic(p.jwtKey, pki.jwtKeyPem, 0o600);
  writeFileAtomic(p.jwks, `${JSON.stringify(pki.jwks, null, 2)}\n`);
  writeFileAtomic(p.crl, pki.crlPem);
  return p;
}
