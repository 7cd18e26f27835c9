/**
 * What a policy's object pattern can match, given that the authorizer only
 * ever sees canonical paths (src/http/canonical-path.ts, PRODUCT §1.2).
 *
 * Every "never" answer here is a proof, not a heuristic: a pattern is only
 * reported as unable to match when a part of it that the engine treats
 * literally forces a character sequence no canonical path contains. When in
 * doubt the answer is "may match", so `policy check` never cries wolf.
 */
import { Errors, MeshgateError } from '../core/errors.ts';
import { canonicalizeTarget, type EncodedSlashMode } from '../http/canonical-path.ts';
import { keyMatch2, keyMatch2Source, keyMatch3Source } from './casbin-functions.ts';

/** How a matcher compares the request path with a policy value. */
export type PathMatchKind = 'eq' | 'keyMatch' | 'keyMatch2' | 'keyMatch3' | 'keyMatch4' | 'keyMatch5' | 'regexMatch' | 'globMatch';

// Characters with a meaning in the regular expressions keyMatch2 builds.
const REGEX_META = /[.^$*+?()[\]{}|\\]/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** True when `s` is a path the canonicalizer returns unchanged. */
export function isCanonicalPath(s: string, mode: EncodedSlashMode): boolean {
  try {
    const t = canonicalizeTarget(s, { encodedSlash: mode });
    return t.path === s && !s.includes('?');
  } catch {
    return false;
  }
}

/** What the canonicalizer makes of `s`: the canonical path, or the 400 reason it is rejected with. */
export function canonicalFormOf(s: string, mode: EncodedSlashMode): { path: string } | { rejected: string } {
  try {
    return { path: canonicalizeTarget(s, { encodedSlash: mode }).path };
  } catch (e) {
    return { rejected: e instanceof MeshgateError ? e.reason : Errors.REQ_MALFORMED.reason };
  }
}

/** True when some canonical path starts with `prefix` (checked against every way its end could be completed). */
export function someCanonicalPathStartsWith(prefix: string, mode: EncodedSlashMode): boolean {
  const tails = ['', 'x', '/x'];
  if (prefix.endsWith('%')) tails.push('25');
  if (/%[0-9A-Fa-f]$/.test(prefix)) tails.push(...'0123456789ABCDEF');
  return tails.some((t) => isCanonicalPath(prefix + t, mode));
}

type Atom = { readonly t: 'lit'; readonly c: string } | { readonly t: 'any' } | { readonly t: 'anyString' } | { readonly t: 'segment' };

/** Splits an anchored regex source into the few constructs keyMatch2 produces; undefined for anything else. */
function atomsOf(source: string): Atom[] | undefined {
  const s = source.slice(1, -1);
  const out: Atom[] = [];
  for (let i = 0; i < s.length;) {
    if (s.startsWith('(.*)', i)) { out.push({ t: 'anyString' }); i += 4; continue; }
    if (s.startsWith('.*', i)) { out.push({ t: 'anyString' }); i += 2; continue; }
    if (s.startsWith('[^/]+', i)) { out.push({ t: 'segment' }); i += 5; continue; }
    const c = s[i]!;
    if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined || /[A-Za-z0-9]/.test(n)) return undefined; // \d, \w, … are classes, not literals
      out.push({ t: 'lit', c: n });
      i += 2;
      continue;
    }
    if (c === '.') { out.push({ t: 'any' }); i++; continue; }
    if (REGEX_META.test(c)) return undefined;
    out.push({ t: 'lit', c });
    i++;
  }
  return out;
}

const lit = (a: Atom | undefined): string | undefined => (a?.t === 'lit' ? a.c : undefined);

/** Why no string matching these atoms is a canonical path, or undefined when one may be. */
function forcedViolation(atoms: readonly Atom[], mode: EncodedSlashMode): string | undefined {
  const first = atoms[0];
  if (first === undefined) return 'it only matches the empty string';
  if ((first.t === 'lit' && first.c !== '/') || first.t === 'segment') return 'it does not start with "/" (every canonical path does)';
  for (let i = 0; i < atoms.length; i++) {
    const c = lit(atoms[i]);
    if (c === undefined) continue;
    if (c === '/' && lit(atoms[i + 1]) === '/') return 'it contains "//" (canonical paths never have empty segments)';
    if (c === '/') {
      const a = lit(atoms[i + 1]);
      const b = lit(atoms[i + 2]);
      const end = (k: number): boolean => k === atoms.length || lit(atoms[k]) === '/';
      if (a === '.' && (end(i + 2) || (b === '.' && end(i + 3)))) return 'it contains a "." or ".." segment (canonical paths have them resolved)';
    }
    if (c === '%') {
      const h1 = lit(atoms[i + 1]);
      const h2 = lit(atoms[i + 2]);
      if (h1 === undefined || h2 === undefined) continue;
      const why = escapeViolation(h1 + h2, mode);
      if (why) return why;
      continue;
    }
    if (c !== '/' && !isCanonicalPath(`/a${c}`, mode)) return `it contains ${JSON.stringify(c)}, which never appears raw in a canonical path`;
  }
  return undefined;
}

