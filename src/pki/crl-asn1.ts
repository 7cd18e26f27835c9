/**
 * DER building blocks shared by the CRL writer and reader. node-forge can
 * parse and emit ASN.1 but has no CRL support, so the CRL structure of
 * RFC 5280 §5.1 is assembled here from forge.asn1 nodes.
 */
import forge from 'node-forge';
import { normalizeSerialHex } from './serial-number.ts';

const A = forge.asn1;
const U = forge.asn1.Class.UNIVERSAL;
const T = forge.asn1.Type;
type Node = forge.asn1.Asn1;

export const OID = Object.freeze({
  sha256WithRSA: '1.2.840.113549.1.1.11',
  /** RFC 5280 §5.2.3 */
  crlNumber: '2.5.29.20',
  /** RFC 5280 §5.2.1 */
  authorityKeyIdentifier: '2.5.29.35',
});

export const seq = (v: Node[]): Node => A.create(U, T.SEQUENCE, true, v);
export const oid = (o: string): Node => A.create(U, T.OID, false, A.oidToDer(o).getBytes());
export const octets = (bytes: string): Node => A.create(U, T.OCTETSTRING, false, bytes);
export const algorithmSha256WithRsa = (): Node => seq([oid(OID.sha256WithRSA), A.create(U, T.NULL, false, '')]);

/** A non-negative INTEGER from hex or bigint, minimally encoded (X.690 §8.3.2). */
export function integer(value: string | bigint): Node {
  let hex = typeof value === 'bigint' ? value.toString(16) : normalizeSerialHex(value);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (/^[89a-f]/.test(hex)) hex = `00${hex}`; // keep it positive
  return A.create(U, T.INTEGER, false, forge.util.hexToBytes(hex));
}

/** RFC 5280 §5.1.2.4/§4.1.2.5: UTCTime for 1950–2049, GeneralizedTime otherwise. */
export function time(d: Date): Node {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? A.create(U, T.UTCTIME, false, A.dateToUtcTime(d))
    : A.create(U, T.GENERALIZEDTIME, false, A.dateToGeneralizedTime(d));
}

/** Reads a UTCTime or GeneralizedTime node; undefined when it is neither. */
export function readTime(n: Node | undefined): Date | undefined {
  if (!n || n.tagClass !== U || typeof n.value !== 'string') return undefined;
  if (n.type === T.UTCTIME) return A.utcTimeToDate(n.value);
  if (n.type === T.GENERALIZEDTIME) return A.generalizedTimeToDate(n.value);
  return undefined;
}

/** Reads a non-negative INTEGER node as normalized lowercase hex. */
export function readIntegerHex(n: Node | undefined): string | undefined {
  if (!n || n.tagClass !== U || n.type !== T.INTEGER || typeof n.value !== 'string' || n.value.length === 0) return undefined;
  if (n.value.charCodeAt(0) & 0x80) return undefined; // negative: not a valid serial or CRL number
  return normalizeSerialHex(forge.util.bytesToHex(n.value));
}

/** An extension (RFC 5280 §4.1): extnID, critical omitted when false (DER DEFAULT), extnValue. */
export function extension(id: string, value: Node): Node {
  return seq([oid(id), octets(A.toDer(value).getBytes())]);
}

/** The start and end offsets of the DER TLV at `off`; throws on truncation. */
export function tlv(der: Uint8Array, off: number): { contentStart: number; end: number } {
  if (off + 2 > der.length) throw new RangeError('truncated DER');
  let len = der[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > der.length) throw new RangeError('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p + i]!;
    p += n;
  }
  if (p + len > der.length) throw new RangeError('truncated DER');
  return { contentStart: p, end: p + len };
}

/**
 * The exact DER bytes of a certificate's subject Name, taken from the
 * certificate rather than re-encoded, so a CRL's issuer field is byte-equal to
 * it (RFC 5280 §5.1.2.3: the CRL issuer MUST be the CA's subject).
 */
export function certSubjectDer(certDer: Uint8Array): Buffer {
  const cert = tlv(certDer, 0);
  const tbs = tlv(certDer, cert.contentStart);
  let p = tbs.contentStart;
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject
  if (certDer[p] === 0xa0) p = tlv(certDer, p).end;
  for (let i = 0; i < 4; i++) p = tlv(certDer, p).end;
  return Buffer.from(certDer.subarray(p, tlv(certDer, p).end));
}

/** PEM armour for DER with the given label. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with `label`; undefined when there is none. */
export function fromPem(label: string, pem: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`).exec(pem);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}
