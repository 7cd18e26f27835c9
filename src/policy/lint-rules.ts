/**
 * Per-rule lint: rules that can never match, patterns that are not what they
 * look like, deny rules written against raw paths, implausible subjects and
 * effects. Each finding is about one line of the policy file. Shadowing
 * (which compares rules with each other) is in shadowed-rules.ts.
 */
import type { PolicyLine } from '../authz/policy-text.ts';
import type { EncodedSlashMode } from '../http/canonical-path.ts';
import type { Finding, FindingCode, Severity } from './finding.ts';
import type { MatcherShape, MatcherTerm } from './matcher-terms.ts';
import { maskEmpty, methodMask, type MethodMask } from './method-set.ts';
import { invalidRegex, neverMatchReason, rawPathReason, wildcardFootgun } from './path-pattern.ts';
import type { PolicySource } from './policy-source.ts';
import { impossiblePeer, implausibleSubject } from './subject-kind.ts';

/** Reads the policy values of one `p` line by field name. */
export type FieldReader = (name: string) => string;

/** A field reader for a `p` line of `source`. */
export function fieldReader(source: PolicySource, line: PolicyLine): FieldReader {
  const names = source.model.policyTypes.get(line.ptype) ?? [];
  return (name) => line.values[names.indexOf(name)] ?? '';
}

/** A rule's effect as the engine reads it: its `eft` column, `allow` when the model has none. */
export function ruleEffect(source: PolicySource, line: PolicyLine): string {
  return (source.model.policyTypes.get(line.ptype) ?? []).includes('eft') ? fieldReader(source, line)('eft') : 'allow';
}

/** Role names: every role a `g`-type line assigns (its second column). */
export function roleNames(source: PolicySource): Set<string> {
  const roles = new Set<string>();
  for (const l of source.lines) if (source.model.roleTypes.has(l.ptype) && l.values[1] !== undefined) roles.add(l.values[1]);
  return roles;
}

/** Memoizes method masks per (term, value): policies repeat the same few actions. */
export class MaskCache {
  readonly #cache = new Map<MatcherTerm, Map<string, MethodMask>>();
  get(term: Extract<MatcherTerm, { kind: 'method' }>, value: string): MethodMask {
    let byValue = this.#cache.get(term);
    if (!byValue) this.#cache.set(term, (byValue = new Map()));
    let m = byValue.get(value);
    if (m === undefined) {
      m = methodMask(term.expr, (name) => (name === term.field ? value : ''));
      byValue.set(value, m);
    }
    return m;
  }
}

/** Lints every rule of `source` on its own. */
export function lintRules(source: PolicySource, shape: MatcherShape, mode: EncodedSlashMode, masks: MaskCache): Finding[] {
  const out: Finding[] = [];
  const roles = roleNames(source);
  const push = (line: PolicyLine, severity: Severity, code: FindingCode, message: string): void => {
    out.push({ severity, code, file: source.policyPath, line: line.line, message, rule: line.text });
  };
  const matcherReads = (ptype: string): boolean => new RegExp(`(^|[^\\w$.])${ptype}\\.`).test(source.model.matcher);
  for (const line of source.lines) {
    if (source.model.roleTypes.has(line.ptype)) {
      const why = line.values[0] === undefined ? undefined : implausibleSubject(line.values[0], roles);
      if (why) push(line, 'warning', 'subject', `role assignment for an impossible subject: ${why}`);
      continue;
    }
    if (line.ptype !== 'p') {
      if (!matcherReads(line.ptype)) push(line, 'warning', 'unused-rule', `meshgate decides with the matcher "m", which never reads ${line.ptype} rules: this line has no effect`);
      continue;
    }
    const value = fieldReader(source, line);
    const effect = ruleEffect(source, line);
    if (effect !== 'allow' && effect !== 'deny') {
      push(line, 'error', 'effect', `effect ${JSON.stringify(effect)} is neither "allow" nor "deny": the engine ignores this rule`);
      continue;
    }
    for (const term of shape.terms) lintTerm(term, value, effect, mode, masks, roles, (sev, code, msg) => push(line, sev, code, msg));
  }
  return out;
}

type Report = (severity: Severity, code: FindingCode, message: string) => void;

function lintTerm(term: MatcherTerm, value: FieldReader, effect: string, mode: EncodedSlashMode, masks: MaskCache, roles: ReadonlySet<string>, report: Report): void {
  switch (term.kind) {
    case 'path': {
      const v = value(term.field);
      const bad = invalidRegex(term.fn, v);
      if (bad !== undefined) {
        report('error', 'invalid-pattern', `${term.fn} pattern ${JSON.stringify(v)} is not a valid regular expression (${bad}): every request evaluated against this rule fails with authz_error`);
        return;
      }
      const raw = rawPathReason(term.fn, v, mode);
      const never = neverMatchReason(term.fn, v, mode);
      if (effect === 'deny' && raw !== undefined) {
        report('error', 'deny-raw-path', `deny rule written against a raw path ${JSON.stringify(v)}: ${raw}, so it never denies the path as written`);
      } else if (never !== undefined) {
        report('error', 'never-matches', `${term.field} ${JSON.stringify(v)} can never match a request: ${never}`);
      } else if (raw !== undefined) {
        report('warning', 'raw-path', `rule written against a raw path ${JSON.stringify(v)}: ${raw}`);
      }
      const gun = wildcardFootgun(term.fn, v);
      // A raw-path finding already says the pattern is not what it looks like.
      if (gun && gun.code === 'regex-in-pattern' && (raw !== undefined || never !== undefined)) return;
      if (gun) report(gun.code === 'text-after-wildcard' && term.fn === 'keyMatch' && effect === 'allow' ? 'error' : 'warning', gun.code, gun.message);
      return;
    }
    case 'method': {
      const v = value(term.field);
      const mask = masks.get(term, v);
      if (mask === 'error') report('error', 'invalid-pattern', `${term.field} ${JSON.stringify(v)} makes the matcher throw (invalid regular expression?): requests evaluated against this rule fail with authz_error`);
      else if (maskEmpty(mask)) report('error', 'never-matches', `${term.field} ${JSON.stringify(v)} matches no HTTP method meshgate can receive (methods are upper case, e.g. GET)`);
      return;
    }
    case 'pattern': {
      const v = value(term.field);
      const bad = invalidRegex(term.fn, v);
      if (bad !== undefined) report('error', 'invalid-pattern', `${term.fn} pattern ${JSON.stringify(v)} is not a valid regular expression (${bad}): requests evaluated against this rule fail with authz_error`);
      return;
    }
    case 'role':
    case 'eq': {
      const v = value(term.field);
      if (term.rField === 'peer' && term.kind === 'eq') {
        const why = impossiblePeer(v);
        if (why) report('error', 'never-matches', `${term.field} can never match a request: ${why}`);
      } else if (term.rField === 'sub' || term.rField === 'peer') {
        const why = implausibleSubject(v, roles);
        if (why) report('warning', 'subject', why);
      }
      return;
    }
    case 'opaque':
      return;
  }
}