function escapeViolation(hex: string, mode: EncodedSlashMode): string | undefined {
  if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return `"%${hex}" is a malformed escape (such requests are rejected with 400)`;
  const byte = parseInt(hex, 16);
  if (byte === 0) return '"%00" is rejected with 400 before authorization';
  if (UNRESERVED.test(String.fromCharCode(byte))) return `"%${hex}" is decoded to "${String.fromCharCode(byte)}" by canonicalization`;
  if (hex !== hex.toUpperCase()) return `"%${hex}" is lower case; canonical escapes are upper case ("%${hex.toUpperCase()}")`;
  if ((byte === 0x2f || byte === 0x5c) && mode === 'reject') return `"%${hex}" (an encoded slash) is rejected with 400 before authorization`;
  return undefined;
}

/** Why a pattern can never match a canonical path, or undefined when it may. */
export function neverMatchReason(kind: PathMatchKind, pattern: string, mode: EncodedSlashMode): string | undefined {
  switch (kind) {
    case 'eq':
      return isCanonicalPath(pattern, mode) ? undefined : describeNonCanonical(pattern, mode);
    case 'keyMatch': {
      const star = pattern.indexOf('*');
      if (star === -1) return isCanonicalPath(pattern, mode) ? undefined : describeNonCanonical(pattern, mode);
      const prefix = pattern.slice(0, star);
      return someCanonicalPathStartsWith(prefix, mode) ? undefined : `no canonical path starts with ${JSON.stringify(prefix)}`;
    }
    case 'keyMatch2': {
      if (pattern === '*') return undefined;
      if (isLiteralKeyMatch2(pattern)) return isCanonicalPath(pattern, mode) ? undefined : describeNonCanonical(pattern, mode);
      const atoms = atomsOf(keyMatch2Source(pattern));
      return atoms ? forcedViolation(atoms, mode) : undefined;
    }
    default:
      return undefined;
  }
}

function describeNonCanonical(pattern: string, mode: EncodedSlashMode): string {
  if (!pattern.startsWith('/')) return 'it does not start with "/" (every canonical path does)';
  const c = canonicalFormOf(pattern, mode);
  return 'path' in c ? `it is not canonical: requests for it are authorized as ${JSON.stringify(c.path)}` : `requests for it are rejected with 400 ${c.rejected} before authorization`;
}

/** A keyMatch2 pattern with no wildcard, parameter or regex syntax: it matches exactly itself. */
export function isLiteralKeyMatch2(pattern: string): boolean {
  return !REGEX_META.test(pattern) && !pattern.includes('/:');
}

/**
 * The path a pattern was written against, with its wildcards and parameters
 * filled in by a plain segment; undefined for matchers whose patterns are not
 * path-shaped (regexMatch, globMatch).
 */
function skeleton(kind: PathMatchKind, pattern: string): string | undefined {
  switch (kind) {
    case 'eq': return pattern;
    case 'keyMatch': { const star = pattern.indexOf('*'); return star === -1 ? pattern : `${pattern.slice(0, star)}x`; }
    case 'keyMatch2': return pattern === '*' ? undefined : pattern.replace(/\/\*/g, '/x').replace(/\/:[^/]+/g, '/x').replace(/\*/g, 'x');
    case 'keyMatch3': case 'keyMatch4': case 'keyMatch5': return pattern.replace(/\/\*/g, '/x').replace(/\{[^/}]+\}/g, 'x');
    default: return undefined;
  }
}

/**
 * Why a pattern is written against a raw (non-canonical) path — e.g. with
 * `..`, `//`, `%61` or a lower-case escape — or undefined. Requests are
 * canonicalized before authorization, so such a rule never applies to the
 * path as written.
 */
