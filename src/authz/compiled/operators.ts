/**
 * Casbin's object-matching functions, compiled once per policy pattern
 * instead of once per request and rule. The regular-expression source each
 * function builds is reproduced character for character from casbin's
 * util/builtinOperators (keyMatch2/3/5 rewrite the pattern into a regex and
 * test it without flags), so a compiled matcher accepts exactly the strings
 * casbin's function accepts. test/unit/authz-engine-operators.test.ts checks
 * that claim against casbin's own functions on random inputs.
 */

/** The two-argument matcher functions the compiled engine can index. */
export type PatternFunction = 'keyMatch' | 'keyMatch2' | 'keyMatch3' | 'keyMatch5' | 'globMatch' | 'regexMatch';

/** True for a function name in {@link PatternFunction}. */
export function isPatternFunction(name: string): name is PatternFunction {
  return name === 'keyMatch' || name === 'keyMatch2' || name === 'keyMatch3' || name === 'keyMatch5' || name === 'globMatch' || name === 'regexMatch';
}

/** A pattern that casbin cannot evaluate: its regex does not compile, or building it never terminates. */
export class PatternError extends Error {
  readonly hangs: boolean;
  constructor(message: string, hangs: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PatternError';
    this.hangs = hangs;
  }
}

// Casbin builds these with the `g` flag and reuses them through String#replace, which resets lastIndex.
const KM2_PARAM = /(.*):[^/]+(.*)/g;
const KM3_PARAM = /(.*){[^/]+}(.*)/g;

/**
 * Casbin's `while (key2.includes(marker)) key2 = key2.replace(re, '$1[^/]+$2')`.
 * When the replacement finds nothing to replace (e.g. keyMatch2 `/api/:/x`)
 * casbin's loop spins forever; we report that instead of spinning.
 */
function rewriteParams(key2: string, marker: string, re: RegExp, fn: string): string {
  while (key2.includes(marker)) {
    const next = key2.replace(re, '$1[^/]+$2');
    if (next === key2) {
      throw new PatternError(`${fn} pattern "${key2}" makes casbin loop forever ("${marker}" must start a parameter)`, true);
    }
    key2 = next;
  }
  return key2;
}

/** The anchored regex source casbin's keyMatch2 tests `key1` against. */
export function keyMatch2Source(key2: string): string {
  let k = key2.replace(/\/\*/g, '/.*');
  k = rewriteParams(k, '/:', KM2_PARAM, 'keyMatch2');
  if (k === '*') k = '(.*)';
  return '^' + k + '$';
}

/** The anchored regex source casbin's keyMatch3 (and keyMatch5) test against. */
export function keyMatch3Source(key2: string): string {
  let k = key2.replace(/\/\*/g, '/.*');
  k = rewriteParams(k, '/{', KM3_PARAM, 'keyMatch3');
  return '^' + k + '$';
}

/** keyMatch5 ignores a query string on the request side: everything from the first `?`. */
export function stripQuery(key1: string): string {
  const i = key1.indexOf('?');
  return i === -1 ? key1 : key1.slice(0, i);
}

/** `new RegExp(source)` as casbin's regexMatch does it (no flags), as a PatternError on failure. */
export function compileRegex(source: string, fn: string, pattern: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new PatternError(`${fn} pattern "${pattern}" is not a valid regular expression: ${(e as Error).message}`, false, { cause: e });
  }
}

/**
 * A pattern reduced to path segments: literal text, `null` for a one-segment
 * parameter (`[^/]+`), and `rest` for a trailing `/*` (`/.*`). Only patterns
 * whose regex is provably equivalent to this segment-wise reading qualify.
 */
export interface SegmentPattern {
  readonly segments: readonly (string | null)[];
  readonly rest: boolean;
}

// Characters that carry meaning inside a regex (or a casbin rewrite); a literal
// segment holding any of them is left to the exact regex. Line terminators are
// excluded too, because `.` in `/.*` does not match them.
const KM2_LITERAL = /^[^\\^$.|?*+()[\]{}:\r\n\u2028\u2029]*$/;
const KM3_LITERAL = /^[^\\^$.|?*+()[\]{}\r\n\u2028\u2029]*$/;
const KM2_PARAM_SEGMENT = /^:[^:/\r\n\u2028\u2029]+$/;
const KM3_PARAM_SEGMENT = /^\{[^{}/\r\n\u2028\u2029]+\}$/;

