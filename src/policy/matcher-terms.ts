/**
 * The shape of a model's matcher as the linter sees it: its top-level `&&`
 * terms, each classified by what it compares. Field semantics come from
 * meshgate's fixed request tuple (src/authz/request-tuple.ts): `r.obj` is
 * always the canonical path, `r.act` the method, `r.sub` the subject and
 * `r.peer` the peer's SPIFFE ID, so a term's meaning does not depend on
 * guessing what a model author had in mind.
 */
import type { ModelDefinition } from '../authz/model-text.ts';
import { conjuncts, fieldsOf, parseMatcher, type Expr } from './matcher-expr.ts';
import { isMethodTerm } from './method-set.ts';
import type { PathMatchKind } from './path-pattern.ts';

/** One top-level term of the matcher that reads at least one policy field. */
export type MatcherTerm =
  /** `fn(r.obj, p.F)` or `r.obj == p.F`. */
  | { readonly kind: 'path'; readonly fn: PathMatchKind; readonly field: string }
  /** Reads only `r.act` and one policy field (`r.act == p.act`, `regexMatch(r.act, p.act)`, …). */
  | { readonly kind: 'method'; readonly expr: Expr; readonly field: string }
  /** `g(r.X, p.F)` with a two-column role definition. */
  | { readonly kind: 'role'; readonly g: string; readonly rField: string; readonly field: string }
  /** `r.X == p.F` for a request field other than obj. */
  | { readonly kind: 'eq'; readonly rField: string; readonly field: string }
  /** A pattern function on another request field: only checked for being a valid pattern. */
  | { readonly kind: 'pattern'; readonly fn: PathMatchKind; readonly rField: string; readonly field: string }
  /** Anything else: two rules agree on it only when the fields it reads are equal. */
  | { readonly kind: 'opaque'; readonly fields: readonly string[] };

/** The analysed matcher. */
export interface MatcherShape {
  readonly terms: readonly MatcherTerm[];
  /** False when the matcher could not be parsed; `terms` is then one opaque term over every policy field. */
  readonly parsed: boolean;
}

const PATTERN_FNS: ReadonlySet<string> = new Set(['keyMatch', 'keyMatch2', 'keyMatch3', 'keyMatch4', 'keyMatch5', 'regexMatch', 'globMatch']);

function asField(e: Expr | undefined, def: string): string | undefined {
  return e?.kind === 'field' && e.def === def ? e.name : undefined;
}

function classify(c: Expr, model: ModelDefinition): MatcherTerm | undefined {
  const pf = fieldsOf(c, 'p');
  if (pf.size === 0) return undefined;
  const rf = fieldsOf(c, 'r');
  const only = pf.size === 1 ? [...pf][0]! : undefined;
  if (only !== undefined && [...rf].every((f) => f === 'act') && isMethodTerm(c)) return { kind: 'method', expr: c, field: only };
  if (c.kind === 'call' && c.args.length === 2) {
    const r = asField(c.args[0], 'r');
    const p = asField(c.args[1], 'p');
    if (r !== undefined && p !== undefined) {
      if (PATTERN_FNS.has(c.name)) {
        return r === 'obj' ? { kind: 'path', fn: c.name as PathMatchKind, field: p } : { kind: 'pattern', fn: c.name as PathMatchKind, rField: r, field: p };
      }
      if (model.roleTypes.get(c.name) === 2) return { kind: 'role', g: c.name, rField: r, field: p };
    }
  }
  if (c.kind === 'binary' && c.op === '==') {
    const r = asField(c.left, 'r') ?? asField(c.right, 'r');
    const p = asField(c.left, 'p') ?? asField(c.right, 'p');
    if (r !== undefined && p !== undefined) return r === 'obj' ? { kind: 'path', fn: 'eq', field: p } : { kind: 'eq', rField: r, field: p };
  }
  return { kind: 'opaque', fields: [...pf] };
}

/** Splits the model's matcher into classified terms. */
export function matcherShape(model: ModelDefinition): MatcherShape {
  const expr = parseMatcher(model.matcher);
  if (!expr) return { terms: [{ kind: 'opaque', fields: [...(model.policyTypes.get('p') ?? [])] }], parsed: false };
  const terms: MatcherTerm[] = [];
  for (const c of conjuncts(expr)) {
    const t = classify(c, model);
    if (t) terms.push(t);
  }
  return { terms, parsed: true };
}

/** The policy fields a term reads. */
export function termFields(t: MatcherTerm): readonly string[] {
  return t.kind === 'opaque' ? t.fields : [t.field];
}
