/**
 * The one catalogue of meshgate errors.
 *
 * Every refusal meshgate makes has a stable `code` (API: add, never rename),
 * the HTTP status it maps to, and a snake_case `reason` that goes into the
 * audit event and the problem+json body. `docs/errors.md` lists the same
 * entries; `test/unit/errors-doc.test.ts` keeps the two in sync.
 *
 * Stages never write to the socket: they throw (or return) a MeshgateError and
 * `src/proxy/reply.ts` turns it into the single local reply.
 */

export interface ErrorSpec {
  readonly code: string;
  readonly status: number;
  readonly reason: string;
  readonly title: string;
}

function spec(code: string, status: number, reason: string, title: string): ErrorSpec {
  return Object.freeze({ code, status, reason, title });
}

export const Errors = Object.freeze({
  // --- request target and normalization (MG_ERR_REQ_*) ---
  REQ_TARGET_FORM: spec('MG_ERR_REQ_TARGET_FORM', 400, 'bad_request_target', 'Request target must be in origin-form'),
  REQ_PATH_ENCODING: spec('MG_ERR_REQ_PATH_ENCODING', 400, 'path_malformed_encoding', 'Malformed percent-encoding in path'),
  REQ_PATH_NUL: spec('MG_ERR_REQ_PATH_NUL', 400, 'path_nul_byte', 'NUL byte in path'),
  REQ_PATH_ENCODED_SLASH: spec('MG_ERR_REQ_PATH_ENCODED_SLASH', 400, 'path_encoded_slash', 'Encoded slash in path'),
  REQ_PATH_ENCODED_BACKSLASH: spec('MG_ERR_REQ_PATH_ENCODED_BACKSLASH', 400, 'path_encoded_backslash', 'Encoded or raw backslash in path'),
  REQ_PATH_INVALID_CHAR: spec('MG_ERR_REQ_PATH_INVALID_CHAR', 400, 'path_invalid_character', 'Invalid character in path'),
  REQ_PATH_PARAMETER: spec('MG_ERR_REQ_PATH_PARAMETER', 400, 'path_parameter', 'Path parameters (";") are not accepted'),
  REQ_HEADERS_TOO_LARGE: spec('MG_ERR_REQ_HEADERS_TOO_LARGE', 431, 'headers_too_large', 'Request headers too large'),
  REQ_TOO_MANY_HEADERS: spec('MG_ERR_REQ_TOO_MANY_HEADERS', 431, 'too_many_headers', 'Too many request headers'),
  REQ_BODY_TOO_LARGE: spec('MG_ERR_REQ_BODY_TOO_LARGE', 413, 'body_too_large', 'Request body too large'),
  REQ_TIMEOUT: spec('MG_ERR_REQ_TIMEOUT', 408, 'request_timeout', 'Request not received in time'),
  REQ_MALFORMED: spec('MG_ERR_REQ_MALFORMED', 400, 'bad_request', 'Malformed request'),
  REQ_UPGRADE_METHOD: spec('MG_ERR_REQ_UPGRADE_METHOD', 400, 'upgrade_method_invalid', 'A WebSocket upgrade must be a GET request'),
  REQ_AMBIGUOUS_LENGTH: spec('MG_ERR_REQ_AMBIGUOUS_LENGTH', 400, 'ambiguous_body_length', 'Request has ambiguous body framing'),

  // --- routing (MG_ERR_ROUTE_*) ---
  ROUTE_NOT_FOUND: spec('MG_ERR_ROUTE_NOT_FOUND', 404, 'route_not_found', 'No route matches this request'),
  ROUTE_METHOD: spec('MG_ERR_ROUTE_METHOD', 405, 'method_not_allowed', 'Method not allowed on this route'),

  // --- TLS peer identity (MG_ERR_TLS_*) ---
  TLS_PEER_CERT_REQUIRED: spec('MG_ERR_TLS_PEER_CERT_REQUIRED', 401, 'peer_cert_required', 'A client certificate is required'),
  TLS_HANDSHAKE: spec('MG_ERR_TLS_HANDSHAKE', 0, 'tls_handshake_failed', 'TLS handshake failed'),
  TLS_PEER_UNTRUSTED: spec('MG_ERR_TLS_PEER_UNTRUSTED', 0, 'peer_cert_untrusted', 'Client certificate not issued by a trusted CA'),
  TLS_PEER_EXPIRED: spec('MG_ERR_TLS_PEER_EXPIRED', 0, 'peer_cert_expired', 'Client certificate expired or not yet valid'),
  TLS_PEER_REVOKED: spec('MG_ERR_TLS_PEER_REVOKED', 0, 'peer_cert_revoked', 'Client certificate revoked'),
  TLS_NO_PEER_CERT: spec('MG_ERR_TLS_NO_PEER_CERT', 0, 'peer_cert_missing', 'No client certificate presented (strict mode)'),
  TLS_SPIFFE_MISSING: spec('MG_ERR_TLS_SPIFFE_MISSING', 403, 'spiffe_id_missing', 'Client certificate has no SPIFFE ID'),
  TLS_SPIFFE_INVALID: spec('MG_ERR_TLS_SPIFFE_INVALID', 403, 'spiffe_id_invalid', 'Client certificate SPIFFE ID is malformed'),
  TLS_SPIFFE_MULTIPLE: spec('MG_ERR_TLS_SPIFFE_MULTIPLE', 403, 'spiffe_multiple_uri_sans', 'Client certificate has more than one URI SAN'),
  TLS_SPIFFE_NOT_LEAF: spec('MG_ERR_TLS_SPIFFE_NOT_LEAF', 403, 'spiffe_not_leaf', 'Client certificate is a CA certificate, not a leaf'),
  TLS_TRUST_DOMAIN: spec('MG_ERR_TLS_TRUST_DOMAIN', 403, 'trust_domain_not_allowed', 'Client trust domain is not allowed'),

  // --- JWT (MG_ERR_JWT_*) ---
  JWT_MISSING: spec('MG_ERR_JWT_MISSING', 401, 'jwt_missing', 'A bearer token is required'),
  JWT_MALFORMED: spec('MG_ERR_JWT_MALFORMED', 401, 'jwt_malformed', 'Token is malformed'),
  JWT_ALG: spec('MG_ERR_JWT_ALG', 401, 'jwt_alg_not_allowed', 'Token algorithm is not allowed'),
  JWT_SIGNATURE: spec('MG_ERR_JWT_SIGNATURE', 401, 'jwt_bad_signature', 'Token signature is invalid'),
  JWT_UNKNOWN_KID: spec('MG_ERR_JWT_UNKNOWN_KID', 401, 'jwt_unknown_key', 'Token signing key is unknown'),
  JWT_EXPIRED: spec('MG_ERR_JWT_EXPIRED', 401, 'jwt_expired', 'Token has expired'),
  JWT_NOT_YET_VALID: spec('MG_ERR_JWT_NOT_YET_VALID', 401, 'jwt_not_yet_valid', 'Token is not yet valid'),
  JWT_ISSUER: spec('MG_ERR_JWT_ISSUER', 401, 'jwt_issuer_invalid', 'Token issuer is not accepted'),
  JWT_AUDIENCE: spec('MG_ERR_JWT_AUDIENCE', 401, 'jwt_audience_invalid', 'Token audience is not accepted'),
  JWT_CLAIM: spec('MG_ERR_JWT_CLAIM', 401, 'jwt_claim_invalid', 'Token is missing a required claim or a claim is invalid'),
  JWT_CNF_MISMATCH: spec('MG_ERR_JWT_CNF_MISMATCH', 401, 'jwt_cert_binding_mismatch', 'Token is bound to a different certificate'),
  JWT_CNF_REQUIRED: spec('MG_ERR_JWT_CNF_REQUIRED', 401, 'jwt_cert_binding_required', 'Route requires a certificate-bound token'),
  JWT_KEYS_UNAVAILABLE: spec('MG_ERR_JWT_KEYS_UNAVAILABLE', 401, 'jwks_unavailable', 'Signing keys are unavailable'),

  // --- authorization (MG_ERR_AUTHZ_*) ---
  AUTHZ_DENIED: spec('MG_ERR_AUTHZ_DENIED', 403, 'authz_no_matching_rule', 'Denied: no policy rule allows this request'),
  AUTHZ_DENY_RULE: spec('MG_ERR_AUTHZ_DENY_RULE', 403, 'authz_deny_rule', 'Denied by a policy deny rule'),
  AUTHZ_ERROR: spec('MG_ERR_AUTHZ_ERROR', 500, 'authz_error', 'Authorization could not be evaluated'),
  AUTHZ_QUARANTINED: spec('MG_ERR_AUTHZ_QUARANTINED', 403, 'quarantined', 'Denied: this identity, token, certificate or address is quarantined'),

  // --- upstream (MG_ERR_UPSTREAM_*) ---
  UPSTREAM_UNAVAILABLE: spec('MG_ERR_UPSTREAM_UNAVAILABLE', 502, 'upstream_unavailable', 'Upstream service unavailable'),
  UPSTREAM_TIMEOUT: spec('MG_ERR_UPSTREAM_TIMEOUT', 504, 'upstream_timeout', 'Upstream service timed out'),
  UPSTREAM_ERROR: spec('MG_ERR_UPSTREAM_ERROR', 502, 'upstream_error', 'Upstream service failed'),

  // --- gateway (MG_ERR_GW_*) ---
  GW_INTERNAL: spec('MG_ERR_GW_INTERNAL', 500, 'internal_error', 'Internal error'),
  GW_SHUTTING_DOWN: spec('MG_ERR_GW_SHUTTING_DOWN', 503, 'shutting_down', 'Gateway is shutting down'),
  GW_CLIENT_CLOSED: spec('MG_ERR_GW_CLIENT_CLOSED', 499, 'client_closed_request', 'Client closed the connection before the response completed'),

  // --- admin UI and API (MG_ERR_ADMIN_*) ---
  ADMIN_UNAUTHENTICATED: spec('MG_ERR_ADMIN_UNAUTHENTICATED', 401, 'admin_unauthenticated', 'Admin sign-in required'),
  ADMIN_BAD_CREDENTIALS: spec('MG_ERR_ADMIN_BAD_CREDENTIALS', 401, 'admin_bad_credentials', 'Admin token is not valid'),
  ADMIN_RATE_LIMITED: spec('MG_ERR_ADMIN_RATE_LIMITED', 429, 'admin_sign_in_rate_limited', 'Too many failed admin sign-ins; try again later'),
  ADMIN_CSRF: spec('MG_ERR_ADMIN_CSRF', 403, 'admin_csrf_rejected', 'Cross-site request refused: missing or wrong CSRF token or origin'),
  ADMIN_BAD_PARAM: spec('MG_ERR_ADMIN_BAD_PARAM', 400, 'admin_invalid_parameter', 'Invalid request parameter'),
  ADMIN_NOT_FOUND: spec('MG_ERR_ADMIN_NOT_FOUND', 404, 'admin_not_found', 'Not found'),
  ADMIN_METHOD: spec('MG_ERR_ADMIN_METHOD', 405, 'admin_method_not_allowed', 'Method not allowed'),
} satisfies Record<string, ErrorSpec>);

export type ErrorName = keyof typeof Errors;

/** Reason recorded for a request that was allowed and forwarded. */
export const REASON_ALLOWED = 'allowed';

/**
 * A refusal with a stable code. `detail` is safe to show to the client
 * (no secrets, no library messages); `cause` is logged, never sent.
 */
export class MeshgateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly reason: string;
  readonly title: string;
  readonly detail: string | undefined;

  constructor(s: ErrorSpec, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${s.title}: ${detail}` : s.title, options);
    this.name = 'MeshgateError';
    this.code = s.code;
    this.status = s.status;
    this.reason = s.reason;
    this.title = s.title;
    this.detail = detail;
  }
}

export function isMeshgateError(e: unknown): e is MeshgateError {
  return e instanceof MeshgateError;
}
