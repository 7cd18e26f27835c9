/**
 * The peer identity `policy explain --cert FILE` would get, without a TLS
 * handshake (we have the certificate, not its private key). The chain,
 * validity, clientAuth usage and CRL are checked offline against the
 * configured CA bundle and CRLs, and mapped to the same error codes as the
 * listener's OpenSSL verification (tlsVerifyError); the X509-SVID rules are
 * the listener's own (peerFromCertificate).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TlsConfig } from '../config/schema.ts';
import { parseCrl } from '../pki/parse-crl.ts';
import { peerFromCertificate, tlsVerifyError, type PeerResult } from '../tls/peer.ts';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

function certs(pem: string): X509Certificate[] {
  return [...pem.matchAll(PEM_CERT)].map((m) => new X509Certificate(m[0]));
}

const serialKey = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');

/** Reads a PEM certificate file and returns the peer result the listener would compute. Throws Error when unreadable. */
export async function peerFromCertFile(file: string, tls: TlsConfig, now: Date = new Date()): Promise<PeerResult> {
  let leaf: X509Certificate | undefined;
  try {
    leaf = certs(await readFile(file, 'utf8'))[0];
  } catch (e) {
    throw new Error(`${file}: cannot read certificate (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  if (!leaf) throw new Error(`${file}: no PEM certificate found`);
  const cas = certs(await readFile(tls.clientCa, 'utf8'));
  const issuer = cas.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  const refuse = (code: string): PeerResult => ({ kind: 'error', error: tlsVerifyError(code), fingerprint256: leaf.fingerprint256.replace(/:/g, '').toLowerCase() });
  if (!issuer) return refuse('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  if (now < new Date(leaf.validFrom)) return refuse('CERT_NOT_YET_VALID');
  if (now > new Date(leaf.validTo)) return refuse('CERT_HAS_EXPIRED');
  const eku = leaf.keyUsage;
  // RFC 5280 §4.2.1.12: with an extKeyUsage present, clientAuth (or any) must be in it.
  if (eku !== undefined && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) return refuse('INVALID_PURPOSE');
  const crlFiles = tls.crl === undefined ? [] : Array.isArray(tls.crl) ? tls.crl : [tls.crl];
  for (const f of crlFiles) {
    let revoked: readonly { serialNumber: string }[];
    try {
      revoked = parseCrl(await readFile(f, 'utf8'), { ca: { certPem: issuer.toString() } }).revoked;
    } catch {
      continue; // a CRL of another CA says nothing about this certificate
    }
    if (revoked.some((r) => serialKey(r.serialNumber) === serialKey(leaf.serialNumber))) return refuse('CERT_REVOKED');
  }
  return peerFromCertificate(leaf, new Set(tls.trustDomains));
}
