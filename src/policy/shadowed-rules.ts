/**
 * Rules made redundant by an earlier rule with the same effect: every request
 * the later rule matches, the earlier one matches too, so deleting the later
 * one changes no decision.
 *
 * Soundness: the matcher is a conjunction of terms, and the earlier rule
 * "covers" the later one when it covers it in EVERY term — identical values
 * for terms we cannot reason about, and proven containment for the ones we
 * can (a role the later subject inherits, a path pattern that contains the
 * other, a superset of HTTP methods). A conjunction of implications is an
 * implication, so a reported rule is provably shadowed; anything unproven is
 * simply not reported.
 */
import type { PolicyLine } from '../authz/policy-text.ts';
import type { Finding } from './finding.ts';
import { fieldReader, ruleEffect, type FieldReader, type MaskCache } from './lint-rules.ts';
import { termFields, type MatcherShape, type MatcherTerm } from './matcher-terms.ts';
import { maskCovers } from './method-set.ts';
import { isLiteralKeyMatch2, pathCovers } from './path-pattern.ts';
import type { PolicySource } from './policy-source.ts';

/** Pairwise comparisons allowed before the analysis gives up (keeps `check` fast on huge policies). */
export const SHADOW_BUDGET = 5_000_000;

interface Rule {
  readonly line: PolicyLine;
  readonly get: FieldReader;
}

type PathTerm = Extract<MatcherTerm, { kind: 'path' }>;
type RoleTerm = Extract<MatcherTerm, { kind: 'role' }>;

/** Result of the shadow analysis. */
export interface ShadowResult {
  readonly findings: Finding[];
  /** Set when the analysis stopped early or could not run. */
  readonly note: string | undefined;
}

function coverablePath(t: MatcherTerm): t is PathTerm {
  return t.kind === 'path' && (t.fn === 'keyMatch' || t.fn === 'keyMatch2');
}

/** True when a pattern can match more than one path, i.e. may cover other patterns. */
function isWildcard(fn: string, v: string): boolean {
  return fn === 'keyMatch' ? v.includes('*') : !isLiteralKeyMatch2(v);
}

