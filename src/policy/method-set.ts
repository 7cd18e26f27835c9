/**
 * Which HTTP methods a matcher term admits for one policy value. meshgate's
 * HTTP/1.1 listener (Node's llhttp parser) only ever hands the pipeline a
 * method from `http.METHODS` — any other method is a 400 before the request
 * exists — so the set a term admits can be computed exactly by trying each.
 * That makes "this rule never matches" and "that rule admits every method
 * this one does" provable rather than guessed.
 */
import { METHODS } from 'node:http';
import type { Expr } from './matcher-expr.ts';
import { keyMatch, keyMatch2, regexMatch } from './casbin-functions.ts';

/** Every method a request can carry. */
export const HTTP_METHODS: readonly string[] = Object.freeze([...METHODS]);

/** The methods a term admits, as a bit per HTTP_METHODS entry; 'error' when evaluation throws (e.g. a bad regex). */
export type MethodMask = readonly boolean[] | 'error';

const FUNCS: ReadonlyMap<string, (a: string, b: string) => boolean> = new Map([
  ['regexMatch', regexMatch], ['keyMatch', keyMatch], ['keyMatch2', keyMatch2],
]);

/** True when `e` reads only `r.act` and policy fields, with operators and functions this module can evaluate. */
export function isMethodTerm(e: Expr): boolean {
  switch (e.kind) {
    case 'field': return e.def === 'p' || (e.def === 'r' && e.name === 'act');
    case 'literal': return typeof e.value === 'string';
    case 'not': return isMethodTerm(e.arg);
    case 'binary': return ['==', '!=', '&&', '||'].includes(e.op) && isMethodTerm(e.left) && isMethodTerm(e.right);
    case 'call': return FUNCS.has(e.name) && e.args.length === 2 && e.args.every(isMethodTerm);
    case 'list': return false;
  }
}

function evaluate(e: Expr, act: string, p: (name: string) => string): string | boolean {
  switch (e.kind) {
    case 'field': return e.def === 'r' ? act : p(e.name);
    case 'literal': return e.value as string;
    case 'not': return !evaluate(e.arg, act, p);
    case 'binary': {
      if (e.op === '&&') return Boolean(evaluate(e.left, act, p)) && Boolean(evaluate(e.right, act, p));
      if (e.op === '||') return Boolean(evaluate(e.left, act, p)) || Boolean(evaluate(e.right, act, p));
      const eq = evaluate(e.left, act, p) === evaluate(e.right, act, p);
      return e.op === '==' ? eq : !eq;
    }
    case 'call': {
      const [a, b] = e.args.map((x) => String(evaluate(x, act, p) || ''));
      return FUNCS.get(e.name)!(a!, b!);
    }
    case 'list': throw new TypeError('not a method term');
  }
}

/** The methods `term` admits with the policy values `p`. */
export function methodMask(term: Expr, p: (name: string) => string): MethodMask {
  try {
    return HTTP_METHODS.map((m) => Boolean(evaluate(term, m, p)));
  } catch {
    return 'error';
  }
}

/** True when every method `inner` admits is admitted by `outer`. */
export function maskCovers(outer: MethodMask, inner: MethodMask): boolean {
  if (outer === 'error' || inner === 'error') return false;
  return inner.every((bit, i) => !bit || outer[i] === true);
}

/** True when the mask admits no method at all. */
export function maskEmpty(mask: MethodMask): boolean {
  return mask !== 'error' && !mask.includes(true);
}
