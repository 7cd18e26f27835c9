/**
 * Shared request-state types. Feature folders depend on these, not on each
 * other. Each field of RequestState is set once, by the stage that owns it.
 */

/** Verified peer identity from the client certificate (PRODUCT §1.1). */
export interface Peer {
  /** Full SPIFFE ID, e.g. `spiffe://mesh.local/ns/default/sa/web`. */
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** SHA-256 of the DER certificate, lowercase hex without separators. */
  readonly fingerprint256: string;
  /** SHA-256 of the DER certificate, base64url (RFC 8705 `x5t#S256`). */
  readonly x5tS256: string;
  readonly serialNumber: string;
  /** PEM of the leaf certificate (for XFCC `Cert=` if configured). */
  readonly certPem?: string;
}

/** Verified JWT principal (PRODUCT §1.3). Never holds the raw token. */
export interface Principal {
  readonly iss: string;
  readonly sub: string;
  readonly jti: string | undefined;
  /** SHA-256 of the compact token, base64url. Safe to log and audit. */
  readonly tokenHash: string;
  /** `exp` in seconds since the epoch (undefined when the token has none). */
  readonly exp: number | undefined;
  /** True when the token carried `cnf["x5t#S256"]` that matched the peer. */
  readonly certBound: boolean;
  readonly claims: Readonly<Record<string, unknown>>;
}

export type AuthRequirement = 'none' | 'mtls' | 'jwt' | 'mtls+jwt';

export interface RouteMatch {
  readonly pathPrefix?: string | undefined;
  readonly path?: string | undefined;
  readonly methods?: readonly string[] | undefined;
}

/** A compiled route: first match wins, no match is a 404. */
export interface Route {
  readonly name: string;
  readonly index: number;
  readonly match: RouteMatch;
  readonly auth: AuthRequirement;
  /** RFC 8705: the token must be certificate-bound on this route. */
  readonly requireBoundToken: boolean;
}

/** The tuple handed to the authorizer — built only from verified identity. */
export interface AuthzRequest {
  /** JWT `sub`, else peer SPIFFE ID, else `anonymous`. */
  readonly sub: string;
  /** Peer SPIFFE ID or '' when there is none. */
  readonly peer: string;
  /** Canonical path. */
  readonly obj: string;
  /** HTTP method, upper case. */
  readonly act: string;
  /** Verified claims ('{}' when there is no token). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface Decision {
  readonly allowed: boolean;
  /** Stable reason code: `allowed`, `authz_no_matching_rule`, `authz_deny_rule`, … */
  readonly reason: string;
  /** The policy line that decided, with its location: `policy.csv:12: p, alice, /orders/*, GET, allow`. */
  readonly matchedRule: string | undefined;
  /** Content hash of the model + policy that decided. */
  readonly policyVersion: string;
}

export const ANONYMOUS = 'anonymous';