/**
 * The segment form of a keyMatch2 (`:name`) or keyMatch3/keyMatch5 (`{name}`)
 * pattern, or undefined when the pattern must be evaluated as a regex.
 * The first segment must be literal: casbin only rewrites parameters that
 * follow a `/`.
 */
export function segmentPattern(pattern: string, fn: 'keyMatch2' | 'keyMatch3' | 'keyMatch5'): SegmentPattern | undefined {
  const literal = fn === 'keyMatch2' ? KM2_LITERAL : KM3_LITERAL;
  const param = fn === 'keyMatch2' ? KM2_PARAM_SEGMENT : KM3_PARAM_SEGMENT;
  const parts = pattern.split('/');
  let rest = false;
  if (parts.length > 1 && parts[parts.length - 1] === '*') {
    rest = true;
    parts.pop();
  }
  const segments: (string | null)[] = [];
  for (let i = 0; i < parts.length; i++) {
    const s = parts[i]!;
    if (literal.test(s)) segments.push(s);
    else if (i > 0 && param.test(s)) segments.push(null);
    else return undefined;
  }
  return { segments, rest };
}

const KM2_SPECIAL = /[\\^$.|?*+()[\]{}:]/;
const KM3_SPECIAL = /[\\^$.|?*+()[\]{}]/;

/**
 * Text every value matching a keyMatch2/3/5 pattern must start with: the
 * pattern's characters before the first one that has a meaning in the regex
 * or the rewrite (they match themselves, from position 0 because of `^`),
 * less the last one when a quantifier (`*`, `+`, `?`, `{`) may repeat or drop
 * it. A `|` anywhere can make the prefix optional, so it yields ''.
 */
export function literalPrefix(pattern: string, fn: 'keyMatch2' | 'keyMatch3' | 'keyMatch5'): string {
  if (pattern.includes('|')) return '';
  const at = pattern.search(fn === 'keyMatch2' ? KM2_SPECIAL : KM3_SPECIAL);
  if (at === -1) return pattern;
  const c = pattern[at];
  return c === '*' || c === '+' || c === '?' || c === '{' ? pattern.slice(0, Math.max(0, at - 1)) : pattern.slice(0, at);
}

/** Index of the last line terminator in `s`, or -1. */
export function lastLineTerminator(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return i;
  }
  return -1;
}

/** A compiled single-pattern test: `(requestValue) => boolean`, same answer as casbin's function. */
export type CompiledTest = (value: string) => boolean;

/** Glob matching is delegated to casbin's own globMatch (minimatch), injected by the casbin-owning module. */
export type GlobMatch = (value: string, pattern: string) => boolean;

/**
 * Compiles one pattern of `fn` into a test, throwing PatternError when casbin
 * could not evaluate it. `glob` is casbin's globMatch.
 */
export function compilePattern(fn: PatternFunction, pattern: string, glob: GlobMatch): CompiledTest {
  switch (fn) {
    case 'keyMatch': {
      const star = pattern.indexOf('*');
      if (star === -1) return (v) => v === pattern;
      // Casbin compares only the text before the first `*`; anything after it is ignored.
      const prefix = pattern.slice(0, star);
      return (v) => v.startsWith(prefix);
    }
    case 'keyMatch2': {
      const re = compileRegex(keyMatch2Source(pattern), fn, pattern);
      return (v) => re.test(v);
    }
    case 'keyMatch3': {
      const re = compileRegex(keyMatch3Source(pattern), fn, pattern);
      return (v) => re.test(v);
    }
    case 'keyMatch5': {
      const re = compileRegex(keyMatch3Source(pattern), fn, pattern);
      return (v) => re.test(stripQuery(v));
    }
    case 'regexMatch': {
      const re = compileRegex(pattern, fn, pattern);
      return (v) => re.test(v);
    }
    case 'globMatch': {
      // Evaluate once now so a pattern minimatch rejects is a load-time finding, not a per-request error.
      try {
        glob('', pattern);
      } catch (e) {
        throw new PatternError(`globMatch pattern "${pattern.slice(0, 80)}" is rejected by minimatch: ${(e as Error).message}`, false, { cause: e });
      }
      return (v) => glob(v, pattern);
    }
  }
}
