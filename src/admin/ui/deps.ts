/**
 * What the admin web UI and API need from the rest of meshgate, wired by the
 * composition root (src/app.ts). Feature code arrives as functions and
 * folders, so this module depends on no other feature's internals.
 */
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import type { ExplainQuery, ExplainReport } from '../../policy/explain.ts';

/** Inputs of `createAdminApp`. */
export interface AdminUiDeps {
  /** The admin token (`admin.token` / `admin.tokenFile`); undefined: token sign-in is off (every attempt fails). */
  readonly token: string | undefined;
  /** SPIFFE IDs signed in automatically over mTLS (`admin.spiffeIds`). */
  readonly spiffeIds: readonly string[];
  /** The audit log folder (`audit.dir`). */
  readonly auditDir: string;
  /** The analyzer state folder (`analyzer.dir`): alerts.jsonl, decisions.json, acks.json. */
  readonly analyzerDir: string;
  /** Session lifetime (`admin.sessionTtl`, ms). */
  readonly sessionTtlMs?: number;
  /**
   * Re-runs a recorded request through the current configuration and policy
   * (`policy explain`); absent: event details show the recorded decision only.
   */
  readonly explain?: (q: ExplainQuery) => Promise<ExplainReport>;
  readonly log: Logger;
  readonly clock?: Clock;
}

/** Facts about the connection the admin listener knows and express does not. */
export interface AdminTransport {
  /** True when the admin listener serves HTTPS: cookies get `Secure` and the `__Host-` prefix. */
  readonly secure: boolean;
  /** The verified SPIFFE ID of the client certificate on this request's connection, if any. */
  readonly peerSpiffeId: (req: IncomingMessage) => string | undefined;
}
