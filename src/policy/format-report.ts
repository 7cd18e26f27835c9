/**
 * Human-readable output of the policy tools (their `--json` output is the
 * report objects themselves). `show` turns absolute paths into the form the
 * user typed them in (relative to the working directory).
 */
import type { AuthzRequest } from '../core/types.ts';
import type { CheckReport } from './check-policy.ts';
import type { ExplainReport } from './explain.ts';
import type { ReplayReport } from './replay.ts';
import type { TestReport, TestResult } from './run-tests.ts';

type Show = (file: string) => string;

const n = (x: number): string => x.toLocaleString('en-US');

/** `policy check` output: one block per finding, then a summary line. */
export function formatCheck(r: CheckReport, show: Show): string {
  const out: string[] = [];
  for (const f of r.findings) {
    out.push(`${show(f.file)}${f.line === undefined ? '' : `:${f.line}`}: ${f.severity} [${f.code}] ${f.message}`);
    if (f.rule !== undefined) out.push(`    ${f.rule}`);
  }
  const files = `${show(r.modelPath)} + ${show(r.policyPath)}`;
  const size = r.policyVersion === undefined ? '' : ` (${n(r.rules)} rules, ${n(r.roleAssignments)} role assignments, policy ${r.policyVersion}, engine ${r.engine})`;
  if (r.findings.length === 0) out.push(`ok: ${files}${size}: no findings`);
  else out.push(`${r.ok ? 'ok' : 'FAILED'}: ${files}${size}: ${r.errors} error${r.errors === 1 ? '' : 's'}, ${r.warnings} warning${r.warnings === 1 ? '' : 's'}`);
  if (r.fallbackReason !== undefined) out.push(`note: the compiled engine cannot serve this policy, casbin decides instead: ${r.fallbackReason}`);
  for (const note of r.notes) out.push(`note: ${note}`);
  return `${out.join('\n')}\n`;
}

/** The tuple as one line (claims as compact JSON). */
export function formatTuple(t: AuthzRequest): string {
  // A token's own `sub` claim repeats the subject: leave it out of the display.
  const { sub, ...rest } = t.claims;
  const shown = sub === t.sub ? rest : t.claims;
  const claims = Object.keys(shown).length === 0 ? '' : ` claims=${JSON.stringify(shown)}`;
  return `sub=${t.sub} peer=${t.peer === '' ? "''" : t.peer} obj=${t.obj} act=${t.act}${claims}`;
}

function formatFailure(r: TestResult, file: string): string[] {
  const row = (k: 'decision' | 'reason' | 'rule', expected: string | undefined, got: string): string => {
    const mark = r.mismatches.includes(k) ? '✗' : ' ';
    return `    ${mark} ${`${k}:`.padEnd(9)} ${expected === undefined ? '' : `expected ${expected}, `}got ${got}`;
  };
  return [
    `FAIL  ${r.name}  (${file}:${r.line})`,
    row('decision', r.expect.decision, r.got.decision),
    row('reason', r.expect.reason, r.got.reason),
    row('rule', r.expect.rule, r.got.rule ?? 'none'),
    `      ${'tuple:'.padEnd(9)} ${r.got.tuple ? formatTuple(r.got.tuple) : 'none (refused before authorization)'}`,
  ];
}

/** `policy test` output: PASS/FAIL per test, a diff for each failure, a summary. */
export function formatTests(r: TestReport, show: Show): string {
  const out = [`${show(r.file)}: model ${show(r.modelPath)}, policy ${show(r.policyPath)} (${r.policyVersion})`];
  for (const t of r.results) {
    if (t.ok) out.push(`PASS  ${t.name}`);
    else out.push(...formatFailure(t, show(r.file)));
  }
  out.push(`${r.failed === 0 ? 'ok' : 'FAILED'}: ${r.passed} passed, ${r.failed} failed`);
  return `${out.join('\n')}\n`;
}

/** `policy explain` output: one line per stage, the tuple, the result. */
export function formatExplain(r: ExplainReport): string {
  const out = [`${r.method} ${r.path}`];
  for (const s of r.stages) out.push(`  ${s.stage.padEnd(10)} ${(s.verdict === 'fail' ? 'FAIL' : s.verdict === 'ok' ? 'ok' : '-').padEnd(5)} ${s.summary}`);
  if (r.tuple) out.push(`  ${'tuple'.padEnd(10)} ${''.padEnd(5)} ${formatTuple(r.tuple)}`);
  const result = r.allowed ? 'ALLOWED: forwarded upstream (the upstream sets the status)'
    : r.status === 0 ? `DENIED: connection closed after the TLS handshake, ${r.reason} (${r.code})`
      : `DENIED: ${r.status} ${r.reason} (${r.code})`;
  out.push(`result: ${result}`);
  for (const note of r.notes) out.push(`note: ${note}`);
  return `${out.join('\n')}\n`;
}

const ARROW: Record<string, string> = { allow_to_deny: 'allow→deny', deny_to_allow: 'deny→allow' };

/** `policy replay` output: totals, then each flip group with its rules and examples. */
export function formatReplay(r: ReplayReport): string {
  const secs = r.elapsedMs / 1000;
  const rate = secs > 0 ? Math.round(r.events / secs) : r.events;
  const out = [
    `replayed ${n(r.events)} events against policy ${r.candidateVersion} in ${secs.toFixed(1)} s (${n(rate)} events/s)`,
    `  replayable ${n(r.replayable)} · unchanged ${n(r.unchanged)} · allow→deny ${n(r.allowToDeny)} · deny→allow ${n(r.denyToAllow)}`,
  ];
  if (r.notReplayable > 0) {
    const why = Object.entries(r.notReplayableByReason).slice(0, 6).map(([k, v]) => `${k} ${n(v)}`).join(', ');
    out.push(`  not replayable (decided before authorization) ${n(r.notReplayable)}: ${why}`);
  }
  if (r.alarms > 0) out.push(`  skipped ${n(r.alarms)} alarm events (companions of request events that are replayed themselves)`);
  const versions = Object.entries(r.recordedVersions);
  if (versions.length > 0) out.push(`  recorded under ${versions.slice(0, 4).map(([k, v]) => `${k} (${n(v)})`).join(', ')}${versions.length > 4 ? ', …' : ''}`);
  if (r.claimsUnavailable) out.push('  note: the candidate model reads r.claims, which the audit log does not record: replayed with claims = {}');
  if (r.flips.length === 0) {
    out.push('', 'no decision flips');
    return `${out.join('\n')}\n`;
  }
  for (const g of r.flips) {
    out.push('', `${ARROW[g.direction]}  ${n(g.count)}  ${g.identity}  route ${g.route}`);
    out.push(`    before: ${g.reasonBefore}  ${g.ruleBefore ?? '(no rule)'}`);
    out.push(`    after:  ${g.reasonAfter}  ${g.ruleAfter ?? '(no rule)'}`);
    g.examples.forEach((e, i) => out.push(`    ${i === 0 ? 'e.g.' : '    '}    ${e.id}  ${e.time}  ${e.method} ${e.path}`));
  }
  return `${out.join('\n')}\n`;
}
