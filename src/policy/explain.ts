/**
 * `policy explain`: why a described request would be allowed or denied. The
 * request runs through the REAL `admit` (src/proxy/pipeline.ts) with deps
 * built from the configuration — the route table, the policy, and the JWT
 * verifier with the configured keys — so explain and the proxy cannot
 * disagree. Each stage's verdict is read back from the request state the
 * pipeline filled in, never recomputed here.
 */
import type { Authorizer } from '../authz/authorizer.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { AuthzRequest, Decision } from '../core/types.ts';
import { JwtVerifier } from '../jwt/verifier.ts';
import { createPipeline, type TokenVerifier } from '../proxy/pipeline.ts';
import type { RequestState } from '../proxy/state.ts';
import { compileRoutes } from '../routes/table.ts';
import type { PeerResult } from '../tls/peer.ts';
import { peerFromCertFile } from './explain-peer.ts';
import { loadPolicyAuthorizer } from './load-authorizer.ts';
import { AuthorizerTap, assertedPeer, assumedPrincipal, assumedTokenVerifier, runAdmit, syntheticInput } from './synthetic-request.ts';

/** The request to explain. At most one of spiffe/certFile, and one of token/sub. */
export interface ExplainQuery {
  readonly method: string;
  /** The request target as a client would send it (may be non-canonical, may carry a query). */
  readonly path: string;
  readonly spiffe?: string | undefined;
  readonly certFile?: string | undefined;
  /** A real token: verified with the configured issuers and keys. Never printed. */
  readonly token?: string | undefined;
  /** An assumed principal (not verified). */
  readonly sub?: string | undefined;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** The pipeline stages explain reports on, in order. */
export type StageName = 'tls' | 'hygiene' | 'normalize' | 'route' | 'jwt' | 'authz';

/** One stage's verdict. */
export interface StageVerdict {
  readonly stage: StageName;
  readonly verdict: 'ok' | 'fail' | 'not-reached';
  readonly summary: string;
  readonly reason?: string | undefined;
}

/** Everything explain found out. */
export interface ExplainReport {
  readonly method: string;
  readonly path: string;
  readonly allowed: boolean;
  /** HTTP status the client would get; 0 when the connection is closed right after the TLS handshake. */
  readonly status: number;
  readonly reason: string;
  /** Error code (MG_ERR_…) when refused. */
  readonly code: string | undefined;
  readonly stages: readonly StageVerdict[];
  readonly canonicalPath: string | undefined;
  readonly route: string | undefined;
  readonly principal: { readonly iss: string; readonly sub: string; readonly verified: boolean } | undefined;
  /** The exact tuple the authorizer decided on. */
  readonly tuple: AuthzRequest | undefined;
  readonly decision: Decision | undefined;
  /** The shadow policy's decision for the same tuple (authz.shadow), never enforced. */
  readonly shadow: Decision | undefined;
  /** Set when the raw path would have been decided differently: the gateway raises a path_confusion alarm. */
  readonly pathConfusion: Decision | undefined;
  readonly notes: readonly string[];
}

/** Options for {@link explainRequest}. */
export interface ExplainOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** A loaded authorizer to use instead of loading config.authz (tests, replay of many queries). */
  readonly authorizer?: Authorizer;
}

/** Explain could not build what it needs (certificate file, JWT keys): an input problem, not a decision. */
export class ExplainSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExplainSetupError';
  }
}

const HYGIENE: ReadonlySet<string> = new Set([Errors.REQ_TOO_MANY_HEADERS.reason, Errors.REQ_AMBIGUOUS_LENGTH.reason, Errors.REQ_BODY_TOO_LARGE.reason]);

function tokenHeaders(config: Config, token: string): Record<string, string> {
  const loc = config.jwt?.locations[0] ?? { header: 'authorization', scheme: 'Bearer' };
  if ('cookie' in loc) return { cookie: `${loc.cookie}=${token}` };
  return { [loc.header.toLowerCase()]: loc.scheme ? `${loc.scheme} ${token}` : token };
}

async function peerOf(config: Config, q: ExplainQuery, notes: string[]): Promise<PeerResult> {
  if (q.certFile !== undefined) {
    notes.push('TLS: the certificate was checked offline against tls.clientCa and tls.crl (issuer signature, validity, clientAuth usage, revocation); no handshake was made');
    try {
      return await peerFromCertFile(q.certFile, config.tls);
    } catch (e) {
      throw new ExplainSetupError((e as Error).message, { cause: e });
    }
  }
  if (q.spiffe !== undefined) {
    notes.push('TLS: peer asserted with --spiffe (no certificate was checked)');
    return assertedPeer(q.spiffe, new Set(config.tls.trustDomains));
  }
  if (config.tls.mode === 'strict') return { kind: 'error', error: new MeshgateError(Errors.TLS_NO_PEER_CERT) };
  return { kind: 'none' };
}

