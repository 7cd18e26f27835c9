/**
 * Peer identity from the verified client certificate (PRODUCT §1.1).
 *
 * The TLS layer has already verified the chain, validity and revocation (or,
 * in permissive mode, recorded why it did not). Here we apply the X509-SVID
 * rules OpenSSL does not know: a leaf (not a CA) with exactly one URI SAN
 * that is a valid SPIFFE ID in an allowed trust domain. The result is computed
 * once per connection: with renegotiation disabled the peer cannot change.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Errors, MeshgateError } from '../core/errors.ts';
import type { Peer } from '../core/types.ts';
import { parseSpiffeId } from '../core/spiffe-id.ts';

/** A connection's peer: a verified identity, no certificate at all, or a refusal. */
export type PeerResult =
  | { readonly kind: 'peer'; readonly peer: Peer }
  | { readonly kind: 'none' }
  | { readonly kind: 'error'; readonly error: MeshgateError; readonly fingerprint256?: string };

const cache = new WeakMap<TLSSocket, PeerResult>();

/** Splits Node's `subjectAltName` string, honouring JSON-quoted entries. */
export function parseSubjectAltName(san: string): { type: string; value: string }[] | undefined {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon === -1) return undefined;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // Node quotes values containing unsafe characters as JSON strings.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      if (j >= san.length) return undefined;
      try { value = JSON.parse(san.slice(colon + 1, j + 1)) as string; } catch { return undefined; }
      next = j + 1;
    } else {
      const comma = san.indexOf(', ', colon + 1);
      next = comma === -1 ? san.length : comma;
      value = san.slice(colon + 1, next);
    }
    out.push({ type, value });
    if (next < san.length) {
      if (san.slice(next, next + 2) !== ', ') return undefined;
      next += 2;
    }
    i = next;
  }
  return out;
}

/** Applies the X509-SVID rules to a verified leaf certificate. */
export function peerFromCertificate(cert: X509Certificate, trustDomains: ReadonlySet<string>): PeerResult {
  const der = cert.raw;
  const digest = createHash('sha256').update(der).digest();
  const fingerprint256 = digest.toString('hex');
  const fail = (spec: typeof Errors.TLS_SPIFFE_INVALID, detail?: string): PeerResult =>
    ({ kind: 'error', error: new MeshgateError(spec, detail), fingerprint256 });
  // X509-SVID §4.1: an SVID leaf MUST have CA=false.
  if (cert.ca) return fail(Errors.TLS_SPIFFE_NOT_LEAF);
  const sans = cert.subjectAltName ? parseSubjectAltName(cert.subjectAltName) : [];
  if (sans === undefined) return fail(Errors.TLS_SPIFFE_INVALID, 'unparseable subjectAltName');
  const uris = sans.filter((s) => s.type === 'URI');
  // X509-SVID §2: exactly one URI SAN.
  if (uris.length === 0) return fail(Errors.TLS_SPIFFE_MISSING);
  if (uris.length > 1) return fail(Errors.TLS_SPIFFE_MULTIPLE);
  const spiffeId = (uris[0] as { value: string }).value;
  const id = parseSpiffeId(spiffeId);
  if (!id.ok) return fail(Errors.TLS_SPIFFE_INVALID, id.error);
  if (!trustDomains.has(id.trustDomain)) return fail(Errors.TLS_TRUST_DOMAIN, id.trustDomain);
  return {
    kind: 'peer',
    peer: Object.freeze({
      spiffeId,
      trustDomain: id.trustDomain,
      fingerprint256,
      x5tS256: digest.toString('base64url'),
      serialNumber: cert.serialNumber,
    }),
  };
}

/** Maps an OpenSSL verification error code to our catalogue. */
export function tlsVerifyError(code: string | undefined): MeshgateError {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return new MeshgateError(Errors.TLS_PEER_EXPIRED, code);
    case 'CERT_REVOKED':
      return new MeshgateError(Errors.TLS_PEER_REVOKED, code);
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
      return new MeshgateError(Errors.TLS_NO_PEER_CERT, code);
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
    case 'INVALID_CA':
    case 'CERT_UNTRUSTED':
    case 'CERT_REJECTED':
    // RFC 5280 §4.2.1.12: an extKeyUsage without clientAuth means the CA did
    // not issue this certificate for client authentication.
    case 'INVALID_PURPOSE':
      return new MeshgateError(Errors.TLS_PEER_UNTRUSTED, code);
    default:
      return new MeshgateError(Errors.TLS_HANDSHAKE, code);
  }
}

/**
 * The peer of a TLS connection, memoized per socket. In permissive mode the
 * handshake accepted unverified certificates so that a client without one gets
 * through; a client that DID present a certificate that failed verification
 * is refused here — presenting a bad certificate is never "no identity".
 */
export function socketPeer(socket: TLSSocket, trustDomains: ReadonlySet<string>, strict: boolean): PeerResult {
  const hit = cache.get(socket);
  if (hit) return hit;
  let result: PeerResult;
  const cert = socket.getPeerX509Certificate();
  if (!cert) {
    // The listener already closed such connections; never let one through as anonymous.
    result = strict ? { kind: 'error', error: new MeshgateError(Errors.TLS_NO_PEER_CERT) } : { kind: 'none' };
  } else if (!socket.authorized) {
    const code = (socket.authorizationError as unknown as string | Error | undefined);
    result = { kind: 'error', error: tlsVerifyError(typeof code === 'string' ? code : (code as { code?: string } | undefined)?.code) };
  } else {
    result = peerFromCertificate(cert, trustDomains);
  }
  cache.set(socket, result);
  return result;
}
