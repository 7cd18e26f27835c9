/**
 * `policy check`: load the policy exactly as the gateway would (so every load
 * error is reported with its file and line), then lint what loaded.
 */
import type { Authorizer } from '../authz/authorizer.ts';
import { PolicyError } from '../authz/policy-error.ts';
import type { EncodedSlashMode } from '../http/canonical-path.ts';
import { compareFindings, type Finding, type FindingCode } from './finding.ts';
import { MaskCache, lintRules } from './lint-rules.ts';
import { loadPolicyAuthorizer } from './load-authorizer.ts';
import { matcherShape } from './matcher-terms.ts';
import { readPolicySource, type PolicyPaths } from './policy-source.ts';
import { findShadowedRules } from './shadowed-rules.ts';

/** The outcome of `policy check`. */
export interface CheckReport {
  readonly modelPath: string;
  readonly policyPath: string;
  /** True when there is no error (warnings allowed). */
  readonly ok: boolean;
  readonly errors: number;
  readonly warnings: number;
  readonly findings: readonly Finding[];
  /** Limits of the analysis worth knowing (never failures). */
  readonly notes: readonly string[];
  /** Content hash of the loaded policy; undefined when it did not load. */
  readonly policyVersion: string | undefined;
  /** The engine the gateway would decide with, and why it fell back to casbin (if it did). */
  readonly engine: string | undefined;
  readonly fallbackReason: string | undefined;
  /** `p` rules and role assignments read. */
  readonly rules: number;
  readonly roleAssignments: number;
}

function loadErrorCode(reason: string): FindingCode {
  if (/unknown function/.test(reason)) return 'unknown-function';
  if (/unknown request token|matcher reads .* but|is not defined/.test(reason)) return 'unknown-field';
  return 'syntax';
}

/** Loads and lints a policy. Throws only for unexpected failures (never for a broken policy). */
export async function checkPolicy(paths: PolicyPaths, opts: { encodedSlash?: EncodedSlashMode } = {}): Promise<CheckReport> {
  const mode = opts.encodedSlash ?? 'reject';
  const base = { modelPath: paths.modelPath, policyPath: paths.policyPath };
  let authorizer: Authorizer;
  try {
    authorizer = await loadPolicyAuthorizer(paths);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    const finding: Finding = { severity: 'error', code: loadErrorCode(e.reason), file: e.file, line: e.line, message: e.reason };
    return { ...base, ok: false, errors: 1, warnings: 0, findings: [finding], notes: ['the policy did not load; fix this error to see lint findings'], policyVersion: undefined, engine: undefined, fallbackReason: undefined, rules: 0, roleAssignments: 0 };
  }
  const source = await readPolicySource(paths);
  const shape = matcherShape(source.model);
  const masks = new MaskCache();
  const shadow = findShadowedRules(source, shape, masks);
  const ruleFindings = lintRules(source, shape, mode, masks);
  // A rule that is already an error (never matches, broken pattern) is trivially "shadowed": say it once.
  const broken = new Set(ruleFindings.filter((f) => f.severity === 'error').map((f) => f.line));
  const findings = [...ruleFindings, ...shadow.findings.filter((f) => !broken.has(f.line))].sort(compareFindings);
  const errors = findings.filter((f) => f.severity === 'error').length;
  return {
    ...base,
    ok: errors === 0,
    errors,
    warnings: findings.length - errors,
    findings,
    notes: shadow.note === undefined ? [] : [shadow.note],
    policyVersion: authorizer.version,
    engine: authorizer.engine,
    fallbackReason: authorizer.fallbackReason,
    rules: source.lines.filter((l) => source.model.policyTypes.has(l.ptype)).length,
    roleAssignments: source.lines.filter((l) => source.model.roleTypes.has(l.ptype)).length,
  };
}
