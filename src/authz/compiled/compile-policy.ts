/**
 * Compiles a validated model and policy into an index whose lookup cost does
 * not grow with the number of rules (PRODUCT §1.4 ★), or says why it cannot.
 *
 * Rules are grouped level by level on the columns the matcher tests — first
 * the equality and role columns (hash maps keyed by the column value), then
 * the pattern columns (pattern-index.ts), the one with the most distinct
 * patterns last — and each leaf keeps only the effect summary of its rules
 * (rule-order.ts). A lookup follows the request's candidate keys (its own
 * value, the roles it reaches, wildcards) and the patterns its value matches.
 */
import type { ModelDefinition } from '../model-text.ts';
import type { PolicyLine } from '../policy-text.ts';
import { UnsupportedMatcher, parseMatcher } from './matcher-parse.ts';
import { planMatcher, type ColumnAtom, type MatcherPlan } from './matcher-plan.ts';
import { PatternError, compilePattern, type GlobMatch } from './operators.ts';
import { createPatternIndex, type PatternIndex } from './pattern-index.ts';
import { RoleGraph } from './role-graph.ts';
import { addRule, casbinOrder, emptySummary, ruleEffect, RuleEffect, type CompiledEffect, type EffectSummary } from './rule-order.ts';

/** A node of the index: a leaf summary, a map level, or a pattern level. */
export type IndexNode =
  | { readonly kind: 0; readonly summary: EffectSummary }
  | { readonly kind: 1; readonly map: ReadonlyMap<string, IndexNode> }
  | { readonly kind: 2; readonly index: PatternIndex<IndexNode> };

/** The compiled form of a model and policy. */
export interface CompiledPolicy {
  readonly effect: CompiledEffect;
  readonly plan: MatcherPlan;
  /** Atoms in index level order (level i tests atoms[i]). */
  readonly levels: readonly ColumnAtom[];
  /** One role graph per role atom, by level. */
  readonly graphs: readonly (RoleGraph | undefined)[];
  readonly root: IndexNode;
  /** Summary over every rule, for a request-only alternative that makes every rule match. */
  readonly all: EffectSummary;
  /** The policy line of each position in casbin's order. */
  readonly lineAt: readonly PolicyLine[];
  readonly ruleCount: number;
}

/** Why a model or policy cannot be compiled. `hangs`: casbin itself could never evaluate it. */
export interface CompileFailure {
  readonly reason: string;
  /** 'model' or 'policy', and the line that holds the construct, when known. */
  readonly where: 'model' | 'policy';
  readonly line: number | undefined;
  readonly hangs: boolean;
}

/** Compiles, or returns why not. Never throws for model or policy content. */
export function compilePolicy(model: ModelDefinition, lines: readonly PolicyLine[], glob: GlobMatch): CompiledPolicy | CompileFailure {
  const unsupported = (reason: string, line = model.matcherLine): CompileFailure => ({ reason, where: 'model', line, hangs: false });
  if (model.effect === 'subject-priority') return unsupported('effect subjectPriority(p.eft) || deny (rule order depends on the role graph)', undefined);
  if (!model.usesPolicy) return unsupported('the matcher does not read the policy row');
  if (model.usesClaims) return unsupported('the matcher reads r.claims or uses eval() (claims conditions)');
  const columns = model.policyTypes.get('p');
  if (!columns) return unsupported('no policy type p');
  let plan: MatcherPlan;
  try {
    plan = planMatcher(parseMatcher(model.matcher), { requestTokens: model.requestTokens, policyColumns: columns, roleTypes: model.roleTypes });
  } catch (e) {
    if (e instanceof UnsupportedMatcher) return unsupported(`matcher: ${e.message}`);
    throw e;
  }

  const pLines = lines.filter((l) => l.ptype === 'p');
  const order = casbinOrder(pLines.map((l) => l.values), columns);
  const lineAt = order.map((i) => pLines[i]!);
  const effects = lineAt.map((l) => ruleEffect(l.values, columns));
  const all = emptySummary();
  effects.forEach((eft, pos) => addRule(all, pos, eft));
  // Rules that cannot contribute (indeterminate effect, failed row filter) never enter the index.
  const positions: number[] = [];
  for (let pos = 0; pos < lineAt.length; pos++) {
    if (effects[pos] === RuleEffect.indeterminate) continue;
    const values = lineAt[pos]!.values;
    if (plan.rowFilters.every((f) => f(values))) positions.push(pos);
  }

  const levels = orderLevels(plan.atoms, positions, lineAt);
  const graphs = levels.map((atom) => {
    if (atom.kind !== 'role') return undefined;
    const relevant = new Set(positions.map((pos) => lineAt[pos]!.values[atom.column]!));
    const graph = new RoleGraph(relevant);
    for (const l of lines) {
      if (l.ptype !== atom.roleType) continue;
      graph.addLink(l.values[0]!, l.values[1]!, atom.domain === undefined ? '' : l.values[2]!);
    }
    return graph;
  });

  let root: IndexNode;
  try {
    root = build(positions, 0, levels, lineAt, effects, glob);
  } catch (e) {
    if (!(e instanceof IndexPatternError)) throw e;
    return { reason: e.message, where: 'policy', line: e.line, hangs: e.hangs };
  }
  // Casbin evaluates the matcher on every rule, whatever its effect, so the
  // patterns of rules left out of the index must be ones casbin can evaluate too.
  const indexed = new Set(positions);
  const bad = checkPatterns(plan.atoms, lineAt.filter((_, pos) => !indexed.has(pos)), glob);
  if (bad) return bad;
  return { effect: model.effect, plan, levels, graphs, root, all, lineAt, ruleCount: lineAt.length };
}

