/**
 * A trie over `/`-separated path segments for keyMatch2/keyMatch3/keyMatch5
 * patterns in segment form (operators.ts `segmentPattern`). A lookup walks the
 * request path once, following the literal child and the parameter child of
 * each node, so its cost depends on the path's depth and the branching the
 * patterns create at that path, not on how many patterns are stored.
 *
 * Equivalence with casbin's regexes (`^…$`, no flags):
 * - a literal segment matches itself only;
 * - a parameter is `[^/]+`: any non-empty segment (line terminators included);
 * - a trailing `/*` is `/.*`: at least one more segment, and `.` matches no
 *   line terminator, so the remainder must contain none.
 */
import { type SegmentPattern, lastLineTerminator } from './operators.ts';

class TrieNode<T> {
  exact: Map<string, TrieNode<T>> | undefined;
  param: TrieNode<T> | undefined;
  /** Values of patterns that end exactly here. */
  end: T[] | undefined;
  /** Values of patterns that end here with `/*`. */
  rest: T[] | undefined;
}

/** Segment trie mapping patterns to values; several patterns may share a slot. */
export class SegmentTrie<T> {
  readonly #root = new TrieNode<T>();
  #size = 0;

  /** Number of inserted patterns. */
  get size(): number { return this.#size; }

  /** Adds `value` under `pattern`. */
  insert(pattern: SegmentPattern, value: T): void {
    let node = this.#root;
    for (const seg of pattern.segments) {
      if (seg === null) {
        node = node.param ??= new TrieNode<T>();
      } else {
        node.exact ??= new Map();
        let next = node.exact.get(seg);
        if (!next) node.exact.set(seg, (next = new TrieNode<T>()));
        node = next;
      }
    }
    if (pattern.rest) (node.rest ??= []).push(value);
    else (node.end ??= []).push(value);
    this.#size++;
  }

  /** Appends to `out` the value of every pattern that matches `path`. */
  collect(path: string, out: T[]): void {
    if (this.#size === 0) return;
    const q: Query<T> = { segs: path.split('/'), path, lastLT: -2, out };
    walk(this.#root, 0, 0, q);
  }
}

interface Query<T> {
  readonly segs: string[];
  readonly path: string;
  /** Index of the last line terminator in path; -2 until computed (most lookups never need it). */
  lastLT: number;
  readonly out: T[];
}

function walk<T>(node: TrieNode<T>, i: number, offset: number, q: Query<T>): void {
  const { segs } = q;
  if (i === segs.length) {
    if (node.end) for (const v of node.end) q.out.push(v);
    return;
  }
  if (node.rest) {
    // `prefix/.*`: segment i starts at `offset`, after the '/' the pattern requires.
    if (q.lastLT === -2) q.lastLT = lastLineTerminator(q.path);
    if (q.lastLT < offset) for (const v of node.rest) q.out.push(v);
  }
  const seg = segs[i]!;
  const next = offset + seg.length + 1;
  const exact = node.exact?.get(seg);
  if (exact) walk(exact, i + 1, next, q);
  if (node.param && seg !== '') walk(node.param, i + 1, next, q);
}
