/**
 * Loading detection rules: YAML → schema → cross-field checks → frozen
 * RuleSet. Every problem is collected before anything is thrown, each with
 * `file:line:col` and its path (`rules[3].capacity`), so one run lists all
 * there is to fix (the same contract as the config loader).
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { locateYaml } from '../../core/yaml-locate.ts';
import { formatPath } from '../../config/load.ts';
import { FIELD_KINDS, isFieldName } from './fields.ts';
import { z } from 'zod';
import { ruleSchema, type FilterSpec, type MatcherSpec, type RuleSet, type RuleSpec } from './schema.ts';

type Path = readonly PropertyKey[];

/** One problem in a rules file. */
export interface RulesIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** Thrown when a rules file cannot be loaded; holds every problem found. */
export class RulesError extends Error {
  readonly fileName: string;
  readonly issues: readonly RulesIssue[];
  constructor(fileName: string, issues: readonly RulesIssue[]) {
    const n = issues.length;
    super(`invalid detection rules ${fileName} (${n} error${n === 1 ? '' : 's'}):\n${issues.map((i) => `  ${formatRulesIssue(fileName, i)}`).join('\n')}`);
    this.name = 'RulesError';
    this.fileName = fileName;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}

/** `file:line:col: path: message`. */
export function formatRulesIssue(fileName: string, i: RulesIssue): string {
  const where = i.line === undefined ? fileName : `${fileName}:${i.line}:${i.column ?? 1}`;
  return i.path === '' ? `${where}: ${i.message}` : `${where}: ${i.path}: ${i.message}`;
}

/** Reads and validates a rules file. Throws RulesError for any bad input. */
export async function loadRules(file: string): Promise<RuleSet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RulesError(file, [{ path: '', message: `cannot read rules file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
  return parseRules(text, file);
}

/** Validates rules given as YAML text; `fileName` is used in messages. */
export function parseRules(text: string, fileName = 'detections.yaml'): RuleSet {
  const lc = new LineCounter();
  // Same YAML profile as the config: core schema, duplicate keys are errors.
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true, lineCounter: lc });
  const yamlIssues = [...doc.errors, ...doc.warnings].map((e): RulesIssue => ({
    path: '',
    message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, ''),
    ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
  }));
  if (yamlIssues.length > 0) throw new RulesError(fileName, yamlIssues);
  if (doc.contents === null) throw new RulesError(fileName, [{ path: '', message: 'rules file is empty (expected version: 1 and rules: [...])' }]);
  const at = (p: Path, key = false): Pick<RulesIssue, 'line' | 'column'> => {
    const off = locateYaml(doc, p, key);
    if (off === undefined) return {};
    const { line, col } = lc.linePos(off);
    return { line, column: col };
  };
  const issues: RulesIssue[] = [];
  const push = (iss: z.core.$ZodIssue, base: Path): void => {
    const p = [...base, ...iss.path];
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) issues.push({ path: formatPath([...p, k]), message: 'unknown key', ...at([...p, k], true) });
    } else issues.push({ path: formatPath(p), message: message(iss), ...at(p) });
  };
  // The file shell first, then each rule on its own: one broken rule must
  // not hide the cross-field problems of the others.
  const shell = fileShellSchema.safeParse(doc.toJS({ maxAliasCount: 100 }), { reportInput: true });
  if (!shell.success) {
    for (const iss of shell.error.issues) push(iss, []);
    throw new RulesError(fileName, sortIssues(issues));
  }
  const parsed: { index: number; rule: RuleSpec }[] = [];
  shell.data.rules.forEach((raw, index) => {
    const r = ruleSchema.safeParse(raw, { reportInput: true });
    if (r.success) parsed.push({ index, rule: r.data });
    else for (const iss of r.error.issues) push(iss, ['rules', index]);
  });
  const rules = parsed.map((x) => x.rule);
  for (const s of checkRules(parsed)) issues.push({ path: formatPath(s.path), message: s.message, ...at(s.path) });
  if (issues.length > 0) throw new RulesError(fileName, sortIssues(issues));
  return deepFreeze({ version: 1, rules, source: fileName });
}

const fileShellSchema = z.strictObject({ version: z.literal(1), rules: z.array(z.unknown()) });

/** Zod issue → our wording (the same style as the config loader's messages). */
function message(iss: z.core.$ZodIssue): string {
  const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'missing required key';
      return iss.message.startsWith('Invalid input') ? `expected ${iss.expected}, got ${kindOf(iss.input)}` : iss.message;
    case 'invalid_union':
      if (iss.path.at(-1) === 'kind') return 'unknown kind (expected leaky, threshold, single, sequence, new_terms or ewma)';
      return iss.message;
    case 'invalid_value':
      return iss.values.length === 1 ? `expected ${String(iss.values[0])}` : `expected one of ${iss.values.map(String).join('|')}`;
    case 'too_small':
      if (iss.origin === 'array') return `must have at least ${String(iss.minimum)} item${iss.minimum === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return 'must not be empty';
      return `must be ${iss.inclusive ? '>=' : '>'} ${String(iss.minimum)}`;
    case 'too_big':
      if (iss.origin === 'array') return `must have at most ${String(iss.maximum)} items`;
      if (iss.origin === 'string') return `must be at most ${String(iss.maximum)} characters`;
      return `must be ${iss.inclusive ? '<=' : '<'} ${String(iss.maximum)}`;
    default:
      return iss.message;
  }
}

interface Problem {
  readonly path: Path;
  readonly message: string;
}

/** Checks the schema cannot express: names, field kinds, operator/field fit, kind-specific keys. */
function checkRules(rules: readonly { index: number; rule: RuleSpec }[]): Problem[] {
  const out: Problem[] = [];
  const names = new Map<string, number>();
  rules.forEach(({ index: i, rule: r }) => {
    const p = ['rules', i];
    const first = names.get(r.name);
    if (first !== undefined) out.push({ path: [...p, 'name'], message: `duplicate rule name "${r.name}" (also rules[${first}])` });
    else names.set(r.name, i);
    checkFilter(r.filter, [...p, 'filter'], out);
    if (r.groupBy === 'global' && r.kind !== 'ewma') out.push({ path: [...p, 'groupBy'], message: 'global is only for kind ewma (every other kind counts per identity)' });
    if (r.remediation && r.groupBy === 'global' && r.remediation.scope === undefined) {
      out.push({ path: [...p, 'remediation', 'scope'], message: 'required when groupBy is global (a quarantine needs an identity)' });
    }
    switch (r.kind) {
      case 'leaky':
      case 'threshold':
        break;
      case 'sequence':
        r.steps.forEach((s, j) => checkFilter(s.filter, [...p, 'steps', j, 'filter'], out));
        break;
      case 'new_terms':
        if (r.relearn !== undefined && r.relearnOn === undefined) out.push({ path: [...p, 'relearn'], message: 'relearn needs relearnOn (the field whose new value starts a re-learning period)' });
        break;
      case 'ewma':
        if (r.measure === 'sum') {
          if (r.field === undefined) out.push({ path: [...p, 'field'], message: 'measure sum needs a numeric field (e.g. bytesOut)' });
          else if (FIELD_KINDS[r.field] !== 'number') out.push({ path: [...p, 'field'], message: `${r.field} is not numeric` });
        } else if (r.field !== undefined) out.push({ path: [...p, 'field'], message: `field is only for measure sum` });
        if (r.measure === 'ratio') {
          if (r.numerator === undefined) out.push({ path: [...p, 'numerator'], message: 'measure ratio needs a numerator filter' });
          else checkFilter(r.numerator, [...p, 'numerator'], out);
        } else if (r.numerator !== undefined) out.push({ path: [...p, 'numerator'], message: 'numerator is only for measure ratio' });
        if (r.minZ === undefined && r.minFactor === undefined) out.push({ path: p, message: 'ewma needs minZ, minFactor or both (when is the rate anomalous?)' });
        if (r.attribute !== undefined && r.groupBy !== 'global') out.push({ path: [...p, 'attribute'], message: 'attribute is only for groupBy global' });
        break;
    }
  });
  return out;
}

const STRING_OPS = ['prefix', 'suffix', 'contains', 'regex', 'ignoreCase'] as const;
const NUMBER_OPS = ['gte', 'gt', 'lte', 'lt'] as const;

function checkFilter(f: FilterSpec, p: Path, out: Problem[]): void {
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined) continue;
    if (key === 'all' || key === 'any') (value as FilterSpec[]).forEach((g, i) => checkFilter(g, [...p, key, i], out));
    else if (key === 'not') checkFilter(value as FilterSpec, [...p, 'not'], out);
    else if (isFieldName(key)) checkMatch(key, value, [...p, key], out);
  }
}

function checkMatch(field: keyof typeof FIELD_KINDS, m: unknown, p: Path, out: Problem[]): void {
  const kind = FIELD_KINDS[field];
  const checkValue = (v: unknown, vp: Path): void => {
    if (v !== null && typeof v !== kind) out.push({ path: vp, message: `${field} is a ${kind} field, got ${typeof v}` });
  };
  if (m === null || typeof m !== 'object') return checkValue(m, p);
  if (Array.isArray(m)) return m.forEach((v, i) => checkValue(v, [...p, i]));
  const spec = m as MatcherSpec;
  const ops = Object.keys(spec).filter((k) => spec[k as keyof MatcherSpec] !== undefined);
  if (ops.length === 0 || (ops.length === 1 && ops[0] === 'ignoreCase')) out.push({ path: p, message: 'matcher has no operator (equals, in, notIn, prefix, suffix, contains, regex, gte, gt, lte, lt, exists)' });
  if (spec.equals !== undefined) checkValue(spec.equals, [...p, 'equals']);
  spec.in?.forEach((v, i) => checkValue(v, [...p, 'in', i]));
  spec.notIn?.forEach((v, i) => checkValue(v, [...p, 'notIn', i]));
  if (kind !== 'string') for (const op of STRING_OPS) if (spec[op] !== undefined) out.push({ path: [...p, op], message: `${op} needs a string field; ${field} is ${kind}` });
  if (kind !== 'number') for (const op of NUMBER_OPS) if (spec[op] !== undefined) out.push({ path: [...p, op], message: `${op} needs a numeric field; ${field} is ${kind}` });
  if (spec.regex !== undefined) {
    try {
      new RegExp(spec.regex, spec.ignoreCase ? 'i' : '');
    } catch (err) {
      out.push({ path: [...p, 'regex'], message: `invalid regular expression: ${(err as Error).message}` });
    }
  }
}

function sortIssues(issues: RulesIssue[]): RulesIssue[] {
  return issues.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0) || a.path.localeCompare(b.path));
}


function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