/** Runs the described request through the pipeline built from `config` and reports every stage. */
export async function explainRequest(config: Config, q: ExplainQuery, opts: ExplainOptions = {}): Promise<ExplainReport> {
  const notes: string[] = [];
  const authorizer = opts.authorizer ?? await loadPolicyAuthorizer({ modelPath: config.authz.model, policyPath: config.authz.policy }, config.authz.engine);
  const shadowCfg = config.authz.shadow;
  const shadow = shadowCfg ? await loadPolicyAuthorizer({ modelPath: shadowCfg.model, policyPath: shadowCfg.policy }, config.authz.engine) : undefined;
  const tap = new AuthorizerTap(authorizer);
  let jwt: TokenVerifier | undefined;
  let verifier: JwtVerifier | undefined;
  let headers: Record<string, string> = {};
  let assumed = false;
  if (q.token !== undefined) {
    if (config.jwt) {
      try {
        verifier = await JwtVerifier.create(config.jwt, { watch: false, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
      } catch (e) {
        throw new ExplainSetupError(`cannot set up JWT verification: ${(e as Error).message}`, { cause: e });
      }
      jwt = verifier;
      headers = tokenHeaders(config, q.token);
    } else {
      notes.push('JWT: the configuration has no jwt section, so the gateway ignores tokens; --token was not used');
    }
  } else if (q.sub !== undefined) {
    jwt = assumedTokenVerifier(assumedPrincipal(q.sub, q.claims ?? {}));
    assumed = true;
    notes.push('JWT: assumed (not verified): the principal comes from --sub/--claims');
  }
  try {
    const peer = await peerOf(config, q, notes);
    const routes = compileRoutes(config.routes);
    const admit = createPipeline({
      routes: () => routes,
      authorizer: () => tap,
      shadow: shadow ? () => shadow : undefined,
      jwt,
      trustedForwarders: new Set(config.headers.trustedForwarders),
      encodedSlash: config.headers.encodedSlash,
      pathParams: config.headers.pathParams,
      keepOverrideHeaders: config.headers.keepOverrideHeaders,
      maxHeaders: config.listen.maxHeaders,
      maxBodyBytes: config.listen.maxBodyBytes,
      forwardClaims: config.jwt?.forwardClaims ?? [],
      setClientCertHeader: config.tls.forwardClientCert === 'sanitize_set',
      gatewayId: undefined,
    });
    const { state, error } = await runAdmit(admit, syntheticInput(q.method, q.path, peer, headers), 'explain');
    if (tap.tuple && authorizer.usesClaims && assumed) notes.push('authz: the model reads r.claims; the decision used the claims given with --claims');
    return report(q, state, error, tap.tuple, assumed, config.tls.mode, notes);
  } finally {
    verifier?.close();
  }
}

function report(q: ExplainQuery, state: RequestState, error: MeshgateError | undefined, tuple: AuthzRequest | undefined, assumed: boolean, mode: string, notes: string[]): ExplainReport {
  const stages: StageVerdict[] = [];
  let failed = false;
  const add = (stage: StageName, ok: boolean, summary: string): void => {
    if (failed) { stages.push({ stage, verdict: 'not-reached', summary: 'not reached' }); return; }
    if (ok) stages.push({ stage, verdict: 'ok', summary });
    else {
      failed = true;
      stages.push({ stage, verdict: 'fail', summary, reason: error?.reason });
    }
  };
  const pr = state.input.peer;
  const errText = error ? `${error.reason} (${error.code})${error.detail ? `: ${error.detail}` : ''}` : '';
  add('tls', pr.kind !== 'error', pr.kind === 'peer' ? `peer ${pr.peer.spiffeId}` : pr.kind === 'none' ? `no client certificate (tls.mode ${mode}: identity absent)` : errText);
  add('hygiene', !(error && HYGIENE.has(error.reason)), error && HYGIENE.has(error.reason) ? errText : 'identity headers stripped, limits ok');
  const raw = q.path.split('?')[0];
  add('normalize', state.path !== undefined, state.path === undefined ? errText
    : state.path === raw ? `canonical path ${state.path}` : `canonical path ${state.path} (raw ${raw})`);
  const r = state.route;
  add('route', r !== undefined, r ? `route ${r.name} (${r.match.path !== undefined ? `path ${r.match.path}` : `pathPrefix ${r.match.pathPrefix}`}${r.match.methods ? ` ${r.match.methods.join('|')}` : ''}, auth ${r.auth})` : errText);
  const p = state.principal;
  const authnFailed = error !== undefined && r !== undefined && state.decision === undefined;
  add('jwt', !authnFailed, authnFailed ? errText
    : p ? `principal ${p.sub} (iss ${p.iss || '-'}, ${assumed ? 'assumed, not verified' : 'verified'}${p.certBound ? ', certificate-bound' : ''})`
      : `no token (route auth ${r?.auth ?? '-'} does not require one)`);
  const d = state.decision;
  add('authz', d?.allowed === true, d ? `${d.allowed ? 'allow' : 'deny'}: ${d.reason}; rule ${d.matchedRule ?? '(none)'}; policy ${d.policyVersion}` : errText);
  const s = state.shadow;
  if (s) notes.push(`shadow policy (never enforced) would ${s.allowed ? 'allow' : 'deny'}: ${s.reason}; rule ${s.matchedRule ?? '(none)'}; policy ${s.policyVersion}${s.allowed !== d?.allowed ? ' — MISMATCH' : ''}`);
  const pc = state.pathConfusion;
  if (pc) notes.push(`path confusion: the raw path would be ${pc.allowed ? 'allowed' : 'denied'} (${pc.reason}; rule ${pc.matchedRule ?? '(none)'}): the gateway audits a high-severity path_confusion alarm`);
  // A refusal by a stage after authorization (e.g. a quarantine) has no stage line of its own.
  if (error && !failed) notes.push(`refused after authorization: ${errText}`);
  const status = error ? error.status : 200;
  if (error && status === 0) notes.push('the connection is closed right after the TLS handshake: no HTTP response; audited as a tls_handshake event');
  return {
    method: q.method,
    path: q.path,
    allowed: error === undefined,
    status,
    reason: error?.reason ?? 'allowed',
    code: error?.code,
    stages,
    canonicalPath: state.path,
    route: r?.name,
    principal: p ? { iss: p.iss, sub: p.sub, verified: !assumed } : undefined,
    tuple,
    decision: d,
    shadow: s,
    pathConfusion: pc,
    notes,
  };
}
