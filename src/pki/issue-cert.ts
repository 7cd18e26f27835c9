/**
 * Issues leaf (or intermediate) certificates from a dev CA, including the
 * deliberately wrong ones that security tests need.
 */
import { isIP } from 'node:net';
import forge from 'node-forge';
import type { CertifiedKey } from './create-ca.ts';
import { BACKDATE_MS } from './create-ca.ts';
import { generateRsaKey, loadCa, rsaKeyFromPem, signCertificate, wholeSeconds, type LoadedCa } from './forge-cert.ts';
import { randomSerialHex } from './serial-number.ts';

export interface IssueCertOptions {
  /** The signing CA (certificate + key PEM). */
  readonly ca: CertifiedKey;
  readonly commonName: string;
  /**
   * URI SANs, usually exactly one SPIFFE ID. NOT validated here, on purpose:
   * tests need certificates with zero, two or malformed IDs. Callers that take
   * user input validate with `parseSpiffeId` first.
   */
  readonly spiffeIds: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Issue a CA certificate (cA=true) instead of a leaf. */
  readonly isCa?: boolean;
  /** Default: `now` minus BACKDATE_MS. */
  readonly notBefore?: Date;
  /** Default: `now` plus `days`. */
  readonly notAfter?: Date;
  /** Validity in days when `notAfter` is not given (default 30). */
  readonly days?: number;
  /** Default: the current time. */
  readonly now?: Date;
  /** extKeyUsage serverAuth (default false). */
  readonly serverAuth?: boolean;
  /** extKeyUsage clientAuth (default true). */
  readonly clientAuth?: boolean;
  /**
   * Reuse this RSA private key (PEM) instead of generating one: harmless for
   * test leaf certificates and saves ~50 ms each.
   */
  readonly keyPem?: string;
}

/** An issued certificate, its key, and its serial as lowercase hex. */
export interface IssuedCert extends CertifiedKey {
  readonly serialNumber: string;
}

const DEFAULT_DAYS = 30;
const loaded = new WeakMap<CertifiedKey, LoadedCa>();

/**
 * Issues an RSA-2048 certificate signed with sha256WithRSAEncryption.
 * Leaf: basicConstraints cA=false (critical), keyUsage digitalSignature +
 * keyEncipherment (critical), extKeyUsage per `serverAuth`/`clientAuth`
 * (RFC 5280 §4.2.1.12; omitted when both are false). With `isCa`: cA=true and
 * keyCertSign+cRLSign+digitalSignature, so OpenSSL still accepts it as a TLS
 * client certificate and the gateway's own leaf check is what must refuse it.
 * Throws TypeError for unusable options (bad CA pair, bad IP, empty validity).
 */
export function issueCert(opts: IssueCertOptions): IssuedCert {
  let ca = loaded.get(opts.ca);
  if (!ca) {
    ca = loadCa(opts.ca);
    loaded.set(opts.ca, ca);
  }
  if (opts.commonName.trim() === '') throw new TypeError('commonName is empty');
  const now = opts.now ?? new Date();
  const days = opts.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1) throw new TypeError('days must be a positive integer');
  const notBefore = wholeSeconds(opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS));
  const notAfter = wholeSeconds(opts.notAfter ?? new Date(now.getTime() + days * 86_400_000));
  if (notAfter.getTime() <= notBefore.getTime()) throw new TypeError('notAfter must be after notBefore');
  for (const ip of opts.ipAddresses ?? []) if (isIP(ip) === 0) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);

  const rsa = opts.keyPem ? rsaKeyFromPem(opts.keyPem) : generateRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = rsa.publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: opts.commonName }]);
  cert.setIssuer(ca.cert.subject.attributes);

  const altNames = [
    ...opts.spiffeIds.map((value) => ({ type: 6, value })),
    ...(opts.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(opts.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  const isCa = opts.isCa ?? false;
  const serverAuth = opts.serverAuth ?? false;
  const clientAuth = opts.clientAuth ?? true;
  const extensions: object[] = [
    { name: 'basicConstraints', cA: isCa, critical: true },
    isCa
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    // RFC 5280 §4.2.1.1: lets verifiers pick the right CA key when one rotates.
    { name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(ca.keyIdHex) },
  ];
  if (serverAuth || clientAuth) extensions.push({ name: 'extKeyUsage', serverAuth, clientAuth });
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  cert.setExtensions(extensions);
  signCertificate(cert, ca.key);
  return { certPem: forge.pki.certificateToPem(cert), keyPem: rsa.keyPem, serialNumber: cert.serialNumber };
}
