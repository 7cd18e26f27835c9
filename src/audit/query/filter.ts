/**
 * `AuditFilter` — what an audit query selects — and `matches`, the one
 * authoritative test of a record against it. The CLI (`audit query`,
 * `audit tail`) and the admin API build filters with `parseQuery` and share
 * this test, so they cannot disagree about which events a filter selects.
 * Every condition present must hold (AND); an absent condition selects all.
 */
import type { AuditRecord } from '../event.ts';

/** Identity condition: exact, or a prefix (the flag's trailing `*` removed). */
export interface IdentityCondition {
  readonly value: string;
  readonly prefix: boolean;
}

/** Inclusive status range; a single status has min === max. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** A validated query (built by `parseQuery`); plain data, safe to serialize. */
export interface AuditFilter {
  /** Event time lower bound, epoch ms, inclusive. */
  readonly since?: number;
  /** Event time upper bound, epoch ms, exclusive: `--since 10:00 --until 11:00` is one hour. */
  readonly until?: number;
  /** Matches the peer SPIFFE ID or the token subject. */
  readonly identity?: IdentityCondition;
  readonly route?: string;
  /** Segment-aware, like route `pathPrefix`: `/api` selects `/api` and `/api/x`, not `/apix`. */
  readonly pathPrefix?: string;
  /** Upper case, compared exactly (the writer stores methods upper case). */
  readonly method?: string;
  readonly decision?: 'allow' | 'deny';
  readonly reason?: string;
  readonly status?: StatusRange;
  /** Events with `latencyMs >= minLatencyMs`. */
  readonly minLatencyMs?: number;
  readonly requestId?: string;
  /** Event type: `request`, `tls_handshake`, `alarm`, or a type added later. */
  readonly type?: string;
}

/** Anything read from disk: a record that may lack fields or hold wrong types. */
type Loose = { readonly [k: string]: unknown };

function str(o: Loose | null | undefined, k: string): string | undefined {
  const v = o?.[k];
  return typeof v === 'string' ? v : undefined;
}

function obj(o: Loose, k: string): Loose | undefined {
  const v = o[k];
  return typeof v === 'object' && v !== null ? (v as Loose) : undefined;
}

function identityMatches(id: string | undefined, c: IdentityCondition): boolean {
  // An empty SPIFFE ID means "certificate without a usable SPIFFE ID": no identity.
  if (id === undefined || id === '') return false;
  return c.prefix ? id.startsWith(c.value) : id === c.value;
}

/** The same rule as route matching (src/routes/table.ts): prefixes end at a segment boundary. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (prefix.endsWith('/') || path.length === prefix.length) return true;
  return path.charCodeAt(prefix.length) === 47; // '/'
}

/**
 * The identity a person reads first: the token subject when a token was
 * verified, else the peer SPIFFE ID — the same choice as the Casbin `sub`
 * (PRODUCT §1.4). Undefined when the request had no verified identity.
 */
export function identityOf(record: AuditRecord): string | undefined {
  const r = record as unknown as Loose;
  const sub = str(obj(r, 'principal'), 'sub');
  if (sub !== undefined && sub !== '') return sub;
  const spiffe = str(obj(r, 'peer'), 'spiffeId');
  return spiffe === '' ? undefined : spiffe;
}

/**
 * True when `record` satisfies every condition of `filter`. Tolerates
 * records from older or foreign writers: a missing or mistyped field never
 * matches a condition on it, and never throws.
 */
export function matches(record: AuditRecord, filter: AuditFilter): boolean {
  const r = record as unknown as Loose;
  if (filter.since !== undefined || filter.until !== undefined) {
    const t = Date.parse(str(r, 'time') ?? '');
    if (Number.isNaN(t)) return false;
    if (filter.since !== undefined && t < filter.since) return false;
    if (filter.until !== undefined && t >= filter.until) return false;
  }
  if (filter.type !== undefined && r['type'] !== filter.type) return false;
  if (filter.decision !== undefined && r['decision'] !== filter.decision) return false;
  if (filter.reason !== undefined && r['reason'] !== filter.reason) return false;
  if (filter.route !== undefined && r['route'] !== filter.route) return false;
  if (filter.method !== undefined && r['method'] !== filter.method) return false;
  if (filter.requestId !== undefined && r['requestId'] !== filter.requestId) return false;
  if (filter.pathPrefix !== undefined) {
    const p = str(r, 'path');
    if (p === undefined || !pathHasPrefix(p, filter.pathPrefix)) return false;
  }
  if (filter.status !== undefined) {
    const s = r['status'];
    if (typeof s !== 'number' || s < filter.status.min || s > filter.status.max) return false;
  }
  if (filter.minLatencyMs !== undefined) {
    const l = r['latencyMs'];
    if (typeof l !== 'number' || !(l >= filter.minLatencyMs)) return false;
  }
  if (filter.identity !== undefined) {
    const c = filter.identity;
    if (!identityMatches(str(obj(r, 'peer'), 'spiffeId'), c) && !identityMatches(str(obj(r, 'principal'), 'sub'), c)) return false;
  }
  return true;
}

/** True when the filter has no conditions (selects every event). */
export function isEmptyFilter(filter: AuditFilter): boolean {
  return Object.values(filter).every((v) => v === undefined);
}
