/**
 * The gateway's read side of decisions.json: answers "is this request's
 * identity, token, certificate or address quarantined?" in O(1) — one map
 * lookup per key — however many decisions there are. The request path calls
 * `match` on every request, so nothing here does I/O; `load` swaps in a whole
 * new index at once (a request sees the old table or the new one).
 */
import type { Decision, Scope } from '../analyzer/types.ts';
import { readDecisionsFile, SCOPES, type DecisionsDoc } from './decisions-file.ts';

/** What a request can be matched on (values as in its audit event). */
export interface QuarantineKeys {
  /** Peer SPIFFE ID (`peer.spiffeId`). */
  readonly spiffe?: string | null | undefined;
  /** Token subject (`principal.sub`). */
  readonly sub?: string | null | undefined;
  /** Token id (`jti`). */
  readonly jti?: string | null | undefined;
  /** Peer certificate SHA-256 fingerprint (`peer.fingerprint`). */
  readonly cert?: string | null | undefined;
  /** Source address (`source.ip`). */
  readonly ip?: string | null | undefined;
}

interface Entry {
  readonly decision: Decision;
  readonly expiresMs: number;
}

type Index = Map<string, Entry>;

const key = (scope: Scope, value: string): string => `${scope}\u0000${value}`;

function build(decisions: readonly Decision[], simulated: boolean): Index {
  const index: Index = new Map();
  for (const d of decisions) {
    if (d.simulated !== simulated) continue;
    const expiresMs = Date.parse(d.expiresAt);
    const k = key(d.scope, d.value);
    const cur = index.get(k);
    // Keep the longest-lasting decision per key: if it has expired, all have.
    if (!cur || expiresMs > cur.expiresMs) index.set(k, { decision: d, expiresMs });
  }
  return index;
}

function lookup(index: Index, keys: QuarantineKeys, now: number): Decision | undefined {
  if (index.size === 0) return undefined;
  for (const scope of SCOPES) {
    const v = keys[scope];
    if (typeof v !== 'string' || v.length === 0) continue;
    const e = index.get(key(scope, v));
    if (e && e.expiresMs > now) return e.decision;
  }
  return undefined;
}

/** An in-memory, immutable-per-load index of the decisions in decisions.json. */
export class QuarantineTable {
  #enforced: Index = new Map();
  #simulated: Index = new Map();
  #count = 0;

  /** Replaces the table with the decisions of `file` (missing file: empty). Throws DecisionsFileError and keeps the old table when the file is invalid. */
  async load(file: string): Promise<void> {
    this.replace(await readDecisionsFile(file));
  }

  /** Replaces the table with the decisions of `doc`. */
  replace(doc: DecisionsDoc): void {
    const enforced = build(doc.decisions, false);
    const simulated = build(doc.decisions, true);
    this.#enforced = enforced;
    this.#simulated = simulated;
    this.#count = doc.decisions.length;
  }

  /**
   * The enforced, unexpired decision matching any of `keys` at `now` (ms), most
   * specific scope first (jti, cert, spiffe, sub, ip); undefined when none.
   */
  match(keys: QuarantineKeys, now: number): Decision | undefined {
    return lookup(this.#enforced, keys, now);
  }

  /** Like `match`, for simulated decisions: the request is not refused, only recorded as "would block". */
  wouldMatch(keys: QuarantineKeys, now: number): Decision | undefined {
    return lookup(this.#simulated, keys, now);
  }

  /** Decisions loaded (including expired and simulated ones). */
  get size(): number {
    return this.#count;
  }
}
