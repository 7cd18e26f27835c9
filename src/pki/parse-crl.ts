/**
 * Reads a CRL written by createCrl (or any v1/v2 sha256WithRSA CRL) so that
 * `certs revoke` can append to it without losing earlier revocations.
 */
import { X509Certificate, verify } from 'node:crypto';
import forge from 'node-forge';
import { OID, certSubjectDer, fromPem, readIntegerHex, readTime, tlv } from './crl-asn1.ts';
import type { RevokedEntry } from './create-crl.ts';

/** What a CRL says. Serials are normalized lowercase hex. */
export interface ParsedCrl {
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** RFC 5280 §5.2.3 CRL number, when present. */
  readonly crlNumber: bigint | undefined;
  readonly revoked: readonly RevokedEntry[];
}

/** The CRL is unreadable, or (when a CA is given) not issued and signed by it. */
export class InvalidCrlError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidCrlError';
  }
}

const U = forge.asn1.Class.UNIVERSAL;
const T = forge.asn1.Type;
const CTX = forge.asn1.Class.CONTEXT_SPECIFIC;

/**
 * Parses a PEM (`X509 CRL`) or DER CRL. With `ca`, also requires that the
 * issuer equals the CA's subject and the signature verifies with the CA's key,
 * so a foreign or tampered CRL is never extended and re-signed.
 * Throws InvalidCrlError.
 */
export function parseCrl(input: string | Uint8Array, opts: { ca?: { readonly certPem: string } } = {}): ParsedCrl {
  const der = typeof input === 'string' ? fromPem('X509 CRL', input) : Buffer.from(input);
  if (!der) throw new InvalidCrlError('no "X509 CRL" PEM block found');
  let tbsDer: Buffer;
  let root: forge.asn1.Asn1;
  try {
    const outer = tlv(der, 0);
    if (outer.end !== der.length) throw new RangeError('trailing data after CRL');
    tbsDer = der.subarray(outer.contentStart, tlv(der, outer.contentStart).end);
    root = forge.asn1.fromDer(der.toString('binary'), true);
  } catch (err) {
    throw new InvalidCrlError('CRL is not valid DER', { cause: err });
  }
  const [tbs, sigAlg, sigValue] = children(root);
  const f = children(tbs);
  let i = 0;
  if (f[0]?.type === T.INTEGER && f[0].tagClass === U) {
    if (readIntegerHex(f[0]) !== '01') throw new InvalidCrlError('unsupported CRL version');
    i++;
  }
  const algOid = oidOf(children(sigAlg)[0]);
  if (algOid !== OID.sha256WithRSA || oidOf(children(f[i])[0]) !== algOid) {
    throw new InvalidCrlError('unsupported CRL signature algorithm (expected sha256WithRSAEncryption)');
  }
  i++;
  const issuer = f[i++];
  const thisUpdate = readTime(f[i++]);
  if (!issuer || !thisUpdate) throw new InvalidCrlError('CRL is missing issuer or thisUpdate');
  const nextUpdate = readTime(f[i]);
  if (nextUpdate) i++;

  const revoked: RevokedEntry[] = [];
  const list = f[i];
  if (list && list.tagClass === U && list.type === T.SEQUENCE) {
    i++;
    for (const entry of children(list)) {
      const [serial, date] = children(entry);
      const serialNumber = readIntegerHex(serial);
      const revocationDate = readTime(date);
      if (!serialNumber || !revocationDate) throw new InvalidCrlError('malformed revoked certificate entry');
      revoked.push({ serialNumber, revocationDate });
    }
  }
  let crlNumber: bigint | undefined;
  const exts = f[i];
  if (exts && exts.tagClass === CTX && exts.type === 0) {
    for (const ext of children(children(exts)[0])) {
      const parts = children(ext);
      if (oidOf(parts[0]) !== OID.crlNumber) continue;
      const value = parts[parts.length - 1];
      if (typeof value?.value !== 'string') throw new InvalidCrlError('malformed CRL number');
      const hex = readIntegerHex(forge.asn1.fromDer(value.value, true));
      if (hex === undefined) throw new InvalidCrlError('malformed CRL number');
      crlNumber = BigInt(`0x${hex}`);
    }
  }

  if (opts.ca) {
    const ca = new X509Certificate(opts.ca.certPem);
    const issuerDer = Buffer.from(forge.asn1.toDer(issuer).getBytes(), 'binary');
    if (!issuerDer.equals(certSubjectDer(ca.raw))) throw new InvalidCrlError('CRL issuer is not this CA');
    const sig = typeof sigValue?.value === 'string' ? Buffer.from(sigValue.value, 'binary').subarray(1) : undefined;
    if (!sig || !verify('sha256', tbsDer, ca.publicKey, sig)) throw new InvalidCrlError('CRL signature does not verify with this CA');
  }
  return { thisUpdate, nextUpdate, crlNumber, revoked };
}

function children(n: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  if (!n || !Array.isArray(n.value)) throw new InvalidCrlError('unexpected CRL structure');
  return n.value;
}

function oidOf(n: forge.asn1.Asn1 | undefined): string | undefined {
  return n && n.type === T.OID && typeof n.value === 'string' ? forge.asn1.derToOid(n.value) : undefined;
}
