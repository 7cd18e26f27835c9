/**
 * `parseQuery`: untrusted filter input (CLI flags, or the admin API's query
 * string) → a validated `AuditFilter`. Every problem is a `QueryFlagError`
 * naming the flag, so the CLI exits 2 with `--since: …` and the API can
 * answer 400 with the parameter name.
 */
import { parseDuration } from '../../core/duration.ts';
import type { AuditFilter, IdentityCondition, StatusRange } from './filter.ts';

/** Filter flag names, as on the command line (without `--`) and in the API query string. */
export const QUERY_FLAGS = [
  'since', 'until', 'identity', 'route', 'path-prefix', 'method', 'decision', 'reason', 'status', 'min-latency', 'request-id', 'type',
] as const;

export type QueryFlagName = (typeof QUERY_FLAGS)[number];

/** Raw filter input: flag name → value as typed. */
export type QueryFlags = { readonly [K in QueryFlagName]?: string | undefined };

/** A filter flag with a bad value (or an unknown flag). `flag` is the name without `--`. */
export class QueryFlagError extends Error {
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(`--${flag}: ${message}`);
    this.name = 'QueryFlagError';
    this.flag = flag;
  }
}

const KNOWN = new Set<string>(QUERY_FLAGS);
// C0/C1 controls and DEL: never part of an identity, path or id, and a way to
// smuggle terminal escapes into error messages.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Shows a bad value in a message: quoted, escaped, cut. */
function show(v: string): string {
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
}

function isoTime(text: string): number | undefined {
  const m = ISO_RE.exec(text);
  if (!m) return undefined;
  const frac = m[7];
  const zone = m[8];
  // A date-time without a zone would be read in the local zone of whoever
  // runs the query: refuse it rather than guess. A bare date means UTC midnight.
  if (m[4] !== undefined && !zone) return undefined;
  const Y = Number(m[1]), M = Number(m[2]), D = Number(m[3]);
  const H = Number(m[4] ?? 0), MI = Number(m[5] ?? 0), S = Number(m[6] ?? 0);
  // Date.parse accepts 2026-02-30 and 24:00 by rolling over: check ranges ourselves.
  if (M < 1 || M > 12 || D < 1 || H > 23 || MI > 59 || S > 59) return undefined;
  if (D > new Date(Date.UTC(Y, M, 0)).getUTCDate()) return undefined;
  let t = Date.UTC(Y, M - 1, D, H, MI, S) + (frac ? Math.floor(Number(`0${frac}`) * 1000) : 0);
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const zh = Number(zone.slice(1, 3)), zm = Number(zone.slice(4, 6));
    if (zh > 23 || zm > 59) return undefined;
    t -= sign * (zh * 60 + zm) * 60_000;
  }
  return t;
}

/**
 * A time flag: `now`, a duration back from `now` (`90s`, `15m`, `1h`, `7d`),
 * or an ISO 8601 date (UTC midnight) or date-time with `Z` or an offset.
 * Returns epoch ms, or undefined when `text` is none of these.
 */
export function parseTimeFlag(text: string, now: number): number | undefined {
  const t = text.trim();
  if (t === 'now') return now;
  const d = parseDuration(t);
  if (d !== undefined) return now - d;
  return isoTime(t);
}

function parseStatus(text: string): StatusRange | undefined {
  const one = (s: string): number | undefined => (/^(0|[1-5]\d\d)$/.test(s) ? Number(s) : undefined);
  const cls = /^([1-5])xx$/i.exec(text);
  if (cls) return { min: Number(cls[1]) * 100, max: Number(cls[1]) * 100 + 99 };
  const dash = text.indexOf('-');
  if (dash === -1) {
    const s = one(text);
    return s === undefined ? undefined : { min: s, max: s };
  }
  const min = one(text.slice(0, dash));
  const max = one(text.slice(dash + 1));
  return min === undefined || max === undefined || min > max ? undefined : { min, max };
}

function text(flag: string, v: string, max: number): string {
  if (v === '') throw new QueryFlagError(flag, 'must not be empty');
  if (v.length > max) throw new QueryFlagError(flag, `longer than ${max} characters`);
  if (CONTROL_RE.test(v)) throw new QueryFlagError(flag, 'contains control characters');
  return v;
}

