/**
 * Role inheritance as casbin's DefaultRoleManager answers `g(name1, name2[, domain])`:
 * - `name1 == name2` is always true, in any domain, even for unknown names;
 * - otherwise name2 must be reachable from name1 along `g` lines of the same
 *   domain in at most {@link MAX_HIERARCHY_LEVEL} steps (casbin's enforcer
 *   creates its role managers with a maximum hierarchy level of 10), which
 *   also bounds cycles.
 * The compiled engine asks the inverse question — which names does a subject
 * reach? — once per subject and domain, and memoizes the answer (restricted
 * to the names the policy mentions) in a bounded map.
 */

/** Casbin's `new DefaultRoleManager(10)` in the enforcer. */
export const MAX_HIERARCHY_LEVEL = 10;

/** A role graph built from one role type's lines (`g, a, b` or `g, a, b, domain`). */
export class RoleGraph {
  /** domain → name → directly inherited names (insertion order, no duplicates). */
  readonly #domains = new Map<string, Map<string, string[]>>();
  readonly #relevant: ReadonlySet<string>;
  readonly #memo = new Map<string, readonly string[]>();
  readonly #memoMax: number;

  /**
   * `relevant`: the only names a lookup needs to report (the policy column's
   * values). `memoEntries` bounds the per-subject memo.
   */
  constructor(relevant: ReadonlySet<string>, memoEntries = 10_000) {
    this.#relevant = relevant;
    this.#memoMax = Math.max(1, memoEntries);
  }

  /** Adds `name1` inherits `name2` in `domain` (two-column role types use one shared domain). */
  addLink(name1: string, name2: string, domain = ''): void {
    let names = this.#domains.get(domain);
    if (!names) this.#domains.set(domain, (names = new Map()));
    let parents = names.get(name1);
    if (!parents) names.set(name1, (parents = []));
    if (!parents.includes(name2)) parents.push(name2);
    if (!names.has(name2)) names.set(name2, []);
  }

  /**
   * Every relevant name `g(name, X[, domain])` is true for: `name` itself
   * plus everything it reaches within the hierarchy limit.
   */
  reach(name: string, domain = ''): readonly string[] {
    // Length-prefixed, so no (domain, name) pair can collide with another.
    const key = `${domain.length}:${domain}${name}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const found = this.#compute(name, domain);
    if (this.#memo.size >= this.#memoMax) {
      const oldest = this.#memo.keys().next();
      if (!oldest.done) this.#memo.delete(oldest.value);
    }
    this.#memo.set(key, found);
    return found;
  }

  #compute(name: string, domain: string): readonly string[] {
    const out: string[] = [];
    if (this.#relevant.has(name)) out.push(name);
    const names = this.#domains.get(domain);
    if (!names?.has(name)) return out;
    // Breadth first: a name is reachable within the limit iff its shortest path is.
    const seen = new Set<string>([name]);
    let frontier = [name];
    for (let depth = 1; depth <= MAX_HIERARCHY_LEVEL && frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const n of frontier) {
        for (const parent of names.get(n) ?? []) {
          if (seen.has(parent)) continue;
          seen.add(parent);
          next.push(parent);
          if (this.#relevant.has(parent)) out.push(parent);
        }
      }
      frontier = next;
    }
    return out;
  }
}
