/**
 * Validates `policy.csv` line by line before any engine loads it, so every
 * problem names its line: unbalanced quotes, a policy type the model does not
 * define (Casbin silently drops such lines — a typo like `p2` would quietly
 * remove a rule), and a column count that differs from the model's
 * definition (Casbin pads or truncates — a missing column would quietly widen
 * or narrow a rule).
 */
import { PolicyError } from './policy-error.ts';
import type { ModelDefinition } from './model-text.ts';

/** One policy or role line as written. */
export interface PolicyLine {
  /** `p`, `p2`, `g`, … */
  readonly ptype: string;
  /** Column values after CSV unquoting and trimming (what the engine compares). */
  readonly values: readonly string[];
  /** 1-based line number in the file. */
  readonly line: number;
  /** The line as written, trimmed (what `matchedRule` shows). */
  readonly text: string;
}

/**
 * Splits one CSV line into `[ptype, ...values]` exactly as the engine will,
 * or returns null for a line the engine skips. May throw on CSV syntax.
 */
export type PolicyLineTokenizer = (line: string) => string[] | null;

/** Parses and validates policy text against a model; throws PolicyError naming the line. */
export function parsePolicyText(text: string, file: string, model: ModelDefinition, tokenize: PolicyLineTokenizer): PolicyLine[] {
  // An empty file is far more often a write caught halfway (truncate, then
  // write) than a wish to deny everything; swapping it in would be an outage.
  if (text.trim() === '') throw new PolicyError(file, undefined, 'policy file is empty (to deny everything on purpose, write a comment line)');
  const out: PolicyLine[] = [];
  const defined = [...model.policyTypes.keys(), ...model.roleTypes.keys()].join(', ');
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    // A CSV field is quoted as a whole with "" as the escape, so a
    // well-formed line always has an even number of quotes. The engine's
    // parser is lenient ("relax_quotes") and would guess; we refuse instead.
    if (countQuotes(trimmed) % 2 !== 0) throw new PolicyError(file, line, 'CSV syntax: unbalanced double quote');
    let tokens: string[] | null;
    try {
      tokens = tokenize(raw);
    } catch (e) {
      throw new PolicyError(file, line, `CSV syntax: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { cause: e });
    }
    if (tokens === null) return;
    const [ptype = '', ...values] = tokens;
    const columns = model.policyTypes.get(ptype)?.length ?? model.roleTypes.get(ptype);
    if (columns === undefined) {
      throw new PolicyError(file, line, `unknown policy type "${ptype}" (the model defines ${defined})`);
    }
    if (values.length !== columns) {
      const def = model.policyTypes.get(ptype)?.join(', ') ?? Array(columns).fill('_').join(', ');
      throw new PolicyError(file, line, `${ptype} line has ${values.length} column(s), the model's ${ptype} = ${def} has ${columns}`);
    }
    out.push({ ptype, values, line, text: trimmed });
  });
  return out;
}

function countQuotes(s: string): number {
  let n = 0;
  for (let i = s.indexOf('"'); i !== -1; i = s.indexOf('"', i + 1)) n++;
  return n;
}

/** Key identifying a rule by content (ptype and values), used to map an engine's rule back to its line. */
export function ruleKey(ptype: string, values: readonly string[]): string {
  return JSON.stringify([ptype, ...values]);
}
