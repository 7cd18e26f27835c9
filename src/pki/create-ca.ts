/**
 * A self-signed development CA for one SPIFFE trust domain.
 */
import { createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { generateRsaKey, rsaKeyFromPem, signCertificate, wholeSeconds } from './forge-cert.ts';
import { randomSerialHex } from './serial-number.ts';
import { trustDomainError } from '../core/spiffe-id.ts';

/** A certificate and its private key, both PEM (the key PKCS#8). */
export interface CertifiedKey {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CreateCaOptions {
  readonly commonName: string;
  /** SPIFFE trust domain this CA signs for, e.g. `mesh.local`. */
  readonly trustDomain: string;
  /** Validity in days from `now`. */
  readonly days: number;
  /** Issue time (default: the current time). */
  readonly now?: Date;
  /** Reuse an RSA key (PEM) instead of generating one. Tests only: a real CA wants its own key. */
  readonly keyPem?: string;
}

/**
 * Clock skew tolerated between the machine that issues and the one that
 * verifies (containers, VMs): validity starts this much before `now`.
 */
export const BACKDATE_MS = 5 * 60_000;

/**
 * Creates a self-signed RSA-2048 CA: basicConstraints cA=true and keyUsage
 * keyCertSign+cRLSign (both critical, RFC 5280 §4.2.1.3/§4.2.1.9 — cRLSign is
 * what lets OpenSSL accept this CA's CRLs), and the trust domain's SPIFFE ID
 * `spiffe://<td>` as URI SAN (X509-SVID §4.1 allows it on signing certs).
 * Throws TypeError for bad options.
 */
export function createCa(opts: CreateCaOptions): CertifiedKey {
  if (opts.commonName.trim() === '') throw new TypeError('commonName is empty');
  const tdError = trustDomainError(opts.trustDomain);
  if (tdError) throw new TypeError(`invalid trust domain ${JSON.stringify(opts.trustDomain)}: ${tdError}`);
  if (!Number.isInteger(opts.days) || opts.days < 1) throw new TypeError('days must be a positive integer');
  const now = opts.now ?? new Date();
  const rsa = opts.keyPem ? rsaKeyFromPem(opts.keyPem) : generateRsaKey();

  const cert = forge.pki.createCertificate();
  cert.publicKey = rsa.publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = wholeSeconds(new Date(now.getTime() - BACKDATE_MS));
  cert.validity.notAfter = wholeSeconds(new Date(now.getTime() + opts.days * 86_400_000));
  const name = [
    { name: 'commonName', value: opts.commonName },
    { name: 'organizationName', value: opts.trustDomain },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'subjectAltName', altNames: [{ type: 6, value: `spiffe://${opts.trustDomain}` }] },
  ]);
  signCertificate(cert, createPrivateKey(rsa.keyPem));
  return { certPem: forge.pki.certificateToPem(cert), keyPem: rsa.keyPem };
}
