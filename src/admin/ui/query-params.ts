/**
 * Strict reading of admin API query strings: every parameter must be known
 * to the endpoint and given once; anything else is a 400 naming it. A typo
 * (`?decison=deny`) must not silently widen a query to every event.
 */
import type { Request } from 'express';
import { badParam } from './problem.ts';

/** Largest page the API returns. */
export const MAX_LIMIT = 500;

/** The query string as single strings, after rejecting unknown and repeated parameters. */
export function readQuery(req: Request, allowed: readonly string[]): Record<string, string> {
  const known = new Set(allowed);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) {
    if (!known.has(k)) throw badParam(k, `unknown parameter (known: ${allowed.join(', ') || 'none'})`);
    if (typeof v !== 'string') throw badParam(k, 'give this parameter once');
    out[k] = v;
  }
  return out;
}

/** A decimal integer parameter within [min, max], or `def` when absent. */
export function intParam(q: Readonly<Record<string, string>>, name: string, def: number, min: number, max: number): number {
  const v = q[name];
  if (v === undefined) return def;
  if (!/^\d{1,9}$/.test(v)) throw badParam(name, `expected an integer from ${min} to ${max}`);
  const n = Number(v);
  if (n < min || n > max) throw badParam(name, `expected an integer from ${min} to ${max}`);
  return n;
}

/** `limit` (1..500, default `def`) and `offset` (default 0). */
export function pageParams(q: Readonly<Record<string, string>>, def = 50): { limit: number; offset: number } {
  return { limit: intParam(q, 'limit', def, 1, MAX_LIMIT), offset: intParam(q, 'offset', 0, 0, 100_000_000) };
}

/** A `true`/`false` parameter. */
export function boolParam(q: Readonly<Record<string, string>>, name: string, def: boolean): boolean {
  const v = q[name];
  if (v === undefined) return def;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw badParam(name, 'expected true or false');
}

/** One of `choices`, or `def`. */
export function enumParam<T extends string>(q: Readonly<Record<string, string>>, name: string, choices: readonly T[], def: T | undefined): T | undefined {
  const v = q[name];
  if (v === undefined) return def;
  if (!(choices as readonly string[]).includes(v)) throw badParam(name, `expected one of ${choices.join(', ')}`);
  return v as T;
}

/** The members of `q` named in `names` (e.g. the audit filter flags). */
export function pick(q: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (q[n] !== undefined) out[n] = q[n] as string;
  return out;
}

const EVENT_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An audit event id path parameter (a lowercase UUID), else 400. */
export function eventIdParam(v: string | undefined, name = 'id'): string {
  if (v === undefined || !EVENT_ID_RE.test(v)) throw badParam(name, 'expected an audit event id (a lowercase UUID)');
  return v;
}

/** An alert id path parameter (hex, as the analyzer makes them), else 400. */
export function alertIdParam(v: string | undefined): string {
  if (v === undefined || !/^[0-9a-f]{6,64}$/.test(v)) throw badParam('id', 'expected an alert id (hex)');
  return v;
}
