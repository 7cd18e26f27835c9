/**
 * Requests that did not arrive on a socket — a policy test case, an explain
 * query — run through the REAL pipeline (`admit` from src/proxy/pipeline.ts).
 * This module only builds the inputs a socket would have provided and an
 * authorizer tap that records the exact tuple the pipeline decided on, so the
 * tools can show it without rebuilding it themselves.
 */
import { Errors, MeshgateError } from '../core/errors.ts';
import { parseSpiffeId } from '../core/spiffe-id.ts';
import type { AuthzRequest, Decision, Peer, Principal } from '../core/types.ts';
import type { DecisionMaker, TokenVerifier } from '../proxy/pipeline.ts';
import { toMeshgateError } from '../proxy/reply.ts';
import { RequestState, type RequestInput } from '../proxy/state.ts';
import type { PeerResult } from '../tls/peer.ts';

/** Stands in for a token whose principal is asserted on the command line (never verified). */
export const ASSUMED_TOKEN = 'meshgate-assumed-token';

/**
 * A peer result for a SPIFFE ID asserted without a certificate. It passes the
 * same SPIFFE-ID and trust-domain checks as a certificate's URI SAN would
 * (src/tls/peer.ts); the fingerprint and thumbprint are unknown (empty).
 */
export function assertedPeer(spiffeId: string, trustDomains: ReadonlySet<string> | undefined): PeerResult {
  const id = parseSpiffeId(spiffeId);
  if (!id.ok) return { kind: 'error', error: new MeshgateError(Errors.TLS_SPIFFE_INVALID, id.error) };
  if (trustDomains !== undefined && !trustDomains.has(id.trustDomain)) return { kind: 'error', error: new MeshgateError(Errors.TLS_TRUST_DOMAIN, id.trustDomain) };
  const peer: Peer = Object.freeze({ spiffeId, trustDomain: id.trustDomain, fingerprint256: '', x5tS256: '', serialNumber: '' });
  return { kind: 'peer', peer };
}

/** The principal a verified token with these claims would yield. */
export function assumedPrincipal(sub: string, claims: Readonly<Record<string, unknown>>): Principal {
  const iss = typeof claims['iss'] === 'string' ? claims['iss'] : '';
  const jti = typeof claims['jti'] === 'string' ? claims['jti'] : undefined;
  const exp = typeof claims['exp'] === 'number' ? claims['exp'] : undefined;
  return Object.freeze({ iss, sub, jti, tokenHash: '', exp, certBound: false, claims: Object.freeze({ ...claims, sub }) });
}

/**
 * A TokenVerifier that "verifies" only ASSUMED_TOKEN, into `principal`. The
 * RFC 8705 binding is still checked against the peer, as the real verifier does.
 */
export function assumedTokenVerifier(principal: Principal): TokenVerifier {
  return {
    extract: () => ASSUMED_TOKEN,
    async verify(token: string, peer: Peer | undefined): Promise<Principal> {
      if (token !== ASSUMED_TOKEN) throw new MeshgateError(Errors.JWT_MALFORMED);
      const cnf = principal.claims['cnf'];
      if (cnf === undefined) return principal;
      const x5t = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
      if (typeof x5t !== 'string') throw new MeshgateError(Errors.JWT_CNF_MISMATCH, 'token uses a confirmation method meshgate cannot check');
      if (peer === undefined || peer.x5tS256 === '' || peer.x5tS256 !== x5t) throw new MeshgateError(Errors.JWT_CNF_MISMATCH, 'token is bound to a different client certificate');
      return Object.freeze({ ...principal, certBound: true });
    },
  };
}

/**
 * An authorizer wrapper that remembers the FIRST tuple it is asked about in
 * a request: the enforced decision. (The pipeline may ask again, e.g. for the
 * raw path of the path-confusion alarm; those are not the decision.)
 */
export class AuthorizerTap implements DecisionMaker {
  readonly #inner: DecisionMaker;
  tuple: AuthzRequest | undefined;
  constructor(inner: DecisionMaker) { this.#inner = inner; }
  get version(): string { return this.#inner.version; }
  decide(req: AuthzRequest): Decision {
    this.tuple ??= req;
    return this.#inner.decide(req);
  }
}

/** What a request built here looks like to the pipeline. */
export function syntheticInput(method: string, rawTarget: string, peer: PeerResult, headers: Record<string, string> = {}): RequestInput {
  return { method, rawTarget, headers, headerCount: Object.keys(headers).length, peer, source: { ip: '127.0.0.1', port: 0 }, websocket: false };
}

/** Runs `admit` on `input`; the refusal (if any) is returned, never thrown. */
export async function runAdmit(admit: (s: RequestState) => Promise<void>, input: RequestInput, id = 'synthetic'): Promise<{ state: RequestState; error: MeshgateError | undefined }> {
  const state = new RequestState(id, input, Date.now(), process.hrtime.bigint());
  try {
    await admit(state);
    return { state, error: undefined };
  } catch (e) {
    const error = toMeshgateError(e);
    state.error = error;
    return { state, error };
  }
}
