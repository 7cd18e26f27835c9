/**
 * `policy replay`: re-decide recorded requests under a candidate policy and
 * report every decision that would flip, before the change goes live.
 *
 * Only the authorization verdict is replayed. An event is replayable when the
 * request reached the authorizer: its reason is an authz reason (`allowed`,
 * `authz_no_matching_rule`, `authz_deny_rule`, `authz_error`), or it carries
 * a policy version, which only the authz stage sets — such a request was
 * allowed and failed later (upstream errors, client gone). Requests refused
 * earlier (TLS, normalization, route, JWT) never reached a policy and cannot
 * flip. The tuple is rebuilt from the event exactly as the pipeline built it:
 * sub = principal.sub ?? peer.spiffeId ?? anonymous, obj = the recorded
 * canonical path, act = the method. Claims are not in the audit log: a
 * candidate that reads r.claims sees {} (and the report says so).
 */
import type { AuditRecord } from '../audit/event.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import { Errors, REASON_ALLOWED } from '../core/errors.ts';
import { ANONYMOUS, type Decision } from '../core/types.ts';
import { recordedEvents } from './audit-source.ts';

/** Which way a decision flipped. */
export type FlipDirection = 'allow_to_deny' | 'deny_to_allow';

/** Flips of one identity on one route with the same rule before and after. */
export interface FlipGroup {
  readonly direction: FlipDirection;
  readonly identity: string;
  readonly route: string;
  readonly reasonBefore: string;
  readonly ruleBefore: string | null;
  readonly reasonAfter: string;
  readonly ruleAfter: string | null;
  count: number;
  /** Up to MAX_EXAMPLES events, first seen first. */
  readonly examples: { readonly id: string; readonly time: string; readonly method: string; readonly path: string }[];
}

/** The outcome of a replay. */
export interface ReplayReport {
  readonly candidateVersion: string;
  /** Records read (requests, handshakes, alarms). */
  readonly events: number;
  /** Alarm events skipped: each is a companion copy of a request event that is replayed itself. */
  readonly alarms: number;
  readonly replayable: number;
  readonly notReplayable: number;
  /** Not-replayable events by their recorded reason. */
  readonly notReplayableByReason: Readonly<Record<string, number>>;
  readonly unchanged: number;
  readonly allowToDeny: number;
  readonly denyToAllow: number;
  /** Flip groups, largest first. */
  readonly flips: readonly FlipGroup[];
  /** Policy versions the replayed events were decided under, with counts. */
  readonly recordedVersions: Readonly<Record<string, number>>;
  /** True when the candidate model reads r.claims (replayed with claims = {}). */
  readonly claimsUnavailable: boolean;
  readonly elapsedMs: number;
}

/** Options for {@link replayAudit}. */
export interface ReplayOptions {
  /** Audit folders or segment files, replayed in the order given. */
  readonly sources: readonly string[];
  readonly authorizer: Authorizer;
  /** Called every `progressEvery` events and once at the end. */
  readonly onProgress?: (events: number, elapsedMs: number) => void;
  readonly progressEvery?: number;
}

/** Example events kept per flip group. */
export const MAX_EXAMPLES = 3;
/** Distinct tuples memoized; recorded traffic repeats the same few far more often than not. */
const MEMO_LIMIT = 500_000;

const AUTHZ_REASONS: ReadonlyMap<string, boolean> = new Map([
  [REASON_ALLOWED, true],
  [Errors.AUTHZ_DENIED.reason, false],
  [Errors.AUTHZ_DENY_RULE.reason, false],
  [Errors.AUTHZ_ERROR.reason, false],
]);

/** The recorded authz verdict of an event (true = allowed), or undefined when it never reached the authorizer. */
export function recordedVerdict(e: AuditRecord): boolean | undefined {
  if (e.type !== 'request' || !e.method || !e.path || !e.route) return undefined;
  const v = AUTHZ_REASONS.get(e.reason);
  if (v !== undefined) return v;
  return e.policyVersion ? true : undefined;
}

/** Replays every recorded event of `sources` against the candidate. */
export async function replayAudit(opts: ReplayOptions): Promise<ReplayReport> {
  const { authorizer } = opts;
  const every = opts.progressEvery ?? 50_000;
  const started = performance.now();
  const memo = new Map<string, Decision>();
  const groups = new Map<string, FlipGroup>();
  const skipped = new Map<string, number>();
  const versions = new Map<string, number>();
  let events = 0;
  let alarms = 0;
  let replayable = 0;
  let unchanged = 0;
  let allowToDeny = 0;
  let denyToAllow = 0;

  for await (const e of recordedEvents(opts.sources)) {
    events++;
    if (opts.onProgress && events % every === 0) opts.onProgress(events, performance.now() - started);
    if (e.type === 'alarm') { alarms++; continue; }
    const before = recordedVerdict(e);
    if (before === undefined) {
      skipped.set(e.reason, (skipped.get(e.reason) ?? 0) + 1);
      continue;
    }
    replayable++;
    if (e.policyVersion) versions.set(e.policyVersion, (versions.get(e.policyVersion) ?? 0) + 1);
    const peer = e.peer?.spiffeId ?? '';
    const sub = e.principal?.sub ?? (peer !== '' ? peer : ANONYMOUS);
    const key = `${sub}\u0000${peer}\u0000${e.method}\u0000${e.path}`;
    let after = memo.get(key);
    if (after === undefined) {
      after = authorizer.decide({ sub, peer, obj: e.path as string, act: e.method as string, claims: {} });
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(key, after);
    }
    if (after.allowed === before) { unchanged++; continue; }
    const direction: FlipDirection = before ? 'allow_to_deny' : 'deny_to_allow';
    if (before) allowToDeny++;
    else denyToAllow++;
    const reasonBefore = before ? REASON_ALLOWED : e.reason;
    const ruleBefore = e.rule ?? null;
    const ruleAfter = after.matchedRule ?? null;
    const gk = JSON.stringify([direction, sub, e.route, reasonBefore, ruleBefore, after.reason, ruleAfter]);
    let g = groups.get(gk);
    if (!g) {
      g = { direction, identity: sub, route: e.route as string, reasonBefore, ruleBefore, reasonAfter: after.reason, ruleAfter, count: 0, examples: [] };
      groups.set(gk, g);
    }
    g.count++;
    if (g.examples.length < MAX_EXAMPLES) g.examples.push({ id: e.id, time: e.time, method: e.method as string, path: e.path as string });
  }
  const elapsedMs = performance.now() - started;
  opts.onProgress?.(events, elapsedMs);
  const flips = [...groups.values()].sort((a, b) => b.count - a.count || a.direction.localeCompare(b.direction) || a.identity.localeCompare(b.identity) || a.route.localeCompare(b.route));
  return {
    candidateVersion: authorizer.version,
    events,
    replayable,
    alarms,
    notReplayable: events - alarms - replayable,
    notReplayableByReason: Object.fromEntries([...skipped].sort((a, b) => b[1] - a[1])),
    unchanged,
    allowToDeny,
    denyToAllow,
    flips,
    recordedVersions: Object.fromEntries([...versions].sort((a, b) => b[1] - a[1])),
    claimsUnavailable: authorizer.usesClaims,
    elapsedMs,
  };
}
