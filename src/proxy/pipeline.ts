/**
 * The request path, top to bottom. Every front end — the HTTP listener, the
 * WebSocket upgrade handler and (later) `policy explain` / `policy replay` —
 * calls `admit`, so they cannot disagree about a decision.
 *
 *   1. peer       TLS client certificate → SPIFFE identity        (403 spiffe_*)
 *   2. hygiene    strip spoofable identity + hop-by-hop headers
 *   3. normalize  raw target → one canonical path                  (400 path_*)
 *   4. route      first matching route, else 404                   (404 route_not_found)
 *   5. authn      route requirement: none | mtls | jwt | mtls+jwt (401 peer_cert_required, jwt_*)
 *  5b. quarantine decisions ordered by detection rules or people   (403 quarantined)
 *   6. authz      Casbin on (sub, peer, obj, act, claims)          (403 authz_*)
 *                 + shadow policy and path-confusion alarm (audited, never enforced)
 *   7. identity headers for upstream (XFCC, x-meshgate-*)
 *
 * Stages never write to the socket: they throw a MeshgateError and the front
 * end hands it to src/proxy/reply.ts. `docs/lifecycle.md` draws this.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Errors, MeshgateError } from '../core/errors.ts';
import { ANONYMOUS, type AuthzRequest, type Decision, type Peer, type Principal } from '../core/types.ts';
import { canonicalizeTarget } from '../http/canonical-path.ts';
import { hasAmbiguousFraming, sanitizeRequestHeaders } from '../http/hygiene.ts';
import type { RouteTable } from '../routes/table.ts';
import type { RequestState } from './state.ts';

/** What the pipeline needs from the JWT module. */
export interface TokenVerifier {
  extract(headers: IncomingHttpHeaders): string | undefined;
  verify(token: string, peer: Peer | undefined): Promise<Principal>;
  /** A still-cached principal for `token`, synchronously; undefined when `verify` must run. */
  cached?(token: string, peer: Peer | undefined): Principal | undefined;
}

/** The verified values a quarantine decision can name. */
export interface QuarantineKeys {
  readonly spiffe?: string | undefined;
  readonly sub?: string | undefined;
  readonly jti?: string | undefined;
  readonly cert?: string | undefined;
  readonly ip?: string | undefined;
}

/** What the pipeline needs from the quarantine table. */
export interface QuarantineLookup {
  match(keys: QuarantineKeys, now: number): { readonly id: string; readonly scope: string } | undefined;
  wouldMatch(keys: QuarantineKeys, now: number): { readonly id: string; readonly scope: string } | undefined;
}

/** What the pipeline needs from the authorization module. */
export interface DecisionMaker {
  /** Content hash of the policy this instance decides with. */
  readonly version: string;
  decide(req: AuthzRequest): Decision;
}

export interface PipelineDeps {
  readonly routes: () => RouteTable;
  readonly authorizer: () => DecisionMaker;
  /** The shadow (candidate) policy, when configured. */
  readonly shadow?: (() => DecisionMaker) | undefined;
  /** Quarantine decisions in force (from decisions.json or the NATS KV bucket). */
  readonly quarantine?: (() => QuarantineLookup) | undefined;
  readonly jwt: TokenVerifier | undefined;
  readonly trustedForwarders: ReadonlySet<string>;
  readonly encodedSlash: 'reject' | 'keep';
  /** `;` in paths: reject (default) or keep. */
  readonly pathParams?: 'reject' | 'keep' | undefined;
  /** Forward method/URL override headers (default: stripped). */
  readonly keepOverrideHeaders?: boolean | undefined;
  readonly maxHeaders: number;
  readonly maxBodyBytes: number;
  readonly forwardClaims: readonly string[];
  readonly setClientCertHeader: boolean;
  /** The gateway's own SPIFFE ID, for XFCC `By=`. */
  readonly gatewayId: string | undefined;
}

/** Header values built from claims or IDs must not be able to inject CR/LF. */
function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : v.replace(/[^\x20-\x7e]/gu, (c) => encodeURIComponent(c));
}

