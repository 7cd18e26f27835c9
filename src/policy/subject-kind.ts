/**
 * What a subject written in a policy can be. meshgate builds `sub` from
 * verified identity only (PRODUCT §1.4): a JWT `sub`, else the peer's SPIFFE
 * ID, else `anonymous`; a role name stands for whoever is assigned it.
 * Anything else in a subject column is almost always a typo.
 */
import { parseSpiffeId } from '../core/spiffe-id.ts';
import { ANONYMOUS } from '../core/types.ts';

/** Why `value` is not a subject any request can have, or undefined when it is plausible. */
export function implausibleSubject(value: string, roles: ReadonlySet<string>): string | undefined {
  if (value === ANONYMOUS || roles.has(value)) return undefined;
  if (value.toLowerCase().startsWith('spiffe://')) {
    const id = parseSpiffeId(value);
    return id.ok ? undefined : `${JSON.stringify(value)} is not a valid SPIFFE ID (${id.error}): no peer certificate carries it`;
  }
  if (value === '') return 'the subject is empty: no verified identity is empty';
  if (value === '*') return '"*" is not a wildcard in a subject column: it only matches a token whose sub is literally "*"';
  // A JWT sub is a StringOrURI (RFC 7519 §4.1.2); whitespace or control
  // characters in one are a copy-paste accident far more often than real.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return `${JSON.stringify(value)} contains whitespace or control characters: not a plausible token subject`;
  return undefined;
}

/** Why `value` cannot equal a request's peer (a SPIFFE ID, or '' without one), or undefined. */
export function impossiblePeer(value: string): string | undefined {
  if (value === '') return undefined;
  const id = parseSpiffeId(value);
  return id.ok ? undefined : `${JSON.stringify(value)} is not a valid SPIFFE ID (${id.error}); the peer is always one (or empty)`;
}
