/**
 * Finds the bearer token in a request, reading the configured locations in
 * order; the first location that holds a credential wins.
 *
 * "Not applicable is not denied": no credential (or a header carrying a
 * different auth scheme, e.g. `Basic`) yields undefined and the route's
 * requirement decides. But a credential that is present and ambiguous or
 * empty throws JWT_MALFORMED, so a garbled token can never quietly turn a
 * request into an anonymous one.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { JwtConfig } from '../config/schema.ts';
import { Errors, MeshgateError } from '../core/errors.ts';

/** One configured token location (`{ header, scheme? }` or `{ cookie }`). */
export type TokenLocation = JwtConfig['locations'][number];

const SEPARATOR = /[\s,;]/;
const SCHEME_SPLIT = /^([^\s]+)(?:[ \t]+(.*))?$/s;

function malformed(detail: string): MeshgateError {
  return new MeshgateError(Errors.JWT_MALFORMED, detail);
}

/** One header value; several copies of a token header are ambiguous. */
function single(v: string | string[] | undefined, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  const present = v.filter((x) => x.trim() !== '');
  if (present.length > 1) throw malformed(`header ${name} appears more than once`);
  return present[0];
}

/** RFC 6750 §2.1 / RFC 9110 §11.4: `<scheme> 1*SP <token>`, scheme case-insensitive. */
function fromHeader(headers: IncomingHttpHeaders, header: string, scheme: string | undefined): string | undefined {
  const name = header.toLowerCase();
  const value = single(headers[name], name)?.trim();
  if (value === undefined || value === '') return undefined;
  if (scheme === undefined) {
    if (SEPARATOR.test(value)) throw malformed(`header ${name} holds more than one token`);
    return value;
  }
  const m = SCHEME_SPLIT.exec(value);
  if (!m || m[1]?.toLowerCase() !== scheme.toLowerCase()) return undefined;
  const token = (m[2] ?? '').trim();
  if (token === '') throw malformed(`header ${name} has an empty ${scheme} credential`);
  if (SEPARATOR.test(token)) throw malformed(`header ${name} holds more than one token`);
  return token;
}

/** RFC 6265 §5.4 cookie-string; a repeated name is refused (cookie tossing from a sibling domain). */
function fromCookie(headers: IncomingHttpHeaders, cookie: string): string | undefined {
  const raw = headers.cookie as string | string[] | undefined;
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw.join('; ') : raw;
  let found: string | undefined;
  let count = 0;
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== cookie) continue;
    count++;
    found = pair.slice(eq + 1).trim();
  }
  if (count > 1) throw malformed(`cookie ${cookie} appears more than once`);
  if (found === undefined) return undefined;
  if (found.length >= 2 && found.startsWith('"') && found.endsWith('"')) found = found.slice(1, -1);
  if (found === '') return undefined;
  if (SEPARATOR.test(found)) throw malformed(`cookie ${cookie} holds more than one token`);
  return found;
}

/**
 * The token from the first location that carries one, or undefined.
 * Throws MeshgateError(JWT_MALFORMED) for a present but empty or ambiguous credential.
 */
export function extractToken(headers: IncomingHttpHeaders, locations: readonly TokenLocation[]): string | undefined {
  for (const loc of locations) {
    const token = 'cookie' in loc ? fromCookie(headers, loc.cookie) : fromHeader(headers, loc.header, loc.scheme);
    if (token !== undefined) return token;
  }
  return undefined;
}
