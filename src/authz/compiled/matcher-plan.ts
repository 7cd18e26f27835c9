/**
 * Turns a parsed matcher into an indexing plan, or explains why it cannot.
 *
 * A supported matcher is `ROW || R1 || R2 …` where the Rᵢ read only the
 * request (e.g. a `r.sub == "root"` super-user) and ROW is a conjunction of
 * - column atoms, each relating one policy column to the request:
 *     `r.x == p.c`, `g(r.x, p.c)`, `g(r.x, p.c, r.d)`,
 *     `(r.x == p.c || p.c == "*" …)`, `keyMatch…`, `globMatch` or `regexMatch(r.x, p.c)`;
 * - guards that read only the request (`r.act == "GET"`);
 * - filters that read only the row (`p.eft == "allow"`), applied at compile time.
 * Every value meshgate supplies for these tokens and every policy value is a
 * string, so casbin's loose `==` is plain string equality here; anything
 * that could make it loose (numbers, claims, member access) is unsupported.
 * The atoms of a conjunction are independent, and evaluating a built-in
 * function on valid patterns cannot throw, so the order casbin evaluates
 * them in cannot change the outcome: the index may test them in any order.
 */
import { isPatternFunction, type PatternFunction } from './operators.ts';
import { UnsupportedMatcher, policyColumns, readsRequest, show, type MatcherExpr, type Operand } from './matcher-parse.ts';

/** Request token values by name (`sub`, `obj`, `act`, `peer`, `dom`). */
export type RequestValues = Readonly<Record<string, string>>;

/** A condition on the request alone. */
export type RequestPredicate = (req: RequestValues) => boolean;

/** A condition on one policy row alone (values by column index). */
export type RowPredicate = (row: readonly string[]) => boolean;

/** `p.column` equals the request value, or one of `wildcards` (`(r.x == p.c || p.c == "*")`). */
export interface KeyAtom { readonly kind: 'key'; readonly column: number; readonly request: string; readonly wildcards: readonly string[] }
/** `g(r.request, p.column[, r.domain])`. */
export interface RoleAtom { readonly kind: 'role'; readonly column: number; readonly request: string; readonly roleType: string; readonly domain: string | undefined }
/** `fn(r.request, p.column)`. */
export interface PatternAtom { readonly kind: 'pattern'; readonly column: number; readonly request: string; readonly fn: PatternFunction }
/** One condition relating a policy column to the request. */
export type ColumnAtom = KeyAtom | RoleAtom | PatternAtom;

/** What the compiler indexes. */
export interface MatcherPlan {
  readonly atoms: readonly ColumnAtom[];
  readonly guards: readonly RequestPredicate[];
  readonly rowFilters: readonly RowPredicate[];
  /** Request-only alternatives: when one holds, every row matches. */
  readonly bypass: readonly RequestPredicate[];
}

/** What the plan needs to know about the model. */
export interface PlanModel {
  readonly requestTokens: readonly string[];
  /** Column names of the `p` policy type. */
  readonly policyColumns: readonly string[];
  /** Role types (`g`, `g2`, …) → column count. */
  readonly roleTypes: ReadonlyMap<string, number>;
}

/** Builds the plan; throws UnsupportedMatcher naming the construct it cannot index. */
export function planMatcher(expr: MatcherExpr, model: PlanModel): MatcherPlan {
  const requestToken = (name: string): string => {
    if (name === 'claims') throw new UnsupportedMatcher('r.claims (claims conditions are evaluated by casbin)');
    if (!model.requestTokens.includes(name)) throw new UnsupportedMatcher(`r.${name} is not a request token`);
    return name;
  };
  const column = (name: string): number => {
    const i = model.policyColumns.indexOf(name);
    if (i === -1) throw new UnsupportedMatcher(`p.${name} is not a column of p`);
    return i;
  };
  const roleCalls = new Map<string, number>();
  countRoleCalls(expr, model.roleTypes, roleCalls);
  for (const [g, n] of roleCalls) {
    if (n > 1) throw new UnsupportedMatcher(`${g}() is called ${n} times (casbin memoizes its calls across arguments)`);
  }

  const terms = flatten(expr, 'or');
  const rowTerms = terms.filter((t) => policyColumns(t).size > 0);
  if (rowTerms.length === 0) throw new UnsupportedMatcher('the matcher does not read the policy row');
  if (rowTerms.length > 1) throw new UnsupportedMatcher(`${rowTerms.length} alternatives read the policy row: ${rowTerms.map(show).join(' || ')}`);
  const bypass = terms.filter((t) => t !== rowTerms[0]).map((t) => requestPredicate(t, requestToken));

  const atoms: ColumnAtom[] = [];
  const guards: RequestPredicate[] = [];
  const rowFilters: RowPredicate[] = [];
  const used = new Set<number>();
  for (const f of flatten(rowTerms[0]!, 'and')) {
    const cols = policyColumns(f);
    if (cols.size === 0) { guards.push(requestPredicate(f, requestToken)); continue; }
    if (!readsRequest(f)) { rowFilters.push(rowPredicate(f, column)); continue; }
    const atom = columnAtom(f, model, requestToken, column);
    if (used.has(atom.column)) throw new UnsupportedMatcher(`p.${model.policyColumns[atom.column]} is tested by more than one condition`);
    used.add(atom.column);
    atoms.push(atom);
  }
  return { atoms, guards, rowFilters, bypass };
}