export function createPipeline(deps: PipelineDeps): (state: RequestState) => Promise<void> {
  const { jwt } = deps;
  return async function admit(state: RequestState): Promise<void> {
    const input = state.input;
    // The policy is taken once, at the start: a request is decided (and
    // audited) entirely under the version in force when it arrived, even if a
    // reload lands while it waits for its token to be verified.
    const authorizer = deps.authorizer();
    state.policyVersion = authorizer.version;

    // 1. Peer — from the TLS session only, never from a header.
    const pr = input.peer;
    if (pr.kind === 'error') {
      state.peerFingerprint = pr.fingerprint256;
      throw pr.error;
    }
    const peer = pr.kind === 'peer' ? pr.peer : undefined;
    state.peer = peer;
    state.peerFingerprint = peer?.fingerprint256;

    // 2. Hygiene — before anything else reads headers, so that no later stage
    //    can see a client-supplied XFCC, x-meshgate-* or untrusted x-forwarded-*.
    if (input.headerCount > deps.maxHeaders) throw new MeshgateError(Errors.REQ_TOO_MANY_HEADERS);
    if (hasAmbiguousFraming(input.headers)) throw new MeshgateError(Errors.REQ_AMBIGUOUS_LENGTH);
    const declared = input.headers['content-length'];
    if (declared !== undefined && Number(declared) > deps.maxBodyBytes) throw new MeshgateError(Errors.REQ_BODY_TOO_LARGE);
    const keepForwarded = peer !== undefined && deps.trustedForwarders.has(peer.spiffeId);
    const { upstream } = sanitizeRequestHeaders(input.headers, { keepForwarded, websocket: input.websocket, keepOverride: deps.keepOverrideHeaders === true });

    // 3. Normalize — computed once; the same path is authorized and forwarded.
    const { path, query } = canonicalizeTarget(input.rawTarget, { encodedSlash: deps.encodedSlash, pathParams: deps.pathParams });
    state.path = path;
    state.query = query;

    // 4. Route — first match wins; unmatched is 404, never an unchecked pass.
    const route = deps.routes().match(path, input.method);
    if (!route) throw new MeshgateError(Errors.ROUTE_NOT_FOUND);
    state.route = route;

    // 5. Authenticate. A missing credential leaves identity unset ("not
    //    applicable"); the route's requirement decides. A credential that is
    //    presented but invalid is always refused, even on `auth: none` routes
    //    (Envoy's allow_missing semantics): a bad token is never ignored.
    if ((route.auth === 'mtls' || route.auth === 'mtls+jwt') && !peer) throw new MeshgateError(Errors.TLS_PEER_CERT_REQUIRED);
    const token = jwt?.extract(input.headers);
    if (token !== undefined && jwt) {
      try {
        state.principal = jwt.cached?.(token, peer) ?? await jwt.verify(token, peer);
      } catch (e) {
        // A refused token is still evidence (stuffing, replay of a stolen token):
        // record its hash — never the token, never its unverified claims.
        state.refusedTokenHash = createHash('sha256').update(token).digest('base64url');
        throw e;
      }
    }
    const principal = state.principal;
    if ((route.auth === 'jwt' || route.auth === 'mtls+jwt') && !principal) throw new MeshgateError(Errors.JWT_MISSING);
    if (route.requireBoundToken && principal && !principal.certBound) throw new MeshgateError(Errors.JWT_CNF_REQUIRED);

    // 5b. Quarantine (PRODUCT §1.8 ★ closed loop): a decision ordered by a
    //     detection rule or by a person refuses the identity, token,
    //     certificate or address, whatever the policy says. Checked after
    //     authn so that token subjects and ids are verified values.
    const quarantine = deps.quarantine?.();
    if (quarantine) {
      const keys = { spiffe: peer?.spiffeId, sub: principal?.sub, jti: principal?.jti, cert: peer?.fingerprint256, ip: input.source.ip };
      const now = Date.now();
      const hit = quarantine.match(keys, now);
      if (hit) {
        state.quarantine = { decisionId: hit.id, scope: hit.scope, simulated: false };
        throw new MeshgateError(Errors.AUTHZ_QUARANTINED);
      }
      const would = quarantine.wouldMatch(keys, now);
      if (would) state.quarantine = { decisionId: would.id, scope: would.scope, simulated: true };
    }

    // 6. Authorize — the tuple comes only from verified identity. Every route,
    //    `auth: none` included, is decided by the policy; no identity = anonymous.
    const tuple: AuthzRequest = {
      sub: principal?.sub ?? peer?.spiffeId ?? ANONYMOUS,
      peer: peer?.spiffeId ?? '',
      obj: path,
      act: input.method,
      claims: principal?.claims ?? {},
    };
    const decision = authorizer.decide(tuple);
    state.decision = decision;
    // ★ Shadow policy: the candidate decides the same tuple; audited, never enforced.
    state.shadow = deps.shadow?.()?.decide(tuple);
    // ★ Path-confusion alarm: the raw path would have been decided
    //    differently by a rule — allowed where the canonical path is denied
    //    (what a proxy that authorizes raw paths would have let through), or
    //    caught by a deny rule the canonical path escapes. A raw path that
    //    merely matches nothing (`//orders` from a sloppy client) is not
    //    confusion. Costs a second decision only when the paths differ.
    const q = input.rawTarget.indexOf('?');
    const rawPath = q === -1 ? input.rawTarget : input.rawTarget.slice(0, q);
    if (rawPath !== path) {
      const raw = authorizer.decide({ ...tuple, obj: rawPath });
      if (raw.allowed !== decision.allowed && (raw.allowed || raw.reason === Errors.AUTHZ_DENY_RULE.reason)) state.pathConfusion = raw;
    }
    if (!decision.allowed) {
      throw new MeshgateError(decision.reason === Errors.AUTHZ_DENY_RULE.reason ? Errors.AUTHZ_DENY_RULE
        : decision.reason === Errors.AUTHZ_ERROR.reason ? Errors.AUTHZ_ERROR : Errors.AUTHZ_DENIED);
    }

    // 7. Identity for the upstream, in headers it can trust because step 2
    //    removed every client-sent copy.
    upstream['x-request-id'] = state.id;
    upstream['x-forwarded-proto'] = 'https';
    const xff = keepForwarded ? upstream['x-forwarded-for'] : undefined;
    upstream['x-forwarded-for'] = xff ? `${String(xff)}, ${input.source.ip}` : input.source.ip;
    if (peer) {
      upstream['x-meshgate-peer'] = peer.spiffeId;
      if (deps.setClientCertHeader) {
        // Envoy's XFCC element format: By, Hash (hex SHA-256 of the DER), URI.
        upstream['x-forwarded-client-cert'] = `${deps.gatewayId ? `By=${deps.gatewayId};` : ''}Hash=${peer.fingerprint256};URI=${peer.spiffeId}`;
      }
    }
    if (principal) {
      upstream['x-meshgate-principal'] = headerSafe(principal.sub);
      upstream['x-meshgate-issuer'] = headerSafe(principal.iss);
      for (const name of deps.forwardClaims) {
        const v = principal.claims[name];
        if (v !== undefined) upstream[`x-meshgate-claim-${name.toLowerCase()}`] = headerSafe(typeof v === 'string' ? v : JSON.stringify(v));
      }
    }
    state.upstreamHeaders = upstream;
  };
}
