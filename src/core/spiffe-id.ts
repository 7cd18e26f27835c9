/**
 * SPIFFE ID syntax (SPIFFE-ID spec §2): `spiffe://<trust-domain>/<path>`.
 * One parser for the gateway (peer certificates, src/tls/peer.ts) and the dev
 * PKI, so that the PKI never issues a certificate the gateway would refuse.
 */

const SCHEME = 'spiffe://';
/** SPIFFE-ID §2.1: trust domain characters; upper case is not allowed. */
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
/** SPIFFE-ID §2.2: path segment characters; no percent-encoding. */
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
/** SPIFFE-ID §2.3: maximum SPIFFE ID length in bytes (URI SAN limit). */
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;

export type SpiffeIdResult =
  | { readonly ok: true; readonly trustDomain: string; readonly path: string }
  | { readonly ok: false; readonly error: string };

/** Why `td` is not a valid trust domain name, or undefined when it is. */
export function trustDomainError(td: string): string | undefined {
  if (td === '') return 'trust domain is empty';
  if (td.length > MAX_TRUST_DOMAIN) return `trust domain longer than ${MAX_TRUST_DOMAIN} characters`;
  if (td.includes('@')) return 'userinfo is not allowed in a SPIFFE ID';
  if (td.includes(':')) return 'a port is not allowed in a SPIFFE ID';
  if (/[A-Z]/.test(td)) return 'trust domain must be lower case';
  if (!TRUST_DOMAIN_RE.test(td)) return 'trust domain may contain only a-z, 0-9, ".", "-" and "_"';
  return undefined;
}

/**
 * Parses and validates a SPIFFE ID. With `requirePath` (the default) the
 * trust-domain-only form `spiffe://td` is refused: a workload certificate
 * must name a workload, not the whole trust domain.
 */
export function parseSpiffeId(id: string, opts: { requirePath?: boolean } = {}): SpiffeIdResult {
  const requirePath = opts.requirePath ?? true;
  const fail = (error: string): SpiffeIdResult => ({ ok: false, error });
  if (Buffer.byteLength(id) > MAX_ID_BYTES) return fail(`SPIFFE ID longer than ${MAX_ID_BYTES} bytes`);
  if (!id.startsWith(SCHEME)) {
    return id.toLowerCase().startsWith(SCHEME) ? fail('scheme must be lower-case "spiffe://"') : fail('SPIFFE ID must start with "spiffe://"');
  }
  if (id.includes('?')) return fail('a query is not allowed in a SPIFFE ID');
  if (id.includes('#')) return fail('a fragment is not allowed in a SPIFFE ID');
  if (id.includes('%')) return fail('percent-encoding is not allowed in a SPIFFE ID');
  const rest = id.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const tdError = trustDomainError(trustDomain);
  if (tdError) return fail(tdError);
  if (path === '') return requirePath ? fail('SPIFFE ID has no path (a workload ID needs one, e.g. /ns/default/sa/web)') : { ok: true, trustDomain, path };
  if (path.endsWith('/')) return fail('path must not end with "/"');
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') return fail('path segments must not be empty');
    if (seg === '.' || seg === '..') return fail('path segments must not be "." or ".."');
    if (!SEGMENT_RE.test(seg)) return fail('path segments may contain only letters, digits, ".", "-" and "_"');
  }
  return { ok: true, trustDomain, path };
}