/** True for a {@link CompileFailure}. */
export function isCompileFailure(x: CompiledPolicy | CompileFailure): x is CompileFailure {
  return 'reason' in x;
}

class IndexPatternError extends Error {
  readonly line: number;
  readonly hangs: boolean;
  constructor(message: string, line: number, hangs: boolean) {
    super(message);
    this.line = line;
    this.hangs = hangs;
  }
}

function checkPatterns(atoms: readonly ColumnAtom[], pLines: readonly PolicyLine[], glob: GlobMatch): CompileFailure | undefined {
  for (const atom of atoms) {
    if (atom.kind !== 'pattern') continue;
    const seen = new Set<string>();
    for (const l of pLines) {
      const pattern = l.values[atom.column]!;
      if (seen.has(pattern)) continue;
      seen.add(pattern);
      try {
        compilePattern(atom.fn, pattern, glob);
      } catch (e) {
        if (!(e instanceof PatternError)) throw e;
        return { reason: e.message, where: 'policy', line: l.line, hangs: e.hangs };
      }
    }
  }
  return undefined;
}

/** Map levels first (in matcher order), then pattern levels by ascending number of distinct patterns. */
function orderLevels(atoms: readonly ColumnAtom[], positions: readonly number[], lineAt: readonly PolicyLine[]): ColumnAtom[] {
  const keyed = atoms.filter((a) => a.kind !== 'pattern');
  const distinct = (a: ColumnAtom): number => new Set(positions.map((p) => lineAt[p]!.values[a.column])).size;
  const patterns = atoms.filter((a) => a.kind === 'pattern').map((a) => [a, distinct(a)] as const).sort((x, y) => x[1] - y[1]).map(([a]) => a);
  return [...keyed, ...patterns];
}

function build(
  positions: readonly number[], depth: number, levels: readonly ColumnAtom[], lineAt: readonly PolicyLine[],
  effects: readonly number[], glob: GlobMatch,
): IndexNode {
  if (depth === levels.length) {
    const summary = emptySummary();
    for (const pos of positions) addRule(summary, pos, effects[pos] as 0 | 1 | 2);
    return { kind: 0, summary };
  }
  const atom = levels[depth]!;
  const groups = new Map<string, number[]>();
  for (const pos of positions) {
    const v = lineAt[pos]!.values[atom.column]!;
    const g = groups.get(v);
    if (g) g.push(pos);
    else groups.set(v, [pos]);
  }
  if (atom.kind !== 'pattern') {
    const map = new Map<string, IndexNode>();
    for (const [v, group] of groups) map.set(v, build(group, depth + 1, levels, lineAt, effects, glob));
    return { kind: 1, map };
  }
  const index = createPatternIndex<IndexNode>(atom.fn, glob);
  for (const [pattern, group] of groups) {
    try {
      index.add(pattern, build(group, depth + 1, levels, lineAt, effects, glob));
    } catch (e) {
      if (!(e instanceof PatternError)) throw e;
      // Name the first line (in file order) that holds the pattern.
      const line = group.reduce((min, pos) => Math.min(min, lineAt[pos]!.line), Infinity);
      throw new IndexPatternError(e.message, line, e.hangs);
    }
  }
  return { kind: 2, index };
}
