/**
 * Writes a v2 X.509 CRL (RFC 5280 §5) for a dev CA. node-forge cannot create
 * CRLs, so the structure is built with forge.asn1 and signed natively.
 */
import { X509Certificate, createPrivateKey, sign } from 'node:crypto';
import forge from 'node-forge';
import type { CertifiedKey } from './create-ca.ts';
import { BACKDATE_MS } from './create-ca.ts';
import {
  OID, algorithmSha256WithRsa, certSubjectDer, extension, integer, seq, time, toPem,
} from './crl-asn1.ts';
import { keyIdentifierHex, wholeSeconds } from './forge-cert.ts';
import { normalizeSerialHex } from './serial-number.ts';

/** One revoked certificate: serial (hex) and when it was revoked. */
export interface RevokedEntry {
  readonly serialNumber: string;
  readonly revocationDate: Date;
}

export interface CreateCrlOptions {
  /** The issuing CA: the CRL is signed with its key and names its subject. */
  readonly ca: CertifiedKey;
  readonly revoked?: readonly RevokedEntry[];
  /** RFC 5280 §5.2.3: monotonically increasing; default 1. */
  readonly crlNumber?: bigint;
  /** Issue time (default: now). thisUpdate is backdated by BACKDATE_MS for clock skew. */
  readonly now?: Date;
  /** nextUpdate = now + days (default 30). Past it, OpenSSL refuses every client. */
  readonly days?: number;
}

/**
 * Builds and signs a CRL, returned as PEM (`X509 CRL`). Serials are
 * de-duplicated (first entry wins). Throws TypeError for a bad CA pair,
 * a non-hex serial or a bad CRL number.
 */
export function createCrl(opts: CreateCrlOptions): string {
  const now = opts.now ?? new Date();
  const days = opts.days ?? 30;
  if (!Number.isInteger(days) || days < 1) throw new TypeError('days must be a positive integer');
  const crlNumber = opts.crlNumber ?? 1n;
  // RFC 5280 §5.2.3: a CRL number is at most 20 octets.
  if (crlNumber < 0n || crlNumber >= 1n << 159n) throw new TypeError('crlNumber out of range');

  const caX509 = new X509Certificate(opts.ca.certPem);
  const key = createPrivateKey(opts.ca.keyPem);
  if (key.asymmetricKeyType !== 'rsa' || !caX509.checkPrivateKey(key)) throw new TypeError('CA key must be the RSA key of the CA certificate');
  const keyId = keyIdentifierHex(forge.pki.certificateFromPem(opts.ca.certPem));

  const seen = new Set<string>();
  const entries: forge.asn1.Asn1[] = [];
  for (const r of opts.revoked ?? []) {
    const serial = normalizeSerialHex(r.serialNumber);
    if (seen.has(serial)) continue;
    seen.add(serial);
    entries.push(seq([integer(serial), time(wholeSeconds(r.revocationDate))]));
  }

  const tbsFields: forge.asn1.Asn1[] = [
    integer(1n), // version v2 (RFC 5280 §5.1.2.1: required because extensions are present)
    algorithmSha256WithRsa(),
    forge.asn1.fromDer(certSubjectDer(caX509.raw).toString('binary')),
    time(wholeSeconds(new Date(now.getTime() - BACKDATE_MS))),
    time(wholeSeconds(new Date(now.getTime() + days * 86_400_000))),
  ];
  // RFC 5280 §5.1.2.6: with no revoked certificates the list MUST be absent, not empty.
  if (entries.length > 0) tbsFields.push(seq(entries));
  const aki = seq([forge.asn1.create(forge.asn1.Class.CONTEXT_SPECIFIC, 0 as forge.asn1.Type, false, forge.util.hexToBytes(keyId))]);
  tbsFields.push(forge.asn1.create(forge.asn1.Class.CONTEXT_SPECIFIC, 0 as forge.asn1.Type, true, [
    seq([extension(OID.crlNumber, integer(crlNumber)), extension(OID.authorityKeyIdentifier, aki)]),
  ]));

  const tbs = seq(tbsFields);
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, key);
  const list = seq([
    tbs,
    algorithmSha256WithRsa(),
    forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
  ]);
  return toPem('X509 CRL', Buffer.from(forge.asn1.toDer(list).getBytes(), 'binary'));
}