export function rawPathReason(kind: PathMatchKind, pattern: string, mode: EncodedSlashMode): string | undefined {
  const s = skeleton(kind, pattern);
  if (s === undefined || !s.startsWith('/') || isCanonicalPath(s, mode)) return undefined;
  const c = canonicalFormOf(s, mode);
  if ('rejected' in c) return `a request for this path is rejected with 400 ${c.rejected} before authorization`;
  const shown = kind === 'eq' || s === pattern ? JSON.stringify(c.path) : `${JSON.stringify(c.path)} (wildcards filled in)`;
  return `requests are canonicalized first and this one is authorized as ${shown}`;
}

/**
 * The classic footgun of a pattern: text after `*`, which keyMatch ignores and
 * keyMatch2 turns into a cross-segment wildcard; a `*` that is a regex
 * quantifier; a regex metacharacter taken for a literal. Undefined when none.
 */
export function wildcardFootgun(kind: PathMatchKind, pattern: string): { code: 'text-after-wildcard' | 'regex-in-pattern'; message: string } | undefined {
  if (kind === 'keyMatch') {
    const star = pattern.indexOf('*');
    if (star !== -1 && star < pattern.length - 1) {
      return { code: 'text-after-wildcard', message: `keyMatch ignores everything after "*": ${JSON.stringify(pattern)} matches every path starting with ${JSON.stringify(pattern.slice(0, star))}` };
    }
    return undefined;
  }
  if (kind !== 'keyMatch2' || pattern === '*') return undefined;
  const star = pattern.indexOf('/*');
  if (star !== -1 && star + 2 < pattern.length) {
    return { code: 'text-after-wildcard', message: `"*" matches across segments in keyMatch2: ${JSON.stringify(pattern)} also matches ${JSON.stringify(pattern.slice(0, star) + '/a/b/c' + pattern.slice(star + 2))}; use ":name" for exactly one segment` };
  }
  const param = /\/:[^/.]*\.[^/]*/.exec(pattern);
  if (param) {
    return { code: 'regex-in-pattern', message: `keyMatch2 turns the whole segment ${JSON.stringify(param[0])} into one parameter: the text after the parameter name is ignored` };
  }
  const bare = pattern.replace(/\/\*/g, '').replace(/\/:[^/]+/g, '');
  const meta = /[.^$*+?()[\]{}|\\]/.exec(bare);
  if (meta) {
    const c = meta[0];
    return c === '*'
      ? { code: 'regex-in-pattern', message: `"*" not directly after "/" is a regular-expression quantifier in keyMatch2, not a wildcard` }
      : { code: 'regex-in-pattern', message: `${JSON.stringify(c)} is a regular-expression metacharacter in keyMatch2 patterns, not a literal character` };
  }
  return undefined;
}

/** The regex Casbin builds for a pattern, when it is not a valid regular expression: the error text. */
export function invalidRegex(kind: PathMatchKind, pattern: string): string | undefined {
  const source = kind === 'keyMatch2' ? keyMatch2Source(pattern)
    : kind === 'keyMatch3' || kind === 'keyMatch4' || kind === 'keyMatch5' ? keyMatch3Source(pattern)
      : kind === 'regexMatch' ? pattern : undefined;
  if (source === undefined) return undefined;
  try {
    new RegExp(source);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * True when every canonical path `inner` matches is also matched by `outer`.
 * Only proven cases answer true: identical patterns, keyMatch prefixes, a
 * keyMatch2 `prefix/*` over patterns that start with that prefix, and any
 * pattern over a literal path it matches.
 */
export function pathCovers(kind: PathMatchKind, outer: string, inner: string): boolean {
  if (outer === inner) return true;
  if (kind === 'keyMatch') {
    const o = outer.indexOf('*');
    if (o === -1) return false;
    const prefix = outer.slice(0, o);
    const i = inner.indexOf('*');
    return (i === -1 ? inner : inner.slice(0, i)).startsWith(prefix);
  }
  if (kind !== 'keyMatch2') return false;
  if (outer === '*' || outer === '/*') return true;
  if (outer.endsWith('/*')) {
    const prefix = outer.slice(0, -1); // keeps the '/'
    if (!REGEX_META.test(prefix.slice(0, -1)) && !prefix.includes(':') && inner.startsWith(prefix)) return true;
  }
  if (isLiteralKeyMatch2(inner)) {
    try { return keyMatch2(inner, outer); } catch { return false; }
  }
  return false;
}
