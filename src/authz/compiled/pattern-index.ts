/**
 * Indexes the distinct patterns one matcher function sees in one policy
 * column, so a lookup finds every pattern a request value matches without
 * testing them one by one where the pattern language allows it:
 * - keyMatch: an exact map plus a map of `prefix*` patterns probed once per
 *   distinct prefix length (casbin ignores everything after the first `*`);
 * - keyMatch2 / keyMatch3 / keyMatch5: a segment trie for patterns whose
 *   regex reads segment by segment; the rest keep their exact regex, filed
 *   under the literal text every match must start with (`literalPrefix`);
 * - globMatch / regexMatch: a list of compiled tests (patterns are rarely
 *   numerous within one subject and action bucket).
 */
import { SegmentTrie } from './segment-trie.ts';
import { compilePattern, literalPrefix, segmentPattern, stripQuery, type CompiledTest, type GlobMatch, type PatternFunction } from './operators.ts';

/** Patterns → values; a lookup yields the values of every matching pattern. */
export interface PatternIndex<T> {
  /** Adds one pattern (compiled now; throws PatternError if casbin could not evaluate it). */
  add(pattern: string, value: T): void;
  /** Appends the value of every pattern that matches `value` to `out`. */
  collect(value: string, out: T[]): void;
  /** Patterns held in the list part (tested one by one); for diagnostics and tests. */
  readonly listed: number;
}

/** A new, empty index for patterns of `fn`. */
export function createPatternIndex<T>(fn: PatternFunction, glob: GlobMatch): PatternIndex<T> {
  switch (fn) {
    case 'keyMatch': return new PrefixIndex<T>();
    case 'keyMatch2':
    case 'keyMatch3':
    case 'keyMatch5': return new PathIndex<T>(fn);
    case 'globMatch':
    case 'regexMatch': return new ListIndex<T>(fn, glob);
  }
}

class ListIndex<T> implements PatternIndex<T> {
  readonly #fn: PatternFunction;
  readonly #glob: GlobMatch;
  readonly #tests: CompiledTest[] = [];
  readonly #values: T[] = [];

  constructor(fn: PatternFunction, glob: GlobMatch) { this.#fn = fn; this.#glob = glob; }

  get listed(): number { return this.#tests.length; }

  add(pattern: string, value: T): void {
    this.#tests.push(compilePattern(this.#fn, pattern, this.#glob));
    this.#values.push(value);
  }

  collect(value: string, out: T[]): void {
    const tests = this.#tests;
    for (let i = 0; i < tests.length; i++) if (tests[i]!(value)) out.push(this.#values[i]!);
  }
}

class PrefixIndex<T> implements PatternIndex<T> {
  readonly #exact = new Map<string, T[]>();
  readonly #prefixes = new Map<string, T[]>();
  /** Distinct prefix lengths, ascending. */
  #lengths: number[] = [];

  get listed(): number { return 0; }

  add(pattern: string, value: T): void {
    const star = pattern.indexOf('*');
    if (star === -1) {
      push(this.#exact, pattern, value);
      return;
    }
    const prefix = pattern.slice(0, star);
    if (!this.#prefixes.has(prefix) && !this.#lengths.includes(prefix.length)) {
      this.#lengths.push(prefix.length);
      this.#lengths.sort((a, b) => a - b);
    }
    push(this.#prefixes, prefix, value);
  }

  collect(value: string, out: T[]): void {
    const exact = this.#exact.get(value);
    if (exact) for (const v of exact) out.push(v);
    for (const len of this.#lengths) {
      if (len > value.length) break;
      const hit = this.#prefixes.get(len === value.length ? value : value.slice(0, len));
      if (hit) for (const v of hit) out.push(v);
    }
  }
}

class PathIndex<T> implements PatternIndex<T> {
  readonly #fn: 'keyMatch2' | 'keyMatch3' | 'keyMatch5';
  readonly #trie = new SegmentTrie<T>();
  /** Regex patterns by the literal prefix a matching value must start with. */
  readonly #listed = new PrefixIndex<{ readonly test: CompiledTest; readonly value: T }>();
  #count = 0;

  constructor(fn: 'keyMatch2' | 'keyMatch3' | 'keyMatch5') {
    this.#fn = fn;
  }

  get listed(): number { return this.#count; }

  add(pattern: string, value: T): void {
    // Segment patterns are always valid regexes (plain literals, [^/]+, /.*), so only the rest is compiled.
    const seg = segmentPattern(pattern, this.#fn);
    if (seg) {
      this.#trie.insert(seg, value);
      return;
    }
    // keyMatch5 is keyMatch3 on the value without its query, which collect() strips once.
    const test = compilePattern(this.#fn === 'keyMatch5' ? 'keyMatch3' : this.#fn, pattern, () => false);
    this.#listed.add(literalPrefix(pattern, this.#fn) + '*', { test, value });
    this.#count++;
  }

  collect(value: string, out: T[]): void {
    const v = this.#fn === 'keyMatch5' ? stripQuery(value) : value;
    if (this.#count > 0) {
      const candidates: { readonly test: CompiledTest; readonly value: T }[] = [];
      this.#listed.collect(v, candidates);
      for (const c of candidates) if (c.test(v)) out.push(c.value);
    }
    this.#trie.collect(v, out);
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
