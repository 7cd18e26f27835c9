/**
 * The pieces of the `casbin` package the policy linter needs, behind our own
 * types: the CSV reading and the matcher function names the engine uses
 * (so the lint sees exactly the rules the engine loads) and Casbin's own
 * keyMatch functions (so a "this rule covers that one" claim is made with the
 * engine's semantics, not a re-implementation).
 *
 * src/authz/casbin-authorizer.ts owns Casbin for decisions; this module
 * mirrors its tokenizer byte for byte. If src/authz ever exports its
 * tokenizer, this file should import it instead.
 */
import { BracketAwareCsvParser, FunctionMap, Util } from 'casbin';
import type { PolicyLineTokenizer } from '../authz/policy-text.ts';

/** Matcher functions the engine provides (role functions `g…` come from the model). */
export const ENGINE_FUNCTIONS: ReadonlySet<string> = new Set(
  [...(FunctionMap.loadFunctionMap().getFunctions() as Map<string, unknown>).keys()],
);

const csv = new BracketAwareCsvParser();

/** Casbin's CSV reading plus its PolicyLoader's unquoting (as casbin-authorizer.ts does). */
export const engineTokenize: PolicyLineTokenizer = (line) => {
  const row = csv.parse(line)?.[0];
  if (!row || row.length === 0) return null;
  const unquote = (v: string): string => (v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v);
  const [first = '', ...rest] = row;
  return [unquote(first.trim()), ...rest.map((v) => unquote(v).replace(/""/g, '"').trim())];
};

type Match = (key: string, pattern: string) => boolean;

/** Casbin's `keyMatch(key, pattern)`. */
export const keyMatch: Match = (k, p) => Util.keyMatchFunc(k, p) === true;
/** Casbin's `keyMatch2(key, pattern)`; throws when the rewritten pattern is not a valid regex. */
export const keyMatch2: Match = (k, p) => Util.keyMatch2Func(k, p) === true;
/** Casbin's `regexMatch(key, pattern)`; throws on an invalid regex. */
export const regexMatch: Match = (k, p) => Util.regexMatchFunc(k, p) === true;

/** The regular expression source Casbin builds from a keyMatch2 pattern (anchored). */
export function keyMatch2Source(pattern: string): string {
  // Mirrors util.keyMatch2 (casbin 5.x): `/*` → `/.*`, every `:name` → `[^/]+`, bare `*` → `(.*)`.
  let key = pattern.replace(/\/\*/g, '/.*');
  const re = /(.*):[^/]+(.*)/g;
  while (key.includes('/:')) key = key.replace(re, '$1[^/]+$2');
  if (key === '*') key = '(.*)';
  return `^${key}$`;
}

/** The regular expression source Casbin builds from a keyMatch3/keyMatch5 pattern (anchored). */
export function keyMatch3Source(pattern: string): string {
  let key = pattern.replace(/\/\*/g, '/.*');
  const re = /(.*)\{[^/]+\}(.*)/g;
  while (key.includes('/{')) key = key.replace(re, '$1[^/]+$2');
  return `^${key}$`;
}
