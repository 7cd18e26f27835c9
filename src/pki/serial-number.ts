/**
 * Certificate serial numbers: random, positive, at most 20 octets (RFC 5280 §4.1.2.2).
 */
import { randomBytes } from 'node:crypto';

/**
 * A random 16-byte positive serial as lowercase hex. The high bit is cleared
 * so the DER INTEGER is positive without a pad byte, and the first byte is
 * never zero so the encoding is minimal (DER forbids a leading 0x00 before a
 * byte < 0x80). That leaves ~127 bits of entropy, well above the 64 that
 * CA/B Forum rules ask for, so serials are unpredictable as well as unique.
 */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b.toString('hex');
}

/**
 * Normalizes a serial given as hex (any case, optional `:` separators, sign
 * padding) to the form node's `X509Certificate.serialNumber` uses, lower-cased:
 * whole bytes, no leading zero byte. Serials from node, forge, openssl and
 * randomSerialHex then compare equal as strings.
 * Throws TypeError when `hex` is not hex (caller misuse).
 */
export function normalizeSerialHex(hex: string): string {
  const h = hex.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(h)) throw new TypeError(`serial number is not hex: ${JSON.stringify(hex)}`);
  const stripped = h.replace(/^0+/, '');
  if (stripped === '') return '00';
  return stripped.length % 2 === 1 ? `0${stripped}` : stripped;
}
