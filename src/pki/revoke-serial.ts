/**
 * Adds a serial to a CA's CRL, keeping every earlier revocation.
 */
import type { CertifiedKey } from './create-ca.ts';
import { createCrl } from './create-crl.ts';
import { parseCrl } from './parse-crl.ts';
import { normalizeSerialHex } from './serial-number.ts';

export interface RevokeSerialOptions {
  readonly ca: CertifiedKey;
  /** The current CRL (PEM), or undefined to start a new one. */
  readonly crlPem: string | undefined;
  readonly serialNumber: string;
  readonly now?: Date;
  /** Validity of the new CRL in days (see createCrl). */
  readonly days?: number;
}

export interface RevokeSerialResult {
  /** The new CRL, or the unchanged input when the serial was already revoked. */
  readonly crlPem: string;
  readonly alreadyRevoked: boolean;
  readonly crlNumber: bigint;
  readonly revokedCount: number;
}

/**
 * Returns a re-signed CRL that lists `serialNumber` in addition to everything
 * the current CRL lists, with the next CRL number (RFC 5280 §5.2.3: numbers
 * only ever increase). The current CRL must verify against `ca`
 * (InvalidCrlError otherwise): extending a CRL we cannot trust could
 * silently un-revoke certificates.
 */
export function revokeSerial(opts: RevokeSerialOptions): RevokeSerialResult {
  const serial = normalizeSerialHex(opts.serialNumber);
  const current = opts.crlPem === undefined ? undefined : parseCrl(opts.crlPem, { ca: opts.ca });
  const revoked = current?.revoked ?? [];
  if (current && opts.crlPem !== undefined && revoked.some((r) => r.serialNumber === serial)) {
    return { crlPem: opts.crlPem, alreadyRevoked: true, crlNumber: current.crlNumber ?? 0n, revokedCount: revoked.length };
  }
  const now = opts.now ?? new Date();
  const crlNumber = (current?.crlNumber ?? 0n) + 1n;
  const next = [...revoked, { serialNumber: serial, revocationDate: now }];
  const crlPem = createCrl({ ca: opts.ca, revoked: next, crlNumber, now, ...(opts.days !== undefined ? { days: opts.days } : {}) });
  return { crlPem, alreadyRevoked: false, crlNumber, revokedCount: next.length };
}
