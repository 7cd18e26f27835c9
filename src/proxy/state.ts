/**
 * Typed per-request state. Each field is written once, by the stage that owns
 * it (see src/proxy/pipeline.ts), and read by later stages, the reply module
 * and the audit event builder.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { MeshgateError } from '../core/errors.ts';
import type { Decision, Peer, Principal, Route } from '../core/types.ts';
import type { PeerResult } from '../tls/peer.ts';

/** What a front end (HTTP/1.1, HTTP/2, WebSocket upgrade, explain) hands the pipeline. */
export interface RequestInput {
  readonly method: string;
  /** The request target exactly as received. */
  readonly rawTarget: string;
  /** Header object as parsed by Node (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /** Number of header fields received (rawHeaders.length / 2). */
  readonly headerCount: number;
  readonly peer: PeerResult;
  readonly source: { readonly ip: string; readonly port: number };
  readonly websocket: boolean;
}

export class RequestState {
  readonly id: string;
  readonly input: RequestInput;
  /** Wall-clock start (ms since epoch) and monotonic start (ns) for latency. */
  readonly startedAt: number;
  readonly startNs: bigint;

  peer: Peer | undefined;
  /** Fingerprint of a presented certificate even when it was refused. */
  peerFingerprint: string | undefined;
  upstreamHeaders: Record<string, string | string[]> | undefined;
  path: string | undefined;
  query: string | undefined;
  route: Route | undefined;
  principal: Principal | undefined;
  /** SHA-256 (base64url) of a presented token that failed verification. */
  refusedTokenHash: string | undefined;
  /** Version of the policy in force when the request arrived. */
  policyVersion: string | undefined;
  decision: Decision | undefined;
  /** The shadow policy's decision for the same tuple (never enforced). */
  shadow: Decision | undefined;
  /** Set when the raw path would have been decided differently from the canonical one. */
  pathConfusion: Decision | undefined;
  /** The quarantine decision that refused (or, simulated, would have refused) the request. */
  quarantine: { decisionId: string; scope: string; simulated: boolean } | undefined;
  error: MeshgateError | undefined;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;

  constructor(id: string, input: RequestInput, startedAt: number, startNs: bigint) {
    this.id = id;
    this.input = input;
    this.startedAt = startedAt;
    this.startNs = startNs;
  }

  /** Milliseconds since the request started (monotonic). */
  elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.startNs) / 1e6;
  }
}
