/**
 * Compiles a rule's declarative filter into a predicate. No eval and no
 * expression language: the filter is data, validated by the rules loader,
 * turned into closures once. Tests run cheapest first (plain fields, then
 * derived ones, then combinators), so the common miss costs one comparison.
 */
import { isFieldName, type FieldName } from '../rules/fields.ts';
import type { FieldMatch, FilterSpec, MatcherSpec, Scalar } from '../rules/schema.ts';
import { ACCESSORS, type EventView, type FieldValue } from './fields.ts';

export type Predicate = (e: EventView) => boolean;

const ALWAYS: Predicate = () => true;
/** Derived fields cost a decode or a split: test them after the plain ones. */
const EXPENSIVE = new Set<FieldName>(['target', 'pathShape']);

/** The predicate of `spec`: true when every field test and combinator holds. */
export function compileFilter(spec: FilterSpec): Predicate {
  const cheap: Predicate[] = [];
  const dear: Predicate[] = [];
  const combos: Predicate[] = [];
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined) continue;
    if (key === 'all') combos.push(allOf((value as FilterSpec[]).map(compileFilter)));
    else if (key === 'any') {
      const ps = (value as FilterSpec[]).map(compileFilter);
      combos.push((e) => ps.some((p) => p(e)));
    } else if (key === 'not') {
      const p = compileFilter(value as FilterSpec);
      combos.push((e) => !p(e));
    } else if (isFieldName(key)) {
      (EXPENSIVE.has(key) ? dear : cheap).push(compileField(key, value as FieldMatch));
    } else throw new TypeError(`unknown filter key ${key}`);
  }
  return allOf([...cheap, ...dear, ...combos]);
}

function allOf(ps: Predicate[]): Predicate {
  if (ps.length === 0) return ALWAYS;
  if (ps.length === 1) return ps[0] as Predicate;
  if (ps.length === 2) {
    const [a, b] = ps as [Predicate, Predicate];
    return (e) => a(e) && b(e);
  }
  return (e) => {
    for (const p of ps) if (!p(e)) return false;
    return true;
  };
}

function compileField(field: FieldName, m: FieldMatch): Predicate {
  const get = ACCESSORS[field];
  if (m === null || typeof m !== 'object') return (e) => get(e) === m;
  if (Array.isArray(m)) {
    const set = new Set<FieldValue>(m);
    return (e) => set.has(get(e));
  }
  const tests = compileMatcher(m);
  return (e) => {
    const v = get(e);
    for (const t of tests) if (!t(v)) return false;
    return true;
  };
}

type ValueTest = (v: FieldValue) => boolean;

function compileMatcher(m: MatcherSpec): ValueTest[] {
  const ic = m.ignoreCase === true;
  const norm = (x: Scalar): Scalar => (ic && typeof x === 'string' ? x.toLowerCase() : x);
  const str = (v: FieldValue): string | null => (typeof v === 'string' ? (ic ? v.toLowerCase() : v) : null);
  const list = (x: string | string[]): string[] => (Array.isArray(x) ? x : [x]).map((s) => (ic ? s.toLowerCase() : s));
  const out: ValueTest[] = [];
  if (m.exists !== undefined) {
    const want = m.exists;
    out.push((v) => (v !== null) === want);
  }
  if (m.equals !== undefined) {
    const x = norm(m.equals);
    out.push(ic ? (v) => (typeof v === 'string' ? v.toLowerCase() : v) === x : (v) => v === x);
  }
  if (m.in !== undefined) {
    const set = new Set(m.in.map(norm));
    out.push((v) => set.has(ic && typeof v === 'string' ? v.toLowerCase() : v));
  }
  if (m.notIn !== undefined) {
    const set = new Set(m.notIn.map(norm));
    out.push((v) => !set.has(ic && typeof v === 'string' ? v.toLowerCase() : v));
  }
  if (m.prefix !== undefined) {
    const xs = list(m.prefix);
    out.push((v) => {
      const s = str(v);
      return s !== null && xs.some((x) => s.startsWith(x));
    });
  }
  if (m.suffix !== undefined) {
    const xs = list(m.suffix);
    out.push((v) => {
      const s = str(v);
      return s !== null && xs.some((x) => s.endsWith(x));
    });
  }
  if (m.contains !== undefined) {
    const xs = list(m.contains);
    out.push((v) => {
      const s = str(v);
      return s !== null && xs.some((x) => s.includes(x));
    });
  }
  if (m.regex !== undefined) {
    // Rule authors write these; inputs are bounded (rawPath ≤ 2048 chars), and
    // docs/detections.md warns against nested quantifiers.
    const re = new RegExp(m.regex, ic ? 'i' : '');
    out.push((v) => typeof v === 'string' && re.test(v));
  }
  const num = (op: (n: number) => boolean): ValueTest => (v) => typeof v === 'number' && op(v);
  if (m.gte !== undefined) {
    const x = m.gte;
    out.push(num((n) => n >= x));
  }
  if (m.gt !== undefined) {
    const x = m.gt;
    out.push(num((n) => n > x));
  }
  if (m.lte !== undefined) {
    const x = m.lte;
    out.push(num((n) => n <= x));
  }
  if (m.lt !== undefined) {
    const x = m.lt;
    out.push(num((n) => n < x));
  }
  return out;
}