function flatten(e: MatcherExpr, kind: 'or' | 'and'): MatcherExpr[] {
  return e.kind === kind ? e.items.flatMap((x) => flatten(x, kind)) : [e];
}

function countRoleCalls(e: MatcherExpr, roleTypes: ReadonlyMap<string, number>, out: Map<string, number>): void {
  if (e.kind === 'or' || e.kind === 'and') { for (const x of e.items) countRoleCalls(x, roleTypes, out); return; }
  if (e.kind === 'call' && roleTypes.has(e.fn)) out.set(e.fn, (out.get(e.fn) ?? 0) + 1);
}

function columnAtom(f: MatcherExpr, model: PlanModel, requestToken: (n: string) => string, column: (n: string) => number): ColumnAtom {
  const unsupported = (why: string): never => { throw new UnsupportedMatcher(`${show(f)}: ${why}`); };
  if (f.kind === 'eq') {
    const [r, p] = f.left.kind === 'r' ? [f.left, f.right] : [f.right, f.left];
    if (r.kind !== 'r' || p.kind !== 'p') return unsupported('compare a request token with a policy column');
    return { kind: 'key', column: column(p.name), request: requestToken(r.name), wildcards: [] };
  }
  if (f.kind === 'call') {
    const [a, b, c] = f.args;
    const columns = model.roleTypes.get(f.fn);
    if (columns !== undefined) {
      if (columns !== 2 && columns !== 3) return unsupported(`role type ${f.fn} has ${columns} columns`);
      if (f.args.length !== columns) return unsupported(`${f.fn} is defined with ${columns} columns but called with ${f.args.length} arguments`);
      if (a?.kind !== 'r' || b?.kind !== 'p' || (c !== undefined && c.kind !== 'r')) return unsupported('role arguments must be (r.x, p.y[, r.domain])');
      return { kind: 'role', column: column(b.name), request: requestToken(a.name), roleType: f.fn, domain: c ? requestToken(c.name) : undefined };
    }
    if (!isPatternFunction(f.fn)) return unsupported(`${f.fn}() is not compiled`);
    if (f.args.length !== 2 || a?.kind !== 'r' || b?.kind !== 'p') return unsupported(`${f.fn} arguments must be (r.x, p.y)`);
    return { kind: 'pattern', column: column(b.name), request: requestToken(a.name), fn: f.fn };
  }
  // `(r.x == p.c || p.c == "*" || …)`: the column equals the request value or one of the literals.
  let ref: { request: string; column: number } | undefined;
  const wildcards: string[] = [];
  for (const item of f.items) {
    if (f.kind !== 'or' || item.kind !== 'eq') return unsupported('only (r.x == p.c || p.c == "literal") alternatives are compiled');
    const ops: Operand[] = [item.left, item.right];
    const p = ops.find((o) => o.kind === 'p');
    const other = ops.find((o) => o !== p);
    if (!p || !other || other.kind === 'p') return unsupported('each alternative must compare p.c with r.x or a literal');
    const col = column(p.name);
    if (other.kind === 'lit') {
      wildcards.push(other.value);
      if (ref && ref.column !== col) return unsupported('alternatives must test the same column');
      ref ??= { request: '', column: col };
      continue;
    }
    const req = requestToken(other.name);
    if (ref && (ref.column !== col || (ref.request !== '' && ref.request !== req))) return unsupported('alternatives must test the same column and request token');
    ref = { request: req, column: col };
  }
  if (!ref || ref.request === '') return unsupported('no alternative compares the column with the request');
  return { kind: 'key', column: ref.column, request: ref.request, wildcards: [...new Set(wildcards)] };
}

function operandOf<T>(o: Operand, refOf: (o: Operand & { kind: 'r' | 'p' }) => (x: T) => string): (x: T) => string {
  if (o.kind === 'lit') { const v = o.value; return () => v; }
  return refOf(o);
}

function booleanOf<T>(e: MatcherExpr, leaf: (o: Operand) => (x: T) => string): (x: T) => boolean {
  switch (e.kind) {
    case 'eq': {
      const l = leaf(e.left);
      const r = leaf(e.right);
      return (x) => l(x) === r(x);
    }
    case 'and': { const items = e.items.map((i) => booleanOf(i, leaf)); return (x) => items.every((f) => f(x)); }
    case 'or': { const items = e.items.map((i) => booleanOf(i, leaf)); return (x) => items.some((f) => f(x)); }
    case 'call': throw new UnsupportedMatcher(`${show(e)}: function calls on request values alone are not compiled`);
  }
}

function requestPredicate(e: MatcherExpr, requestToken: (n: string) => string): RequestPredicate {
  return booleanOf<RequestValues>(e, (o) => operandOf<RequestValues>(o, (ref) => {
    const name = requestToken(ref.name);
    return (req) => req[name]!;
  }));
}

function rowPredicate(e: MatcherExpr, column: (n: string) => number): RowPredicate {
  return booleanOf<readonly string[]>(e, (o) => operandOf<readonly string[]>(o, (ref) => {
    if (ref.kind === 'r') throw new UnsupportedMatcher(`${show(e)}: mixes request and row`);
    const i = column(ref.name);
    return (row) => row[i]!;
  }));
}
