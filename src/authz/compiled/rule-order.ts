/**
 * The order casbin walks `p` rules in, and the effect each rule pushes when
 * it matches — the two facts every effect expression reduces to.
 *
 * Order: the file order, except that a `priority` column makes casbin sort
 * the rules with `parseInt(a) - parseInt(b)` (coreEnforcer.sortPolicies).
 * V8's sort is deterministic for a given comparator and input, so sorting
 * the row positions with the same comparator yields casbin's permutation —
 * including its handling of non-numeric priorities (NaN compares as equal).
 *
 * Effect of a matching rule (coreEnforcer.privateEnforce): Allow when the
 * model has no `eft` column or the row's eft is empty (a falsy eft is
 * ignored), Deny for `deny`, Allow for `allow`, Indeterminate for anything
 * else (which no effect expression counts).
 */

/** What a matching rule contributes to the effect. */
export const RuleEffect = Object.freeze({ allow: 1, deny: 2, indeterminate: 0 });
/** One of {@link RuleEffect}'s values. */
export type RuleEffectValue = (typeof RuleEffect)[keyof typeof RuleEffect];

/** Row positions (into `rows`) in the order casbin evaluates them. */
export function casbinOrder(rows: readonly (readonly string[])[], columns: readonly string[]): number[] {
  const order = rows.map((_, i) => i);
  const at = columns.indexOf('priority');
  if (at !== -1) order.sort((a, b) => parseInt(rows[a]![at]!, 10) - parseInt(rows[b]![at]!, 10));
  return order;
}

/** The effect a row pushes when the matcher holds for it. */
export function ruleEffect(row: readonly string[], columns: readonly string[]): RuleEffectValue {
  const at = columns.indexOf('eft');
  if (at === -1) return RuleEffect.allow;
  const eft = row[at];
  if (!eft || eft === 'allow') return RuleEffect.allow;
  return eft === 'deny' ? RuleEffect.deny : RuleEffect.indeterminate;
}

/**
 * The matching rules reduced to what any supported effect needs: the first
 * and last allowing rule and the first denying rule, as positions in
 * casbin's order (`Infinity` / `-1` when there is none). Merging is min/max,
 * so visiting a rule twice changes nothing.
 */
export interface EffectSummary {
  minAllow: number;
  maxAllow: number;
  minDeny: number;
}

/** An empty summary. */
export function emptySummary(): EffectSummary {
  return { minAllow: Infinity, maxAllow: -1, minDeny: Infinity };
}

/** Adds one matching rule at `position` with `effect` to `s`. */
export function addRule(s: EffectSummary, position: number, effect: RuleEffectValue): void {
  if (effect === RuleEffect.allow) {
    if (position < s.minAllow) s.minAllow = position;
    if (position > s.maxAllow) s.maxAllow = position;
  } else if (effect === RuleEffect.deny) {
    if (position < s.minDeny) s.minDeny = position;
  }
}

/** Merges `from` into `into`. */
export function mergeSummary(into: EffectSummary, from: EffectSummary): void {
  if (from.minAllow < into.minAllow) into.minAllow = from.minAllow;
  if (from.maxAllow > into.maxAllow) into.maxAllow = from.maxAllow;
  if (from.minDeny < into.minDeny) into.minDeny = from.minDeny;
}

/** The supported effect expressions (model-text EffectKind minus subject priority). */
export type CompiledEffect = 'allow-override' | 'allow-and-not-deny' | 'priority';

/**
 * Casbin's verdict and explanation for the matching rules: `[allowed,
 * position of the explaining rule or -1]`, as DefaultEffectorStream and the
 * explain index in privateEnforce produce them:
 * - allow-override stops at the first allow and explains with it;
 * - allow-and-not-deny stops at the first deny (explains with it); without
 *   one, the explanation is the LAST allow, as every allow overwrites it;
 * - priority stops at the first rule that allows or denies.
 */
export function verdict(effect: CompiledEffect, s: EffectSummary): [boolean, number] {
  switch (effect) {
    case 'allow-override':
      return s.minAllow !== Infinity ? [true, s.minAllow] : [false, -1];
    case 'allow-and-not-deny':
      if (s.minDeny !== Infinity) return [false, s.minDeny];
      return s.maxAllow !== -1 ? [true, s.maxAllow] : [false, -1];
    case 'priority':
      if (s.minAllow === Infinity && s.minDeny === Infinity) return [false, -1];
      return s.minAllow < s.minDeny ? [true, s.minAllow] : [false, s.minDeny];
  }
}