function pattern(flag: string, v: string, re: RegExp, expected: string): string {
  if (!re.test(v)) throw new QueryFlagError(flag, `${show(v)} is not ${expected}`);
  return v;
}

/**
 * Validates filter input and builds the filter. Unknown names and values
 * that are not single strings are errors too (an API query string may repeat
 * a parameter). `now` anchors relative times (default: the current time).
 * Throws QueryFlagError; never returns a partial filter.
 */
export function parseQuery(flags: Readonly<Record<string, unknown>>, options: { now?: number } = {}): AuditFilter {
  const now = options.now ?? Date.now();
  const v: Partial<Record<QueryFlagName, string>> = {};
  for (const [k, raw] of Object.entries(flags)) {
    if (!KNOWN.has(k)) throw new QueryFlagError(k, `unknown filter (known: ${QUERY_FLAGS.join(', ')})`);
    if (raw === undefined) continue;
    if (typeof raw !== 'string') throw new QueryFlagError(k, 'expected one value');
    v[k as QueryFlagName] = raw;
  }
  const f: { -readonly [K in keyof AuditFilter]: AuditFilter[K] } = {};
  for (const k of ['since', 'until'] as const) {
    const s = v[k];
    if (s === undefined) continue;
    const t = parseTimeFlag(s, now);
    if (t === undefined) throw new QueryFlagError(k, `${show(s)} is not a time: use a duration back from now (30m, 1h, 7d), an ISO date (2026-01-31) or date-time with a zone (2026-01-31T12:00:00Z)`);
    f[k] = t;
  }
  if (f.since !== undefined && f.until !== undefined && f.until <= f.since) throw new QueryFlagError('until', 'is not after --since');
  if (v.identity !== undefined) {
    const id = text('identity', v.identity, 2048);
    const star = id.indexOf('*');
    if (star !== -1 && star !== id.length - 1) throw new QueryFlagError('identity', '"*" is only allowed at the end (a prefix match)');
    const c: IdentityCondition = star === -1 ? { value: id, prefix: false } : { value: id.slice(0, -1), prefix: true };
    f.identity = c;
  }
  if (v.route !== undefined) f.route = pattern('route', v.route, /^[A-Za-z0-9_.-]{1,128}$/, 'a route name');
  if (v['path-prefix'] !== undefined) {
    const p = text('path-prefix', v['path-prefix'], 2048);
    if (!p.startsWith('/') || p.includes('?')) throw new QueryFlagError('path-prefix', `${show(p)} is not a path (it starts with "/" and has no query)`);
    f.pathPrefix = p;
  }
  if (v.method !== undefined) f.method = pattern('method', v.method, /^[A-Za-z]{1,20}$/, 'an HTTP method').toUpperCase();
  if (v.decision !== undefined) {
    const d = v.decision.toLowerCase();
    if (d !== 'allow' && d !== 'deny') throw new QueryFlagError('decision', `${show(v.decision)} is not allow or deny`);
    f.decision = d;
  }
  if (v.reason !== undefined) f.reason = pattern('reason', v.reason, /^[a-z][a-z0-9_]{0,63}$/, 'a reason code (e.g. authz_no_matching_rule)');
  if (v.status !== undefined) {
    const s = parseStatus(v.status.trim());
    if (!s) throw new QueryFlagError('status', `${show(v.status)} is not a status (403), range (400-499) or class (4xx)`);
    f.status = s;
  }
  if (v['min-latency'] !== undefined) {
    const ms = parseDuration(v['min-latency']);
    if (ms === undefined) throw new QueryFlagError('min-latency', `${show(v['min-latency'])} is not a duration (e.g. 250ms, 2s)`);
    f.minLatencyMs = ms;
  }
  if (v['request-id'] !== undefined) f.requestId = text('request-id', v['request-id'], 256);
  if (v.type !== undefined) f.type = pattern('type', v.type, /^[a-z][a-z_]{0,31}$/, 'an event type (request, tls_handshake, alarm)');
  return Object.freeze(f);
}