/** Finds rules shadowed by an earlier rule with the same effect. */
export function findShadowedRules(source: PolicySource, shape: MatcherShape, masks: MaskCache): ShadowResult {
  const { effect } = source.model;
  if (effect === 'subject-priority') return { findings: [], note: 'shadowed rules are not analysed for subjectPriority models' };
  const fields = source.model.policyTypes.get('p') ?? [];
  // Rules are compared in the order the engine evaluates them; a priority
  // model sorts by the priority column (stably), so only equal priorities compare.
  const rules: Rule[] = source.lines.filter((l) => l.ptype === 'p').map((line) => ({ line, get: fieldReader(source, line) }));

  const roleTerm = shape.terms.find((t): t is RoleTerm => t.kind === 'role');
  const pathTerm = shape.terms.find(coverablePath);
  // Terms with no containment proof: two rules agree on them only with equal values.
  const provable = (t: MatcherTerm): boolean => t.kind === 'method' || t.kind === 'role' || coverablePath(t);
  const sameFields = [...new Set(shape.terms.filter((t) => !provable(t)).flatMap(termFields))];
  if (fields.includes('priority')) sameFields.push('priority');
  const otherTerms = shape.terms.filter((t) => provable(t) && t !== roleTerm && t !== pathTerm);

  const parents = roleTerm ? roleGraph(source, roleTerm.g) : new Map<string, string[]>();
  // Casbin follows at most ROLE_LEVELS links: inheritance is only transitive
  // (s → B → A implies s → A) when no chain is longer than that.
  const exactRoles = longestChain(parents) <= ROLE_LEVELS;
  const ancestors = memo((v: string) => (exactRoles ? ancestorsOf(v, parents) : new Set<string>()));

  // bucket (same-field values + effect) → role value → { exact path → rules, wildcard rules }
  type Group = { exact: Map<string, Rule[]>; wild: Rule[]; all: Rule[] };
  const buckets = new Map<string, Map<string, Group>>();
  const findings: Finding[] = [];
  let budget = SHADOW_BUDGET;
  let note: string | undefined = !shape.parsed ? 'the matcher could not be analysed: only identical rules are reported as shadowed'
    : exactRoles ? undefined : `the role graph has a cycle or a chain longer than ${ROLE_LEVELS} links: role inheritance is not used to prove shadowing`;

  const covers = (a: Rule, b: Rule): boolean => {
    for (const t of otherTerms) {
      if (t.kind === 'method') {
        if (!maskCovers(masks.get(t, a.get(t.field)), masks.get(t, b.get(t.field)))) return false;
      } else if (t.kind === 'role') {
        const av = a.get(t.field);
        const bv = b.get(t.field);
        if (av !== bv && !(t.g === roleTerm?.g && ancestors(bv).has(av))) return false;
      } else if (coverablePath(t)) {
        if (!pathCovers(t.fn, a.get(t.field), b.get(t.field))) return false;
      }
    }
    if (pathTerm && !pathCovers(pathTerm.fn, a.get(pathTerm.field), b.get(pathTerm.field))) return false;
    return true;
  };

  for (const b of rules) {
    const key = JSON.stringify([ruleEffect(source, b.line), ...sameFields.map((f) => b.get(f))]);
    let bucket = buckets.get(key);
    if (!bucket) buckets.set(key, (bucket = new Map()));
    const role = roleTerm ? b.get(roleTerm.field) : '';
    const path = pathTerm ? b.get(pathTerm.field) : '';
    if (budget > 0) {
      const roles = roleTerm ? [role, ...ancestors(role)] : [''];
      let by: Rule | undefined;
      for (const r of roles) {
        const g = bucket.get(r);
        if (!g) continue;
        const candidates = pathTerm ? [...(g.exact.get(path) ?? []), ...g.wild] : g.all;
        for (const a of candidates) {
          if (--budget <= 0) break;
          if (covers(a, b) && (by === undefined || a.line.line < by.line.line)) by = a;
        }
        if (budget <= 0) break;
      }
      if (budget <= 0) note = `shadow analysis stopped after ${SHADOW_BUDGET.toLocaleString('en-US')} comparisons; later rules were not checked`;
      if (by) {
        const identical = by.line.values.join('\u0000') === b.line.values.join('\u0000');
        findings.push({
          severity: 'warning', code: 'shadowed', file: source.policyPath, line: b.line.line, rule: b.line.text,
          message: identical
            ? `duplicate of line ${by.line.line}: this rule has no effect`
            : `shadowed by line ${by.line.line} (${by.line.text}): every request this rule matches, that earlier rule already matches with the same effect`,
        });
      }
    }
    let g = bucket.get(role);
    if (!g) bucket.set(role, (g = { exact: new Map(), wild: [], all: [] }));
    g.all.push(b);
    if (pathTerm) {
      if (isWildcard(pathTerm.fn, path)) g.wild.push(b);
      else {
        const list = g.exact.get(path);
        if (list) list.push(b);
        else g.exact.set(path, [b]);
      }
    }
  }
  return { findings, note };
}

/** Casbin's DefaultRoleManager hierarchy limit (coreEnforcer builds it with 10). */
const ROLE_LEVELS = 10;

/** Links in the longest inheritance chain; Infinity when the graph has a cycle. */
function longestChain(parents: ReadonlyMap<string, readonly string[]>): number {
  const depth = new Map<string, number>();
  const onStack = new Set<string>();
  const visit = (v: string): number => {
    const known = depth.get(v);
    if (known !== undefined) return known;
    // A cycle, or a chain already past the limit: the answer is "too long" either way.
    if (onStack.has(v) || onStack.size > ROLE_LEVELS) return Infinity;
    onStack.add(v);
    let d = 0;
    for (const p of parents.get(v) ?? []) d = Math.max(d, 1 + visit(p));
    onStack.delete(v);
    depth.set(v, d);
    return d;
  };
  let max = 0;
  for (const v of parents.keys()) max = Math.max(max, visit(v));
  return max;
}

/** Subject → the roles it is assigned directly, for one role type. */
function roleGraph(source: PolicySource, g: string): Map<string, string[]> {
  const parents = new Map<string, string[]>();
  for (const l of source.lines) {
    if (l.ptype !== g) continue;
    const [child, parent] = l.values;
    if (child === undefined || parent === undefined) continue;
    const list = parents.get(child);
    if (list) list.push(parent);
    else parents.set(child, [parent]);
  }
  return parents;
}

/** Every role `v` inherits, transitively (cycles are harmless: each role is visited once). */
function ancestorsOf(v: string, parents: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [...(parents.get(v) ?? [])];
  while (stack.length > 0) {
    const r = stack.pop()!;
    if (seen.has(r) || r === v) continue;
    seen.add(r);
    stack.push(...(parents.get(r) ?? []));
  }
  return seen;
}

function memo<T>(f: (k: string) => T): (k: string) => T {
  const m = new Map<string, T>();
  return (k) => {
    let v = m.get(k);
    if (v === undefined) { v = f(k); m.set(k, v); }
    return v;
  };
}
